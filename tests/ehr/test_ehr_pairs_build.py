"""The ehr_pairs step inside real builds: the deid gate refuses, rejects, splits and the card.

The steps ``gate_stamp_for_tests`` / ``edit_after_deid_for_tests`` stand in for the deid step by
calling the gate contract (medcurate/deid/gate.py) directly, so these tests check the EHR side of
the gate whatever the de-identification library does; test_ehr_deid_e2e.py runs the real step.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from medcurate.build import build
from medcurate.deid.engine import Deidentifier
from medcurate.deid.gate import mark_deidentified, text_columns
from medcurate.errors import MedcurateError
from medcurate.pipeline import register_step
from medcurate.recipe import recipe_from_dict
from medcurate.store import load_rows

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "data" / "ehr_sample.jsonl"
MAPPING = {"diagnosis": "出院诊断", "patient_id": "患者ID", "record_id": "病历号"}


MASK = Deidentifier("mask")


@register_step("gate_stamp_for_tests")
def gate_stamp_for_tests(rows, ctx):
    for row in rows:
        row["patient_id"] = "pt-" + hashlib.sha256(str(row.get("patient_id")).encode()).hexdigest()[:16]
        for name in text_columns(row):  # the publish check scans again: the text must really be masked
            if name != "patient_id":
                row[name] = MASK.deidentify(row[name]).text
        mark_deidentified(row, text_columns(row), "test", pseudonymised=["patient_id"])
    return rows


@register_step("edit_after_deid_for_tests")
def edit_after_deid_for_tests(rows, ctx):
    rows[0]["present_illness"] = (rows[0].get("present_illness") or "") + "患者王某某"
    return rows


def ehr_recipe(steps, splits=None, path=SAMPLE, fmt="ehr", options=None):
    return recipe_from_dict({"name": "ehr-test", "kind": "ehr",
                             "sources": [{"name": "ward", "path": str(path), "format": fmt,
                                          "options": options if options is not None else {"fields": MAPPING}}],
                             "steps": steps, "splits": splits or {}}, base_dir=REPO)


def test_build_refuses_ehr_rows_that_skipped_deid(store):
    with pytest.raises(MedcurateError, match="refusing to publish 73 EHR row"):
        build(ehr_recipe(["ehr_pairs"]), store=store)
    assert not (store / "ehr-test").exists()


def test_build_refuses_text_edited_after_deid(store):
    with pytest.raises(MedcurateError, match="text changed after the deid step"):
        build(ehr_recipe(["gate_stamp_for_tests", "edit_after_deid_for_tests", "ehr_pairs"]), store=store)


@register_step("edit_input_after_pairs_for_tests")
def edit_input_after_pairs_for_tests(rows, ctx):
    rows[0]["input"] += "\n联系人：王某某"
    return rows


def test_build_refuses_text_edited_after_ehr_pairs(store):
    steps = ["gate_stamp_for_tests", "ehr_pairs", "edit_input_after_pairs_for_tests"]
    with pytest.raises(MedcurateError, match="text changed after the deid step"):
        build(ehr_recipe(steps), store=store)
    assert not (store / "ehr-test").exists()


def test_pairs_splits_and_card(store):
    splits = {"seed": 1, "validation": 2000, "test": 2000, "stratify": "department", "group": "patient_id",
              "max_fraction": 0.1}
    result = build(ehr_recipe(["gate_stamp_for_tests", "ehr_pairs"], splits), store=store)
    manifest = result.manifest
    assert manifest["counts"]["inputs_read"] == 75
    assert manifest["counts"]["rejects"] == {"missing diagnosis": 2}
    rejects = [json.loads(line) for line in (result.version.path / "rejects.jsonl").read_text().splitlines()]
    assert sorted(r["line"] for r in rejects) == [18, 41] and all(r["file"] == "ehr_sample.jsonl" for r in rejects)
    assert any("scaled down to 7" in note for note in manifest["split_notes"])

    rows = load_rows(result.version.ref, store=store)
    sizes = {split: len(r) for split, r in rows.items()}
    # whole patients move between splits: each of the 5 departments fills its share of the 7 rows
    # and may overshoot by the rest of one patient (patient keys are pseudonyms, so which ones varies)
    assert sum(sizes.values()) == 73 and all(7 <= sizes[split] <= 7 + 5 for split in ("validation", "test"))
    seen = defaultdict(set)
    for split, split_rows in rows.items():
        for row in split_rows:
            assert re.fullmatch(r"pt-[0-9a-f]{16}", row["patient_id"])
            seen[row["patient_id"]].add(split)
            assert row["input"].startswith("主诉：") and row["diagnosis"] == row["diagnoses"][0]
    assert all(len(splits_of_patient) == 1 for splits_of_patient in seen.values())
    assert {row["department"] for row in rows["test"]} == {"心内科", "呼吸内科", "消化内科", "神经内科", "内分泌科"}
    per_department = manifest["stats"]["rows_per_department"]
    assert sum(per_department["test"].values()) == sizes["test"]
    card = (result.version.path / "README.md").read_text(encoding="utf-8")
    assert "## Rows per department per split" in card and "| 心内科 |" in card
    assert "## EHR diagnosis pairs" in card


def test_csv_with_english_headers_and_defaults(tmp_path, store):
    path = tmp_path / "ward.csv"
    path.write_text("record_id,patient_id,complaint,hpi,diagnosis\n"
                    "r1,p1,cough 3 days,fever,pneumonia?\n"
                    "r2,p2,headache,,\n", encoding="utf-8")
    result = build(ehr_recipe(["gate_stamp_for_tests", "ehr_pairs"], path=path, fmt="ehr_csv",
                              options={"department": "general"}), store=store)
    rows = load_rows(result.version.ref, store=store)["train"]
    assert len(rows) == 1 and rows[0]["diagnosis"] == "pneumonia" and rows[0]["diagnosis_uncertain"] is True
    assert rows[0]["input"] == "主诉：cough 3 days\n现病史：fever" and rows[0]["department"] == "general"
    assert result.manifest["counts"]["rejects"] == {"missing diagnosis": 1}


def test_a_mapped_column_is_required_of_the_first_record_only_whatever_the_batches(tmp_path, store):
    """A column the mapping names but the file's first record lacks is a typo (an error naming the
    field); a later record without it is one bad record (a reject), also when the records are
    parsed in batches of one in worker processes."""
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()[:6]]
    records[3].pop("出院诊断")
    data = tmp_path / "ward.jsonl"
    data.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")
    built = build(ehr_recipe(["gate_stamp_for_tests", "ehr_pairs"], path=data), store=store, batch_size=1, workers=2)
    assert built.manifest["counts"]["rejects"] == {"missing diagnosis": 1}
    assert built.manifest["counts"]["rows_written"] == 5
    with pytest.raises(MedcurateError, match="options.fields.diagnosis: the mapping names column '出院诊段'"):
        build(ehr_recipe(["gate_stamp_for_tests", "ehr_pairs"], path=data, options={"fields": dict(MAPPING, diagnosis="出院诊段")}),
              store=store, batch_size=1, workers=2)
