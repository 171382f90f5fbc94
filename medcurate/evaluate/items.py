"""Stored rows -> evaluation items: the prompt the model answers, the reference, and which scorer reads it.

instruction rows  task in CMedINS formats -> ``cmedins`` (parsed and compared with ``gold``)
                  task ``mcq``             -> ``mcq`` (options A-E, the answer letter)
                  any other task           -> ``text`` (BLEU / GLEU / ROUGE / similarity)
conversation rows the last assistant turn is the reference, the turns before it the prompt -> ``text``
ehr rows          note -> ``diagnosis`` (accuracy per department)
preference rows   not evaluated by generation (``medcurate evaluate loss`` scores them)
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from medcurate.errors import MedcurateError

MCQ_TASK = "mcq"
LETTERS = ("A", "B", "C", "D", "E")
SCORERS = ("cmedins", "diagnosis", "text", "mcq")


@dataclass
class EvalItem:
    id: str
    scorer: str
    group: str
    messages: list[dict[str, str]]
    reference: str
    gold: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _json_value(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def mcq_prompt(question: str, options: list[str]) -> str:
    lines = "\n".join(f"{letter}. {text}" for letter, text in zip(LETTERS, options, strict=False))
    return f"以下是单项选择题，请直接给出正确答案的选项。\n\n{question}\n{lines}\n答案："


def _mcq_item(row: dict[str, Any], row_id: str) -> EvalItem:
    """CMMLU rows (options as a list, ``answer`` = letter, the question in ``instruction``) and MCMLE
    rows from medcurate/corpora (options as ``{letter: text}``, ``answer_idx``, the question and the
    options in ``query``, ``meta_info`` as the subject)."""
    options = _json_value(row.get("options"))
    if isinstance(options, dict):
        if sorted(options) != list(LETTERS[:len(options)]):
            raise MedcurateError(f"row {row_id}: options must be lettered A, B, ...", field="options")
        options = [options[letter] for letter in sorted(options)]
    if not isinstance(options, list) or not 2 <= len(options) <= len(LETTERS):
        raise MedcurateError(f"row {row_id}: an mcq row needs 2-5 options", field="options")
    texts = [str(o) for o in options]
    answer = str(row.get("answer_idx") or row.get("answer") or "").strip()
    if answer not in LETTERS[:len(texts)]:
        raise MedcurateError(f"row {row_id}: answer must be an option letter", field="answer")
    subject = str(row.get("subject") or row.get("meta_info") or row.get("department") or "all")
    if row.get("answer_idx"):
        question = str(row.get("query") or "").split("\nA. ")[0] or row["instruction"]
    else:
        question = row["instruction"]
    return EvalItem(row_id, "mcq", subject, [{"role": "user", "content": mcq_prompt(question, texts)}], answer,
                    {"options": texts, "answer": answer})


def _instruction_item(row: dict[str, Any], row_id: str) -> EvalItem:
    from medcurate.cmedins.formats import TASKS

    task = str(row.get("task") or "")
    if task == MCQ_TASK:
        return _mcq_item(row, row_id)
    user = row["instruction"] if not row.get("query") else f"{row['instruction']}\n{row['query']}"
    messages = [{"role": "user", "content": user}]
    if task in TASKS:
        gold = _json_value(row.get("gold"))
        if not isinstance(gold, dict):
            raise MedcurateError(f"row {row_id}: CMedINS task {task!r} needs its structured gold", field="gold")
        return EvalItem(row_id, "cmedins", task, messages, row["answer"], {"task": task, "gold": gold})
    return EvalItem(row_id, "text", task or "all", messages, row["answer"])


def row_to_item(row: dict[str, Any], kind: str, index: int) -> EvalItem:
    """One stored row -> one evaluation item; an unknown kind or unusable row is a one-line error."""
    row_id = str(row.get("id") or f"row-{index}")
    if kind == "instruction":
        return _instruction_item(row, row_id)
    if kind == "conversation":
        messages = _json_value(row["messages"])
        turns = [{"role": m["role"], "content": m["content"]} for m in messages]
        last = max((i for i, m in enumerate(turns) if m["role"] == "assistant"), default=None)
        if last is None or last == 0:
            raise MedcurateError(f"row {row_id}: a dialogue needs a prompt before its last assistant turn",
                                 field="messages")
        return EvalItem(row_id, "text", str(row.get("department") or "all"), turns[:last], turns[last]["content"])
    if kind == "ehr":
        diagnoses = _json_value(row.get("diagnoses")) or [row["diagnosis"]]
        return EvalItem(row_id, "diagnosis", str(row.get("department") or "未知"),
                        [{"role": "user", "content": row["input"]}], row["diagnosis"],
                        {"diagnoses": [str(d) for d in diagnoses]})
    if kind == "preference":
        raise MedcurateError("preference rows have no single reference answer to generate; score them with "
                             "`medcurate evaluate loss` (preference accuracy)", field="kind")
    raise MedcurateError(f"unknown row kind {kind!r}: no scorer for it", field="kind")


def load_items(ref: str, split: str = "test", limit: int | None = None, store=None) -> tuple[Any, list[EvalItem]]:
    """(version, items) of one split; a version without that split is a one-line error."""
    from medcurate.store import load_rows, resolve

    version = resolve(ref, store)
    manifest = version.manifest
    if split not in manifest.get("splits", {}):
        raise MedcurateError(f"{version.ref} has no {split!r} split (splits: {', '.join(manifest.get('splits', {}))}); "
                             "build it with a test split or pass --split", field="split")
    rows = load_rows(version, store, split=split)[split]
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise MedcurateError(f"{version.ref} split {split!r} is empty", field="split")
    return version, [row_to_item(row, manifest["kind"], index) for index, row in enumerate(rows)]
