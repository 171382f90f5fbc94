"""Helpers for the training tests: fast recipe overrides and metrics reading."""
from __future__ import annotations

import json
from pathlib import Path

# tiny runs: no activation checkpointing, no accumulation, plenty of learning rate
FAST = ["activation_checkpointing=false", "gradient_accumulation_steps=1", "batch_size=null", "bf16=false",
        "validation=0", "keep_best=false"]


def repeated_batch(rows: int, steps: int = 6, lr: float = 5e-3) -> list[str]:
    """One batch holding every row, seen ``steps`` times: the loss must fall."""
    return [*FAST, f"per_device_train_batch_size={rows}", f"num_train_epochs={steps}", f"learning_rate={lr}",
            "lr_scheduler_type=constant", "warmup_steps=0", "max_grad_norm=1.0"]


def losses(run_dir: Path, key: str = "loss") -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)[key] for line in lines if key in json.loads(line)]
