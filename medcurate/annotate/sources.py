"""Source format ``label_studio_annotations``: a pulled annotation work folder -> one row per
annotated unit with every judgement resolved (consensus, or the expert's decision).
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from medcurate.annotate.reports import agreement_report
from medcurate.annotate.votes import resolve_unit, votes_by_unit
from medcurate.annotate.workdir import ANNOTATIONS_FILE, DECISIONS_FILE, STATE_FILE, load_state, read_jsonl_latest
from medcurate.card import markdown_table
from medcurate.pipeline import Row, SourceOptions, SourceSpec, StepContext, register_source_reader


class AnnotationOptions(SourceOptions):
    """How many votes a unit needs before its consensus counts."""

    min_votes: Annotated[int, Field(ge=1)] = 2


def annotation_lineage_inputs(workdir: Path, state: dict[str, Any]) -> list[dict[str, Any]]:
    """The candidates file the project was pushed from (with its own lineage: prompt version,
    sampler model and adapter) and the work folder's files as they were exported."""
    from medcurate.lineage import artifact_link, file_link

    inputs = []
    candidates = Path(state.get("candidates_file") or "")
    if candidates.is_file():
        inputs.append(artifact_link(candidates))
    for name in (STATE_FILE, ANNOTATIONS_FILE, DECISIONS_FILE):
        if (workdir / name).is_file():
            inputs.append(file_link(workdir / name))
    return inputs


def sampled_from(state: dict[str, Any], inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """What the preference pairs' answers came from, for the manifest: prompt versions, the
    candidates file's sha256, the sampler's model and adapter."""
    from medcurate.lineage import read_lineage

    sampling = state.get("sampling") or {}
    candidates = next((link for link in inputs if link["type"] == "artifact"), None)
    lineage = read_lineage(candidates["path"]) if candidates else None
    return {"candidates_sha256": state.get("candidates_sha256") or (candidates or {}).get("sha256"),
            "prompt_versions": (lineage or {}).get("prompt_versions", []),
            "sampler": (lineage or {}).get("sampler") or {"model": sampling.get("model"),
                                                          "adapter": sampling.get("adapter")}}


@register_source_reader("label_studio_annotations", options=AnnotationOptions)
def read_annotation_project(spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """Annotated units of a `medcurate annotate` work folder (path: the folder), judgements resolved by consensus or expert decision."""
    workdir = ctx.resolve_path(spec.path)
    state = load_state(workdir)
    annotations = read_jsonl_latest(workdir / ANNOTATIONS_FILE, key=lambda r: r["annotation_id"])
    decisions = read_jsonl_latest(workdir / DECISIONS_FILE, key=lambda r: (r["unit_id"], r["key"]))
    min_votes = int(spec.options.get("min_votes", 2))
    digest = hashlib.sha256()
    for name in (STATE_FILE, ANNOTATIONS_FILE, DECISIONS_FILE):
        if (workdir / name).exists():
            digest.update((workdir / name).read_bytes())
    spec.sha256 = digest.hexdigest()
    spec.lineage_inputs = annotation_lineage_inputs(workdir, state)
    report = agreement_report(state, annotations)
    ctx.card.stats["annotation"] = {key: report[key] for key in (
        "kind", "units", "units_complete", "annotations", "annotators", "missing_criteria", "agreement")}
    ctx.card.stats["annotation"]["sampled_from"] = sampled_from(state, spec.lineage_inputs)
    ctx.card.add_section("Annotation agreement", markdown_table(
        ["criterion", "items", "raw agreement", "Cohen's kappa", "Fleiss' kappa", "Krippendorff's alpha"],
        [[name, s["items"], s["raw_agreement"], s["cohen_kappa"], s["fleiss_kappa"], s["krippendorff_alpha"]]
         for name, s in report["agreement"].items()]))
    by_unit = votes_by_unit(annotations.values())
    decided: dict[str, dict[str, str]] = defaultdict(dict)
    for (unit_id, key), record in decisions.items():
        decided[unit_id][key] = record["value"]
    for line, (unit_id, unit) in enumerate(state["units"].items(), start=1):
        ctx.ledger.rows_in += 1
        records = by_unit.get(unit_id, [])
        resolved = resolve_unit(state["kind"], unit, records, decided.get(unit_id, {}), min_votes)
        yield {
            "unit_id": unit_id, "unit_kind": state["kind"], "prompt_id": unit["item_id"], "prompt": unit["prompt"],
            "unit": unit,
            "resolved": {key: {"value": r.value, "status": r.status, "agreement": r.agreement}
                         for key, r in resolved.items()},
            "annotators": sorted({r["annotator"] for r in records}),
            "source": {"name": spec.name, "file": ANNOTATIONS_FILE, "line": line, "sha256": spec.sha256},
        }
