"""The CLI exactly as the issue writes it, on JSONL and CSV; real data when ../shared is present."""
from __future__ import annotations

import json

from conftest import REPO, run_medcurate, shared_path

from medcurate.deid.engine import Deidentifier

SAMPLE = [
    {"id": "a", "text": "姓名：欧阳秀英  性别：女  出生日期：1948年7月2日  门诊号：MZ0098123\n主诉：反复咳嗽3年。"},
    {"id": "b", "text": "2小时前出现胸痛，心电图示ST段抬高，予阿司匹林300mg嚼服。血压150/95mmHg。"},
    {"id": "c", "text": "家属吕红梅（女儿）陪同，联系方式0571-88776655，邮箱lvhm@163.com，家住浙江省宁波市鄞州区天童南路588号。"},
]


def _write(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in SAMPLE), encoding="utf-8")
    return path


def test_deid_command_as_written(tmp_path):
    source = _write(tmp_path)
    out, spans, report = tmp_path / "out.jsonl", tmp_path / "spans.jsonl", tmp_path / "report.json"
    result = run_medcurate("deid", str(source), "--field", "text", "--id-field", "id", "--policy", "mask",
                           "--out", str(out), "--spans", str(spans), "--report", str(report))
    assert result.returncode == 0, result.stderr
    outputs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [o["id"] for o in outputs] == ["a", "b", "c"]
    assert outputs[1]["text"] == SAMPLE[1]["text"]
    for secret in ("欧阳秀英", "1948年7月2日", "MZ0098123", "吕红梅", "0571-88776655", "lvhm@163.com", "天童南路588号"):
        assert secret not in out.read_text(encoding="utf-8")
        assert secret not in report.read_text(encoding="utf-8") and secret not in result.stderr + result.stdout
    span_lines = [json.loads(line) for line in spans.read_text(encoding="utf-8").splitlines()]
    assert span_lines[1] == {"id": "b", "spans": []}
    for record, line in zip(SAMPLE, span_lines, strict=True):
        for span in line["spans"]:
            assert set(span) == {"start", "end", "type", "score"}
            assert record["text"][span["start"]:span["end"]].strip()
    assert {s["type"] for s in span_lines[2]["spans"]} == {"PERSON", "PHONE", "EMAIL", "ADDRESS"}
    counts = json.loads(report.read_text())["identifiers_by_type"]
    assert counts == {"ADDRESS": 1, "DATE": 1, "EMAIL": 1, "MEDICAL_RECORD_NO": 1, "PERSON": 2, "PHONE": 1}
    checked = run_medcurate("deid", "check", str(out), "--field", "text")
    assert checked.returncode == 0, checked.stdout
    leaked = run_medcurate("deid", "check", str(source), "--field", "text")
    assert leaked.returncode == 1 and "PERSON" in leaked.stdout and "欧阳秀英" not in leaked.stdout


def test_csv_input_with_gbk(tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes("id,text\r\n1,患者黄志刚，男，52岁，手机13698765432。\r\n".encode("gbk"))
    out = tmp_path / "o.jsonl"
    run_medcurate("deid", str(source), "--field", "text", "--encoding", "gbk", "--out", str(out), "--spans",
                  str(tmp_path / "s.jsonl"), "--report", str(tmp_path / "r.json"), check=True)
    assert json.loads(out.read_text(encoding="utf-8"))["text"] == "患者[PERSON]，男，52岁，手机[PHONE]。"


def test_real_cmb_clin_case_42_is_caught():
    cases = json.loads(shared_path("data", "cmb-clin", "CMB-test-qa.json").read_text(encoding="utf-8"))
    case = next(c for c in cases if c["id"] == "42")
    text = Deidentifier("mask").deidentify(case["description"]).text
    assert "陆桂华" not in text and "2016-07-28" not in text
    assert "[PERSON]" in text and "[DATE]" in text
    untouched = [c for c in cases if c["id"] != "42"][:20]
    changed = sum(Deidentifier("mask").deidentify(c["description"]).text != c["description"] for c in untouched)
    assert changed <= 2


def test_dev_bench_targets_hold():
    import importlib.util

    bench = shared_path("bench", "deid-dev.jsonl")
    spec = importlib.util.spec_from_file_location("deid_bench", REPO / "benchmarks" / "deid_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    records = [json.loads(line) for line in bench.read_text(encoding="utf-8").splitlines() if line.strip()]
    report = module.evaluate(records, Deidentifier("mask"))
    assert report["entity_recall"] >= 0.995
    assert all(report["per_type"][t]["recall"] == 1.0 for t in ("ID_CARD", "PHONE", "EMAIL"))
    assert report["char_precision"] >= 0.97 and report["leaks"] == 0 and report["clean_changed"] == 0
