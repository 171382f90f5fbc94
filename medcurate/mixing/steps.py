"""Dataset mixing (IIMedGPT: medical instructions + dialogue data at single:multi-turn 1:1 + a general slice).

Each recipe source is one *part* of the mixture: a published version read with the
``mix_part`` format (``path: NAME@VERSION``) or a raw dialogue file (``cmtmedqa``,
``toyhom``); the formats are in medcurate/mixing/sources.py. The ``mix`` step converts instruction rows to ``messages`` with the same
helper as ``to_messages``, balances single- and multi-turn dialogues, takes each part by
count or ratio (seeded) and records the mixture in ``manifest["stats"]["mixture"]``::

    steps:
      - mix:
          parts: {cmedins: {ratio: 2}, zhongjing: {ratio: 1}, toyhom: {ratio: 1}, general: {count: 50}}
          turns: {single: 1, multi: 1, parts: [zhongjing, toyhom]}
          total: 400
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Any

from medcurate.card import markdown_table
from medcurate.errors import MedcurateError
from medcurate.pipeline import (
    Row,
    StepContext,
    register_step,
)
from medcurate.steps.core import instruction_to_messages


def user_turns(row: Row) -> int:
    return sum(1 for message in row["messages"] if message.get("role") == "user")


def part_of(row: Row) -> str:
    return str(row.get("mix_part") or (row.get("source") or {}).get("name") or "")


def part_sizes(available: dict[str, int], parts: dict[str, dict[str, Any]], total: int | None) -> dict[str, int]:
    """Rows to take per part: counts are fixed, ratios share the rest by weight.

    Without ``total`` the mixture is the largest one in which every ratio part keeps its weight.
    """
    counts = {name: min(int(spec["count"]), available[name]) for name, spec in parts.items() if "count" in spec}
    weights = {name: float(spec["ratio"]) for name, spec in parts.items() if "ratio" in spec}
    if not weights:
        return counts
    if total is None:
        scale = min(available[name] / weight for name, weight in weights.items())
    else:
        scale = max(0, int(total) - sum(counts.values())) / sum(weights.values())
    for name, weight in weights.items():
        counts[name] = min(int(scale * weight), available[name])
    return counts


def _check_parts(parts: Any, present: set[str]) -> dict[str, dict[str, Any]]:
    if not isinstance(parts, dict) or not parts:
        raise MedcurateError("mix needs parts: {source_name: {count: N} or {ratio: W}}", field="steps.mix.parts")
    checked = {}
    for name, spec in parts.items():
        spec = spec if isinstance(spec, dict) else {"ratio": spec}
        if len(set(spec) & {"count", "ratio"}) != 1 or any(float(v) < 0 for k, v in spec.items() if k in ("count", "ratio")):
            raise MedcurateError(f"part {name!r} needs exactly one of count or ratio (>= 0)", field=f"steps.mix.parts.{name}")
        if name not in present:
            raise MedcurateError(f"part {name!r} has no rows; sources give: {', '.join(sorted(present)) or 'none'}",
                                 field=f"steps.mix.parts.{name}")
        checked[str(name)] = spec
    return checked


def _balance_turns(rows: list[Row], turns: dict[str, Any], rng: random.Random, ctx: StepContext) -> list[Row]:
    """Downsample the surplus of single- or multi-turn dialogues among ``turns.parts`` to single:multi."""
    scope = set(turns.get("parts") or {part_of(row) for row in rows})
    single_weight, multi_weight = float(turns.get("single", 1)), float(turns.get("multi", 1))
    single = [i for i, row in enumerate(rows) if part_of(row) in scope and user_turns(row) == 1]
    multi = [i for i, row in enumerate(rows) if part_of(row) in scope and user_turns(row) > 1]
    scale = min(len(single) / single_weight if single_weight else float("inf"),
                len(multi) / multi_weight if multi_weight else float("inf"))
    keep_single, keep_multi = int(scale * single_weight), int(scale * multi_weight)
    removed = set(rng.sample(single, len(single) - keep_single)) | set(rng.sample(multi, len(multi) - keep_multi))
    if removed:
        ctx.drop(None, "turn_balance", len(removed))
    return [row for i, row in enumerate(rows) if i not in removed]


@register_step("mix", reads=("instruction", "query", "answer", "messages", "mix_part"), writes=("messages", "mix_part"))
def mix(rows: list[Row], ctx: StepContext, parts: dict, total: int | None = None, turns: dict | None = None,
        system: str | None = None, seed: int | None = None) -> list[Row]:
    """Combine parts (recipe sources) by ``count`` or ``ratio`` into one conversation dataset.

    Instruction rows become ``messages`` (``instruction_to_messages``, optional ``system``);
    ``turns: {single: 1, multi: 1, parts: [...]}`` balances single- against multi-turn dialogues
    of those parts before each part is sampled (seeded) to its size, and trims the surplus again
    afterwards so the mixture holds the ratio exactly (part shares are recorded as taken). Rows not taken are dropped as
    ``mixed_out:<part>``; rows of parts not named are dropped as ``not_in_mix``.
    """
    rng = random.Random(ctx.seed if seed is None else seed)
    for row in rows:
        row["mix_part"] = part_of(row)
        if not isinstance(row.get("messages"), list) and row.get("instruction") and row.get("answer"):
            row["messages"] = instruction_to_messages(row, system)
    available_all = Counter(row["mix_part"] for row in rows)
    spec = _check_parts(parts, set(available_all))
    outside = [row for row in rows if row["mix_part"] not in spec]
    if outside:
        ctx.drop(None, "not_in_mix", len(outside))
    rows = [row for row in rows if row["mix_part"] in spec]
    before_balance = Counter(row["mix_part"] for row in rows)
    if turns:
        rows = _balance_turns(rows, turns, rng, ctx)
    by_part: dict[str, list[Row]] = {name: [] for name in spec}
    for row in rows:
        by_part[row["mix_part"]].append(row)
    sizes = part_sizes({name: len(members) for name, members in by_part.items()}, spec, total)
    mixed: list[Row] = []
    for name, members in by_part.items():
        chosen = sorted(rng.sample(range(len(members)), sizes[name]))
        if len(members) > sizes[name]:
            ctx.drop(None, f"mixed_out:{name}", len(members) - sizes[name])
        mixed.extend(members[i] for i in chosen)
    if turns:
        mixed = _balance_turns(mixed, turns, rng, ctx)
    rng.shuffle(mixed)
    _record(mixed, spec, available_all, before_balance, by_part, sizes, total, turns, ctx)
    return mixed


def _record(mixed, spec, available_all, before_balance, by_part, sizes, total, turns, ctx: StepContext) -> None:
    per_part = {}
    for name in spec:
        taken = [row for row in mixed if row["mix_part"] == name]
        per_part[name] = {"requested": spec[name], "available": available_all[name],
                          "after_turn_balance": len(by_part[name]), "sampled": sizes[name], "taken": len(taken),
                          "share": round(len(taken) / len(mixed), 4) if mixed else 0.0,
                          "single_turn": sum(1 for row in taken if user_turns(row) == 1),
                          "multi_turn": sum(1 for row in taken if user_turns(row) > 1)}
    ctx.card.stats["mixture"] = {"rows": len(mixed), "total_requested": total, "turns": turns, "parts": per_part}
    table = markdown_table(["part", "requested", "available", "after turn balance", "sampled", "taken", "share",
                            "single-turn", "multi-turn"],
                           [[name, ", ".join(f"{k} {v}" for k, v in info["requested"].items()), info["available"],
                             info["after_turn_balance"], info["sampled"], info["taken"], f"{info['share']:.1%}", info["single_turn"],
                             info["multi_turn"]] for name, info in per_part.items()])
    ctx.card.add_section("Mixture", table)
