"""Long character n-gram overlap between training rows and evaluation sets (decontamination).

A training row is contaminated by an evaluation set when it shares one character n-gram
(default 13, on letters/digits/CJK only, as in GPT-3's and Llama's contamination checks) with
any of its rows. The evaluation side is an index of n-gram -> first evaluation row holding it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError
from medcurate.quality.near_dedupe import content_chars
from medcurate.quality.text import TEXT_FIELDS

DEFAULT_NGRAM = 13


# De-identification placeholders ([PERSON], [DATE] …) are the same in every note: not content.
_PLACEHOLDER = re.compile(r"\[[A-Z_]{2,}\]")


def ngrams(text: str, n: int) -> Iterator[str]:
    chars = content_chars(_PLACEHOLDER.sub("", text))
    for start in range(len(chars) - n + 1):
        yield chars[start:start + n]


def all_texts(row: dict[str, Any]) -> list[str]:
    """The texts that carry a row's content: not a templated instruction (a row with a
    ``template_id`` shares it with every row of its template), not system prompts, and not
    ``messages`` derived from instruction fields (mixtures keep both). A row with none of the
    known text columns (a raw evaluation file) gives every string value."""
    fields = tuple(name for name in TEXT_FIELDS if not (name == "instruction" and row.get("template_id")))
    texts = [row[name] for name in fields if isinstance(row.get(name), str) and row[name].strip()]
    has_instruction_fields = any(isinstance(row.get(name), str) for name in ("instruction", "query", "answer"))
    if not has_instruction_fields:
        texts += [m["content"] for m in row.get("messages") or []
                  if isinstance(m, dict) and m.get("role") != "system" and isinstance(m.get("content"), str)]
    if texts or has_instruction_fields or row.get("messages"):
        return texts
    return [value for value in row.values() if isinstance(value, str)]


@dataclass
class EvaluationIndex:
    name: str
    ngram: int
    owners: dict[str, int] = field(default_factory=dict)
    rows: int = 0

    def add(self, texts: Iterable[str]) -> None:
        row = self.rows
        self.rows += 1
        for text in texts:
            for gram in ngrams(text, self.ngram):
                self.owners.setdefault(gram, row)

    def hits(self, texts: Iterable[str]) -> set[int]:
        """The evaluation rows sharing at least one n-gram with these texts."""
        found: set[int] = set()
        for text in texts:
            for gram in ngrams(text, self.ngram):
                owner = self.owners.get(gram)
                if owner is not None:
                    found.add(owner)
        return found


def build_index(name: str, rows: Iterable[dict[str, Any]], ngram: int = DEFAULT_NGRAM) -> EvaluationIndex:
    index = EvaluationIndex(name, ngram)
    for row in rows:
        index.add(all_texts(row))
    return index


def evaluation_rows(reference: str | dict[str, Any], *, store: Path, base_dir: Path) -> list[dict[str, Any]]:
    """Rows of an evaluation set named in a recipe: ``NAME@VERSION`` (optionally ``/split``) from the
    store, or ``{path: FILE, split: …}`` for a raw JSONL/JSON/CSV/TSV/Parquet file (CMMLU's CSVs,
    CMB-Clin's JSON)."""
    from medcurate.readers import Malformed, iter_records
    from medcurate.store import load_rows

    if isinstance(reference, str) and "@" in reference and not Path(reference).suffix:
        ref, _, split = reference.partition("/")
        per_split = load_rows(ref, store, split=split or None)
        return [row for rows in per_split.values() for row in rows]
    spec = {"path": reference} if isinstance(reference, str) else dict(reference)
    path = Path(str(spec.get("path", ""))).expanduser()
    path = path if path.is_absolute() else base_dir / path
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".csv", ".json", ".jsonl", ".tsv", ".parquet")) \
        if path.is_dir() else [path]
    if not files or not files[0].exists():
        raise MedcurateError("evaluation set not found", file=str(path), field="against")
    rows = []
    for file in files:
        for item in iter_records(file, None, spec.get("encoding") or "auto"):
            if not isinstance(item, Malformed) and isinstance(item.data, dict):
                rows.append(item.data)
    return rows


def version_overlap(first: str, second: str, store: str | Path | None = None,
                    ngram: int = DEFAULT_NGRAM) -> dict[str, Any]:
    """Rows of FIRST (per split) sharing a character n-gram with any row of SECOND (per split),
    without building anything: the report ``medcurate datasets overlap`` prints."""
    from medcurate.store import load_rows, resolve

    version_a, version_b = resolve(first, store), resolve(second, store)
    rows_a, rows_b = load_rows(version_a, store), load_rows(version_b, store)
    indexes = {split: build_index(split, rows, ngram) for split, rows in rows_b.items()}
    report: dict[str, Any] = {"first": version_a.ref, "second": version_b.ref, "ngram": ngram, "splits": []}
    for split_a, rows in rows_a.items():
        for split_b, index in indexes.items():
            overlapping = 0
            hit: set[int] = set()
            examples: list[str] = []
            for row in rows:
                hits = index.hits(all_texts(row))
                if hits:
                    overlapping += 1
                    hit.update(hits)
                    if len(examples) < 5:
                        examples.append(str(row.get("id", "")))
            report["splits"].append({"first_split": split_a, "first_rows": len(rows), "second_split": split_b,
                                     "second_rows": index.rows, "first_rows_overlapping": overlapping,
                                     "second_rows_hit": len(hit), "example_ids": examples})
    return report
