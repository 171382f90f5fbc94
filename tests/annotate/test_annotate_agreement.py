"""Agreement statistics, SPF ordering, config checks and the tie rule, against hand-computed values."""
from __future__ import annotations

import pytest

from medcurate.annotate.agreement import (
    agreement_summary,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha_nominal,
    raw_agreement,
    unanimous_share,
)
from medcurate.annotate.configs import KINDS, config_mismatch, config_signature, parse_result
from medcurate.annotate.sampling import near_duplicate_pairs, prompt_of, similarity
from medcurate.annotate.units import assign_annotators, plan_units
from medcurate.annotate.votes import describe_dispute, resolve_judgement, spf_winner, unsettled_judgements
from medcurate.errors import MedcurateError

# Safety votes of two annotators on six pairs (the same design the Label Studio test posts).
ALICE = ["A", "tie", "tie", "A", "tie", "tie"]
BOB = ["A", "tie", "tie", "B", "tie", "tie"]


def test_cohen_kappa_matches_hand_computation():
    # p_o = 5/6; p_e = (2*1 + 4*4) / 36 = 1/2; kappa = (5/6 - 1/2) / (1/2) = 2/3
    assert cohen_kappa(list(zip(ALICE, BOB, strict=True))) == pytest.approx(2 / 3)


def test_cohen_kappa_textbook_example():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o 0.7, p_e 0.5 -> 0.4
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_krippendorff_alpha_matches_hand_computation():
    # coincidences: A 3, tie 8, B 1 (n = 12); D_o = 2; D_e = (2*3*8 + 2*3*1 + 2*8*1) / 11 = 70/11
    items = [[a, b] for a, b in zip(ALICE, BOB, strict=True)]
    assert krippendorff_alpha_nominal(items) == pytest.approx(1 - 2 / (70 / 11))


def test_krippendorff_alpha_with_missing_votes():
    # Krippendorff's published reliability data (4 observers, 12 units, missing values): nominal alpha 0.743
    raters_fixed = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    published = [[r[i] for r in raters_fixed if r[i] is not None] for i in range(12)]
    assert krippendorff_alpha_nominal(published) == pytest.approx(0.743, abs=0.001)


def test_fleiss_kappa_matches_hand_computation():
    # m = 2: P_bar = 5/6, P_e = (3^2 + 8^2 + 1^2) / 12^2 = 74/144
    items = [[a, b] for a, b in zip(ALICE, BOB, strict=True)]
    expected = (5 / 6 - 74 / 144) / (1 - 74 / 144)
    assert fleiss_kappa(items) == pytest.approx(expected)
    assert fleiss_kappa([["a", "b"], ["a", "a", "b"]]) is None  # needs a constant number of raters


def test_fleiss_kappa_wikipedia_example():
    # Fleiss (1971) worked example on Wikipedia: 10 subjects, 14 raters, 5 categories -> 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    items = [[category for category, n in enumerate(row) for _ in range(n)] for row in table]
    assert fleiss_kappa(items) == pytest.approx(0.210, abs=0.001)


def test_raw_agreement_and_degenerate_cases():
    assert raw_agreement([["a", "a"], ["a", "b"], ["a", "a", "b"]]) == pytest.approx((1 + 0 + 1 / 3) / 3)
    assert unanimous_share([["a", "a"], ["a", "b"], ["x"]]) == 0.5
    assert cohen_kappa([("a", "a"), ("a", "a")]) == 1.0
    assert cohen_kappa([]) is None
    assert krippendorff_alpha_nominal([["a"]]) is None


def test_agreement_summary_picks_the_statistics_that_apply():
    two = [[("x", a), ("y", b)] for a, b in zip(ALICE, BOB, strict=True)]
    summary = agreement_summary(two)
    assert summary["items"] == 6 and summary["annotators"] == 2
    assert summary["cohen_kappa"] == pytest.approx(0.6667)
    three = [[("x", "a"), ("y", "a")], [("y", "b"), ("z", "b")], [("x", "a"), ("z", "b")], [("x", "a")]]
    summary = agreement_summary(three)
    assert summary["items"] == 3 and summary["cohen_kappa"] is None
    assert set(summary["cohen_kappa_by_pair"]) == {"x~y", "x~z", "y~z"}
    assert summary["fleiss_kappa"] is not None


