"""Physician review of generated rows through a real Label Studio: MCQ rows made by
``llm_distractors`` (against the scripted local endpoint) pushed with ``--kind review --rows``,
accepted / edited / rejected by two annotators, a disagreement adjudicated by the expert, and the
export to an instruction (MCQ) version and to preference pairs; plus k sampled answers to one
prompt reviewed into accepted-vs-rejected pairs."""
from __future__ import annotations

import json

import pytest

from medcurate.annotate.configs import build_result, parse_result
from medcurate.annotate.recipes import review_export_recipe
from medcurate.annotate.server import LabelStudioServer, RetryPolicy
from medcurate.annotate.workflows import pull, push
from medcurate.build import build
from medcurate.recipe import load_recipe, recipe_from_dict
from medcurate.store import load_rows
from medcurate.store import resolve as resolve_version
from tests.annotate.conftest import ADMIN_TOKEN, ANNOTATOR_EMAILS
from tests.conftest import REPO, run_medcurate
from tests.llm.conftest import ScriptedEndpoint

ALICE, BOB, EXPERT = ANNOTATOR_EMAILS
TOKENS: dict[str, str] = {}


@pytest.fixture(scope="module")
def server(label_studio, annotator_tokens):
    TOKENS.update(annotator_tokens)
    url, token = label_studio
    return LabelStudioServer(url, token, retry=RetryPolicy(attempts=3, base_delay=0.01))


def review(server: LabelStudioServer, task_id: int, email: str, judgements: dict) -> None:
    person = LabelStudioServer(server.url, TOKENS[email], retry=RetryPolicy(attempts=3, base_delay=0.01))
    person.call("annotate", person.sdk.annotations.create, id=task_id, result=build_result("review", judgements))


def tasks_by_unit(server: LabelStudioServer, project_id: int) -> dict[str, int]:
    return {task.data["medcurate_unit"]: task.id for page in server.task_pages(project_id) for task in page}


def test_review_result_round_trip():
    judgements = {"decision": "edit", "edited": "改过的回答", "reason": "剂量写错"}
    assert parse_result("review", {}, build_result("review", judgements)) == (judgements, [])
    assert parse_result("review", {}, [])[1] == ["decision"]


def test_reviewed_mcq_rows_become_an_instruction_version_and_pairs(server, tmp_path, monkeypatch):
    endpoint = ScriptedEndpoint()
    store = tmp_path / "store"
    try:
        monkeypatch.setenv("MEDCURATE_LLM_URL", endpoint.url)
        monkeypatch.setenv("MEDCURATE_LLM_MODEL", "scripted-model")
        generated = build(load_recipe(REPO / "examples" / "recipes" / "llm_mcq.yaml"), store=store)
    finally:
        endpoint.server.shutdown()
    rows = {row["question"]: row for row in load_rows(generated.version, store=store)["train"]}
    penicillin, hypertension, metformin = (rows["青霉素过敏患者禁用下列哪种药物？"],
                                           rows["成人高血压的诊断标准是诊室收缩压至少达到多少？"],
                                           rows["2型糖尿病的一线口服降糖药是？"])
    workdir = tmp_path / "review"
    url = server.url
    pushed = run_medcurate("annotate", "push", "--kind", "review", "--rows", generated.version.ref,
                           "--annotators", f"{ALICE},{BOB}", "--workdir", str(workdir), "--store", str(store),
                           "--url", url, "--token", ADMIN_TOKEN)
    assert pushed.returncode == 0, pushed.stderr
    project_id = int(pushed.stdout.strip())
    tasks = tasks_by_unit(server, project_id)
    assert len(tasks) == 3
    task = server.sdk.tasks.get(id=str(tasks[f"{penicillin['id']}:c0"]))
    assert task.data["answer"] == penicillin["answer"] and "A. " in task.data["prompt"]
    edited = hypertension["answer"] + "（非同日3次测量）"
    expert_edit = metformin["answer"] + "（无禁忌时）"
    plan = {
        penicillin["id"]: ({"decision": "accept"}, {"decision": "accept"}),
        hypertension["id"]: ({"decision": "edit", "edited": edited, "reason": "补充测量条件"},
                             {"decision": "edit", "edited": edited, "reason": "补充"}),
        metformin["id"]: ({"decision": "accept"}, {"decision": "reject", "reason": "干扰项过于明显"}),
    }
    for row_id, votes in plan.items():
        for email, judgements in zip((ALICE, BOB), votes, strict=True):
            review(server, tasks[f"{row_id}:c0"], email, judgements)
    pulled = pull(server, workdir=workdir, expert=EXPERT)
    assert pulled.queued == 1 and pulled.report["agreement"]["decision"]["items"] == 3
    expert_tasks = tasks_by_unit(server, pulled.expert_project_id)
    assert set(expert_tasks) == {f"{metformin['id']}:c0"}
    review(server, expert_tasks[f"{metformin['id']}:c0"], EXPERT,
           {"decision": "edit", "edited": expert_edit, "reason": "补充适用条件"})
    resolved = run_medcurate("annotate", "resolve", "--workdir", str(workdir), "--url", url, "--token",
                             ADMIN_TOKEN)
    assert resolved.returncode == 0, resolved.stderr

    exported = run_medcurate("annotate", "export", "--workdir", str(workdir), "--name", "mcq-reviewed",
                             "--store", str(store))
    assert exported.returncode == 0, exported.stderr
    version = resolve_version(exported.stdout.strip(), store)
    out = {row["question"]: row for row in load_rows(version, store=store)["train"]}
    assert set(out) == {penicillin["question"], hypertension["question"], metformin["question"]}
    assert out[penicillin["question"]]["options"] == penicillin["options"]
    assert out[penicillin["question"]]["answer"] == penicillin["answer"]
    assert out[penicillin["question"]]["review"]["status"] == "consensus"
    assert out[hypertension["question"]]["answer"] == edited
    assert out[hypertension["question"]]["review"]["original_answer"] == hypertension["answer"]
    adjudicated = out[metformin["question"]]
    assert adjudicated["answer"] == expert_edit and adjudicated["review"]["status"] == "adjudicated"
    assert adjudicated["review"]["reasons"] == ["干扰项过于明显", "补充适用条件"]
    assert version.manifest["counts"]["rows_written"] == 3

    pairs = run_medcurate("annotate", "export", "--workdir", str(workdir), "--name", "mcq-pairs", "--as",
                          "preference", "--store", str(store))
    assert pairs.returncode == 0, pairs.stderr
    pair_rows = load_rows(resolve_version(pairs.stdout.strip(), store), store=store)["train"]
    assert sorted((r["pair_kind"], r["chosen"], r["rejected"]) for r in pair_rows) == sorted([
        ("edit_vs_original", edited, hypertension["answer"]),
        ("edit_vs_original", expert_edit, metformin["answer"])])


