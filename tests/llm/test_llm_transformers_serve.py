"""The engine, a recipe step and ``annotate sample`` against a real ``transformers serve`` with a
tiny local Llama on 127.0.0.1 (its answers are noise: JSON-asking steps must reject them with a
reason, never crash or lose a row)."""
from __future__ import annotations

import json
import shutil

import pytest

from medcurate.build import build
from medcurate.llm.engine import ChatRequest, EndpointSettings, LLMEngine, ResponseCache
from medcurate.recipe import recipe_from_dict
from medcurate.store import load_rows
from tests.conftest import REPO, free_port, run_medcurate

pytestmark = pytest.mark.slow


def consultation_recipe(base_url: str, model: str) -> dict:
    return {"name": "served-consultation", "kind": "conversation", "seed": 3,
            "sources": [{"name": "complaints", "path": str(REPO / "examples" / "data" / "chief_complaints.jsonl"),
                         "format": "jsonl"}],
            "steps": [{"llm_consultation": {"endpoint": {"base_url": base_url, "model": model, "concurrency": 2,
                                                         "timeout": 120, "attempts": 2, "backoff": 0.01},
                                            "max_tokens": 24}}]}


def test_engine_talks_to_transformers_serve(transformers_endpoint, tmp_path):
    base_url, model = transformers_endpoint
    engine = LLMEngine(EndpointSettings(base_url, model, concurrency=2, timeout=120), ResponseCache(tmp_path / "c"))
    requests = [ChatRequest([{"role": "user", "content": f"头疼{n}天怎么办？"}], {"max_tokens": 8, "seed": n})
                for n in range(4)]
    results = engine.complete_many(requests)
    assert all(r.ok and r.text for r in results)
    assert engine.stats.live_calls == 4 and engine.stats.prompt_tokens > 0 and engine.stats.completion_tokens > 0
    again = LLMEngine(EndpointSettings(base_url, model), ResponseCache(tmp_path / "c"))
    assert [r.text for r in again.complete_many(requests)] == [r.text for r in results]
    assert again.stats.live_calls == 0


def test_recipe_step_against_transformers_serve_and_cached_rebuild(transformers_endpoint, tmp_path):
    base_url, model = transformers_endpoint
    store = tmp_path / "store"
    result = build(recipe_from_dict(consultation_recipe(base_url, model), origin="test"), store=store)
    counts = result.manifest["counts"]
    produced = sum(counts["splits"].values())
    rejected = sum(counts["rejects"].values())
    assert produced + rejected == 3
    assert all(reason.startswith("llm ") for reason in counts["rejects"])
    llm = result.manifest["stats"]["llm"]["llm_consultation"]
    assert llm["model"] == model and llm["responses"] >= 3 and llm["completion_tokens"] > 0
    second = tmp_path / "second"
    shutil.copytree(store / ".llm-cache", second / ".llm-cache")
    dead = f"http://127.0.0.1:{free_port()}/v1"
    again = build(recipe_from_dict(consultation_recipe(dead, model), origin="test"), store=second)
    assert again.manifest["recipe"] != result.manifest["recipe"]        # the URL was written in this recipe
    assert load_rows(again.version, store=second) == load_rows(result.version, store=store)
    assert (again.version.path / "rejects.jsonl").read_bytes() == (result.version.path / "rejects.jsonl").read_bytes()


def test_annotate_sample_through_the_engine(transformers_endpoint, tmp_path):
    base_url, model = transformers_endpoint
    store = tmp_path / "store"
    prompts = {"name": "prompts", "kind": "instruction",
               "sources": [{"name": "qa", "path": str(REPO / "examples" / "data" / "consultations.jsonl"),
                            "format": "jsonl", "options": {"fields": {"instruction": "问题", "answer": "回答"},
                                                           "defaults": {"query": "", "task": "qa"}}}]}
    ref = build(recipe_from_dict(prompts, origin="test"), store=store).version.ref
    out = tmp_path / "candidates.jsonl"
    result = run_medcurate("annotate", "sample", "--prompts", ref, "--k", "2", "--model", model, "--base-url", base_url,
                           "--limit", "2", "--max-new-tokens", "8", "--out", str(out), "--store", str(store))
    assert result.returncode == 0, result.stderr
    items = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(items) == 2 and all(len(item["candidates"]) == 2 for item in items)
    assert items[0]["sampling"]["backend"] == "openai" and items[0]["sampling"]["model"] == model