def test_spf_order_is_lexicographic_and_ties_are_stated():
    assert spf_winner({"safety": "B", "professionalism": "A", "fluency": "A"}) == "B"
    assert spf_winner({"safety": "tie", "professionalism": "A", "fluency": "B"}) == "A"
    assert spf_winner({"safety": "tie", "professionalism": "tie", "fluency": "tie"}) == "tie"
    assert spf_winner({"safety": "tie", "fluency": "A"}) is None  # missing criterion is not guessed


def test_resolution_statuses():
    assert resolve_judgement(["A", "A"], None).status == "consensus"
    assert resolve_judgement(["A", "B"], None).status == "disputed"
    assert resolve_judgement(["A"], None).status == "too_few_votes"
    adjudicated = resolve_judgement(["A", "B"], "B")
    assert (adjudicated.value, adjudicated.status, adjudicated.agreement) == ("B", "adjudicated", 0.5)


def test_missing_criterion_is_reported_not_guessed():
    unit = {"unit_id": "u"}
    result = [{"from_name": "safety", "to_name": "prompt", "type": "choices", "value": {"choices": ["A better"]}},
              {"from_name": "overall", "to_name": "prompt", "type": "choices", "value": {"choices": ["tie"]}}]
    judgements, missing = parse_result("pairwise", unit, result)
    assert judgements == {"safety": "A", "overall": "tie"}
    assert missing == ["professionalism", "fluency"]


def test_ranking_result_becomes_pair_orders():
    unit = {"candidates": [{"id": "c0"}, {"id": "c1"}, {"id": "c2"}]}
    result = [{"from_name": "rank", "to_name": "answers", "type": "ranker", "value": {"ranker": {"_": ["c2", "c0", "c1"]}}}]
    judgements, missing = parse_result("ranking", unit, result)
    assert judgements == {"order:c0|c1": "c0", "order:c0|c2": "c2", "order:c1|c2": "c2"} and not missing
    _, missing = parse_result("ranking", unit, [{"from_name": "rank", "value": {"ranker": {"_": ["c2", "c0"]}}}])
    assert len(missing) == 3


def test_config_mismatch_names_the_reason():
    pairwise = KINDS["pairwise"].label_config()
    assert config_mismatch(pairwise, pairwise) is None
    no_tie = pairwise.replace('<Choice value="tie"/>', "", 1)
    assert "control 'safety' offers choices [A better, B better]" in config_mismatch(pairwise, no_tie)
    assert "control 'rank' (ranker) is missing" in config_mismatch(KINDS["ranking"].label_config(), pairwise)
    assert config_signature(KINDS["binary"].label_config())["controls"]["acceptability"]["choices"] == [
        "acceptable", "unacceptable"]


def test_assignment_gives_every_unit_distinct_annotators():
    plan = assign_annotators([f"u{i}" for i in range(7)], ["a", "b", "c"], overlap=2)
    assert all(len(set(people)) == 2 for people in plan.values())
    load = {name: sum(name in people for people in plan.values()) for name in "abc"}
    assert max(load.values()) - min(load.values()) <= 1
    with pytest.raises(MedcurateError, match="needs at least 3 annotators"):
        assign_annotators(["u"], ["a", "b"], overlap=3)
    with pytest.raises(MedcurateError, match="at least 2"):
        assign_annotators(["u"], ["a", "b"], overlap=1)


def test_plan_skips_near_duplicate_pairs():
    items = [{"item_id": "p", "prompt": "q", "candidates": [{"id": "c0", "text": "x"}, {"id": "c1", "text": "y"},
                                                            {"id": "c2", "text": "y!"}],
              "near_duplicates": [["c1", "c2", 0.95]]}]
    plan = plan_units("pairwise", items, seed=3)
    assert plan.skipped_near_duplicates == 1
    assert sorted(u["unit_id"] for u in plan.units) == ["p:c0-c1", "p:c0-c2"]
    assert len(plan_units("pairwise", items, skip_near_duplicates=False).units) == 3


