"""Disk spills that keep a streaming build's memory bounded.

A whole-pass step sees every row twice: once to learn what it needs (digests, counts,
split keys) and once to apply its decision. Between the passes the rows wait on disk
(``BatchSpill``; before the split files they wait as Arrow columns, ``ChunkSpill``), and
what the step learned is kept as fixed-width numpy records on disk (``DigestBuckets``,
``KeyRecords``), read back a bounded chunk at a time.
"""
from __future__ import annotations

import marshal
import pickle
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from medcurate.store import RowChunk

CHUNK_RECORDS = 1 << 20
_MARSHAL, _PICKLE = b"M", b"P"


class BatchSpill:
    """Batches of rows pickled one after another into a file, read back in the same order."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._handle: Any = open(path, "wb")
        self.batches = 0

    def write(self, rows: list[Any]) -> None:
        payload = dump(rows)
        self._handle.write(len(payload).to_bytes(8, "little"))
        self._handle.write(payload)
        self.batches += 1

    def read(self) -> Iterator[list[Any]]:
        """Every batch in order; the file is removed once read."""
        self._handle.close()
        try:
            with open(self.path, "rb") as handle:
                for _ in range(self.batches):
                    yield load(handle.read(int.from_bytes(handle.read(8), "little")))
        finally:
            self.path.unlink(missing_ok=True)


def dump(value: Any) -> bytes:
    """marshal (twice as fast as pickle) unless a value is of a type only pickle keeps."""
    try:
        return _MARSHAL + marshal.dumps(value, 4)
    except ValueError:
        return _PICKLE + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def load(payload: bytes) -> Any:
    return marshal.loads(payload[1:]) if payload[:1] == _MARSHAL else pickle.loads(payload[1:])


class ChunkSpill:
    """``RowChunk``s one after another: their Arrow columns as IPC streams (written and read
    back without touching a Python object) with the JSON columns' values marshalled beside
    them; the values kept aside for inexact columns go to a second file, read only for a chunk
    whose column changed type later."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.aside_path = path.with_suffix(path.suffix + ".aside")
        self._handle: Any = open(path, "wb")
        self._aside: Any = open(self.aside_path, "wb")
        self.chunks = 0

    def write(self, chunk: RowChunk) -> None:
        import pyarrow as pa

        columns = pa.RecordBatch.from_arrays(list(chunk.arrays.values()), names=list(chunk.arrays))
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, columns.schema) as stream:
            stream.write_batch(columns)
        arrow = sink.getvalue()
        aside = dump(chunk.kept_aside) if chunk.inexact else b""
        offset = self._aside.tell()
        self._aside.write(aside)
        rest = dump((chunk.rows, chunk.values, chunk.inexact, offset, len(aside)))
        self._handle.write(len(arrow).to_bytes(8, "little"))
        self._handle.write(arrow)
        self._handle.write(len(rest).to_bytes(8, "little"))
        self._handle.write(rest)
        self.chunks += 1

    def read(self) -> Iterator[RowChunk]:
        """Every chunk in order; the files are removed once read."""
        import pyarrow as pa

        self._handle.close()
        self._aside.close()
        try:
            with open(self.path, "rb") as handle, open(self.aside_path, "rb") as aside:
                for _ in range(self.chunks):
                    arrow = handle.read(int.from_bytes(handle.read(8), "little"))
                    rows, values, inexact, offset, length = load(handle.read(int.from_bytes(handle.read(8), "little")))
                    columns = pa.ipc.open_stream(arrow).read_next_batch()
                    yield RowChunk(rows, dict(zip(columns.schema.names, columns.columns, strict=True)), values,
                                   tuple(inexact), load_aside=partial(_read_at, aside, offset, length))
        finally:
            self.path.unlink(missing_ok=True)
            self.aside_path.unlink(missing_ok=True)


def _read_at(handle: Any, offset: int, length: int) -> Any:
    handle.seek(offset)
    return load(handle.read(length))


_DIGEST = np.dtype([("high", ">u8"), ("low", ">u8")])
_BUCKETED = np.dtype([("high", "<u8"), ("low", "<u8"), ("position", "<u8")])


