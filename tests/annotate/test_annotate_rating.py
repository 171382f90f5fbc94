"""IvyGPT's rating annotation: one answer scored 1-5 on four dimensions, cross-annotated in a real
Label Studio, agreement per dimension (nominal and interval alpha), expert adjudication of a wide
spread, and reward-model pairs from score differences above the tie margin."""
from __future__ import annotations

import pytest

from medcurate.annotate.agreement import krippendorff_alpha_interval
from medcurate.annotate.configs import RATING_DIMENSIONS, build_result, parse_result
from medcurate.annotate.server import LabelStudioServer
from medcurate.annotate.votes import resolve_score
from medcurate.annotate.workdir import load_state
from medcurate.annotate.workflows import pull, push, resolve
from tests.annotate.conftest import ANNOTATOR_EMAILS
from tests.annotate.test_annotate_label_studio import (
    FAST_RETRY,
    TOKENS,
    annotate,
    export,
    tasks_by_unit,
    write_candidates,
)

ALICE, BOB, EXPERT = ANNOTATOR_EMAILS


def scores(i: int, c: int, f: int, a: int) -> dict[str, int]:
    return dict(zip(RATING_DIMENSIONS, (i, c, f, a), strict=True))


def test_interval_alpha_matches_a_hand_computation():
    # two raters, three items: (1,2) (3,3) (5,4). Coincidence pairs: 1-2,2-1,3-3,3-3,5-4,4-5 (weight 1 each).
    # D_o = (1+1+0+0+1+1)/6 = 4/6; values n=6: 1,2,3,3,4,5; D_e = sum over ordered pairs of (a-b)^2 / (n(n-1))
    values = [1, 2, 3, 3, 4, 5]
    expected_d = sum((a - b) ** 2 for i, a in enumerate(values) for j, b in enumerate(values) if i != j) / 30
    want = 1 - (4 / 6) / expected_d
    assert krippendorff_alpha_interval([[1, 2], [3, 3], [5, 4]]) == pytest.approx(want)
    assert krippendorff_alpha_interval([[2, 2], [4, 4]]) == 1.0


def test_scores_within_one_point_agree_on_their_mean():
    assert resolve_score(["4", "5"], None).value == "4.5"
    assert resolve_score(["4", "5"], None).status == "consensus"
    assert resolve_score(["2", "5"], None).status == "disputed"
    assert resolve_score(["2", "5"], "3").value == "3"
    assert resolve_score(["4"], None).status == "too_few_votes"


def test_result_round_trip_and_out_of_scale_scores_are_missing():
    unit = {"unit_id": "u", "item_id": "p", "prompt": "q", "candidate": {"id": "c0", "text": "a"}}
    judgements, missing = parse_result("rating", unit, build_result("rating", scores(5, 4, 3, 2)))
    assert judgements == {"informativeness": "5", "coherence": "4", "human_preference": "3", "factual_accuracy": "2"}
    assert missing == []
    bad = build_result("rating", {"informativeness": 7, "coherence": 4})
    judgements, missing = parse_result("rating", unit, bad)
    assert judgements == {"coherence": "4"}
    assert missing == ["informativeness", "human_preference", "factual_accuracy"]


@pytest.fixture(scope="module")
def server(label_studio, annotator_tokens):
    TOKENS.update(annotator_tokens)
    return LabelStudioServer(*label_studio, retry=FAST_RETRY)


@pytest.mark.slow
def test_rating_loop_gives_reward_model_pairs(server, tmp_path):
    items = [{"item_id": "q1", "prompt": "胃痛三天怎么办？",
              "candidates": [{"id": f"c{i}", "text": f"胃痛回答{i}：建议清淡饮食，持续不缓解请到消化内科就诊。"}
                             for i in range(3)]},
             {"item_id": "q2", "prompt": "头晕乏力是怎么回事？",
              "candidates": [{"id": "c0", "text": "可能是贫血或低血压，建议查血常规。"},
                             {"id": "c1", "text": "可能是贫血，建议到医院检查血常规和血压。"}]}]
    workdir = tmp_path / "rating"
    pushed = push(server, workdir=workdir, candidates=write_candidates(tmp_path / "c.jsonl", items), kind="rating",
                  annotators=[ALICE, BOB])
    assert set(load_state(workdir)["units"]) == {"q1:c0", "q1:c1", "q1:c2", "q2:c0", "q2:c1"}
    tasks = tasks_by_unit(server, pushed.project_id)
    given = {  # (alice, bob) per unit; q1:c2 factual accuracy spreads 1 vs 5 -> expert
        "q1:c0": (scores(5, 5, 4, 5), scores(4, 5, 5, 5)),
        "q1:c1": (scores(2, 3, 2, 2), scores(2, 2, 2, 3)),
        "q1:c2": (scores(3, 3, 3, 1), scores(3, 3, 3, 5)),
        "q2:c0": (scores(4, 4, 4, 4), scores(4, 4, 4, 4)),
        "q2:c1": (scores(4, 4, 4, 4), scores(4, 4, 5, 4)),
    }
    for unit_id, (alice, bob) in given.items():
        annotate(server, tasks[unit_id], ALICE, "rating", alice)
        annotate(server, tasks[unit_id], BOB, "rating", bob)
    pulled = pull(server, workdir=workdir)
    agreement = pulled.report["agreement"]
    assert set(agreement) == set(RATING_DIMENSIONS)
    assert agreement["coherence"]["items"] == 5 and agreement["coherence"]["raw_agreement"] == pytest.approx(4 / 5)
    assert agreement["factual_accuracy"]["krippendorff_alpha_interval"] == pytest.approx(
        krippendorff_alpha_interval([[5, 5], [2, 3], [1, 5], [4, 4], [4, 4]]), abs=1e-4)
    assert pulled.queued == 1
    assert load_state(workdir)["adjudication"]["queued"] == {"q1:c2": ["factual_accuracy"]}

    rows, manifest = export(workdir, tmp_path / "store", "ivy-rm")
    # q1: c0 (4.75) > c1 (2.25); c2 undecided; q2: c0 4.0 vs c1 4.125 is within the margin -> no pair
    assert {(r["prompt_id"], r["chosen_id"], r["rejected_id"]) for r in rows} == {("q1", "c0", "c1")}
    assert manifest["counts"]["filtered"] == {"unresolved": 1, "no_contrast": 2}
    assert rows[0]["ratings"]["chosen"]["mean"] == pytest.approx(4.75)

    expert_tasks = tasks_by_unit(server, pulled.expert_project_id)
    annotate(server, expert_tasks["q1:c2"], EXPERT, "rating", {"factual_accuracy": 2})
    assert resolve(server, workdir=workdir).decided == 1
    rows, _ = export(workdir, tmp_path / "store", "ivy-rm")
    q1 = {(r["chosen_id"], r["rejected_id"]) for r in rows if r["prompt_id"] == "q1"}
    assert q1 == {("c0", "c1"), ("c0", "c2")}                   # c2 = (3+3+3+2)/4 = 2.75: within 0.5 of c1
