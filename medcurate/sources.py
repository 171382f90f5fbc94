"""Generic source formats: record files whose records already are rows, and published versions.

Options for the file formats (jsonl, json, csv, tsv, parquet):

    fields:   {target_column: source_column}   rename / pick columns (Chinese headers welcome)
    keep:     [column, ...]                     keep only these columns after renaming
    defaults: {column: value}                   fill a column that is absent or empty

The ``dataset`` format reads rows from a published version: ``path: NAME@VERSION``.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from medcurate.pipeline import (
    FileOptions,
    RecordError,
    Row,
    SourceSpec,
    StepContext,
    StringList,
    register_source,
    register_source_reader,
)


def apply_field_options(record: dict[str, Any], options: dict[str, Any]) -> Row:
    """Rename, pick and default columns as the source's options say (a record read from a file
    is a fresh dict, so without those options it is the row)."""
    if not (options.get("fields") or options.get("keep") or options.get("defaults")):
        return record
    mapping = options.get("fields") or {}
    if mapping:
        row = {target: record.get(column) for target, column in mapping.items()}
        missing = [column for column in mapping.values() if column not in record]
        if len(missing) == len(mapping):
            raise RecordError(f"none of the mapped columns present: {', '.join(map(str, missing))}",
                              field=str(missing[0]))
        if options.get("keep_unmapped", False):
            for key, value in record.items():
                if key not in mapping.values() and key not in row:
                    row[key] = value
    else:
        row = dict(record)
    keep = options.get("keep")
    if keep:
        row = {key: row.get(key) for key in keep}
    for key, value in (options.get("defaults") or {}).items():
        if row.get(key) in (None, ""):
            row[key] = value
    return row


def _plain(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    yield apply_field_options(record, spec.options)


for _format in ("jsonl", "json", "csv", "tsv", "parquet"):
    register_source(_format, file_format=_format,
                    doc=f"{_format.upper()} records used as rows; options: fields, keep, defaults.")(_plain)


class DatasetOptions(FileOptions):
    """File options (applied when ``fields`` is given) plus the splits to read (default: all)."""

    splits: StringList | None = None


@register_source_reader("dataset", options=DatasetOptions, path_is_ref=True)
def read_published_version(spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """Rows of a published version, path NAME@VERSION; rows keep their provenance."""
    from medcurate.store import load_rows, resolve

    version = resolve(spec.path, store=ctx.store)
    spec.sha256 = version.manifest_sha256()
    spec.resolved_ref = version.ref
    splits = spec.options.get("splits")
    for split, rows in load_rows(version, store=ctx.store).items():
        if splits and split not in splits:
            continue
        for row in rows:
            ctx.ledger.rows_in += 1
            yield apply_field_options(row, spec.options) if spec.options.get("fields") else row
