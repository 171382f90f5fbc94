"""Seeded, deterministic train / validation / test splits.

Held-out sizes are fractions or fixed row counts (ClinicalGPT held out 2,000 + 2,000
records); a fixed count larger than ``max_fraction`` of the data is scaled down and the
manifest says so. With ``stratify`` every stratum (department) contributes to the
held-out splits in proportion to its size; with ``group`` all rows of one group
(patient) land in the same split. Which rows are held out follows from a seeded hash of
each row's id (or group), so a streaming build assigns splits without a global shuffle.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from medcurate.engines.spill import KEY_RECORD, KeyRecords, at_most
from medcurate.errors import MedcurateError
from medcurate.recipe import SplitConfig
from medcurate.schemas import canonical_json


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


def _key_hash(seed: int, kind: str, value: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{kind}:{value}".encode(), digest_size=8).digest(), "big")


_EVERY = (1 << 64) - 1
SPLIT_NAMES = ("train", "validation", "test")


class SplitPlanner:
    """Split assignment in two passes with memory bounded by the held-out sizes.

    Each row gets a key: a seeded hash of its group (all rows of a patient share it) or of
    its id, ties broken by position. Within a stratum, the rows with the smallest keys fill
    the test split, the next ones validation (a group that crosses the line goes whole),
    the rest train. The first pass records (stratum, key) as fixed-width records (on disk
    past a chunk); the thresholds come from a chunked scan that keeps only the smallest keys
    per stratum, so no global shuffle and no row is held."""

    def __init__(self, config: SplitConfig, spill_path: Path | None = None, records: Any = None):
        self.config = config
        self.records = records if records is not None else KeyRecords(spill_path)
        self.codes: dict[str, int] = {}
        self.group_stratum: dict[str, str] = {}
        self.sizes: Counter = Counter()
        self.total = 0
        self.valued: set[str] = set()
        self.names: list[str] = ["train"]
        self.test_key: dict[int, tuple[int, int]] = {}
        self.validation_key: dict[int, tuple[int, int]] = {}

    def _key(self, row: dict[str, Any], position: int) -> tuple[int, int, int]:
        config = self.config
        group = row.get(config.group) if config.group else None
        if group not in (None, ""):
            name = str(group)
            stratum = self.group_stratum.setdefault(name, str(row.get(config.stratify) or "")) if config.stratify else ""
            key_hash, tie = _key_hash(config.seed, "group", name), 0
        else:
            stratum = str(row.get(config.stratify) or "") if config.stratify else ""
            identity = str(row["id"]) if row.get("id") else canonical_json(row)
            key_hash, tie = _key_hash(config.seed, "row", identity), position + 1
        code = self.codes.setdefault(stratum, len(self.codes))
        return code, key_hash, tie

    def observe(self, rows: list[dict[str, Any]], start: int) -> None:
        keys = [self._key(row, start + offset) for offset, row in enumerate(rows)]
        for setting, column in (("stratify", self.config.stratify), ("group", self.config.group)):
            if column and setting not in self.valued and any(row.get(column) not in (None, "") for row in rows):
                self.valued.add(setting)
        self.records.add(np.array(keys, dtype=KEY_RECORD))
        self.sizes.update(code for code, _, _ in keys)
        self.total += len(rows)

    def finish(self) -> list[str]:
        """Fix the thresholds; returns the notes for the manifest."""
        config, notes = self.config, []
        for setting, column in (("stratify", config.stratify), ("group", config.group)):
            if column and self.total and setting not in self.valued:
                raise MedcurateError(f"no row has a value in column {column!r}", field=f"splits.{setting}")
        test_rows, note = held_out_size(config.test, self.total, config.max_fraction)
        if note:
            notes.append(f"test: {note}")
        validation_rows, note = held_out_size(config.validation, self.total, config.max_fraction)
        if note:
            notes.append(f"validation: {note}")
        self.names = ["train"] + (["validation"] if validation_rows else []) + (["test"] if test_rows else [])
        if test_rows or validation_rows:
            by_name = {name: self.sizes[code] for name, code in self.codes.items()}
            test_share = _apportion(test_rows, by_name)
            validation_share = _apportion(validation_rows, by_name)
            self.test_key = self._kth_keys({self.codes[name]: share for name, share in test_share.items()})
            filled = (self._count_at_most(self.test_key) if config.group
                      else {self.codes[name]: share for name, share in test_share.items()})
            self.validation_key = self._kth_keys({code: filled.get(code, 0) + validation_share[name]
                                                  for name, code in self.codes.items() if validation_share[name]})
        return notes

    def _kth_keys(self, wanted: dict[int, int]) -> dict[int, tuple[int, int]]:
        """Per stratum, the key of its k-th smallest row (every row when k reaches its size)."""
        best = self.records.smallest({code: k for code, k in wanted.items() if k})
        return {code: ((int(best[code]["hash"][-1]), int(best[code]["tie"][-1])) if k < self.sizes[code]
                       else (_EVERY, _EVERY))
                for code, k in wanted.items() if k and code in best}

    def _count_at_most(self, thresholds: dict[int, tuple[int, int]]) -> dict[int, int]:
        return self.records.count_at_most(len(self.codes), thresholds)

    def _at_most(self, chunk: np.ndarray, thresholds: dict[int, tuple[int, int]]) -> np.ndarray:
        return at_most(chunk, len(self.codes), thresholds)

    def assignments(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """In row order, chunk by chunk: each row's split as an index into ``SPLIT_NAMES``, and
        its stratum code."""
        for chunk in self.records.chunks():
            split = np.where(self._at_most(chunk, self.test_key), 2,
                             np.where(self._at_most(chunk, self.validation_key), 1, 0)).astype(np.int8)
            yield split, chunk["stratum"]

    def close(self) -> None:
        self.records.close()

    def stratum_names(self) -> list[str]:
        """Stratum names by code (the code is their order of first appearance)."""
        return list(self.codes)


def assign_splits(rows: list[dict[str, Any]], config: SplitConfig) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Assign every row to exactly one split; returns the splits and notes for the manifest."""
    planner = SplitPlanner(config)
    planner.observe(rows, 0)
    notes = planner.finish()
    result: dict[str, list[dict[str, Any]]] = {name: [] for name in planner.names}
    position = 0
    for split, _ in planner.assignments():
        for index in split.tolist():
            result[SPLIT_NAMES[index]].append(rows[position])
            position += 1
    planner.close()
    return result, notes
