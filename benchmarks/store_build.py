"""Build throughput and peak memory of the store, engine by engine, side by side in one run.

    python benchmarks/store_build.py --rows 1000000 --engines baseline,memory,local,ray
    python benchmarks/store_build.py --rows 10000000 --engines local

Generates N instruction rows as JSONL under --tmp (never in the repository), then builds
them with strip_text, require, filter_length, dedupe and stratified 2,000/2,000 splits,
each engine in its own process so its peak RSS is its own. ``baseline`` is the in-memory
path of another checkout (``--baseline-src``, e.g. the main branch before streaming).
For the ray engine the figure is the driver's RSS; Ray's workers run in their own processes.
Prints one line per engine (also appended as JSON to $TMPDIR/medcurate-store-bench.jsonl);
CPU seconds compare engines fairly on a loaded machine. Figures go to docs/benchmarks.md.
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

DEPARTMENTS = ["心内科", "儿科", "骨科", "内分泌科"]


def generate(path: Path, rows: int) -> None:
    """Rows like the earlier 200k benchmark (~230 bytes each); every 50th a duplicate, every
    97th with an answer too short, every 101st without an answer, text padded with spaces."""
    with open(path, "w", encoding="utf-8") as handle:
        for index in range(rows):
            key = index - 1 if index % 50 == 49 else index
            answer = f"  建议监测血压，低盐饮食，必要时到心内科就诊。编号{key} "
            if index % 97 == 0:
                answer = "好"
            if index % 101 == 0:
                answer = ""
            # what json.dumps(..., ensure_ascii=False) writes for these rows, three times faster
            handle.write(f'{{"instruction": " 患者{key % 5000}号问：最近头晕乏力，血压偏高怎么办？", "query": "", '
                         f'"answer": "{answer}", "task": "qa", "department": "{DEPARTMENTS[key % 4]}"}}\n')


def recipe(data: Path) -> dict:
    return {"name": "bench", "kind": "instruction", "sources": [{"name": "rows", "path": str(data)}],
            "steps": [{"strip_text": {"fields": ["instruction", "answer"]}},
                      {"require": {"fields": ["instruction", "answer"]}},
                      {"filter_length": {"field": "answer", "min": 5}},
                      {"dedupe": {"fields": ["instruction", "answer"]}}],
            "splits": {"seed": 1, "validation": 2000, "test": 2000, "stratify": "department"}}


def run_one(data: Path, engine: str, store: Path, options: dict) -> dict:
    from medcurate.build import build
    from medcurate.recipe import recipe_from_dict

    started = time.perf_counter()
    if engine == "baseline":
        result = build(recipe_from_dict(recipe(data)), store=store)
    else:
        result = build(recipe_from_dict(recipe(data)), store=store, engine=engine, **options)
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {"seconds": elapsed, "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
               "version": result.version.version, "rows_written": result.manifest["counts"]["rows_written"],
               "engine": engine, "options": options, "input": str(data), "load_average": os.getloadavg()[0]}
    with open(Path(tempfile.gettempdir()) / "medcurate-store-bench.jsonl", "a", encoding="utf-8") as log:
        log.write(json.dumps(figures) + "\n")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--engines", default="memory,local",
                        help="comma-separated: baseline, memory, local, ray or ray:CPUS")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray (engine ray)")
    parser.add_argument("--baseline-src", default=None, help="checkout whose build() is the baseline")
    parser.add_argument("--tmp", default=tempfile.gettempdir(), help="where the input and stores go")
    parser.add_argument("--one", nargs=3, metavar=("DATA", "ENGINE", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    options = {"workers": args.workers}
    if args.batch_size:
        options["batch_size"] = args.batch_size
    if args.one:
        data, engine, store = args.one
        if engine == "ray":
            options = {"num_cpus": args.num_cpus, **({"batch_size": args.batch_size} if args.batch_size else {})}
        print(json.dumps(run_one(Path(data), engine, Path(store), options)))
        return
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="medcurate-bench-") as folder:
        data = Path(folder) / "rows.jsonl"
        started = time.perf_counter()
        generate(data, args.rows)
        size_mb = data.stat().st_size / 1e6
        print(f"rows={args.rows:,} input={size_mb:,.1f} MB JSONL (generated in {time.perf_counter() - started:.0f} s) "
              f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
        for spec in args.engines.split(","):
            engine, _, cpus = spec.partition(":")
            env = dict(os.environ)
            source = args.baseline_src if engine == "baseline" else str(Path(__file__).resolve().parents[1])
            if engine == "baseline" and not source:
                parser.error("--baseline-src is needed for the baseline engine")
            env["PYTHONPATH"] = str(source)
            command = [sys.executable, __file__, "--one", str(data), engine, str(Path(folder) / f"store-{engine}"),
                       "--workers", str(args.workers), "--num-cpus", cpus or str(args.num_cpus)]
            if args.batch_size:
                command += ["--batch-size", str(args.batch_size)]
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode:
                print(f"{engine}: failed\n{done.stderr[-2000:]}", flush=True)
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{spec:<8} build={result['seconds']:.1f} s ({args.rows / result['seconds']:,.0f} rows/s, "
                  f"{result['cpu_seconds']:.1f} CPU-s in the driver, {args.rows / result['cpu_seconds']:,.0f} rows/CPU-s, "
                  f"{size_mb / result['seconds']:.1f} MB/s) peak_rss={result['peak_rss_mb']:,.0f} MB "
                  f"rows_written={result['rows_written']:,} version={result['version']} "
                  f"load average after: {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
