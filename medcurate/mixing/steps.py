"""Dataset mixing (IIMedGPT: medical instructions + dialogue data at single:multi-turn 1:1 + a general slice).

Each recipe source is one *part* of the mixture: a published version read with the
``mix_part`` format (``path: NAME@VERSION``) or a raw dialogue file (``cmtmedqa``,
``toyhom``); the formats are in medcurate/mixing/sources.py. The ``mix`` step converts instruction rows to ``messages`` with the same
helper as ``to_messages``, balances single- and multi-turn dialogues, takes each part by
count or ratio (seeded) and records the mixture in ``manifest["stats"]["mixture"]``::

    steps:
      - mix:
          parts: {cmedins: {ratio: 2}, zhongjing: {ratio: 1}, toyhom: {ratio: 1}, general: {count: 50}}
          turns: {single: 1, multi: 1, parts: [zhongjing, toyhom]}   # or scope: mixture
          total: 400
          system: 你是一名专业的医生助手。   # every row gets it unless it has its own
"""
from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from medcurate.card import markdown_table
from medcurate.conversion import instruction_to_messages
from medcurate.engines.spill import BatchSpill
from medcurate.errors import MedcurateError
from medcurate.pipeline import (
    Row,
    StepContext,
    register_step,
)


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


def turn_scope(turns: dict[str, Any], names: Iterable[str]) -> set[str]:
    """The parts the single:multi ratio applies to: ``parts: [...]`` (e.g. the dialogue parts) or,
    with ``scope: mixture`` or no ``parts``, every part of the mixture (instruction rows are single-turn)."""
    names = set(names)
    scope, listed = turns.get("scope"), turns.get("parts")
    if scope not in (None, "mixture", "parts"):
        raise MedcurateError("turns.scope must be mixture or parts", field="steps.mix.turns.scope")
    if scope == "mixture" and listed:
        raise MedcurateError("turns: give scope: mixture or a list of parts, not both", field="steps.mix.turns")
    if scope == "parts" and not listed:
        raise MedcurateError("turns.scope parts needs turns.parts: [...]", field="steps.mix.turns.parts")
    if not listed:
        return names
    unknown = sorted(set(listed) - names)
    if unknown:
        raise MedcurateError(f"turns.parts names {unknown[0]!r}, not a part of the mix", field="steps.mix.turns.parts")
    return set(listed)


def _turn_weights(turns: dict[str, Any]) -> tuple[float, float]:
    return float(turns.get("single", 1)), float(turns.get("multi", 1))


def single_turn_quotas(available: dict[str, tuple[int, int]], sizes: dict[str, int],
                       weights: tuple[float, float]) -> dict[str, int]:
    """How many single-turn rows each part of the scope contributes so that the scope holds
    single:multi exactly while every part keeps its size: ``available[part] = (single, multi)``.
    Each part's quota lies in [size - multi, min(size, single)]; the rest is spread in part order."""
    total = sum(sizes[name] for name in available)
    target = round(total * weights[0] / (weights[0] + weights[1])) if sum(weights) else 0
    low = {name: max(0, sizes[name] - multi) for name, (_, multi) in available.items()}
    high = {name: min(sizes[name], single) for name, (single, _) in available.items()}
    quotas = dict(low)
    remaining = max(0, target - sum(low.values()))
    for name in sorted(available):
        extra = min(remaining, high[name] - quotas[name])
        quotas[name] += extra
        remaining -= extra
    return quotas


def _with_system(row: Row, system: str) -> None:
    messages = row["messages"]
    if not (messages and messages[0].get("role") == "system"):
        row["messages"] = [{"role": "system", "content": system}, *messages]


def _as_mixed(row: Row) -> Row:
    """The row as the mixture holds it: its part named, instruction rows as ``messages``."""
    row["mix_part"] = part_of(row)
    if not isinstance(row.get("messages"), list) and row.get("instruction") and row.get("answer"):
        row["messages"] = instruction_to_messages(row)
    return row


