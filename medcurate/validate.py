"""Checking a data file against a row kind, reporting every problem as file:line:field.

LLaMA-Factory answers a bad file with a bare "Cannot find valid samples"; this names
each offending record and field instead. Besides medcurate's row kinds it checks
LLaMA-Factory's alpaca and sharegpt shapes (SFT and preference).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError
from medcurate.readers import Malformed, guess_format, iter_records
from medcurate.schemas import ROW_KINDS

SHAREGPT_USER = ("human", "observation")
SHAREGPT_ASSISTANT = ("gpt", "function_call")


@dataclass
class ValidationReport:
    path: str
    kind: str
    rows: int = 0
    problems: list[str] = field(default_factory=list)


def detect_kind(record: dict[str, Any]) -> str:
    """Guess what a record is from its keys."""
    if "conversations" in record:
        return "sharegpt"
    if "messages" in record:
        return "conversation"
    if "prompt" in record and "chosen" in record:
        return "preference"
    if "diagnosis" in record:
        return "ehr"
    if "answer" in record:
        return "instruction"
    if "instruction" in record and ("output" in record or "chosen" in record):
        return "alpaca"
    raise MedcurateError("cannot tell the row kind from the first record's keys; pass --kind")


def alpaca_problems(record: dict[str, Any]) -> list[tuple[str, str]]:
    problems = []
    if not isinstance(record.get("instruction"), str) or not record["instruction"].strip():
        problems.append(("instruction", "missing or empty"))
    if "input" in record and not isinstance(record["input"], str):
        problems.append(("input", "must be a string"))
    targets = ("chosen", "rejected") if "chosen" in record or "rejected" in record else ("output",)
    for name in targets:
        if not isinstance(record.get(name), str) or not record[name].strip():
            problems.append((name, "missing or empty"))
    history = record.get("history")
    if history is not None:
        if not isinstance(history, list):
            problems.append(("history", "must be a list of [query, response] pairs"))
        else:
            for index, pair in enumerate(history):
                if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                    problems.append((f"history[{index}]", "must be a [query, response] pair of strings"))
    return problems


def sharegpt_problems(record: dict[str, Any]) -> list[tuple[str, str]]:
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        return [("conversations", "missing or empty list")]
    problems = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            problems.append((f"conversations[{index}]", "each turn needs 'from' and 'value'"))
            continue
        expected = SHAREGPT_USER if index % 2 == 0 else SHAREGPT_ASSISTANT
        if turn["from"] not in expected:
            problems.append((f"conversations[{index}].from",
                             f"expected {' or '.join(expected)} at position {index}, got {turn['from']!r}"))
        if not isinstance(turn["value"], str) or not turn["value"].strip():
            problems.append((f"conversations[{index}].value", "missing or empty"))
    ranking = "chosen" in record or "rejected" in record
    if ranking:
        if len(turns) % 2 != 1:
            problems.append(("conversations", "a preference record's conversation must end on a human turn"))
        for name in ("chosen", "rejected"):
            value = record.get(name)
            if not isinstance(value, dict) or not isinstance(value.get("value"), str) or not value["value"].strip():
                problems.append((name, "must be {from: gpt, value: text}"))
    elif len(turns) % 2 != 0:
        problems.append(("conversations", "must end on a gpt turn (even number of turns)"))
    return problems


def validate_file(path: str | Path, kind: str = "auto", encoding: str | None = None) -> ValidationReport:
    path = Path(path)
    report = ValidationReport(str(path), kind)
    fmt = guess_format(path)
    for item in iter_records(path, fmt, encoding):
        report.rows += 1
        if isinstance(item, Malformed):
            report.problems.append(f"{path}:{item.line}: {item.reason}")
            continue
        if report.kind == "auto":
            report.kind = detect_kind(item.data)
        if report.kind == "alpaca":
            problems = alpaca_problems(item.data)
        elif report.kind == "sharegpt":
            problems = sharegpt_problems(item.data)
        else:
            problems = ROW_KINDS[report.kind].problems(item.data)
        location = f"{path}:{item.line}" if fmt != "parquet" else f"{path}:row {item.line}"
        report.problems.extend(f"{location}:{name}: {message}" for name, message in problems)
    if report.rows == 0:
        report.problems.append(f"{path}: no records")
    return report
