"""Seeded, deterministic train / validation / test splits.

Held-out sizes are fractions or fixed row counts (ClinicalGPT held out 2,000 + 2,000
records); a fixed count larger than ``max_fraction`` of the data is scaled down and the
manifest says so. With ``stratify`` every stratum (department) contributes to the
held-out splits in proportion to its size; with ``group`` all rows of one group
(patient) land in the same split.
"""
from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from typing import Any

from medcurate.recipe import SplitConfig


def held_out_size(requested: float, total: int, max_fraction: float) -> tuple[int, str | None]:
    """Rows to hold out for one split, and a note when a fixed count had to be scaled down."""
    if requested <= 0 or total == 0:
        return 0, None
    if requested < 1:
        return int(round(requested * total)), None
    wanted = int(requested)
    cap = int(max_fraction * total)
    if wanted > cap:
        return cap, f"asked for {wanted} rows, scaled down to {cap} ({max_fraction:.0%} of {total})"
    return wanted, None


def _apportion(target: int, sizes: dict[str, int]) -> dict[str, int]:
    """Split ``target`` over strata in proportion to their sizes (largest remainder, stable ties)."""
    total = sum(sizes.values())
    if total == 0 or target == 0:
        return {key: 0 for key in sizes}
    exact = {key: target * size / total for key, size in sizes.items()}
    shares = {key: int(value) for key, value in exact.items()}
    leftover = target - sum(shares.values())
    for key in sorted(sizes, key=lambda k: (-(exact[k] - shares[k]), k))[:leftover]:
        shares[key] += 1
    return shares


def _stable_seed(seed: int, label: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{label}".encode()).digest()[:8], "big")


def assign_splits(rows: list[dict[str, Any]], config: SplitConfig) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Assign every row to exactly one split; returns the splits and notes for the manifest."""
    notes: list[str] = []
    total = len(rows)
    test_rows, note = held_out_size(config.test, total, config.max_fraction)
    if note:
        notes.append(f"test: {note}")
    validation_rows, note = held_out_size(config.validation, total, config.max_fraction)
    if note:
        notes.append(f"validation: {note}")
    if not test_rows and not validation_rows:
        return {"train": list(rows)}, notes

    groups: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        key = row.get(config.group) if config.group else None
        groups[str(key) if key not in (None, "") else f"\0row{index}"].append(index)
    strata: dict[str, list[str]] = defaultdict(list)
    for key, members in groups.items():
        stratum = rows[members[0]].get(config.stratify) if config.stratify else None
        strata[str(stratum or "")].append(key)

    sizes = {stratum: sum(len(groups[g]) for g in keys) for stratum, keys in strata.items()}
    test_share = _apportion(test_rows, sizes)
    validation_share = _apportion(validation_rows, sizes)
    assignment: dict[int, str] = {}
    for stratum in sorted(strata):
        keys = sorted(strata[stratum])
        random.Random(_stable_seed(config.seed, stratum)).shuffle(keys)
        filled = {"test": 0, "validation": 0}
        targets = {"test": test_share[stratum], "validation": validation_share[stratum]}
        for key in keys:
            members = groups[key]
            split = "train"
            for candidate in ("test", "validation"):
                if filled[candidate] < targets[candidate]:
                    split = candidate
                    filled[candidate] += len(members)
                    break
            for index in members:
                assignment[index] = split
    result: dict[str, list[dict[str, Any]]] = {"train": []}
    if validation_rows:
        result["validation"] = []
    if test_rows:
        result["test"] = []
    for index, row in enumerate(rows):
        result[assignment[index]].append(row)
    return result, notes
