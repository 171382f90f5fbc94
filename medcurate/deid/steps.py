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
from medcurate.pipeline import Row, StepContext, register_step


def _names(value, where: str) -> list[str]:
    """A list of column names; one name written as a string is one column, never its characters."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return list(value)
    raise MedcurateError("expected a column name or a list of column names", field=where)


@register_step("deid", reads=("*",), writes=("*", "deid"))
def deid_step(rows: list[Row], ctx: StepContext, fields: list[str] | str | None = None, policy: str | dict = "mask",
              patient_field: str | None = None, secret_env: str = SECRET_ENV,
              drop_fields: list[str] | str | None = None, replace_fields: dict[str, str] | None = None,
              threshold: float = DEFAULT_THRESHOLD, passthrough: list[str] | str | None = None,
              identifier_columns: list[str] | str | None = None) -> list[Row]:
    """De-identify every column (mask, surrogate or redact per type) and stamp each row for the gate."""
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
    if rows and required:
        absent = [name for name in required if not any(name in row for row in rows)]
        if absent:
            raise MedcurateError(f"no row has column {absent[0]!r}", field="steps.deid.fields")
    deidentifier = Deidentifier(parsed, secret=os.environ.get(secret_env), threshold=threshold)
    plan = ColumnPlan(deidentifier, passthrough=frozenset(_names(passthrough, "steps.deid.passthrough")),
                      extra_identifier_columns=tuple(_names(identifier_columns, "steps.deid.identifier_columns")),
                      drop_columns=tuple(_names(drop_fields, "steps.deid.drop_fields")),
                      replace_columns=dict(replace_fields or {}), patient_field=patient_field)
    by_type: Counter = Counter()
    columns: dict[str, set[str]] = {"scanned": set(), "dropped": set(), "pseudonymised": set(), "passthrough": set()}
    rows_changed = 0
    for row in rows:
        outcome = deidentify_record(row, plan)
        by_type.update(outcome.by_type)
        by_type["STRUCTURED_FIELD_DROPPED"] += len(outcome.dropped)
        for kind in columns:
            columns[kind].update(getattr(outcome, kind))
        rows_changed += outcome.changed
        mark_deidentified(row, outcome.scanned, parsed.summary(), threshold=threshold,
                          pseudonymised=outcome.pseudonymised, passthrough=outcome.passthrough)
    if columns["pseudonymised"] and not deidentifier.stable_pseudonyms:
        raise MedcurateError(f"pseudonymising {', '.join(sorted(columns['pseudonymised']))} in a dataset version needs "
                             f"the user's secret, or the version would differ on every build: set ${secret_env} "
                             "(keep it out of the repository)", field="steps.deid.secret_env")
    by_type = Counter({name: count for name, count in by_type.items() if count})
    stats = {"policy": parsed.summary(), "threshold": threshold, "rows": len(rows), "rows_changed": rows_changed,
             "identifiers_by_type": dict(sorted(by_type.items())),
             "columns": {kind: sorted(names) for kind, names in columns.items()},
             "stable_pseudonyms": deidentifier.stable_pseudonyms}
    ctx.card.stats["deid"] = stats
    ctx.card.add_section("De-identification", f"Policy `{parsed.summary()}`, threshold {threshold}, over every column "
                         f"({', '.join(sorted(columns['scanned'])) or 'none'} scanned; "
                         f"{', '.join(sorted(columns['dropped'])) or 'none'} dropped; "
                         f"{', '.join(sorted(columns['pseudonymised'])) or 'none'} pseudonymised; "
                         f"{', '.join(sorted(columns['passthrough'])) or 'none'} kept unscanned); "
                         f"{rows_changed} of {len(rows)} rows changed.\n\n"
                         + markdown_table(["identifier type", "replaced"], [[name, count] for name, count in sorted(by_type.items())]))
    return rows
