"""Policies (mask, redact, surrogate), per-patient consistency and date shifting, the recipe step and the gate."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from medcurate.build import build
from medcurate.deid.engine import Deidentifier
from medcurate.deid.gate import require_deidentified
from medcurate.errors import MedcurateError
from medcurate.recipe import recipe_from_dict

TEXT = "患者林志强，男，67岁，住院号：ZY2023001，于2023-03-05入院，2023-03-19出院，联系电话：13812345678。"
SECRET = "hospital-held-secret"


def test_mask_and_redact():
    assert Deidentifier("mask").deidentify(TEXT).text == \
        "患者[PERSON]，男，67岁，住院号：[MEDICAL_RECORD_NO]，于[DATE]入院，[DATE]出院，联系电话：[PHONE]。"
    assert Deidentifier("redact").deidentify(TEXT).text == "患者，男，67岁，住院号：，于入院，出院，联系电话：。"


def test_per_type_policy():
    text = Deidentifier({"default": "mask", "DATE": "redact"}).deidentify(TEXT).text
    assert "[PERSON]" in text and "[DATE]" not in text and "2023" not in text


def test_surrogates_need_a_secret(monkeypatch):
    monkeypatch.delenv("MEDCURATE_DEID_SECRET", raising=False)
    with pytest.raises(MedcurateError, match="needs a secret"):
        Deidentifier("surrogate")


def test_surrogates_are_consistent_per_patient_and_keep_intervals():
    deid = Deidentifier("surrogate", secret=SECRET)
    first = deid.deidentify(TEXT, patient="p1")
    again = deid.deidentify("复诊：患者林志强，联系电话：13812345678。", patient="p1")
    other = deid.deidentify(TEXT, patient="p2")
    assert "林志强" not in first.text and "13812345678" not in first.text and "ZY2023001" not in first.text
    name = first.text[2:first.text.index("，")]
    assert name in again.text and re.search(r"1[3-9]\d{9}", first.text).group() in again.text
    assert first.text != other.text
    dates = [dt.date.fromisoformat(d) for d in re.findall(r"\d{4}-\d{2}-\d{2}", first.text)]
    assert len(dates) == 2 and (dates[1] - dates[0]).days == 14 and dates[0] != dt.date(2023, 3, 5)
    assert Deidentifier("surrogate", secret="another-secret").deidentify(TEXT, patient="p1").text != first.text


def test_spans_are_offsets_into_the_original_text():
    result = Deidentifier("mask").deidentify(TEXT)
    assert [(TEXT[s.start:s.end], s.type) for s in result.spans] == [
        ("林志强", "PERSON"), ("ZY2023001", "MEDICAL_RECORD_NO"), ("2023-03-05", "DATE"), ("2023-03-19", "DATE"),
        ("13812345678", "PHONE")]


def _records(tmp_path):
    data = tmp_path / "notes.jsonl"
    rows = [{"patient_id": "p1", "姓名": "林志强", "note": TEXT},
            {"patient_id": "p2", "姓名": "周敏", "note": "患者周敏，女，45岁，身份证号：110101198003071234。主诉：头痛3天。"}]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return data


def test_deid_step_stamps_rows_and_keeps_identifiers_out_of_the_version(tmp_path):
    recipe = recipe_from_dict({
        "name": "notes", "kind": "instruction",
        "sources": [{"name": "notes", "path": str(_records(tmp_path)),
                     "options": {"defaults": {"instruction": "总结病历", "query": "", "answer": "略", "task": "summary"}}}],
        "steps": [{"deid": {"fields": ["note"], "policy": "mask", "patient_field": "patient_id", "drop_fields": ["姓名"]}}],
    })
    version = build(recipe, store=tmp_path / "store").version
    published = "".join(p.read_text(encoding="utf-8", errors="ignore") for p in version.path.rglob("*") if p.is_file() and p.suffix != ".parquet")
    import pyarrow.parquet as pq

    rows = pq.read_table(version.path / "data" / "train.parquet").to_pylist()
    for secret in ("林志强", "周敏", "13812345678", "110101198003071234", "ZY2023001"):
        assert secret not in published
        assert all(secret not in json.dumps(row, ensure_ascii=False) for row in rows)
    assert all("姓名" not in row for row in rows)
    assert all(require_deidentified(row, ["note"]) is None for row in rows)
    stats = version.manifest["stats"]["deid"]
    assert stats["identifiers_by_type"]["PERSON"] == 2 and stats["identifiers_by_type"]["STRUCTURED_FIELD_DROPPED"] == 2


def test_gate_refuses_rows_never_deidentified_or_edited_after():
    row = {"note": TEXT}
    assert require_deidentified(row, ["note"]).startswith("not de-identified: no deid step")
    from medcurate.deid.gate import mark_deidentified

    row["note"] = Deidentifier("mask").deidentify(TEXT).text
    mark_deidentified(row, ["note"], "mask")
    assert require_deidentified(row, ["note"]) is None
    row["note"] += "林志强"
    assert "changed after the deid step" in require_deidentified(row, ["note"])


def test_unknown_policy_is_a_clear_error():
    with pytest.raises(MedcurateError, match="unknown policy 'blur'"):
        Deidentifier("blur")
    with pytest.raises(MedcurateError, match="unknown identifier type 'NAME'"):
        Deidentifier({"NAME": "mask"})
