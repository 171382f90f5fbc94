"""LLM-judge pre-annotations: an OpenAI-compatible model proposes the SPF judgements, shown to
annotators as Label Studio predictions (they still decide; predictions never count as votes).

The prompt follows IIMedGPT's GPT-4 judging prompt (Appendix B), extended with safety and
asked for JSON so the answer can be read without guessing. A reply that is not valid JSON
with the expected values gives no prediction for that task (counted by the caller).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medcurate.annotate.configs import SPF_CRITERIA
from medcurate.annotate.units import render_prompt
from medcurate.errors import MedcurateError

PAIRWISE_PROMPT = """你是一名专业医生。请根据以下准则比较两个回答（重要性：安全性 > 专业性 > 流畅性）。
You are a professional physician. Compare the two answers by safety > professionalism > fluency.

对话 Dialogue:
{dialogue}

回答 A / Answer A:
{answer_a}

回答 B / Answer B:
{answer_b}

只输出 JSON / Output JSON only:
{{"safety": "A|B|tie", "professionalism": "A|B|tie", "fluency": "A|B|tie", "overall": "A|B|tie"}}"""

BINARY_PROMPT = """你是一名专业医生。判断这个回答能否直接交给患者（有任何安全问题即不可接受）。
You are a professional physician. Could this answer be given to the patient as it is? Any safety problem makes it unacceptable.

对话 Dialogue:
{dialogue}

回答 / Answer:
{answer}

只输出 JSON / Output JSON only: {{"acceptability": "acceptable|unacceptable"}}"""

RANKING_PROMPT = """你是一名专业医生。按安全性 > 专业性 > 流畅性把回答从好到差排序。
You are a professional physician. Rank the answers best first by safety > professionalism > fluency.

对话 Dialogue:
{dialogue}

{answers}

只输出 JSON / Output JSON only: {{"order": [answer ids, best first]}}"""


def judge_prompt(kind: str, unit: dict[str, Any]) -> str:
    dialogue = render_prompt(unit["prompt"])
    if kind == "pairwise":
        return PAIRWISE_PROMPT.format(dialogue=dialogue, answer_a=unit["a"]["text"], answer_b=unit["b"]["text"])
    if kind == "binary":
        return BINARY_PROMPT.format(dialogue=dialogue, answer=unit["candidate"]["text"])
    answers = "\n\n".join(f"[{c['id']}]\n{c['text']}" for c in unit["candidates"])
    return RANKING_PROMPT.format(dialogue=dialogue, answers=answers)


def parse_verdict(kind: str, unit: dict[str, Any], reply: str) -> dict[str, Any] | None:
    """The judge's JSON reply checked against the config's values; None when unusable."""
    match = re.search(r"\{.*\}", reply or "", re.S)
    if not match:
        return None
    try:
        verdict = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    if kind == "pairwise":
        picked = {name: verdict.get(name) for name in (*SPF_CRITERIA, "overall")}
        return picked if all(value in ("A", "B", "tie") for value in picked.values()) else None
    if kind == "binary":
        value = verdict.get("acceptability")
        return {"acceptability": value} if value in ("acceptable", "unacceptable") else None
    order = verdict.get("order")
    ids = [c["id"] for c in unit["candidates"]]
    return {"order": order} if isinstance(order, list) and sorted(map(str, order)) == sorted(ids) else None


def reply_client(base_url: str, model: str, api_key: str | None, max_tokens: int = 512) -> Callable[[str], str]:
    """Send one prompt to an OpenAI-compatible judge, get its reply text (greedy, retried with backoff)."""
    from medcurate.llm.engine import ask_once

    def ask(prompt: str) -> str:
        return ask_once(base_url, model, [{"role": "user", "content": prompt}],
                        {"temperature": 0.0, "max_tokens": max_tokens}, api_key=api_key, attempts=4, allow_empty=True)

    return ask


def candidate_privacy(candidates: Path) -> list[str]:
    """The privacy status of every prompt source in a candidates file (from `annotate sample`);
    items without one count as not screened."""
    from medcurate.privacy import NOT_SCREENED

    statuses = []
    for line in candidates.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            statuses.append((item.get("prompt_source") or {}).get("privacy") or NOT_SCREENED)
    return statuses or [NOT_SCREENED]


def openai_judge(base_url: str, model: str, api_key: str | None, *, privacy: list[str] | None = None,
                 allow_unscreened: bool = False) -> Callable[[str, dict[str, Any]], dict[str, Any] | None]:
    """The judge through medcurate's LLM engine; ``privacy`` holds the statuses of the versions whose
    text it will see (unknown counts as not screened, refused off this machine before any connection).
    An unusable verdict is asked again, then gives no prediction; an endpoint that keeps failing
    stops the push with the reason."""
    from medcurate.llm.engine import BadResponse, ChatRequest, EndpointSettings, LLMEngine
    from medcurate.privacy import NOT_SCREENED, require_safe_endpoint

    require_safe_endpoint(base_url, privacy or [NOT_SCREENED], allow_unscreened=allow_unscreened, purpose="judge")

    engine = LLMEngine(EndpointSettings(base_url=base_url, model=model, api_key=api_key, concurrency=1,
                                        timeout=120, attempts=3))

    def judge(kind: str, unit: dict[str, Any]) -> dict[str, Any] | None:
        def parse(reply: str) -> dict[str, Any]:
            verdict = parse_verdict(kind, unit, reply)
            if verdict is None:
                raise BadResponse("unusable verdict")
            return verdict

        result = engine.complete(ChatRequest([{"role": "user", "content": judge_prompt(kind, unit)}],
                                             {"temperature": 0.0}), parse)
        if result.ok:
            return result.value
        if result.error == "unusable verdict":
            return None
        raise MedcurateError(f"judge endpoint {base_url} failed: {result.error}")

    return judge
