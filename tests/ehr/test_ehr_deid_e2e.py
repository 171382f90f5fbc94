"""End to end with the real deid step: the example recipe and CMB-Clin case 42 publish no identifiers."""
from __future__ import annotations

import json
import re
from pathlib import Path

from medcurate.build import build
from medcurate.recipe import load_recipe
from medcurate.store import load_rows
from tests.conftest import run_medcurate, shared_path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "data" / "ehr_sample.jsonl"
TEXT_COLUMNS = ("input", "chief_complaint", "present_illness", "past_history", "physical_exam", "auxiliary_exam")


def published_text(ref, store) -> str:
    return "\n".join(str(row.get(column) or "") for rows in load_rows(ref, store=store).values()
                     for row in rows for column in TEXT_COLUMNS)


def test_example_recipe_publishes_no_fake_identifiers(store):
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    names = {re.match(r"患者(\w{2,3}?)，", r["现病史"]).group(1) for r in records}
    result = build(load_recipe(REPO / "examples" / "recipes" / "ehr_pairs.yaml"), store=store)
    text = published_text(result.version.ref, store)
    assert result.manifest["counts"]["rows_written"] == 73
    assert not [name for name in names if name in text]
    assert not re.search(r"1[3-9]\d{9}", text)
    assert not re.search(r"2023-0\d-1\d", text)
    assert "主诉：" in text


def test_cmb_clin_case_42_loses_name_and_admission_date(store):
    shared_path("data", "cmb-clin", "CMB-test-qa.json")
    result = build(load_recipe(REPO / "examples" / "recipes" / "ehr_cmb_clin.yaml"), store=store)
    rows = [row for split in load_rows(result.version.ref, store=store).values() for row in split]
    assert len(rows) == 73 and result.manifest["counts"]["rejects"] == {"missing notes": 1}  # case 28: no record
    case = next(row for row in rows if row["case_id"] == "42")
    assert "陆桂华" not in case["input"] and "2016-07-28" not in case["input"]
    assert case["diagnosis"] == "手外伤及断肢（指）再植" and case["department"] == ""
    assert next(row for row in rows if row["case_id"] == "0")["diagnosis"] == "嵌顿性腹股沟斜疝合并肠梗阻"


def test_ehr_pairs_command(store):
    result = run_medcurate("ehr", "pairs", str(SAMPLE), "--name", "ehr-cli", "--store", str(store))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("ehr-cli@")
