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
            assert set(span) == {"start", "end", "type", "score", "field"} and span["field"] == "text"
            assert record["text"][span["start"]:span["end"]].strip()
    assert {s["type"] for s in span_lines[2]["spans"]} == {"PERSON", "PHONE", "EMAIL", "ADDRESS"}
    counts = json.loads(report.read_text())["identifiers_by_type"]
    assert counts == {"ADDRESS": 1, "DATE": 1, "EMAIL": 1, "MEDICAL_RECORD_NO": 1, "PERSON": 2, "PHONE": 1}
    checked = run_medcurate("deid", "check", str(out), "--field", "text")
    assert checked.returncode == 0, checked.stdout
    leaked = run_medcurate("deid", "check", str(source), "--field", "text")
    assert leaked.returncode == 1 and "PERSON" in leaked.stdout and "欧阳秀英" not in leaked.stdout


EXTRA_COLUMNS = [
    {"id": "r1", "姓名": "欧阳秀英", "联系电话": "13812345678", "病案号": "ZY0012345", "note": "于2016-10-29；11：12入院",
     "remark": "家属吕红梅签字同意。", "items": ["电话13698765432"], "template": "T-01"},
    {"id": "r2", "姓名": "柴雪", "联系电话": "13912345678", "病案号": "ZY0012399", "note": "2周后复诊", "remark": "",
     "items": [], "template": "T-02"},
]


def _run(tmp_path, rows, *flags, name="x"):
    source = tmp_path / f"{name}.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out, spans, report = (tmp_path / f"{name}-{part}" for part in ("out.jsonl", "spans.jsonl", "report.json"))
    result = run_medcurate("deid", str(source), *flags, "--out", str(out), "--spans", str(spans), "--report", str(report))
    return result, out, spans, report


def test_every_column_is_scanned_identifier_columns_dropped_or_pseudonymised(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDCURATE_DEID_SECRET", "hospital-held-secret")
    result, out, spans, report = _run(tmp_path, EXTRA_COLUMNS, "--passthrough", "template")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    text = out.read_text(encoding="utf-8") + spans.read_text(encoding="utf-8") + report.read_text(encoding="utf-8")
    for value in ("欧阳秀英", "13812345678", "ZY0012345", "2016-10-29", "吕红梅", "13698765432", "柴雪"):
        assert value not in text + result.stdout + result.stderr
    assert "姓名" not in rows[0] and "联系电话" not in rows[0]
    assert rows[0]["病案号"].startswith("pt-") and rows[0]["病案号"] != rows[1]["病案号"]
    assert rows[0]["note"] == "于[DATE]入院" and rows[0]["remark"] == "家属[PERSON]签字同意。"
    assert rows[0]["items"] == ["电话[PHONE]"] and rows[1]["note"] == "2周后复诊"
    assert rows[0]["template"] == "T-01"
    summary = json.loads(report.read_text(encoding="utf-8"))
    assert summary["columns_passthrough"] == ["template"] and summary["columns_pseudonymised"] == ["病案号"]
    assert summary["columns_dropped"] == ["姓名", "联系电话"] and summary["stable_pseudonyms"] is True
    again = _run(tmp_path, EXTRA_COLUMNS, "--passthrough", "template", name="again")[1]
    assert again.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")  # same secret, same pseudonyms


def test_workers_give_identical_output(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDCURATE_DEID_SECRET", "hospital-held-secret")
    rows = [dict(record, id=f"{record['id']}-{copy}") for copy in range(300) for record in EXTRA_COLUMNS + SAMPLE]
    one = _run(tmp_path, rows, name="one")
    three = _run(tmp_path, rows, "--workers", "3", name="three")
    assert one[0].returncode == 0 and three[0].returncode == 0, three[0].stderr
    assert one[1].read_bytes() == three[1].read_bytes() and one[2].read_bytes() == three[2].read_bytes()


def test_check_fails_on_a_leftover_date_time_naming_ids_and_types_only(tmp_path):
    path = tmp_path / "left.jsonl"
    rows = [{"id": "ok", "text": "于[DATE]入院，2周后复诊，T 36.5℃。"}, {"id": "bad", "text": "于2016-10-29；11：12入院"},
            {"id": "bad2", "text": "其女宋娜陪同就诊，宽城县某某村人。"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    checked = run_medcurate("deid", "check", str(path))
    assert checked.returncode == 1
    assert "id=bad " in checked.stdout and "DATE" in checked.stdout and "id=ok " not in checked.stdout
    assert "id=bad2" in checked.stdout and "PERSON" in checked.stdout and "ADDRESS" in checked.stdout
    for value in ("2016-10-29", "宋娜", "宽城县"):
        assert value not in checked.stdout + checked.stderr


def test_bad_flags_are_one_line_errors_naming_the_flag(tmp_path, monkeypatch):
    monkeypatch.delenv("MEDCURATE_DEID_SECRET", raising=False)
    for flags, flag in ((("--policy", "blur"), "--policy"), (("--threshold", "5"), "--threshold"),
                        (("--policy", "surrogate"), "--secret-env")):
        result = _run(tmp_path, EXTRA_COLUMNS, *flags, name="bad")[0]
        assert result.returncode != 0 and flag in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "欧阳秀英" not in result.stderr


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
    assert report["char_precision"] >= 0.97 and report["leaks"] == 0
    # The Safe Harbor default masks treatment-course dates, which deid-dev's gold (an older view) leaves
    # unlabelled in a few "identifier-free" records; nothing else may change there.
    assert set(report["clean_changed_types"]) <= {"DATE"}


def test_notes_bench_targets_hold_on_both_halves():
    import importlib.util

    bench = shared_path("bench", "deid-notes-dev.jsonl")
    spec = importlib.util.spec_from_file_location("deid_bench", REPO / "benchmarks" / "deid_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    records = [json.loads(line) for line in bench.read_text(encoding="utf-8").splitlines() if line.strip()]
    for half in (0, 1):
        report = module.evaluate([r for r in records if module._half(r) == half], Deidentifier("mask"))
        assert all(module.target_verdicts(report).values()), module.target_verdicts(report)
