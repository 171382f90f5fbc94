"""Candidate answers to annotate: k samples per prompt from a local transformers model (optionally
with a LoRA adapter) or from any OpenAI-compatible endpoint, with near-duplicate pairs flagged.

Output: one JSONL line per prompt::

    {"item_id", "prompt": str | [messages], "prompt_source": {"dataset", "row_id"},
     "candidates": [{"id": "c0", "text", "model"}], "near_duplicates": [["c0", "c1", 0.97]],
     "sampling": {backend, model, k, temperature, top_p, max_new_tokens, seed, adapter}}

torch / transformers / peft are imported only inside ``sample_local``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medcurate.conversion import prompt_messages, prompt_of
from medcurate.errors import MedcurateError
from medcurate.lineage import model_link, record, resolve_adapter, version_link, write_lineage
from medcurate.readers import file_sha256
from medcurate.schemas import canonical_json


@dataclass(frozen=True)
class SamplingSettings:
    backend: str                  # local | openai
    model: str
    k: int = 2
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 256
    seed: int = 0
    adapter: str | None = None
    base_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_prompts(ref: str, store: str | Path | None, split: str | None, limit: int | None) -> list[dict[str, Any]]:
    """Prompt items from a published version (its rows' ids become the item ids)."""
    from medcurate.privacy import privacy_status
    from medcurate.store import load_rows, resolve

    version = resolve(ref, store)
    privacy = privacy_status(version.manifest)
    items = []
    for split_name, rows in load_rows(version, store=store, split=split).items():
        for row in rows:
            prompt = prompt_of(row)
            row_id = row.get("id") or hashlib.sha256(canonical_json(prompt).encode()).hexdigest()[:16]
            items.append({"item_id": row_id, "prompt": prompt,
                          "prompt_source": {"dataset": version.ref, "split": split_name, "row_id": row_id,
                                            "privacy": privacy}})
            if limit is not None and len(items) >= limit:
                return items
    return items


def char_ngrams(text: str, n: int = 2) -> set[str]:
    compact = "".join(text.split())
    if len(compact) < n:
        return {compact} if compact else set()
    return {compact[i:i + n] for i in range(len(compact) - n + 1)}


def similarity(first: str, second: str) -> float:
    """Jaccard similarity of character bigrams (works for Chinese without a tokenizer)."""
    a, b = char_ngrams(first), char_ngrams(second)
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def near_duplicate_pairs(candidates: list[dict[str, Any]], threshold: float) -> list[list[Any]]:
    """Candidate pairs too similar to be worth comparing, with their similarity."""
    flagged = []
    for first, second in itertools.combinations(candidates, 2):
        score = similarity(first["text"], second["text"])
        if score >= threshold:
            flagged.append([first["id"], second["id"], round(score, 4)])
    return flagged


def make_items(prompts: list[dict[str, Any]], generate: Callable[[list[dict[str, str]], int], list[str]],
               settings: SamplingSettings, threshold: float) -> Iterable[dict[str, Any]]:
    for item in prompts:
        texts = generate(prompt_messages(item["prompt"]), settings.k)
        candidates = [{"id": f"c{index}", "text": text, "model": settings.model} for index, text in enumerate(texts)]
        yield {**item, "candidates": candidates, "near_duplicates": near_duplicate_pairs(candidates, threshold),
               "sampling": settings.to_dict()}


def openai_generator(settings: SamplingSettings, api_key: str | None, *, privacy: Iterable[str] = ("not screened",),
                     allow_unscreened: bool = False) -> Callable[[list[dict[str, str]], int], list[str]]:
    """k chat completions per prompt from an OpenAI-compatible endpoint through medcurate's LLM
    engine (one request each, since not every server honours ``n``; seeds differ per sample so
    answers differ; retries, timeouts and k requests in parallel come from the engine). ``privacy``:
    the statuses of the versions whose text is sent (medcurate/privacy.py refuses unscreened text
    to an endpoint off this machine before any connection)."""
    from medcurate.llm.engine import ChatRequest, EndpointSettings, LLMEngine
    from medcurate.privacy import require_safe_endpoint

    require_safe_endpoint(settings.base_url, privacy, allow_unscreened=allow_unscreened, purpose="annotate sample")
    engine = LLMEngine(EndpointSettings(base_url=str(settings.base_url), model=settings.model, api_key=api_key,
                                        concurrency=min(settings.k, 4), timeout=120, attempts=3))

    def generate(messages: list[dict[str, str]], k: int) -> list[str]:
        requests = [ChatRequest(messages, {"temperature": settings.temperature, "top_p": settings.top_p,
                                           "max_tokens": settings.max_new_tokens, "seed": settings.seed + index})
                    for index in range(k)]
        answers = []
        for result in engine.complete_many(requests):
            if not result.ok:
                raise MedcurateError(f"endpoint {settings.base_url} failed: {result.error}")
            answers.append(result.text or "")
        return answers

    return generate


def local_generator(settings: SamplingSettings) -> Callable[[list[dict[str, str]], int], list[str]]:
    """k sampled answers per prompt from a local transformers model folder (+ LoRA adapter)."""
    model_path = Path(settings.model)
    if not model_path.is_dir():
        raise MedcurateError("model folder not found", file=settings.model, field="model")
    adapter = resolve_adapter(settings.adapter).adapter_dir if settings.adapter else None
    from medcurate.train.quiet import silence_torch_warnings

    silence_torch_warnings()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    base = AutoModelForCausalLM.from_pretrained(model_path)
    if adapter is not None:
        from peft import PeftModel

        model: Any = PeftModel.from_pretrained(base, str(adapter))  # generate() on base or adapter alike
    else:
        model = base
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    calls = itertools.count()

    def generate(messages: list[dict[str, str]], k: int) -> list[str]:
        if tokenizer.chat_template:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = "\n".join(m["content"] for m in messages) + "\n"
        inputs = tokenizer(text, return_tensors="pt", add_special_tokens=not tokenizer.chat_template)
        torch.manual_seed(settings.seed + next(calls))
        with torch.no_grad():
            output = model.generate(**inputs, do_sample=True, temperature=settings.temperature, top_p=settings.top_p,
                                    max_new_tokens=settings.max_new_tokens, num_return_sequences=k,
                                    pad_token_id=tokenizer.pad_token_id)
        prompt_length = inputs["input_ids"].shape[1]
        return [str(tokenizer.decode(sequence[prompt_length:], skip_special_tokens=True)).strip() for sequence in output]

    return generate


def write_candidates_lineage(path: Path, items: list[dict[str, Any]], settings: SamplingSettings,
                             store: str | Path | None) -> Path:
    """``FILE.lineage.json``: the prompt versions, and the model and adapter that sampled (by hash),
    or the endpoint and model name (nothing to hash there)."""
    from medcurate.store import resolve

    prompt_versions = sorted({item["prompt_source"]["dataset"] for item in items if item.get("prompt_source")})
    inputs = [version_link(resolve(ref, store), store) for ref in prompt_versions]
    sampler: dict[str, Any] = {"backend": settings.backend, "model": settings.model, "adapter": None}
    if settings.backend == "local":
        inputs.append(model_link(settings.model))
        sampler["model"] = str(Path(settings.model).resolve())
        if settings.adapter:
            adapter = resolve_adapter(settings.adapter)
            inputs.append(adapter.link())
            sampler["adapter"] = str(adapter.adapter_dir)
            sampler["adapter_run"] = str(adapter.run_dir) if adapter.run_dir else None
    else:
        sampler["endpoint"] = settings.base_url
    return write_lineage(path, record("candidates", inputs, prompt_versions=prompt_versions, sampler=sampler,
                                      sampling=settings.to_dict(), sha256=file_sha256(path)))

def write_items(path: Path, items: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
            written += 1
    temporary.replace(path)
    return written
