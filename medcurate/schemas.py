"""The four row kinds every medcurate dataset is made of, in one place.

A row is a plain dict while a pipeline runs (fast, easy to transform) and is checked
against its kind's schema before it is published. Each kind names its required and
optional fields; any further column a step adds (``triples``, ``gold``, ratings …) is
kept. Every published row has a stable ``id`` and a ``source`` provenance record.

instruction   instruction / query / answer, plus task, department, template_id
conversation  messages: [{role, content}] with roles system / user / assistant
ehr           department, input, diagnosis, plus the note sections
preference    prompt, chosen, rejected, per-criterion ratings, annotator metadata
"""
from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

ROLES = ("system", "user", "assistant")
EHR_SECTIONS = ("chief_complaint", "present_illness", "past_history", "physical_exam", "auxiliary_exam")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    types: tuple[type, ...]
    required: bool = True
    nonempty: bool = False
    doc: str = ""


@dataclass(frozen=True)
class RowKind:
    name: str
    fields: tuple[FieldSpec, ...]
    doc: str
    extra_checks: tuple[Callable[[dict[str, Any]], list[tuple[str, str]]], ...] = field(default=())

    @cached_property
    def content_fields(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.fields if spec.name not in ("id", "source"))

    @cached_property
    def _checks(self) -> tuple[tuple[str, tuple[type, ...], bool, bool, str], ...]:
        return tuple((spec.name, spec.types, spec.required, spec.nonempty,
                      " or ".join(t.__name__ for t in spec.types)) for spec in self.fields)

    def problems(self, row: dict[str, Any]) -> list[tuple[str, str]]:
        """Every problem of one row as (field, message); empty when the row is valid."""
        found: list[tuple[str, str]] = []
        for name, types, required, nonempty, expected in self._checks:
            value = row.get(name)
            if value is None:
                if required:
                    found.append((name, "missing"))
                continue
            if not isinstance(value, types):
                found.append((name, f"expected {expected}, got {type(value).__name__}"))
                continue
            if nonempty and isinstance(value, str | list) and not (value.strip() if isinstance(value, str) else value):
                found.append((name, "empty"))
        if not found:
            for check in self.extra_checks:
                found.extend(check(row))
        return found


def _check_source(row: dict[str, Any]) -> list[tuple[str, str]]:
    source = row.get("source")
    if source is None:
        return []
    if not isinstance(source, dict):
        return [("source", "expected an object with name, file, line, sha256")]
    return [(f"source.{key}", "missing") for key in ("name", "file", "line", "sha256") if key not in source]


