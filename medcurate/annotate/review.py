"""Physician review of generated rows (MedGo): each generated answer is accepted, edited or
rejected with a reason in Label Studio, with the same cross-annotation (overlap) and expert
adjudication as the preference projects (the project kind ``review``, judgement ``decision``).

* ``review_items`` turns a published version into review candidates (one per row; the row rides
  along so the export can rebuild it) — or ``annotate sample`` output is reviewed as it is.
* Source format ``label_studio_review`` (``review_sources.py``; path: the work folder) yields one
  row per reviewed unit with its resolved decision, the edited answer and the reasons.
* Step ``review_instructions``: accepted and edited rows -> an instruction (or multiple-choice)
  version; an edited row keeps the generated answer under ``review.original_answer``; rejected
  rows are dropped as ``review_rejected``.
* Step ``review_preference_pairs``: accepted or edited answers vs rejected answers to the same
  prompt (``accept_vs_reject``), and each physician edit vs the generated answer it replaced
  (``edit_vs_original``): MedGo's DPO data.

The edited text of a unit is the expert's when the expert decided it, else the edit of the first
annotator (by pseudonym) who chose *edit*; a unit whose resolved decision is *edit* but which
nobody edited is rejected (``edit without edited text``). Undecided units are dropped as
``unresolved`` / ``not_annotated``.
"""
from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from medcurate.annotate.sampling import as_messages, prompt_of, write_items
from medcurate.annotate.steps import _as_text, _has_history
from medcurate.errors import MedcurateError
from medcurate.pipeline import Row, StepContext, register_step

REVIEW_CANDIDATES_FILE = "review_candidates.jsonl"


def answer_of(row: dict[str, Any]) -> str:
    """The generated text a physician judges: an instruction row's answer (with an MCQ's options in
    the prompt), a conversation's last assistant turn."""
    if isinstance(row.get("messages"), list) and row["messages"] and row["messages"][-1].get("role") == "assistant":
        return str(row["messages"][-1]["content"])
    if isinstance(row.get("answer"), str) and row["answer"].strip():
        return row["answer"]
    raise MedcurateError("row has no answer to review", field="answer")


def review_items(ref: str, store: str | Path | None, split: str | None = None,
                 limit: int | None = None) -> list[dict[str, Any]]:
    """Review candidates from a published version: one item per row, the row kept for the export."""
    from medcurate.store import load_rows, resolve

    version = resolve(ref, store)
    items: list[dict[str, Any]] = []
    for split_name, rows in load_rows(version, store=store, split=split).items():
        for row in rows:
            items.append({"item_id": row["id"], "prompt": prompt_of(row),
                          "candidates": [{"id": "c0", "text": answer_of(row), "model": "generated"}],
                          "prompt_source": {"dataset": version.ref, "split": split_name, "row_id": row["id"]},
                          "row": row})
            if limit is not None and len(items) >= limit:
                return items
    if not items:
        raise MedcurateError("the version holds no rows to review", file=version.ref)
    return items


def write_review_candidates(workdir: Path, items: list[dict[str, Any]]) -> Path:
    path = workdir / REVIEW_CANDIDATES_FILE
    write_items(path, items)
    return path


# ---------------------------------------------------------------- export steps

def _undecided(row: Row, ctx: StepContext) -> bool:
    if row["decision"] is None:
        ctx.drop(row, "not_annotated" if row["status"] == "not_annotated" else "unresolved")
        return True
    if row["decision"] == "edit" and not row["edited"]:
        ctx.reject(row, "edit without edited text", "edited")
        return True
    return False


def _review_record(row: Row) -> dict[str, Any]:
    record = {"decision": row["decision"], "status": row["status"], "agreement": row["agreement"],
              "annotators": row["annotators"], "reasons": row["reasons"], "unit_id": row["unit_id"]}
    if row["decision"] == "edit":
        record["original_answer"] = row["candidate"]
    return record