class DigestBuckets:
    """128-bit digests with their stream positions, spread over files by their top bits."""

    def __init__(self, folder: Path, buckets: int):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.buckets = buckets
        self.shift = np.uint64(64 - (buckets.bit_length() - 1))
        self.count = 0
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0

    def add(self, start: int, high: np.ndarray, low: np.ndarray) -> None:
        self.add_at(np.arange(start, start + len(high), dtype=np.uint64), high, low)

    def add_at(self, positions: np.ndarray, high: np.ndarray, low: np.ndarray) -> None:
        """Digests with their positions (several digests may share one)."""
        records = np.empty(len(high), dtype=_BUCKETED)
        records["high"] = high
        records["low"] = low
        records["position"] = positions
        self._pending.append(records)
        self._pending_rows += len(records)
        if len(positions):
            self.count = max(self.count, int(positions.max()) + 1)
        if self._pending_rows >= CHUNK_RECORDS:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        records = np.concatenate(self._pending)
        self._pending, self._pending_rows = [], 0
        bucket = records["high"] >> self.shift
        order = np.argsort(bucket, kind="stable")
        records, bucket = records[order], bucket[order]
        bounds = np.searchsorted(bucket, np.arange(self.buckets + 1, dtype=np.uint64))
        for index in range(self.buckets):
            if bounds[index] < bounds[index + 1]:
                with open(self.folder / f"{index:04d}", "ab") as handle:
                    records[bounds[index]:bounds[index + 1]].tofile(handle)

    def _sorted_buckets(self) -> Iterator[np.ndarray]:
        """Each bucket's records ordered by digest, then position; the files are removed as read."""
        self._flush()
        for index in range(self.buckets):
            path = self.folder / f"{index:04d}"
            if path.exists():
                records = np.fromfile(path, dtype=_BUCKETED)
                path.unlink()
                yield records[np.lexsort((records["position"], records["low"], records["high"]))]

    def runs(self) -> Iterator[np.ndarray]:
        """The positions of every digest added more than once, in position order, a run at a time."""
        for ordered in self._sorted_buckets():
            starts = _run_starts(ordered["high"], ordered["low"])
            for run in np.split(ordered["position"], np.flatnonzero(starts)[1:]):
                if len(run) > 1:
                    yield run

    def later_occurrences(self) -> np.ndarray:
        """A flag per stream position: True where an earlier position had the same digest."""
        flags = np.zeros(self.count, dtype=bool)
        for ordered in self._sorted_buckets():
            flags[ordered["position"][~_run_starts(ordered["high"], ordered["low"])]] = True
        return flags


