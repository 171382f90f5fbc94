"""Evaluation sets as ordinary versions (readers for the published formats) and rows -> items."""
from __future__ import annotations

import json

import pytest

from medcurate.errors import MedcurateError
from medcurate.evaluate.items import load_items, row_to_item
from medcurate.store import load_rows, resolve
from tests.conftest import shared_path
from tests.evaluate.conftest import build_rows


def test_mcq_readers_give_instruction_rows_with_options_subject_and_letter(eval_world):
    store = eval_world["store"]
    rows = load_rows(eval_world["refs"]["mcq"], store, split="test")["test"]
    assert len(rows) == 7 and {r["subject"] for r in rows} == {"anatomy", "clinical_knowledge"}
    first = next(r for r in rows if r["instruction"] == "人体最大的器官是")
    assert first["options"] == ["心脏", "皮肤", "肝脏", "肺"] and first["answer"] == "B" and first["task"] == "mcq"
    mcmle = [r for r in load_rows(eval_world["refs"]["qa_sets"], store, split="test")["test"] if r["task"] == "mcq"]
    items = {item.group: item for item in (row_to_item(row, "instruction", 0) for row in mcmle)}
    assert items["循环系统"].gold == {"options": ["稳定型心绞痛", "急性胃炎", "肋间神经痛", "气胸", "胆囊炎"], "answer": "A"}
    assert len(items["泌尿系统"].gold["options"]) == 4 and items["消化系统"].reference == "B"
    assert items["循环系统"].messages[0]["content"].count("A. 稳定型心绞痛") == 1  # options listed once


def test_qa_and_dialogue_readers(eval_world):
    store = eval_world["store"]
    version = resolve(eval_world["refs"]["qa_sets"], store)
    rows = load_rows(version, store, split="test")["test"]
    tasks = sorted(r["task"] for r in rows)
    assert tasks.count("consultation_qa") == 8 and tasks.count("mcq") == 4
    paraphrased = next(r for r in rows if r["instruction"].startswith("小孩发烧"))
    assert paraphrased["answer"].startswith("体温38.5度以下")
    dialogues = load_rows(eval_world["refs"]["dialogue"], store, split="test")["test"]
    assert len(dialogues) == 3
    longest = max(dialogues, key=lambda r: len(r["messages"]))
    assert [m["role"] for m in longest["messages"]] == ["user", "assistant"] * 2


def test_bad_cmmlu_records_become_rejects_with_their_line(tmp_path):
    from medcurate.build import build
    from medcurate.recipe import recipe_from_dict

    (tmp_path / "anatomy.csv").write_text(",Question,A,B,C,D,Answer\n0,q,a,b,c,d,B\n1,q2,a,b,c,d,F\n2,,a,b,c,d,A\n",
                                          encoding="utf-8")
    recipe = recipe_from_dict({"name": "bad", "kind": "instruction", "sources": [
        {"name": "anatomy", "path": "anatomy.csv", "format": "cmmlu"}], "splits": {}}, base_dir=tmp_path)
    version = build(recipe, store=tmp_path / "store").version
    rejects = [json.loads(line) for line in (version.path / "rejects.jsonl").read_text().splitlines()]
    assert sorted((r["line"], r["field"]) for r in rejects) == [(3, "Answer"), (4, "Question")]


def test_real_cmmlu_medical_files_read_completely(tmp_path):
    from medcurate.build import build
    from medcurate.recipe import recipe_from_dict

    folder = shared_path("data", "cmmlu-medical", "test")
    sources = [{"name": p.stem, "path": str(p), "format": "cmmlu"} for p in sorted(folder.glob("*.csv"))]
    recipe = recipe_from_dict({"name": "cmmlu", "kind": "instruction", "sources": sources,
                               "splits": {"test": 1000000, "max_fraction": 1.0}}, base_dir=tmp_path)
    rows = load_rows(build(recipe, store=tmp_path / "store").version, tmp_path / "store", split="test")["test"]
    assert len(rows) == 1148 and len({r["subject"] for r in rows}) == 6


def test_rows_to_items_per_kind(eval_world):
    store = eval_world["store"]
    _, items = load_items(eval_world["refs"]["ehr"], store=store)
    assert {i.scorer for i in items} == {"diagnosis"} and {i.group for i in items} == {"内科", "外科"}
    _, items = load_items(eval_world["refs"]["dialogue"], store=store)
    assert all(i.scorer == "text" and i.messages[-1]["role"] == "user" for i in items)
    _, items = load_items(eval_world["refs"]["mcq"], store=store, limit=2)
    assert len(items) == 2 and items[0].scorer == "mcq" and "A. " in items[0].messages[0]["content"]
    cmedins = row_to_item({"id": "x", "instruction": "抽取", "query": "", "answer": "标准术语：高血压", "task": "cdn",
                           "gold": '{"terms": ["高血压"]}'}, "instruction", 0)
    assert cmedins.scorer == "cmedins" and cmedins.gold == {"task": "cdn", "gold": {"terms": ["高血压"]}}


@pytest.mark.parametrize(("ref_key", "message"), [
    ("no_test", "has no 'test' split"),
    ("preference", "preference rows have no single reference"),
])
def test_bad_versions_are_one_line_errors(eval_world, ref_key, message):
    with pytest.raises(MedcurateError, match=message):
        load_items(eval_world["refs"][ref_key], store=eval_world["store"])


def test_unknown_kind_and_unusable_rows_are_errors(tmp_path):
    with pytest.raises(MedcurateError, match="unknown row kind 'ranking'"):
        row_to_item({"id": "x"}, "ranking", 0)
    with pytest.raises(MedcurateError, match="needs its structured gold"):
        row_to_item({"id": "x", "instruction": "i", "answer": "a", "task": "ner"}, "instruction", 0)
    with pytest.raises(MedcurateError, match="answer must be an option letter"):
        row_to_item({"id": "x", "instruction": "i", "answer": "F", "task": "mcq", "options": ["a", "b"]},
                    "instruction", 0)
    ref = build_rows(tmp_path, tmp_path / "store", "empty-test", "instruction",
                     [{"instruction": "i", "query": "", "answer": "a", "task": "qa"}],
                     splits={"test": 0.0})
    with pytest.raises(MedcurateError, match="no 'test' split|is empty"):
        load_items(ref, store=tmp_path / "store")
