"""Row-local segments on Ray Data (``medcurate build --engine ray``; needs ``medcurate[ray]``).

The streaming engine hands this executor windows of batches; each window becomes a Ray
Dataset of pickled batches whose ``map_batches`` runs the same ``run_segment`` as the local
engine, one batch per task, with the order of the batches preserved. The whole-pass decisions
are Ray's own grouping: dedupe's first occurrences are a ``groupby(digest).min(position)``
over digests held in Ray's object store, and the held-out thresholds of the splits a
``groupby(stratum)`` that keeps each stratum's smallest keys. The driver reads the sources,
applies those decisions to the rows it spilled and writes Parquet, so the version is the one
the local engine publishes. On a cluster (``--ray-address``) the workers need medcurate
installed and the recipe's base folder and store on a shared path.
"""
from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from medcurate.engines.local import Row, SegmentSettings, SegmentStep, StageReport, run_segment
from medcurate.engines.spill import KEY_RECORD, at_most
from medcurate.errors import MedcurateError

WINDOW_PER_CPU = 4


def _run_pickled(batch: dict[str, Any], steps: list[SegmentStep], settings: SegmentSettings) -> dict[str, Any]:
    payloads = [pickle.dumps(run_segment(pickle.loads(item), steps, settings), protocol=pickle.HIGHEST_PROTOCOL)
                for item in batch["payload"]]
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
        self.window = WINDOW_PER_CPU * max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.grouping = RayGrouping(ray)

    def map(self, steps: list[SegmentStep], settings: SegmentSettings,
            batches: Iterable[list[Row]]) -> Iterator[tuple[list[Row], list[StageReport]]]:
        window: list[bytes] = []
        for batch in batches:
            window.append(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
            if len(window) >= self.window:
                yield from self._run(window, steps, settings)
                window = []
        if window:
            yield from self._run(window, steps, settings)

    def _run(self, window: list[bytes], steps: list[SegmentStep],
             settings: SegmentSettings) -> Iterator[tuple[list[Row], list[StageReport]]]:
        dataset = self.ray.data.from_items([{"index": index, "payload": item} for index, item in enumerate(window)],
                                           override_num_blocks=len(window))
        function: Any = _run_pickled
        mapped = dataset.map_batches(function, batch_size=1, batch_format="numpy",
                                     fn_kwargs={"steps": steps, "settings": settings})
        for row in mapped.iter_rows():
            yield pickle.loads(row["payload"])

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


class RayGrouping:
    """The stores whole-pass steps keep their keys in, on Ray (see StepContext.grouping)."""

    def __init__(self, ray):
        self.ray = ray

    def digests(self) -> RayDigests:
        return RayDigests(self.ray)

    def key_records(self) -> RayKeyRecords:
        return RayKeyRecords(self.ray)


class RayDigests:
    """Dedupe's 128-bit digests in Ray's object store, batch by batch; the first occurrence of
    each digest comes from Ray's groupby (the same decision as ``DigestBuckets``)."""

    def __init__(self, ray):
        self.ray = ray
        self.refs: list[Any] = []
        self.count = 0

    def add(self, start: int, high: np.ndarray, low: np.ndarray) -> None:
        import pyarrow as pa

        positions = np.arange(start, start + len(high), dtype=np.uint64)
        self.refs.append(self.ray.put(pa.table({"high": high, "low": low, "position": positions})))
        self.count = max(self.count, start + len(high))

    def later_occurrences(self) -> np.ndarray:
        """A flag per position: True where an earlier position had the same digest."""
        later = np.ones(self.count, dtype=bool)
        if self.refs:
            firsts = self.ray.data.from_arrow_refs(self.refs).groupby(["high", "low"]).min("position")
            for batch in firsts.iter_batches(batch_format="numpy"):
                later[batch["min(position)"].astype(np.int64)] = False
        return later


def _smallest_of_stratum(batch: dict[str, np.ndarray], wanted: dict[int, int]) -> dict[str, np.ndarray]:
    order = np.lexsort((batch["tie"], batch["hash"]))[:wanted.get(int(batch["stratum"][0]), 0)]
    return {name: batch[name][order] for name in ("stratum", "hash", "tie")}


def _at_most_strata(batch: dict[str, np.ndarray], strata: int, thresholds: dict[int, tuple[int, int]]) -> dict[str, np.ndarray]:
    records = np.empty(len(batch["stratum"]), dtype=KEY_RECORD)
    for name in ("stratum", "hash", "tie"):
        records[name] = batch[name]
    return {"stratum": records["stratum"][at_most(records, strata, thresholds)]}


class RayKeyRecords:
    """The split planner's (stratum, hash, tie) records in Ray's object store; each stratum's
    smallest keys and the counts under a threshold come from Ray's groupby."""

    def __init__(self, ray):
        self.ray = ray
        self.refs: list[Any] = []

    def add(self, records: np.ndarray) -> None:
        import pyarrow as pa

        self.refs.append(self.ray.put(pa.table({name: records[name] for name in ("stratum", "hash", "tie")})))

    def _dataset(self):
        return self.ray.data.from_arrow_refs(self.refs)

    def chunks(self) -> Iterator[np.ndarray]:
        """The records in the order they were added."""
        for ref in self.refs:
            table = self.ray.get(ref)
            records = np.empty(table.num_rows, dtype=KEY_RECORD)
            for name in ("stratum", "hash", "tie"):
                records[name] = table.column(name).to_numpy()
            yield records

    def smallest(self, wanted: dict[int, int]) -> dict[int, np.ndarray]:
        best: dict[int, np.ndarray] = {}
        if not self.refs or not wanted:
            return best
        kept = self._dataset().groupby("stratum").map_groups(_smallest_of_stratum, batch_format="numpy",
                                                              fn_kwargs={"wanted": wanted})
        parts: dict[int, list[np.ndarray]] = {}
        for batch in kept.iter_batches(batch_format="numpy"):
            records = np.empty(len(batch["stratum"]), dtype=KEY_RECORD)
            for name in ("stratum", "hash", "tie"):
                records[name] = batch[name]
            for code in np.unique(records["stratum"]).tolist():
                parts.setdefault(code, []).append(records[records["stratum"] == code])
        for code, pieces in parts.items():
            merged = np.concatenate(pieces)
            best[code] = merged[np.lexsort((merged["tie"], merged["hash"]))]
        return best

    def count_at_most(self, strata: int, thresholds: dict[int, tuple[int, int]]) -> dict[int, int]:
        counts = dict.fromkeys(range(strata), 0)
        if not self.refs:
            return counts
        under = self._dataset().map_batches(_at_most_strata, batch_format="numpy",
                                            fn_kwargs={"strata": strata, "thresholds": thresholds})
        for batch in under.groupby("stratum").count().iter_batches(batch_format="numpy"):
            for code, count in zip(batch["stratum"].tolist(), batch["count()"].tolist(), strict=True):
                counts[int(code)] = int(count)
        return counts

    def close(self) -> None:
        self.refs = []
