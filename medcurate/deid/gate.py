"""The privacy gate: a row's text fields may be published only after de-identification.

The ``deid`` step stamps each row it processed with ``row["deid"]``: which fields it
covered, the policy, and a checksum of those fields' de-identified text. EHR steps call
``require_deidentified`` before publishing; a row never de-identified, or edited after it
was, is refused.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

ENGINE = "medcurate.deid/1"


def _checksum(row: dict[str, Any], fields: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(fields):
        digest.update(name.encode("utf-8") + b"\0" + str(row.get(name) or "").encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


def mark_deidentified(row: dict[str, Any], fields: Iterable[str], policy: str) -> None:
    """Stamp ``row`` after its ``fields`` were de-identified in place."""
    covered = sorted(set(fields) | set((row.get("deid") or {}).get("fields") or []))
    row["deid"] = {"engine": ENGINE, "policy": policy, "fields": covered, "checksum": _checksum(row, covered)}


def require_deidentified(row: dict[str, Any], fields: Iterable[str]) -> str | None:
    """None when every listed field went through the deid step unchanged since; else the reason."""
    stamp = row.get("deid")
    if not isinstance(stamp, dict) or stamp.get("engine") != ENGINE:
        return "not de-identified: no deid step ran on this row"
    wanted = [name for name in fields if row.get(name) not in (None, "")]
    missing = [name for name in wanted if name not in stamp.get("fields", [])]
    if missing:
        return f"not de-identified: field {missing[0]} was not covered by the deid step"
    if _checksum(row, stamp["fields"]) != stamp.get("checksum"):
        return "not de-identified: text changed after the deid step"
    return None
