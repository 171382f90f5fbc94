"""Running a recipe: sources -> steps -> schema check -> splits -> a published version.

Every stage keeps a ledger (rows in, out, dropped by filter, rejected by reason, merged,
created) and the build stops with a ConservationError when one does not add up, so no
record is ever lost without a trace. How the rows flow (streamed in batches, all in
memory, or on Ray) is the engine's business (``medcurate.engines``); every engine
publishes the same version for the same recipe and inputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medcurate.engines import ENGINES
from medcurate.engines.local import (
    DEFAULT_BATCH_SIZE,
    EngineOptions,
    InProcess,
    Processes,
    ProgressFactory,
    StreamingBuild,
)
from medcurate.errors import MedcurateError
from medcurate.pipeline import SourceSpec
from medcurate.recipe import Recipe, recipe_from_dict
from medcurate.store import Version, store_path


@dataclass
class BuildResult:
    version: Version
    manifest: dict[str, Any]


class _NoProgress:
    def __init__(self, *_):
        pass

    def advance(self, amount: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def build(recipe: Recipe, store: str | Path | None = None, progress: ProgressFactory | None = None, *,
          engine: str = "local", batch_size: int = DEFAULT_BATCH_SIZE, workers: int = 1,
          ray_address: str | None = None, num_cpus: int | None = None) -> BuildResult:
    """Run a recipe and publish its version; raises MedcurateError on bad input.

    ``engine``: ``local`` (streaming, bounded memory; ``workers`` processes for row-local
    steps), ``memory`` (every row held at once) or ``ray`` (row-local steps on Ray Data, at
    ``ray_address`` or on a local Ray with ``num_cpus``)."""
    if engine not in ENGINES:
        raise MedcurateError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}", field="engine")
    if workers < 1 or batch_size < 1:
        raise MedcurateError("workers and batch size must be at least 1", field="workers")
    options = EngineOptions(engine, batch_size, workers, ray_address, num_cpus)
    if engine == "ray":
        from medcurate.engines.ray import RayExecutor

        executor: Any = RayExecutor(ray_address, num_cpus)
    elif workers > 1 and engine == "local":
        executor = Processes(workers)
    else:
        executor = InProcess()
    try:
        version = StreamingBuild(recipe, store_path(store), progress or _NoProgress, options, executor).run()
    finally:
        executor.close()
    write_version_lineage(version, recipe, recipe.sources, store_path(store))
    return BuildResult(version, version.manifest)


def write_version_lineage(version: Version, recipe: Recipe, sources: list[SourceSpec], store: Path) -> None:
    """``lineage.json`` beside the manifest: every source by absolute path and sha256, or by the
    version id it read. Not one of the hashed files: it names local paths, the version id must not.
    No timestamp: a version folder is the same bytes on every rebuild (publication times are in the
    store's versions.jsonl)."""
    from medcurate.lineage import file_link, record, version_link, write_lineage
    from medcurate.store import resolve

    inputs: list[dict[str, Any]] = []
    for spec in sources:
        if spec.resolved_ref:
            inputs.append(version_link(resolve(spec.resolved_ref, store), store))
        elif spec.resolved_path is not None and spec.resolved_path.is_file():
            inputs.append(file_link(spec.resolved_path))
        inputs.extend(spec.lineage_inputs)
    lineage = record("dataset_version", inputs, ref=version.ref, manifest_sha256=version.manifest_sha256(),
                     recipe_origin=recipe.origin, recipe=version.manifest.get("recipe"))
    lineage.pop("created_at")
    write_lineage(version.path, lineage)


def build_mapping(mapping: dict[str, Any], *, origin: str, store: str | Path | None = None,
                  progress: ProgressFactory | None = None, base_dir: Path | None = None, **options: Any) -> BuildResult:
    """Check a recipe given as a mapping (what ``<feature>/recipes.py`` returns) and build it;
    relative paths resolve against ``base_dir`` (default: the working directory)."""
    recipe = recipe_from_dict(mapping, base_dir=base_dir or Path.cwd(), origin=origin)
    return build(recipe, store=store, progress=progress, **options)
