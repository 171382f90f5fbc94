"""Turning a pulled annotation project into a ``preference`` dataset.

Source format ``label_studio_annotations`` (sources.py; path: an annotation work folder) yields one row
per annotated unit with every judgement resolved (consensus, or the expert's decision).
Step ``preference_pairs`` turns those into prompt / chosen / rejected rows:

* pairwise: the first of safety, professionalism, fluency that is not a tie decides
  (lexicographic, IIMedGPT's SPF order). **Tie rule:** a pair tied on all three criteria is
  dropped (filter ``tie``), never broken by the overall choice or by chance; a pair whose
  deciding criterion is still disputed or lacks votes is dropped as ``unresolved`` (one that
  nobody has annotated yet as ``not_annotated``).
* ranking: every ordered pair of the consensus (or adjudicated) order, one row each.
* binary: every (acceptable, unacceptable) pair of answers to the same prompt; a prompt whose
  answers are all acceptable or all unacceptable gives none (filter ``no_contrast``).
* rating (IvyGPT): each answer's score is the mean of its four resolved dimension scores (1-5);
  every two answers to the same prompt whose scores differ by more than ``tie_margin`` (default
  0.5) give one pair, the higher-scored answer chosen. Closer pairs are ties and give none; a
  prompt with no pair above the margin is dropped as ``no_contrast``.
"""
from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from typing import Any

from medcurate.annotate.configs import RATING_DIMENSIONS, SPF_CRITERIA, decision_keys
from medcurate.annotate.sampling import as_messages
from medcurate.errors import MedcurateError
from medcurate.pipeline import Row, StepContext, register_step

UNRESOLVED_STATUSES = ("disputed", "too_few_votes", "not_annotated")


@register_step("preference_pairs", reads=("unit_kind", "unit", "resolved", "prompt"),
               writes=("prompt", "chosen", "rejected", "ratings", "agreement", "annotators"))
def preference_pairs(rows: list[Row], ctx: StepContext, prompt_format: str = "auto",
                     tie_margin: float = 0.5) -> list[Row]:
    """Annotated units -> prompt/chosen/rejected rows (pairwise SPF order, ranking pairs, binary
    contrasts, rating score differences above ``tie_margin``); ties dropped as ``tie``, undecided
    units as ``unresolved``. ``prompt_format``: auto (messages when any prompt has history), text
    or messages."""
    if prompt_format not in ("auto", "text", "messages"):
        raise MedcurateError("prompt_format must be auto, text or messages", field="steps.preference_pairs.prompt_format")
    by_kind: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_kind[row["unit_kind"]].append(row)
    made: list[Row] = []
    consumed_before = _consumed(ctx)
    made += _pairwise_rows(by_kind.pop("pairwise", []), ctx)
    made += _ranking_rows(by_kind.pop("ranking", []), ctx)
    made += _binary_rows(by_kind.pop("binary", []), ctx)
    made += _rating_rows(by_kind.pop("rating", []), ctx, tie_margin)
    for kind, leftovers in by_kind.items():
        for row in leftovers:
            ctx.reject(row, f"unknown unit kind: {kind}", "unit_kind")
    consumed = len(rows) - (_consumed(ctx) - consumed_before)
    ctx.merged(consumed)
    ctx.created(len(made))
    use_messages = prompt_format == "messages" or (prompt_format == "auto" and any(_has_history(r["prompt"]) for r in made))
    for row in made:
        row["prompt"] = as_messages(row["prompt"]) if use_messages else _as_text(row["prompt"])
    ctx.card.stats["preference_pairs"] = {"pairs": len(made), "prompt_format": "messages" if use_messages else "text",
                                          "dropped": dict(ctx.ledger.dropped)}
    return made


def _consumed(ctx: StepContext) -> int:
    return sum(ctx.ledger.dropped.values()) + sum(ctx.ledger.rejected.values())


def _base(row: Row) -> Row:
    return {"prompt": row["prompt"], "prompt_id": row["prompt_id"], "unit_id": row["unit_id"],
            "annotators": row["annotators"], "source": {**row["source"]}}


def _not_annotated(row: Row) -> bool:
    return all(r["status"] == "not_annotated" for r in row["resolved"].values())


def _drop_undecided(row: Row, ctx: StepContext) -> None:
    """Units nobody annotated yet are told apart from units whose annotators left them open."""
    ctx.drop(row, "not_annotated" if _not_annotated(row) else "unresolved")


def _pairwise_rows(rows: list[Row], ctx: StepContext) -> list[Row]:
    made = []
    for row in rows:
        resolved = row["resolved"]
        winner, decided_by = None, None
        for criterion in SPF_CRITERIA:
            value = resolved[criterion]["value"]
            if value is None:
                break
            if value != "tie":
                winner, decided_by = value, criterion
                break
        else:
            ctx.drop(row, "tie")
            continue
        if winner is None:
            _drop_undecided(row, ctx)
            continue
        unit = row["unit"]
        chosen, rejected = (unit["a"], unit["b"]) if winner == "A" else (unit["b"], unit["a"])
        relative = {winner: "chosen", "tie": "tie", ("B" if winner == "A" else "A"): "rejected"}
        ratings = {name: relative.get(resolved[name]["value"]) for name in (*SPF_CRITERIA, "overall")}
        made.append({**_base(row), "chosen": chosen["text"], "rejected": rejected["text"],
                     "chosen_id": chosen["id"], "rejected_id": rejected["id"], "decided_by": decided_by,
                     "ratings": ratings,
                     "agreement": {name: resolved[name]["agreement"] for name in (*SPF_CRITERIA, "overall")},
                     "adjudicated": any(resolved[name]["status"] == "adjudicated" for name in SPF_CRITERIA)})
    return made


