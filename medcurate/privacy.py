"""Where text may go. Every version's manifest states its privacy status (``deidentified`` with the
settings, or ``not screened``); anything that sends text to an endpoint (``annotate sample``, the
judge, LLM steps) refuses a version that is not de-identified when the endpoint is not on this
machine's loopback, unless the user passes the loudly named flag. The refusal happens before any
connection: the address is judged by its text, never resolved.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from medcurate.errors import MedcurateError

DEIDENTIFIED = "deidentified"
NOT_SCREENED = "not screened"
ALLOW_FLAG = "--allow-unscreened-text-to-remote-endpoint"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def is_loopback(url: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for anything else, 0.0.0.0 included."""
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname
    except ValueError:
        return False
    if not host:
        return False
    host = host.rstrip(".").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def privacy_status(manifest: dict[str, Any]) -> str:
    """A version's privacy status; versions published before it was recorded count as not screened."""
    privacy = manifest.get("privacy")
    return privacy.get("status", NOT_SCREENED) if isinstance(privacy, dict) else NOT_SCREENED


def not_screened() -> dict[str, Any]:
    return {"status": NOT_SCREENED}


def deidentified(settings: dict[str, Any]) -> dict[str, Any]:
    return {"status": DEIDENTIFIED, **settings}


def version_privacy(rows: list[dict[str, Any]], deid_stats: dict[str, Any] | None) -> dict[str, Any]:
    """A version's privacy entry: ``deidentified`` with its settings when a deid step ran and every row
    passes the gate (all text columns covered, default threshold or below, nothing passed through,
    unchanged since); else ``not screened``."""
    from medcurate.deid.gate import ENGINE, gate_problem

    if not deid_stats or any(gate_problem(row) for row in rows):
        return not_screened()
    return deidentified({"engine": ENGINE, "policy": deid_stats["policy"], "threshold": deid_stats["threshold"],
                         "columns": deid_stats["columns"], "stable_pseudonyms": deid_stats["stable_pseudonyms"]})


def require_safe_endpoint(url: str | None, statuses: Iterable[str], *, allow_unscreened: bool, purpose: str) -> None:
    """Refuse (before any connection) to send text that is not de-identified to a non-loopback endpoint."""
    if not url or is_loopback(url):
        return
    if all(status == DEIDENTIFIED for status in statuses) or allow_unscreened:
        return
    host = urlsplit(url if "//" in url else f"//{url}").hostname or url
    raise MedcurateError(f"refusing to send text of a version that is not de-identified ({purpose}) to {host}, "
                         f"which is not on loopback: de-identify it first (a `deid` step) or pass {ALLOW_FLAG}",
                         field=ALLOW_FLAG)
