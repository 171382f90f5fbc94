"""Build times of the CMedINS and mixing recipes on the shared data, and the ehr_pairs step at scale.

    .venv/bin/python benchmarks/ehr_cmedins_bench.py [--shared ../shared/data] [--ehr-records 20000]

ehr_pairs is timed with the deid step in front of it: the EHR publish check scans the text again
(issue #10), so rows can no longer be stamped around de-identification for a step-only figure.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from medcurate.build import build
from medcurate.recipe import recipe_from_dict

REPO = Path(__file__).resolve().parents[1]


def timed(label: str, recipe: dict, store: Path) -> None:
    started = time.perf_counter()
    result = build(recipe_from_dict(recipe, base_dir=REPO), store=store)
    seconds = time.perf_counter() - started
    counts = result.manifest["counts"]
    print(f"{label}: {counts['inputs_read']} records -> {counts['rows_written']} rows in {seconds:.2f} s "
          f"({counts['inputs_read'] / seconds:,.0f} records/s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--ehr-records", type=int, default=20000)
    args = parser.parse_args()
    data = Path(args.shared)
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "store"
        sample = [json.loads(line) for line in (REPO / "examples/data/ehr_sample.jsonl").read_text().splitlines()]
        big = Path(folder) / "ehr.jsonl"
        with big.open("w", encoding="utf-8") as handle:
            for index in range(args.ehr_records):
                record = dict(sample[index % len(sample)], 患者ID=f"P{index // 2}")
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        timed("ehr_pairs (with deid: the publish check scans the text again, so it cannot be stamped around)", {"name": "bench-ehr", "kind": "ehr",
                                      "sources": [{"name": "ward", "path": str(big), "format": "ehr"}],
                                      "steps": ["deid", "ehr_pairs"],
                                      "splits": {"validation": 2000, "test": 2000, "stratify": "department",
                                                 "group": "patient_id"}}, store)
        timed("cmedins (5 CBLUE/IMCS files + EHR)", {"name": "bench-cmedins", "kind": "instruction", "sources": [
            {"name": "cdee", "path": str(data / "cblue-chip-cdee/CHIP-CDEE_train.json"), "format": "cdee"},
            {"name": "cmeee", "path": str(data / "cblue-cmeee/CMeEE_dev.json"), "format": "cmeee"},
            {"name": "imcs", "path": str(data / "promptcblue-toy/toy_examples/train.json"), "format": "imcs_mrg"},
            {"name": "cdn", "path": str(data / "cblue-chip-cdn/CHIP-CDN_train.json"), "format": "cdn"},
            {"name": "cmeie", "path": str(data / "cblue-cmeie/CMeIE_dev.json"), "format": "cmeie"},
            {"name": "ehr", "path": "bench-ehr@latest", "format": "dataset"}], "steps": ["cmedins"]}, store)
        timed("mix (cmedins + CMtMedQA + Toyhom GBK)", {"name": "bench-mix", "kind": "conversation", "sources": [
            {"name": "medical", "path": "bench-cmedins@latest", "format": "mix_part"},
            {"name": "zhongjing", "path": str(data / "cmtmedqa-zhongjing/CMtMedQA_test.json"), "format": "cmtmedqa"},
            {"name": "toyhom", "path": str(data / "toyhom-chinese-medical-dialogue/样例_内科5000-6000.csv"),
             "format": "toyhom"}],
            "steps": [{"mix": {"parts": {"medical": {"ratio": 2}, "zhongjing": {"ratio": 1}, "toyhom": {"ratio": 1}},
                               "turns": {"single": 1, "multi": 1, "parts": ["zhongjing", "toyhom"]}}}]}, store)


if __name__ == "__main__":
    main()
