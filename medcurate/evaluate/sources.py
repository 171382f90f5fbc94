"""The CMMLU reader, so the CMMLU medical subjects become an ordinary evaluation version.

cmmlu        CMMLU CSV ``,Question,A,B,C,D,Answer``; subject = options.subject or the file name

Multiple-choice rows are instruction rows with ``task: mcq``, ``options`` (texts in letter order),
``answer`` (the letter), ``subject``; the query lists the options so the row also trains as is.
The other evaluation sets are read by the corpus readers (medcurate/corpora/sources.py: ``mcmle``,
``huatuo26m``, ``cmedqa2``, ``meddialog_zh``), CMtMedQA by ``cmtmedqa`` (mixing), CMB-Clin by
``cmb_clin`` (ehr); medcurate/evaluate/items.py reads the MCMLE rows' ``options`` / ``answer_idx``.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from medcurate.evaluate.items import LETTERS, MCQ_TASK
from medcurate.pipeline import FileOptions, RecordError, Row, SourceSpec, StepContext, register_source


def mcq_row(question: str, options: list[str], answer: str, subject: str) -> Row:
    return {"instruction": question, "query": "\n".join(f"{l}. {t}" for l, t in zip(LETTERS, options, strict=False)),
            "answer": answer, "task": MCQ_TASK, "options": options, "subject": subject, "department": subject}


def _text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"missing or empty {key}", field=key)
    return value.strip()


class CmmluOptions(FileOptions):
    """File options plus the subject (default: the file name)."""

    subject: str | None = None


@register_source("cmmlu", file_format="csv", doc="CMMLU multiple choice (,Question,A,B,C,D,Answer) -> mcq rows.",
                 options=CmmluOptions)
def parse_cmmlu(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    question = _text(record, "Question")
    options = [_text(record, letter) for letter in LETTERS[:4]]
    answer = _text(record, "Answer").upper()
    if answer not in LETTERS[:4]:
        raise RecordError("answer must be one of A-D", field="Answer")
    subject = spec.options.get("subject") or (spec.resolved_path.stem if spec.resolved_path else spec.name)
    yield mcq_row(question, options, answer, str(subject))
