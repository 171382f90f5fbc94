"""General-purpose steps: renaming, required fields, length filters, de-duplication,
sampling and the instruction -> messages conversion.

Each step documents the columns it reads and writes; drops are counted under the
step's filter name, rejects under their reason.
"""
from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from medcurate.conversion import instruction_to_messages
from medcurate.pipeline import ROW_LOCAL, Row, StepContext, register_step
from medcurate.schemas import canonical_json


@register_step("rename", kind=ROW_LOCAL, reads=("*",), writes=("*",))
def rename(rows: list[Row], ctx: StepContext, columns: dict[str, str]) -> list[Row]:
    """Rename columns: ``columns: {old_name: new_name}``."""
    for row in rows:
        for old, new in columns.items():
            if old in row:
                row[new] = row.pop(old)
    return rows


@register_step("set_fields", kind=ROW_LOCAL, writes=("*",))
def set_fields(rows: list[Row], ctx: StepContext, values: dict[str, Any], overwrite: bool = False) -> list[Row]:
    """Give every row constant values (``values: {task: kg_qa}``), keeping existing ones unless ``overwrite``."""
    for row in rows:
        for key, value in values.items():
            if overwrite or row.get(key) in (None, ""):
                row[key] = value
    return rows


@register_step("require", kind=ROW_LOCAL, reads=("*",))
def require(rows: list[Row], ctx: StepContext, fields: list[str]) -> list[Row]:
    """Reject rows whose listed fields are missing or blank (reason ``missing field``)."""
    kept = []
    for row in rows:
        missing = next((f for f in fields if row.get(f) is None or (isinstance(row.get(f), str) and not row[f].strip())), None)
        if missing:
            ctx.reject(row, f"missing field: {missing}", missing)
        else:
            kept.append(row)
    return kept


@register_step("strip_text", kind=ROW_LOCAL, reads=("*",), writes=("*",))
def strip_text(rows: list[Row], ctx: StepContext, fields: list[str]) -> list[Row]:
    """Trim whitespace (and stray BOM characters) around the listed text fields."""
    for row in rows:
        for name in fields:
            if isinstance(row.get(name), str):
                row[name] = row[name].replace("\ufeff", "").strip()
    return rows


@register_step("filter_length", kind=ROW_LOCAL, reads=("*",))
def filter_length(rows: list[Row], ctx: StepContext, field: str, min: Annotated[int, Field(ge=0)] = 0,
                  max: Annotated[int, Field(ge=0)] | None = None) -> list[Row]:
    """Drop rows whose ``field`` is shorter than ``min`` or longer than ``max`` characters
    (filter name ``too_short:<field>`` / ``too_long:<field>``)."""
    kept = []
    for row in rows:
        length = len(str(row.get(field) or ""))
        if length < min:
            ctx.drop(row, f"too_short:{field}")
        elif max is not None and length > max:
            ctx.drop(row, f"too_long:{field}")
        else:
            kept.append(row)
    return kept


def _dedupe_key(row: Row, fields: list[str]) -> str:
    return canonical_json([row.get(f) for f in fields])


