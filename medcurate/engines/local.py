"""The streaming build engine: sources -> steps -> schema check -> splits -> Parquet, in batches.

Rows flow from the readers in batches. Consecutive row-local steps (and the schema check)
form a *segment* that each batch goes through on its own, in this process, in worker
processes (``workers``) or on Ray; a whole-pass step is a barrier: with a ``bounded``
implementation it observes every batch while the batches wait on disk, then applies its
decision on the way back, otherwise (and always on the ``memory`` engine) it gets all rows
as one list. The last barrier assigns splits and infers the Parquet schema, and its second
pass writes each split's rows as they come. Every stage keeps its ledger and its rejects
(one file per stage, so their order does not depend on the batch size), and the build stops
with a ConservationError when a stage does not add up.
"""
from __future__ import annotations

import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import medcurate
from medcurate.card import LICENSE_FILE, arrow_features, license_text, markdown_table, render_card
from medcurate.engines.spill import BatchSpill, ChunkSpill
from medcurate.errors import ConservationError, MedcurateError
from medcurate.pipeline import (
    ROW_LOCAL,
    CardContributions,
    RecordError,
    Reject,
    Row,
    SourceSpec,
    StageLedger,
    StepContext,
    get_source_format,
    get_step,
    phase_params,
    publish_checks,
)
from medcurate.privacy import version_privacy
from medcurate.readers import JsonText, Malformed, file_sha256, iter_records, parse_json_record
from medcurate.recipe import Recipe
from medcurate.schemas import canonical_json, row_kind, stable_row_id
from medcurate.splits import SPLIT_NAMES, SplitPlanner
from medcurate.store import (
    RowChunk,
    SchemaInference,
    SplitFileWriter,
    Version,
    check_counts,
    publish_staged,
    staging_folder,
)

ProgressFactory = Callable[[str, int | None], Any]
DEFAULT_BATCH_SIZE = 4096
SCHEMA_STAGE = "schema"
PARSE_STAGE = "parse"
"""The first part of the first segment: record files' raw records -> rows, by their source format."""
RAW = "\x00source"
"""The key of a raw record in a batch (its value is the index of its source); such a batch holds
the raw records of one source only."""


@dataclass
class EngineOptions:
    """How to run a build; none of these changes what is published."""

    engine: str = "local"
    batch_size: int = DEFAULT_BATCH_SIZE
    workers: int = 1
    ray_address: str | None = None
    num_cpus: int | None = None


STEP, PREPARE, COMPLETE = "step", "prepare", "complete"


@dataclass(frozen=True)
class SegmentStep:
    """One stage of a row-local segment: a registered step, the schema check, or a row-local
    phase (``prepare``, ``complete``) of a whole-pass step, which shares that step's stage."""

    stage: str
    name: str
    params: dict[str, Any]
    phase: str = STEP

    @property
    def counts_in(self) -> bool:
        """Whether the rows this part receives are the stage's input (not so after the whole pass)."""
        return self.phase != COMPLETE

    @property
    def counts_out(self) -> bool:
        """Whether the rows this part returns are the stage's output (not so before the whole pass)."""
        return self.phase != PREPARE


@dataclass(frozen=True)
class SourceParsing:
    """What turns one record file's raw records into rows, wherever the batch runs."""

    stage: str
    spec: SourceSpec
    display: str


@dataclass(frozen=True)
class SegmentSettings:
    base_dir: Path
    store: Path
    seed: int
    kind: str
    origin: str | None


@dataclass
class StageReport:
    """What one stage did to one batch, sent back from wherever the batch ran."""

    rows_in: int
    rows_out: int
    created: int
    merged: int
    dropped: Counter
    rejected: Counter
    rejects: list[Reject] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    source: int | None = None
    """For the parse part: the index of the source whose raw records the batch held (None when
    the batch held rows, which pass through)."""


