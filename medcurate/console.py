"""Shared pieces of every command: the ``--store`` option, progress bars, the end-of-build summary.

Feature CLIs import these instead of writing their own, so every command looks and
behaves the same.
"""
from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from medcurate.store import STORE_ENV

console = Console(stderr=True, highlight=False)


def store_option(function):
    """``--store DIR`` (default ``$MEDCURATE_STORE`` or ``./datasets``)."""
    return click.option("--store", "store", type=click.Path(file_okay=False), envvar=STORE_ENV, default=None,
                        help="Dataset store folder (default $MEDCURATE_STORE or ./datasets).")(function)


class VerbGroup(click.Group):
    """A feature's command group: verbs, plus the short form an earlier issue wrote down
    (``medcurate deid INPUT …`` for ``medcurate deid run INPUT …``, ``medcurate cmedins --cdee …``
    for ``medcurate cmedins build --cdee …``).

    The short form is said in the help, and a first word that is close to a verb name is an
    error naming the verb instead of being taken for an input file."""

    def __init__(self, *args, shorthand: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.shorthand = shorthand

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            self._refuse_misspelled_verb(ctx, args[0])
            args = [self.shorthand, *args]
        return super().parse_args(ctx, args)

    def _refuse_misspelled_verb(self, ctx, word: str) -> None:
        import difflib
        import os

        if word.startswith("-") or os.path.exists(word):
            return
        close = difflib.get_close_matches(word, list(self.commands), n=1, cutoff=0.6)
        if close:
            ctx.fail(f"no verb {word!r} (did you mean {close[0]!r}?)")


class RichProgress:
    """A progress bar for a stage with many rows; silent when stderr is not a terminal."""

    def __init__(self, label: str, total: int | None):
        self._progress = None
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task(label, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def print_build_summary(manifest: dict[str, Any], path: str) -> None:
    """One screen: rows per split, rejects by reason, filters, version id and path."""
    counts = manifest["counts"]
    table = Table(title=f"{manifest['name']}@{manifest['version']}  ({manifest['kind']})", show_header=True)
    table.add_column("what")
    table.add_column("rows", justify="right")
    table.add_row("records read", str(counts["inputs_read"]))
    for split in manifest["splits"]:
        table.add_row(f"split {split}", str(counts["splits"][split]))
    for name, number in counts["filtered"].items():
        table.add_row(f"filtered: {name}", str(number))
    for reason, number in counts["rejects"].items():
        table.add_row(f"rejected: {reason}", str(number))
    console.print(table)
    for note in manifest.get("split_notes", []):
        console.print(f"note: {note}")
    console.print(f"published {manifest['name']}@{manifest['version']} -> {path}")
    click.echo(f"{manifest['name']}@{manifest['version']}")


def run_recipe_mapping(mapping: dict[str, Any], *, origin: str, store: str | None) -> Any:
    """What every one-shot command does: build the recipe mapping its feature's ``recipes.py``
    made, with a progress bar, and print the summary. Returns the ``BuildResult``."""
    from medcurate.build import build_mapping

    result = build_mapping(mapping, origin=origin, store=store, progress=RichProgress)
    print_build_summary(result.manifest, str(result.version.path))
    return result
