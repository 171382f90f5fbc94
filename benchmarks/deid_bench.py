"""De-identification quality and speed on a gold set of {"id", "text", "spans": [{start, end, type, value}]}.

    python benchmarks/deid_bench.py ../shared/bench/deid-notes-dev.jsonl ../shared/bench/deid-dev.jsonl [--misses 20]
                                    [--halves] [--json OUT]

Targets (issue #10): entity recall >= 0.995; PERSON, DATE, ADDRESS >= 0.99 each; ID_CARD, PHONE, EMAIL 1.0;
char precision >= 0.97; identifier-free records unchanged; >= 1 MB/s per CPU-second. ``--halves`` also reports
the two halves of each bench split by record id (even / odd hash), to show a rule tuned on one half holds on
the other.

Reports char-level recall and precision (over identifier characters), entity recall per
type (an entity counts as found when >= 90% of its characters are covered), leaks (gold
values still verbatim in the masked output), changes to identifier-free records, and
throughput in MB of text per CPU-second (one process, one core).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from medcurate.deid.engine import Deidentifier


def evaluate(records: list[dict], deidentifier: Deidentifier) -> dict:
    found_chars = gold_chars = true_chars = 0
    entity_total: Counter = Counter()
    entity_found: Counter = Counter()
    leaks: list[str] = []
    misses: list[tuple[str, str, str]] = []
    false_positives: list[tuple[str, str, str]] = []
    clean_changed = clean_total = 0
    clean_changed_types: Counter = Counter()
    started = time.perf_counter()
    outputs = [deidentifier.deidentify(record["text"], patient=record["id"]) for record in records]
    elapsed = time.perf_counter() - started
    size = sum(len(record["text"].encode("utf-8")) for record in records)
    for record, result in zip(records, outputs, strict=True):
        text = record["text"]
        predicted = bytearray(len(text))
        for span in result.spans:
            predicted[span.start:span.end] = b"\x01" * (span.end - span.start)
        gold = bytearray(len(text))
        for span in record["spans"]:
            gold[span["start"]:span["end"]] = b"\x01" * (span["end"] - span["start"])
            covered = sum(predicted[span["start"]:span["end"]])
            entity_total[span["type"]] += 1
            if covered >= 0.9 * (span["end"] - span["start"]):
                entity_found[span["type"]] += 1
            else:
                misses.append((record["id"], span["type"], text[max(0, span["start"] - 10):span["end"] + 6]))
            if span["value"] in result.text:
                leaks.append(f"{record['id']}:{span['type']}")
        found_chars += sum(predicted)
        gold_chars += sum(gold)
        true_chars += sum(p & g for p, g in zip(predicted, gold, strict=True))
        for span in result.spans:
            if not any(gold[span.start:span.end]):
                false_positives.append((record["id"], span.type, text[max(0, span.start - 8):span.end + 6]))
        if not record["spans"]:
            clean_total += 1
            clean_changed += result.text != text
            clean_changed_types.update({span.type for span in result.spans})
    per_type = {t: {"found": entity_found[t], "total": n, "recall": entity_found[t] / n} for t, n in sorted(entity_total.items())}
    return {
        "records": len(records),
        "entity_recall": sum(entity_found.values()) / max(1, sum(entity_total.values())),
        "per_type": per_type,
        "char_recall": true_chars / max(1, gold_chars),
        "char_precision": true_chars / max(1, found_chars),
        "leaks": len(leaks),
        "clean_records": clean_total,
        "clean_changed": clean_changed,
        "clean_changed_types": dict(sorted(clean_changed_types.items())),
        "mb_per_s": size / 1e6 / elapsed,
        "bytes": size,
        "seconds": elapsed,
        "misses": misses,
        "false_positives": false_positives,
    }


TARGETS: dict[str, Any] = {"entity_recall": 0.995, "type_recall": 0.99, "exact_types": ("ID_CARD", "PHONE", "EMAIL"),
           "char_precision": 0.97}


def target_verdicts(report: dict) -> dict[str, bool]:
    per_type = report["per_type"]
    verdicts = {"entity recall >= 0.995": report["entity_recall"] >= TARGETS["entity_recall"],
                "char precision >= 0.97": report["char_precision"] >= TARGETS["char_precision"],
                "identifier-free unchanged": report["clean_changed"] == 0}
    for name in ("PERSON", "DATE", "ADDRESS"):
        if name in per_type:
            verdicts[f"{name} >= 0.99"] = per_type[name]["recall"] >= TARGETS["type_recall"]
    for name in TARGETS["exact_types"]:
        if name in per_type:
            verdicts[f"{name} = 1.0"] = per_type[name]["recall"] == 1.0
    return verdicts


def _half(record: dict) -> int:
    return int(hashlib.sha256(record["id"].encode()).hexdigest(), 16) % 2


def _print(label: str, report: dict) -> None:
    print(f"{label}: records {report['records']}  entity recall {report['entity_recall']:.4f}  "
          f"char recall {report['char_recall']:.4f}  char precision {report['char_precision']:.4f}  "
          f"leaks {report['leaks']}  identifier-free changed {report['clean_changed']}/{report['clean_records']} "
          f"{report['clean_changed_types'] or ''}")
    for name, row in report["per_type"].items():
        print(f"  {name:<18} {row['found']:>5}/{row['total']:<5} recall {row['recall']:.4f}")
    missed = [name for name, ok in target_verdicts(report).items() if not ok]
    print("  targets: " + ("all met" if not missed else "MISSED " + "; ".join(missed)))


def cli_workers(records: list[dict], workers: int, copies: int) -> None:
    """``medcurate deid --workers 1`` against ``--workers N`` on the bench text: wall time, CPU-seconds of
    the child processes, and whether the outputs are byte-identical."""
    import os
    import resource
    import subprocess
    import sys
    import tempfile

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "in.jsonl"
        with open(source, "w", encoding="utf-8") as handle:
            for copy in range(copies):
                for record in records:
                    handle.write(json.dumps({"id": f"{record['id']}-{copy}", "text": record["text"]},
                                            ensure_ascii=False) + "\n")
        size = source.stat().st_size / 1e6
        outputs = {}
        for count in (1, workers):
            out = Path(folder) / f"out-{count}.jsonl"
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "medcurate", "deid", str(source), "--workers", str(count),
                            "--out", str(out), "--spans", str(Path(folder) / f"s-{count}.jsonl"),
                            "--report", str(Path(folder) / f"r-{count}.json")], env=env, check=True,
                           capture_output=True)
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            outputs[count] = out.read_bytes()
            print(f"  medcurate deid --workers {count}: {size:.2f} MB in {wall:.2f} s wall ({size / wall:.2f} MB/s), "
                  f"{cpu:.2f} CPU-s ({size / cpu:.2f} MB per CPU-second, process start and JSON included)")
        print(f"  outputs identical: {outputs[1] == outputs[workers]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gold", type=Path, nargs="+")
    parser.add_argument("--misses", type=int, default=0, help="print this many misses and false positives")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the data for the throughput figure")
    parser.add_argument("--halves", action="store_true", help="also report each half of the bench split by id")
    parser.add_argument("--workers", type=int, default=0,
                        help="also time `medcurate deid --workers 1` against --workers N on the first bench")
    parser.add_argument("--copies", type=int, default=4, help="copies of the bench text for the --workers run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    deidentifier = Deidentifier("mask")
    reports = {}
    for gold in args.gold:
        records = [json.loads(line) for line in gold.read_text(encoding="utf-8").splitlines() if line.strip()]
        report = evaluate(records, deidentifier)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.repeat):
            for record in records:
                deidentifier.deidentify(record["text"])
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
        report["mb_per_cpu_s"] = report["bytes"] * args.repeat / 1e6 / cpu
        report["mb_per_wall_s"] = report["bytes"] * args.repeat / 1e6 / wall
        _print(gold.name, report)
        print(f"  throughput {report['mb_per_cpu_s']:.2f} MB per CPU-second, {report['mb_per_wall_s']:.2f} MB/s wall "
              f"({report['bytes'] * args.repeat / 1e6:.2f} MB, one process)")
        for miss in report["misses"][:args.misses]:
            print("MISS", miss)
        for fp in report["false_positives"][:args.misses]:
            print("FP  ", fp)
        if args.halves:
            for half in (0, 1):
                part = evaluate([r for r in records if _half(r) == half], deidentifier)
                _print(f"{gold.name} half {half}", part)
                report[f"half_{half}"] = {k: v for k, v in part.items() if k not in ("misses", "false_positives")}
        reports[gold.name] = {k: v for k, v in report.items() if k not in ("misses", "false_positives")}
    if args.workers:
        first = [json.loads(line) for line in args.gold[0].read_text(encoding="utf-8").splitlines() if line.strip()]
        print(f"CLI on {args.gold[0].name} x {args.copies}:")
        cli_workers(first, args.workers, args.copies)
    if args.json:
        args.json.write_text(json.dumps(reports, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
