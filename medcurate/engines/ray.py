"""Row-local segments on Ray Data (``medcurate build --engine ray``; needs ``medcurate[ray]``).

The streaming engine hands this executor windows of batches; each window becomes a Ray
Dataset of serialised batches whose ``map_batches`` runs the same ``run_segment`` as the local
engine, one batch per task, with the order of the batches preserved; the first segment parses
the record files (and decodes JSON Lines) there, and the row-local phases of whole-pass steps
(CMedINS and KG rendering) run there too. A window runs while the driver prepares the next
one. The whole-pass decisions
become Ray's own grouping once their keys outgrow the driver: dedupe's first occurrences a
``groupby(digest).min(position)`` over the digests in Ray's object store (the first 2M distinct
digests are decided on the driver, as on the local engine), and the held-out thresholds of the
splits a ``groupby(stratum)`` keeping each stratum's smallest keys (past ``DRIVER_RECORDS``
keys). The driver reads the files, applies those decisions to the rows it spilled and writes
Parquet, so the version is the one the local engine publishes. On a cluster (``--ray-address``)
the workers need medcurate installed and the recipe's base folder and store on a shared path.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from medcurate.engines.local import Row, SegmentSettings, SegmentStep, StageReport, run_segment
from medcurate.engines.spill import KEY_RECORD, KeyRecords, at_most
from medcurate.engines.spill import dump as dump_rows
from medcurate.engines.spill import load as load_rows
from medcurate.errors import MedcurateError

WINDOW_ROWS = 1 << 18
"""Rows handed to one Ray Data execution (it costs about half a second to start one)."""
BLOCK_ROWS = 1 << 18
"""Key records per block in Ray's object store."""
DRIVER_RECORDS = 1 << 22
"""Split key records the driver scans itself; past this many, Ray's groupby does."""


def _run_serialised(batch: dict[str, Any], steps: list[SegmentStep], settings: SegmentSettings) -> dict[str, Any]:
    payloads = [dump_rows(run_segment(load_rows(item), steps, settings)) for item in batch["payload"]]
    return {"index": batch["index"], "payload": payloads}


class RayExecutor:
    """Starts (or joins) Ray once per build and maps segments over windows of batches."""

    def __init__(self, address: str | None, num_cpus: int | None):
        try:
            import ray
        except ModuleNotFoundError:
            raise MedcurateError("the ray engine needs Ray Data: pip install 'medcurate[ray]'", field="engine") from None
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        import ray.data

        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        self.data_logger = logging.getLogger("ray.data")
        self.data_log_level = self.data_logger.level
        self.data_logger.setLevel(logging.WARNING)   # not a line per execution on the console, for this build
        self.grouping = RayGrouping(ray, max(1, int(ray.cluster_resources().get("CPU", 1))))

    def map(self, steps: list[SegmentStep], settings: SegmentSettings,
            batches: Iterable[list[Row]]) -> Iterator[tuple[list[Row], list[StageReport]]]:
        """Results in the order of the batches. A window runs on Ray (waited on in a thread) while
        the driver reads the next one and takes the previous one's results on downstream, so
        the driver's work and the workers' overlap; at most two windows are in flight."""
        from concurrent.futures import Future, ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="medcurate-ray-window") as waiter:
            running: Future | None = None
            window: list[bytes] = []
            rows = 0
            for batch in batches:
                window.append(dump_rows(batch))
                rows += len(batch)
                if rows >= WINDOW_ROWS:
                    submitted = waiter.submit(self._run, window, steps, settings)
                    if running is not None:
                        yield from map(load_rows, running.result())
                    running, window, rows = submitted, [], 0
            last = waiter.submit(self._run, window, steps, settings) if window else None
            for future in (running, last):
                if future is not None:
                    yield from map(load_rows, future.result())

    def _run(self, window: list[bytes], steps: list[SegmentStep], settings: SegmentSettings) -> list[bytes]:
        dataset = self.ray.data.from_items([{"index": index, "payload": item} for index, item in enumerate(window)],
                                           override_num_blocks=len(window))
        function: Any = _run_serialised
        mapped = dataset.map_batches(function, batch_size=1, batch_format="numpy",
                                     fn_kwargs={"steps": steps, "settings": settings})
        return [row["payload"] for row in mapped.iter_rows()]

    def close(self) -> None:
        self.data_logger.setLevel(self.data_log_level)
        if self.started:
            self.ray.shutdown()


class RayGrouping:
    """The stores whole-pass steps keep their keys in, on Ray (see StepContext.grouping)."""

    def __init__(self, ray, cpus: int):
        self.ray = ray
        self.partitions = cpus

    def digests(self) -> RayDigests:
        return RayDigests(self.ray, self.partitions)

    def key_records(self) -> RayKeyRecords:
        return RayKeyRecords(self.ray, self.partitions)


class _Blocks:
    """Arrow tables put in Ray's object store a block of ``BLOCK_ROWS`` at a time, in order."""

    def __init__(self, ray, partitions: int):
        self.ray = ray
        self.partitions = partitions
        self.refs: list[Any] = []
        self._pending: list[Any] = []
        self._pending_rows = 0

    def _add(self, table) -> None:
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= BLOCK_ROWS:
            self._put()

    def _put(self) -> None:
        import pyarrow as pa

        if self._pending:
            self.refs.append(self.ray.put(pa.concat_tables(self._pending).combine_chunks()))
            self._pending, self._pending_rows = [], 0

    def dataset(self):
        self._put()
        return self.ray.data.from_arrow_refs(self.refs) if self.refs else None


