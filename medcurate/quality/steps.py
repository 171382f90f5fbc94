"""The registered quality steps: ``clean_markup``, ``near_dedupe`` and ``decontaminate``.

Each records in ``manifest["stats"]["quality"][step]`` the rows it saw, changed, dropped or
flagged, with up to ``EXAMPLES`` examples given as row ids only (the published ``id`` when a
row has one, else ``source:line``), never text. The card's Quality section renders it.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from medcurate.errors import MedcurateError
from medcurate.pipeline import Row, StepContext, register_step
from medcurate.quality.near_dedupe import StreamedClusters, near_duplicate_clusters
from medcurate.quality.overlap import DEFAULT_NGRAM, all_texts, build_index, evaluation_rows
from medcurate.quality.text import TEXT_FIELDS, clean_text, has_cjk, longest_clause, map_row_texts, row_texts
from medcurate.schemas import canonical_json

EXAMPLES = 5


def row_reference(row: Row) -> str:
    """A row id for the card: the row's id, else its source name and line, else a content hash
    (rows made by a step, e.g. KG questions); never text."""
    if row.get("id"):
        return str(row["id"])
    source = row.get("source") or {}
    if source.get("name") is not None and source.get("line") is not None:
        return f"{source['name']}:{source['line']}"
    return "sha1:" + hashlib.sha1(canonical_json(row).encode("utf-8")).hexdigest()[:12]


def _record(ctx: StepContext, step: str, **figures: Any) -> dict[str, Any]:
    entry = ctx.card.stats.setdefault("quality", {}).setdefault(step, {})
    entry.update(figures)
    return entry


def _fields(fields: list[str] | None) -> tuple[str, ...]:
    return tuple(fields) if fields else TEXT_FIELDS


@register_step("clean_markup", reads=("instruction", "query", "answer", "messages", "*text fields"),
               writes=("instruction", "query", "answer", "messages", "*text fields"))
def clean_markup(rows: list[Row], ctx: StepContext, fields: list[str] | None = None,
                 drop_emptied: bool = True) -> list[Row]:
    """HTML entities and tags, web leftovers (targetUrl=, (/druglink…), open_in_new, 查看全部, markdown
    ###), repeated sentences, doubled punctuation (。。) and full-/half-width forms, keeping Chinese
    punctuation Chinese. ``fields`` defaults to the row kinds' text columns plus message contents;
    a row whose text becomes empty is dropped as ``emptied_by_cleaning``. Rows with character-offset
    ``spans`` (CMeEE NER) are left unchanged and counted as ``skipped_spans``: cleaning would move
    the offsets."""
    selected = _fields(fields)
    kept: list[Row] = []
    changed: list[str] = []
    emptied: list[str] = []
    skipped = 0
    for row in rows:
        if row.get("spans"):
            skipped += 1
            kept.append(row)
            continue
        had_text = [bool(text.strip()) for text in row_texts(row, selected)]
        if map_row_texts(row, clean_text, selected):
            changed.append(row_reference(row))
        now = [bool(text.strip()) for text in row_texts(row, selected)]
        if drop_emptied and now != had_text:
            emptied.append(row_reference(row))
            ctx.drop(row, "emptied_by_cleaning")
            continue
        kept.append(row)
    _record(ctx, "clean_markup", rows_in=len(rows), changed=len(changed), dropped=len(emptied), skipped_spans=skipped,
            examples_changed=changed[:EXAMPLES], examples_dropped=emptied[:EXAMPLES])
    return kept


def _answers(row: Row) -> list[str]:
    texts = [row[name] for name in ("answer", "output", "response", "chosen") if isinstance(row.get(name), str)]
    return texts + [m["content"] for m in row.get("messages") or []
                    if isinstance(m, dict) and m.get("role") == "assistant" and isinstance(m.get("content"), str)]


@register_step("drop_garbled", reads=("answer", "output", "response", "chosen", "messages"))
def drop_garbled(rows: list[Row], ctx: StepContext, max_clause: int = 40) -> list[Row]:
    """Drop rows whose answer (or any assistant turn) is Chinese text with a stretch of more than
    ``max_clause`` characters without punctuation (filter ``garbled_text``): scrapes that lost their
    commas together with a character before each (Toyhom) read as broken sentences."""
    kept: list[Row] = []
    dropped: list[str] = []
    for row in rows:
        if any(has_cjk(text) and longest_clause(text) > int(max_clause) for text in _answers(row)):
            dropped.append(row_reference(row))
            ctx.drop(row, "garbled_text")
        else:
            kept.append(row)
    _record(ctx, "drop_garbled", rows_in=len(rows), dropped=len(dropped), max_clause=int(max_clause),
            examples_dropped=dropped[:EXAMPLES])
    return kept


class _BoundedNearDedupe:
    """``near_dedupe`` in two passes over spilled rows, with the same clusters and card: see
    ``StreamedClusters``; the card's example references wait in a spill of their own."""

    def __init__(self, ctx: StepContext, scratch: Path, threshold: float = 0.8, ngram: int = 5, num_perm: int = 128,
                 fields: list[str] | None = None):
        from medcurate.engines.spill import BatchSpill

        if not 0 < float(threshold) <= 1:
            raise MedcurateError("threshold must be in (0, 1]", field="steps.near_dedupe.threshold")
        self.ctx, self.fields = ctx, _fields(fields)
        self.threshold, self.ngram = float(threshold), int(ngram)
        self.index = StreamedClusters(scratch, self.threshold, self.ngram, int(num_perm))
        self.references = BatchSpill(scratch / "references")
        self.dropped: Any = None

    def observe(self, rows: list[Row], start: int) -> None:
        self.index.add(["\n".join(row_texts(row, self.fields)) for row in rows])
        self.references.write([row_reference(row) for row in rows])

    def finish(self) -> None:
        clusters = self.index.finish()
        dropped = sorted(clusters.duplicate_of)
        if dropped:
            self.ctx.drop(None, "near_duplicate", len(dropped))
        shown = dropped[:EXAMPLES]
        wanted = set(shown) | {clusters.duplicate_of[index] for index in shown}
        references: dict[int, str] = {}
        position = 0
        for batch in self.references.read():
            references.update((position + offset, reference) for offset, reference in enumerate(batch)
                              if position + offset in wanted)
            position += len(batch)
        sizes = clusters.cluster_sizes
        _record(self.ctx, "near_dedupe", rows_in=self.index.count, dropped=len(dropped), clusters=len(sizes),
                largest_cluster=max(sizes.values(), default=0), threshold=self.threshold, ngram=self.ngram,
                cluster_sizes=dict(sorted(Counter(sizes.values()).items())),
                examples_dropped=[f"{references[i]} ~ {references[clusters.duplicate_of[i]]}" for i in shown])
        self.dropped = np.zeros(self.index.count, dtype=bool)
        self.dropped[dropped] = True

    def apply(self, rows: list[Row], start: int) -> list[Row]:
        flags = self.dropped[start:start + len(rows)]
        return [row for row, is_dropped in zip(rows, flags.tolist(), strict=True) if not is_dropped]


@register_step("near_dedupe", reads=("instruction", "query", "answer", "messages", "*text fields"),
               bounded=_BoundedNearDedupe)
def near_dedupe(rows: list[Row], ctx: StepContext, threshold: float = 0.8, ngram: int = 5, num_perm: int = 128,
                fields: list[str] | None = None) -> list[Row]:
    """Drop near-duplicates (filter ``near_duplicate``): MinHash LSH over character ``ngram``s of the
    row's texts at Jaccard ``threshold``; in each cluster the longest row is kept (ties: smallest
    content hash), whatever the input order. The card gives the number and sizes of clusters."""
    if not 0 < float(threshold) <= 1:
        raise MedcurateError("threshold must be in (0, 1]", field="steps.near_dedupe.threshold")
    texts = ["\n".join(row_texts(row, _fields(fields))) for row in rows]
    clusters = near_duplicate_clusters(texts, threshold=float(threshold), ngram=int(ngram), num_perm=int(num_perm))
    dropped = sorted(clusters.duplicate_of)
    if dropped:
        ctx.drop(None, "near_duplicate", len(dropped))
    sizes = clusters.cluster_sizes
    _record(ctx, "near_dedupe", rows_in=len(rows), dropped=len(dropped), clusters=len(sizes),
            largest_cluster=max(sizes.values(), default=0), threshold=float(threshold), ngram=int(ngram),
            cluster_sizes=dict(sorted(Counter(sizes.values()).items())),
            examples_dropped=[f"{row_reference(rows[i])} ~ {row_reference(rows[clusters.duplicate_of[i]])}"
                              for i in dropped[:EXAMPLES]])
    removed = set(dropped)
    return [row for index, row in enumerate(rows) if index not in removed]


@register_step("decontaminate", reads=("instruction", "query", "answer", "messages", "*text fields"),
               writes=("contaminated_by",))
def decontaminate(rows: list[Row], ctx: StepContext, against: dict[str, Any], ngram: int = DEFAULT_NGRAM,
                  action: str = "drop") -> list[Row]:
    """Rows sharing a character ``ngram`` (default 13) with any row of the named evaluation sets:
    ``against: {cmmlu: {path: …/cmmlu-medical/test}, cmb_clin: cmb-clin@latest, held_out: mine@latest/test}``.
    ``action: drop`` drops them (filter ``contaminated:<set>``, first matching set); ``flag`` keeps them
    with ``contaminated_by`` listing the sets. Overlaps per evaluation set go to the card."""
    if action not in ("drop", "flag"):
        raise MedcurateError("action must be drop or flag", field="steps.decontaminate.action")
    if not isinstance(against, dict) or not against:
        raise MedcurateError("decontaminate needs against: {name: NAME@VERSION or {path: FILE}}",
                             field="steps.decontaminate.against")
    indexes = [build_index(str(name), evaluation_rows(reference, store=ctx.store, base_dir=ctx.base_dir), int(ngram))
               for name, reference in against.items()]
    kept: list[Row] = []
    per_set: dict[str, dict[str, Any]] = {index.name: {"evaluation_rows": index.rows, "training_rows_overlapping": 0,
                                                       "evaluation_rows_hit": set(), "examples": []}
                                          for index in indexes}
    for row in rows:
        texts = all_texts(row)
        hit_sets = []
        for index in indexes:
            hits = index.hits(texts)
            if hits:
                entry = per_set[index.name]
                entry["training_rows_overlapping"] += 1
                entry["evaluation_rows_hit"].update(hits)
                if len(entry["examples"]) < EXAMPLES:
                    entry["examples"].append(row_reference(row))
                hit_sets.append(index.name)
        if hit_sets and action == "drop":
            ctx.drop(row, f"contaminated:{hit_sets[0]}")
            continue
        if action == "flag":
            row["contaminated_by"] = hit_sets
        kept.append(row)
    for entry in per_set.values():
        entry["evaluation_rows_hit"] = len(entry["evaluation_rows_hit"])
    touched = len(rows) - len(kept) if action == "drop" else sum(1 for row in kept if row["contaminated_by"])
    _record(ctx, "decontaminate", rows_in=len(rows), ngram=int(ngram), action=action,
            **({"dropped": touched} if action == "drop" else {"flagged": touched}), evaluation_sets=per_set)
    return kept
