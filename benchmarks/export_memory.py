"""Peak memory of `medcurate datasets export` against the size of the version (#11).

Builds instruction versions of growing size (rows of ~250 characters), then runs each export
in a fresh process and reads that process's peak RSS, so the figure is the export's own.

    python benchmarks/export_memory.py --rows 50000,200000 --formats trl,alpaca --workdir /tmp/export-bench
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_version(workdir: Path, rows: int) -> str:
    from medcurate.build import build
    from medcurate.recipe import recipe_from_dict

    data = workdir / f"rows-{rows}.jsonl"
    with open(data, "w", encoding="utf-8") as handle:
        for index in range(rows):
            handle.write(json.dumps({"instruction": f"请回答第{index}个问题", "query": "患者咳嗽三天，伴发热。" * 4,
                                     "answer": "建议多饮水，注意休息，必要时就医。" * 8, "task": "qa"},
                                    ensure_ascii=False) + "\n")
    recipe = recipe_from_dict({"name": f"bench{rows}", "kind": "instruction", "sources": [{"path": str(data)}]})
    return build(recipe, store=workdir / "store").version.ref


def export_peak(workdir: Path, ref: str, fmt: str) -> tuple[float, float]:
    """(peak RSS MiB, seconds) of one export run in its own process."""
    # VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child of a big parent would report the parent's size
    code = ("import sys\nfrom medcurate.export import export_version\n"
            "export_version(sys.argv[1], sys.argv[2], sys.argv[3], store=sys.argv[4])\n"
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code, ref, fmt, str(workdir / f"out-{ref}-{fmt}"),
                             str(workdir / "store")], capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    return int(result.stdout.strip().splitlines()[-1]) / 1024, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default="50000,200000")
    parser.add_argument("--formats", default="trl,alpaca")
    parser.add_argument("--workdir", default=None, help="where inputs and stores go (default: a new temp folder)")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="medcurate-export-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print("| rows | format | peak RSS MiB | seconds |\n|---|---|---|---|")
    for rows in (int(n) for n in args.rows.split(",")):
        ref = build_version(workdir, rows)
        for fmt in args.formats.split(","):
            peak, seconds = export_peak(workdir, ref, fmt)
            print(f"| {rows:,} | {fmt} | {peak:,.0f} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
