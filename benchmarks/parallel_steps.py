"""Heavy per-row work across worker processes or Ray: one recipe built with --workers 1 and 2 (and
on Ray), each build in its own process, side by side.

    .venv/bin/python benchmarks/parallel_steps.py [--workload deid] [--records 40000] [--workers 1,2] [--engines local]

Workloads:

- ``deid``: de-identification (deid, ehr_pairs, splits by patient) over the bundled synthetic EHR
  sample (examples/data/ehr_sample.jsonl) repeated ``--records`` times with new patient keys, written
  under a temporary folder (never in the repository);
- ``cmedins``: CMedINS rendering (answers rendered and checked against the gold by the task
  source formats, then the ``cmedins`` step's row-local phase) over the CBLUE task files in
  ../shared/data (CDEE train, CMeEE dev, CDN train, CMeIE dev), each repeated ``--repeat`` times
  into the temporary folder, no caps;
- ``kg``: KG QA rendering (``kg_qa``, whose template filling is its row-local phase) over the
  39Health disease KG in ../shared/data.

Prints one line per run: wall and CPU seconds of the driver, records per second, and the version
id, which must be the same for every run. Figures go to docs/benchmarks.md.
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


SHARED = REPO.parent / "shared" / "data"
WORKLOADS = ("deid", "cmedins", "kg")


CMEDINS_FILES = {"cdee": "cblue-chip-cdee/CHIP-CDEE_train.json", "cmeee": "cblue-cmeee/CMeEE_dev.json",
                 "cdn": "cblue-chip-cdn/CHIP-CDN_train.json", "cmeie": "cblue-cmeie/CMeIE_dev.json"}


def repeated_task_files(folder: Path, times: int) -> None:
    """The CMedINS task files, each repeated ``times`` times (JSON arrays stay arrays)."""
    for task, relative in CMEDINS_FILES.items():
        text = (SHARED / relative).read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            records = json.loads(text)
            text = json.dumps(records * times, ensure_ascii=False)
        else:
            text = "".join(line + "\n" for line in text.splitlines() if line.strip()) * times
        (folder / f"{task}.json").write_text(text, encoding="utf-8")


def recipe(workload: str, data: Path) -> dict:
    if workload == "cmedins":
        return {"name": "cmedins-bench", "kind": "instruction",
                "sources": [{"name": task, "path": str(data.parent / f"{task}.json"), "format": task}
                            for task in CMEDINS_FILES],
                "steps": [{"cmedins": {"max_task_share": None}}],
                "splits": {"validation": 0.05, "test": 0.05, "stratify": "task"}}
    if workload == "kg":
        from medcurate.kg.recipes import kg_qa_recipe

        return kg_qa_recipe([f"39health:{SHARED / '39health-kg/data/disease.csv'}"], "kg-bench", validation=0.05,
                            test=0.05)
    return {"name": "deid-bench", "kind": "ehr", "sources": [{"name": "ward", "path": str(data), "format": "ehr"}],
            "steps": ["deid", "ehr_pairs"],
            "splits": {"validation": 500, "test": 500, "stratify": "department", "group": "patient_id"}}


def run_one(workload: str, data: Path, store: Path, engine: str, workers: int) -> dict:
    from medcurate.build import build
    from medcurate.recipe import recipe_from_dict

    started = time.perf_counter()
    result = build(recipe_from_dict(recipe(workload, data)), store=store, engine=engine, workers=workers)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": time.perf_counter() - started, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "records": result.manifest["counts"]["inputs_read"], "rows": result.manifest["counts"]["rows_written"],
            "version": result.version.version, "load_average": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=WORKLOADS, default="deid")
    parser.add_argument("--records", type=int, default=40_000, help="EHR records of the deid workload")
    parser.add_argument("--repeat", type=int, default=1, help="times each task file is repeated (cmedins workload)")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--engines", default="local")
    parser.add_argument("--one", nargs=5, metavar=("WORKLOAD", "DATA", "STORE", "ENGINE", "WORKERS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("MEDCURATE_DEID_SECRET", "benchmark-only-secret")
    if args.one:
        workload, data, store, engine, workers = args.one
        print(json.dumps(run_one(workload, Path(data), Path(store), engine, int(workers))))
        return
    if args.workload != "deid" and not SHARED.is_dir():
        sys.exit(f"the {args.workload} workload reads ../shared/data, which is not here ({SHARED})")
    sample = [json.loads(line) for line in (REPO / "examples/data/ehr_sample.jsonl").read_text(encoding="utf-8").splitlines()]
    with tempfile.TemporaryDirectory(prefix="medcurate-deid-bench-") as folder:
        data = Path(folder) / "ehr.jsonl"
        with data.open("w", encoding="utf-8") as handle:
            for index in range(args.records):
                handle.write(json.dumps(dict(sample[index % len(sample)], 患者ID=f"P{index // 2}"), ensure_ascii=False) + "\n")
        if args.workload == "cmedins":
            repeated_task_files(Path(folder), args.repeat)
        print(f"workload={args.workload}" + (f" records={args.records:,} input={data.stat().st_size / 1e6:.1f} MB"
                                              if args.workload == "deid" else "")
              + f", load average {os.getloadavg()[0]:.2f}")
        for engine in args.engines.split(","):
            for workers in args.workers.split(","):
                store = Path(folder) / f"store-{engine}-{workers}"
                done = subprocess.run([sys.executable, __file__, "--one", args.workload, str(data), str(store), engine, workers],
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
