"""``evaluate run``: one answer per row of a held-out split, written to predictions.jsonl as it goes.

EVAL_DIR/
  lineage.json       model / adapter / endpoint, the adapter run's training dataset, the evaluated
                     version and split, generation settings, timings
  predictions.jsonl  one line per finished row: id, scorer, group, prediction, reference, gold
                     (multiple-choice rows from a local model also carry option_log_likelihoods)
  scores.json        every scorer's result (``medcurate evaluate report`` turns it into tables)

A second run into the same folder keeps the finished rows and answers only the rest; it refuses a
folder made for another model or version. A torn last line (a kill mid-write) is re-answered.
"""
from __future__ import annotations

import datetime as _dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError
from medcurate.evaluate.items import EvalItem, load_items

LINEAGE_FILE = "lineage.json"
PREDICTIONS_FILE = "predictions.jsonl"
SCORES_FILE = "scores.json"
DEFAULT_SETTINGS = {"do_sample": False, "temperature": 0.0, "seed": 0, "max_new_tokens": 128,
                    "max_prompt_tokens": 1024, "batch_size": 8,
                    "retries": 3, "backoff_s": 1.0}


@dataclass
class ModelSpec:
    """What answers: a local model (and adapter) or an endpoint with its served model name."""

    model: str | None = None
    adapter: str | None = None
    endpoint: str | None = None
    served_model: str | None = None
    api_key: str | None = field(default=None, repr=False)

    def check(self) -> None:
        if bool(self.model) == bool(self.endpoint):
            raise MedcurateError("give either --model (local) or --endpoint with --served-model", field="model")
        if self.endpoint and not self.served_model:
            raise MedcurateError("--endpoint needs --served-model", field="served-model")
        if self.adapter and not self.model:
            raise MedcurateError("--adapter applies to a local --model", field="adapter")

    def describe(self) -> dict[str, Any]:
        if self.endpoint:
            return {"endpoint": self.endpoint, "served_model": self.served_model}
        return {"base_model": str(Path(self.model).resolve()) if self.model else None,
                "adapter": str(Path(self.adapter).resolve()) if self.adapter else None,
                "adapter_training": adapter_training(self.adapter) if self.adapter else None}


def adapter_training(adapter: str) -> dict[str, Any] | None:
    """The training run behind an adapter: its lineage.json (the run folder or the folder above)."""
    path = Path(adapter).resolve()
    for folder in (path, path.parent):
        lineage_file = folder / LINEAGE_FILE
        if lineage_file.is_file():
            lineage = json.loads(lineage_file.read_text(encoding="utf-8"))
            return {"run": str(folder), "stage": lineage.get("stage"), "dataset": lineage.get("dataset"),
                    "base_model": lineage.get("base_model"), "status": lineage.get("status")}
    return None


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """Finished predictions; a torn last line (killed mid-write) is dropped so that row is redone."""
    if not path.exists():
        return []
    records = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise MedcurateError("unreadable prediction line", file=str(path), line=number) from None
    return records


