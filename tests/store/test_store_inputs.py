"""Reading real-world inputs and failing clearly on bad ones: one line naming file, line and field."""
from __future__ import annotations

import codecs
import json

import pytest
from conftest import run_medcurate, shared_path

from medcurate.build import build
from medcurate.errors import MedcurateError
from medcurate.readers import Malformed, RawRecord, iter_records
from medcurate.recipe import recipe_from_dict


def _recipe(tmp_path, body: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_gbk_csv_with_crlf_reads_with_declared_encoding(tmp_path):
    data = tmp_path / "d.csv"
    data.write_bytes("科室,问题\r\n心内科,高血压能喝咖啡吗？\r\n儿科,\"发烧\r\n怎么办\"\r\n".encode("gbk"))
    records = list(iter_records(data, "csv", "gbk"))
    assert records == [RawRecord(2, {"科室": "心内科", "问题": "高血压能喝咖啡吗？"}),
                       RawRecord(3, {"科室": "儿科", "问题": "发烧\r\n怎么办"})]


def test_gbk_file_without_encoding_fails_naming_file_and_line(tmp_path):
    data = tmp_path / "d.csv"
    data.write_bytes("科室,问题\n心内科,头晕\n".encode("gbk"))
    with pytest.raises(MedcurateError) as error:
        list(iter_records(data, "csv"))
    assert str(error.value).startswith(f"{data}:1: bytes are not valid utf-8")
    assert "gb18030" in str(error.value)
    assert [r.data for r in iter_records(data, "csv", "auto")] == [{"科室": "心内科", "问题": "头晕"}]


def test_utf8_bom_is_detected_in_jsonl_and_csv(tmp_path):
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(codecs.BOM_UTF8 + '{"a": "甲"}\n{"a": "乙"}\n'.encode())
    assert [r.data["a"] for r in iter_records(jsonl)] == ["甲", "乙"]
    csv_file = tmp_path / "bom.csv"
    csv_file.write_bytes(codecs.BOM_UTF8 + "name,value\n甲,1\n".encode())
    assert list(iter_records(csv_file))[0].data == {"name": "甲", "value": "1"}


def test_pretty_printed_json_array_keeps_each_records_line(tmp_path):
    data = tmp_path / "a.json"
    data.write_text(json.dumps([{"t": "一"}, {"t": "二"}, 3], ensure_ascii=False, indent=2), encoding="utf-8")
    items = list(iter_records(data))
    assert [(type(i).__name__, i.line) for i in items] == [("RawRecord", 2), ("RawRecord", 5), ("Malformed", 8)]


def test_malformed_lines_and_rows_become_rejects_with_location(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("instruction,answer,task,query\n问1,答1,qa,\n问2,答2\n问3,答3,qa,,extra\n", encoding="utf-8")
    result = build(recipe_from_dict({"name": "x", "kind": "instruction",
                                     "sources": [{"name": "d", "path": str(data)}]}), store=tmp_path / "s")
    rejects = [json.loads(l) for l in (result.version.path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == [(3, "wrong field count: expected 4, got 2"),
                                                           (4, "wrong field count: expected 4, got 5")]
    assert result.manifest["counts"]["splits"] == {"train": 1}


@pytest.mark.parametrize("body, expected", [
    ("kind: instruction\nsources: [{path: a.jsonl}]\n", "recipe.yaml:name: missing required key"),
    ("name: x\nkind: instruction\n", "recipe.yaml:sources: missing required key"),
    ("name: x\nkind: recipe\nsources: [{path: a.jsonl}]\n", "recipe.yaml:kind: unknown row kind 'recipe'"),
    ("name: x\nkind: instruction\nsources: [{path: a.jsonl}]\nsteps: [no_such_step]\n",
     "recipe.yaml:steps[0]: unknown step 'no_such_step'"),
    ("name: x\nkind: instruction\nsources: [{path: a.jsonl, format: nope}]\n",
     "recipe.yaml:sources[0].format: unknown source format 'nope'"),
    ("name: x\nkind: instruction\nsources: [{path: a.jsonl}]\nsplits: {tset: 3}\n", "recipe.yaml:splits.tset: unknown key"),
    ("name: x\n\tkind: instruction\n", "recipe.yaml:2: invalid YAML"),
])
def test_recipe_mistakes_give_one_line_errors(tmp_path, body, expected):
    result = run_medcurate("build", str(_recipe(tmp_path, body)), "--store", str(tmp_path / "s"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert expected in result.stderr


@pytest.mark.parametrize("content, expected", [
    (None, "a.jsonl:sources.a.path: source file not found"),
    (b"", "a.jsonl: file is empty"),
    (b"  \n\n", "a.jsonl: file is empty"),
    ("{\"instruction\": \"患者头痛三天，伴有发热\"}\n".encode("gb18030"), "a.jsonl:1: bytes are not valid utf-8"),
])
def test_unreadable_empty_and_wrongly_encoded_files(tmp_path, content, expected):
    if content is not None:
        (tmp_path / "a.jsonl").write_bytes(content)
    recipe = _recipe(tmp_path, "name: x\nkind: instruction\nsources: [{path: a.jsonl}]\n")
    result = run_medcurate("build", str(recipe), "--store", str(tmp_path / "s"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert expected in result.stderr


def test_schema_problems_are_rejects_naming_the_field(tmp_path):
    data = tmp_path / "a.jsonl"
    data.write_text('{"instruction": "问", "answer": "", "task": "qa", "query": ""}\n'
                    '{"instruction": "问", "answer": "答", "query": ""}\n'
                    '{"instruction": "问", "answer": "答", "task": "qa", "query": ""}\n', encoding="utf-8")
    result = build(recipe_from_dict({"name": "x", "kind": "instruction", "sources": [{"path": str(data)}]}),
                   store=tmp_path / "s")
    rejects = [json.loads(l) for l in (result.version.path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["field"], r["reason"]) for r in rejects] == [(1, "answer", "schema: answer empty"),
                                                                        (2, "task", "schema: task missing")]


def test_real_gbk_source_reads(tmp_path):
    path = shared_path("data", "toyhom-chinese-medical-dialogue", "样例_内科5000-6000.csv")
    records = list(iter_records(path, "csv", "gbk"))
    good = [r for r in records if isinstance(r, RawRecord)]
    assert len(records) == 6000 and len(good) == 6000
    assert set(good[0].data) == {"department", "title", "ask", "answer"}
    assert good[0].data["department"] == "心血管科"


def test_real_gb18030_kg_reads_with_its_declared_encoding():
    path = shared_path("data", "39health-kg", "data", "disease.csv")
    records = list(iter_records(path, "csv", "gb18030"))
    assert len(records) == 12000
    assert not [r for r in records if isinstance(r, Malformed)]
    assert records[0].data["name"] and "" not in records[0].data
