"""The privacy gate: a row's text may be published only after de-identification.

The ``deid`` step stamps each row it processed with ``row["deid"]``: the policy and threshold it ran
with, the text columns it covered, the key columns it pseudonymised, the columns kept unscanned on
purpose (passthrough), and a checksum of all of those. EHR steps and the publish-time gate call
``gate_problem``; a row never de-identified, de-identified with a threshold above the default, with a
text column the stamp does not cover (a later ``rename``, an extra column), a raw patient key, or
edited after the step, is refused, naming the recipe field to fix.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ENGINE = "medcurate.deid/2"
DEFAULT_THRESHOLD = 0.5
# Columns medcurate writes itself: provenance, the stamp, and the content hash id.
_GATE_EXEMPT = frozenset({"source", "deid"})
_ROW_ID = re.compile(r"[0-9a-f]{16}")
PATIENT_KEY_COLUMNS = ("patient_id",)


@dataclass(frozen=True)
class GateProblem:
    reason: str
    recipe_field: str


def _checksum(row: dict[str, Any], fields: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(fields):
        digest.update(name.encode("utf-8") + b"\0" + str(row.get(name) or "").encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


def mark_deidentified(row: dict[str, Any], fields: Iterable[str], policy: str, *, threshold: float | None = None,
                      pseudonymised: Iterable[str] = (), passthrough: Iterable[str] = ()) -> None:
    """Stamp ``row`` after its ``fields`` were de-identified in place (a later stamp adds to an earlier one)."""
    earlier = row.get("deid") or {}
    covered = sorted(set(fields) | set(earlier.get("fields") or []))
    keys = sorted(set(pseudonymised) | set(earlier.get("pseudonymised") or []))
    kept = sorted(set(passthrough) | set(earlier.get("passthrough") or []))
    if threshold is None:
        threshold = earlier.get("threshold", DEFAULT_THRESHOLD)
    row["deid"] = {"engine": ENGINE, "policy": policy, "threshold": threshold, "fields": covered,
                   "pseudonymised": keys, "passthrough": kept, "checksum": _checksum(row, covered + keys)}


def text_columns(row: dict[str, Any]) -> list[str]:
    """Every column of ``row`` holding text, except medcurate's own provenance, stamp and row id."""
    return [name for name, value in row.items() if isinstance(value, str) and value and name not in _GATE_EXEMPT
            and not (name == "id" and _ROW_ID.fullmatch(value))]


def gate_problem(row: dict[str, Any], fields: Iterable[str] | None = None) -> GateProblem | None:
    """None when the row may be published; else why not and which recipe field fixes it.
    ``fields`` None means every text column of the row."""
    stamp = row.get("deid")
    if not isinstance(stamp, dict) or stamp.get("engine") != ENGINE:
        return GateProblem("not de-identified: no deid step ran on this row", "steps.deid")
    threshold = stamp.get("threshold")
    if not isinstance(threshold, int | float) or threshold > DEFAULT_THRESHOLD:
        return GateProblem(f"not de-identified: the deid step ran with threshold {threshold}, above the default "
                           f"{DEFAULT_THRESHOLD}", "steps.deid.threshold")
    if stamp.get("passthrough"):
        return GateProblem(f"not de-identified: column {stamp['passthrough'][0]} was kept unscanned (passthrough)",
                           "steps.deid.passthrough")
    covered = set(stamp.get("fields") or []) | set(stamp.get("pseudonymised") or [])
    wanted = text_columns(row) if fields is None else [name for name in fields if row.get(name) not in (None, "")]
    missing = [name for name in wanted if name not in covered]
    if missing:
        return GateProblem(f"not de-identified: field {missing[0]} was not covered by the deid step "
                           f"(a column added or renamed after it, or left out of it)", "steps.deid.fields")
    raw_keys = [name for name in PATIENT_KEY_COLUMNS if row.get(name) not in (None, "")
                and name not in (stamp.get("pseudonymised") or [])]
    if raw_keys:
        return GateProblem(f"not de-identified: {raw_keys[0]} is a raw record number, not a keyed pseudonym",
                           "steps.deid")
    if _checksum(row, sorted(set(stamp.get("fields") or [])) + sorted(set(stamp.get("pseudonymised") or []))) \
            != stamp.get("checksum"):
        return GateProblem("not de-identified: text changed after the deid step", "steps.deid")
    return None


_RESCANNERS: dict[tuple[float, tuple[str, ...]], Any] = {}


def leftover_identifier(row: dict[str, Any]) -> GateProblem | None:
    """The publish-time scan: every text column of a row that passed the gate is scanned again, as
    de-identification is idempotent (masked output holds nothing the recognizers would take). Types
    replaced by surrogates are skipped (a surrogate looks like the real thing by design)."""
    from medcurate.deid.engine import IDENTIFIER_TYPES, Deidentifier, Policy

    stamp = row.get("deid") or {}
    threshold = float(stamp.get("threshold", DEFAULT_THRESHOLD))
    policy = str(stamp.get("policy") or "mask")
    default, _, per_type = policy.partition(";")
    surrogate_types = {item.split("=")[0] for item in per_type.split(",") if item.endswith("=surrogate")}
    if default == "surrogate":
        surrogate_types = set(IDENTIFIER_TYPES) - {item.split("=")[0] for item in per_type.split(",") if "=" in item
                                                   and not item.endswith("=surrogate")}
    types = tuple(name for name in IDENTIFIER_TYPES if name not in surrogate_types)
    if not types:
        return None
    key = (threshold, types)
    if key not in _RESCANNERS:
        _RESCANNERS[key] = Deidentifier(Policy(), threshold=threshold, types=types)
    scanner = _RESCANNERS[key]
    for name in text_columns(row):
        if name in (stamp.get("pseudonymised") or []):
            continue
        spans = scanner.scan(row[name])
        if spans:
            return GateProblem(f"not de-identified: column {name} still holds a {spans[0].type} after the deid step",
                               "steps.deid")
    return None


def require_deidentified(row: dict[str, Any], fields: Iterable[str] | None = None) -> str | None:
    """None when the row passes the gate; else the reason."""
    problem = gate_problem(row, fields)
    return problem.reason if problem else None