def test_sampled_answers_reviewed_into_accepted_vs_rejected_pairs(server, tmp_path):
    candidates = tmp_path / "candidates.jsonl"
    candidates.write_text(json.dumps({"item_id": "q1", "prompt": "孩子发烧39度怎么办？", "candidates": [
        {"id": "c0", "text": "先物理降温，体温超过38.5℃可按体重用退热药，精神差及时就医。"},
        {"id": "c1", "text": "用酒精擦全身。"},
        {"id": "c2", "text": "吃退烧药。"}]}, ensure_ascii=False) + "\n", encoding="utf-8")
    workdir = tmp_path / "review-sampled"
    pushed = push(server, workdir=workdir, candidates=candidates, kind="review", annotators=[ALICE, BOB])
    tasks = tasks_by_unit(server, pushed.project_id)
    better = "吃退烧药前先量体温，超过38.5℃再按体重服用对乙酰氨基酚或布洛芬。"
    plan = {"q1:c0": {"decision": "accept"}, "q1:c1": {"decision": "reject", "reason": "不安全"},
            "q1:c2": {"decision": "edit", "edited": better, "reason": "不完整"}}
    for unit_id, judgements in plan.items():
        for email in (ALICE, BOB):
            review(server, tasks[unit_id], email, judgements)
    pull(server, workdir=workdir)
    store = tmp_path / "store"
    result = build(recipe_from_dict(review_export_recipe(workdir, "sampled-pairs", "preference"), origin="test"),
                   store=store)
    rows = load_rows(result.version, store=store)["train"]
    assert sorted((r["pair_kind"], r["chosen"], r["rejected"]) for r in rows) == sorted([
        ("accept_vs_reject", "先物理降温，体温超过38.5℃可按体重用退热药，精神差及时就医。", "用酒精擦全身。"),
        ("accept_vs_reject", better, "用酒精擦全身。"),
        ("edit_vs_original", better, "吃退烧药。")])
    assert all(r["prompt"] == "孩子发烧39度怎么办？" for r in rows)
    assert json.loads(next(r for r in rows if r["chosen"] == better and r["pair_kind"] == "accept_vs_reject")
                      ["reasons"]) == ["不安全"]
    instructions = build(recipe_from_dict(review_export_recipe(workdir, "sampled-sft", "instruction"), origin="test"),
                         store=store)
    sft = load_rows(instructions.version, store=store)["train"]
    assert instructions.manifest["counts"]["filtered"] == {"review_rejected": 1}
    assert sorted(r["answer"] for r in sft) == sorted([better, "先物理降温，体温超过38.5℃可按体重用退热药，精神差及时就医。"])
    assert all(r["instruction"] == "孩子发烧39度怎么办？" and r["task"] == "reviewed" for r in sft)

