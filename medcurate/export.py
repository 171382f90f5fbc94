"""Exporting a version for the tools people train with.

jsonl     every column, one file per split
alpaca    LLaMA-Factory alpaca files + dataset_info.json (``ranking: true`` for preference data)
sharegpt  LLaMA-Factory sharegpt files (from/value turns) + dataset_info.json
trl       what TRL's trainers take: ``messages`` (SFT on dialogues), ``prompt``/``completion``
          (SFT on instructions and EHR pairs), ``prompt``/``chosen``/``rejected`` (DPO, reward);
          all in the conversational form with explicit roles

Rows become messages through ``medcurate.conversion`` (the trainer's conversion). The export
streams Parquet batches, so memory stays flat in the size of the version, and it is all or
nothing: every file is written under a temporary name and renamed into place only when all
of them are complete. ``dataset_info.json`` is merged into the one already in the folder,
with entry names that carry the version (``name@version_split``).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from medcurate.conversion import prompt_messages, row_messages, split_history, training_row, with_system
from medcurate.errors import MedcurateError
from medcurate.store import StagedFiles, iter_rows, resolve, verified

FORMATS = ("jsonl", "alpaca", "sharegpt", "trl")
SYSTEM_PROMPT_FORMATS = ("alpaca", "sharegpt", "trl")
SHAREGPT_ROLES = {"user": "human", "assistant": "gpt", "system": "system"}
DATASET_INFO = "dataset_info.json"

Row = dict[str, Any]


def to_trl(row: Row, kind: str, system: str | None = None) -> Row:
    return training_row(row, kind, system)


def _history_and_question(messages: list[dict[str, str]]) -> tuple[str, list[list[str]], str]:
    """(system, earlier exchanges, the last user turn) of a prompt that ends on a user turn."""
    system, pairs, rest = split_history(messages)
    if len(rest) != 1 or rest[0]["role"] != "user":
        raise MedcurateError("a prompt must alternate user/assistant turns and end on a user turn", field="prompt")
    return system, pairs, rest[0]["content"]


def to_alpaca(row: Row, kind: str, system: str | None = None) -> Row:
    if kind == "preference":
        own_system, history, question = _history_and_question(prompt_messages(row["prompt"], system))
        return {"instruction": question, "input": "", "chosen": row["chosen"], "rejected": row["rejected"],
                "system": own_system, "history": history}
    if kind == "instruction":
        return {"instruction": row["instruction"], "input": row.get("query") or "", "output": row["answer"],
                "system": system or "", "history": []}
    messages = row_messages(row, kind, system)
    own_system, history, question = _history_and_question(messages[:-1])
    return {"instruction": question, "input": "", "output": messages[-1]["content"], "system": own_system,
            "history": history}


def _sharegpt_turns(messages: list[dict[str, str]]) -> tuple[str, list[dict[str, str]]]:
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    return system, [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in messages
                    if m["role"] != "system"]


def to_sharegpt(row: Row, kind: str, system: str | None = None) -> Row:
    if kind == "preference":
        own_system, turns = _sharegpt_turns(prompt_messages(row["prompt"], system))
        return {"conversations": turns, "chosen": {"from": "gpt", "value": row["chosen"]},
                "rejected": {"from": "gpt", "value": row["rejected"]}, "system": own_system}
    own_system, turns = _sharegpt_turns(row_messages(row, kind, system))
    return {"conversations": turns, "system": own_system}


def llamafactory_entry(fmt: str, kind: str, file_name: str, sha1: str) -> Row:
    """One dataset_info.json entry, in the keys LLaMA-Factory's data/README documents."""
    ranking = kind == "preference"
    entry: Row = {"file_name": file_name, "file_sha1": sha1, "formatting": fmt, "ranking": ranking}
    if fmt == "alpaca":
        columns = {"prompt": "instruction", "query": "input", "system": "system", "history": "history"}
        columns.update({"chosen": "chosen", "rejected": "rejected"} if ranking else {"response": "output"})
        entry["columns"] = columns
    else:
        columns = {"messages": "conversations", "system": "system"}
        if ranking:
            columns.update({"chosen": "chosen", "rejected": "rejected"})
        entry["columns"] = columns
        entry["tags"] = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                         "system_tag": "system"}
    return entry


_CONVERTERS: dict[str, Callable[[Row, str, str | None], Row]] = {
    "trl": to_trl, "alpaca": to_alpaca, "sharegpt": to_sharegpt}


def _write_jsonl(handle: IO[bytes], rows: Iterator[Row]) -> None:
    for row in rows:
        handle.write((json.dumps(row, ensure_ascii=False, default=str) + "\n").encode("utf-8"))


def _write_json_array(handle: IO[bytes], rows: Iterator[Row]) -> str:
    """A JSON array written element by element; returns the sha1 of the bytes written."""
    digest = hashlib.sha1()

    def emit(text: str) -> None:
        data = text.encode("utf-8")
        digest.update(data)
        handle.write(data)

    emit("[")
    for index, row in enumerate(rows):
        emit(("\n" if index == 0 else ",\n") + json.dumps(row, ensure_ascii=False, indent=1))
    emit("\n]")
    return digest.hexdigest()


def dataset_info_entry_name(name: str, version: str, split: str) -> str:
    return f"{name}@{version}_{split}"


def _merged_dataset_info(path: Path, entries: dict[str, Row]) -> str:
    """The folder's dataset_info.json with our entries added or replaced, the others kept."""
    existing: dict[str, Any] = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise MedcurateError("is not valid JSON; refusing to overwrite it", file=str(path)) from None
        if not isinstance(existing, dict):
            raise MedcurateError("is not a JSON object; refusing to overwrite it", file=str(path))
    existing.update(entries)
    return json.dumps(existing, ensure_ascii=False, indent=2) + "\n"


def export_version(ref: str, fmt: str, out: str | Path, store: str | Path | None = None,
                   system_prompt: str | None = None) -> list[Path]:
    """Write a version in ``fmt`` under ``out``; returns the files written (all or none)."""
    if fmt not in FORMATS:
        raise MedcurateError(f"unknown export format {fmt!r}; expected {', '.join(FORMATS)}", field="format")
    if system_prompt and fmt not in SYSTEM_PROMPT_FORMATS:
        raise MedcurateError(f"--system-prompt applies to {', '.join(SYSTEM_PROMPT_FORMATS)} exports, not {fmt}",
                             field="system_prompt")
    version = verified(resolve(ref, store))
    kind = version.manifest["kind"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info: dict[str, Row] = {}
    with StagedFiles(out) as staged:
        for split in version.manifest["splits"]:
            rows = iter_rows(version, split)
            if fmt in ("jsonl", "trl"):
                converted = rows if fmt == "jsonl" else (to_trl(row, kind, system_prompt) for row in rows)
                with staged.open(f"{split}.jsonl") as handle:
                    _write_jsonl(handle, converted)
                continue
            convert = _CONVERTERS[fmt]
            file_name = f"{version.name}-{version.version}_{split}.json"
            with staged.open(file_name) as handle:
                sha1 = _write_json_array(handle, (convert(row, kind, system_prompt) for row in rows))
            info[dataset_info_entry_name(version.name, version.version, split)] = llamafactory_entry(
                fmt, kind, file_name, sha1)
        if info:
            with staged.open(DATASET_INFO) as handle:
                handle.write(_merged_dataset_info(out / DATASET_INFO, info).encode("utf-8"))
    return staged.committed


__all__ = ["export_version", "to_alpaca", "to_sharegpt", "to_trl", "llamafactory_entry", "with_system"]
