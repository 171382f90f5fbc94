"""Quick checks of a trained model: answer-token loss / perplexity on a dataset split, preference
accuracy on preference pairs, multiple-choice accuracy on CMMLU-style CSV files, and a reward
model's pairwise accuracy and margins on preference pairs.

Answer tokens are found with the tokenizer's own chat template, generically: the tokens that
rendering ``messages[:i + 1]`` adds to ``messages[:i]`` with a generation prompt are turn i's answer.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError
from medcurate.lineage import model_link, read_lineage, resolve_adapter
from medcurate.train.quiet import silence_torch_warnings

CHOICES = ("A", "B", "C", "D")


REWARD_HINT = "evaluate it with `medcurate evaluate reward --model RUN --data PREFS@VERSION`"


def is_reward_model(model_path: str | Path, adapter: str | Path | None = None) -> bool:
    """A sequence classifier (score head), by the adapter's task type or the model's architecture."""
    if adapter is not None and resolve_adapter(adapter).task_type == "SEQ_CLS":
        return True
    config = Path(model_path) / "config.json"
    architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or [] if config.is_file() else []
    return any(name.endswith("ForSequenceClassification") for name in architectures)


def load_model_for_eval(model_path: str | Path, adapter: str | Path | None = None):
    """(model, tokenizer) of a causal LM in eval mode; ``adapter``: a run directory or an adapter folder.
    A reward model is refused: loaded as a causal LM it would lose its score head silently."""
    if is_reward_model(model_path, adapter):
        raise MedcurateError(f"this is a reward model (sequence classifier), not a language model; {REWARD_HINT}",
                             file=str(adapter or model_path))
    silence_torch_warnings()
    from transformers import AutoModelForCausalLM

    from medcurate.train.runner import load_tokenizer

    resolved = resolve_adapter(adapter) if adapter is not None else None
    tokenizer = load_tokenizer(model_path)
    model: Any = AutoModelForCausalLM.from_pretrained(str(model_path))
    if resolved is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(resolved.adapter_dir))
    model.eval()
    return model, tokenizer


def model_evaluated(model_path: str | Path, adapter: str | Path | None = None) -> dict[str, Any]:
    """What an evaluation JSON names as the model it scored: the folder, and the adapter and its run."""
    described: dict[str, Any] = {"path": str(Path(model_path).resolve()), "adapter": None, "run": None}
    if adapter is not None:
        resolved = resolve_adapter(adapter)
        described["adapter"] = str(resolved.adapter_dir)
        if resolved.run_dir is not None:
            lineage = read_lineage(resolved.run_dir) or {}
            described["run"] = {"path": str(resolved.run_dir), "run_id": lineage.get("run_id"),
                                "stage": lineage.get("stage")}
    return described


def model_links(model_path: str | Path, adapter: str | Path | None = None) -> list[dict[str, Any]]:
    return [model_link(model_path)] + ([resolve_adapter(adapter).link()] if adapter is not None else [])


def pick_split(ref: str, split: str | None, store=None) -> tuple[Any, str]:
    """(version, split) before any model loads: the split asked for, else ``validation``, else ``test``."""
    from medcurate.store import resolve

    version = resolve(ref, store)
    splits = list(version.manifest["splits"])
    if split is None:
        split = next((name for name in ("validation", "test") if name in splits), None)
        if split is None:
            raise MedcurateError(f"{version.ref} has neither a validation nor a test split (splits: "
                                 f"{', '.join(splits)}); name one with --split", field="split")
    elif split not in splits:
        raise MedcurateError(f"{version.ref} has no split {split!r}; splits: {', '.join(splits)}", field="split")
    return version, split


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
    """Accuracy per CSV file: the choice letter the model finds most likely as the answer's first token.
    ``limit`` counts questions over all files together, in file order."""
    import torch

    letter_ids = []
    for letter in CHOICES:
        ids = tokenizer.encode(letter, add_special_tokens=False)
        letter_ids.append(ids[0])
    per_subject: dict[str, dict[str, Any]] = {}
    correct_all = total_all = 0
    for path in paths:
        if limit is not None and total_all >= limit:
            break
        questions = read_mcq_csv(path)
        if limit is not None:
            questions = questions[:limit - total_all]
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


def load_reward_model(model_or_run: str | Path):
    """(model, tokenizer) of a reward model: a reward run directory, its adapter folder, a run with a
    full ``model/`` folder, or a merged sequence-classifier folder."""
    silence_torch_warnings()
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from medcurate.lineage import MODEL_DIR

    folder = Path(model_or_run)
    if (folder / MODEL_DIR / "config.json").is_file():
        folder = folder / MODEL_DIR
    try:
        adapter = resolve_adapter(folder)
    except MedcurateError:
        adapter = None
    if adapter is not None:
        if adapter.task_type != "SEQ_CLS":
            raise MedcurateError("this adapter is a language model's, not a reward model's; evaluate it with "
                                 "`medcurate evaluate loss`", file=str(model_or_run))
        from peft import AutoPeftModelForSequenceClassification

        model = AutoPeftModelForSequenceClassification.from_pretrained(str(adapter.adapter_dir), num_labels=1)
        tokenizer = AutoTokenizer.from_pretrained(str(adapter.adapter_dir))
    else:
        if not is_reward_model(folder):
            raise MedcurateError("not a reward model (no sequence-classifier config, no reward adapter)",
                                 file=str(model_or_run))
        model = AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=1)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer


def reward_score(model, tokenizer, messages: list[dict[str, str]]) -> float:
    """The reward of one whole conversation, tokenized with the chat template as TRL's RewardTrainer does."""
    import torch

    ids = _ids(tokenizer, messages, add_generation_prompt=False)
    with torch.no_grad():
        return float(model(input_ids=torch.tensor([ids])).logits[0, 0])


