"""Running a recipe: sources -> steps -> schema check -> splits -> a published version.

Every stage keeps a ledger (rows in, out, dropped by filter, rejected by reason, merged,
created) and the build stops with a ConservationError when one does not add up, so no
record is ever lost without a trace.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import medcurate
from medcurate.card import markdown_table, render_card
from medcurate.errors import ConservationError, MedcurateError
from medcurate.pipeline import (
    CardContributions,
    RecordError,
    Reject,
    Row,
    SourceSpec,
    StageLedger,
    StepContext,
    get_source_format,
    get_step,
    publish_checks,
)
from medcurate.privacy import version_privacy
from medcurate.readers import Malformed, file_sha256, iter_records
from medcurate.recipe import Recipe, recipe_from_dict
from medcurate.schemas import row_kind, stable_row_id
from medcurate.splits import assign_splits
from medcurate.store import Version, check_counts, publish, rows_to_tables, store_path

ProgressFactory = Callable[[str, int | None], Any]


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


def build(recipe: Recipe, store: str | Path | None = None, progress: ProgressFactory | None = None) -> BuildResult:
    """Run a recipe and publish its version; raises MedcurateError on bad input."""
    progress = progress or _NoProgress
    root = store_path(store)
    rejects: list[Reject] = []
    card = CardContributions()
    stages: list[StageLedger] = []
    sources_meta: list[dict[str, Any]] = []

    rows: list[Row] = []
    for spec in recipe.sources:
        ctx = StepContext(f"source:{spec.name}", base_dir=recipe.base_dir, store=root, seed=recipe.seed,
                          rejects=rejects, card=card)
        produced = _read_source(spec, ctx, progress)
        ctx.ledger.rows_out = len(produced)
        ctx.ledger.check()
        stages.append(ctx.ledger)
        rows.extend(produced)
        sources_meta.append({"name": spec.name, "path": spec.path,
                             "file": spec.resolved_ref or Path(spec.path).name,
                             **({"version": spec.resolved_ref} if spec.resolved_ref else {}), "format": spec.format, "encoding": spec.encoding, "options": spec.options,
                             "sha256": spec.sha256, "records": ctx.ledger.rows_in, "rows": ctx.ledger.rows_out})

    for call in recipe.steps:
        info = get_step(call.name)
        ctx = StepContext(call.name, base_dir=recipe.base_dir, store=root, seed=recipe.seed,
                          rejects=rejects, card=card)
        ctx.ledger.rows_in = len(rows)
        bar = progress(f"step {call.name}", None)
        try:
            rows = info.function(rows, ctx, **call.params)
        except TypeError as exc:
            if "argument" in str(exc) and info.function.__name__ in str(exc):
                raise MedcurateError(f"bad parameters for step {call.name!r}: {exc}", file=recipe.origin,
                                     field=f"steps.{call.name}") from None
            raise
        finally:
            bar.close()
        ctx.ledger.rows_out = len(rows)
        ctx.ledger.check()
        stages.append(ctx.ledger)

    ctx = StepContext("schema", base_dir=recipe.base_dir, store=root, seed=recipe.seed, rejects=rejects, card=card)
    ctx.ledger.rows_in = len(rows)
    rows = _check_schema(rows, recipe.kind, ctx)
    ctx.ledger.rows_out = len(rows)
    ctx.ledger.check()
    stages.append(ctx.ledger)

    for check in publish_checks(recipe.kind):
        check(rows)
    splits, split_notes = assign_splits(rows, recipe.splits)
    if recipe.splits.stratify:
        _stratum_section(card, splits, recipe.splits.stratify)
    tables, json_columns = rows_to_tables(splits)
    counts = _counts(stages, splits)
    check_counts(counts)
    manifest = {
        "name": recipe.name,
        "kind": recipe.kind,
        "description": recipe.description,
        "license": recipe.license,
        "medcurate_version": medcurate.__version__,
        "recipe": recipe.as_written(),
        "sources": [{k: v for k, v in meta.items() if k != "path"} for meta in sources_meta],
        "counts": counts,
        "splits": list(splits),
        "split_config": recipe.splits.to_dict(),
        "split_notes": split_notes,
        "json_columns": json_columns,
        "columns": {split: table.schema.names for split, table in tables.items()}.get("train", []),
        "stats": card.stats,
        "card_sections": [[title, body] for title, body in card.sections],
        "privacy": version_privacy(rows, card.stats.get("deid")),
    }
    version = publish(recipe.name, manifest, tables, [r.to_dict() for r in rejects], render_card,
                      artifacts=card.artifacts, store=root)
    write_version_lineage(version, recipe, recipe.sources, root)
    return BuildResult(version, version.manifest)


def write_version_lineage(version: Version, recipe: Recipe, sources: list[SourceSpec], store: Path) -> None:
    """``lineage.json`` beside the manifest: every source by absolute path and sha256, or by the
    version id it read. Not one of the hashed files: it names local paths, the version id must not."""
    from medcurate.lineage import file_link, record, version_link, write_lineage
    from medcurate.store import resolve

    inputs: list[dict[str, Any]] = []
    for spec in sources:
        if spec.resolved_ref:
            inputs.append(version_link(resolve(spec.resolved_ref, store), store))
        elif spec.resolved_path is not None and spec.resolved_path.is_file():
            inputs.append(file_link(spec.resolved_path))
        inputs.extend(spec.lineage_inputs)
    write_lineage(version.path, record("dataset_version", inputs, ref=version.ref,
                                       manifest_sha256=version.manifest_sha256(), recipe_origin=recipe.origin,
                                       recipe=version.manifest.get("recipe")))


def build_mapping(mapping: dict[str, Any], *, origin: str, store: str | Path | None = None,
                  progress: ProgressFactory | None = None, base_dir: Path | None = None) -> BuildResult:
    """Check a recipe given as a mapping (what ``<feature>/recipes.py`` returns) and build it;
    relative paths resolve against ``base_dir`` (default: the working directory)."""
    recipe = recipe_from_dict(mapping, base_dir=base_dir or Path.cwd(), origin=origin)
    return build(recipe, store=store, progress=progress)


def _read_source(spec: SourceSpec, ctx: StepContext, progress: ProgressFactory) -> list[Row]:
    source_format = get_source_format(spec.format)
    if source_format.reader is not None:
        return list(source_format.reader(spec, ctx))
    path = ctx.resolve_path(spec.path)
    if not path.exists():
        raise MedcurateError(f"source file not found (looked for {path})", file=str(spec.path),
                             field=f"sources.{spec.name}.path")
    if path.is_dir():
        raise MedcurateError("source path is a folder, expected a file", file=str(spec.path))
    spec.resolved_path = path
    spec.sha256 = file_sha256(path)
    display = Path(spec.path).name
    rows: list[Row] = []
    bar = progress(f"read {spec.name}", None)
    try:
        for item in iter_records(path, source_format.file_format, spec.encoding, spec.options.get("delimiter")):
            ctx.ledger.rows_in += 1
            bar.advance()
            location = {"name": spec.name, "file": display, "line": item.line, "sha256": spec.sha256}
            if isinstance(item, Malformed):
                ctx.reject({"source": location}, item.reason, item.field)
                continue
            declared_before = _declared(ctx.ledger)
            try:
                produced = list(source_format.parse(item.data, spec, ctx))
            except RecordError as exc:
                ctx.reject({"source": location}, exc.reason, exc.field)
                continue
            if not produced:
                if _declared(ctx.ledger) == declared_before:
                    raise ConservationError(f"source format {spec.format!r} returned no row for a record without "
                                            f"declaring why", file=display, line=item.line)
            if len(produced) > 1:
                ctx.created(len(produced) - 1)
            for row in produced:
                row.setdefault("source", location)
                rows.append(row)
    except MedcurateError as exc:
        if exc.file is None:
            exc.file = str(spec.path)
            exc.args = (exc.format(),)
        raise
    finally:
        bar.close()
    return rows


def _stratum_section(card: CardContributions, splits: dict[str, list[Row]], stratify: str) -> None:
    """Rows per stratum (e.g. department) per split, in the stats and as a card table."""
    per_split = {split: Counter(str(row.get(stratify) or "(none)") for row in rows) for split, rows in splits.items()}
    strata = sorted(set().union(*per_split.values()))
    card.stats[f"rows_per_{stratify}"] = {split: dict(sorted(counter.items())) for split, counter in per_split.items()}
    card.add_section(f"Rows per {stratify} per split",
                     markdown_table([stratify, *per_split], [[name, *(per_split[s][name] for s in per_split)]
                                                             for name in strata]))


def _declared(ledger: StageLedger) -> int:
    return sum(ledger.dropped.values()) + sum(ledger.rejected.values()) + ledger.merged


def _check_schema(rows: list[Row], kind_name: str, ctx: StepContext) -> list[Row]:
    kind = row_kind(kind_name)
    valid: list[Row] = []
    for row in rows:
        problems = kind.problems(row)
        if problems:
            field, message = problems[0]
            ctx.reject(row, f"schema: {field} {message}", field)
            continue
        if not row.get("id"):
            row["id"] = stable_row_id(row, kind)
        valid.append(row)
    return valid


def _counts(stages: list[StageLedger], splits: dict[str, list[Row]]) -> dict[str, Any]:
    rejects: Counter = Counter()
    filtered: Counter = Counter()
    for stage in stages:
        rejects.update(stage.rejected)
        filtered.update(stage.dropped)
    split_counts = {split: len(rows) for split, rows in splits.items()}
    return {
        "inputs_read": sum(s.rows_in for s in stages if s.stage.startswith("source:")),
        "stages": [stage.to_dict() for stage in stages],
        "rejects": dict(sorted(rejects.items())),
        "filtered": dict(sorted(filtered.items())),
        "splits": split_counts,
        "rows_written": sum(split_counts.values()),
    }
