"""The recipe ``medcurate ehr pairs`` runs, as a mapping any Python caller can build and run
(``medcurate.build.build_mapping``)."""
from __future__ import annotations

from pathlib import Path

from medcurate.ehr.records import TEXT_FIELDS
from medcurate.errors import MedcurateError

# file extension -> source format, when the caller does not name one.
FORMATS_BY_SUFFIX = {".jsonl": "ehr", ".csv": "ehr_csv", ".json": "cmb_clin"}


def record_format(path: str, fmt: str | None = None) -> str:
    """The source format of an EHR file: ``fmt`` when given, else from the extension."""
    fmt = fmt or FORMATS_BY_SUFFIX.get(Path(path).suffix.lower())
    if fmt is None:
        raise MedcurateError("cannot tell the record format from the extension; give --format", file=path)
    return fmt


def ehr_pairs_recipe(path: str, name: str, fmt: str | None, fields: dict[str, str], validation: float, test: float,
                     seed: int = 42) -> dict:
    """Source -> deid -> ehr_pairs, splits by department and grouped by patient."""
    options = {"fields": fields} if fields else {}
    return {"name": name, "kind": "ehr", "seed": seed,
            "description": "EHR input -> diagnosis pairs (ClinicalGPT MD-EHR), de-identified.",
            "sources": [{"name": "records", "path": path, "format": record_format(path, fmt), "options": options}],
            "steps": [{"deid": {"fields": list(TEXT_FIELDS)}}, "ehr_pairs"],
            "splits": {"seed": seed, "validation": validation, "test": test, "stratify": "department",
                       "group": "patient_id", "max_fraction": 0.1}}
