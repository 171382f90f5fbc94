"""Physician review of generated rows (MedGo): each generated answer is accepted, edited or
rejected with a reason in Label Studio, with the same cross-annotation (overlap) and expert
adjudication as the preference projects (the project kind ``review``, judgement ``decision``).

* ``review_items`` turns a published version into review candidates (one per row; the row rides
  along so the export can rebuild it) — or ``annotate sample`` output is reviewed as it is.
* Source format ``label_studio_review`` (path: the work folder) yields one row per reviewed unit
  with its resolved decision, the edited answer and the reason.
* Step ``review_instructions``: accepted and edited rows -> an instruction (or multiple-choice)
  version; an edited row keeps the generated answer under ``review.original_answer``; rejected
  rows are dropped as ``review_rejected``.
* Step ``review_preference_pairs``: accepted or edited answers vs rejected answers to the same
  prompt (``accept_vs_reject``), and each physician edit vs the generated answer it replaced
  (``edit_vs_original``): MedGo's DPO data.

The edited text of a unit is the edit of the first annotator (by pseudonym) who chose *edit*; a
unit whose resolved decision is *edit* but which nobody edited is rejected (``edit without edited
text``). Undecided units are dropped as ``unresolved`` / ``not_annotated``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medcurate.annotate.project import (
    ANNOTATIONS_FILE,
    DECISIONS_FILE,
    STATE_FILE,
    agreement_report,
    load_state,
    read_candidates,
    read_jsonl_latest,
    resolve_unit,
    votes_by_unit,
)
from medcurate.annotate.sampling import as_messages, prompt_of, write_items
from medcurate.annotate.steps import _as_text, _has_history
from medcurate.card import markdown_table
from medcurate.errors import MedcurateError
from medcurate.pipeline import Row, SourceSpec, StepContext, register_source_reader, register_step

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


# ---------------------------------------------------------------- export

@register_source_reader("label_studio_review",
                        doc="Reviewed units of a `medcurate annotate push --kind review` work folder (path: the "
                            "folder): decision (accept / edit / reject) resolved by consensus or expert, edits, reasons.")
def read_review_project(spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    workdir = ctx.resolve_path(spec.path)
    state = load_state(workdir)
    if state["kind"] != "review":
        raise MedcurateError(f"project kind is {state['kind']}, not review", file=str(workdir / STATE_FILE))
    annotations = read_jsonl_latest(workdir / ANNOTATIONS_FILE, key=lambda r: r["annotation_id"])
    decisions = read_jsonl_latest(workdir / DECISIONS_FILE, key=lambda r: (r["unit_id"], r["key"]))
    min_votes = int(spec.options.get("min_votes", 2))
    candidates_file = Path(state["candidates_file"])
    items = {str(item["item_id"]): item for item in read_candidates(candidates_file)}
    digest = hashlib.sha256()
    for path in (workdir / STATE_FILE, workdir / ANNOTATIONS_FILE, workdir / DECISIONS_FILE, candidates_file):
        if path.exists():
            digest.update(path.read_bytes())
    spec.sha256 = digest.hexdigest()
    report = agreement_report(state, annotations)
    ctx.card.stats["review"] = {key: report[key] for key in ("units", "units_complete", "annotations", "annotators",
                                                              "agreement")}
    ctx.card.add_section("Physician review agreement", markdown_table(
        ["criterion", "items", "raw agreement", "Cohen's kappa", "Fleiss' kappa", "Krippendorff's alpha"],
        [[name, s["items"], s["raw_agreement"], s["cohen_kappa"], s["fleiss_kappa"], s["krippendorff_alpha"]]
         for name, s in report["agreement"].items()]))
    by_unit = votes_by_unit(annotations.values())
    decided: dict[str, dict[str, str]] = defaultdict(dict)
    for (unit_id, key), record in decisions.items():
        decided[unit_id][key] = record["value"]
    for line, (unit_id, unit) in enumerate(state["units"].items(), start=1):
        ctx.ledger.rows_in += 1
        records = sorted(by_unit.get(unit_id, []), key=lambda r: r["annotator"])
        resolved = resolve_unit("review", unit, records, decided.get(unit_id, {}), min_votes)["decision"]
        editors = [r for r in records if r["judgements"].get("decision") == "edit" and r["judgements"].get("edited")]
        reasons = sorted({r["judgements"]["reason"] for r in records if r["judgements"].get("reason")})
        yield {"unit_id": unit_id, "prompt_id": unit["item_id"], "prompt": unit["prompt"],
               "candidate_id": unit["candidate"]["id"], "candidate": unit["candidate"]["text"],
               "decision": resolved.value, "status": resolved.status, "agreement": resolved.agreement,
               "edited": editors[0]["judgements"]["edited"] if editors else None, "reasons": reasons,
               "annotators": sorted({r["annotator"] for r in records}),
               "original": (items.get(str(unit["item_id"])) or {}).get("row"),
               "source": {"name": spec.name, "file": ANNOTATIONS_FILE, "line": line, "sha256": spec.sha256}}


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


def review_export_recipe(workdir: Path, name: str, output: str, *, validation: float = 0.0, test: float = 0.0,
                         seed: int = 0, prompt_format: str = "auto", min_votes: int = 2) -> dict[str, Any]:
    """The recipe ``medcurate annotate export`` runs for a review project: an instruction version,
    or preference pairs (grouped by prompt so one prompt's answers never straddle splits)."""
    source = {"name": "review", "path": str(workdir.resolve()), "format": "label_studio_review",
              "options": {"min_votes": min_votes}}
    if output == "instruction":
        return {"name": name, "kind": "instruction",
                "description": "Generated rows accepted or edited by physicians (cross-reviewed, adjudicated)",
                "sources": [source], "steps": ["review_instructions"],
                "splits": {"seed": seed, "validation": validation, "test": test}}
    return {"name": name, "kind": "preference",
            "description": "Physician-reviewed answers: accepted or edited vs rejected, edits vs the generated answer",
            "sources": [source], "steps": [{"review_preference_pairs": {"prompt_format": prompt_format}}],
            "splits": {"seed": seed, "validation": validation, "test": test, "group": "prompt_id"}}
