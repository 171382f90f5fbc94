"""One engine for every call to an OpenAI-compatible endpoint: bounded concurrency, retries
with backoff, timeouts, and a content-addressed response cache in the store.

Why a cache keyed on content: a build killed halfway resumes without repeating the calls that
finished, and a rebuild from the cache gives the same rows, so the same version id.

The cache key is ``sha256(model, messages, parameters, retry index)``. The endpoint URL is
deliberately *not* part of it: the same model behind another port or host (a test server on a
random port, a colleague's machine, a load balancer) answers the same request the same way, and
the key must not change with where the server happens to listen. Whoever points two different
models at one model name must give them different names. The API key is never part of anything.

Bad responses: transport failures (HTTP 5xx, connection errors, timeouts) are retried with the
same request after an exponential backoff; bad content (empty choices, no text, non-JSON where
JSON was asked) is cached like any answer (nothing that came back is thrown away) and retried as a
new request with the retry index in the key and the seed moved on, so a rebuild replays the same
sequence. When the attempts are used up the item fails with a reason, which steps turn into
rejects. No prompt or answer text ever appears in a reason.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from medcurate.errors import MedcurateError
from medcurate.privacy import is_loopback
from medcurate.schemas import canonical_json

CACHE_FOLDER = ".llm-cache"
Messages = list[dict[str, str]]


class BadResponse(Exception):
    """A response that came back but cannot be used (the reason names no text)."""


@dataclass(frozen=True)
class EndpointSettings:
    base_url: str
    model: str
    api_key: str | None = None
    concurrency: int = 4
    timeout: float = 60.0
    attempts: int = 3
    backoff: float = 0.5

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise MedcurateError("concurrency must be at least 1", field="endpoint.concurrency")
        if self.attempts < 1:
            raise MedcurateError("attempts must be at least 1", field="endpoint.attempts")


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to make. ``params``: temperature, top_p, max_tokens, seed …"""

    messages: Messages
    params: dict[str, Any] = field(default_factory=dict)
    expect_json: bool = False
    allow_empty: bool = False         # an empty answer is an answer (evaluation records what a model said)


