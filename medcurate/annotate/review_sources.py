"""Source format ``label_studio_review``: a pulled review work folder (``annotate push --kind
review``) -> one row per reviewed unit with its decision resolved (consensus, or the expert's),
the edited answer, the reasons, and the generated row it came from (see ``review.py``).
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from medcurate.annotate.reports import agreement_report
from medcurate.annotate.units import read_candidates
from medcurate.annotate.votes import resolve_unit, votes_by_unit
from medcurate.annotate.workdir import ANNOTATIONS_FILE, DECISIONS_FILE, STATE_FILE, load_state, read_jsonl_latest
from medcurate.card import markdown_table
from medcurate.errors import MedcurateError
from medcurate.pipeline import Row, SourceSpec, StepContext, register_source_reader


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
    expert_texts: dict[str, dict[str, str]] = {}
    for (unit_id, key), record in decisions.items():
        decided[unit_id][key] = record["value"]
        expert_texts[unit_id] = record.get("texts") or {}
    for line, (unit_id, unit) in enumerate(state["units"].items(), start=1):
        ctx.ledger.rows_in += 1
        records = sorted(by_unit.get(unit_id, []), key=lambda r: r["annotator"])
        resolved = resolve_unit("review", unit, records, decided.get(unit_id, {}), min_votes)["decision"]
        expert = expert_texts.get(unit_id, {}) if resolved.status == "adjudicated" else {}
        editors = [r["judgements"]["edited"] for r in records
                   if r["judgements"].get("decision") == "edit" and r["judgements"].get("edited")]
        edited = expert.get("edited") or (editors[0] if editors else None)
        reasons = sorted({r["judgements"]["reason"] for r in records if r["judgements"].get("reason")}
                         | ({expert["reason"]} if expert.get("reason") else set()))
        yield {"unit_id": unit_id, "prompt_id": unit["item_id"], "prompt": unit["prompt"],
               "candidate_id": unit["candidate"]["id"], "candidate": unit["candidate"]["text"],
               "decision": resolved.value, "status": resolved.status, "agreement": resolved.agreement,
               "edited": edited, "reasons": reasons,
               "annotators": sorted({r["annotator"] for r in records}),
               "original": (items.get(str(unit["item_id"])) or {}).get("row"),
               "source": {"name": spec.name, "file": ANNOTATIONS_FILE, "line": line, "sha256": spec.sha256}}