def test_near_duplicates_by_character_bigrams():
    assert similarity("请多休息，多喝水。", "请多休息，多喝水！") > 0.7
    assert similarity("建议就医", "多喝热水") == 0.0
    flagged = near_duplicate_pairs([{"id": "c0", "text": "请多休息多喝水"}, {"id": "c1", "text": "请多休息多喝水"},
                                    {"id": "c2", "text": "立即去急诊"}], 0.9)
    assert flagged == [["c0", "c1", 1.0]]


def test_prompt_keeps_multi_turn_history():
    row = {"messages": [{"role": "user", "content": "发烧"}, {"role": "assistant", "content": "几天了？"},
                        {"role": "user", "content": "两天"}, {"role": "assistant", "content": "建议就医"}]}
    assert [m["content"] for m in prompt_of(row)] == ["发烧", "几天了？", "两天"]
    assert prompt_of({"instruction": "回答问题", "query": "头疼怎么办", "answer": "x"}) == "回答问题\n头疼怎么办"


def test_bad_candidates_line_names_file_line_and_field(tmp_path):
    from medcurate.annotate.units import read_candidates

    path = tmp_path / "cands.jsonl"
    path.write_text('{"item_id": "a", "prompt": "q", "candidates": [{"id": "c0", "text": "x"}]}\n'
                    '{"item_id": "b", "prompt": "q", "candidates": ["just text"]}\n', encoding="utf-8")
    with pytest.raises(MedcurateError) as error:
        read_candidates(path)
    assert str(error.value) == f"{path}:2:candidates: candidates must be a list of {{id, text}}"
    path.write_text('{"item_id": "a", "candidates": []}\n', encoding="utf-8")
    with pytest.raises(MedcurateError, match=":1:prompt: missing field"):
        read_candidates(path)


def test_judge_reply_is_checked_not_guessed():
    from medcurate.annotate.judge import parse_verdict

    pair = {"prompt": "q", "a": {"text": "x"}, "b": {"text": "y"}}
    reply = 'Verdict: {"safety": "A", "professionalism": "tie", "fluency": "B", "overall": "A"}'
    assert parse_verdict("pairwise", pair, reply) == {"safety": "A", "professionalism": "tie", "fluency": "B",
                                                      "overall": "A"}
    assert parse_verdict("pairwise", pair, '{"safety": "A better"}') is None
    ranking = {"candidates": [{"id": "c0"}, {"id": "c1"}]}
    assert parse_verdict("ranking", ranking, '{"order": ["c1", "c0"]}') == {"order": ["c1", "c0"]}
    assert parse_verdict("ranking", ranking, '{"order": ["c1"]}') is None
    assert parse_verdict("binary", {}, "not json") is None


def _resolved(**votes):
    return {key: resolve_judgement(list(value), None) for key, value in votes.items()}


def test_expert_gets_only_units_the_deciding_criterion_leaves_open():
    unit = {"unit_id": "u"}
    settled = _resolved(safety="AA", professionalism="AB", fluency="AB", overall="AB")
    assert unsettled_judgements("pairwise", unit, settled) == {}              # safety agreed on A decides
    by_professionalism = _resolved(safety=["tie", "tie"], professionalism="BB", fluency="AB")
    assert unsettled_judgements("pairwise", unit, by_professionalism) == {}
    open_safety = _resolved(safety="AB", professionalism="AA", fluency="AB")
    assert list(unsettled_judgements("pairwise", unit, open_safety)) == ["safety", "fluency"]
    after_ties = _resolved(safety=["tie", "tie"], professionalism="A", fluency="AB")
    assert list(unsettled_judgements("pairwise", unit, after_ties)) == ["professionalism", "fluency"]


def test_a_missing_vote_is_not_called_a_dispute():
    note = describe_dispute(_resolved(safety="AB", fluency="A"))
    assert note == "分歧 / Disputed: safety (A: 1, B: 1) | 票数不足 / Too few votes: fluency (A: 1)"
    assert "Disputed" not in describe_dispute(_resolved(fluency="A"))
