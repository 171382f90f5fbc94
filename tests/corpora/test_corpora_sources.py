"""The corpora readers on samples written in each corpus's published layout (examples/data)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcurate.build import build
from medcurate.recipe import recipe_from_dict
from medcurate.store import load_rows

DATA = Path(__file__).resolve().parents[2] / "examples" / "data"


def _build(store, fmt: str, path: Path, kind: str = "instruction", **options):
    recipe = recipe_from_dict({"name": f"c-{fmt.replace('_', '-')}", "kind": kind, "seed": 3,
                               "sources": [{"name": fmt, "path": str(path), "format": fmt, "options": options}],
                               "splits": {"seed": 0, "validation": 0, "test": 0}}, base_dir=DATA)
    result = build(recipe, store=store)
    rows = load_rows(result.version, store)["train"]
    rejects = [json.loads(line) for line in (result.version.path / "rejects.jsonl").read_text().splitlines() if line]
    return result.manifest, rows, rejects


def test_cmedqa2_one_seeded_answer_per_question_of_the_split(store):
    manifest, rows, rejects = _build(store, "cmedqa2", DATA / "cmedqa2")
    assert sorted(row["question_id"] for row in rows) == ["10001", "10002"]  # train split only
    assert manifest["counts"]["filtered"] == {"other_answer": 1, "other_split": 1}
    assert [(r["file"], r["line"], r["reason"]) for r in rejects] == [("answer.csv", 6, "unknown question_id")]
    _, again, _ = _build(store, "cmedqa2", DATA / "cmedqa2")
    assert [r["answer_id"] for r in rows] == [r["answer_id"] for r in again]
    _, test_rows, _ = _build(store, "cmedqa2", DATA / "cmedqa2", split="test", answers="all")
    assert [r["question_id"] for r in test_rows] == ["10003"]


@pytest.mark.parametrize("fmt, path", [("meddialog_zh", "meddialog_zh_sample.txt"), ("meddialog_zh_json", "meddialog_zh_sample.json")])
def test_meddialog_raw_and_preprocessed(store, fmt, path):
    manifest, rows, rejects = _build(store, fmt, DATA / path, kind="conversation")
    assert len(rows) == 2 - (fmt == "meddialog_zh") and len(rejects) == 1
    assert rejects[0]["reason"].startswith("empty dialogue")
    for row in rows:
        roles = [m["role"] for m in row["messages"]]
        assert roles[0] == "user" and roles[-1] == "assistant"
    if fmt == "meddialog_zh":
        assert rows[0]["department"] == "呼吸内科" and len(rows[0]["messages"]) == 4  # trailing thanks left out
        assert rejects[0]["line"] == 27


def test_huatuo_chatmed_mcmle_safety_cmcqa(store):
    _, huatuo, rejects = _build(store, "huatuo26m", DATA / "huatuo26m_sample.jsonl")
    assert [r["instruction"] for r in huatuo] == ["高血压患者可以喝咖啡吗？", "什么是甲状腺结节？"] and len(rejects) == 1
    _, chatmed, _ = _build(store, "chatmed_consult", DATA / "chatmed_consult_sample.jsonl")
    assert len(chatmed) == 2 and all(r["generated_by"] == "chatgpt" for r in chatmed)
    _, mcq, rejects = _build(store, "mcmle", DATA / "mcmle_sample.jsonl")
    assert mcq[0]["answer"] == "答案：B. 急性前壁心肌梗死" and "E. 肺栓塞" in mcq[0]["query"]
    assert json.loads(mcq[0]["options"])["C"] == "急性心包炎" and mcq[1]["answer_idx"] == "C"
    assert [r["reason"] for r in rejects] == ["bad answer_idx: not one of the option letters"]
    manifest, safety, rejects = _build(store, "safety_prompts", DATA / "safety_prompts_sample.json")
    assert {r["safety_type"] for r in safety} == {"Unsafety_Instruction_Topic", "Mental_Health"} and len(rejects) == 1
    _, only, _ = _build(store, "safety_prompts", DATA / "safety_prompts_sample.json", types=["Mental_Health"])
    assert len(only) == 1
    _, cmcqa, _ = _build(store, "cmcqa", DATA / "cmcqa_sample.json", kind="conversation")
    assert [len(r["messages"]) for r in cmcqa] == [4, 2] and cmcqa[0]["department"] == "男科"


def test_readers_are_reusable_pure_functions():
    from medcurate.corpora.sources import dialogue_messages, huatuo_pair, mcmle_item

    assert huatuo_pair({"questions": [["问1", "问2"]], "answers": ["答"]}) == ("问1", "答")
    assert mcmle_item({"question": "Q", "options": {"A": "a", "B": "b"}, "answer": "b", "answer_idx": "B"})["answer_idx"] == "B"
    assert dialogue_messages([["assistant", "你好"], ["user", "咳嗽"], ["user", "三天"], ["assistant", "多喝水"]]) == [
        {"role": "user", "content": "咳嗽\n三天"}, {"role": "assistant", "content": "多喝水"}]
