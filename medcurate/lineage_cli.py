"""``medcurate lineage PATH_OR_REF``: the tree an artifact was made from, down to source files."""
from __future__ import annotations

import json

import click

from medcurate.console import store_option
from medcurate.errors import MedcurateError


@click.command("lineage")
@click.argument("path_or_ref")
@click.option("--json", "as_json", is_flag=True, help="Print the tree as JSON.")
@store_option
def lineage_command(path_or_ref, as_json, store):
    """Trace PATH_OR_REF (a run, model, candidates file, evaluation, or NAME@VERSION) to its source files;
    exits non-zero naming the first broken link."""
    from medcurate.lineage import trace

    tree = trace(path_or_ref, store)
    problems = tree.problems()
    if as_json:
        click.echo(json.dumps({"tree": tree.to_dict(), "problems": problems,
                               "source_files": [{"path": node.label, "detail": node.detail}
                                                for node in tree.source_files()]},
                              ensure_ascii=False, indent=2))
    else:
        click.echo("\n".join(tree.render()))
    if problems:
        raise MedcurateError(f"broken lineage: {problems[0]}"
                             + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
