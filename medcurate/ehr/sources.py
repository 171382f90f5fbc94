"""EHR source formats: JSONL and CSV records with mapped columns, and CMB-Clin case records."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from medcurate.ehr.records import (
    cmb_clin_diagnosis,
    cmb_clin_sections,
    map_fields,
)
from medcurate.pipeline import FileOptions, RecordError, Row, SourceSpec, StepContext, register_source
from medcurate.schemas import EHR_SECTIONS


def _ehr_row(record: dict[str, Any], spec: SourceSpec, ctx: StepContext) -> Row:
    mapped = map_fields(record, spec.options.get("fields"), require_mapped=ctx.record == 1)
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


class EhrOptions(FileOptions):
    """File options plus the department to use when a record names none."""

    department: str | None = None


@register_source("ehr", file_format="jsonl", options=EhrOptions)
def parse_ehr_jsonl(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """EHR records as JSON Lines, one record per line.

    ``options.fields: {chief_complaint: 主诉, diagnosis: 出院诊断, …}`` maps columns (Chinese or
    English names are also recognised without a mapping)."""
    yield _ehr_row(record, spec, ctx)


@register_source("ehr_csv", file_format="csv", options=EhrOptions)
def parse_ehr_csv(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """EHR records as CSV with a header row; options as for the ``ehr`` format."""
    yield _ehr_row(record, spec, ctx)


@register_source("cmb_clin", file_format="json")
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