def _run_starts(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """For digests in sorted order: True where a digest differs from the one before it."""
    starts = np.ones(len(high), dtype=bool)
    starts[1:] = (high[1:] != high[:-1]) | (low[1:] != low[:-1])
    return starts


def parse_digests(digests: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """128-bit digests as their (high, low) 64-bit halves."""
    parsed = np.frombuffer(b"".join(digests), dtype=_DIGEST)
    return parsed["high"].astype(np.uint64), parsed["low"].astype(np.uint64)


class DigestTable:
    """A set of 128-bit digests in memory: an open-addressing table of numpy arrays (17 bytes a
    slot, at most half full), probed a whole batch at a time. Holds at most ``limit`` digests;
    ``add_new`` says when a batch would pass it, and the caller goes to disk from there on."""

    def __init__(self, limit: int, capacity: int = 1 << 16):
        self.limit = limit
        self.count = 0
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        self.mask = np.uint64(capacity - 1)
        self.high = np.zeros(capacity, dtype=np.uint64)
        self.low = np.zeros(capacity, dtype=np.uint64)
        self.used = np.zeros(capacity, dtype=bool)

    def add_new(self, high: np.ndarray, low: np.ndarray) -> np.ndarray | None:
        """Per digest, whether it is new (in neither the table nor earlier in this batch); the
        new ones are added. None, and nothing added, when they would pass the limit."""
        first = _first_in_batch(high, low)
        candidates = np.flatnonzero(first)
        if self.count + len(candidates) > self.limit:
            return None
        while 2 * (self.count + len(candidates)) > len(self.used):
            self._grow()
        present = self._probe(high[candidates], low[candidates], insert=True)
        new = np.zeros(len(high), dtype=bool)
        new[candidates[~present]] = True
        return new

    def contains(self, high: np.ndarray, low: np.ndarray) -> np.ndarray:
        return self._probe(high, low, insert=False)

    def _grow(self) -> None:
        used = self.used
        high, low = self.high[used], self.low[used]
        self._allocate(2 * len(used))
        self.count = 0
        self._probe(high, low, insert=True)

    def _probe(self, high: np.ndarray, low: np.ndarray, insert: bool) -> np.ndarray:
        """Linear probing for every digest at once (distinct digests when inserting): a digest
        stops at its match or at an empty slot, which it claims when inserting; of several that
        claim one slot in a round the first wins and the others probe on."""
        present = np.zeros(len(high), dtype=bool)
        slots = high & self.mask
        pending = np.arange(len(high))
        while len(pending):
            at = slots[pending]
            used = self.used[at]
            match = used & (self.high[at] == high[pending]) & (self.low[at] == low[pending])
            present[pending[match]] = True
            settled = match | ~used
            if insert and (~used).any():
                claimers, claimed = pending[~used], at[~used]
                won, first = np.unique(claimed, return_index=True)
                winners = claimers[first]
                self.used[won], self.high[won], self.low[won] = True, high[winners], low[winners]
                self.count += len(winners)
                lost = np.ones(len(claimers), dtype=bool)
                lost[first] = False
                settled[np.flatnonzero(~used)[lost]] = False
            moving = used & ~match
            slots[pending[moving]] = (at[moving] + np.uint64(1)) & self.mask
            pending = pending[~settled]
        return present


def _first_in_batch(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """True at each digest's first position within the batch."""
    order = np.lexsort((np.arange(len(high)), low, high))
    first = np.zeros(len(order), dtype=bool)
    first[order[_run_starts(high[order], low[order])]] = True
    return first


KEY_RECORD = np.dtype([("stratum", "<u4"), ("hash", "<u8"), ("tie", "<u8")])


class KeyRecords:
    """(stratum, hash, tie-break) per row, in memory up to a chunk and on disk beyond."""

    def __init__(self, path: Path | None):
        self.path = path
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self._on_disk = 0

    def add(self, records: np.ndarray) -> None:
        self._pending.append(records)
        self._pending_rows += len(records)
        if self.path is not None and self._pending_rows >= CHUNK_RECORDS:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as handle:
                np.concatenate(self._pending).tofile(handle)
            self._on_disk += self._pending_rows
            self._pending, self._pending_rows = [], 0

    def chunks(self) -> Iterator[np.ndarray]:
        if self._on_disk and self.path is not None:
            for offset in range(0, self._on_disk, CHUNK_RECORDS):
                yield np.fromfile(self.path, dtype=KEY_RECORD, count=min(CHUNK_RECORDS, self._on_disk - offset),
                                  offset=offset * KEY_RECORD.itemsize)
        if self._pending:
            yield np.concatenate(self._pending)

    def smallest(self, wanted: dict[int, int]) -> dict[int, np.ndarray]:
        """Per stratum code, its ``wanted[code]`` records with the smallest (hash, tie), sorted;
        a chunk at a time, keeping only those."""
        best: dict[int, np.ndarray] = {}
        for chunk in self.chunks():
            ordered = chunk[np.lexsort((chunk["tie"], chunk["hash"], chunk["stratum"]))]
            codes, starts = np.unique(ordered["stratum"], return_index=True)
            ends = [*starts[1:], len(ordered)]
            for code, begin, end in zip(codes.tolist(), starts.tolist(), ends, strict=True):
                k = wanted.get(code, 0)
                if not k:
                    continue
                candidates = ordered[begin:min(end, begin + k)]
                if code in best:
                    merged = np.concatenate([best[code], candidates])
                    candidates = merged[np.lexsort((merged["tie"], merged["hash"]))][:k]
                best[code] = candidates
        return best

    def count_at_most(self, strata: int, thresholds: dict[int, tuple[int, int]]) -> dict[int, int]:
        """Per stratum code, how many records are at or below its threshold."""
        counts = np.zeros(strata, dtype=np.int64)
        for chunk in self.chunks():
            np.add.at(counts, chunk["stratum"][at_most(chunk, strata, thresholds)], 1)
        return {code: int(count) for code, count in enumerate(counts)}

    def close(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def at_most(chunk: np.ndarray, strata: int, thresholds: dict[int, tuple[int, int]]) -> np.ndarray:
    """Which key records are at or below their stratum's (hash, tie) threshold."""
    present = np.zeros(strata, dtype=bool)
    limit_hash = np.zeros(strata, dtype=np.uint64)
    limit_tie = np.zeros(strata, dtype=np.uint64)
    for code, (key_hash, tie) in thresholds.items():
        present[code], limit_hash[code], limit_tie[code] = True, key_hash, tie
    codes = chunk["stratum"]
    hashes, ties = chunk["hash"], chunk["tie"]
    return present[codes] & ((hashes < limit_hash[codes]) | ((hashes == limit_hash[codes]) & (ties <= limit_tie[codes])))
