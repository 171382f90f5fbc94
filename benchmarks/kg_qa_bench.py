"""Time and peak memory of ``medcurate kg qa`` on the 39Health KG (whole file and its first half).

    .venv/bin/python benchmarks/kg_qa_bench.py [--repeat 2]

Each run is the real command in a fresh process (end to end: read GB18030 CSV, graph, render,
publish parquet); peak RSS is the child's ru_maxrss.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DISEASE_CSV = REPO.parent / "shared" / "data" / "39health-kg" / "data" / "disease.csv"


def run_once(source: Path, store: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one ``kg qa`` run in its own process."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-c",
               "import resource, subprocess, sys;"
               f"r = subprocess.run({[sys.executable, '-m', 'medcurate', 'kg', 'qa', f'39health:{source}', '--lang', 'zh', '--name', 'kg39', '--store', str(store)]!r}, capture_output=True);"
               "sys.stderr.write(r.stderr.decode()[-300:]) if r.returncode else None;"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"]
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO, check=True)
    return time.perf_counter() - start, int(result.stdout.strip()) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        half = Path(folder) / "disease_half.csv"
        lines = DISEASE_CSV.read_bytes().split(b"\n")
        half.write_bytes(b"\n".join(lines[:6001]) + b"\n")
        for label, source in (("first 6,000 records", half), ("12,000 records", DISEASE_CSV)):
            for attempt in range(args.repeat):
                seconds, rss = run_once(source, Path(folder) / f"store{attempt}")
                print(f"{label}: run {attempt + 1}: {seconds:.1f} s, peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
