"""``medcurate build``, ``medcurate datasets …`` and ``medcurate steps``."""
from __future__ import annotations

import json

import click

from medcurate.console import RichProgress, console, print_build_summary, store_option
from medcurate.errors import MedcurateError


@click.command("build")
@click.argument("recipe", type=click.Path(dir_okay=False))
@store_option
@click.option("--engine", type=click.Choice(["local", "memory", "ray"]), default="local", show_default=True,
              help="local: streaming in bounded memory; memory: every row held at once; ray: Ray Data.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes for row-local steps (deid, filters) on the local engine; same output.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Rows per batch (memory use; the output does not depend on it).")
@click.option("--ray-address", default=None, help="Join this Ray cluster (engine ray) instead of starting one.")
@click.option("--num-cpus", type=click.IntRange(min=1), default=None,
              help="CPUs of the local Ray started for engine ray (default: all).")
def build_command(recipe, store, engine, workers, batch_size, ray_address, num_cpus):
    """Run RECIPE (YAML) and publish an immutable dataset version."""
    from medcurate.build import build
    from medcurate.engines.local import DEFAULT_BATCH_SIZE
    from medcurate.recipe import load_recipe

    result = build(load_recipe(recipe), store=store, progress=RichProgress, engine=engine, workers=workers,
                   batch_size=batch_size or DEFAULT_BATCH_SIZE, ray_address=ray_address, num_cpus=num_cpus)
    print_build_summary(result.manifest, str(result.version.path))


@click.command("steps")
def steps_command():
    """List the registered source formats and steps with the columns they read and write."""
    from medcurate.pipeline import source_formats, steps

    click.echo("source formats:")
    for name, info in source_formats().items():
        click.echo(f"  {name:<22} {_summary(info.doc)}")
    click.echo("steps:")
    for name, info in steps().items():
        reads = ", ".join(info.reads) or "-"
        writes = ", ".join(info.writes) or "-"
        kind = "row-local" if info.kind == "row_local" else ", ".join(
            ["whole-pass", *(["bounded"] if info.bounded else []),
             *(f"row-local {phase}" for phase in ("prepare", "complete") if getattr(info, phase))])
        click.echo(f"  {name:<22} ({kind}) reads [{reads}] writes [{writes}]  {_summary(info.doc)}")


def _summary(doc: str) -> str:
    """The first paragraph of a docstring on one line."""
    return " ".join(doc.split("\n\n", 1)[0].split())


@click.group("datasets")
def datasets_group():
    """List, inspect, compare, export and validate dataset versions."""


@datasets_group.command("list")
@store_option
def list_command(store):
    """Every dataset in the store with its versions (newest last)."""
    from medcurate.store import list_datasets, resolve

    found = list_datasets(store)
    if not found:
        click.echo("no datasets")
        return
    for name, publications in found.items():
        seen = []
        for entry in publications:
            if entry["version"] not in seen:
                seen.append(entry["version"])
        for version in seen:
            latest = "  (latest)" if version == publications[-1]["version"] else ""
            try:
                manifest = resolve(f"{name}@{version}", store).manifest
                splits = " ".join(f"{s}={manifest['counts']['splits'][s]}" for s in manifest["splits"])
                kind = manifest["kind"]
            except (MedcurateError, KeyError, TypeError):
                click.echo(f"{name}@{version}  DAMAGED: manifest.json cannot be read{latest}")
                continue
            click.echo(f"{name}@{version}  {kind:<12} {splits}{latest}")


@datasets_group.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the whole manifest as JSON.")
@store_option
def show_command(ref, as_json, store):
    """Show a version's manifest summary (NAME[@VERSION], default latest) and verify its files."""
    from medcurate.store import resolve, verify

    version = resolve(ref, store)
    manifest = version.manifest
    if as_json:
        click.echo(json.dumps(manifest, ensure_ascii=False, indent=2))
        return
    counts = manifest["counts"]
    click.echo(f"{version.ref}  kind={manifest['kind']}  path={version.path}")
    click.echo(f"records read: {counts['inputs_read']}  rows written: {counts['rows_written']}")
    click.echo("splits: " + ", ".join(f"{s}={counts['splits'][s]}" for s in manifest["splits"]))
    for source in manifest["sources"]:
        click.echo(f"source {source['name']}: {source['file']} ({source['format']}) sha256={source['sha256']}")
    if counts["filtered"]:
        click.echo("filtered: " + ", ".join(f"{k}={v}" for k, v in counts["filtered"].items()))
    if counts["rejects"]:
        click.echo("rejects: " + ", ".join(f"{k}={v}" for k, v in counts["rejects"].items()))
    problems = verify(version, store)
    click.echo("verified: files and counts match the manifest" if not problems else "PROBLEMS:\n  " + "\n  ".join(problems))
    if problems:
        raise SystemExit(1)


@datasets_group.command("diff")
@click.argument("first")
@click.argument("second")
@store_option
def diff_command(first, second, store):
    """Compare two versions: sources, recipe, counts and rows added/removed per split."""
    from medcurate.diff import diff_versions

    click.echo(diff_versions(first, second, store))


@datasets_group.command("overlap")
@click.argument("first")
@click.argument("second")
@click.option("--ngram", default=13, show_default=True, help="Length of the shared character n-gram.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@store_option
def overlap_command(first, second, ngram, as_json, store):
    """Rows of FIRST sharing a long character n-gram with rows of SECOND (contamination), per split pair."""
    from medcurate.quality.overlap import version_overlap

    report = version_overlap(first, second, store, ngram)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    click.echo(f"{report['first']} vs {report['second']}: shared character {ngram}-grams")
    for pair in report["splits"]:
        click.echo(f"  {pair['first_split']} ({pair['first_rows']} rows) x {pair['second_split']} "
                   f"({pair['second_rows']} rows): {pair['first_rows_overlapping']} rows of the first overlap, "
                   f"{pair['second_rows_hit']} rows of the second hit"
                   + (f"; e.g. {', '.join(pair['example_ids'])}" if pair["example_ids"] else ""))


@datasets_group.command("export")
@click.argument("ref")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "alpaca", "sharegpt", "trl"]), required=True)
@click.option("--out", "out", type=click.Path(file_okay=False), required=True)
@click.option("--system-prompt", default=None,
              help="System turn for rows that have none (trl, sharegpt, alpaca), as `medcurate train` takes it.")
@store_option
def export_command(ref, fmt, out, system_prompt, store):
    """Export a version for other tools (LLaMA-Factory's alpaca/sharegpt, TRL, plain JSONL).

    Written all or nothing; dataset_info.json entries (NAME@VERSION_SPLIT) are merged into the folder's own."""
    from medcurate.export import export_version

    written = export_version(ref, fmt, out, store=store, system_prompt=system_prompt)
    for path in written:
        click.echo(str(path))


@datasets_group.command("validate")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--kind", "kind", type=click.Choice(["instruction", "conversation", "ehr", "preference", "alpaca",
                                                   "sharegpt", "auto"]), default="auto", show_default=True)
@click.option("--encoding", default=None, help="File encoding (default UTF-8 with BOM detection).")
def validate_command(path, kind, encoding):
    """Check a JSONL/JSON/CSV/Parquet file against a row kind; every problem as file:line:field."""
    from medcurate.validate import validate_file

    report = validate_file(path, kind=kind, encoding=encoding)
    for problem in report.problems:
        click.echo(problem)
    summary = f"{path}: {report.rows} rows checked as {report.kind}, {len(report.problems)} problem(s)"
    if report.problems:
        console.print(summary)
        raise SystemExit(1)
    click.echo(summary)
