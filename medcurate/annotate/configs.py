"""The three annotation project kinds, their Label Studio configs, and reading their results.

Each kind names a label config in the top-level ``annotation/`` folder. An annotation is
read into *judgements*: ``{key: value}`` where a key is one thing annotators can agree or
disagree on (a criterion of a pair, the order of two ranked answers, one answer's
acceptability). Agreement, adjudication and export all work on judgements, so they are
the same code for every kind.
"""
from __future__ import annotations

import hashlib
import itertools
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError
from medcurate.resources import data_file

SPF_CRITERIA = ("safety", "professionalism", "fluency")
PAIRWISE_CHOICES = {"A better": "A", "B better": "B", "tie": "tie"}
BINARY_CHOICES = ("acceptable", "unacceptable")
REVIEW_DECISIONS = ("accept", "edit", "reject")
REVIEW_TEXTS = ("edited", "reason")
RATING_DIMENSIONS = ("informativeness", "coherence", "human_preference", "factual_accuracy")
"""IvyGPT section 2.2: answers scored on informativeness, coherence, adherence to human preference
and factual accuracy; medcurate asks for 1-5 on each."""
RATING_SCALE = (1, 5)
CONTROL_TAGS = {"choices", "ranker", "rating", "textarea", "labels", "number", "taxonomy", "pairwise"}


@dataclass(frozen=True)
class ProjectKind:
    """One kind of annotation project: its config file and what its judgements mean."""

    name: str
    config_file: str
    doc: str

    def label_config(self) -> str:
        return read_annotation_file(self.config_file)

    def config_path(self) -> Path:
        return data_file("annotation", self.config_file)


KINDS = {
    "pairwise": ProjectKind("pairwise", "pairwise_spf.xml",
                            "two answers compared on safety, professionalism, fluency, plus an overall choice"),
    "ranking": ProjectKind("ranking", "ranking.xml", "k answers ranked best first"),
    "binary": ProjectKind("binary", "binary.xml", "one answer marked acceptable or unacceptable"),
    "review": ProjectKind("review", "review.xml",
                          "a generated row accepted, edited or rejected by physicians, with a reason"),
    "rating": ProjectKind("rating", "rating.xml",
                          "one answer scored 1-5 on informativeness, coherence, human preference and factual "
                          "accuracy (IvyGPT)"),
}


def project_kind(name: str) -> ProjectKind:
    if name not in KINDS:
        raise MedcurateError(f"unknown project kind {name!r}; expected one of {', '.join(KINDS)}", field="kind")
    return KINDS[name]


def read_annotation_file(relative: str) -> str:
    try:
        return data_file("annotation", relative).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise MedcurateError(str(exc)) from None


def config_signature(label_config: str) -> dict[str, Any]:
    """What a config asks for, independent of layout: each control tag's type, target and
    choice values, and each data field the object tags read."""
    try:
        root = ElementTree.fromstring(label_config)
    except ElementTree.ParseError as exc:
        raise MedcurateError(f"label config is not valid XML: {exc}") from None
    controls: dict[str, dict[str, Any]] = {}
    data_fields: set[str] = set()
    for element in root.iter():
        tag = element.tag.lower()
        value = element.get("value", "")
        name = element.get("name")
        if tag in CONTROL_TAGS and name:
            controls[name] = {
                "type": tag,
                "to_name": element.get("toName"),
                "choices": sorted(child.get("value") for child in element if child.tag.lower() == "choice"),
            }
        elif value.startswith("$") and tag not in {"choice", "label"}:
            data_fields.add(value[1:])
    return {"controls": controls, "data_fields": sorted(data_fields)}


def config_mismatch(expected: str, actual: str) -> str | None:
    """Why a project's config differs from the expected one (None when it matches)."""
    want, have = config_signature(expected), config_signature(actual)
    for name, spec in want["controls"].items():
        found = have["controls"].get(name)
        if found is None:
            return f"control {name!r} ({spec['type']}) is missing"
        if found["type"] != spec["type"]:
            return f"control {name!r} is a {found['type']}, expected {spec['type']}"
        if found["choices"] != spec["choices"]:
            return (f"control {name!r} offers choices [{', '.join(found['choices'])}], expected "
                    f"[{', '.join(spec['choices'])}]")
        if found["to_name"] != spec["to_name"]:
            return f"control {name!r} points at {found['to_name']!r}, expected {spec['to_name']!r}"
    extra = sorted(set(have["controls"]) - set(want["controls"]))
    if extra:
        return f"unexpected control(s) {', '.join(repr(name) for name in extra)}"
    missing_fields = sorted(set(want["data_fields"]) - set(have["data_fields"]))
    if missing_fields:
        return f"data field(s) {', '.join(missing_fields)} not shown"
    return None


def config_sha256(label_config: str) -> str:
    return hashlib.sha256(label_config.encode("utf-8")).hexdigest()