def run_segment(rows: list[Row], steps: list[SegmentStep],
                settings: SegmentSettings) -> tuple[list[Row], list[StageReport]]:
    """A batch through a segment of row-local stages; pure apart from the step functions."""
    reports = []
    for step in steps:
        source = rows[0][RAW] if step.name == PARSE_STAGE and rows and RAW in rows[0] else None
        stage = step.params["sources"][source].stage if source is not None else step.stage
        rejects: list[Reject] = []
        card = CardContributions()
        ctx = StepContext(stage, base_dir=settings.base_dir, store=settings.store, seed=settings.seed,
                          rejects=rejects, card=card)
        received = len(rows)
        if step.name == PARSE_STAGE:
            if source is not None:
                rows = list(parse_records(rows, step.params["sources"][source], ctx))
                received = ctx.ledger.rows_in
        elif step.name == SCHEMA_STAGE:
            rows = check_schema(rows, settings.kind, ctx)
        elif step.phase == STEP:
            rows = call_step(step.name, rows, ctx, step.params, settings.origin)
        else:
            phase = getattr(get_step(step.name), step.phase)
            rows = phase(rows, ctx, **phase_params(phase, step.params))
        ledger = ctx.ledger
        reports.append(StageReport(received, len(rows), ledger.created, ledger.merged, ledger.dropped,
                                   ledger.rejected, rejects, card.stats, source))
    return rows, reports


def merge_stats(total: dict[str, Any], added: dict[str, Any]) -> None:
    """Add one batch's stats to the running total: numbers summed, dicts merged, the rest kept."""
    for key, value in added.items():
        if isinstance(value, dict) and isinstance(total.get(key), dict):
            merge_stats(total[key], value)
        elif isinstance(value, int | float) and not isinstance(value, bool) and isinstance(total.get(key), int | float):
            total[key] += value
        else:
            total[key] = value if not isinstance(value, dict) else dict(value)


def call_step(name: str, rows: list[Row], ctx: StepContext, params: dict[str, Any], origin: str | None) -> list[Row]:
    function = get_step(name).function
    try:
        return function(rows, ctx, **params)
    except TypeError as exc:
        if "argument" in str(exc) and function.__name__ in str(exc):
            raise MedcurateError(f"bad parameters for step {name!r}: {exc}", file=origin,
                                 field=f"steps.{name}") from None
        raise


def check_schema(rows: list[Row], kind_name: str, ctx: StepContext) -> list[Row]:
    kind = row_kind(kind_name)
    valid: list[Row] = []
    for row in rows:
        problems = kind.problems(row)
        if problems:
            field_name, message = problems[0]
            ctx.reject(row, f"schema: {field_name} {message}", field_name)
            continue
        if not row.get("id"):
            row["id"] = stable_row_id(row, kind)
        valid.append(row)
    return valid


class InProcess:
    """Runs each batch through a segment here, one after another."""

    def map(self, steps: list[SegmentStep], settings: SegmentSettings,
            batches: Iterable[list[Row]]) -> Iterator[tuple[list[Row], list[StageReport]]]:
        for batch in batches:
            yield run_segment(batch, steps, settings)

    def close(self) -> None:
        pass


class Processes:
    """Runs batches through a segment in worker processes, a bounded window at a time, in order."""

    def __init__(self, workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))

    def map(self, steps: list[SegmentStep], settings: SegmentSettings,
            batches: Iterable[list[Row]]) -> Iterator[tuple[list[Row], list[StageReport]]]:
        from collections import deque

        pending: deque = deque()
        for batch in batches:
            pending.append(self.pool.submit(run_segment, batch, steps, settings))
            if len(pending) >= 2 * self.workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


@dataclass(frozen=True)
class _Counting:
    """Which of its rows a whole pass counts in its stage's ledger: not the input when a
    ``prepare`` phase counted it, not the output when a ``complete`` phase will."""

    rows_in: bool
    rows_out: bool


@dataclass
class _Stage:
    ctx: StepContext
    rejects: list[Reject]
    log: Path