def _rewrite_without_torn_line(path: Path, records: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if path.exists() and path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _identity(spec: ModelSpec, version_ref: str, split: str) -> dict[str, Any]:
    return {"model": spec.describe(), "dataset": version_ref, "split": split}


def run_evaluation(spec: ModelSpec, data: str, out: str | Path, split: str = "test", limit: int | None = None,
                   store=None, settings: dict[str, Any] | None = None, tokenization: str = "char",
                   progress=None) -> dict[str, Any]:
    """Answer every row not yet in predictions.jsonl, then score all of them; returns lineage.json."""
    spec.check()
    settings = {**DEFAULT_SETTINGS, **(settings or {})}
    version, items = load_items(data, split=split, limit=limit, store=store)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lineage_path = out / LINEAGE_FILE
    identity = _identity(spec, version.ref, split)
    if lineage_path.exists():
        previous = json.loads(lineage_path.read_text(encoding="utf-8"))
        if {key: previous.get(key) for key in identity} != identity:
            raise MedcurateError("this folder holds an evaluation of another model, version or split; "
                                 "choose a new --out", file=str(lineage_path))
    predictions_path = out / PREDICTIONS_FILE
    done = read_predictions(predictions_path)
    _rewrite_without_torn_line(predictions_path, done)
    finished = {record["id"] for record in done}
    todo = [item for item in items if item.id not in finished]
    lineage: dict[str, Any] = {
        **identity,
        "dataset_detail": {"name": version.name, "version": version.version, "kind": version.manifest["kind"],
                           "manifest_sha256": version.manifest_sha256()},
        "rows": len(items), "limit": limit, "resumed_rows": len(items) - len(todo),
        "generation": settings, "tokenization": tokenization,
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "status": "running",
    }
    lineage_path.write_text(json.dumps(lineage, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    timing = _answer(spec, todo, predictions_path, settings, progress)
    lineage["timing"] = timing
    records = read_predictions(predictions_path)
    wanted = {item.id for item in items}
    records = [r for r in records if r["id"] in wanted]
    if len(records) != len(items):
        raise MedcurateError(f"{len(items) - len(records)} rows have no prediction", file=str(predictions_path))
    from medcurate.evaluate.metrics import score_records

    scores = score_records(records, tokenization)
    (out / SCORES_FILE).write_text(json.dumps(scores, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    lineage.update(status="finished", finished_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    lineage_path.write_text(json.dumps(lineage, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return lineage


def _record(item: EvalItem, prediction: str, log_likelihoods: list[float] | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"id": item.id, "scorer": item.scorer, "group": item.group, "prediction": prediction,
              "reference": item.reference, "gold": item.gold, "prompt": item.messages}
    if log_likelihoods is not None:
        record["option_log_likelihoods"] = log_likelihoods
    return record


def _answer(spec: ModelSpec, todo: list[EvalItem], path: Path, settings: dict[str, Any], progress) -> dict[str, Any]:
    """Answer ``todo`` in batches, appending (and flushing) each finished batch."""
    started = time.perf_counter()
    timing: dict[str, Any] = {"rows": len(todo)}
    if not todo:
        return timing
    batch_size = max(1, int(settings["batch_size"]))
    with open(path, "a", encoding="utf-8") as handle:
        if spec.endpoint:
            from medcurate.llm.engine import ask_once

            params = {"temperature": settings.get("temperature", 0.0), "max_tokens": settings.get("max_new_tokens"),
                      "seed": settings.get("seed")}
            for item in todo:
                answer = ask_once(spec.endpoint, spec.served_model or "", item.messages, params,
                                  api_key=spec.api_key, attempts=int(settings["retries"]) + 1,
                                  backoff=float(settings["backoff_s"]), allow_empty=True)
                handle.write(json.dumps(_record(item, answer), ensure_ascii=False) + "\n")
                handle.flush()
                if progress:
                    progress(1)
        else:
            from medcurate.evaluate.local import LocalGenerator

            generator = LocalGenerator(spec.model or "", spec.adapter, settings)
            loaded = time.perf_counter()
            timing["load_s"] = loaded - started
            started = loaded
            loglik_s = 0.0
            for start in range(0, len(todo), batch_size):
                batch = todo[start:start + batch_size]
                answers = generator.generate(batch)
                mcq = [item for item in batch if item.scorer == "mcq"]
                scored: dict[str, list[float]] = {}
                if mcq:
                    before = time.perf_counter()
                    scored = dict(zip((i.id for i in mcq), generator.option_log_likelihoods(mcq), strict=True))
                    loglik_s += time.perf_counter() - before
                for item, answer in zip(batch, answers, strict=True):
                    handle.write(json.dumps(_record(item, answer, scored.get(item.id)), ensure_ascii=False) + "\n")
                handle.flush()
                if progress:
                    progress(len(batch))
            timing.update(device=generator.device, tokens_generated=generator.tokens_generated, option_tokens_scored=generator.tokens_scored,
                          loglik_s=loglik_s)
    elapsed = time.perf_counter() - started
    timing["answer_s"] = elapsed
    timing["rows_per_s"] = len(todo) / elapsed if elapsed else None
    return timing
