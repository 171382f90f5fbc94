"""Agreement reports of a pulled project (report.json / report.md) and its adjudication status."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from medcurate.annotate.agreement import agreement_summary
from medcurate.annotate.configs import (
    criterion_of,
    judgement_keys,
)
from medcurate.annotate.votes import disputed_units, spf_winner, votes_by_unit
from medcurate.annotate.workdir import DECISIONS_FILE, read_jsonl_latest
from medcurate.card import markdown_table


def agreement_report(state: dict[str, Any], annotations: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """Agreement per criterion, coverage against the assignment, missing criteria, consistency."""
    kind = state["kind"]
    by_unit = votes_by_unit(annotations.values())
    items_by_criterion: dict[str, list[list[tuple[str, str]]]] = defaultdict(list)
    missing: Counter[str] = Counter()
    overall_mismatch = 0
    for unit_id, unit in state["units"].items():
        records = by_unit.get(unit_id, [])
        for record in records:
            missing.update(criterion_of(key) for key in record["missing"])
            if kind == "pairwise" and "overall" in record["judgements"]:
                implied = spf_winner(record["judgements"])
                if implied is not None and implied != record["judgements"]["overall"]:
                    overall_mismatch += 1
        for key in judgement_keys(kind, unit):
            item = [(r["annotator"], r["judgements"][key]) for r in records if key in r["judgements"]]
            items_by_criterion[criterion_of(key)].append(item)
    assigned_ids = {unit_id: {state["annotator_ids"][e] for e in emails} for unit_id, emails in state["assignment"].items()}
    complete = sum(1 for unit_id in state["units"]
                   if len({r["annotator"] for r in by_unit.get(unit_id, [])}) >= state["overlap"])
    unassigned = sum(1 for records in by_unit.values() for r in records
                     if r["annotator"] not in assigned_ids.get(r["unit_id"], set()))
    report = {
        "kind": kind,
        "project_id": state["project_id"],
        "units": len(state["units"]),
        "units_complete": complete,
        "units_pending": len(state["units"]) - complete,
        "annotations": len(annotations),
        "annotators": len({r["annotator"] for r in annotations.values()}),
        "annotations_by_unassigned_annotator": unassigned,
        "missing_criteria": dict(sorted(missing.items())),
        "agreement": {criterion: agreement_summary(items, interval=kind == "rating")
                      for criterion, items in items_by_criterion.items()},
    }
    if kind == "pairwise":
        report["overall_differs_from_spf_order"] = overall_mismatch
    return report


def report_markdown(report: dict[str, Any]) -> str:
    rows = []
    for criterion, stats in report["agreement"].items():
        rows.append([criterion, stats["items"], stats["annotators"], _fmt(stats["raw_agreement"]),
                     _fmt(stats["cohen_kappa"]), _fmt(stats["fleiss_kappa"]), _fmt(stats["krippendorff_alpha"])])
    lines = [f"# Annotation agreement: project {report['project_id']} ({report['kind']})", "",
             f"- units: {report['units']} ({report['units_complete']} fully cross-annotated, "
             f"{report['units_pending']} pending)",
             f"- annotations: {report['annotations']} by {report['annotators']} annotators "
             f"({report['annotations_by_unassigned_annotator']} by someone not assigned to the unit)",
             f"- annotations missing a criterion: {json.dumps(report['missing_criteria'])}"]
    if "overall_differs_from_spf_order" in report:
        lines.append(f"- overall choice differs from the safety > professionalism > fluency order: "
                     f"{report['overall_differs_from_spf_order']}")
    if "adjudication" in report:
        lines.append(f"- adjudication: {json.dumps(report['adjudication'])}")
    lines += ["", markdown_table(["criterion", "items", "annotators", "raw agreement", "Cohen's kappa",
                                  "Fleiss' kappa", "Krippendorff's alpha"], rows), ""]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def adjudication_status(workdir: Path, state: dict[str, Any], annotations: dict[Any, dict[str, Any]],
                        min_votes: int) -> dict[str, int]:
    decisions = read_jsonl_latest(workdir / DECISIONS_FILE, key=lambda r: (r["unit_id"], r["key"]))
    queued = (state.get("adjudication") or {}).get("queued") or {}
    return {"queued_units": len(queued), "decided_judgements": len(decisions),
            "open_units": len(disputed_units(state, annotations, decisions, min_votes))}


def write_report(workdir: Path, state: dict[str, Any], annotations: dict[Any, dict[str, Any]],
                 min_votes: int) -> dict[str, Any]:
    """report.json / report.md from the annotations and decisions as they are now (pull and resolve)."""
    report = agreement_report(state, annotations)
    report["adjudication"] = adjudication_status(workdir, state, annotations, min_votes)
    (workdir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    (workdir / "report.md").write_text(report_markdown(report), encoding="utf-8")
    return report
