"""EHR source formats and the ``ehr_pairs`` step (ClinicalGPT MD-EHR diagnosis pairs).

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
from typing import Any

from medcurate.card import markdown_table
from medcurate.deid.gate import gate_problem, mark_deidentified
from medcurate.ehr.records import (
    cmb_clin_diagnosis,
    cmb_clin_sections,
    labelled_input,
    map_fields,
    normalise_diagnosis,
)
from medcurate.errors import MedcurateError
from medcurate.pipeline import RecordError, Row, SourceSpec, StepContext, register_source, register_step
from medcurate.schemas import EHR_SECTIONS


def _ehr_row(record: dict[str, Any], spec: SourceSpec, ctx: StepContext) -> Row:
    mapped = map_fields(record, spec.options.get("fields"), require_mapped=ctx.ledger.rows_in == 1)
    if not mapped["diagnosis"]:
        raise RecordError("missing diagnosis: the record has no diagnosis field or it is empty",
                          field=(spec.options.get("fields") or {}).get("diagnosis", "diagnosis"))
    if not any(mapped[name] for name in EHR_SECTIONS):
        raise RecordError("missing notes: none of the note sections is present", field="input")
    row: Row = {name: str(mapped[name]) for name in EHR_SECTIONS if mapped[name]}
    row["diagnosis_raw"] = str(mapped["diagnosis"])
    row["department"] = str(mapped["department"] or spec.options.get("department") or "")
    row["patient_id"] = str(mapped["patient_id"] or mapped["record_id"] or "")
    return row


@register_source("ehr", file_format="jsonl", doc="EHR records (JSONL); options.fields maps 主诉/现病史/… columns.")
def parse_ehr_jsonl(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """EHR records as JSON Lines, one record per line.

    ``options.fields: {chief_complaint: 主诉, diagnosis: 出院诊断, …}`` maps columns (Chinese or
    English names are also recognised without a mapping)."""
    yield _ehr_row(record, spec, ctx)


@register_source("ehr_csv", file_format="csv", doc="EHR records (CSV with a header); options.fields as for ehr.")
def parse_ehr_csv(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """EHR records as CSV with a header row; options as for the ``ehr`` format."""
    yield _ehr_row(record, spec, ctx)


@register_source("cmb_clin", file_format="json", doc="CMB-Clin case records: sections from the description, "
                                                     "diagnosis from the QA answers.")
def parse_cmb_clin(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """CMB-Clin clinical case records as EHR rows.

    主诉 / 现病史 / 既往史 / 体格检查 / 辅助检查 come from ``description``; the diagnosis
    from the answer of a diagnosis question (``诊断：…``), else from the case title; the title's
    disease chapter (e.g. 食管疾病) as the department stratum."""
    description = record.get("description")
    if not isinstance(description, str) or not description.strip():
        raise RecordError("missing notes: no description", field="description")
    row: Row = dict(cmb_clin_sections(description))
    if not row:
        raise RecordError("missing notes: no 现病史/体格检查/辅助检查 section", field="description")
    title = str(record.get("title") or "")
    chapter, _, topic = title.rpartition("案例分析-")
    diagnosis = cmb_clin_diagnosis(record.get("QA_pairs") or [])
    row["diagnosis_origin"] = "qa" if diagnosis else "title"
    diagnosis = diagnosis or topic.strip()
    if not diagnosis:
        raise RecordError("missing diagnosis: no diagnosis answer and no case title", field="QA_pairs")
    row["diagnosis_raw"] = diagnosis
    row["department"] = chapter.strip()
    row["patient_id"] = f"cmb-clin-{record.get('id')}"
    row["case_id"] = str(record.get("id"))
    yield row


# The text an EHR version publishes: the de-identified sections and what ehr_pairs derives from them.
PUBLISHED_TEXT_FIELDS = ("input", "diagnosis", *EHR_SECTIONS)


def refuse_unless_deidentified(rows: list[Row], fields: Iterable[str] | None = None) -> None:
    """Raise (the build refuses) when any row's text did not pass the deid step unchanged; ``fields``
    None (the default) checks every text column the row carries."""
    fields = tuple(fields) if fields is not None else None
    failures = [(row, problem) for row in rows if (problem := gate_problem(row, fields))]
    if failures:
        row, problem = failures[0]
        source = row.get("source") or {}
        raise MedcurateError(f"refusing to publish {len(failures)} EHR row(s) that did not pass the deid step "
                             f"(first: {problem.reason}); fix the recipe's deid step ({problem.recipe_field}) "
                             f"and keep it after any step that adds or renames text columns",
                             file=source.get("file"), line=source.get("line"), field=problem.recipe_field)


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
