"""The whole IIMedGPT flow on the demo store, as a user runs it from the command line: build ->
tiny model -> SFT -> merge -> sample -> Label Studio SPF annotation (two annotators, an expert)
-> export -> DPO -> reward model -> merge -> evaluate; then the final merged DPO model's lineage
must reach every source file of the demo versions it descends from."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="the train extra is not installed")

from medcurate.annotate.configs import build_result
from medcurate.annotate.server import LabelStudioServer, RetryPolicy
from medcurate.annotate.workdir import load_state
from tests.annotate.conftest import ANNOTATOR_EMAILS
from tests.conftest import REPO, run_medcurate

ALICE, BOB, EXPERT = ANNOTATOR_EMAILS
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01)
QUICK = ["--set", "max_steps=2"]
DEMO_SOURCES = ("cdee_sample.json", "cmeee_sample.json", "imcs_sample.jsonl", "cdn_sample.json", "cmeie_sample.jsonl",
                "ehr_sample.jsonl", "cmtmedqa_sample.json", "toyhom_sample.csv", "mix_general_sample.jsonl")
# four pairs: agreed on safety, decided by professionalism after a safety tie, a safety dispute
# the expert settles, and agreed on safety with fluency disputed (settled: never queued)
VOTES = [
    ({"safety": "A", "professionalism": "A", "fluency": "A", "overall": "A"},) * 2,
    ({"safety": "tie", "professionalism": "B", "fluency": "A", "overall": "B"},) * 2,
    ({"safety": "A", "professionalism": "A", "fluency": "A", "overall": "A"},
     {"safety": "B", "professionalism": "A", "fluency": "A", "overall": "B"}),
    ({"safety": "B", "professionalism": "B", "fluency": "A", "overall": "B"},
     {"safety": "B", "professionalism": "B", "fluency": "B", "overall": "B"}),
]


def _annotate(url: str, token: str, task_id: int, judgements: dict) -> None:
    person = LabelStudioServer(url, token, retry=FAST_RETRY)
    person.call("annotate", person.sdk.annotations.create, id=task_id, result=build_result("pairwise", judgements))


def _tasks(server: LabelStudioServer, project_id: int) -> dict[str, int]:
    return {task.data["medcurate_unit"]: task.id for page in server.task_pages(project_id) for task in page}


@pytest.mark.slow
@pytest.mark.timeout(2400)    # some thirty CLI processes, each importing torch, on a shared CPU
def test_iimedgpt_flow_lineage_reaches_the_demo_sources(label_studio, annotator_tokens, tmp_path):
    url, token = label_studio
    (tmp_path / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    env = {"MEDCURATE_STORE": str(tmp_path / "datasets"), "MEDCURATE_LABEL_STUDIO_URL": url,
           "MEDCURATE_LABEL_STUDIO_TOKEN": token}

    def medcurate(*args: str) -> str:
        result = run_medcurate(*args, cwd=tmp_path, env=env)
        assert result.returncode == 0, f"medcurate {' '.join(args)}:\n{result.stderr[-3000:]}"
        assert "kernels-community" not in result.stderr and "FutureWarning" not in result.stderr
        return result.stdout

    for recipe in ("ehr_pairs", "cmedins", "mix"):
        medcurate("build", f"examples/recipes/{recipe}.yaml")
    medcurate("model", "tiny", "--corpus", "mix-demo@latest", "--out", "models/tiny")
    medcurate("train", "sft", "--recipe", "iimedgpt-sft", "--model", "models/tiny", "--data", "mix-demo@latest",
              "--out", "runs/sft", *QUICK)
    medcurate("train", "merge", "--adapter", "runs/sft", "--out", "models/merged-sft")
    medcurate("annotate", "sample", "--prompts", "cmedins-demo@latest", "--split", "train", "--limit", "4", "--k", "2",
              "--model", "models/merged-sft", "--max-new-tokens", "16", "--out", "cands.jsonl")
    project_id = int(medcurate("annotate", "push", "--candidates", "cands.jsonl", "--kind", "pairwise",
                               "--annotators", f"{ALICE},{BOB}", "--keep-near-duplicates",
                               "--workdir", "ann/spf-round1").strip())

    workdir = tmp_path / "ann" / "spf-round1"
    state = load_state(workdir)
    assert len(state["units"]) == 4
    server = LabelStudioServer(url, token, retry=FAST_RETRY)
    tasks = _tasks(server, project_id)
    for unit_id, votes in zip(sorted(state["units"]), VOTES, strict=True):
        for email, judgements in zip((ALICE, BOB), votes, strict=True):
            _annotate(url, annotator_tokens[email], tasks[unit_id], judgements)
    medcurate("annotate", "pull", "--workdir", "ann/spf-round1", "--expert", EXPERT)
    state = load_state(workdir)
    disputed = sorted(state["units"])[2]
    assert state["adjudication"]["queued"] == {disputed: ["safety"]}
    expert_tasks = _tasks(server, state["adjudication"]["project_id"])
    _annotate(url, annotator_tokens[EXPERT], expert_tasks[disputed],
              {"safety": "A", "professionalism": "A", "fluency": "A", "overall": "A"})
    medcurate("annotate", "resolve", "--workdir", "ann/spf-round1")
    medcurate("annotate", "export", "--workdir", "ann/spf-round1", "--name", "spf-prefs")

    medcurate("train", "dpo", "--recipe", "iimedgpt-dpo", "--model", "models/merged-sft", "--data",
              "spf-prefs@latest", "--out", "runs/dpo", *QUICK)
    medcurate("train", "reward", "--recipe", "clinicalgpt-reward", "--model", "models/merged-sft", "--data",
              "spf-prefs@latest", "--out", "runs/rm", *QUICK)
    medcurate("train", "merge", "--adapter", "runs/dpo", "--out", "models/merged-dpo")
    medcurate("evaluate", "loss", "--model", "models/merged-dpo", "--data", "mix-demo@latest",
              "--out", "evals/loss.json")
    medcurate("evaluate", "reward", "--model", "runs/rm", "--data", "spf-prefs@latest", "--split", "train",
              "--out", "evals/reward.json")

    dpo = json.loads((tmp_path / "runs" / "dpo" / "lineage.json").read_text(encoding="utf-8"))
    assert dpo["dpo_reference"]["kind"] == "sft_policy"
    assert dpo["base_model"]["merged_from"] == str((tmp_path / "runs" / "sft").resolve())
    version_dir = next((tmp_path / "datasets" / "spf-prefs").glob("*/manifest.json")).parent
    sampled = json.loads((version_dir / "manifest.json").read_text(encoding="utf-8"))["stats"]["annotation"]["sampled_from"]
    assert sampled["prompt_versions"][0].startswith("cmedins-demo@") and "@latest" not in sampled["prompt_versions"][0]
    assert sampled["sampler"]["model"] == str((tmp_path / "models" / "merged-sft").resolve())

    traced = json.loads(medcurate("lineage", "models/merged-dpo", "--json"))
    assert traced["problems"] == []
    reached = {Path(node["path"]).name for node in traced["source_files"]}
    assert set(DEMO_SOURCES) <= reached, set(DEMO_SOURCES) - reached
    assert {"annotations.jsonl", "decisions.jsonl", "project.json"} <= reached
    tree = json.dumps(traced["tree"])
    assert "candidates" in tree and str((tmp_path / "runs" / "sft").resolve()) in tree

    (workdir / "annotations.jsonl").write_text("", encoding="utf-8")    # the export's input changed since
    broken = run_medcurate("lineage", "models/merged-dpo", cwd=tmp_path, env=env)
    assert broken.returncode == 2 and "annotations.jsonl: file changed since" in broken.stderr