class StreamingBuild:
    """One run of a recipe; ``run()`` publishes the version."""

    def __init__(self, recipe: Recipe, root: Path, progress: ProgressFactory, options: EngineOptions, executor):
        self.recipe = recipe
        self.root = root
        self.progress = progress
        self.options = options
        self.executor = executor
        self.in_memory = options.engine == "memory"
        self.batch_size = sys.maxsize if self.in_memory else max(1, options.batch_size)
        self.card = CardContributions()
        self.stages: list[_Stage] = []
        self.settings = SegmentSettings(recipe.base_dir, root, recipe.seed, recipe.kind, recipe.origin)
        self.grouping = getattr(executor, "grouping", None)
        # in this process, records are parsed as they are read: a batch of raw records would
        # only keep more objects alive at once
        self.parse_in_segment = not isinstance(executor, InProcess)

    def run(self) -> Version:
        folder = self.root / self.recipe.name
        existed = folder.exists()
        staged = staging_folder(self.recipe.name, self.root)
        self.scratch = staging_folder(self.recipe.name, self.root, suffix="-scratch")
        try:
            manifest = self._write(staged)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            shutil.rmtree(self.scratch, ignore_errors=True)
            if not existed and not any(folder.iterdir()):
                folder.rmdir()
            raise
        shutil.rmtree(self.scratch, ignore_errors=True)
        return publish_staged(self.recipe.name, manifest, staged, render_card, self.root)

    def _stage(self, name: str) -> _Stage:
        rejects: list[Reject] = []
        ctx = StepContext(name, base_dir=self.recipe.base_dir, store=self.root, seed=self.recipe.seed,
                          rejects=rejects, card=self.card, grouping=self.grouping)
        stage = _Stage(ctx, rejects, self.scratch / "rejects" / f"{len(self.stages):04d}.jsonl")
        stage.log.parent.mkdir(parents=True, exist_ok=True)
        self.stages.append(stage)
        return stage

    def _drain(self) -> None:
        """Move rejects from memory to their stage's file."""
        for stage in self.stages:
            if stage.rejects:
                with open(stage.log, "a", encoding="utf-8") as handle:
                    handle.writelines(canonical_json(r.to_dict()) + "\n" for r in stage.rejects)
                stage.rejects.clear()

    def _write(self, staged: Path) -> dict[str, Any]:
        recipe = self.recipe
        self.source_stages = [self._stage(f"source:{spec.name}") for spec in recipe.sources]
        # as the recipe wrote them (a reader may narrow its options while it reads)
        written = [{"name": spec.name, "file": Path(spec.path).name, "format": spec.format, "encoding": spec.encoding,
                    "options": spec.options} for spec in recipe.sources]
        parsing = [_source_parsing(spec, stage.ctx) for spec, stage in zip(recipe.sources, self.source_stages, strict=True)]
        batches = self._source_batches(parsing)
        segment: list[tuple[SegmentStep, _Stage]] = []
        if any(parsing) and self.parse_in_segment:
            segment.append((SegmentStep(PARSE_STAGE, PARSE_STAGE, {"sources": parsing}), self.source_stages[0]))
        for call in recipe.steps:
            info = get_step(call.name)
            stage = self._stage(call.name)
            if info.kind == ROW_LOCAL:
                segment.append((SegmentStep(call.name, call.name, call.params), stage))
                continue
            if info.prepare is not None:
                segment.append((SegmentStep(call.name, call.name, call.params, PREPARE), stage))
            batches = self._segment(batches, segment)
            segment = []
            counting = _Counting(rows_in=info.prepare is None, rows_out=info.complete is None)
            if info.bounded is not None and not self.in_memory:
                batches = self._bounded(batches, info, call.params, stage, counting)
            else:
                batches = self._whole(batches, call.name, call.params, stage, counting)
            if info.complete is not None:
                segment.append((SegmentStep(call.name, call.name, call.params, COMPLETE), stage))
        segment.append((SegmentStep(SCHEMA_STAGE, SCHEMA_STAGE, {}), self._stage(SCHEMA_STAGE)))
        batches = self._segment(batches, segment)
        split_counts, split_notes, schema = self._write_splits(batches, staged)
        self._drain()
        for stage in self.stages:
            stage.ctx.ledger.check()
        with open(staged / "rejects.jsonl", "wb") as target:
            for stage in self.stages:
                if stage.log.exists():
                    with open(stage.log, "rb") as source:
                        shutil.copyfileobj(source, target)
        for relative, content in self.card.artifacts.items():
            (staged / relative).parent.mkdir(parents=True, exist_ok=True)
            (staged / relative).write_bytes(content)
        counts = _counts([stage.ctx.ledger for stage in self.stages], split_counts)
        check_counts(counts)
        manifest = {
            "name": recipe.name,
            "kind": recipe.kind,
            "description": recipe.description,
            "license": recipe.license,
            "medcurate_version": medcurate.__version__,
            "recipe": recipe.as_written(),
            "sources": [_source_meta(meta, spec, stage.ctx.ledger)
                        for meta, spec, stage in zip(written, recipe.sources, self.source_stages, strict=True)],
            "counts": counts,
            "splits": list(split_counts),
            "split_config": recipe.splits.to_dict(),
            "split_notes": split_notes,
            "json_columns": schema.json_columns,
            "columns": schema.schema().names,
            "features": arrow_features(schema.schema()),
            "split_bytes": {split: (staged / "data" / f"{split}.parquet").stat().st_size for split in split_counts},
            "stats": self.card.stats,
            "card_sections": [[title, body] for title, body in self.card.sections],
            # one row that fails the gate decides like all of them would (version_privacy checks any())
            "privacy": version_privacy([self.unscreened] if self.unscreened is not None else [],
                                       self.card.stats.get("deid")),
        }
        (staged / LICENSE_FILE).write_text(license_text(manifest), encoding="utf-8")
        return manifest

    def _source_batches(self, parsing: list[SourceParsing | None]) -> Iterator[list[Row]]:
        """Batches of rows from the sources; when the first segment runs elsewhere, a record file
        gives batches of its raw records instead, which the segment's parse part turns into rows."""
        batch: list[Row] = []
        for index, (spec, stage) in enumerate(zip(self.recipe.sources, self.source_stages, strict=True)):
            file_parsing = parsing[index]
            raw = file_parsing is not None and self.parse_in_segment
            if raw and batch:    # a batch of raw records holds one file's only
                yield batch
                batch = []
            if file_parsing is None:
                items = _read_whole_source(spec, stage.ctx)
            elif raw:
                items = self._raw_records(spec, index, decode=False)
            else:
                items = parse_records(self._raw_records(spec, index, decode=True), file_parsing, stage.ctx)
            for item in items:
                batch.append(item)
                if len(batch) >= self.batch_size:
                    yield batch
                    batch = []
            if raw and batch:
                yield batch
                batch = []
        if batch:
            yield batch

    def _raw_records(self, spec: SourceSpec, index: int, decode: bool) -> Iterator[Row]:
        """A record file's records as items for ``parse_records``; without ``decode``, JSON Lines
        records stay text, decoded where they are parsed."""
        source_format = get_source_format(spec.format)
        assert spec.resolved_path is not None
        bar = self.progress(f"read {spec.name}", None)
        try:
            records = iter_records(spec.resolved_path, source_format.file_format, spec.encoding,
                                   spec.options.get("delimiter"), decode=decode)
            for number, item in enumerate(records, 1):
                bar.advance()
                if isinstance(item, Malformed):
                    yield {RAW: index, "record": number, "line": item.line, "reason": item.reason, "field": item.field}
                elif isinstance(item, JsonText):
                    yield {RAW: index, "record": number, "line": item.line, "text": item.text}
                else:
                    yield {RAW: index, "record": number, "line": item.line, "data": item.data}
        except MedcurateError as exc:
            exc.in_file(str(spec.path))
            raise
        finally:
            bar.close()

    def _segment(self, batches: Iterator[list[Row]], segment: list[tuple[SegmentStep, _Stage]]) -> Iterator[list[Row]]:
        if not segment:
            return batches
        steps = [step for step, _ in segment]
        stats: list[dict[str, Any]] = [{} for _ in segment]
        # the schema check alone costs less per row than sending the row to a worker and back
        executor = InProcess() if all(step.name == SCHEMA_STAGE for step in steps) else self.executor

        def flow() -> Iterator[list[Row]]:
            for rows, reports in executor.map(steps, self.settings, batches):
                for (step, stage), report, added in zip(segment, reports, stats, strict=True):
                    if step.name == PARSE_STAGE:
                        if report.source is None:
                            continue
                        stage = self.source_stages[report.source]
                    merge_stats(added, report.stats)
                    ledger = stage.ctx.ledger
                    ledger.rows_in += report.rows_in if step.counts_in else 0
                    ledger.rows_out += report.rows_out if step.counts_out else 0
                    ledger.created += report.created
                    ledger.merged += report.merged
                    ledger.dropped.update(report.dropped)
                    ledger.rejected.update(report.rejected)
                    stage.rejects.extend(report.rejects)
                self._drain()
                if rows:
                    yield rows
            for (step, _), added in zip(segment, stats, strict=True):
                summary = get_step(step.name).summary if step.name not in (SCHEMA_STAGE, PARSE_STAGE) and step.phase == STEP else None
                if summary is not None and added:
                    summary(added, self.card, **step.params)
                else:
                    self.card.stats.update(added)
        return flow()

    def _whole(self, batches: Iterator[list[Row]], name: str, params: dict[str, Any], stage: _Stage,
               counting: _Counting) -> Iterator[list[Row]]:
        rows = [row for batch in batches for row in batch]
        ledger = stage.ctx.ledger
        ledger.rows_in += len(rows) if counting.rows_in else 0
        bar = self.progress(f"step {name}", None)
        try:
            rows = call_step(name, rows, stage.ctx, params, self.recipe.origin)
        finally:
            bar.close()
        ledger.rows_out += len(rows) if counting.rows_out else 0
        self._drain()
        for start in range(0, len(rows), self.batch_size):
            yield rows[start:start + self.batch_size]

    def _bounded(self, batches: Iterator[list[Row]], info, params: dict[str, Any], stage: _Stage,
                 counting: _Counting) -> Iterator[list[Row]]:
        index = self.stages.index(stage)
        spill = BatchSpill(self.scratch / f"stage-{index:04d}.spill")
        try:
            plan = info.bounded(stage.ctx, self.scratch / f"stage-{index:04d}", **params)
        except TypeError as exc:
            raise MedcurateError(f"bad parameters for step {info.name!r}: {exc}", file=self.recipe.origin,
                                 field=f"steps.{info.name}") from None
        ledger = stage.ctx.ledger
        counted_in = 1 if counting.rows_in else 0
        counted_out = 1 if counting.rows_out else 0
        deciding = hasattr(plan, "decide")
        received = 0
        spilled_from = None
        for batch in batches:
            kept = plan.decide(batch, received) if deciding else None
            received += len(batch)
            ledger.rows_in += counted_in * len(batch)
            if kept is not None:
                ledger.rows_out += counted_out * len(kept)
                self._drain()
                if kept:
                    yield kept
                continue
            deciding = False
            if spilled_from is None:
                spilled_from = received - len(batch)
            plan.observe(batch, received - len(batch))
            spill.write(batch)
        plan.finish()
        position = spilled_from or 0
        for batch in spill.read():
            kept = plan.apply(batch, position)
            position += len(batch)
            ledger.rows_out += counted_out * len(kept)
            self._drain()
            if kept:
                yield kept
        for kept in plan.remaining() if hasattr(plan, "remaining") else ():
            ledger.rows_out += counted_out * len(kept)
            if kept:
                yield kept

    def _write_splits(self, batches: Iterator[list[Row]], staged: Path):
        """First pass: publish checks, split keys and the schema, the rows kept as Arrow chunks
        (on disk unless the engine holds everything); second pass: each chunk's rows to their
        split files."""
        import pyarrow as pa

        recipe = self.recipe
        planner = SplitPlanner(recipe.splits, None if self.in_memory else self.scratch / "split-keys",
                               records=self.grouping.key_records() if self.grouping is not None else None)
        schema = SchemaInference()
        from medcurate.deid.gate import gate_problem

        checks = publish_checks(recipe.kind)
        unscreened: Row | None = None
        held: list[RowChunk] = []
        spill = None if self.in_memory else ChunkSpill(self.scratch / "splits.spill")
        keep = held.append if spill is None else spill.write
        position = 0
        for batch in batches:
            for check in checks:
                check(batch)
            if unscreened is None:
                unscreened = next((row for row in batch if gate_problem(row)), None)
            planner.observe(batch, position)
            position += len(batch)
            for chunk in schema.add(batch):
                keep(chunk)
        for chunk in schema.finish():
            keep(chunk)
        try:
            notes = planner.finish()
        except MedcurateError as exc:
            raise MedcurateError(exc.message, file=self.recipe.origin, field=exc.field) from None
        arrow_schema = schema.schema()
        writers = {name: SplitFileWriter(staged / "data" / f"{name}.parquet", arrow_schema) for name in planner.names}
        per_stratum = np.zeros((len(SPLIT_NAMES), len(planner.codes)), dtype=np.int64)
        assignments = _RowCursor(planner.assignments())
        try:
            for chunk in (held if spill is None else spill.read()):
                table = schema.table(chunk, arrow_schema)
                split, codes = assignments.take(chunk.rows)
                np.add.at(per_stratum, (split, codes), 1)
                present = np.unique(split)
                if len(present) == 1:
                    writers[SPLIT_NAMES[present[0]]].write(table)
                    continue
                for index in present.tolist():
                    writers[SPLIT_NAMES[index]].write(table.filter(pa.array(split == index)))
        finally:
            planner.close()
            for writer in writers.values():
                writer.close()
        strata = {name: Counter({stratum or "(none)": int(count) for stratum, count
                                 in zip(planner.stratum_names(), per_stratum[SPLIT_NAMES.index(name)], strict=True)
                                 if count})
                  for name in planner.names}
        if recipe.splits.stratify:
            _stratum_section(self.card, strata, recipe.splits.stratify)
        self.unscreened = unscreened
        return {name: writer.rows for name, writer in writers.items()}, notes, schema


