"""``medcurate deid INPUT --field text … --out OUT.jsonl --spans SPANS.jsonl --report REPORT.json``
and ``medcurate deid check OUT.jsonl --field text``.

Outputs and reports name record ids, types, offsets and counts, never identifier text.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click

from medcurate.console import VerbGroup, console
from medcurate.errors import MedcurateError


def _parse_policy(value: str):
    """``mask`` or ``default=mask,PERSON=surrogate,DATE=surrogate``."""
    if "=" not in value:
        return value
    mapping = {}
    for part in value.split(","):
        key, _, choice = part.partition("=")
        mapping[key.strip()] = choice.strip()
    return mapping


def _records(path: str, encoding: str | None):
    from medcurate.readers import Malformed, guess_format, iter_records

    fmt = guess_format(path)
    if fmt not in ("jsonl", "json", "csv", "tsv"):
        raise MedcurateError("expected a JSONL or CSV file", file=path)
    yield from ((item.line, None if isinstance(item, Malformed) else item.data,
                 item.reason if isinstance(item, Malformed) else None) for item in iter_records(path, fmt, encoding))


@click.group("deid", cls=VerbGroup, shorthand="run")
def deid():
    """Chinese clinical de-identification: `run` a file, `check` an output.

    `medcurate deid INPUT --field text --out ...` is short for `medcurate deid run INPUT ...`."""


@deid.command("run")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--field", "fields", multiple=True, required=True, help="Text field to de-identify (repeatable).")
@click.option("--id-field", default="id", show_default=True, help="Record id field (the line number when absent).")
@click.option("--policy", default="mask", show_default=True,
              help="mask, surrogate, redact, or per type: default=mask,PERSON=surrogate,DATE=surrogate")
@click.option("--patient-field", default=None, help="Field naming the patient, for consistent surrogates.")
@click.option("--secret-env", default="MEDCURATE_DEID_SECRET", show_default=True,
              help="Environment variable holding the surrogate secret.")
@click.option("--threshold", type=float, default=0.5, show_default=True, help="Minimum score to replace a span.")
@click.option("--encoding", default=None, help="Input encoding (default UTF-8 with BOM detection).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True)
@click.option("--spans", "spans_path", type=click.Path(dir_okay=False), required=True)
@click.option("--report", "report_path", type=click.Path(dir_okay=False), required=True)
def run_command(input_path, fields, id_field, policy, patient_field, secret_env, threshold, encoding, out_path,
                spans_path, report_path):
    """De-identify FIELD of every record in INPUT (JSONL or CSV)."""
    import os

    from medcurate.deid.engine import Deidentifier
    from medcurate.deid.fields import deidentify_fields

    deidentifier = Deidentifier(_parse_policy(policy), secret=os.environ.get(secret_env), threshold=threshold)
    by_type: Counter = Counter()
    kept_low: Counter = Counter()
    rejects, records, changed = [], 0, 0
    with open(out_path, "w", encoding="utf-8") as out, open(spans_path, "w", encoding="utf-8") as spans_file:
        for line, record, problem in _records(input_path, encoding):
            records += 1
            if record is None:
                rejects.append({"line": line, "reason": problem.split(":", 1)[0]})
                continue
            record_id = record.get(id_field, line)
            patient = str(record.get(patient_field) or "") if patient_field else ""
            for name in fields:
                if record.get(name) is None:
                    rejects.append({"line": line, "id": record_id, "field": name, "reason": "missing field"})
                else:
                    record[name] = str(record[name])
            spans = []
            for name, result in deidentify_fields(record, fields, deidentifier, patient).items():
                kept_low.update(span.type for span in result.below_threshold)
                spans.extend(dict(span.to_dict(), **({"field": name} if len(fields) > 1 else {})) for span in result.spans)
                by_type.update(span.type for span in result.spans)
            changed += bool(spans)
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            spans_file.write(json.dumps({"id": record_id, "spans": spans}, ensure_ascii=False) + "\n")
    report = {"input": Path(input_path).name, "fields": list(fields), "policy": deidentifier.policy.summary(),
              "threshold": threshold, "records": records, "records_changed": changed,
              "identifiers_by_type": dict(sorted(by_type.items())), "identifiers": sum(by_type.values()),
              "below_threshold_kept_by_type": dict(sorted(kept_low.items())), "rejects": rejects}
    Path(report_path).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    console.print(f"{records} records, {changed} changed, {sum(by_type.values())} identifiers replaced "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(by_type.items())) or 'none'}); "
                  f"{len(rejects)} problem(s) listed in {report_path}")


@deid.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--field", "fields", multiple=True, required=True)
@click.option("--id-field", default="id", show_default=True)
@click.option("--min-score", type=float, default=0.8, show_default=True, help="What counts as high confidence.")
@click.option("--encoding", default=None)
def check_command(path, fields, id_field, min_score, encoding):
    """Re-scan de-identified output; exit 1 if any high-confidence identifier remains."""
    from medcurate.deid.engine import Deidentifier

    scanner = Deidentifier("mask")
    found = 0
    for line, record, _ in _records(path, encoding):
        if record is None:
            continue
        for name in fields:
            for span in scanner.scan(str(record.get(name) or ""), threshold=min_score):
                found += 1
                click.echo(f"{path}:{line}: id={record.get(id_field, line)} field={name} {span.type} "
                           f"at {span.start}-{span.end} (score {span.score:.2f})")
    if found:
        console.print(f"{found} high-confidence identifier(s) remain")
        raise SystemExit(1)
    click.echo(f"{path}: no high-confidence identifier found")
