"""The ``deid`` recipe step: the privacy gate every EHR text passes through.

    steps:
      - deid:
          policy: mask                                 # or surrogate / redact, or {default: mask, DATE: surrogate}
          threshold: 0.5                               # in [0, 1]; EHR versions refuse anything above 0.5
          fields: [chief_complaint, present_illness]   # optional: columns that must be present (all are scanned)
          passthrough: [note_template_id]              # columns kept unscanned on purpose (EHR versions refuse them)
          identifier_columns: [工号]                    # more identifier-named columns (dropped, keys pseudonymised)
          patient_field: patient_id                    # surrogates and date shifts stay consistent per patient
          secret_env: MEDCURATE_DEID_SECRET            # the user's secret (surrogates, stable pseudonyms)
          drop_fields: [备注人]                          # columns removed whatever their name
          replace_fields: {联系人: PERSON}              # columns replaced whole by policy

Every column is looked at: identifier-named ones (medcurate/deid/columns.py) are dropped, or become a
keyed pseudonym when they key a patient (patient_id, 病案号 …); every other text column is scanned.
Counts by type go to the manifest and card; record text never does.
"""
from __future__ import annotations

import os
from collections import Counter

from medcurate.card import markdown_table
from medcurate.deid.engine import DEFAULT_THRESHOLD, SECRET_ENV, Deidentifier, Policy
from medcurate.deid.gate import mark_deidentified
from medcurate.deid.records import ColumnPlan, deidentify_record
from medcurate.errors import MedcurateError
from medcurate.pipeline import ROW_LOCAL, Row, StepContext, register_step


def _names(value, where: str) -> list[str]:
    """A list of column names; one name written as a string is one column, never its characters."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return list(value)
    raise MedcurateError("expected a column name or a list of column names", field=where)


def _deid_summary(stats: dict, card, fields: list[str] | str | None = None, policy: str | dict = "mask",
                  secret_env: str = SECRET_ENV, threshold: float = DEFAULT_THRESHOLD, **_: object) -> None:
    """The whole step's checks, stats and card section, from the batches' counts added up: a
    required column no row had, or pseudonyms without the user's secret, refuse the build."""
    batches = stats["deid"]
    absent = [name for name in _names(fields, "steps.deid.fields") if not batches["present"].get(name)]
    if batches["rows"] and absent:
        raise MedcurateError(f"no row has column {absent[0]!r}", field="steps.deid.fields")
    columns = {kind: sorted(batches["columns"].get(kind, {})) for kind in _COLUMN_KINDS}
    if columns["pseudonymised"] and not batches["stable_pseudonyms"]:
        raise MedcurateError(f"pseudonymising {', '.join(columns['pseudonymised'])} in a dataset version needs "
                             f"the user's secret, or the version would differ on every build: set ${secret_env} "
                             "(keep it out of the repository)", field="steps.deid.secret_env")
    summary = Policy.parse(policy).summary()
    by_type = {name: count for name, count in sorted(batches["identifiers_by_type"].items()) if count}
    card.stats["deid"] = {"policy": summary, "threshold": threshold, "rows": batches["rows"],
                          "rows_changed": batches["rows_changed"], "identifiers_by_type": by_type, "columns": columns,
                          "stable_pseudonyms": batches["stable_pseudonyms"]}
    card.add_section("De-identification", f"Policy `{summary}`, threshold {threshold}, over every column "
                     f"({', '.join(columns['scanned']) or 'none'} scanned; "
                     f"{', '.join(columns['dropped']) or 'none'} dropped; "
                     f"{', '.join(columns['pseudonymised']) or 'none'} pseudonymised; "
                     f"{', '.join(columns['passthrough']) or 'none'} kept unscanned); "
                     f"{batches['rows_changed']} of {batches['rows']} rows changed.\n\n"
                     + markdown_table(["identifier type", "replaced"], [[name, count] for name, count in by_type.items()]))


_COLUMN_KINDS = ("scanned", "dropped", "pseudonymised", "passthrough")


@register_step("deid", kind=ROW_LOCAL, reads=("*",), writes=("*", "deid"), summary=_deid_summary)
def deid_step(rows: list[Row], ctx: StepContext, fields: list[str] | str | None = None, policy: str | dict = "mask",
              patient_field: str | None = None, secret_env: str = SECRET_ENV,
              drop_fields: list[str] | str | None = None, replace_fields: dict[str, str] | None = None,
              threshold: float = DEFAULT_THRESHOLD, passthrough: list[str] | str | None = None,
              identifier_columns: list[str] | str | None = None) -> list[Row]:
    """De-identify every column (mask, surrogate or redact per type) and stamp each row for the gate.
    Each row is treated on its own (surrogates and pseudonyms are keyed, not remembered), so the
    step runs batch by batch, in worker processes with ``--workers`` or on Ray."""
    required = _names(fields, "steps.deid.fields")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
        raise MedcurateError("threshold must be a number between 0 and 1", field="steps.deid.threshold")
    try:
        parsed = Policy.parse(policy)
    except MedcurateError as exc:
        raise MedcurateError(exc.message, field=f"steps.deid.{exc.field or 'policy'}") from None
    if parsed.uses_surrogates and not os.environ.get(secret_env):
        raise MedcurateError(f"the surrogate policy needs a secret: set ${secret_env} (keep it out of the repository)",
                             field="steps.deid.secret_env")
    if replace_fields is not None and not isinstance(replace_fields, dict):
        raise MedcurateError("expected a mapping of column -> identifier type", field="steps.deid.replace_fields")
    deidentifier = Deidentifier(parsed, secret=os.environ.get(secret_env), threshold=threshold)
    plan = ColumnPlan(deidentifier, passthrough=frozenset(_names(passthrough, "steps.deid.passthrough")),
                      extra_identifier_columns=tuple(_names(identifier_columns, "steps.deid.identifier_columns")),
                      drop_columns=tuple(_names(drop_fields, "steps.deid.drop_fields")),
                      replace_columns=dict(replace_fields or {}), patient_field=patient_field)
    by_type: Counter = Counter()
    columns: dict[str, Counter] = {kind: Counter() for kind in _COLUMN_KINDS}
    present = Counter({name: sum(1 for row in rows if name in row) for name in required})
    rows_changed = 0
    for row in rows:
        outcome = deidentify_record(row, plan)
        by_type.update(outcome.by_type)
        by_type["STRUCTURED_FIELD_DROPPED"] += len(outcome.dropped)
        for kind in _COLUMN_KINDS:
            columns[kind].update(getattr(outcome, kind))
        rows_changed += outcome.changed
        mark_deidentified(row, outcome.scanned, parsed.summary(), threshold=threshold,
                          pseudonymised=outcome.pseudonymised, passthrough=outcome.passthrough)
    # per batch, in a form that adds up over batches (see _deid_summary)
    ctx.card.stats["deid"] = {"rows": len(rows), "rows_changed": rows_changed, "identifiers_by_type": dict(by_type),
                              "columns": {kind: dict(names) for kind, names in columns.items()},
                              "present": dict(present), "stable_pseudonyms": deidentifier.stable_pseudonyms}
    return rows
