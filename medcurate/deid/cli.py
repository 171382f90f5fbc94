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


def _deidentifier_from_flags(policy: str, secret_env: str, threshold: float, pseudonym_key: bytes | None = None):
    import os

    from medcurate.deid.engine import Deidentifier

    if not 0.0 <= threshold <= 1.0:
        raise MedcurateError("threshold must be between 0 and 1", field="--threshold")
    try:
        return Deidentifier(_parse_policy(policy), secret=os.environ.get(secret_env), threshold=threshold,
                            pseudonym_key=pseudonym_key)
    except MedcurateError as exc:
        flag = "--secret-env" if "secret" in exc.message else "--policy"
        raise MedcurateError(exc.message, field=flag) from None


_worker_plan = None


def _worker_init(settings: dict) -> None:
    global _worker_plan
    _worker_plan = _plan(**settings)


def _plan(policy, secret_env, threshold, pseudonym_key, passthrough, identifier_columns, patient_field):
    from medcurate.deid.records import ColumnPlan

    return ColumnPlan(_deidentifier_from_flags(policy, secret_env, threshold, pseudonym_key),
                      passthrough=frozenset(passthrough), extra_identifier_columns=tuple(identifier_columns),
                      patient_field=patient_field)


def _process_chunk(chunk: list[dict]) -> list[tuple[dict, dict]]:
    return [_deidentify_one(record, _worker_plan) for record in chunk]


def _deidentify_one(record: dict, plan) -> tuple[dict, dict]:
    """The record de-identified, and a summary with no identifier text (spans, columns, types)."""
    from medcurate.deid.records import deidentify_record

    outcome = deidentify_record(record, plan)
    spans = [dict(span.to_dict(), field=name) for name, found in outcome.spans.items() for span in found]
    summary = {"spans": spans, "by_type": dict(outcome.by_type),
               "dropped": outcome.dropped, "pseudonymised": outcome.pseudonymised, "passthrough": outcome.passthrough}
    return record, summary


def _chunks(items, size):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@deid.command("run")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--field", "fields", multiple=True,
              help="A column that must be present (repeatable). Every column is scanned whether named or not.")
@click.option("--passthrough", "passthrough", multiple=True, metavar="COL",
              help="Keep this column unscanned on purpose (repeatable); recorded in the report.")
@click.option("--identifier-column", "identifier_columns", multiple=True, metavar="COL",
              help="Another identifier-named column to drop (repeatable); see docs/deid.md for the built-in list.")
@click.option("--id-field", default="id", show_default=True, help="Record id field (the line number when absent).")
@click.option("--policy", default="mask", show_default=True,
              help="mask, surrogate, redact, or per type: default=mask,PERSON=surrogate,DATE=surrogate")
@click.option("--patient-field", default=None, help="Field naming the patient, for consistent surrogates.")
@click.option("--secret-env", default="MEDCURATE_DEID_SECRET", show_default=True,
              help="Environment variable holding the secret (surrogates, stable pseudonyms).")