def _ranking_rows(rows: list[Row], ctx: StepContext) -> list[Row]:
    made = []
    for row in rows:
        unit = row["unit"]
        texts = {c["id"]: c["text"] for c in unit["candidates"]}
        keys = decision_keys("ranking", unit)
        if any(row["resolved"][key]["status"] in UNRESOLVED_STATUSES for key in keys):
            _drop_undecided(row, ctx)
            continue
        wins = Counter(row["resolved"][key]["value"] for key in keys)
        for key in keys:
            first, second = key.split(":", 1)[1].split("|")
            better = row["resolved"][key]["value"]
            worse = second if better == first else first
            made.append({**_base(row), "chosen": texts[better], "rejected": texts[worse],
                         "chosen_id": better, "rejected_id": worse,
                         "ratings": {"chosen_wins": wins[better], "rejected_wins": wins[worse]},
                         "agreement": {"order": row["resolved"][key]["agreement"]},
                         "adjudicated": row["resolved"][key]["status"] == "adjudicated"})
    return made


def _binary_rows(rows: list[Row], ctx: StepContext) -> list[Row]:
    made = []
    by_prompt: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if row["resolved"]["acceptability"]["status"] in UNRESOLVED_STATUSES:
            _drop_undecided(row, ctx)
        else:
            by_prompt[row["prompt_id"]].append(row)
    for group in by_prompt.values():
        good = [r for r in group if r["resolved"]["acceptability"]["value"] == "acceptable"]
        bad = [r for r in group if r["resolved"]["acceptability"]["value"] == "unacceptable"]
        if not good or not bad:
            for row in group:
                ctx.drop(row, "no_contrast")
            continue
        for accepted, refused in itertools.product(good, bad):
            base = _base(accepted)
            base["unit_id"] = f"{accepted['unit_id']}>{refused['unit_id']}"
            base["annotators"] = sorted(set(accepted["annotators"]) | set(refused["annotators"]))
            made.append({**base, "chosen": accepted["unit"]["candidate"]["text"],
                         "rejected": refused["unit"]["candidate"]["text"],
                         "chosen_id": accepted["unit"]["candidate"]["id"],
                         "rejected_id": refused["unit"]["candidate"]["id"],
                         "ratings": {"chosen": "acceptable", "rejected": "unacceptable"},
                         "agreement": {"chosen": accepted["resolved"]["acceptability"]["agreement"],
                                       "rejected": refused["resolved"]["acceptability"]["agreement"]},
                         "adjudicated": "adjudicated" in (accepted["resolved"]["acceptability"]["status"],
                                                          refused["resolved"]["acceptability"]["status"])})
    return made


def _rating_rows(rows: list[Row], ctx: StepContext, tie_margin: float) -> list[Row]:
    if tie_margin < 0:
        raise MedcurateError("tie_margin must be >= 0", field="steps.preference_pairs.tie_margin")
    made = []
    by_prompt: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if any(row["resolved"][name]["status"] in UNRESOLVED_STATUSES for name in RATING_DIMENSIONS):
            _drop_undecided(row, ctx)
        else:
            by_prompt[row["prompt_id"]].append(row)
    ties = 0
    for group in by_prompt.values():
        scores = {row["unit_id"]: {name: float(row["resolved"][name]["value"]) for name in RATING_DIMENSIONS}
                  for row in group}
        mean = {unit_id: sum(values.values()) / len(values) for unit_id, values in scores.items()}
        pairs = []
        for first, second in itertools.combinations(group, 2):
            difference = mean[first["unit_id"]] - mean[second["unit_id"]]
            if abs(difference) <= tie_margin:
                ties += 1
                continue
            pairs.append((first, second) if difference > 0 else (second, first))
        if not pairs:
            for row in group:
                ctx.drop(row, "no_contrast")
            continue
        for better, worse in pairs:
            base = _base(better)
            base["unit_id"] = f"{better['unit_id']}>{worse['unit_id']}"
            base["annotators"] = sorted(set(better["annotators"]) | set(worse["annotators"]))
            made.append({**base, "chosen": better["unit"]["candidate"]["text"],
                         "rejected": worse["unit"]["candidate"]["text"],
                         "chosen_id": better["unit"]["candidate"]["id"],
                         "rejected_id": worse["unit"]["candidate"]["id"],
                         "ratings": {"chosen": {**scores[better["unit_id"]], "mean": mean[better["unit_id"]]},
                                     "rejected": {**scores[worse["unit_id"]], "mean": mean[worse["unit_id"]]}},
                         "agreement": {name: min(better["resolved"][name]["agreement"] or 0.0,
                                                 worse["resolved"][name]["agreement"] or 0.0)
                                       for name in RATING_DIMENSIONS},
                         "adjudicated": any(r["resolved"][name]["status"] == "adjudicated"
                                            for r in (better, worse) for name in RATING_DIMENSIONS)})
    ctx.card.stats["rating_pairs"] = {"tie_margin": tie_margin, "pairs_within_margin": ties}
    return made


def _has_history(prompt: Any) -> bool:
    return isinstance(prompt, list) and (len(prompt) > 1 or any(m.get("role") == "system" for m in prompt))


def _as_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m["content"] for m in prompt if m.get("role") == "user")


