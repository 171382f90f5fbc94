"""Candidates -> units: what one Label Studio task shows, and who annotates it.

A *unit* is a pair of answers (pairwise), k answers (ranking) or one answer (binary);
every unit goes to several annotators (cross-annotation).
"""
from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError


def read_candidates(path: Path) -> list[dict[str, Any]]:
    """The JSONL written by ``medcurate annotate sample`` (one prompt with its candidates a line)."""
    if not path.exists():
        raise MedcurateError("candidates file not found", file=str(path))
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MedcurateError(f"invalid JSON: {exc.msg}", file=str(path), line=number) from None
        for key in ("item_id", "prompt", "candidates"):
            if key not in item:
                raise MedcurateError("missing field", file=str(path), line=number, field=key)
        if not isinstance(item["candidates"], list) or any(
                not isinstance(c, dict) or not isinstance(c.get("text"), str) or "id" not in c
                for c in item["candidates"]):
            raise MedcurateError("candidates must be a list of {id, text}", file=str(path), line=number,
                                 field="candidates")
        items.append(item)
    if not items:
        raise MedcurateError("candidates file holds no items", file=str(path))
    return items


@dataclass
class UnitPlan:
    units: list[dict[str, Any]]
    skipped_near_duplicates: int = 0
    skipped_single_candidate: int = 0


def plan_units(kind: str, items: list[dict[str, Any]], seed: int = 0, skip_near_duplicates: bool = True) -> UnitPlan:
    """The tasks to annotate. Pairwise: every candidate pair of a prompt (near-duplicates skipped,
    A/B sides shuffled by seed against position bias); ranking: all candidates of a prompt;
    binary, rating and review: each candidate alone."""
    rng = random.Random(seed)
    plan = UnitPlan(units=[])
    for item in items:
        base = {"item_id": str(item["item_id"]), "prompt": item["prompt"]}
        candidates = [{"id": str(c["id"]), "text": c["text"]} for c in item["candidates"]]
        if kind in ("binary", "rating", "review"):
            plan.units.extend({**base, "unit_id": f"{item['item_id']}:{c['id']}", "candidate": c} for c in candidates)
            continue
        if len(candidates) < 2:
            plan.skipped_single_candidate += 1
            continue
        if kind == "ranking":
            shown = candidates[:]
            rng.shuffle(shown)
            plan.units.append({**base, "unit_id": str(item["item_id"]), "candidates": shown})
            continue
        near = {frozenset(map(str, pair[:2])) for pair in item.get("near_duplicates") or []}
        for first, second in itertools.combinations(candidates, 2):
            if skip_near_duplicates and frozenset((first["id"], second["id"])) in near:
                plan.skipped_near_duplicates += 1
                continue
            a, b = (first, second) if rng.random() < 0.5 else (second, first)
            plan.units.append({**base, "unit_id": f"{item['item_id']}:{first['id']}-{second['id']}", "a": a, "b": b})
    return plan


def assign_annotators(unit_ids: list[str], annotators: list[str], overlap: int) -> dict[str, list[str]]:
    """Round-robin cross-annotation: unit i goes to annotators i, i+1, …, i+overlap-1 (mod n),
    so every unit gets ``overlap`` different people and the load differs by at most one."""
    if overlap < 2:
        raise MedcurateError("overlap must be at least 2 (every item is cross-annotated)", field="overlap")
    if len(annotators) < overlap:
        raise MedcurateError(f"overlap {overlap} needs at least {overlap} annotators, got {len(annotators)}",
                             field="annotators")
    count = len(annotators)
    return {unit_id: [annotators[(index + offset) % count] for offset in range(overlap)]
            for index, unit_id in enumerate(unit_ids)}


def render_prompt(prompt: str | list[dict[str, str]]) -> str:
    """The dialogue as the annotator reads it (multi-turn history with speaker labels)."""
    if isinstance(prompt, str):
        return prompt
    speaker = {"system": "系统 System", "user": "患者 User", "assistant": "医生 Assistant"}
    return "\n\n".join(f"{speaker.get(m['role'], m['role'])}: {m['content']}" for m in prompt)


def task_data(kind: str, unit: dict[str, Any], assigned: list[str], note: str = "") -> dict[str, Any]:
    data: dict[str, Any] = {"prompt": render_prompt(unit["prompt"]), "note": note,
                            "medcurate_unit": unit["unit_id"], "assigned_to": ", ".join(assigned)}
    if kind == "pairwise":
        data.update(answer_a=unit["a"]["text"], answer_b=unit["b"]["text"])
    elif kind == "ranking":
        data["answers"] = [{"id": c["id"], "title": f"回答 Answer {n}", "body": c["text"]}
                           for n, c in enumerate(unit["candidates"], start=1)]
    else:
        data["answer"] = unit["candidate"]["text"]
    return data
