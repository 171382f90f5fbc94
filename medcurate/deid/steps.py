"""The ``deid`` recipe step: the privacy gate every EHR text passes through.

    steps:
      - deid:
          fields: [chief_complaint, present_illness]   # text fields to de-identify in place
          policy: mask                                 # or surrogate / redact, or {default: mask, DATE: surrogate}
          patient_field: patient_id                    # surrogates and date shifts stay consistent per patient
          secret_env: MEDCURATE_DEID_SECRET            # where the surrogate secret is read from
          drop_fields: [姓名, 身份证号, 电话]            # structured identifier columns removed
          replace_fields: {联系人: PERSON}              # structured columns replaced whole by policy
          threshold: 0.5

Counts by type go to the manifest and card; record text never does.
"""
from __future__ import annotations

import os
from collections import Counter

from medcurate.card import markdown_table
from medcurate.deid.engine import DEFAULT_THRESHOLD, SECRET_ENV, Deidentifier, Policy
from medcurate.deid.fields import deidentify_fields
from medcurate.deid.gate import mark_deidentified
from medcurate.errors import MedcurateError
from medcurate.pipeline import Row, StepContext, register_step


@register_step("deid", reads=("<fields>",), writes=("<fields>", "deid"))
def deid_step(rows: list[Row], ctx: StepContext, fields: list[str], policy: str | dict = "mask",
              patient_field: str | None = None, secret_env: str = SECRET_ENV, drop_fields: list[str] | None = None,
              replace_fields: dict[str, str] | None = None, threshold: float = DEFAULT_THRESHOLD) -> list[Row]:
    """De-identify text fields in place (mask, surrogate or redact per type) and stamp each row for the EHR gate."""
    if not fields:
        raise MedcurateError("the deid step needs `fields`: the text fields to de-identify", field="steps.deid.fields")
    parsed = Policy.parse(policy)
    deidentifier = Deidentifier(parsed, secret=os.environ.get(secret_env), threshold=threshold)
    by_type: Counter = Counter()
    rows_changed = 0
    for row in rows:
        patient = str(row.get(patient_field) or "") if patient_field else ""
        changed = False
        for name in drop_fields or ():
            if row.pop(name, None) not in (None, ""):
                by_type["STRUCTURED_FIELD_DROPPED"] += 1
                changed = True
        for name, identifier_type in (replace_fields or {}).items():
            if row.get(name) not in (None, ""):
                row[name] = deidentifier.replacement(str(row[name]), identifier_type, patient)
                by_type[identifier_type] += 1
                changed = True
        for result in deidentify_fields(row, fields, deidentifier, patient).values():
            changed = changed or bool(result.spans)
            by_type.update(span.type for span in result.spans)
        rows_changed += changed
        mark_deidentified(row, [name for name in fields if isinstance(row.get(name), str)], parsed.summary())
    stats = {"policy": parsed.summary(), "rows": len(rows), "rows_changed": rows_changed,
             "identifiers_by_type": dict(sorted(by_type.items()))}
    ctx.card.stats["deid"] = stats
    ctx.card.add_section("De-identification", f"Policy `{parsed.summary()}` over fields {', '.join(fields)}; "
                         f"{rows_changed} of {len(rows)} rows changed.\n\n"
                         + markdown_table(["identifier type", "replaced"], sorted(by_type.items())))
    return rows
