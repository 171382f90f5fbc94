"""Row-local segments on Ray Data (``medcurate build --engine ray``; needs ``medcurate[ray]``).

The streaming engine hands this executor windows of batches; each window becomes a Ray
Dataset of pickled batches whose ``map_batches`` runs the same ``run_segment`` as the local
engine, one batch per task, with the order of the batches preserved. Whole-pass steps,
split assignment and Parquet writing stay the driver's bounded passes, so the version is
the one the local engine publishes. On a cluster (``--ray-address``) the workers need
medcurate installed and the recipe's base folder and store on a shared path.
"""
from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator
from typing import Any

from medcurate.engines.local import Row, SegmentSettings, SegmentStep, StageReport, run_segment
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
