"""The LLM engine against a local scripted endpoint: faults become retries then reasons, every
answer that came back is cached, the cache key ignores the endpoint's address, and rows that were
not de-identified never reach a non-loopback endpoint."""
from __future__ import annotations

import json
from typing import Any

import pytest

from medcurate.errors import MedcurateError
from medcurate.llm.engine import (
    BadResponse,
    ChatRequest,
    EndpointSettings,
    LLMEngine,
    ResponseCache,
    cache_key,
    endpoint_from_params,
    parse_json_answer,
    refuse_private_rows_to_remote,
)
from medcurate.privacy import is_loopback
from tests.conftest import free_port

CLEAN_PROMPT = 'Record (JSON):\n{"answer": "多休息"}\n{"decision": "keep|fix|drop"}'


def engine_for(url: str, tmp_path, **overrides) -> LLMEngine:
    settings: dict[str, Any] = dict(base_url=url, model="scripted", concurrency=1, timeout=0.5, attempts=3, backoff=0.01)
    settings.update(overrides)
    return LLMEngine(EndpointSettings(**settings), ResponseCache(tmp_path / "cache"))


def request(seed: int = 0, expect_json: bool = True) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": CLEAN_PROMPT}], {"temperature": 0.0, "seed": seed}, expect_json)


def cached_files(tmp_path) -> list:
    return sorted((tmp_path / "cache").rglob("*.json"))


def test_http_500_is_retried_with_the_same_request(scripted, tmp_path):
    scripted.faults = ["500", "500"]
    engine = engine_for(scripted.url, tmp_path)
    result = engine.complete(request())
    assert result.ok and result.value == {"decision": "keep", "reason": "other", "note": ""}
    assert len(scripted.requests) == 3 and engine.stats.transport_failures["HTTP 500"] == 2
    assert scripted.requests[0] == scripted.requests[2]
    assert len(cached_files(tmp_path)) == 1


@pytest.mark.parametrize("fault, reason", [("500", "HTTP 500"), ("garbage", "unreadable response"),
                                           ("hang", "timeout")])
def test_a_fault_that_persists_becomes_a_reason(scripted, tmp_path, fault, reason):
    scripted.faults = [fault] * 3
    engine = engine_for(scripted.url, tmp_path)
    result = engine.complete(request())
    assert not result.ok and result.error == reason
    assert len(scripted.requests) == 3 and engine.stats.failed[reason] == 1
    assert cached_files(tmp_path) == []


@pytest.mark.parametrize("fault, reason", [("empty", "empty choices"), ("not_json", "not JSON")])
def test_bad_content_is_kept_and_asked_again_with_the_next_seed(scripted, tmp_path, fault, reason):
    scripted.faults = [fault]
    engine = engine_for(scripted.url, tmp_path)
    result = engine.complete(request(seed=5))
    assert result.ok and result.responses == 2 and engine.stats.bad_responses[reason] == 1
    assert [body["seed"] for body in scripted.requests] == [5, 6]
    assert len(cached_files(tmp_path)) == 2          # the bad answer is kept, not thrown away
    scripted.reset()
    again = engine_for(scripted.url, tmp_path).complete(request(seed=5))
    assert again.ok and again.value == result.value and again.responses == 2 and scripted.requests == []


def test_bad_content_every_time_is_rejected_with_its_reason(scripted, tmp_path):
    scripted.faults = ["not_json"] * 3
    result = engine_for(scripted.url, tmp_path).complete(request())
    assert result.error == "not JSON" and len(cached_files(tmp_path)) == 3
    assert "多休息" not in result.error


def test_cache_key_ignores_the_endpoint_address_but_not_model_prompt_or_parameters(scripted, tmp_path):
    messages = [{"role": "user", "content": "问"}]
    key = cache_key("m", messages, {"temperature": 0.0})
    assert key == cache_key("m", [dict(messages[0])], {"temperature": 0.0})
    assert len({key, cache_key("m2", messages, {"temperature": 0.0}), cache_key("m", messages, {"temperature": 0.5}),
                cache_key("m", [{"role": "user", "content": "问。"}], {"temperature": 0.0}),
                cache_key("m", messages, {"temperature": 0.0}, retry=1)}) == 5
    engine_for(scripted.url, tmp_path).complete(request())
    elsewhere = engine_for(f"http://127.0.0.1:{free_port()}/v1", tmp_path)    # nothing listens there
    assert elsewhere.complete(request()).ok and elsewhere.stats.live_calls == 0