class _RowCursor:
    """The planner's (split, stratum) arrays, re-cut to the row chunks' sizes."""

    def __init__(self, chunks: Iterator[tuple[np.ndarray, np.ndarray]]):
        self.chunks = chunks
        self.split: np.ndarray = np.zeros(0, dtype=np.int8)
        self.codes: np.ndarray = np.zeros(0, dtype=np.uint32)

    def take(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        while len(self.split) < count:
            split, codes = next(self.chunks)
            self.split = np.concatenate([self.split, split])
            self.codes = np.concatenate([self.codes, codes])
        taken = self.split[:count], self.codes[:count]
        self.split, self.codes = self.split[count:], self.codes[count:]
        return taken


def _source_meta(written: dict[str, Any], spec: SourceSpec, ledger: StageLedger) -> dict[str, Any]:
    """A source's entry in the manifest, once it has been read."""
    meta = {**written, "sha256": spec.sha256, "records": ledger.rows_in, "rows": ledger.rows_out}
    if spec.resolved_ref:    # a version read as NAME@latest is recorded by the id it resolved to
        meta.update(file=spec.resolved_ref, version=spec.resolved_ref)
    return meta


def _source_parsing(spec: SourceSpec, ctx: StepContext) -> SourceParsing | None:
    """A record file checked and hashed before any record is read (so its batches can be parsed
    anywhere); None for a source read by a whole-source reader."""
    if get_source_format(spec.format).reader is not None:
        return None
    path = ctx.resolve_path(spec.path)
    if not path.exists():
        raise MedcurateError(f"source file not found (looked for {path})", file=str(spec.path),
                             field=f"sources.{spec.name}.path")
    if path.is_dir():
        raise MedcurateError("source path is a folder, expected a file", file=str(spec.path))
    spec.resolved_path = path
    spec.sha256 = file_sha256(path)
    return SourceParsing(ctx.stage, spec, Path(spec.path).name)


def _read_whole_source(spec: SourceSpec, ctx: StepContext) -> Iterator[Row]:
    reader = get_source_format(spec.format).reader
    assert reader is not None
    for row in reader(spec, ctx):
        ctx.ledger.rows_out += 1
        yield row


def parse_records(items: Iterable[Row], parsing: SourceParsing, ctx: StepContext) -> Iterator[Row]:
    """One record file's raw records -> rows by its source format, every record counted in ``ctx``:
    a malformed one or one its parser refuses is rejected with its line, an empty result must have
    been declared."""
    spec, display = parsing.spec, parsing.display
    source_format = get_source_format(spec.format)
    assert source_format.parse is not None
    ledger = ctx.ledger
    try:
        for item in items:
            ledger.rows_in += 1
            ctx.record, line = item["record"], item["line"]
            location = {"name": spec.name, "file": display, "line": line, "sha256": spec.sha256}
            if "text" in item:
                decoded = parse_json_record(item["text"], line)
                if isinstance(decoded, Malformed):
                    ctx.reject({"source": location}, decoded.reason, decoded.field)
                    continue
                data = decoded.data
            elif "reason" in item:
                ctx.reject({"source": location}, item["reason"], item["field"])
                continue
            else:
                data = item["data"]
            declared_before = ctx.declarations
            try:
                produced = list(source_format.parse(data, spec, ctx))
            except RecordError as exc:
                ctx.reject({"source": location}, exc.reason, exc.field)
                continue
            if not produced:
                if ctx.declarations == declared_before:
                    raise ConservationError(f"source format {spec.format!r} returned no row for a record without "
                                            f"declaring why", file=display, line=line)
            if len(produced) > 1:
                ctx.created(len(produced) - 1)
            for row in produced:
                row.setdefault("source", location)
                ledger.rows_out += 1
                yield row
    except MedcurateError as exc:
        exc.in_file(str(spec.path))
        raise


def _stratum_section(card: CardContributions, per_split: dict[str, Counter], stratify: str) -> None:
    """Rows per stratum (e.g. department) per split, in the stats and as a card table."""
    strata = sorted(set().union(*per_split.values()))
    card.stats[f"rows_per_{stratify}"] = {split: dict(sorted(counter.items())) for split, counter in per_split.items()}
    card.add_section(f"Rows per {stratify} per split",
                     markdown_table([stratify, *per_split], [[name, *(per_split[s][name] for s in per_split)]
                                                             for name in strata]))


def _counts(stages: list[StageLedger], split_counts: dict[str, int]) -> dict[str, Any]:
    rejects: Counter = Counter()
    filtered: Counter = Counter()
    for stage in stages:
        rejects.update(stage.rejected)
        filtered.update(stage.dropped)
    return {
        "inputs_read": sum(s.rows_in for s in stages if s.stage.startswith("source:")),
        "stages": [stage.to_dict() for stage in stages],
        "rejects": dict(sorted(rejects.items())),
        "filtered": dict(sorted(filtered.items())),
        "splits": split_counts,
        "rows_written": sum(split_counts.values()),
    }
