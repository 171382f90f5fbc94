"""``medcurate ehr pairs``: EHR records -> de-identified diagnosis pairs in one shot."""
from __future__ import annotations

from pathlib import Path

import click

from medcurate.console import RichProgress, print_build_summary, store_option
from medcurate.ehr.records import FIELD_ALIASES, TEXT_FIELDS

FORMATS = {".jsonl": "ehr", ".csv": "ehr_csv", ".json": "cmb_clin"}


def ehr_pairs_recipe(path: str, name: str, fmt: str, fields: dict[str, str], validation: float, test: float,
                     seed: int = 42) -> dict:
    """The recipe mapping ``medcurate ehr pairs`` runs: source -> deid -> ehr_pairs, splits by department."""
    options = {"fields": fields} if fields else {}
    return {"name": name, "kind": "ehr", "seed": seed,
            "description": "EHR input -> diagnosis pairs (ClinicalGPT MD-EHR), de-identified.",
            "sources": [{"name": "records", "path": path, "format": fmt, "options": options}],
            "steps": [{"deid": {"fields": list(TEXT_FIELDS)}}, "ehr_pairs"],
            "splits": {"seed": seed, "validation": validation, "test": test, "stratify": "department",
                       "group": "patient_id", "max_fraction": 0.1}}


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
    from medcurate.build import build
    from medcurate.errors import MedcurateError
    from medcurate.recipe import recipe_from_dict

    mapping = {}
    for item in fields:
        key, sep, column = item.partition("=")
        if not sep or not key or not column:
            raise MedcurateError(f"--field expects FIELD=COLUMN, got {item!r}", field="--field")
        mapping[key.strip()] = column.strip()
    fmt = fmt or FORMATS.get(Path(records).suffix.lower())
    if fmt is None:
        raise MedcurateError("cannot tell the record format from the extension; give --format", file=records)
    recipe = recipe_from_dict(ehr_pairs_recipe(records, name, fmt, mapping, validation, test),
                              base_dir=Path.cwd(), origin="medcurate ehr pairs")
    result = build(recipe, store=store, progress=RichProgress)
    print_build_summary(result.manifest, str(result.version.path))