def _plan_mixture(part_of_row: list[str], turns: Callable[[int], int], parts: dict, total: int | None,
                  turn_ratio: dict | None, rng: random.Random, ctx: StepContext) -> list[int]:
    """The mixture as row positions, in its shuffled order; declares the drops and writes the card.
    Only each row's part and user-turn count are needed, so the whole-pass step and the streamed
    one (which keeps just those) draw the same samples."""
    available_all = Counter(part_of_row)
    spec = _check_parts(parts, set(available_all))
    kept = [position for position, part in enumerate(part_of_row) if part in spec]
    if len(kept) < len(part_of_row):
        ctx.drop(None, "not_in_mix", len(part_of_row) - len(kept))
    scope = turn_scope(turn_ratio, spec) if turn_ratio else set()
    if turn_ratio:   # the surplus of single- or multi-turn dialogues in scope, down to single:multi
        single_weight, multi_weight = _turn_weights(turn_ratio)
        single = [i for i, position in enumerate(kept) if part_of_row[position] in scope and turns(position) == 1]
        multi = [i for i, position in enumerate(kept) if part_of_row[position] in scope and turns(position) > 1]
        scale = min(len(single) / single_weight if single_weight else float("inf"),
                    len(multi) / multi_weight if multi_weight else float("inf"))
        keep_single, keep_multi = int(scale * single_weight), int(scale * multi_weight)
        removed = (set(rng.sample(single, len(single) - keep_single))
                   | set(rng.sample(multi, len(multi) - keep_multi)))
        if removed:
            ctx.drop(None, "turn_balance", len(removed))
        kept = [position for i, position in enumerate(kept) if i not in removed]
    by_part: dict[str, list[int]] = {name: [] for name in spec}
    for position in kept:
        by_part[part_of_row[position]].append(position)
    sizes = part_sizes({name: len(members) for name, members in by_part.items()}, spec, total)
    quotas: dict[str, int] = {}
    if turn_ratio:
        counts = {name: (sum(1 for p in by_part[name] if turns(p) == 1), sum(1 for p in by_part[name] if turns(p) > 1))
                  for name in scope}
        quotas = single_turn_quotas(counts, sizes, _turn_weights(turn_ratio))
    mixed: list[int] = []
    for name, members in by_part.items():   # each part to its size (order kept); with a quota, that many single-turn
        quota = quotas.get(name)
        if quota is None:
            taken = [members[i] for i in sorted(rng.sample(range(len(members)), sizes[name]))]
        else:
            single = [i for i, p in enumerate(members) if turns(p) == 1]
            multi = [i for i, p in enumerate(members) if turns(p) > 1]
            chosen = (rng.sample(single, min(quota, len(single)))
                      + rng.sample(multi, min(sizes[name] - quota, len(multi))))
            taken = [members[i] for i in sorted(chosen)]
        if len(members) > len(taken):
            ctx.drop(None, f"mixed_out:{name}", len(members) - len(taken))
        mixed.extend(taken)
    rng.shuffle(mixed)
    _record([(part_of_row[p], turns(p)) for p in mixed], spec, available_all,
            {name: len(members) for name, members in by_part.items()}, sizes, total, turn_ratio, scope, ctx)
    return mixed


