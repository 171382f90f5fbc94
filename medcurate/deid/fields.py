"""De-identifying the text fields of one record in place: the one function both
``medcurate deid`` (files) and the ``deid`` recipe step (rows) call."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from medcurate.deid.engine import Deidentifier, DeidResult


def deidentify_fields(record: dict[str, Any], fields: Iterable[str], deidentifier: Deidentifier,
                      patient: str = "") -> dict[str, DeidResult]:
    """Replace identifiers in each listed field that holds text; the result per field processed
    (spans and below-threshold findings, for counts and audit; never logged as text)."""
    results: dict[str, DeidResult] = {}
    for name in fields:
        value = record.get(name)
        if not isinstance(value, str) or not value:
            continue
        result = deidentifier.deidentify(value, patient=patient)
        record[name] = result.text
        results[name] = result
    return results
