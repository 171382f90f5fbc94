"""Quick checks of a trained model: answer-token loss / perplexity on a dataset split, preference
accuracy on preference pairs, and multiple-choice accuracy on CMMLU-style CSV files.

Answer tokens are found with the tokenizer's own chat template, generically: the tokens that
rendering ``messages[:i + 1]`` adds to ``messages[:i]`` with a generation prompt are turn i's answer.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError

CHOICES = ("A", "B", "C", "D")


def load_model_for_eval(model_path: str | Path, adapter: str | Path | None = None):
    """(model, tokenizer) in eval mode; ``adapter`` may be a run directory or an adapter folder."""
    from transformers import AutoModelForCausalLM

    from medcurate.train.runner import ADAPTER_DIR, load_tokenizer

    tokenizer = load_tokenizer(model_path)
    model: Any = AutoModelForCausalLM.from_pretrained(str(model_path))  # the base, or the base with an adapter
    if adapter is not None:
        from peft import PeftModel

        adapter = Path(adapter)
        if (adapter / ADAPTER_DIR / "adapter_config.json").is_file():
            adapter = adapter / ADAPTER_DIR
        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    return model, tokenizer


def _ids(tokenizer, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt,
                                            return_dict=True)
    return list(encoded["input_ids"])


def answer_mask(tokenizer, messages: list[dict[str, str]]) -> tuple[list[int], list[bool]]:
    """Token ids of the whole conversation and which of them belong to assistant answers."""
    ids = _ids(tokenizer, messages, add_generation_prompt=False)
    mask = [False] * len(ids)
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(_ids(tokenizer, messages[:index], add_generation_prompt=True))
        end = len(_ids(tokenizer, messages[:index + 1], add_generation_prompt=False))
        for position in range(start, min(end, len(ids))):
            mask[position] = True
    return ids, mask


def answer_log_probs(model, ids: list[int], mask: list[bool]) -> tuple[float, int]:
    """Sum of log-probabilities of the masked tokens and their number."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
    log_probs = torch.log_softmax(logits, dim=-1)
    targets = torch.tensor(ids[1:])
    picked = log_probs.gather(1, targets[:, None])[:, 0]
    selected = torch.tensor(mask[1:])
    return float(picked[selected].sum()), int(selected.sum())


def evaluate_split(model, tokenizer, ref: str, split: str, store=None, limit: int | None = None) -> dict[str, Any]:
    """Answer-token loss and perplexity (SFT kinds), or preference accuracy (preference rows), on one split."""
    from medcurate.conversion import training_row
    from medcurate.store import load_rows, resolve

    version = resolve(ref, store)
    manifest = version.manifest
    rows = load_rows(version, store, split=split)[split][:limit]
    if not rows:
        raise MedcurateError(f"{version.ref} split {split!r} is empty", field="split")
    kind = manifest["kind"]
    result: dict[str, Any] = {"dataset": version.ref, "split": split, "rows": len(rows), "kind": kind}
    if kind == "preference":
        wins, margins = 0, []
        for row in rows:
            converted = training_row(row, kind)
            chosen = answer_log_probs(model, *answer_mask(tokenizer, converted["prompt"] + converted["chosen"]))[0]
            rejected = answer_log_probs(model, *answer_mask(tokenizer, converted["prompt"] + converted["rejected"]))[0]
            wins += chosen > rejected
            margins.append(chosen - rejected)
        result.update(preference_accuracy=wins / len(rows), mean_log_prob_margin=sum(margins) / len(margins))
        return result
    total, count = 0.0, 0
    for row in rows:
        converted = training_row(row, kind)
        messages = converted.get("messages") or converted["prompt"] + converted["completion"]
        log_prob, tokens = answer_log_probs(model, *answer_mask(tokenizer, messages))
        total, count = total + log_prob, count + tokens
    loss = -total / max(count, 1)
    result.update(loss=loss, perplexity=math.exp(min(loss, 50.0)), answer_tokens=count)
    return result


def read_mcq_csv(path: Path) -> list[dict[str, str]]:
    """CMMLU-style CSV: ``,Question,A,B,C,D,Answer`` (an unnamed index column first)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in ("Question", *CHOICES, "Answer") if name not in (reader.fieldnames or [])]
        if missing:
            raise MedcurateError(f"not a CMMLU-style CSV (missing columns {', '.join(missing)})", file=str(path),
                                 line=1)
        questions = []
        for line, record in enumerate(reader, start=2):
            if record["Answer"].strip() not in CHOICES:
                raise MedcurateError(f"answer must be one of {', '.join(CHOICES)}", file=str(path), line=line,
                                     field="Answer")
            questions.append(record)
    return questions


def mcq_prompt(record: dict[str, str]) -> str:
    from medcurate.evaluate.items import mcq_prompt as prompt_for

    return prompt_for(record["Question"], [record[letter] for letter in CHOICES])


def evaluate_mcq(model, tokenizer, paths: list[Path], limit: int | None = None) -> dict[str, Any]:
    """Accuracy per CSV file: the choice letter the model finds most likely as the answer's first token."""
    import torch

    letter_ids = []
    for letter in CHOICES:
        ids = tokenizer.encode(letter, add_special_tokens=False)
        letter_ids.append(ids[0])
    per_subject: dict[str, dict[str, Any]] = {}
    correct_all = total_all = 0
    for path in paths:
        questions = read_mcq_csv(path)[:limit]
        correct = 0
        for record in questions:
            ids = _ids(tokenizer, [{"role": "user", "content": mcq_prompt(record)}], add_generation_prompt=True)
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            guess = CHOICES[int(torch.argmax(logits[letter_ids]))]
            correct += guess == record["Answer"].strip()
        per_subject[path.stem] = {"questions": len(questions), "accuracy": correct / max(len(questions), 1)}
        correct_all, total_all = correct_all + correct, total_all + len(questions)
    return {"questions": total_all, "accuracy": correct_all / max(total_all, 1), "subjects": per_subject}


def mcq_files(path: str | Path) -> list[Path]:
    path = Path(path)
    files = sorted(path.rglob("*.csv")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise MedcurateError("no CSV files found", file=str(path))
    return files