class _BoundedDedupe:
    """Exact de-duplication in bounded memory. 128-bit digests of the keys are kept in an
    in-memory table while they fit (``ONLINE_DIGESTS``), so each batch is decided as it comes
    and no row waits; past that, the rest of the rows wait on disk and their digests go to
    hash-bucketed files, each bucket sorted on its own to find every digest's first row (on the
    Ray engine, past the table, to Ray's object store, where a groupby finds them)."""

    BUCKETS = 64
    ONLINE_DIGESTS = 1 << 21

    def __init__(self, ctx: StepContext, scratch: Path, fields: list[str]):
        from medcurate.engines.spill import DigestBuckets, DigestTable

        self.ctx = ctx
        self.fields = fields
        self.table = DigestTable(self.ONLINE_DIGESTS)
        self.buckets = DigestBuckets(scratch / "dedupe", self.BUCKETS) if ctx.grouping is None else ctx.grouping.digests()
        self.seen_online: list[np.ndarray] = []
        self.spilled_from: int | None = None
        self.duplicate: Any = None

    def _digests(self, rows: list[Row]) -> tuple[np.ndarray, np.ndarray]:
        from medcurate.engines.spill import parse_digests

        return parse_digests([hashlib.blake2b(_dedupe_key(row, self.fields).encode("utf-8"), digest_size=16).digest()
                              for row in rows])

    def decide(self, rows: list[Row], start: int) -> list[Row] | None:
        """The rows kept, while the digests seen so far fit in memory; None from the first batch
        that would not fit (that batch and the rest go through observe / finish / apply)."""
        new = self.table.add_new(*self._digests(rows))
        if new is None:
            return None
        kept = [row for row, is_new in zip(rows, new.tolist(), strict=True) if is_new]
        if len(kept) != len(rows):
            self.ctx.drop(None, "duplicate", len(rows) - len(kept))
        return kept

    def observe(self, rows: list[Row], start: int) -> None:
        high, low = self._digests(rows)
        if self.spilled_from is None:
            self.spilled_from = start
        self.seen_online.append(self.table.contains(high, low))
        self.buckets.add(start - self.spilled_from, high, low)

    def finish(self) -> None:
        later = self.buckets.later_occurrences()
        self.duplicate = later | np.concatenate(self.seen_online) if self.seen_online else later

    def apply(self, rows: list[Row], start: int) -> list[Row]:
        offset = start - (self.spilled_from or 0)
        flags = self.duplicate[offset:offset + len(rows)]
        kept = [row for row, is_duplicate in zip(rows, flags, strict=True) if not is_duplicate]
        if len(kept) != len(rows):
            self.ctx.drop(None, "duplicate", len(rows) - len(kept))
        return kept


class _BoundedSample:
    """``sample`` in two passes: count the rows, then keep the same seeded choice of positions."""

    def __init__(self, ctx: StepContext, scratch: Path, n: int, seed: int | None = None):
        self.ctx = ctx
        self.n = n
        self.seed = ctx.seed if seed is None else seed
        self.total = 0
        self.chosen: set[int] | None = None

    def observe(self, rows: list[Row], start: int) -> None:
        self.total += len(rows)

    def finish(self) -> None:
        if self.total > self.n:
            self.chosen = set(random.Random(self.seed).sample(range(self.total), self.n))
            self.ctx.drop(None, "sampled_out", self.total - self.n)

    def apply(self, rows: list[Row], start: int) -> list[Row]:
        if self.chosen is None:
            return rows
        return [row for offset, row in enumerate(rows) if start + offset in self.chosen]


@register_step("dedupe", reads=("*",), bounded=_BoundedDedupe)
def dedupe(rows: list[Row], ctx: StepContext, fields: list[str]) -> list[Row]:
    """Drop exact duplicates on the listed fields, keeping the first (filter name ``duplicate``)."""
    seen: set[str] = set()
    kept = []
    for row in rows:
        key = hashlib.blake2b(_dedupe_key(row, fields).encode("utf-8"), digest_size=16).hexdigest()
        if key in seen:
            ctx.drop(row, "duplicate")
        else:
            seen.add(key)
            kept.append(row)
    return kept


@register_step("sample", reads=("*",), bounded=_BoundedSample)
def sample(rows: list[Row], ctx: StepContext, n: Annotated[int, Field(ge=0)], seed: int | None = None) -> list[Row]:
    """Keep a seeded random sample of ``n`` rows in their original order (filter name ``sampled_out``)."""
    if len(rows) <= n:
        return rows
    chosen = set(random.Random(ctx.seed if seed is None else seed).sample(range(len(rows)), n))
    ctx.drop(None, "sampled_out", len(rows) - n)
    return [row for index, row in enumerate(rows) if index in chosen]


@register_step("to_messages", kind=ROW_LOCAL, reads=("instruction", "query", "answer"), writes=("messages",))
def to_messages(rows: list[Row], ctx: StepContext, system: str | None = None) -> list[Row]:
    """Turn instruction rows into conversation rows (``messages``); other columns stay."""
    for row in rows:
        if "messages" not in row:
            row["messages"] = instruction_to_messages(row, system)
    return rows
