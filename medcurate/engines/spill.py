"""Disk spills that keep a streaming build's memory bounded.

A whole-pass step sees every row twice: once to learn what it needs (digests, counts,
split keys) and once to apply its decision. Between the passes the rows wait on disk
(``BatchSpill``), and what the step learned is kept as fixed-width numpy records on disk
(``DigestBuckets``, ``KeyRecords``), read back a bounded chunk at a time.
"""
from __future__ import annotations

import marshal
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

CHUNK_RECORDS = 1 << 20
_MARSHAL, _PICKLE = b"M", b"P"


class BatchSpill:
    """Batches of rows pickled one after another into a file, read back in the same order."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._handle: Any = open(path, "wb")
        self.batches = 0

    def write(self, rows: list[dict[str, Any]]) -> None:
        """marshal (twice as fast as pickle) unless a value is of a type only pickle keeps."""
        try:
            payload = _MARSHAL + marshal.dumps(rows, 4)
        except ValueError:
            payload = _PICKLE + pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)
        self._handle.write(len(payload).to_bytes(8, "little"))
        self._handle.write(payload)
        self.batches += 1

    def read(self) -> Iterator[list[dict[str, Any]]]:
        """Every batch in order; the file is removed once read."""
        self._handle.close()
        try:
            with open(self.path, "rb") as handle:
                for _ in range(self.batches):
                    payload = handle.read(int.from_bytes(handle.read(8), "little"))
                    yield marshal.loads(payload[1:]) if payload[:1] == _MARSHAL else pickle.loads(payload[1:])
        finally:
            self.path.unlink(missing_ok=True)


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

    def add(self, start: int, digests: list[bytes]) -> None:
        parsed = np.frombuffer(b"".join(digests), dtype=_DIGEST)
        records = np.empty(len(parsed), dtype=_BUCKETED)
        records["high"] = parsed["high"]
        records["low"] = parsed["low"]
        records["position"] = np.arange(start, start + len(parsed), dtype=np.uint64)
        self._pending.append(records)
        self._pending_rows += len(records)
        self.count = max(self.count, start + len(parsed))
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

    def later_occurrences(self) -> np.ndarray:
        """A flag per stream position: True where an earlier position had the same digest."""
        self._flush()
        flags = np.zeros(self.count, dtype=bool)
        for index in range(self.buckets):
            path = self.folder / f"{index:04d}"
            if not path.exists():
                continue
            records = np.fromfile(path, dtype=_BUCKETED)
            path.unlink()
            ordered = records[np.lexsort((records["position"], records["low"], records["high"]))]
            repeat = (ordered["high"][1:] == ordered["high"][:-1]) & (ordered["low"][1:] == ordered["low"][:-1])
            flags[ordered["position"][1:][repeat]] = True
        return flags


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

    def close(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
