"""Recipe steps that call an LLM: ``llm_clean``, ``llm_qa_from_document``, ``llm_consultation``,
``llm_distractors``. Each renders a prompt template from ``templates/llm/`` (``$field``
placeholders; the template's name, sha256 and text go into the manifest) and sends every row
through one :class:`~medcurate.llm.engine.LLMEngine`, whose cache lives in the store.

Shared parameters of every step::

    endpoint: {base_url_env: MEDCURATE_LLM_URL, model_env: MEDCURATE_LLM_MODEL,   # or base_url / model
               concurrency: 4, timeout: 60, attempts: 3, backoff: 0.5, api_key_env: OPENAI_API_KEY}
    template: clean            # a name in templates/llm/ or a .txt path beside the recipe
    temperature: 0.0
    max_tokens: 512
    prices: {prompt_per_1k: 0.0, completion_per_1k: 0.0, currency: USD}   # optional -> cost in manifest
    public_reason: "..."       # only to send rows that were not de-identified to a non-loopback endpoint

A row whose calls all fail is rejected as ``llm <reason>`` (timeout, HTTP 500, not JSON …).
"""
from __future__ import annotations

import hashlib
import logging
import random
import re
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError
from medcurate.llm.engine import (
    BadResponse,
    ChatRequest,
    EngineStats,
    LLMEngine,
    ResponseCache,
    endpoint_from_params,
    parse_json_answer,
    refuse_private_rows_to_remote,
)
from medcurate.pipeline import Row, StepContext, register_step
from medcurate.resources import data_file
from medcurate.schemas import canonical_json

log = logging.getLogger("medcurate.llm")

CLEAN_REASONS = ("factual_error", "unsafe", "off_topic", "incomplete", "grammar", "other")
CLEANABLE_FIELDS = ("instruction", "query", "answer")
RUN_STATS: dict[str, EngineStats] = {}
"""The last run's engine statistics per step (live calls vs cache hits), for reports and tests."""


@dataclass
class LLMStep:
    """What every LLM step needs: the engine, its template and the request parameters."""

    stage: str
    engine: LLMEngine
    template_name: str
    template: string.Template
    template_sha256: str
    params: dict[str, Any]
    prices: dict[str, Any] | None

    def request(self, values: dict[str, Any], expect_json: bool = True) -> ChatRequest:
        prompt = self.template.safe_substitute({key: str(value) for key, value in values.items()})
        return ChatRequest([{"role": "user", "content": prompt}], dict(self.params), expect_json)

    def finish(self, ctx: StepContext, **extra: Any) -> None:
        stats = self.engine.stats
        RUN_STATS[self.stage] = stats
        entry = {"model": self.engine.settings.model, "template": self.template_name,
                 "template_sha256": self.template_sha256, "template_text": self.template.template,
                 "parameters": self.params, **stats.manifest_entry(self.prices), **extra}
        ctx.card.stats.setdefault("llm", {})[self.stage] = entry
        log.info("%s: %d live call(s), %d cached answer(s)", self.stage, stats.live_calls, stats.cache_hits)


def load_template(name: str, ctx: StepContext) -> tuple[str, str]:
    """(display name, text) of a template: ``templates/llm/NAME.txt`` or a path beside the recipe."""
    if name.endswith(".txt"):
        path = ctx.resolve_path(name)
    else:
        try:
            path = data_file("templates", f"llm/{name}.txt")
        except FileNotFoundError:
            raise MedcurateError(f"no prompt template {name!r} in templates/llm/",
                                 field=f"steps.{ctx.stage}.template") from None
    if not path.is_file():
        raise MedcurateError("prompt template not found", file=str(path), field=f"steps.{ctx.stage}.template")
    return (name if not name.endswith(".txt") else Path(name).name), path.read_text(encoding="utf-8")


def setup(rows: list[Row], ctx: StepContext, *, endpoint: dict[str, Any] | None, template: str,
          temperature: float, max_tokens: int, prices: dict[str, Any] | None,
          public_reason: str | None) -> LLMStep:
    settings = endpoint_from_params(endpoint, ctx.stage)
    refuse_private_rows_to_remote(settings.base_url, rows, public_reason, ctx.stage)
    name, text = load_template(template, ctx)
    engine = LLMEngine(settings, ResponseCache.in_store(ctx.store))
    params = {"temperature": float(temperature), "max_tokens": int(max_tokens), "seed": int(ctx.seed)}
    return LLMStep(ctx.stage, engine, name, string.Template(text),
                   hashlib.sha256(text.encode("utf-8")).hexdigest(), params, prices)


