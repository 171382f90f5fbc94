"""The one place where a stored row becomes chat messages.

Export (trl, alpaca, sharegpt), training, evaluation, annotation sampling and the
``to_messages``/``mix`` steps all call these functions, so an instruction, an EHR pair, a
conversation or a preference pair reads the same everywhere:

instruction   user: instruction + "\\n" + query          assistant: answer
ehr           user: EHR_INSTRUCTION + "\\n" + input      assistant: diagnosis
conversation  its messages as they are
preference    prompt (a string, or messages with system turn and history) -> chosen / rejected

Rows arrive decoded (``store.load_rows``/``store.load`` decode the manifest's JSON-text
columns), so a preference ``prompt`` may be a string in one row and a message list in the next.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from medcurate.errors import MedcurateError

EHR_INSTRUCTION = "请根据以下病历资料给出最可能的诊断。"

Row = dict[str, Any]
Message = dict[str, str]


def decode_json_columns(row: Row, json_columns: Iterable[str]) -> Row:
    """Undo the JSON-text storage of columns whose values had no common Arrow type.

    Every value of such a column is stored as JSON text; a value that does not parse is a plain
    string from a version published before that rule, and stays as it is."""
    for column in json_columns:
        value = row.get(column)
        if isinstance(value, str):
            try:
                row[column] = json.loads(value)
            except ValueError:
                pass
    return row


def turns(messages: Iterable[dict[str, Any]]) -> list[Message]:
    """Messages reduced to role and content (extra keys such as names or ratings dropped)."""
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]


def with_system(messages: list[Message], system: str | None) -> list[Message]:
    """Prepend a system turn unless there is one already (the row's own system turn wins)."""
    if system and (not messages or messages[0]["role"] != "system"):
        return [{"role": "system", "content": system}, *messages]
    return messages


def instruction_user_turn(row: Row) -> str:
    """The user turn of an instruction row: the instruction, then the query on its own line."""
    user = str(row["instruction"]).strip()
    if row.get("query"):
        user = f"{user}\n{str(row['query']).strip()}"
    return user


def instruction_to_messages(row: Row, system: str | None = None) -> list[Message]:
    """The chat form of an instruction row."""
    return with_system([{"role": "user", "content": instruction_user_turn(row)},
                        {"role": "assistant", "content": row["answer"]}], system)


def row_messages(row: Row, kind: str, system: str | None = None) -> list[Message]:
    """Any non-preference row as one conversation ending on the assistant's answer."""
    if kind == "conversation":
        return with_system(turns(row["messages"]), system)
    if kind == "instruction":
        return instruction_to_messages(row, system)
    if kind == "ehr":
        return with_system([{"role": "user", "content": f"{EHR_INSTRUCTION}\n{row['input']}"},
                            {"role": "assistant", "content": row["diagnosis"]}], system)
    raise MedcurateError(f"rows of kind {kind!r} have no single conversation", field="kind")


def prompt_messages(prompt: str | list[dict[str, Any]], system: str | None = None) -> list[Message]:
    """A prompt (a string, or prior turns with an optional system turn) as messages."""
    if isinstance(prompt, str):
        return with_system([{"role": "user", "content": prompt}], system)
    return with_system(turns(prompt), system)


def training_row(row: Row, kind: str, system: str | None = None) -> Row:
    """The conversational row TRL trains on: ``messages`` (conversation), ``prompt``/``completion``
    (instruction, ehr) or ``prompt``/``chosen``/``rejected`` (preference)."""
    if kind == "preference":
        return {"prompt": prompt_messages(row["prompt"], system),
                "chosen": [{"role": "assistant", "content": row["chosen"]}],
                "rejected": [{"role": "assistant", "content": row["rejected"]}]}
    messages = row_messages(row, kind, system)
    if kind == "conversation":
        return {"messages": messages}
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def split_history(messages: list[Message]) -> tuple[str, list[list[str]], list[Message]]:
    """(system, completed [user, assistant] pairs, the turns after the last complete pair).

    Alpaca and ShareGPT keep the system prompt and earlier exchanges in their own fields."""
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    dialogue = [m for m in messages if m["role"] != "system"]
    pairs: list[list[str]] = []
    index = 0
    while index + 1 < len(dialogue) and dialogue[index]["role"] == "user" and dialogue[index + 1]["role"] == "assistant":
        pairs.append([dialogue[index]["content"], dialogue[index + 1]["content"]])
        index += 2
    return system, pairs, dialogue[index:]


def prompt_of(row: Row) -> str | list[Message]:
    """What a model is asked by a row of any kind: a conversation's turns before its last answer,
    an instruction row's user turn, an EHR row's note with its instruction, a preference prompt."""
    if isinstance(row.get("messages"), list) and row["messages"]:
        messages = turns(row["messages"])
        if messages[-1]["role"] == "assistant":
            messages = messages[:-1]
        if not messages:
            raise MedcurateError("conversation has no turn before its answer", field="messages")
        return messages
    if row.get("instruction"):
        return instruction_user_turn(row)
    if row.get("input") and "diagnosis" in row:
        return f"{EHR_INSTRUCTION}\n{row['input']}"
    if row.get("prompt"):
        prompt = row["prompt"]
        return prompt if isinstance(prompt, str) else turns(prompt)
    raise MedcurateError("row has neither messages, instruction, input nor prompt", field="prompt")