def margin_summary(margins: list[float], bins: int = 10) -> dict[str, Any]:
    """Mean, spread, quantiles and a histogram of reward margins (chosen minus rejected)."""
    ordered = sorted(margins)

    def quantile(q: float) -> float:
        position = q * (len(ordered) - 1)
        low = int(math.floor(position))
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    mean = sum(ordered) / len(ordered)
    std = math.sqrt(sum((m - mean) ** 2 for m in ordered) / len(ordered))
    low, high = ordered[0], ordered[-1]
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for margin in ordered:
        counts[min(int((margin - low) / width), bins - 1)] += 1
    return {"mean": mean, "std": std, "min": low, "p10": quantile(0.1), "p25": quantile(0.25),
            "median": quantile(0.5), "p75": quantile(0.75), "p90": quantile(0.9), "max": high,
            "histogram": [{"from": low + i * width, "to": low + (i + 1) * width, "pairs": n}
                          for i, n in enumerate(counts)]}


def evaluate_reward(model, tokenizer, version, split: str, store=None, limit: int | None = None) -> dict[str, Any]:
    """Pairwise accuracy (the chosen answer scores higher) and the reward margin distribution."""
    from medcurate.conversion import training_row
    from medcurate.store import load_rows
    from medcurate.train.data import check_kind

    manifest = version.manifest
    check_kind("reward", manifest["kind"], version.ref)
    rows = load_rows(version, store, split=split)[split][:limit]
    if not rows:
        raise MedcurateError(f"{version.ref} split {split!r} is empty", field="split")
    margins = []
    for row in rows:
        converted = training_row(row, manifest["kind"])
        chosen = reward_score(model, tokenizer, converted["prompt"] + converted["chosen"])
        rejected = reward_score(model, tokenizer, converted["prompt"] + converted["rejected"])
        margins.append(chosen - rejected)
    return {"dataset": version.ref, "split": split, "pairs": len(rows),
            "pairwise_accuracy": sum(m > 0 for m in margins) / len(margins), "ties": sum(m == 0 for m in margins),
            "margin": margin_summary(margins)}
