"""Answers from any OpenAI-compatible endpoint, retried with backoff; a lasting failure or a garbage
reply becomes one line naming the endpoint (the caller keeps the predictions finished so far)."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from medcurate.errors import MedcurateError


def chat_client(base_url: str, api_key: str | None = None, timeout: float = 120.0):
    import openai

    return openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", max_retries=0, timeout=timeout)


def complete_with_retry(client, base_url: str, model: str, messages: list[dict[str, str]],
                        settings: dict[str, Any], retries: int = 3, backoff_s: float = 1.0,
                        sleep: Callable[[float], None] = time.sleep) -> str:
    """The reply's text; retried ``retries`` times (backoff doubling) on errors and empty replies."""
    import openai

    problem = ""
    for attempt in range(retries + 1):
        if attempt:
            sleep(backoff_s * 2 ** (attempt - 1))
        try:
            response = client.chat.completions.create(
                model=model, messages=messages, temperature=settings.get("temperature", 0.0),
                max_tokens=settings.get("max_new_tokens"), seed=settings.get("seed"))
        except openai.APIError as exc:
            problem = type(exc).__name__
            continue
        choices = getattr(response, "choices", None) or []
        content = choices[0].message.content if choices and choices[0].message else None
        if isinstance(content, str):
            return content.strip()
        problem = "a reply without message content"
    raise MedcurateError(f"endpoint {base_url} failed after {retries + 1} attempts: {problem}", field="endpoint")
