"""Dataset versions -> the row shapes TRL trains on, with the chat template left to the tokenizer.

instruction  -> prompt / completion messages   (loss on the completion only)
ehr          -> prompt / completion messages   (note -> diagnosis)
conversation -> messages                       (loss on assistant turns only)
preference   -> prompt / chosen / rejected messages

A stage refuses a dataset whose row kind does not fit it, with the reason.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError

STAGE_KINDS = {
    "sft": ("instruction", "conversation", "ehr"),
    "dpo": ("preference",),
    "reward": ("preference",),
    "rl": ("instruction", "conversation", "ehr", "preference"),
}
_WHY = {
    "sft": "supervised fine-tuning needs target answers (instruction, conversation or ehr rows)",
    "dpo": "DPO needs preference pairs (prompt, chosen, rejected)",
    "reward": "a reward model is trained on preference pairs (prompt, chosen, rejected)",
    "rl": "the RL stage needs prompts (instruction, conversation, ehr or preference rows)",
}


def check_kind(stage: str, kind: str, ref: str) -> None:
    if kind not in STAGE_KINDS[stage]:
        raise MedcurateError(f"{ref} holds {kind!r} rows, which stage {stage!r} cannot train on: {_WHY[stage]}",
                             field="kind")


def _messages(value: Any, json_column: bool) -> Any:
    if json_column and isinstance(value, str) and value.startswith("["):
        return json.loads(value)
    return value


def _turns(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _with_system(turns: list[dict[str, str]], system_prompt: str | None) -> list[dict[str, str]]:
    if system_prompt and (not turns or turns[0]["role"] != "system"):
        return [{"role": "system", "content": system_prompt}, *turns]
    return turns


def to_training_row(row: dict[str, Any], kind: str, json_columns: set[str],
                    system_prompt: str | None = None) -> dict[str, Any]:
    """One stored row -> one TRL row in conversational form."""
    if kind == "instruction":
        user = row["instruction"] if not row.get("query") else f"{row['instruction']}\n{row['query']}"
        return {"prompt": _with_system([{"role": "user", "content": user}], system_prompt),
                "completion": [{"role": "assistant", "content": row["answer"]}]}
    if kind == "ehr":
        return {"prompt": _with_system([{"role": "user", "content": row["input"]}], system_prompt),
                "completion": [{"role": "assistant", "content": row["diagnosis"]}]}
    if kind == "conversation":
        return {"messages": _with_system(_turns(_messages(row["messages"], "messages" in json_columns)),
                                         system_prompt)}
    prompt = _messages(row["prompt"], "prompt" in json_columns)
    prompt = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else _turns(prompt)
    return {"prompt": _with_system(prompt, system_prompt),
            "chosen": [{"role": "assistant", "content": row["chosen"]}],
            "rejected": [{"role": "assistant", "content": row["rejected"]}]}


def load_training_data(ref: str, stage: str, store: str | Path | None = None, validation: float = 0.0,
                       seed: int = 0, system_prompt: str | None = None):
    """(version, train Dataset, eval Dataset or None) for a stage, refusing a row kind that doesn't fit."""
    from datasets import Dataset

    from medcurate.store import load, resolve

    version = resolve(ref, store)
    manifest = version.manifest
    check_kind(stage, manifest["kind"], version.ref)
    splits = load(version, store)
    if "train" not in splits or len(splits["train"]) == 0:
        raise MedcurateError(f"{version.ref} has no train rows to train on", field="splits")
    json_columns = set(manifest.get("json_columns") or [])

    def convert(split) -> Dataset:
        return Dataset.from_list([to_training_row(row, manifest["kind"], json_columns, system_prompt)
                                  for row in split])

    train = convert(splits["train"])
    evaluation = convert(splits["validation"]) if "validation" in splits and len(splits["validation"]) else None
    if evaluation is None and validation > 0 and len(train) >= 2:
        parts = train.train_test_split(test_size=validation, seed=seed)
        train, evaluation = parts["train"], parts["test"]
    return version, train, evaluation


def to_prompt_row(row: dict[str, Any], kind: str, json_columns: set[str],
                  system_prompt: str | None = None) -> dict[str, Any]:
    """One stored row -> the prompt the policy answers during RL (the reference answer is not used):
    a conversation's prompt is every turn before its last assistant turn."""
    if kind == "conversation":
        turns = _turns(_messages(row["messages"], "messages" in json_columns))
        last_assistant = max(i for i, turn in enumerate(turns) if turn["role"] == "assistant")
        return {"prompt": _with_system(turns[:last_assistant], system_prompt)}
    return {"prompt": to_training_row(row, kind, json_columns, system_prompt)["prompt"]}


def load_prompt_data(ref: str, store: str | Path | None = None, seed: int = 0, system_prompt: str | None = None):
    """(version, Dataset of {"prompt": messages}) from the train split of any prompt-bearing row kind."""
    from datasets import Dataset

    from medcurate.store import load, resolve

    version = resolve(ref, store)
    manifest = version.manifest
    check_kind("rl", manifest["kind"], version.ref)
    splits = load(version, store)
    if "train" not in splits or len(splits["train"]) == 0:
        raise MedcurateError(f"{version.ref} has no train rows to take prompts from", field="splits")
    json_columns = set(manifest.get("json_columns") or [])
    prompts = Dataset.from_list([to_prompt_row(row, manifest["kind"], json_columns, system_prompt)
                                 for row in splits["train"]])
    return version, prompts.shuffle(seed=seed)
