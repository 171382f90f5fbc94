"""The LLM recipe steps end to end (example recipes against the scripted local endpoint): cleaning
with reasons, QA from drug labels and a guideline, MCQ distractors, consultations; rejects for a
failing endpoint; the EHR gate; a build killed halfway resumes from the cache; a rebuild from the
cache alone is byte-identical."""
from __future__ import annotations

import copy
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from medcurate.build import build
from medcurate.errors import MedcurateError
from medcurate.llm.steps import RUN_STATS, shuffled_options, usable_distractors
from medcurate.recipe import load_recipe, recipe_from_dict
from medcurate.store import load_rows
from medcurate.yamlio import parse_yaml
from tests.conftest import REPO, free_port, run_medcurate

RECIPES = REPO / "examples" / "recipes"
DATA = REPO / "examples" / "data"


@pytest.fixture
def endpoint_env(scripted, monkeypatch):
    monkeypatch.setenv("MEDCURATE_LLM_URL", scripted.url)
    monkeypatch.setenv("MEDCURATE_LLM_MODEL", "scripted-model")
    return scripted


def recipe_data(name: str) -> dict:
    return parse_yaml((RECIPES / f"{name}.yaml").read_text(encoding="utf-8"), origin=name)


def build_data(data: dict, store: Path):
    return build(recipe_from_dict(data, base_dir=RECIPES, origin="test"), store=store)


def rows_of(result, store: Path) -> list[dict]:
    return [row for rows in load_rows(result.version, store=store).values() for row in rows]


def test_clean_keeps_fixes_and_drops_with_reasons(endpoint_env, store):
    result = build(load_recipe(RECIPES / "llm_clean_qa.yaml"), store=store)
    counts = result.manifest["counts"]
    assert counts["filtered"] == {"llm_drop:off_topic": 1, "llm_drop:unsafe": 1} and counts["rows_written"] == 4
    rows = rows_of(result, store)
    fixed = [row for row in rows if row["llm_clean"]["decision"] == "fix"]
    assert len(fixed) == 1 and "。。" not in fixed[0]["answer"]
    assert fixed[0]["llm_clean"]["original"]["answer"].endswith("戒烟限酒。。")
    assert fixed[0]["llm_clean"]["reason"] == "grammar"
    llm = result.manifest["stats"]["llm"]["llm_clean"]
    assert llm["model"] == "scripted-model" and llm["decisions"] == {"drop": 2, "fix": 1, "keep": 3}
    assert llm["template"] == "clean" and "keep|fix|drop" in llm["template_text"] and len(llm["template_sha256"]) == 64
    assert llm["responses"] == 6 and llm["prompt_tokens"] > 0 and llm["completion_tokens"] > 0
    assert "cost" not in llm


def test_qa_from_drug_labels_and_guideline_keep_chunk_ids(endpoint_env, store):
    result = build(load_recipe(RECIPES / "llm_document_qa.yaml"), store=store)
    rows = rows_of(result, store)
    assert result.manifest["counts"]["filtered"] == {"section_not_selected": 6}
    by_chunk = {row["chunk_id"] for row in rows}
    assert {"labels-text:1:禁忌", "labels-json:metformin:适应症", "hypertension-guideline:c001"} <= by_chunk
    assert "labels-text:1:贮藏" not in by_chunk
    contraindication = next(row for row in rows if row["chunk_id"] == "labels-text:1:禁忌")
    assert contraindication["answer"] == "青霉素过敏及青霉素皮肤试验阳性患者禁用。"
    assert contraindication["task"] == "drug_label_qa" and contraindication["source"]["chunk_id"] == "labels-text:1:禁忌"
    assert {row["task"] for row in rows} == {"drug_label_qa", "guideline_qa"}
    assert len(rows) == 2 * result.manifest["stats"]["llm"]["llm_qa_from_document"]["chunks"]


