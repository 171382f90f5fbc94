"""Throughput of evaluation on a local model: batched greedy generation and batched option
log-likelihood scoring (multiple choice), rows/s and tokens/s per batch size.

    HF_HUB_OFFLINE=1 PYTHONPATH=$PWD python benchmarks/eval_throughput.py --model MODEL_DIR \\
        --data eval-cmmlu-medical@latest --rows 64 --batch-sizes 1,8 --max-new-tokens 32

Without --model, a tiny Llama (hidden 64, 2 layers, random weights) is built on --data's texts.
--device cuda runs on a GPU (default: cuda when available, else cpu).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--data", default="eval-cmmlu-medical@latest")
    parser.add_argument("--store", default=os.environ.get("MEDCURATE_STORE"))
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()

    import torch

    from medcurate.evaluate.items import load_items
    from medcurate.evaluate.local import LocalGenerator
    from medcurate.evaluate.run import DEFAULT_SETTINGS

    if args.threads:
        torch.set_num_threads(args.threads)
    model = args.model
    if model is None:
        from medcurate.train.tiny import build_tiny_model_from_dataset

        model = str(build_tiny_model_from_dataset(args.data, Path(tempfile.mkdtemp()) / "tiny", store=args.store))
    _, items = load_items(args.data, store=args.store, limit=args.rows)
    mcq = [item for item in items if item.scorer == "mcq"]
    results = []
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        settings = {**DEFAULT_SETTINGS, "batch_size": batch_size, "max_new_tokens": args.max_new_tokens,
                    "device": args.device}
        generator = LocalGenerator(model, None, settings)
        generator.generate(items[:batch_size])  # warm-up
        generator.tokens_generated = 0
        started = time.perf_counter()
        for start in range(0, len(items), batch_size):
            generator.generate(items[start:start + batch_size])
        generation_s = time.perf_counter() - started
        row: dict = {"batch_size": batch_size, "rows": len(items), "device": generator.device,
                     "generation_s": generation_s, "generation_rows_per_s": len(items) / generation_s,
                     "generated_tokens": generator.tokens_generated,
                     "generated_tokens_per_s": generator.tokens_generated / generation_s}
        if mcq:
            generator.tokens_scored = 0
            started = time.perf_counter()
            for start in range(0, len(mcq), batch_size):
                generator.option_log_likelihoods(mcq[start:start + batch_size])
            scoring_s = time.perf_counter() - started
            row.update(loglik_rows=len(mcq), loglik_s=scoring_s, loglik_rows_per_s=len(mcq) / scoring_s,
                       option_tokens=generator.tokens_scored, option_tokens_per_s=generator.tokens_scored / scoring_s)
        results.append(row)
        print(json.dumps(row))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
