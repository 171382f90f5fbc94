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
