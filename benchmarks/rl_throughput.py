"""Throughput and peak memory of ``medcurate train rl`` (RLOO against a medcurate reward model).

    # CPU, tiny model (hidden 64, 2 layers)
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/rl_throughput.py --size tiny --steps 10

    # GPU, a ~0.5B Qwen2-shaped model from a config with random weights
    HF_HUB_OFFLINE=1 python benchmarks/rl_throughput.py --size 0.5b --steps 10 --batch 16 --generations 4 \
        --completion-length 256

The setup (prompt and preference versions, the model, a short SFT run and a short reward run)
happens in one process; the RL run is timed in a fresh process so its peak RSS is its own.
Tokens/s counts prompt and completion tokens the policy processed (TRL's ``num_tokens``) over
the timed steps (the first ``--warmup-steps`` are left out).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

FAST = ["activation_checkpointing=false", "gradient_accumulation_steps=1", "batch_size=null", "bf16=false",
        "validation=0", "keep_best=false"]


def prepare(workdir: Path, size: str, rows: int) -> dict:
    from train_throughput import prepare as prepare_sft_setup
    from train_throughput import synthetic_rows

    from medcurate.build import build
    from medcurate.recipe import recipe_from_dict
    from medcurate.train.runner import run_training

    setup = prepare_sft_setup(workdir, size, rows)
    pairs = [{"prompt": row["query"], "chosen": row["answer"], "rejected": row["answer"][: len(row["answer"]) // 3]}
             for row in synthetic_rows(rows, seed=1)]
    source = workdir / "prefs.jsonl"
    source.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8")
    recipe = recipe_from_dict({"name": "bench-prefs", "kind": "preference",
                               "sources": [{"name": "prefs", "path": source.name, "format": "jsonl"}],
                               "steps": [], "splits": {}}, base_dir=workdir, origin="benchmark")
    setup["prefs"] = build(recipe, store=setup["store"]).version.ref
    short = [*FAST, "max_steps=2", "per_device_train_batch_size=4", "max_length=256"]
    setup["sft"] = str(run_training("sft", "clinicalgpt-sft", setup["model"], setup["ref"], workdir / "sft",
                                    store=setup["store"], overrides=short).run_dir)
    setup["reward"] = str(run_training("reward", "clinicalgpt-reward", setup["model"], setup["prefs"], workdir / "rm",
                                       store=setup["store"], overrides=short).run_dir)
    return setup


def worker(setup: dict, args) -> dict:
    from medcurate.train.rl import run_rl

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    overrides = [*FAST, f"per_device_train_batch_size={args.batch}", f"num_generations={args.generations}",
                 f"max_completion_length={args.completion_length}", f"max_steps={args.steps}", "logging_steps=1",
                 "gradient_checkpointing=false"]
    started = time.perf_counter()
    result = run_rl("clinicalgpt-rl", setup["model"], setup["sft"], setup["reward"], setup["ref"],
                    Path(setup["workdir"]) / f"rl-{time.time_ns()}", store=setup["store"], overrides=overrides)
    wall = time.perf_counter() - started
    logs = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    steps = [log for log in logs if "num_tokens" in log]
    timed = steps[args.warmup_steps:]
    first = steps[args.warmup_steps - 1] if args.warmup_steps else {"num_tokens": 0}
    tokens = timed[-1]["num_tokens"] - first["num_tokens"] if timed else 0
    step_seconds = sum(log.get("step_time", 0.0) for log in timed)
    return {"steps": len(steps), "timed_steps": len(timed), "tokens": tokens, "wall_s": round(wall, 2),
            "train_runtime_s": result.lineage["final_metrics"].get("train_runtime"),
            "tokens_per_s": round(tokens / step_seconds, 1) if step_seconds else None,
            "mean_completion_length": round(sum(log.get("completions/mean_length", 0) for log in steps) / len(steps), 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("tiny", "0.5b"), default="tiny")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8, help="Completions per step (prompts x generations).")
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--completion-length", type=int, default=64)
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(Path(args.worker).read_text()), args)))
        return
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="medcurate-rl-bench-"))
    setup = {key: str(value) for key, value in prepare(workdir, args.size, args.rows).items()}
    setup["workdir"] = str(workdir)
    setup_file = workdir / "setup.json"
    setup_file.write_text(json.dumps(setup), encoding="utf-8")
    command = [sys.executable, __file__, "--worker", str(setup_file), *sys.argv[1:]]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    figures = json.loads(output)
    print(json.dumps({"size": args.size, "batch": args.batch, "generations": args.generations,
                      "completion_length": args.completion_length, **figures}, indent=2))


if __name__ == "__main__":
    main()
