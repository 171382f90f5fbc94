"""De-identifying a whole record: every column, not only the ones a user remembered to name.

Identifier-named columns (medcurate/deid/columns.py) are dropped, or pseudonymised when they key a
patient; every other column holding text (also inside lists and mappings, and long integers that
may be phone or record numbers) is scanned; ``passthrough`` columns are kept unscanned on purpose
and recorded as such. The ``deid`` step and ``medcurate deid`` both use this one function.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from medcurate.deid.columns import METADATA_COLUMNS, classify, identifier_columns
from medcurate.deid.engine import Deidentifier
from medcurate.deid.recognizers import Span


@dataclass
class ColumnPlan:
    """How a record's columns are treated."""

    deidentifier: Deidentifier
    passthrough: frozenset[str] = frozenset()
    extra_identifier_columns: tuple[str, ...] = ()
    drop_columns: tuple[str, ...] = ()
    replace_columns: dict[str, str] = field(default_factory=dict)
    patient_field: str | None = None

    def __post_init__(self) -> None:
        self.known = identifier_columns(self.extra_identifier_columns)


@dataclass
class RecordOutcome:
    spans: dict[str, list[Span]] = field(default_factory=dict)
    by_type: Counter = field(default_factory=Counter)
    scanned: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    pseudonymised: list[str] = field(default_factory=list)
    passthrough: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.by_type or self.dropped or self.pseudonymised)


def deidentify_record(record: dict[str, Any], plan: ColumnPlan) -> RecordOutcome:
    """De-identify ``record`` in place, column by column; returns what was done (never values)."""
    outcome = RecordOutcome()
    deidentifier = plan.deidentifier
    patient = str(record.get(plan.patient_field) or "") if plan.patient_field else ""
    for name in list(record):
        if name in METADATA_COLUMNS:
            continue
        if name in plan.passthrough:
            outcome.passthrough.append(name)
            continue
        value = record[name]
        if name in plan.drop_columns:
            record.pop(name)
            outcome.dropped.append(name)
            continue
        if name in plan.replace_columns:
            if value not in (None, ""):
                record[name] = deidentifier.replacement(str(value), plan.replace_columns[name], patient)
                outcome.by_type[plan.replace_columns[name]] += 1
            outcome.scanned.append(name)
            continue
        action = classify(name, plan.known)
        if action == "drop":
            record.pop(name)
            outcome.dropped.append(name)
            continue
        if action == "pseudonymise":
            if value not in (None, ""):
                record[name] = deidentifier.pseudonym(str(value))
            outcome.pseudonymised.append(name)
            continue
        record[name] = _scan_value(value, name, deidentifier, patient, outcome)
        if isinstance(record[name], str):
            outcome.scanned.append(name)
    return outcome


def _scan_value(value: Any, name: str, deidentifier: Deidentifier, patient: str, outcome: RecordOutcome) -> Any:
    if isinstance(value, str):
        if not value:
            return value
        result = deidentifier.deidentify(value, patient=patient)
        if result.spans:
            outcome.spans.setdefault(name, []).extend(result.spans)
            outcome.by_type.update(span.type for span in result.spans)
        return result.text
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        # Phone, identity and record numbers stored as numbers.
        if abs(value) < 100000:
            return value
        text = str(value)
        scanned = _scan_value(text, name, deidentifier, patient, outcome)
        return value if scanned == text else scanned
    if isinstance(value, list | tuple):
        return [_scan_value(item, name, deidentifier, patient, outcome) for item in value]
    if isinstance(value, dict):
        return {key: _scan_value(item, name, deidentifier, patient, outcome) for key, item in value.items()}
    return value