def _reject_failed(ctx: StepContext, row: Row, reason: str | None) -> None:
    ctx.reject(row, f"llm {reason}", "llm")


# ---------------------------------------------------------------- llm_clean

@register_step("llm_clean", reads=CLEANABLE_FIELDS, writes=(*CLEANABLE_FIELDS, "llm_clean"))
def llm_clean(rows: list[Row], ctx: StepContext, endpoint: dict[str, Any] | None = None, template: str = "clean",
              fields: list[str] | None = None, temperature: float = 0.0, max_tokens: int = 512,
              prices: dict[str, Any] | None = None, public_reason: str | None = None) -> list[Row]:
    """IvyGPT's LLM cleaning: each row judged keep / fix / drop with a reason. Fixed rows keep the
    original text under ``llm_clean.original``; drops are counted by reason (``llm_drop:unsafe`` …)."""
    fields = list(fields or CLEANABLE_FIELDS)
    step = setup(rows, ctx, endpoint=endpoint, template=template, temperature=temperature, max_tokens=max_tokens,
                 prices=prices, public_reason=public_reason)

    def parse(text: str) -> dict[str, Any]:
        verdict = parse_json_answer(text)
        if not isinstance(verdict, dict) or verdict.get("decision") not in ("keep", "fix", "drop"):
            raise BadResponse("no keep/fix/drop decision")
        if verdict["decision"] == "fix":
            fixed = verdict.get("fixed")
            if not isinstance(fixed, dict) or not any(
                    key in fields and isinstance(value, str) and value.strip() for key, value in fixed.items()):
                raise BadResponse("fix without fixed fields")
        return verdict

    requests = [step.request({"record": canonical_json({key: row.get(key) for key in fields if row.get(key) is not None}),
                              "fields": ", ".join(fields)}) for row in rows]
    results = step.engine.complete_many(requests, parse)
    kept: list[Row] = []
    decisions: Counter = Counter()
    for row, result in zip(rows, results, strict=True):
        if not result.ok:
            _reject_failed(ctx, row, result.error)
            continue
        verdict = result.value
        reason = verdict.get("reason") if verdict.get("reason") in CLEAN_REASONS else "other"
        decisions[verdict["decision"]] += 1
        if verdict["decision"] == "drop":
            ctx.drop(row, f"llm_drop:{reason}")
            continue
        review: dict[str, Any] = {"decision": verdict["decision"], "reason": reason}
        if verdict["decision"] == "fix":
            changed = {key: value.strip() for key, value in verdict["fixed"].items()
                       if key in fields and isinstance(value, str) and value.strip() and value.strip() != row.get(key)}
            review["original"] = {key: row.get(key) for key in changed}
            review["note"] = str(verdict.get("note") or "")
            row = {**row, **changed}
        kept.append({**row, "llm_clean": review})
    step.finish(ctx, decisions=dict(sorted(decisions.items())))
    return kept


# ---------------------------------------------------------------- llm_qa_from_document

@register_step("llm_qa_from_document", reads=("chunk_id", "text", "title", "section"),
               writes=("instruction", "query", "answer", "task", "chunk_id", "document_id"))
