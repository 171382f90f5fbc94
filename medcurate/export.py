"""Exporting a version for the tools people train with.

jsonl     every column, one file per split
alpaca    LLaMA-Factory alpaca files + dataset_info.json (``ranking: true`` for preference data)
sharegpt  LLaMA-Factory sharegpt files (from/value turns) + dataset_info.json
trl       what TRL's trainers take: ``messages`` (SFT on dialogues), ``prompt``/``completion``
          (SFT on instructions and EHR pairs), ``prompt``/``chosen``/``rejected`` (DPO, reward);
          all in the conversational form with explicit roles
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError
from medcurate.steps.core import instruction_to_messages
from medcurate.store import load_rows, resolve

EHR_INSTRUCTION = "请根据以下病历资料给出最可能的诊断。"
SHAREGPT_ROLES = {"user": "human", "assistant": "gpt", "system": "system"}

Row = dict[str, Any]


def row_messages(row: Row, kind: str) -> list[dict[str, str]]:
    """Any non-preference row as chat messages (system/user/assistant)."""
    if kind == "conversation":
        return [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    if kind == "instruction":
        return instruction_to_messages(row)
    if kind == "ehr":
        return [{"role": "user", "content": f"{EHR_INSTRUCTION}\n{row['input']}"},
                {"role": "assistant", "content": row["diagnosis"]}]
    raise MedcurateError(f"rows of kind {kind!r} have no single conversation")


def prompt_messages(prompt: str | list) -> list[dict[str, str]]:
    """A preference prompt (a string or prior turns) as messages ending on the user turn."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": m["role"], "content": m["content"]} for m in prompt]


def _split_history(messages: list[dict[str, str]]) -> tuple[str, list[list[str]], str, str]:
    """(system, [[user, assistant], ...] before the last turn, last user, last assistant)."""
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    turns = [m for m in messages if m["role"] != "system"]
    pairs = [[turns[i]["content"], turns[i + 1]["content"]] for i in range(0, len(turns) - 1, 2)]
    if not pairs:
        raise MedcurateError("a conversation needs at least one user/assistant exchange")
    *history, (last_user, last_answer) = pairs
    return system, history, last_user, last_answer


def to_trl(row: Row, kind: str) -> Row:
    if kind == "preference":
        return {"prompt": prompt_messages(row["prompt"]),
                "chosen": [{"role": "assistant", "content": row["chosen"]}],
                "rejected": [{"role": "assistant", "content": row["rejected"]}]}
    messages = row_messages(row, kind)
    if kind == "conversation":
        return {"messages": messages}
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def to_alpaca(row: Row, kind: str) -> Row:
    if kind == "preference":
        system, history, last_user = "", [], ""
        messages = prompt_messages(row["prompt"])
        if messages[0]["role"] == "system":
            system = messages.pop(0)["content"]
        last_user = messages[-1]["content"]
        prior = messages[:-1]
        history = [[prior[i]["content"], prior[i + 1]["content"]] for i in range(0, len(prior) - 1, 2)]
        return {"instruction": last_user, "input": "", "chosen": row["chosen"], "rejected": row["rejected"],
                "system": system, "history": history}
    if kind == "instruction":
        return {"instruction": row["instruction"], "input": row.get("query") or "", "output": row["answer"],
                "system": "", "history": []}
    if kind == "ehr":
        return {"instruction": EHR_INSTRUCTION, "input": row["input"], "output": row["diagnosis"],
                "system": "", "history": []}
    system, history, last_user, last_answer = _split_history(row_messages(row, kind))
    return {"instruction": last_user, "input": "", "output": last_answer, "system": system, "history": history}


def _sharegpt_turns(messages: list[dict[str, str]]) -> tuple[str, list[dict[str, str]]]:
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    turns = [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in messages if m["role"] != "system"]
    return system, turns


def to_sharegpt(row: Row, kind: str) -> Row:
    if kind == "preference":
        system, turns = _sharegpt_turns(prompt_messages(row["prompt"]))
        return {"conversations": turns, "chosen": {"from": "gpt", "value": row["chosen"]},
                "rejected": {"from": "gpt", "value": row["rejected"]}, "system": system}
    system, turns = _sharegpt_turns(row_messages(row, kind))
    return {"conversations": turns, "system": system}


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


_CONVERTERS: dict[str, Callable[[Row, str], Row]] = {"trl": to_trl, "alpaca": to_alpaca, "sharegpt": to_sharegpt}


def _write_jsonl(path: Path, rows: Iterable[Row]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def export_version(ref: str, fmt: str, out: str | Path, store: str | Path | None = None) -> list[Path]:
    """Write a version in ``fmt`` under ``out``; returns the files written."""
    version = resolve(ref, store)
    kind = version.manifest["kind"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    splits = load_rows(version)
    written: list[Path] = []
    if fmt == "jsonl":
        for split, rows in splits.items():
            path = out / f"{split}.jsonl"
            _write_jsonl(path, rows)
            written.append(path)
        return written
    if fmt not in _CONVERTERS:
        raise MedcurateError(f"unknown export format {fmt!r}; expected jsonl, alpaca, sharegpt or trl")
    convert = _CONVERTERS[fmt]
    if fmt == "trl":
        for split, rows in splits.items():
            path = out / f"{split}.jsonl"
            _write_jsonl(path, (convert(row, kind) for row in rows))
            written.append(path)
        return written
    info: dict[str, Row] = {}
    for split, rows in splits.items():
        file_name = f"{version.name}_{split}.json"
        content = json.dumps([convert(row, kind) for row in rows], ensure_ascii=False, indent=1).encode("utf-8")
        (out / file_name).write_bytes(content)
        written.append(out / file_name)
        info[f"{version.name}_{split}"] = llamafactory_entry(fmt, kind, file_name, hashlib.sha1(content).hexdigest())
    info_path = out / "dataset_info.json"
    info_path.write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    written.append(info_path)
    return written
