"""Build throughput of the store: N synthetic instruction rows -> dedupe -> stratified splits -> Parquet.

    python benchmarks/store_build.py --rows 200000

Prints rows/s and peak RSS; figures go to docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from medcurate.build import build
from medcurate.recipe import recipe_from_dict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "rows.jsonl"
        with open(data, "w", encoding="utf-8") as handle:
            for index in range(args.rows):
                handle.write(json.dumps({"instruction": f"患者{index % 5000}号问：最近头晕乏力，血压偏高怎么办？",
                                         "query": "", "answer": f"建议监测血压，低盐饮食，必要时到心内科就诊。编号{index}",
                                         "task": "qa", "department": ["心内科", "儿科", "骨科", "内分泌科"][index % 4]},
                                        ensure_ascii=False) + "\n")
        size_mb = data.stat().st_size / 1e6
        recipe = recipe_from_dict({"name": "bench", "kind": "instruction", "sources": [{"name": "rows", "path": str(data)}],
                                   "steps": [{"dedupe": {"fields": ["instruction", "answer"]}}],
                                   "splits": {"seed": 1, "validation": 2000, "test": 2000, "stratify": "department"}})
        started = time.perf_counter()
        result = build(recipe, store=Path(folder) / "store")
        elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows={args.rows} input={size_mb:.1f} MB build={elapsed:.2f} s "
          f"({args.rows / elapsed:,.0f} rows/s, {size_mb / elapsed:.1f} MB/s) peak_rss={peak_mb:.0f} MB "
          f"version={result.version.version}")


if __name__ == "__main__":
    main()
