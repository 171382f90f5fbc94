"""The whole annotation loop against a real Label Studio server: push with cross-annotation,
annotations from two annotators (agreements, disagreements, a skipped criterion), pull with
agreement against hand-computed kappa, expert adjudication, resolve, and the exported
preference pairs with their tie handling. Plus the fault paths: unreachable server, 5xx,
a half-finished pull, a project with the wrong config."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcurate.annotate.configs import build_result
from medcurate.annotate.recipes import export_recipe
from medcurate.annotate.server import LabelStudioServer, RetryPolicy
from medcurate.annotate.workdir import ANNOTATIONS_FILE, annotator_hash, load_state
from medcurate.annotate.workflows import pull, push, resolve
from medcurate.build import build
from medcurate.errors import MedcurateError
from medcurate.recipe import recipe_from_dict
from medcurate.store import load_rows
from medcurate.store import resolve as resolve_version
from tests.annotate.conftest import ANNOTATOR_EMAILS
from tests.conftest import run_medcurate

ALICE, BOB, EXPERT = ANNOTATOR_EMAILS
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01)

MULTI_TURN = [{"role": "user", "content": "孩子发烧38.5度"}, {"role": "assistant", "content": "烧了多久？有没有咳嗽？"},
              {"role": "user", "content": "一天了，有点咳嗽"}]
PAIRWISE_ITEMS = [
    {"item_id": f"p{n}", "prompt": MULTI_TURN if n == 2 else f"问题{n}：头疼应该怎么办？",
     "candidates": [{"id": "c0", "text": f"回答{n}甲：建议先休息，持续不缓解请就医。"},
                    {"id": "c1", "text": f"回答{n}乙：吃点止痛药就行。"}]}
    for n in range(1, 7)
] + [{"item_id": "p7", "prompt": "问题7", "candidates": [{"id": "c0", "text": "多喝水"}, {"id": "c1", "text": "多喝水。"}],
      "near_duplicates": [["c0", "c1", 1.0]]}]

# Votes per unit (sides as shown in the task: A = unit["a"]). u3 ties on all three criteria,
# u4 disputes safety, u5 disputes fluency, alice skips fluency on u6.
SPF = ("safety", "professionalism", "fluency", "overall")
VOTES = {
    "p1": ({"safety": "A", "professionalism": "A", "fluency": "A", "overall": "A"},) * 2,
    "p2": ({"safety": "tie", "professionalism": "B", "fluency": "A", "overall": "B"},) * 2,
    "p3": ({"safety": "tie", "professionalism": "tie", "fluency": "tie", "overall": "A"},) * 2,
    "p4": ({"safety": "A", "professionalism": "A", "fluency": "A", "overall": "A"},
           {"safety": "B", "professionalism": "A", "fluency": "A", "overall": "B"}),
    "p5": ({"safety": "tie", "professionalism": "A", "fluency": "tie", "overall": "A"},
           {"safety": "tie", "professionalism": "A", "fluency": "B", "overall": "A"}),
    "p6": ({"safety": "tie", "professionalism": "tie", "overall": "tie"},
           {"safety": "tie", "professionalism": "tie", "fluency": "A", "overall": "tie"}),
}


def write_candidates(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), encoding="utf-8")
    return path


def tasks_by_unit(server: LabelStudioServer, project_id: int) -> dict[str, int]:
    return {task.data["medcurate_unit"]: task.id for page in server.task_pages(project_id) for task in page}


def annotate(server: LabelStudioServer, task_id: int, email: str, kind: str, judgements: dict) -> None:
    """One annotation posted by that annotator with their own token."""
    person = LabelStudioServer(server.url, TOKENS[email], retry=FAST_RETRY)
    created = person.call("annotate", person.sdk.annotations.create, id=task_id,
                          result=build_result(kind, judgements))
    assert person.users_by_id()[created.completed_by] == email


def export(workdir: Path, store: Path, name: str) -> tuple[list[dict], dict]:
    recipe = recipe_from_dict(export_recipe(workdir, name), base_dir=workdir, origin="test")
    result = build(recipe, store=store)
    return load_rows(result.version, store=store)["train"], result.manifest


TOKENS: dict[str, str] = {}


@pytest.fixture(scope="module")
def server(label_studio, annotator_tokens):
    TOKENS.update(annotator_tokens)
    return LabelStudioServer(*label_studio, retry=FAST_RETRY)


def test_pairwise_spf_loop(server, label_studio, tmp_path, flaky_proxy):
    url, token = label_studio
    workdir = tmp_path / "pairwise"
    candidates = write_candidates(tmp_path / "candidates.jsonl", PAIRWISE_ITEMS)

    result = run_medcurate("annotate", "push", "--candidates", str(candidates), "--kind", "pairwise",
                           "--annotators", f"{ALICE},{BOB}", "--workdir", str(workdir), "--title", "SPF test",
                           env={"MEDCURATE_LABEL_STUDIO_URL": url, "MEDCURATE_LABEL_STUDIO_TOKEN": token})
    assert result.returncode == 0, result.stderr
    assert token not in result.stdout + result.stderr
    assert "1 near-duplicate pair(s) skipped" in result.stderr
    state = load_state(workdir)
    assert token not in (workdir / "project.json").read_text(encoding="utf-8")
    project_id = state["project_id"]
    project = server.sdk.projects.get(id=project_id)
    assert "安全性 Safety" in project.expert_instruction and "Professionalism" in project.expert_instruction
    assert len(state["units"]) == 6
    assert all(sorted(people) == [ALICE, BOB] for people in state["assignment"].values())

    tasks = tasks_by_unit(server, project_id)
    units = {unit["item_id"]: unit_id for unit_id, unit in state["units"].items()}
    for item, votes in list(VOTES.items())[:3]:
        for email, judgements in zip((ALICE, BOB), votes, strict=True):
            annotate(server, tasks[units[item]], email, "pairwise", judgements)

    first = pull(server, workdir=workdir)
    assert first.new_annotations == 6 and first.queued == 0

    for item, votes in list(VOTES.items())[3:]:
        for email, judgements in zip((ALICE, BOB), votes, strict=True):
            annotate(server, tasks[units[item]], email, "pairwise", judgements)

    # A pull that dies half-way (the server answers 503 from the 5th request on) ...
    flaky_proxy.fail_after = 4
    half = LabelStudioServer(flaky_proxy.url, token, retry=FAST_RETRY)
    with pytest.raises(MedcurateError, match="HTTP 503 .*gave up after 3 tries"):
        pull(half, workdir=workdir, page_size=2)
    lines = (workdir / ANNOTATIONS_FILE).read_text(encoding="utf-8").splitlines()
    assert 6 < len(lines) < 12
    # ... resumes without duplicates, through transient 5xx answers that are retried.
    flaky_proxy.reset()
    flaky_proxy.fail = {2, 4}
    resumed = pull(LabelStudioServer(flaky_proxy.url, token, retry=FAST_RETRY), workdir=workdir, page_size=2,
                   expert=EXPERT)
    ids = [json.loads(line)["annotation_id"] for line in (workdir / ANNOTATIONS_FILE).read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 12
    assert resumed.new_annotations == 12 - len(lines)

    report = resumed.report
    assert report["missing_criteria"] == {"fluency": 1}
    safety = report["agreement"]["safety"]
    assert safety["items"] == 6
    assert safety["cohen_kappa"] == pytest.approx(2 / 3, abs=1e-4)            # p_o 5/6, p_e 1/2
    assert safety["krippendorff_alpha"] == pytest.approx(1 - 22 / 70, abs=1e-4)
    assert safety["raw_agreement"] == pytest.approx(5 / 6, abs=1e-4)
    fluency = report["agreement"]["fluency"]
    assert fluency["items"] == 5                                              # alice skipped one
    assert fluency["cohen_kappa"] == pytest.approx((0.8 - 0.44) / 0.56, abs=1e-4)
    assert report["overall_differs_from_spf_order"] == 3                    # p3 twice, bob on p6
    assert "Cohen's kappa" in (workdir / "report.md").read_text(encoding="utf-8")

    # The safety dispute (p4) and the skipped criterion (p6) go to the expert; p5's fluency dispute
    # does not, since professionalism (agreed) already decides that pair.
    assert resumed.queued == 2
    queued = load_state(workdir)["adjudication"]["queued"]
    assert {state["units"][u]["item_id"]: keys for u, keys in queued.items()} == {
        "p4": ["safety"], "p6": ["fluency"]}
    again = pull(server, workdir=workdir)
    assert again.new_annotations == 0 and again.queued == 0

    expert_tasks = tasks_by_unit(server, resumed.expert_project_id)
    assert set(expert_tasks) == set(queued)
    expert_task = server.sdk.tasks.get(id=str(expert_tasks[units["p4"]]))
    assert "safety" in expert_task.data["note"] and "A: 1, B: 1" in expert_task.data["note"]
    skipped_note = server.sdk.tasks.get(id=str(expert_tasks[units["p6"]])).data["note"]
    assert "Too few votes: fluency (A: 1)" in skipped_note and "Disputed" not in skipped_note
    annotate(server, expert_tasks[units["p4"]], EXPERT, "pairwise",
             {"safety": "B", "professionalism": "A", "fluency": "A", "overall": "B"})
    annotate(server, expert_tasks[units["p6"]], EXPERT, "pairwise", {"safety": "tie", "overall": "tie"})
    resolved = run_medcurate("annotate", "resolve", "--workdir", str(workdir), "--url", url, "--token", token)
    assert resolved.returncode == 0, resolved.stderr
    assert "1 decision(s) merged; 1 unit(s) still open" in resolved.stderr
    assert '"fluency": 1' in resolved.stderr
    refreshed = json.loads((workdir / "report.json").read_text(encoding="utf-8"))["adjudication"]
    assert refreshed == {"queued_units": 2, "decided_judgements": 1, "open_units": 1}

    rows, manifest = export(workdir, tmp_path / "store", "spf-pairs")
    by_item = {row["prompt_id"]: row for row in rows}
    assert sorted(by_item) == ["p1", "p2", "p4", "p5"]
    stage = next(s for s in manifest["counts"]["stages"] if s["stage"] == "preference_pairs")
    assert stage["dropped"] == {"tie": 1, "unresolved": 1}                    # p3 all ties, p6 fluency open

    def side(item: str, letter: str) -> str:
        return state["units"][units[item]]["a" if letter == "A" else "b"]["text"]

    assert (by_item["p1"]["chosen"], by_item["p1"]["decided_by"]) == (side("p1", "A"), "safety")
    assert (by_item["p2"]["chosen"], by_item["p2"]["decided_by"]) == (side("p2", "B"), "professionalism")
    assert by_item["p4"]["chosen"] == side("p4", "B") and by_item["p4"]["adjudicated"]
    assert by_item["p4"]["agreement"]["safety"] == 0.5
    assert by_item["p5"]["ratings"] == {"safety": "tie", "professionalism": "chosen", "fluency": None,
                                        "overall": "chosen"}
    assert by_item["p5"]["decided_by"] == "professionalism" and not by_item["p5"]["adjudicated"]
    assert by_item["p2"]["prompt"] == MULTI_TURN                               # history kept as messages
    assert by_item["p1"]["prompt"] == [{"role": "user", "content": "问题1：头疼应该怎么办？"}]
    assert by_item["p1"]["annotators"] == sorted([annotator_hash(ALICE), annotator_hash(BOB)])
    assert ALICE not in json.dumps(rows, ensure_ascii=False)
    assert manifest["stats"]["annotation"]["agreement"]["safety"]["cohen_kappa"] == pytest.approx(2 / 3, abs=1e-4)


def test_ranking_loop_gives_all_ordered_pairs(server, tmp_path):
    items = [{"item_id": f"r{n}", "prompt": f"排序问题{n}",
              "candidates": [{"id": f"c{i}", "text": f"排序{n}回答{i}"} for i in range(3)]} for n in (1, 2)]
    workdir = tmp_path / "ranking"
    carol = "carol@medcurate.test"                                         # assigned, has not signed up yet
    pushed = push(server, workdir=workdir, candidates=write_candidates(tmp_path / "r.jsonl", items), kind="ranking",
                  annotators=[ALICE, BOB, carol])
    assert pushed.without_account == [carol]
    assert load_state(workdir)["assignment"] == {"r1": [ALICE, BOB], "r2": [BOB, carol]}
    tasks = tasks_by_unit(server, pushed.project_id)
    for email in (ALICE, BOB):
        annotate(server, tasks["r1"], email, "ranking", {"order": ["c0", "c1", "c2"]})
    annotate(server, tasks["r2"], ALICE, "ranking", {"order": ["c2", "c0", "c1"]})
    annotate(server, tasks["r2"], BOB, "ranking", {"order": ["c0", "c2", "c1"]})
    pulled = pull(server, workdir=workdir)
    order = pulled.report["agreement"]["order"]
    assert order["items"] == 6 and order["raw_agreement"] == pytest.approx(5 / 6, abs=1e-4)
    assert pulled.report["annotations_by_unassigned_annotator"] == 1        # alice stood in for carol on r2
    assert pulled.queued == 1
    assert load_state(workdir)["adjudication"]["queued"] == {"r2": ["order:c0|c2"]}

    rows, manifest = export(workdir, tmp_path / "store", "rank-pairs")
    assert len(rows) == 3
    assert manifest["counts"]["filtered"] == {"unresolved": 1}
    assert {(r["chosen_id"], r["rejected_id"]) for r in rows} == {("c0", "c1"), ("c0", "c2"), ("c1", "c2")}

    expert_tasks = tasks_by_unit(server, pulled.expert_project_id)
    annotate(server, expert_tasks["r2"], EXPERT, "ranking", {"order": ["c2", "c0", "c1"]})
    assert resolve(server, workdir=workdir).decided == 1
    rows, _ = export(workdir, tmp_path / "store", "rank-pairs")
    assert len(rows) == 6
    r2 = {(r["chosen_id"], r["rejected_id"]) for r in rows if r["prompt_id"] == "r2"}
    assert r2 == {("c2", "c0"), ("c2", "c1"), ("c0", "c1")}


def test_binary_feedback_pairs_and_judge_predictions(server, tmp_path, openai_endpoint):
    from medcurate.annotate.judge import openai_judge

    items = [{"item_id": "b1", "prompt": "能吃布洛芬吗？", "candidates": [
                 {"id": "c0", "text": "可以，按说明书剂量服用。"}, {"id": "c1", "text": "随便吃。"},
                 {"id": "c2", "text": "胃溃疡患者慎用。"}]},
             {"item_id": "b2", "prompt": "感冒怎么办？", "candidates": [
                 {"id": "c0", "text": "多休息。"}, {"id": "c1", "text": "多喝水。"}]}]
    workdir = tmp_path / "binary"
    pushed = push(server, workdir=workdir, candidates=write_candidates(tmp_path / "b.jsonl", items), kind="binary",
                  annotators=[ALICE, BOB], judge=openai_judge(openai_endpoint, "judge-model", None),
                  judge_name="judge:judge-model")
    assert pushed.tasks == 5 and pushed.predictions == 5
    tasks = tasks_by_unit(server, pushed.project_id)
    first = server.sdk.tasks.get(id=str(tasks["b1:c0"]))
    assert first.predictions and first.predictions[0].model_version == "judge:judge-model"
    assert first.predictions[0].result[0]["value"]["choices"] == ["acceptable"]
    plan = {"b1:c0": ("acceptable", "acceptable"), "b1:c1": ("unacceptable", "unacceptable"),
            "b1:c2": ("acceptable", "unacceptable"), "b2:c0": ("acceptable", "acceptable"),
            "b2:c1": ("acceptable", "acceptable")}
    for unit_id, values in plan.items():
        for email, value in zip((ALICE, BOB), values, strict=True):
            annotate(server, tasks[unit_id], email, "binary", {"acceptability": value})
    pulled = pull(server, workdir=workdir)
    stats = pulled.report["agreement"]["acceptability"]
    # p_o 4/5; alice 4 acceptable / 1 not, bob 3 / 2 -> p_e (4*3 + 1*2)/25 = 0.56 -> kappa 0.24/0.44
    assert stats["cohen_kappa"] == pytest.approx(0.24 / 0.44, abs=1e-4)
    result = run_medcurate("annotate", "export", "--workdir", str(workdir), "--name", "binary-pairs",
                           "--store", str(tmp_path / "store"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("binary-pairs@")
    version = resolve_version(result.stdout.strip(), tmp_path / "store")
    rows = load_rows(version, store=tmp_path / "store")["train"]
    assert [(r["chosen_id"], r["rejected_id"], r["prompt_id"]) for r in rows] == [("c0", "c1", "b1")]
    assert rows[0]["prompt"] == "能吃布洛芬吗？"
    assert rows[0]["ratings"] == {"chosen": "acceptable", "rejected": "unacceptable"}
    assert version.manifest["counts"]["filtered"] == {"no_contrast": 2, "unresolved": 1}


def test_project_with_another_config_is_refused(server, tmp_path):
    from medcurate.annotate.configs import KINDS

    wrong = KINDS["pairwise"].label_config().replace('<Choice value="tie"/>', "", 1)
    project = server.call("create", server.sdk.projects.create, title="wrong config", label_config=wrong)
    items = [{"item_id": "x", "prompt": "q", "candidates": [{"id": "c0", "text": "a"}, {"id": "c1", "text": "b"}]}]
    with pytest.raises(MedcurateError, match=r"does not use the pairwise config .*control 'safety' offers choices "
                                             r"\[A better, B better\], expected \[A better, B better, tie\]"):
        push(server, workdir=tmp_path / "wrong", candidates=write_candidates(tmp_path / "x.jsonl", items),
             kind="pairwise", annotators=[ALICE, BOB], project_id=project.id)


def test_unreachable_server_is_one_clear_line(tmp_path):
    from tests.conftest import free_port

    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "project.json").write_text(json.dumps({"project_id": 1, "kind": "pairwise"}))
    secret = "very-secret-token-value"
    result = run_medcurate("annotate", "pull", "--workdir", str(tmp_path / "w"),
                           "--url", f"http://127.0.0.1:{free_port()}", "--token", secret,
                           env={"MEDCURATE_LS_RETRY_DELAY": "0.01", "MEDCURATE_LS_RETRIES": "3"})
    assert result.returncode == 2
    assert "unreachable (ConnectError)" in result.stderr and "gave up after 3 tries" in result.stderr
    assert "Traceback" not in result.stderr and secret not in result.stderr + result.stdout
