"""The annotation work folder: everything medcurate knows about a project, on disk.

    WORKDIR/project.json        kind, server URL (never the token), project ids, units, assignment
    WORKDIR/annotations.jsonl   one line per pulled annotation (append-only; last line per id wins)
    WORKDIR/decisions.jsonl     the expert's decisions on disputed judgements
    WORKDIR/report.json/.md     agreement per criterion, coverage, missing criteria

Annotator e-mails are hashed before anything is written except the assignment list in project.json.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError

STATE_FILE = "project.json"
ANNOTATIONS_FILE = "annotations.jsonl"
DECISIONS_FILE = "decisions.jsonl"


def annotator_hash(email: str) -> str:
    """A stable pseudonym for an annotator: the same person gets the same id in every project."""
    return "ann-" + hashlib.sha256(f"medcurate-annotator:{email.strip().lower()}".encode()).hexdigest()[:12]


def load_state(workdir: Path) -> dict[str, Any]:
    path = workdir / STATE_FILE
    if not path.exists():
        raise MedcurateError("no annotation project here (run `medcurate annotate push` first)", file=str(path))
    return json.loads(path.read_text(encoding="utf-8"))


def save_state(workdir: Path, state: dict[str, Any]) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    temporary = workdir / (STATE_FILE + ".tmp")
    temporary.write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")
    temporary.replace(workdir / STATE_FILE)


def read_jsonl_latest(path: Path, key: Callable[[dict[str, Any]], Any]) -> dict[Any, dict[str, Any]]:
    """Records of an append-only log, the last one per key (a re-pulled, edited annotation wins)."""
    latest: dict[Any, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                latest[key(record)] = record
    return latest


def append_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    written = 0
    with path.open("a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            written += 1
        handle.flush()
    return written
