"""De-identification quality and speed on a gold set of {"id", "text", "spans": [{start, end, type, value}]}.

    python benchmarks/deid_bench.py ../shared/bench/deid-dev.jsonl [--misses 20] [--json OUT]

Reports char-level recall and precision (over identifier characters), entity recall per
type (an entity counts as found when >= 90% of its characters are covered), leaks (gold
values still verbatim in the masked output), changes to identifier-free records, and
throughput in MB of text per CPU-second (one process, one core).
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from medcurate.deid.engine import Deidentifier


def evaluate(records: list[dict], deidentifier: Deidentifier) -> dict:
    found_chars = gold_chars = true_chars = 0
    entity_total: Counter = Counter()
    entity_found: Counter = Counter()
    leaks: list[str] = []
    misses: list[tuple[str, str, str]] = []
    false_positives: list[tuple[str, str, str]] = []
    clean_changed = clean_total = 0
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
        "mb_per_s": size / 1e6 / elapsed,
        "bytes": size,
        "seconds": elapsed,
        "misses": misses,
        "false_positives": false_positives,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gold", type=Path)
    parser.add_argument("--misses", type=int, default=0, help="print this many misses and false positives")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the data for the throughput figure")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    records = [json.loads(line) for line in args.gold.read_text(encoding="utf-8").splitlines() if line.strip()]
    deidentifier = Deidentifier("mask")
    report = evaluate(records, deidentifier)
    started = time.process_time()
    for _ in range(args.repeat):
        for record in records:
            deidentifier.deidentify(record["text"])
    report["mb_per_s"] = report["bytes"] * args.repeat / 1e6 / (time.process_time() - started)
    print(f"records {report['records']}  entity recall {report['entity_recall']:.4f}  "
          f"char recall {report['char_recall']:.4f}  char precision {report['char_precision']:.4f}  "
          f"leaks {report['leaks']}  identifier-free changed {report['clean_changed']}/{report['clean_records']}  "
          f"throughput {report['mb_per_s']:.2f} MB/s (one core)")
    for name, row in report["per_type"].items():
        print(f"  {name:<18} {row['found']:>5}/{row['total']:<5} recall {row['recall']:.4f}")
    for miss in report["misses"][:args.misses]:
        print("MISS", miss)
    for fp in report["false_positives"][:args.misses]:
        print("FP  ", fp)
    if args.json:
        args.json.write_text(json.dumps({k: v for k, v in report.items() if k not in ("misses", "false_positives")},
                                        ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
