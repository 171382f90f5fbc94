"""De-identification across worker processes: the same EHR recipe (deid, ehr_pairs, splits by
patient) built with --workers 1 and 2, each in its own process, side by side.

    .venv/bin/python benchmarks/deid_workers.py [--records 40000] [--workers 1,2] [--engines local]

Records are the bundled synthetic EHR sample (examples/data/ehr_sample.jsonl) repeated with new
patient keys, written under a temporary folder (never in the repository). Prints one line per
run: wall and CPU seconds of the driver, records per second, and the version id, which must be
the same for every run. Figures go to docs/benchmarks.md.
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


def recipe(data: Path) -> dict:
    return {"name": "deid-bench", "kind": "ehr", "sources": [{"name": "ward", "path": str(data), "format": "ehr"}],
            "steps": ["deid", "ehr_pairs"],
            "splits": {"validation": 500, "test": 500, "stratify": "department", "group": "patient_id"}}


def run_one(data: Path, store: Path, engine: str, workers: int) -> dict:
    from medcurate.build import build
    from medcurate.recipe import recipe_from_dict

    started = time.perf_counter()
    result = build(recipe_from_dict(recipe(data)), store=store, engine=engine, workers=workers)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": time.perf_counter() - started, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "records": result.manifest["counts"]["inputs_read"], "rows": result.manifest["counts"]["rows_written"],
            "version": result.version.version, "load_average": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--engines", default="local")
    parser.add_argument("--one", nargs=4, metavar=("DATA", "STORE", "ENGINE", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("MEDCURATE_DEID_SECRET", "benchmark-only-secret")
    if args.one:
        data, store, engine, workers = args.one
        print(json.dumps(run_one(Path(data), Path(store), engine, int(workers))))
        return
    sample = [json.loads(line) for line in (REPO / "examples/data/ehr_sample.jsonl").read_text(encoding="utf-8").splitlines()]
    with tempfile.TemporaryDirectory(prefix="medcurate-deid-bench-") as folder:
        data = Path(folder) / "ehr.jsonl"
        with data.open("w", encoding="utf-8") as handle:
            for index in range(args.records):
                handle.write(json.dumps(dict(sample[index % len(sample)], 患者ID=f"P{index // 2}"), ensure_ascii=False) + "\n")
        print(f"records={args.records:,} input={data.stat().st_size / 1e6:.1f} MB, load average {os.getloadavg()[0]:.2f}")
        for engine in args.engines.split(","):
            for workers in args.workers.split(","):
                store = Path(folder) / f"store-{engine}-{workers}"
                done = subprocess.run([sys.executable, __file__, "--one", str(data), str(store), engine, workers],
                                      capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
                if done.returncode:
                    print(f"{engine} workers={workers}: failed\n{done.stderr[-2000:]}")
                    continue
                figures = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"{engine} workers={workers}: {figures['seconds']:.1f} s "
                      f"({figures['records'] / figures['seconds']:,.0f} records/s, {figures['cpu_seconds']:.1f} CPU-s in "
                      f"the driver) rows={figures['rows']:,} version={figures['version']} "
                      f"load average after {figures['load_average']:.2f}", flush=True)


if __name__ == "__main__":
    main()