@register_step("review_instructions", reads=("decision", "edited", "original", "prompt", "candidate"),
               writes=("instruction", "query", "answer", "task", "review"))
def review_instructions(rows: list[Row], ctx: StepContext, task: str = "reviewed") -> list[Row]:
    """Accepted and edited units -> instruction rows (an MCQ row keeps its options; an edited row its
    generated answer in ``review.original_answer``); rejected units dropped as ``review_rejected``."""
    kept: list[Row] = []
    for row in rows:
        if _undecided(row, ctx):
            continue
        if row["decision"] == "reject":
            ctx.drop(row, "review_rejected")
            continue
        answer = row["edited"] if row["decision"] == "edit" else row["candidate"]
        original = row["original"]
        if isinstance(original, dict) and original.get("instruction"):
            made = {key: value for key, value in original.items() if key != "id" or row["decision"] == "accept"}
            made["answer"] = answer
        else:
            made = {"instruction": _as_text(row["prompt"]), "query": "", "answer": answer, "task": task,
                    "source": row["source"]}
        made.setdefault("source", row["source"])
        made["review"] = _review_record(row)
        kept.append(made)
    ctx.card.stats["review_instructions"] = {"rows": len(kept), "dropped": dict(ctx.ledger.dropped)}
    return kept


@register_step("review_preference_pairs", reads=("decision", "edited", "prompt", "prompt_id", "candidate"),
               writes=("prompt", "chosen", "rejected", "pair_kind"))
def review_preference_pairs(rows: list[Row], ctx: StepContext, prompt_format: str = "auto",
                            edit_pairs: bool = True) -> list[Row]:
    """Accepted / edited vs rejected answers to the same prompt (``accept_vs_reject``), and each edit
    vs the answer it replaced (``edit_vs_original``, unless ``edit_pairs: false``)."""
    by_prompt: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if not _undecided(row, ctx):
            by_prompt[str(row["prompt_id"])].append(row)
    made: list[Row] = []
    for group in by_prompt.values():
        good = [r for r in group if r["decision"] in ("accept", "edit")]
        bad = [r for r in group if r["decision"] == "reject"]
        used: set[str] = set()
        for chosen, refused in itertools.product(good, bad):
            made.append(_pair(chosen, refused["candidate"], refused, "accept_vs_reject"))
            used.update((chosen["unit_id"], refused["unit_id"]))
        if edit_pairs:
            for edited in (r for r in good if r["decision"] == "edit" and r["edited"] != r["candidate"]):
                made.append(_pair(edited, edited["candidate"], edited, "edit_vs_original"))
                used.add(edited["unit_id"])
        for row in group:
            if row["unit_id"] in used:
                ctx.merged(1)
            else:
                ctx.drop(row, "no_contrast")
    ctx.created(len(made))
    use_messages = prompt_format == "messages" or (prompt_format == "auto" and any(_has_history(r["prompt"]) for r in made))
    for row in made:
        row["prompt"] = as_messages(row["prompt"]) if use_messages else _as_text(row["prompt"])
    ctx.card.stats["review_preference_pairs"] = {"pairs": len(made), "dropped": dict(ctx.ledger.dropped)}
    return made


def _pair(chosen: Row, rejected_text: str, rejected: Row, pair_kind: str) -> Row:
    chosen_text = chosen["edited"] if chosen["decision"] == "edit" else chosen["candidate"]
    return {"prompt": chosen["prompt"], "prompt_id": chosen["prompt_id"], "chosen": chosen_text,
            "rejected": rejected_text, "pair_kind": pair_kind,
            "chosen_unit": chosen["unit_id"], "rejected_unit": rejected["unit_id"],
            "ratings": {"chosen": chosen["decision"], "rejected": "generated" if pair_kind == "edit_vs_original"
                        else rejected["decision"]},
            "reasons": json.dumps(rejected["reasons"], ensure_ascii=False),
            "annotators": sorted(set(chosen["annotators"]) | set(rejected["annotators"])),
            "source": dict(chosen["source"])}