def llm_qa_from_document(rows: list[Row], ctx: StepContext, endpoint: dict[str, Any] | None = None,
                         template: str = "qa_from_document", per_chunk: int = 2, sections: list[str] | None = None,
                         task: str | None = None, temperature: float = 0.0, max_tokens: int = 768,
                         prices: dict[str, Any] | None = None, public_reason: str | None = None) -> list[Row]:
    """Document chunks (``drug_label`` / ``guideline`` sources) -> instruction rows, ``per_chunk``
    QA pairs each; the chunk id and document id stay on every row. ``sections`` picks drug-label
    sections (others dropped as ``section_not_selected``; guideline chunks all pass); MedGo asked
    about 适应症 and 禁忌."""
    wanted = set(sections or ())
    selected: list[Row] = []
    for row in rows:
        if wanted and row.get("doc_type") == "drug_label" and row.get("section") not in wanted:
            ctx.drop(row, "section_not_selected")
        elif not row.get("text"):
            ctx.reject(row, "chunk has no text", "text")
        else:
            selected.append(row)
    step = setup(selected, ctx, endpoint=endpoint, template=template, temperature=temperature,
                 max_tokens=max_tokens, prices=prices, public_reason=public_reason)

    def parse(text: str) -> list[dict[str, str]]:
        answer = parse_json_answer(text)
        pairs = answer.get("qa") if isinstance(answer, dict) else answer
        if not isinstance(pairs, list):
            raise BadResponse("no qa list")
        usable = [{"question": p["question"].strip(), "answer": p["answer"].strip()} for p in pairs
                  if isinstance(p, dict) and isinstance(p.get("question"), str) and isinstance(p.get("answer"), str)
                  and p["question"].strip() and p["answer"].strip()]
        if not usable:
            raise BadResponse("no usable qa pair")
        return usable[:per_chunk]

    requests = [step.request({"n": per_chunk, "title": row.get("title") or "", "section": row.get("section") or "",
                              "text": row["text"]}) for row in selected]
    made: list[Row] = []
    for row, result in zip(selected, step.engine.complete_many(requests, parse), strict=True):
        if not result.ok:
            _reject_failed(ctx, row, result.error)
            continue
        ctx.merged(1)
        for index, pair in enumerate(result.value):
            ctx.created(1)
            made.append({"instruction": pair["question"], "query": "", "answer": pair["answer"],
                         "task": task or f"{row.get('doc_type', 'document')}_qa",
                         "template_id": step.template_name, "document_id": row.get("document_id"),
                         "chunk_id": row["chunk_id"], "section": row.get("section"), "title": row.get("title"),
                         "source": {**row["source"], "chunk_id": row["chunk_id"], "pair": index}})
    step.finish(ctx, chunks=len(selected), qa_rows=len(made))
    return made


# ---------------------------------------------------------------- llm_consultation

@register_step("llm_consultation", reads=("chief_complaint",), writes=("messages", "chief_complaint"))
def llm_consultation(rows: list[Row], ctx: StepContext, endpoint: dict[str, Any] | None = None,
                     template: str = "consultation", field: str = "chief_complaint", turns: int = 4,
                     temperature: float = 0.7, max_tokens: int = 1024, prices: dict[str, Any] | None = None,
                     public_reason: str | None = None) -> list[Row]:
    """Chief complaint -> consultation dialogue (a ``conversation`` row: patient = user, doctor =
    assistant; a trailing patient turn is cut so the dialogue ends on the doctor)."""
    usable: list[Row] = []
    for row in rows:
        if isinstance(row.get(field), str) and row[field].strip():
            usable.append(row)
        else:
            ctx.reject(row, "no chief complaint", field)
    step = setup(usable, ctx, endpoint=endpoint, template=template, temperature=temperature, max_tokens=max_tokens,
                 prices=prices, public_reason=public_reason)
    requests = [step.request({"chief_complaint": row[field].strip(), "turns": turns,
                              "department": row.get("department") or ""}) for row in usable]
    made = []
    for row, result in zip(usable, step.engine.complete_many(requests, parse_dialogue), strict=True):
        if not result.ok:
            _reject_failed(ctx, row, result.error)
            continue
        conversation = {"messages": result.value, "chief_complaint": row[field].strip(), "source": row.get("source"),
                        "template_id": step.template_name}
        if row.get("department"):
            conversation["department"] = row["department"]
        made.append(conversation)
    step.finish(ctx, dialogues=len(made))
    return made


ROLE_NAMES = {"patient": "user", "患者": "user", "user": "user", "doctor": "assistant", "医生": "assistant",
              "assistant": "assistant"}


def parse_dialogue(text: str) -> list[dict[str, str]]:
    answer = parse_json_answer(text)
    turns = answer.get("dialogue") if isinstance(answer, dict) else answer
    if not isinstance(turns, list):
        raise BadResponse("no dialogue list")
    messages: list[dict[str, str]] = []
    for turn in turns:
        if not isinstance(turn, dict) or not isinstance(turn.get("content"), str) or not turn["content"].strip():
            continue
        role = ROLE_NAMES.get(str(turn.get("role", "")).strip().lower())
        if role is None:
            raise BadResponse("unknown speaker")
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n" + turn["content"].strip()
        else:
            messages.append({"role": role, "content": turn["content"].strip()})
    while messages and messages[0]["role"] != "user":
        messages.pop(0)
    while messages and messages[-1]["role"] != "assistant":
        messages.pop()
    if len(messages) < 2:
        raise BadResponse("dialogue too short")
    return messages


# ---------------------------------------------------------------- llm_distractors

