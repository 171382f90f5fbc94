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


def build_version(folder: Path, store: Path, name: str, kind: str, rows: list[dict], splits: dict | None = None,
           steps: list | None = None) -> str:
    """Publish ``rows`` as a version of ``kind`` through the real store; returns its ref."""
    from medcurate.build import build
    from medcurate.recipe import recipe_from_dict

    source = folder / f"{name}.jsonl"
    source.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    recipe = recipe_from_dict({"name": name, "kind": kind, "sources": [{"name": name, "path": source.name,
                                                                          "format": "jsonl"}],
                               "steps": steps or [], "splits": splits or {}}, base_dir=folder,
                               origin=f"{name} test recipe")
    return build(recipe, store=store).version.ref