@click.option("--threshold", type=float, default=0.5, show_default=True, help="Minimum score to replace a span.")
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Processes; the output is identical for any number.")
@click.option("--encoding", default=None, help="Input encoding (default UTF-8 with BOM detection).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True)
@click.option("--spans", "spans_path", type=click.Path(dir_okay=False), required=True)
@click.option("--report", "report_path", type=click.Path(dir_okay=False), required=True)
def run_command(input_path, fields, passthrough, identifier_columns, id_field, policy, patient_field, secret_env,
                threshold, workers, encoding, out_path, spans_path, report_path):
    """De-identify every column of every record in INPUT (JSONL or CSV)."""
    deidentifier = _deidentifier_from_flags(policy, secret_env, threshold)
    settings = {"policy": policy, "secret_env": secret_env, "threshold": threshold,
                "pseudonym_key": deidentifier.pseudonym_key, "passthrough": passthrough,
                "identifier_columns": identifier_columns, "patient_field": patient_field}
    by_type: Counter = Counter()
    columns: dict[str, set] = {"dropped": set(), "pseudonymised": set(), "passthrough": set()}
    rejects, records, changed = [], 0, 0

    def good_records():
        nonlocal records
        for line, record, problem in _records(input_path, encoding):
            records += 1
            if record is None:
                rejects.append({"line": line, "reason": problem.split(":", 1)[0]})
                continue
            for name in fields:
                if record.get(name) is None:
                    rejects.append({"line": line, "field": name, "reason": "missing field"})
            yield line, record

    def results():
        if workers == 1:
            plan = _plan(**settings)
            for line, record in good_records():
                yield (line, *_deidentify_one(record, plan))
            return
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, initializer=_worker_init, initargs=(settings,)) as pool:
            batches = _chunks(good_records(), 256)
            pending = []
            for batch in batches:
                pending.append(([line for line, _ in batch], pool.submit(_process_chunk, [r for _, r in batch])))
                if len(pending) >= workers * 2:
                    numbers, future = pending.pop(0)
                    yield from ((n, *item) for n, item in zip(numbers, future.result(), strict=True))
            for numbers, future in pending:
                yield from ((n, *item) for n, item in zip(numbers, future.result(), strict=True))

    with open(out_path, "w", encoding="utf-8") as out, open(spans_path, "w", encoding="utf-8") as spans_file:
        for line, record, summary in results():
            record_id = record.get(id_field, line)
            by_type.update(summary["by_type"])
            for kind in columns:
                columns[kind].update(summary[kind])
            changed += bool(summary["spans"] or summary["dropped"] or summary["pseudonymised"])
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            spans_file.write(json.dumps({"id": record_id, "spans": summary["spans"]}, ensure_ascii=False) + "\n")
    report = {"input": Path(input_path).name, "fields": list(fields), "policy": deidentifier.policy.summary(),
              "threshold": threshold, "records": records, "records_changed": changed,
              "columns_dropped": sorted(columns["dropped"]), "columns_pseudonymised": sorted(columns["pseudonymised"]),
              "columns_passthrough": sorted(columns["passthrough"]),
              "stable_pseudonyms": deidentifier.stable_pseudonyms,
              "identifiers_by_type": dict(sorted(by_type.items())), "identifiers": sum(by_type.values()),
              "rejects": rejects}
    Path(report_path).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    console.print(f"{records} records, {changed} changed, {sum(by_type.values())} identifiers replaced "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(by_type.items())) or 'none'}); "
                  f"{len(rejects)} problem(s) listed in {report_path}")


@deid.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--field", "fields", multiple=True, help="Column to check (repeatable; default: every text column).")
@click.option("--id-field", default="id", show_default=True)
@click.option("--min-score", type=float, default=0.8, show_default=True,
              help="What counts as high confidence for the recognizers' own re-scan.")
@click.option("--encoding", default=None)
def check_command(path, fields, id_field, min_score, encoding):
    """Re-scan de-identified output with a second, independent high-recall scan (and the recognizers);
    exit 1 listing record ids and identifier types (never the values) when anything is left."""
    from medcurate.deid.check import leftover_types
    from medcurate.deid.columns import METADATA_COLUMNS
    from medcurate.deid.engine import Deidentifier

    scanner = Deidentifier("mask")
    flagged = 0
    for line, record, _ in _records(path, encoding):
        if record is None:
            continue
        names = fields or [name for name, value in record.items() if isinstance(value, str) and name not in METADATA_COLUMNS
                           and name != id_field]
        for name in names:
            text = str(record.get(name) or "")
            types = set(leftover_types(text)) | {span.type for span in scanner.scan(text, threshold=min_score)}
            if types:
                flagged += 1
                click.echo(f"{path}:{line}: id={record.get(id_field, line)} field={name} "
                           f"types={','.join(sorted(types))}")
    if flagged:
        console.print(f"{flagged} field(s) still hold identifier-shaped text")
        raise SystemExit(1)
    click.echo(f"{path}: nothing identifier-shaped found")