def _check_messages(row: dict[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    messages = row["messages"]
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            problems.append((where, "expected an object with role and content"))
            continue
        if message.get("role") not in ROLES:
            problems.append((f"{where}.role", f"must be one of {', '.join(ROLES)}, got {message.get('role')!r}"))
        if not isinstance(message.get("content"), str) or not message["content"].strip():
            problems.append((f"{where}.content", "missing or empty"))
    roles = [m.get("role") for m in messages if isinstance(m, dict)]
    dialogue = [r for r in roles if r != "system"]
    if "system" in roles[1:]:
        problems.append(("messages", "a system message may only come first"))
    if dialogue and dialogue[0] != "user":
        problems.append(("messages", "the first non-system message must be from the user"))
    if dialogue and dialogue[-1] != "assistant":
        problems.append(("messages", "the last message must be from the assistant"))
    for before, after in itertools.pairwise(dialogue):
        if before == after:
            problems.append(("messages", "user and assistant turns must alternate"))
            break
    return problems


def _check_preference(row: dict[str, Any]) -> list[tuple[str, str]]:
    if row["chosen"] == row["rejected"]:
        return [("rejected", "identical to chosen")]
    return []


_ID = FieldSpec("id", (str,), required=False, doc="stable id from content and source")
_SOURCE = FieldSpec("source", (dict,), required=False, doc="provenance: name, file, line, sha256")

INSTRUCTION = RowKind(
    "instruction",
    (
        _ID,
        FieldSpec("instruction", (str,), nonempty=True, doc="what the model is asked to do"),
        FieldSpec("query", (str,), doc="the input the instruction applies to; may be empty"),
        FieldSpec("answer", (str,), nonempty=True, doc="the target text"),
        FieldSpec("task", (str,), nonempty=True, doc="task form, e.g. kg_qa, cdee, ner, diagnosis"),
        FieldSpec("department", (str,), required=False, doc="clinical department when known"),
        FieldSpec("template_id", (str,), required=False, doc="template that produced the row"),
        _SOURCE,
    ),
    "An instruction / query / answer triple (CMedINS, KG QA).",
    (_check_source,),
)

CONVERSATION = RowKind(
    "conversation",
    (
        _ID,
        FieldSpec("messages", (list,), nonempty=True, doc="[{role, content}], roles system/user/assistant"),
        FieldSpec("department", (str,), required=False),
        _SOURCE,
    ),
    "A single- or multi-turn dialogue ending on an assistant turn.",
    (_check_messages, _check_source),
)

EHR = RowKind(
    "ehr",
    (
        _ID,
        FieldSpec("department", (str,), doc="clinical department; may be empty when unknown"),
        FieldSpec("input", (str,), nonempty=True, doc="the note sections with their labels, fixed order"),
        FieldSpec("diagnosis", (str,), nonempty=True, doc="primary diagnosis (the target)"),
        *(FieldSpec(name, (str,), required=False) for name in EHR_SECTIONS),
        _SOURCE,
    ),
    "A de-identified EHR record turned into an input -> diagnosis pair (ClinicalGPT MD-EHR).",
    (_check_source,),
)

PREFERENCE = RowKind(
    "preference",
    (
        _ID,
        FieldSpec("prompt", (str, list), nonempty=True, doc="a string, or messages for multi-turn history"),
        FieldSpec("chosen", (str,), nonempty=True),
        FieldSpec("rejected", (str,), nonempty=True),
        FieldSpec("ratings", (dict, str), required=False, doc="per-criterion ratings (safety, professionalism, fluency)"),
        FieldSpec("annotators", (list,), required=False, doc="hashed annotator ids"),
        _SOURCE,
    ),
    "A preference pair for DPO or reward-model training.",
    (_check_preference, _check_source),
)

ROW_KINDS: dict[str, RowKind] = {kind.name: kind for kind in (INSTRUCTION, CONVERSATION, EHR, PREFERENCE)}


def row_kind(name: str) -> RowKind:
    from medcurate.errors import MedcurateError

    if name not in ROW_KINDS:
        raise MedcurateError(f"unknown row kind {name!r}; expected one of {', '.join(ROW_KINDS)}", field="kind")
    return ROW_KINDS[name]


_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
# The same encoder's C core, made once: JSONEncoder.encode builds it anew on every call, which
# costs as much as encoding a row. No cycle check (rows are trees; a cycle ends in RecursionError).
_MAKE_ENCODER = getattr(json.encoder, "c_make_encoder", None)
_C_CANONICAL = (_MAKE_ENCODER(None, str, json.encoder.encode_basestring, None, ":", ",", True, False, True)
                if _MAKE_ENCODER is not None else None)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the basis of every content hash."""
    if _C_CANONICAL is None or isinstance(value, str):
        return _CANONICAL.encode(value)
    return "".join(_C_CANONICAL(value, 0))


def stable_row_id(row: dict[str, Any], kind: RowKind) -> str:
    """A 16-hex id from the row's content fields and its source (name, file, line)."""
    source = row.get("source") or {}
    basis = {
        "content": {name: row.get(name) for name in kind.content_fields},
        "source": [source.get("name"), source.get("file"), source.get("line")],
    }
    return hashlib.sha256(canonical_json(basis).encode("utf-8")).hexdigest()[:16]