def test_mcq_distractors_regenerated_or_rejected_and_shuffled_by_seed(endpoint_env, store):
    result = build(load_recipe(RECIPES / "llm_mcq.yaml"), store=store)
    rows = {row["question"]: row for row in rows_of(result, store)}
    assert result.manifest["counts"]["rejects"] == {"llm distractors equal to the answer or each other": 1}
    assert "布洛芬用于解热一般不得超过几天？" not in rows
    metformin = rows["2型糖尿病的一线口服降糖药是？"]
    assert metformin["options"][metformin["answer_index"]] == "二甲双胍"
    assert sorted(metformin["options"]) == sorted(["二甲双胍", "格列本脲", "阿卡波糖", "二甲双胍甲"]) or \
        len({o for o in metformin["options"]}) == 4
    assert metformin["answer"] == f"{'ABCD'[metformin['answer_index']]}. 二甲双胍"
    assert metformin["instruction"].splitlines()[1].startswith("A. ")
    stats = result.manifest["stats"]["llm"]["llm_distractors"]
    assert stats["discarded_distractors"]["regenerated"] == 1
    assert stats["discarded_distractors"]["duplicate_or_equal_to_answer"] >= 3
    positions = {seed: shuffled_options("答", ["甲", "乙", "丙"], seed, "row")[1] for seed in range(20)}
    assert len(set(positions.values())) > 1 and positions[3] == shuffled_options("答", ["甲", "乙", "丙"], 3, "row")[1]
    assert usable_distractors({"distractors": ["A。", "a", " b ", "B", "c"]}, "a") == (["b", "c"], 3)


def test_consultation_rows_are_conversations(endpoint_env, store):
    result = build(load_recipe(RECIPES / "llm_consultation.yaml"), store=store)
    rows = rows_of(result, store)
    assert len(rows) == 3 and all(row["messages"][0]["role"] == "user" for row in rows)
    assert all(row["messages"][-1]["role"] == "assistant" and len(row["messages"]) == 4 for row in rows)
    assert {row["chief_complaint"] for row in rows} >= {"右下腹疼痛一天，伴恶心"}


def test_failing_calls_become_rejects_and_prices_give_a_cost(endpoint_env, store):
    data = recipe_data("llm_clean_qa")
    step = data["steps"][0]["llm_clean"]
    step["endpoint"].update(concurrency=1, attempts=2, backoff=0.01)
    step["prices"] = {"prompt_per_1k": 0.5, "completion_per_1k": 1.5, "currency": "CNY"}
    endpoint_env.faults = ["500", "500", "not_json", "not_json"]
    result = build_data(data, store)
    counts = result.manifest["counts"]
    assert counts["rejects"] == {"llm HTTP 500": 1, "llm not JSON": 1}
    rejects = (result.version.path / "rejects.jsonl").read_text(encoding="utf-8")
    assert '"line":1' in rejects and "感冒" not in rejects
    llm = result.manifest["stats"]["llm"]["llm_clean"]
    assert llm["failed"] == {"HTTP 500": 1, "not JSON": 1} and llm["currency"] == "CNY"
    assert llm["cost"] == pytest.approx(llm["prompt_tokens"] / 1000 * 0.5 + llm["completion_tokens"] / 1000 * 1.5)


def ehr_consultation_recipe(base_url: str, public_reason: str | None = None) -> dict:
    step: dict[str, Any] = {"endpoint": {"base_url": base_url, "model": "m", "attempts": 1}}
    if public_reason:
        step["public_reason"] = public_reason
    return {"name": "ehr-consult", "kind": "conversation",
            "sources": [{"name": "ward", "path": str(DATA / "ehr_sample.jsonl"), "format": "jsonl",
                         "options": {"fields": {"chief_complaint": "主诉", "present_illness": "现病史",
                                                "department": "科室"}}}],
            "steps": [{"llm_consultation": step}]}


def test_ehr_rows_never_reach_a_non_loopback_endpoint(scripted, store):
    remote = f"http://0.0.0.0:{scripted.port}/v1"
    with pytest.raises(MedcurateError, match="rows that were not de-identified to the non-loopback endpoint 0.0.0.0"):
        build_data(ehr_consultation_recipe(remote), store)
    assert scripted.requests == []
    build_data(ehr_consultation_recipe(scripted.url), store)                       # loopback: allowed
    assert scripted.requests
    scripted.reset()
    build_data(ehr_consultation_recipe(remote, public_reason="synthetic notes written for the demo"),
               store.parent / "other-store")                                       # empty cache: it must ask
    assert scripted.requests
    cli = run_medcurate("build", str(write_recipe(store.parent / "ehr.yaml", ehr_consultation_recipe(remote))),
                        "--store", str(store))
    assert cli.returncode != 0 and "Traceback" not in cli.stderr and "refusing to send" in cli.stderr