OPTION_LETTERS = "ABCDE"
_PUNCTUATION = re.compile(r"[\s。，,.;；:：!！?？、\"'“”‘’()（）]+")


def normalised_option(text: str) -> str:
    return _PUNCTUATION.sub("", text).lower()


def usable_distractors(candidates: Any, answer: str) -> tuple[list[str], int]:
    """The distractors that differ from the answer and from each other (ignoring spaces,
    punctuation and case), and how many were discarded."""
    if isinstance(candidates, dict):
        candidates = candidates.get("distractors")
    if not isinstance(candidates, list):
        raise BadResponse("no distractor list")
    seen = {normalised_option(answer)}
    kept, discarded = [], 0
    for candidate in candidates:
        text = candidate.strip() if isinstance(candidate, str) else ""
        key = normalised_option(text)
        if not key or key in seen:
            discarded += 1
            continue
        seen.add(key)
        kept.append(text)
    return kept, discarded


def shuffled_options(answer: str, distractors: list[str], seed: int, row_key: str) -> tuple[list[str], int]:
    """Options with the answer at a position drawn from the recipe seed and the row (not the order
    in which answers came back), so the same recipe always gives the same layout."""
    rng = random.Random(f"{seed}:{row_key}")
    options = [answer, *distractors]
    rng.shuffle(options)
    return options, options.index(answer)


@register_step("llm_distractors", reads=("instruction", "answer"),
               writes=("instruction", "answer", "options", "answer_index", "question", "task"))
def llm_distractors(rows: list[Row], ctx: StepContext, endpoint: dict[str, Any] | None = None,
                    template: str = "distractors", options: int = 4, question_field: str = "instruction",
                    answer_field: str = "answer", temperature: float = 0.7, max_tokens: int = 512,
                    prices: dict[str, Any] | None = None, public_reason: str | None = None) -> list[Row]:
    """Question + correct answer -> a 4- or 5-option single-choice row (MedGo ClinicalQA): distractors
    from the model, duplicates of the answer or of each other discarded and, when too few remain,
    regenerated (a new request); rows still short are rejected. The answer's position is shuffled
    with the recipe seed. Output: ``question``, ``options``, ``answer_index``, ``instruction``
    (question + lettered options) and ``answer`` (the letter and text)."""
    if options not in (4, 5):
        raise MedcurateError("options must be 4 or 5", field=f"steps.{ctx.stage}.options")
    needed = options - 1
    usable: list[Row] = []
    for row in rows:
        if all(isinstance(row.get(key), str) and row[key].strip() for key in (question_field, answer_field)):
            usable.append(row)
        else:
            ctx.reject(row, "needs a question and its answer", answer_field)
    step = setup(usable, ctx, endpoint=endpoint, template=template, temperature=temperature, max_tokens=max_tokens,
                 prices=prices, public_reason=public_reason)
    requests = [step.request({"n": needed + 1, "question": row[question_field].strip(),
                              "answer": row[answer_field].strip()}) for row in usable]
    discarded: Counter = Counter()
    parsers = [_distractor_parser(row[answer_field].strip(), needed, discarded) for row in usable]
    made = []
    for row, result in zip(usable, step.engine.complete_many(requests, parsers), strict=True):
        if not result.ok:
            _reject_failed(ctx, row, result.error)
            continue
        if result.responses > 1:
            discarded["regenerated"] += 1
        distractors = result.value
        question, answer = row[question_field].strip(), row[answer_field].strip()
        choices, position = shuffled_options(answer, distractors, ctx.seed, canonical_json([question, answer]))
        lettered = "\n".join(f"{OPTION_LETTERS[i]}. {text}" for i, text in enumerate(choices))
        made.append({**row, "question": question, "options": choices, "answer_index": position,
                     "instruction": f"{question}\n{lettered}", "query": row.get("query") or "",
                     "answer": f"{OPTION_LETTERS[position]}. {answer}", "task": "mcq",
                     "template_id": step.template_name})
    step.finish(ctx, options=options, discarded_distractors=dict(sorted(discarded.items())))
    return made


def _distractor_parser(answer: str, needed: int, discarded: Counter):
    def parse(text: str) -> list[str]:
        kept, dropped = usable_distractors(parse_json_answer(text), answer)
        discarded["duplicate_or_equal_to_answer"] += dropped
        if len(kept) < needed:
            raise BadResponse("distractors equal to the answer or each other")
        return kept[:needed]
    return parse
