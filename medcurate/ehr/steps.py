"""The ``ehr_pairs`` step (ClinicalGPT MD-EHR diagnosis pairs) and the EHR publish check;
the EHR source formats are in ``medcurate/ehr/sources.py``.

Recipe shape::

    sources:
      - {name: ward, path: records.jsonl, format: ehr, options: {fields: {chief_complaint: 主诉, diagnosis: 出院诊断}}}
    steps:
      - deid: {fields: [chief_complaint, present_illness, past_history, physical_exam, auxiliary_exam, diagnosis_raw]}
      - ehr_pairs: {}
    splits: {validation: 2000, test: 2000, stratify: department, group: patient_id, max_fraction: 0.1}

``ehr_pairs`` refuses the whole build when a row's text did not go through ``deid``.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from medcurate.card import markdown_table
from medcurate.deid.gate import gate_problem, leftover_identifier, mark_deidentified
from medcurate.ehr.records import labelled_input, normalise_diagnosis
from medcurate.errors import MedcurateError
from medcurate.pipeline import Row, StepContext, register_publish_check, register_step
from medcurate.schemas import EHR_SECTIONS

# The text an EHR version publishes: the de-identified sections and what ehr_pairs derives from them.
PUBLISHED_TEXT_FIELDS = ("input", "diagnosis", *EHR_SECTIONS)


def refuse_unless_deidentified(rows: list[Row], fields: Iterable[str] | None = None, *, rescan: bool = False) -> None:
    """Raise (the build refuses) when any row's text did not pass the deid step unchanged; ``fields``
    None (the default) checks every text column the row carries; ``rescan`` scans them all again."""
    fields = tuple(fields) if fields is not None else None
    failures = [(row, problem) for row in rows
                if (problem := gate_problem(row, fields) or (leftover_identifier(row) if rescan else None))]
    if failures:
        row, problem = failures[0]
        source = row.get("source") or {}
        raise MedcurateError(f"refusing to publish {len(failures)} EHR row(s) that did not pass the deid step "
                             f"(first: {problem.reason}); fix the recipe's deid step ({problem.recipe_field}) "
                             f"and keep it after any step that adds or renames text columns",
                             file=source.get("file"), line=source.get("line"), field=problem.recipe_field)


@register_publish_check("ehr")
def refuse_text_not_deidentified(rows: list[Row]) -> None:
    """The privacy gate at publish time: every string column of every EHR row must be the deid
    step's output, unchanged by any later step (a rename or an extra column is refused), and hold
    nothing the recognizers would still take."""
    refuse_unless_deidentified(rows, rescan=True)


@register_step("ehr_pairs", reads=(*EHR_SECTIONS, "diagnosis_raw", "department", "deid"),
               writes=("input", "diagnosis", "diagnoses", "diagnosis_uncertain"))
def ehr_pairs(rows: list[Row], ctx: StepContext) -> list[Row]:
    """De-identified EHR records -> input (labelled sections, fixed order) / diagnosis pairs.

    Refuses the build when a row did not pass the ``deid`` step. The diagnosis is split into
    items, uncertainty markers (？ 待查 可能 考虑 …) become ``diagnosis_uncertain``, the first
    item is the answer and the full list is kept in ``diagnoses``. A row whose diagnosis is
    empty after normalisation is rejected (``missing diagnosis``).
    """
    refuse_unless_deidentified(rows)
    kept: list[Row] = []
    for row in rows:
        normalised = normalise_diagnosis(str(row.get("diagnosis_raw") or ""))
        if not normalised.primary:
            ctx.reject(row, "missing diagnosis: empty after normalisation", "diagnosis")
            continue
        row["input"] = labelled_input(row)
        row["diagnosis"] = normalised.primary
        row["diagnoses"] = list(normalised.all)
        row["diagnosis_uncertain"] = normalised.uncertain
        row["department"] = str(row.get("department") or "")
        mark_deidentified(row, [name for name in PUBLISHED_TEXT_FIELDS if name in row] + ["department"],
                          row["deid"]["policy"])
        kept.append(row)
    departments = Counter(row["department"] or "(unknown)" for row in kept)
    ctx.card.stats["ehr"] = {"rows": len(kept), "departments": dict(sorted(departments.items())),
                             "uncertain": sum(1 for row in kept if row["diagnosis_uncertain"]),
                             "multiple_diagnoses": sum(1 for row in kept if len(row["diagnoses"]) > 1)}
    ctx.card.add_section("EHR diagnosis pairs", markdown_table(
        ["department", "rows"], [[name, count] for name, count in sorted(departments.items())]) +
        f"\n\nRows with an uncertain primary diagnosis: {ctx.card.stats['ehr']['uncertain']}; "
        f"rows with several diagnoses: {ctx.card.stats['ehr']['multiple_diagnoses']}.")
    return kept