def judgement_keys(kind: str, unit: dict[str, Any]) -> list[str]:
    """Every judgement a complete annotation of this unit gives."""
    if kind == "pairwise":
        return [*SPF_CRITERIA, "overall"]
    if kind == "ranking":
        ids = [candidate["id"] for candidate in unit["candidates"]]
        return [order_key(first, second) for first, second in itertools.combinations(sorted(ids), 2)]
    if kind == "review":
        return ["decision"]
    if kind == "rating":
        return list(RATING_DIMENSIONS)
    return ["acceptability"]


def decision_keys(kind: str, unit: dict[str, Any]) -> list[str]:
    """The judgements that decide the exported pairs (the overall choice of a pair does not)."""
    keys = judgement_keys(kind, unit)
    return [key for key in keys if key != "overall"]


def criterion_of(key: str) -> str:
    """The agreement family a judgement key belongs to (all ranked pairs count as ``order``)."""
    return "order" if key.startswith("order:") else key


def order_key(first: str, second: str) -> str:
    low, high = sorted((first, second))
    return f"order:{low}|{high}"


def parse_result(kind: str, unit: dict[str, Any], result: list[dict[str, Any]]) -> tuple[dict[str, str], list[str]]:
    """An annotation's result list -> (judgements, missing keys). Nothing missing is guessed.
    A review's edited answer and reason ride along as ``edited`` / ``reason`` (texts, not votes)."""
    judgements: dict[str, str] = {}
    if kind == "review":
        for item in result:
            value = item.get("value") or {}
            choices = value.get("choices") or []
            if item.get("from_name") == "decision" and len(choices) == 1 and choices[0] in REVIEW_DECISIONS:
                judgements["decision"] = choices[0]
            elif item.get("from_name") in REVIEW_TEXTS:
                text = "\n".join(str(part) for part in value.get("text") or []).strip()
                if text:
                    judgements[item["from_name"]] = text
    elif kind == "pairwise":
        for item in result:
            name = item.get("from_name")
            choices = (item.get("value") or {}).get("choices") or []
            if name in (*SPF_CRITERIA, "overall") and len(choices) == 1 and choices[0] in PAIRWISE_CHOICES:
                judgements[name] = PAIRWISE_CHOICES[choices[0]]
    elif kind == "binary":
        for item in result:
            choices = (item.get("value") or {}).get("choices") or []
            if item.get("from_name") == "acceptability" and len(choices) == 1 and choices[0] in BINARY_CHOICES:
                judgements["acceptability"] = choices[0]
    elif kind == "rating":
        low, high = RATING_SCALE
        for item in result:
            score = (item.get("value") or {}).get("rating")
            if item.get("from_name") in RATING_DIMENSIONS and isinstance(score, int) and low <= score <= high:
                judgements[item["from_name"]] = str(score)
    else:
        order = _ranked_ids(result)
        ids = {candidate["id"] for candidate in unit["candidates"]}
        if order is not None and set(order) == ids and len(order) == len(ids):
            position = {candidate_id: index for index, candidate_id in enumerate(order)}
            for first, second in itertools.combinations(sorted(ids), 2):
                judgements[order_key(first, second)] = first if position[first] < position[second] else second
    missing = [key for key in judgement_keys(kind, unit) if key not in judgements]
    return judgements, missing


def _ranked_ids(result: list[dict[str, Any]]) -> list[str] | None:
    for item in result:
        if item.get("from_name") == "rank":
            buckets = (item.get("value") or {}).get("ranker") or {}
            if len(buckets) == 1:
                return list(next(iter(buckets.values())))
    return None


def build_result(kind: str, judgements: dict[str, Any]) -> list[dict[str, Any]]:
    """The Label Studio result list for given judgements (LLM-judge predictions, test annotators).

    pairwise: {criterion: "A" | "B" | "tie"}; binary: {"acceptability": value};
    review: {"decision": accept | edit | reject, "edited"?: text, "reason"?: text};
    ranking: {"order": [candidate ids, best first]}; rating: {dimension: 1..5}.
    """
    if kind == "pairwise":
        label = {short: long for long, short in PAIRWISE_CHOICES.items()}
        return [{"from_name": name, "to_name": "prompt", "type": "choices",
                 "value": {"choices": [label[value]]}} for name, value in judgements.items()]
    if kind == "binary":
        return [{"from_name": "acceptability", "to_name": "answer", "type": "choices",
                 "value": {"choices": [judgements["acceptability"]]}}]
    if kind == "review":
        return [{"from_name": "decision", "to_name": "answer", "type": "choices",
                 "value": {"choices": [judgements["decision"]]}}] + [
                {"from_name": name, "to_name": "answer", "type": "textarea", "value": {"text": [judgements[name]]}}
                for name in REVIEW_TEXTS if judgements.get(name)]
    if kind == "rating":
        return [{"from_name": name, "to_name": "answer", "type": "rating", "value": {"rating": int(score)}}
                for name, score in judgements.items()]
    return [{"from_name": "rank", "to_name": "answers", "type": "ranker",
             "value": {"ranker": {"_": list(judgements["order"])}}}]
