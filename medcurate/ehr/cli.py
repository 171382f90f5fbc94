"""``medcurate ehr pairs``: EHR records -> de-identified diagnosis pairs in one shot."""
from __future__ import annotations

import click

from medcurate.console import run_recipe_mapping, store_option
from medcurate.ehr.records import FIELD_ALIASES


@click.group("ehr")
def ehr():
    """EHR records -> diagnosis pairs (behind the de-identification gate)."""


@ehr.command("pairs")
@click.argument("records", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Name of the dataset to publish.")
@click.option("--format", "fmt", type=click.Choice(["ehr", "ehr_csv", "cmb_clin"]), default=None,
              help="Record format (default from the extension: .jsonl ehr, .csv ehr_csv, .json cmb_clin).")
@click.option("--field", "fields", multiple=True, metavar="FIELD=COLUMN",
              help=f"Map a column, e.g. diagnosis=出院诊断. Fields: {', '.join(FIELD_ALIASES)}.")
@click.option("--validation", default=2000.0, show_default=True, type=float, help="Held-out rows (or fraction).")
@click.option("--test", default=2000.0, show_default=True, type=float, help="Held-out rows (or fraction).")
@store_option
def pairs(records, name, fmt, fields, validation, test, store):
    """Read RECORDS, de-identify every text field, and publish input -> diagnosis pairs."""
    from medcurate.ehr.recipes import ehr_pairs_recipe
    from medcurate.errors import MedcurateError

    mapping = {}
    for item in fields:
        key, sep, column = item.partition("=")
        if not sep or not key or not column:
            raise MedcurateError(f"--field expects FIELD=COLUMN, got {item!r}", field="--field")
        mapping[key.strip()] = column.strip()
    run_recipe_mapping(ehr_pairs_recipe(records, name, fmt, mapping, validation, test),
                       origin="medcurate ehr pairs", store=store)