@dataclass
class ChatResult:
    text: str | None = None
    value: Any = None                 # parsed answer (JSON, or what the caller's parser returned)
    error: str | None = None          # reason when every attempt failed
    usage: dict[str, int] = field(default_factory=dict)
    responses: int = 0                # responses used (cached or fresh), stable across rebuilds

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class EngineStats:
    """What one engine did. ``live_calls``/``cache_hits`` differ between a build and its rebuild,
    so they are reported, never written into a manifest; ``usage`` is the same both times."""

    live_calls: int = 0
    cache_hits: int = 0
    transport_failures: Counter = field(default_factory=Counter)
    bad_responses: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    responses: int = 0

    def manifest_entry(self, prices: dict[str, float] | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {"responses": self.responses, "prompt_tokens": self.prompt_tokens,
                                 "completion_tokens": self.completion_tokens,
                                 "bad_responses": dict(sorted(self.bad_responses.items())),
                                 "failed": dict(sorted(self.failed.items()))}
        if prices:
            entry["cost"] = round(self.prompt_tokens / 1000 * float(prices.get("prompt_per_1k", 0))
                                  + self.completion_tokens / 1000 * float(prices.get("completion_per_1k", 0)), 6)
            entry["currency"] = prices.get("currency", "USD")
        return entry


# ---------------------------------------------------------------- cache

def cache_key(model: str, messages: Messages, params: dict[str, Any], retry: int = 0) -> str:
    basis = {"model": model, "messages": messages, "params": params, "retry": retry}
    return hashlib.sha256(canonical_json(basis).encode("utf-8")).hexdigest()


class ResponseCache:
    """``STORE/.llm-cache/ab/<key>.json``, one file per response, written atomically the moment
    it arrives (a killed build keeps every finished call)."""

    def __init__(self, root: Path):
        self.root = root

    @classmethod
    def in_store(cls, store: Path) -> ResponseCache:
        return cls(Path(store) / CACHE_FOLDER)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None          # a torn file from a crash long ago: ask again

    def put(self, key: str, record: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        temporary.write_text(json.dumps(record, ensure_ascii=False, sort_keys=True), encoding="utf-8")
        temporary.replace(path)


# ---------------------------------------------------------------- privacy

def refuse_private_rows_to_remote(base_url: str, rows: list[dict[str, Any]], public_reason: str | None,
                                  stage: str) -> None:
    """The endpoint gate, checked before any connection: an endpoint off this machine gets only rows
    that passed de-identification (a ``deid`` step in this recipe, or a de-identified version they
    were read from: both leave the stamp the publish gate checks), unless the recipe declares the
    source public with a reason."""
    from medcurate.deid.gate import gate_problem

    if is_loopback(base_url):      # medcurate/privacy.py: the one loopback test
        return
    if public_reason and str(public_reason).strip():
        return
    unscreened = sum(1 for row in rows if gate_problem(row) is not None)
    if unscreened:
        raise MedcurateError(f"refusing to send {unscreened} of {len(rows)} rows that were not de-identified to the "
                             f"non-loopback endpoint {urlsplit(base_url).hostname}: de-identify them (a deid step, or "
                             "a de-identified version), use a loopback endpoint, or declare the source public with "
                             "`public_reason`", field=f"steps.{stage}.public_reason")


# ---------------------------------------------------------------- answers

def parse_json_answer(text: str) -> Any:
    """The first JSON object or array in a reply (models wrap JSON in prose or code fences)."""
    stripped = (text or "").strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", stripped, re.S)
    if fenced:
        stripped = fenced.group(1).strip()
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = stripped.find(opener), stripped.rfind(closer)
        if start != -1 and end > start:
            try:
                return json.loads(stripped[start:end + 1])
            except json.JSONDecodeError:
                continue
    raise BadResponse("not JSON")


# ---------------------------------------------------------------- engine

class LLMEngine:
    """Chat completions through the ``openai`` client, many at once, cached and retried."""

    def __init__(self, settings: EndpointSettings, cache: ResponseCache | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        import openai

        self.settings = settings
        self.cache = cache
        self.stats = EngineStats()
        self._sleep = sleep
        self._lock = threading.Lock()
        self._openai = openai
        self._client = openai.OpenAI(base_url=settings.base_url, api_key=settings.api_key or "not-needed",
                                     max_retries=0, timeout=settings.timeout)

    def complete(self, request: ChatRequest, parse: Callable[[str], Any] | None = None) -> ChatResult:
        """One request: cached answer or a call, retried; ``parse`` raising BadResponse asks again."""
        result = ChatResult()
        reason = "no attempt"
        for retry in range(self.settings.attempts):
            params = dict(request.params)
            if retry and "seed" in params:
                params["seed"] = int(params["seed"]) + retry
            key = cache_key(self.settings.model, request.messages, params, retry)
            record = self.cache.get(key) if self.cache else None
            if record is not None:
                with self._lock:
                    self.stats.cache_hits += 1
            else:
                try:
                    record = self._fetch(request.messages, params)
                except BadResponse as exc:
                    reason = str(exc)
                    break
                if self.cache:
                    self.cache.put(key, record)
            result.responses += 1
            self._count_usage(result, record)
            try:
                result.text, result.value = self._read(record, request.expect_json, parse, request.allow_empty)
                result.error = None
                return result
            except BadResponse as exc:
                reason = str(exc)
                with self._lock:
                    self.stats.bad_responses[reason] += 1
        result.error = reason
        with self._lock:
            self.stats.failed[reason] += 1
        return result

    def complete_many(self, requests: Sequence[ChatRequest],
                      parse: Callable[[str], Any] | Sequence[Callable[[str], Any] | None] | None = None
                      ) -> list[ChatResult]:
        """Results in request order (so outputs never depend on which call finished first).
        ``parse``: one parser for all, or one per request."""
        parsers = list(parse) if isinstance(parse, Sequence) else [parse] * len(requests)
        if len(parsers) != len(requests):
            raise ValueError("one parser per request")
        jobs = list(zip(requests, parsers, strict=True))
        if self.settings.concurrency == 1 or len(jobs) <= 1:
            return [self.complete(request, parser) for request, parser in jobs]
        with ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="medcurate-llm") as pool:
            return list(pool.map(lambda job: self.complete(*job), jobs))

    def _count_usage(self, result: ChatResult, record: dict[str, Any]) -> None:
        usage = record.get("usage") or {}
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        result.usage = {"prompt_tokens": result.usage.get("prompt_tokens", 0) + prompt,
                        "completion_tokens": result.usage.get("completion_tokens", 0) + completion}
        with self._lock:
            self.stats.responses += 1
            self.stats.prompt_tokens += prompt
            self.stats.completion_tokens += completion

    @staticmethod
    def _read(record: dict[str, Any], expect_json: bool, parse: Callable[[str], Any] | None,
              allow_empty: bool = False) -> tuple[str, Any]:
        if not record.get("choices"):
            raise BadResponse("empty choices")
        text = (record.get("text") or "").strip()
        if not text and not allow_empty:
            raise BadResponse("empty answer")
        if parse is not None:
            return text, parse(text)
        if expect_json:
            return text, parse_json_answer(text)
        return text, text

    def _fetch(self, messages: Messages, params: dict[str, Any]) -> dict[str, Any]:
        """One call with transport retries; a response that came back is returned as a record."""
        openai = self._openai
        reason = "no attempt"
        for attempt in range(self.settings.attempts):
            if attempt:
                self._sleep(self.settings.backoff * 2 ** (attempt - 1))
            try:
                with self._lock:
                    self.stats.live_calls += 1
                response = self._client.chat.completions.create(
                    model=self.settings.model, messages=messages, **params)  # type: ignore[arg-type]
            except openai.APITimeoutError:
                reason = "timeout"
            except openai.APIStatusError as exc:
                reason = f"HTTP {exc.status_code}"
                if exc.status_code < 500 and exc.status_code != 429:
                    with self._lock:
                        self.stats.transport_failures[reason] += 1
                    raise BadResponse(reason) from None
            except openai.APIConnectionError:
                reason = "connection failed"
            except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError):
                reason = "unreadable response"
            else:
                return _record(response)
            with self._lock:
                self.stats.transport_failures[reason] += 1
        raise BadResponse(reason)


def ask_once(base_url: str, model: str, messages: Messages, params: dict[str, Any], *, api_key: str | None = None,
             attempts: int = 3, backoff: float = 1.0, allow_empty: bool = False) -> str:
    """One answer, uncached, retried like every engine call; a lasting failure is one line naming the
    endpoint (evaluation and the annotation judge ask this way)."""
    engine = LLMEngine(EndpointSettings(base_url, model, api_key, concurrency=1, attempts=attempts, backoff=backoff))
    result = engine.complete(ChatRequest(messages, params, allow_empty=allow_empty))
    if not result.ok or result.text is None:
        raise MedcurateError(f"endpoint {base_url} failed after {attempts} attempts: {result.error}", field="endpoint")
    return result.text


def _record(response: Any) -> dict[str, Any]:
    choices = getattr(response, "choices", None) or []
    first = choices[0] if choices else None
    message = getattr(first, "message", None)
    usage = getattr(response, "usage", None)
    return {"text": getattr(message, "content", None) if message is not None else None,
            "choices": len(choices), "finish_reason": getattr(first, "finish_reason", None),
            "usage": {"prompt_tokens": getattr(usage, "prompt_tokens", 0) or 0,
                      "completion_tokens": getattr(usage, "completion_tokens", 0) or 0} if usage else {}}


# ---------------------------------------------------------------- settings from a recipe

_ENDPOINT_KEYS = {"base_url", "base_url_env", "model", "model_env", "api_key_env", "concurrency", "timeout",
                  "attempts", "backoff"}


def endpoint_from_params(params: dict[str, Any] | None, stage: str) -> EndpointSettings:
    """A step's ``endpoint`` mapping -> settings. URL and model may come from environment variables
    (``base_url_env``, ``model_env``) so a recipe names no host; the env value wins when set."""
    params = dict(params or {})
    where = f"steps.{stage}.endpoint"
    unknown = sorted(set(params) - _ENDPOINT_KEYS)
    if unknown:
        raise MedcurateError(f"unknown endpoint key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_ENDPOINT_KEYS))}",
                             field=where)
    base_url = os.environ.get(params["base_url_env"]) if params.get("base_url_env") else None
    model = os.environ.get(params["model_env"]) if params.get("model_env") else None
    base_url = base_url or params.get("base_url")
    model = model or params.get("model")
    if not base_url:
        raise MedcurateError(f"no endpoint URL: set {params.get('base_url_env') or 'base_url'}", field=where)
    if not model:
        raise MedcurateError(f"no model name: set {params.get('model_env') or 'model'}", field=where)
    try:
        return EndpointSettings(base_url=str(base_url), model=str(model),
                                api_key=os.environ.get(str(params.get("api_key_env") or "OPENAI_API_KEY")),
                                concurrency=int(params.get("concurrency", 4)), timeout=float(params.get("timeout", 60)),
                                attempts=int(params.get("attempts", 3)), backoff=float(params.get("backoff", 0.5)))
    except (TypeError, ValueError):
        raise MedcurateError("concurrency, attempts, timeout and backoff must be numbers", field=where) from None