def test_bounded_concurrency_keeps_request_order(scripted, tmp_path):
    engine = engine_for(scripted.url, tmp_path, concurrency=4)
    requests = [ChatRequest([{"role": "user", "content": f"问题{n}"}], {"seed": n}, False) for n in range(12)]
    results = engine.complete_many(requests)
    assert [r.text for r in results] == [f"回答{n}：请注意休息。" for n in range(12)]
    assert engine.stats.responses == 12 and engine.stats.prompt_tokens == sum(len(f"问题{n}") for n in range(12))


def test_json_answers_are_found_in_prose_and_fences():
    assert parse_json_answer('好的：\n```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json_answer('Verdict: {"a": [1, 2]} done') == {"a": [1, 2]}
    assert parse_json_answer('["x"]') == ["x"]
    with pytest.raises(BadResponse):
        parse_json_answer("no json {here")


def test_loopback_check():
    assert all(is_loopback(url) for url in ("http://127.0.0.1:8000/v1", "http://127.8.9.1/v1", "http://[::1]:80/v1",
                                             "http://localhost:1/v1", "http://LOCALHOST/v1"))
    assert not any(is_loopback(url) for url in ("http://0.0.0.0:8000/v1", "https://api.example.com/v1",
                                                 "http://10.0.0.2/v1", "http://[::]:80/v1", "http://127.0.0.1.nip.io/v1"))


def test_remote_endpoints_get_only_deidentified_rows_or_declared_public_sources():
    from medcurate.deid.gate import mark_deidentified

    remote = "http://0.0.0.0:1/v1"
    screened = {"instruction": "头疼怎么办", "answer": "多休息。"}
    mark_deidentified(screened, ["instruction", "answer"], "mask", threshold=0.5)
    unscreened = {"instruction": "胃痛怎么办", "answer": "清淡饮食。"}
    refuse_private_rows_to_remote(remote, [screened], public_reason=None, stage="s")
    refuse_private_rows_to_remote("http://127.0.0.1:1/v1", [unscreened], public_reason=None, stage="s")
    refuse_private_rows_to_remote(remote, [unscreened], public_reason="published corpus", stage="s")
    with pytest.raises(MedcurateError, match="refusing to send 1 of 2 rows that were not de-identified") as info:
        refuse_private_rows_to_remote(remote, [screened, unscreened], public_reason="  ", stage="s")
    assert info.value.field == "steps.s.public_reason"
    edited = dict(screened, answer="改过的回答")                          # text changed after the deid step
    with pytest.raises(MedcurateError, match="not de-identified"):
        refuse_private_rows_to_remote(remote, [edited], public_reason=None, stage="s")


def test_endpoint_settings_from_environment(monkeypatch):
    monkeypatch.setenv("LLM_URL_T", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("LLM_MODEL_T", raising=False)
    settings = endpoint_from_params({"base_url_env": "LLM_URL_T", "model": "m", "concurrency": 2}, "llm_clean")
    assert (settings.base_url, settings.model, settings.concurrency) == ("http://127.0.0.1:9/v1", "m", 2)
    with pytest.raises(MedcurateError, match="no model name: set LLM_MODEL_T"):
        endpoint_from_params({"base_url_env": "LLM_URL_T", "model_env": "LLM_MODEL_T"}, "llm_clean")
    with pytest.raises(MedcurateError, match="unknown endpoint key"):
        endpoint_from_params({"base_url": "x", "model": "m", "url": "y"}, "llm_clean")
    with pytest.raises(MedcurateError, match="concurrency must be at least 1"):
        endpoint_from_params({"base_url": "x", "model": "m", "concurrency": 0}, "llm_clean")


def test_cache_survives_a_torn_file(scripted, tmp_path):
    engine = engine_for(scripted.url, tmp_path)
    engine.complete(request())
    (path,) = cached_files(tmp_path)
    path.write_text('{"text": "trunc', encoding="utf-8")
    again = engine_for(scripted.url, tmp_path)
    assert again.complete(request()).ok and again.stats.live_calls == 1
    assert json.loads(path.read_text(encoding="utf-8"))["choices"] == 1
