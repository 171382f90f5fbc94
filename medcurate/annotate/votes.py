"""Votes -> resolutions: each judgement of a unit resolved by consensus or the expert's decision."""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from medcurate.annotate.configs import (
    SPF_CRITERIA,
    decision_keys,
    judgement_keys,
)


@dataclass
class Resolution:
    """The outcome of one judgement across annotators (and the expert)."""

    value: str | None
    status: str                     # consensus | adjudicated | disputed | too_few_votes | not_annotated
    votes: dict[str, int]
    agreement: float | None         # share of annotator votes equal to the final value


def resolve_judgement(votes: list[str], decision: str | None, min_votes: int = 2) -> Resolution:
    counts = Counter(votes)
    tally = dict(sorted(counts.items()))
    if decision is not None:
        share = counts[decision] / len(votes) if votes else None
        return Resolution(decision, "adjudicated", tally, share)
    if not votes:
        return Resolution(None, "not_annotated", tally, None)
    if len(votes) < min_votes:
        return Resolution(None, "too_few_votes", tally, None)
    if len(counts) == 1:
        return Resolution(votes[0], "consensus", tally, 1.0)
    return Resolution(None, "disputed", tally, None)


SCORE_SPREAD = 1
"""Rating kind: annotators whose scores differ by at most this much agree, and their mean is the
score; a wider spread goes to the expert like any other dispute."""


def resolve_score(votes: list[str], decision: str | None, min_votes: int = 2) -> Resolution:
    """One rating dimension: consensus when the scores lie within SCORE_SPREAD of each other."""
    counts = Counter(votes)
    tally = dict(sorted(counts.items()))
    scores = [float(vote) for vote in votes]
    if decision is not None:
        return Resolution(decision, "adjudicated", tally, counts[decision] / len(votes) if votes else None)
    if not scores:
        return Resolution(None, "not_annotated", tally, None)
    if len(scores) < min_votes:
        return Resolution(None, "too_few_votes", tally, None)
    if max(scores) - min(scores) > SCORE_SPREAD:
        return Resolution(None, "disputed", tally, None)
    mean = round(sum(scores) / len(scores), 4)
    return Resolution(f"{mean:g}", "consensus", tally, counts.most_common(1)[0][1] / len(scores))


def votes_by_unit(annotations: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in annotations:
        grouped[record["unit_id"]].append(record)
    return grouped


def resolve_unit(kind: str, unit: dict[str, Any], annotations: list[dict[str, Any]],
                 decisions: dict[str, str], min_votes: int = 2) -> dict[str, Resolution]:
    """Every judgement key of a unit resolved from its annotations and the expert's decisions."""
    resolved = {}
    for key in judgement_keys(kind, unit):
        votes = [a["judgements"][key] for a in annotations if key in a["judgements"]]
        resolver = resolve_score if kind == "rating" else resolve_judgement
        resolved[key] = resolver(votes, decisions.get(key), min_votes)
    return resolved


def spf_winner(judgements: dict[str, str]) -> str | None:
    """The lexicographic SPF outcome of one set of judgements: first non-tie criterion decides;
    'tie' when all three tie; None when a criterion needed for the decision is missing."""
    for criterion in SPF_CRITERIA:
        value = judgements.get(criterion)
        if value is None:
            return None
        if value != "tie":
            return value
    return "tie"


def disputed_units(state: dict[str, Any], annotations: dict[Any, dict[str, Any]], decisions: dict[tuple, dict],
                   min_votes: int) -> dict[str, dict[str, Resolution]]:
    """Units whose cross-annotation is complete but whose deciding judgements do not agree
    (or lack votes because annotators skipped a criterion), minus those the expert decided."""
    by_unit = votes_by_unit(annotations.values())
    disputed = {}
    for unit_id, unit in state["units"].items():
        records = by_unit.get(unit_id, [])
        if len({r["annotator"] for r in records}) < state["overlap"]:
            continue
        decided = {key: d["value"] for (u, key), d in decisions.items() if u == unit_id}
        resolved = resolve_unit(state["kind"], unit, records, decided, min_votes)
        open_keys = unsettled_judgements(state["kind"], unit, resolved)
        if open_keys:
            disputed[unit_id] = open_keys
    return disputed


def unsettled_judgements(kind: str, unit: dict[str, Any], resolved: dict[str, Resolution]) -> dict[str, Resolution]:
    """The deciding judgements the expert must settle. Pairwise SPF is lexicographic: once a
    criterion is resolved to a winner, the later criteria cannot change the pair, so a unit with
    safety agreed on ``A`` is settled however professionalism and fluency were voted; an open
    criterion after resolved ties is asked together with the open ones after it."""
    is_open = {key: r.status in ("disputed", "too_few_votes") for key, r in resolved.items()}
    if kind != "pairwise":
        return {key: resolved[key] for key in decision_keys(kind, unit) if is_open.get(key)}
    for position, criterion in enumerate(SPF_CRITERIA):
        if is_open.get(criterion):
            return {key: resolved[key] for key in SPF_CRITERIA[position:] if is_open.get(key)}
        if resolved[criterion].value != "tie":
            return {}
    return {}


def describe_dispute(open_keys: dict[str, Resolution]) -> str:
    """The note on an adjudication task: annotators who differ are a dispute; a judgement that
    lacks votes (someone skipped it) is named as such, not as a dispute."""
    lines = []
    for status, heading in (("disputed", "分歧 / Disputed"), ("too_few_votes", "票数不足 / Too few votes")):
        parts = []
        for key, resolution in open_keys.items():
            if resolution.status != status:
                continue
            votes = ", ".join(f"{value}: {count}" for value, count in resolution.votes.items()) or "no votes"
            parts.append(f"{key.replace('order:', 'order of ').replace('|', ' vs ')} ({votes})")
        if parts:
            lines.append(f"{heading}: " + "; ".join(parts))
    return " | ".join(lines)
