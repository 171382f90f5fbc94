"""The ehr_pairs step inside real builds: the deid gate refuses, rejects, splits and the card.

The steps ``gate_stamp_for_tests`` / ``edit_after_deid_for_tests`` stand in for the deid step by
calling the gate contract (medcurate/deid/gate.py) directly, so these tests check the EHR side of
the gate whatever the de-identification library does; test_ehr_deid_e2e.py runs the real step.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from medcurate.build import build
from medcurate.deid.gate import mark_deidentified
from medcurate.ehr.records import TEXT_FIELDS
from medcurate.errors import MedcurateError
from medcurate.pipeline import register_step
from medcurate.recipe import recipe_from_dict
from medcurate.store import load_rows

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "data" / "ehr_sample.jsonl"
MAPPING = {"diagnosis": "出院诊断", "patient_id": "患者ID", "record_id": "病历号"}


@register_step("gate_stamp_for_tests")
def gate_stamp_for_tests(rows, ctx):
    for row in rows:
        mark_deidentified(row, [name for name in TEXT_FIELDS if row.get(name)], "test")
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
    # 7 rows asked per held-out split; a patient whose rows cross the line goes whole
    assert {split: len(r) for split, r in rows.items()} == {"train": 57, "validation": 8, "test": 8}
    seen = defaultdict(set)
    for split, split_rows in rows.items():
        for row in split_rows:
            seen[row["patient_id"]].add(split)
            assert row["input"].startswith("主诉：") and row["diagnosis"] == row["diagnoses"][0]
    assert all(len(splits_of_patient) == 1 for splits_of_patient in seen.values())
    assert {row["department"] for row in rows["test"]} == {"心内科", "呼吸内科", "消化内科", "神经内科", "内分泌科"}
    per_department = manifest["stats"]["rows_per_department"]
    assert sum(per_department["test"].values()) == 8
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