class _BoundedMix:
    """``mix`` in two passes with the same rows, order, counts and card. The first pass keeps a
    part code and a user-turn count per row, all ``_plan_mixture`` needs; the second pass writes
    the taken rows to bucket files by their place in the shuffled mixture, and they come back
    bucket by bucket in that order."""

    BUCKET_ROWS = 1 << 16

    def __init__(self, ctx: StepContext, scratch: Path, parts: dict, total: int | None = None,
                 turns: dict | None = None, system: str | None = None, seed: int | None = None):
        self.ctx, self.scratch = ctx, scratch
        self.parts, self.total, self.turns, self.system = parts, total, turns, system
        self.rng = random.Random(ctx.seed if seed is None else seed)
        self.names: dict[str, int] = {}
        self.codes: list[np.ndarray] = []
        self.user_turns: list[np.ndarray] = []
        self.rank: np.ndarray | None = None
        self.buckets: list[Any] = []

    def observe(self, rows: list[Row], start: int) -> None:
        codes, counts = [], []
        for row in rows:
            mixed = _as_mixed(dict(row))
            codes.append(self.names.setdefault(mixed["mix_part"], len(self.names)))
            counts.append(user_turns(mixed) if isinstance(mixed.get("messages"), list) else -1)
        self.codes.append(np.asarray(codes, dtype=np.int64))
        self.user_turns.append(np.asarray(counts, dtype=np.int64))

    def finish(self) -> None:
        names = list(self.names)
        codes = np.concatenate(self.codes) if self.codes else np.zeros(0, dtype=np.int64)
        turns_of = np.concatenate(self.user_turns) if self.user_turns else np.zeros(0, dtype=np.int64)

        def turns(position: int) -> int:
            if turns_of[position] < 0:
                raise KeyError("messages")
            return int(turns_of[position])

        mixed = _plan_mixture([names[code] for code in codes.tolist()], turns, self.parts, self.total, self.turns,
                              self.rng, self.ctx)
        self.rank = np.full(len(codes), -1, dtype=np.int64)
        self.rank[np.asarray(mixed, dtype=np.int64)] = np.arange(len(mixed), dtype=np.int64)
        self.buckets = [BatchSpill(self.scratch / f"mixed-{index:05d}")
                        for index in range((len(mixed) + self.BUCKET_ROWS - 1) // self.BUCKET_ROWS)]

    def apply(self, rows: list[Row], start: int) -> list[Row]:
        assert self.rank is not None
        by_bucket: dict[int, list[tuple[int, Row]]] = {}
        for offset, row in enumerate(rows):
            rank = int(self.rank[start + offset])
            if rank >= 0:
                row = _as_mixed(row)
                if self.system:
                    _with_system(row, self.system)
                by_bucket.setdefault(rank // self.BUCKET_ROWS, []).append((rank, row))
        for index, pairs in by_bucket.items():
            self.buckets[index].write(pairs)
        return []

    def remaining(self) -> Iterator[list[Row]]:
        """The taken rows in the mixture's shuffled order, a bucket at a time."""
        for bucket in self.buckets:
            pairs = [pair for batch in bucket.read() for pair in batch]
            pairs.sort(key=lambda pair: pair[0])
            yield [row for _, row in pairs]


@register_step("mix", reads=("instruction", "query", "answer", "messages", "mix_part"), writes=("messages", "mix_part"),
               bounded=_BoundedMix)
def mix(rows: list[Row], ctx: StepContext, parts: dict, total: int | None = None, turns: dict | None = None,
        system: str | None = None, seed: int | None = None) -> list[Row]:
    """Combine parts (recipe sources) by ``count`` or ``ratio`` into one conversation dataset.

    Instruction rows become ``messages`` (``instruction_to_messages``). ``turns: {single: 1, multi: 1}``
    holds single- against multi-turn dialogues at that ratio within its scope: ``parts: [...]`` (e.g.
    the dialogue parts) or ``scope: mixture`` (every part; the default without ``parts``). The pool
    is balanced first (so part sizes are computed from what the ratio allows), then each part is
    sampled to its size with a single-turn quota that keeps the scope at the ratio: the requested
    part shares are hit after balancing, and the achieved ratio is in the card.

    System prompt rule: with ``system``, every row of the mixture starts with that system message,
    except rows that already carry their own system message (they keep it); without ``system`` no
    system message is added. Rows not taken are dropped as ``mixed_out:<part>``; rows of parts not
    named as ``not_in_mix``; the pool's surplus turns as ``turn_balance``.
    """
    for row in rows:
        _as_mixed(row)
    order = _plan_mixture([row["mix_part"] for row in rows], lambda position: user_turns(rows[position]), parts, total,
                          turns, random.Random(ctx.seed if seed is None else seed), ctx)
    mixed = [rows[position] for position in order]
    if system:
        for row in mixed:
            _with_system(row, system)
    return mixed


def _record(taken_turns: list[tuple[str, int]], spec, available_all, after_balance: dict[str, int], sizes, total,
            turns, scope, ctx: StepContext) -> None:
    """The mixture's stats and card section from each taken row's (part, user turns)."""
    per_part = {}
    for name in spec:
        taken = [count for part, count in taken_turns if part == name]
        per_part[name] = {"requested": spec[name], "available": available_all[name],
                          "after_turn_balance": after_balance[name], "sampled": sizes[name], "taken": len(taken),
                          "share": round(len(taken) / len(taken_turns), 4) if taken_turns else 0.0,
                          "single_turn": sum(1 for count in taken if count == 1),
                          "multi_turn": sum(1 for count in taken if count > 1)}
    achieved: dict[str, Any] | None = None
    if turns:
        in_scope = [count for part, count in taken_turns if part in scope]
        single = sum(1 for count in in_scope if count == 1)
        achieved = {"scope": sorted(scope), "requested": f"{turns.get('single', 1)}:{turns.get('multi', 1)}",
                    "single_turn": single, "multi_turn": len(in_scope) - single,
                    "single_share": round(single / len(in_scope), 4) if in_scope else 0.0}
    ctx.card.stats["mixture"] = {"rows": len(taken_turns), "total_requested": total, "turns": turns,
                                 "turns_achieved": achieved, "parts": per_part}
    table = markdown_table(["part", "requested", "available", "after turn balance", "sampled", "taken", "share",
                            "single-turn", "multi-turn"],
                           [[name, ", ".join(f"{k} {v}" for k, v in info["requested"].items()), info["available"],
                             info["after_turn_balance"], info["sampled"], info["taken"], f"{info['share']:.1%}", info["single_turn"],
                             info["multi_turn"]] for name, info in per_part.items()])
    if achieved:
        table += (f"\n\nSingle:multi-turn over {', '.join(achieved['scope'])}: requested {achieved['requested']}, "
                  f"achieved {achieved['single_turn']}:{achieved['multi_turn']} "
                  f"(single-turn share {achieved['single_share']:.1%}).")
    ctx.card.add_section("Mixture", table)