class RayDigests(_Blocks):
    """Dedupe's 128-bit digests in Ray's object store; the first occurrence of each digest comes
    from Ray's groupby (the same decision as ``DigestBuckets``)."""

    count = 0

    def add(self, start: int, high: np.ndarray, low: np.ndarray) -> None:
        import pyarrow as pa

        positions = np.arange(start, start + len(high), dtype=np.uint64)
        self._add(pa.table({"high": high, "low": low, "position": positions}))
        self.count = max(self.count, start + len(high))

    def later_occurrences(self) -> np.ndarray:
        """A flag per position: True where an earlier position had the same digest."""
        later = np.ones(self.count, dtype=bool)
        dataset = self.dataset()
        if dataset is not None:
            firsts = dataset.groupby(["high", "low"], num_partitions=self.partitions).min("position")
            for batch in firsts.iter_batches(batch_format="numpy"):
                later[batch["min(position)"].astype(np.int64)] = False
        return later


def _records(batch: dict[str, np.ndarray]) -> np.ndarray:
    records = np.empty(len(batch["stratum"]), dtype=KEY_RECORD)
    for name in ("stratum", "hash", "tie"):
        records[name] = batch[name]
    return records


def _columns(records: np.ndarray) -> dict[str, np.ndarray]:
    return {name: records[name] for name in ("stratum", "hash", "tie")}


def _smallest_per_stratum(batch: dict[str, np.ndarray], wanted: dict[int, int]) -> dict[str, np.ndarray]:
    """The rows of a block or group that can still be among their stratum's smallest."""
    records = _records(batch)
    ordered = records[np.lexsort((records["tie"], records["hash"], records["stratum"]))]
    codes, starts = np.unique(ordered["stratum"], return_index=True)
    ends = [*starts[1:].tolist(), len(ordered)]
    keep = [ordered[begin:min(end, begin + wanted.get(code, 0))]
            for code, begin, end in zip(codes.tolist(), starts.tolist(), ends, strict=True)]
    return _columns(np.concatenate(keep) if keep else ordered[:0])


def _at_most_strata(batch: dict[str, np.ndarray], strata: int, thresholds: dict[int, tuple[int, int]]) -> dict[str, np.ndarray]:
    records = _records(batch)
    return {"stratum": records["stratum"][at_most(records, strata, thresholds)]}


class RayKeyRecords(_Blocks):
    """The split planner's (stratum, hash, tie) records in Ray's object store. Past
    ``DRIVER_RECORDS``, each stratum's smallest keys come from Ray: every block keeps its own
    smallest per stratum, then a groupby(stratum) keeps the smallest of those; rows under a
    threshold are counted by a groupby(stratum) too. Fewer records are scanned on the driver."""

    count = 0

    def add(self, records: np.ndarray) -> None:
        import pyarrow as pa

        self._add(pa.table(_columns(records)))
        self.count += len(records)

    def chunks(self) -> Iterator[np.ndarray]:
        """The records in the order they were added."""
        self._put()
        for ref in self.refs:
            table = self.ray.get(ref)
            yield _records({name: table.column(name).to_numpy() for name in ("stratum", "hash", "tie")})

    def _local(self) -> KeyRecords | None:
        """The records on the driver while there are at most ``DRIVER_RECORDS`` (~20 MB a million):
        a Ray execution costs more than scanning them."""
        if self.count > DRIVER_RECORDS:
            return None
        local = KeyRecords(None)
        for records in self.chunks():
            local.add(records)
        return local

    def smallest(self, wanted: dict[int, int]) -> dict[int, np.ndarray]:
        local = self._local()
        if local is not None:
            return local.smallest(wanted)
        dataset = self.dataset()
        if dataset is None or not wanted:
            return {}
        options = {"batch_format": "numpy", "fn_kwargs": {"wanted": wanted}}
        kept = (dataset.map_batches(_smallest_per_stratum, batch_size=None, **options)
                .groupby("stratum", num_partitions=self.partitions).map_groups(_smallest_per_stratum, **options))
        found = [_records(batch) for batch in kept.iter_batches(batch_format="numpy")]
        records = np.concatenate(found) if found else np.empty(0, dtype=KEY_RECORD)
        records = records[np.lexsort((records["tie"], records["hash"], records["stratum"]))]
        return {code: records[records["stratum"] == code] for code in np.unique(records["stratum"]).tolist()}

    def count_at_most(self, strata: int, thresholds: dict[int, tuple[int, int]]) -> dict[int, int]:
        local = self._local()
        if local is not None:
            return local.count_at_most(strata, thresholds)
        counts = dict.fromkeys(range(strata), 0)
        dataset = self.dataset()
        if dataset is None:
            return counts
        under = dataset.map_batches(_at_most_strata, batch_size=None, batch_format="numpy",
                                    fn_kwargs={"strata": strata, "thresholds": thresholds})
        for batch in under.groupby("stratum", num_partitions=self.partitions).count().iter_batches(batch_format="numpy"):
            for code, count in zip(batch["stratum"].tolist(), batch["count()"].tolist(), strict=True):
                counts[int(code)] = int(count)
        return counts

    def close(self) -> None:
        self.refs = []
