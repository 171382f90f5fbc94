"""The mix step: part sizes, single:multi-turn balance, instruction -> messages, the mixture in the manifest."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from medcurate.build import build
from medcurate.errors import MedcurateError
from medcurate.mixing.steps import part_sizes, user_turns
from medcurate.recipe import recipe_from_dict
from medcurate.store import load_rows
from tests.conftest import shared_path

REPO = Path(__file__).resolve().parents[2]
GENERAL = REPO / "examples" / "data" / "mix_general_sample.jsonl"


def test_part_sizes_counts_and_ratios():
    available = {"a": 100, "b": 30, "c": 500}
    assert part_sizes(available, {"a": {"ratio": 2}, "b": {"ratio": 1}}, None) == {"a": 60, "b": 30}
    assert part_sizes(available, {"a": {"ratio": 1}, "c": {"count": 20}}, 70) == {"c": 20, "a": 50}
    assert part_sizes(available, {"b": {"count": 50}}, None) == {"b": 30}
    assert part_sizes(available, {"a": {"ratio": 1}, "c": {"ratio": 1}}, 400) == {"a": 100, "c": 200}


def write_instructions(path: Path, count: int) -> None:
    path.write_text("".join(json.dumps({"instruction": f"问题{i}", "query": "", "answer": f"回答{i}", "task": "demo"},
                                       ensure_ascii=False) + "\n" for i in range(count)), encoding="utf-8")


def mix_recipe(sources, mix, seed=0):
    return recipe_from_dict({"name": "mix-test", "kind": "conversation", "seed": seed, "sources": sources,
                             "steps": [{"mix": mix}]}, base_dir=REPO)


def test_instruction_rows_become_messages_and_counts_add_up(tmp_path, store):
    medical = tmp_path / "medical.jsonl"
    write_instructions(medical, 40)
    sources = [{"name": "medical", "path": str(medical), "format": "jsonl"},
               {"name": "general", "path": str(GENERAL), "format": "jsonl"}]
    result = build(mix_recipe(sources, {"parts": {"medical": {"ratio": 3}, "general": {"ratio": 1}},
                                        "system": "你是医生助手。"}), store=store)
    rows = load_rows(result.version.ref, store=store)["train"]
    assert Counter(row["mix_part"] for row in rows) == {"medical": 36, "general": 12}
    assert rows[0]["messages"][0] == {"role": "system", "content": "你是医生助手。"}
    assert [m["role"] for m in rows[0]["messages"]] == ["system", "user", "assistant"]
    mixture = result.manifest["stats"]["mixture"]
    assert mixture["parts"]["medical"] == {"requested": {"ratio": 3}, "available": 40, "after_turn_balance": 40,
                                           "sampled": 36, "taken": 36, "share": 0.75, "single_turn": 36, "multi_turn": 0}
    assert result.manifest["counts"]["filtered"] == {"mixed_out:medical": 4}
    assert "## Mixture" in (result.version.path / "README.md").read_text(encoding="utf-8")


def test_unknown_part_is_a_clear_error(tmp_path, store):
    with pytest.raises(MedcurateError, match="part 'dialogue' has no rows"):
        build(mix_recipe([{"name": "general", "path": str(GENERAL), "format": "jsonl"}],
                         {"parts": {"dialogue": {"count": 3}}}), store=store)


def test_real_dialogues_single_multi_balance_and_general_slice(store):
    zhongjing = shared_path("data", "cmtmedqa-zhongjing", "CMtMedQA_test.json")
    toyhom = shared_path("data", "toyhom-chinese-medical-dialogue", "样例_内科5000-6000.csv")
    sources = [{"name": "zhongjing", "path": str(zhongjing), "format": "cmtmedqa"},
               {"name": "toyhom", "path": str(toyhom), "format": "toyhom"},
               {"name": "general", "path": str(GENERAL), "format": "jsonl"}]
    mix = {"parts": {"zhongjing": {"ratio": 1}, "toyhom": {"ratio": 1}, "general": {"count": 12}},
           "turns": {"single": 1, "multi": 1, "parts": ["zhongjing", "toyhom"]}}
    result = build(mix_recipe(sources, mix), store=store)
    counts = result.manifest["counts"]
    assert counts["inputs_read"] == 1144 + 6000 + 12 and not counts["rejects"]
    rows = load_rows(result.version.ref, store=store)["train"]
    dialogue = [row for row in rows if row["mix_part"] != "general"]
    single = sum(1 for row in dialogue if user_turns(row) == 1)
    multi = len(dialogue) - single
    assert single == multi and 900 <= multi <= 974
    parts = result.manifest["stats"]["mixture"]["parts"]
    assert parts["toyhom"]["available"] == 6000 and parts["toyhom"]["after_turn_balance"] < 974
    assert parts["toyhom"]["taken"] + parts["zhongjing"]["taken"] == single + multi
    assert sum(1 for row in rows if row["mix_part"] == "general") == 12
    toyhom_rows = [row for row in rows if row["mix_part"] == "toyhom"]
    assert {row["department"] for row in toyhom_rows} <= {"肝病科", "心血管科", "神经科", "消化科", "内分泌科", "呼吸科",
                                                          "肾内科", "感染科", "普通内科", "风湿免疫科", "血液科"}
    assert any("高血压" in row["messages"][0]["content"] for row in toyhom_rows)
    safety = [row for row in rows if row.get("subset") == "safety"]
    assert all(not row["messages"][0]["content"].startswith(" ") for row in safety)
    again = build(mix_recipe(sources, mix), store=store)
    assert again.version.version == result.version.version


def write_dialogues(path: Path, single: int, multi: int, system: str | None = None) -> None:
    """Conversation rows shaped like Zhongjing's (multi-turn) and Toyhom's (single-turn) dialogues."""
    rows = []
    for i in range(single + multi):
        turns = 1 if i < single else 3
        messages = [{"role": "system", "content": system}] if system else []
        for t in range(turns):
            messages += [{"role": "user", "content": f"患者问题{i}-{t}"}, {"role": "assistant", "content": f"医生回答{i}-{t}"}]
        rows.append({"messages": messages})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_requested_shares_are_hit_after_turn_balancing(tmp_path, store):
    write_dialogues(tmp_path / "zhongjing.jsonl", single=5, multi=30)
    write_dialogues(tmp_path / "toyhom.jsonl", single=40, multi=0)
    write_instructions(tmp_path / "medical.jsonl", 50)
    sources = [{"name": n, "path": str(tmp_path / f"{n}.jsonl"), "format": "jsonl"} for n in ("zhongjing", "toyhom", "medical")]
    mix = {"parts": {"zhongjing": {"ratio": 1}, "toyhom": {"ratio": 1}, "medical": {"ratio": 2}},
           "turns": {"single": 1, "multi": 1, "parts": ["zhongjing", "toyhom"]}}
    result = build(mix_recipe(sources, mix), store=store)
    mixture = result.manifest["stats"]["mixture"]
    assert {name: info["share"] for name, info in mixture["parts"].items()} == \
        {"zhongjing": 0.25, "toyhom": 0.25, "medical": 0.5}
    achieved = mixture["turns_achieved"]
    assert achieved["single_turn"] == achieved["multi_turn"] > 0 and achieved["scope"] == ["toyhom", "zhongjing"]
    assert "achieved 25:25" in (result.version.path / "README.md").read_text(encoding="utf-8")


def test_turn_ratio_over_the_whole_mixture(tmp_path, store):
    write_dialogues(tmp_path / "zhongjing.jsonl", single=0, multi=30)
    write_instructions(tmp_path / "medical.jsonl", 50)
    sources = [{"name": n, "path": str(tmp_path / f"{n}.jsonl"), "format": "jsonl"} for n in ("zhongjing", "medical")]
    mix = {"parts": {"zhongjing": {"ratio": 1}, "medical": {"ratio": 1}}, "turns": {"single": 1, "multi": 1, "scope": "mixture"}}
    result = build(mix_recipe(sources, mix), store=store)
    rows = load_rows(result.version.ref, store=store)["train"]
    single = sum(1 for row in rows if user_turns(row) == 1)
    assert single == len(rows) - single == 30
    assert result.manifest["stats"]["mixture"]["turns_achieved"]["single_share"] == 0.5
    with pytest.raises(MedcurateError, match="not both"):
        build(mix_recipe(sources, {**mix, "turns": {"scope": "mixture", "parts": ["medical"]}}), store=store)


def test_system_prompt_rule_every_row_unless_it_has_its_own(tmp_path, store):
    write_dialogues(tmp_path / "own.jsonl", single=3, multi=0, system="你是儿科医生。")
    write_dialogues(tmp_path / "plain.jsonl", single=3, multi=0)
    write_instructions(tmp_path / "medical.jsonl", 3)
    sources = [{"name": n, "path": str(tmp_path / f"{n}.jsonl"), "format": "jsonl"} for n in ("own", "plain", "medical")]
    mix = {"parts": {"own": {"count": 3}, "plain": {"count": 3}, "medical": {"count": 3}}, "system": "你是医生助手。"}
    rows = load_rows(build(mix_recipe(sources, mix), store=store).version.ref, store=store)["train"]
    systems = Counter((row["mix_part"], row["messages"][0]["content"]) for row in rows if row["messages"][0]["role"] == "system")
    assert systems == {("own", "你是儿科医生。"): 3, ("plain", "你是医生助手。"): 3, ("medical", "你是医生助手。"): 3}
    assert all(sum(m["role"] == "system" for m in row["messages"]) == 1 for row in rows)


@pytest.mark.parametrize("turns", [{"single": 1, "multi": 1, "parts": ["zhongjing", "toyhom"]}, None],
                         ids=["turn-balance", "ratios-only"])
def test_mix_streamed_in_batches_equals_the_whole_pass(tmp_path, monkeypatch, turns):
    """The streaming build draws the same samples and shuffle over row positions and gives the
    taken rows back from bucket files in the shuffled order: same rows, order, card and version."""
    monkeypatch.setattr("medcurate.mixing.steps._BoundedMix.BUCKET_ROWS", 7)
    write_dialogues(tmp_path / "zhongjing.jsonl", single=9, multi=31, system="你是医生。")
    write_dialogues(tmp_path / "toyhom.jsonl", single=45, multi=2)
    write_instructions(tmp_path / "medical.jsonl", 60)
    sources = [{"name": n, "path": str(tmp_path / f"{n}.jsonl"), "format": "jsonl"} for n in ("zhongjing", "toyhom", "medical")]
    sources.append({"name": "general", "path": str(GENERAL), "format": "jsonl"})
    mix = {"parts": {"zhongjing": {"ratio": 1}, "toyhom": {"ratio": 1}, "medical": {"ratio": 2}, "general": {"count": 3}},
           "system": "你是一名专业的医生助手。", **({"turns": turns} if turns else {})}
    streamed = build(mix_recipe(sources, mix), store=tmp_path / "a", batch_size=6)
    whole = build(mix_recipe(sources, mix), store=tmp_path / "b", engine="memory")
    assert streamed.version.version == whole.version.version
    assert streamed.manifest["counts"] == whole.manifest["counts"]
    assert streamed.manifest["stats"]["mixture"] == whole.manifest["stats"]["mixture"]
    assert streamed.manifest["counts"]["rows_written"] > 3 * 7   # the taken rows span several buckets
    rows = load_rows(streamed.version.ref, store=tmp_path / "a")["train"]
    assert rows == load_rows(whole.version.ref, store=tmp_path / "b")["train"]
