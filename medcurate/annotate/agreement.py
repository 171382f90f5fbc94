"""Inter-annotator agreement on nominal judgements: raw agreement, Cohen's kappa, Fleiss' kappa,
Krippendorff's alpha.

Label Studio's own agreement statistics are an Enterprise feature, so medcurate computes
them. Inputs are plain lists; an *item* is the list of ``(annotator, value)`` votes one
judgement got. Items with fewer than two votes carry no agreement information and are
left out of every statistic.
"""
from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, SupportsFloat, cast

Vote = tuple[str, Hashable]


def raw_agreement(items: Sequence[Sequence[Hashable]]) -> float | None:
    """Share of agreeing annotator pairs, averaged over items (1.0 = everyone always agrees)."""
    scores = []
    for values in items:
        if len(values) < 2:
            continue
        pairs = list(itertools.combinations(values, 2))
        scores.append(sum(a == b for a, b in pairs) / len(pairs))
    return sum(scores) / len(scores) if scores else None


def unanimous_share(items: Sequence[Sequence[Hashable]]) -> float | None:
    """Share of items on which all annotators gave the same value."""
    usable = [values for values in items if len(values) >= 2]
    return sum(len(set(values)) == 1 for values in usable) / len(usable) if usable else None


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa of two annotators from their (first, second) values on the same items.

    kappa = (p_o - p_e) / (1 - p_e), p_e from each annotator's own label shares. When both
    always use one and the same label, p_e = 1 and kappa is 1.0 if they agree (else None).
    """
    if not pairs:
        return None
    total = len(pairs)
    observed = sum(a == b for a, b in pairs) / total
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in set(first) | set(second)) / (total * total)
    if expected == 1.0:
        return 1.0 if observed == 1.0 else None
    return (observed - expected) / (1 - expected)


def fleiss_kappa(items: Sequence[Sequence[Hashable]]) -> float | None:
    """Fleiss' kappa: every item rated by the same number m >= 2 of (any) annotators."""
    usable = [values for values in items if len(values) >= 2]
    if not usable:
        return None
    raters = len(usable[0])
    if any(len(values) != raters for values in usable):
        return None
    total = len(usable)
    per_item = []
    label_totals: Counter = Counter()
    for values in usable:
        counts = Counter(values)
        label_totals.update(counts)
        per_item.append((sum(n * n for n in counts.values()) - raters) / (raters * (raters - 1)))
    observed = sum(per_item) / total
    expected = sum((n / (total * raters)) ** 2 for n in label_totals.values())
    if expected == 1.0:
        return 1.0 if observed == 1.0 else None
    return (observed - expected) / (1 - expected)


def krippendorff_alpha_nominal(items: Sequence[Sequence[Hashable]]) -> float | None:
    """Krippendorff's alpha for nominal data; items may have different numbers of votes.

    alpha = 1 - D_o / D_e from the coincidence matrix: each item with m_u votes contributes
    1 / (m_u - 1) per ordered pair of its votes.
    """
    return _krippendorff_alpha(items, lambda a, b: 0.0 if a == b else 1.0)


def krippendorff_alpha_interval(items: Sequence[Sequence[float]]) -> float | None:
    """Krippendorff's alpha for interval data (scores 1-5): disagreement is the squared difference,
    so a 4 against a 5 counts less than a 1 against a 5."""
    return _krippendorff_alpha(items, lambda a, b: (float(a) - float(b)) ** 2)


def _krippendorff_alpha(items: Sequence[Sequence[Any]], distance: Callable[[Any, Any], float]) -> float | None:
    usable = [values for values in items if len(values) >= 2]
    if not usable:
        return None
    coincidence: defaultdict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for values in usable:
        weight = 1.0 / (len(values) - 1)
        for i, j in itertools.permutations(range(len(values)), 2):
            coincidence[(values[i], values[j])] += weight
    marginals: defaultdict[Hashable, float] = defaultdict(float)
    for (first, _), weight in coincidence.items():
        marginals[first] += weight
    total = sum(marginals.values())
    observed_disagreement = sum(w * distance(a, b) for (a, b), w in coincidence.items())
    expected_disagreement = sum(marginals[a] * marginals[b] * distance(a, b)
                                for a in marginals for b in marginals) / (total - 1)
    if expected_disagreement == 0:
        return 1.0 if observed_disagreement == 0 else None
    return 1.0 - observed_disagreement / expected_disagreement


def agreement_summary(items: Iterable[Sequence[Vote]], interval: bool = False) -> dict[str, object]:
    """Every statistic that applies to one criterion's items of (annotator, value) votes.

    Cohen's kappa is given when exactly two annotators rated every item (and per annotator
    pair, on the items both rated, otherwise); Fleiss' kappa when every item has the same
    number of votes; Krippendorff's alpha and raw agreement always.
    """
    votes = [list(item) for item in items if len(item) >= 2]
    values = [[value for _, value in item] for item in votes]
    annotators = sorted({annotator for item in votes for annotator, _ in item})
    summary: dict[str, object] = {
        "items": len(votes),
        "ratings": sum(len(item) for item in votes),
        "annotators": len(annotators),
        "raw_agreement": _round(raw_agreement(values)),
        "unanimous": _round(unanimous_share(values)),
        "krippendorff_alpha": _round(krippendorff_alpha_nominal(values)),
        "fleiss_kappa": _round(fleiss_kappa(values)),
        "cohen_kappa": None,
    }
    if interval:
        summary["krippendorff_alpha_interval"] = _round(
            krippendorff_alpha_interval([[float(cast("SupportsFloat", value)) for value in item] for item in values]))
    by_pair = {}
    for first, second in itertools.combinations(annotators, 2):
        pairs = []
        for item in votes:
            given = dict(item)
            if first in given and second in given:
                pairs.append((given[first], given[second]))
        if pairs:
            by_pair[f"{first}~{second}"] = {"items": len(pairs), "kappa": _round(cohen_kappa(pairs))}
    if len(annotators) == 2 and by_pair:
        summary["cohen_kappa"] = next(iter(by_pair.values()))["kappa"]
    elif by_pair:
        summary["cohen_kappa_by_pair"] = by_pair
    return summary


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