def write_recipe(path: Path, data: dict) -> Path:
    import json

    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")    # JSON is YAML
    return path


def test_killed_build_resumes_from_the_cache(scripted, tmp_path):
    data = recipe_data("llm_document_qa")
    data["steps"][0]["llm_qa_from_document"]["endpoint"] = {"base_url_env": "MEDCURATE_LLM_URL",
                                                            "model_env": "MEDCURATE_LLM_MODEL", "concurrency": 1}
    for source in data["sources"]:
        source["path"] = str(RECIPES / source["path"])
    recipe = write_recipe(tmp_path / "qa.yaml", data)
    store = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(REPO), "MEDCURATE_LLM_URL": scripted.url,
           "MEDCURATE_LLM_MODEL": "scripted-model"}
    scripted.hang_after = 5
    process = subprocess.Popen([sys.executable, "-m", "medcurate", "build", str(recipe), "--store", str(store)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(scripted.requests) < 6 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert len(scripted.requests) == 6, "the build never reached the hanging call"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert len(list((store / ".llm-cache").rglob("*.json"))) == 5
    assert not (store / "llm-document-qa").exists() or not any((store / "llm-document-qa").glob("[0-9a-f]*"))
    scripted.reset()
    resumed = run_medcurate("build", str(recipe), "--store", str(store), env=env)
    assert resumed.returncode == 0, resumed.stderr
    chunks = 15 + 5                     # selected label sections + guideline passages
    assert len(scripted.requests) == chunks - 5
    scripted.reset()
    fresh_store = tmp_path / "fresh"
    fresh = run_medcurate("build", str(recipe), "--store", str(fresh_store), env=env)
    assert fresh.returncode == 0 and len(scripted.requests) == chunks
    assert sorted(p.name for p in (store / "llm-document-qa").iterdir() if not p.name.startswith(".")) == \
        sorted(p.name for p in (fresh_store / "llm-document-qa").iterdir() if not p.name.startswith("."))


def test_rebuild_from_the_cache_alone_is_byte_identical(endpoint_env, tmp_path, monkeypatch):
    first_store, second_store = tmp_path / "first", tmp_path / "second"
    recipes = ("llm_clean_qa", "llm_document_qa", "llm_mcq", "llm_consultation")
    first = {name: build(load_recipe(RECIPES / f"{name}.yaml"), store=first_store) for name in recipes}
    shutil.copytree(first_store / ".llm-cache", second_store / ".llm-cache")
    monkeypatch.setenv("MEDCURATE_LLM_URL", f"http://127.0.0.1:{free_port()}/v1")      # nothing listens
    for name in recipes:
        again = build(load_recipe(RECIPES / f"{name}.yaml"), store=second_store)
        assert again.version.version == first[name].version.version
        assert RUN_STATS[next(iter(again.manifest["stats"]["llm"]))].live_calls == 0
        for path in sorted(first[name].version.path.rglob("*")):
            if path.is_file():
                relative = path.relative_to(first[name].version.path)
                assert (again.version.path / relative).read_bytes() == path.read_bytes(), relative


def test_template_and_endpoint_errors_are_one_line(endpoint_env, store, monkeypatch):
    data = recipe_data("llm_mcq")
    broken = copy.deepcopy(data)
    broken["steps"][0]["llm_distractors"]["template"] = "nope"
    with pytest.raises(MedcurateError, match="no prompt template 'nope'"):
        build_data(broken, store)
    broken = copy.deepcopy(data)
    broken["steps"][0]["llm_distractors"]["options"] = 3
    with pytest.raises(MedcurateError, match="options must be 4 or 5"):
        build_data(broken, store)
    monkeypatch.delenv("MEDCURATE_LLM_URL")
    cli = run_medcurate("build", str(RECIPES / "llm_mcq.yaml"), "--store", str(store),
                        env={"MEDCURATE_LLM_URL": ""})
    assert cli.returncode != 0 and "no endpoint URL: set MEDCURATE_LLM_URL" in cli.stderr
    assert "Traceback" not in cli.stderr
