"""Readers for the documents MedGo turned into QA: Chinese drug labels (说明书) and guidelines.

Both yield one row per *chunk* (a label section, a guideline passage under its heading), so a
chunk the model cannot use becomes one reject with its chunk id rather than a lost document::

    {"document_id", "doc_type": "drug_label" | "guideline", "title", "section", "chunk_id", "text", "source"}

Drug labels, source format ``drug_label``:
  * text (``.txt``): sections marked 【适应症】, 【禁忌】, 【不良反应】, 【用法用量】 …, the text on the
    same line or the lines below; several labels in one file are separated by a line of ``===``.
  * JSON lines (``.jsonl``/``.json`` or ``options.layout: json``): one label an object, either
    ``{"name", "sections": {"适应症": …}}`` or the section names as keys (with or without 【】).
Section names are normalised (适应证 -> 适应症, 【】 removed).

Guidelines, source format ``guideline`` (``.md``/``.txt``, one guideline a file): chunked at
headings (Markdown ``#``, 第X章/节, 一、, （一）, 1. / 1.1); a passage longer than
``options.max_chars`` (default 1200) is cut at a sentence end into ``c007.1``, ``c007.2`` ….
Chunk ids (``<source>:c007``) are the provenance of every QA row made from them.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError
from medcurate.pipeline import Row, SourceSpec, StepContext, register_source_reader
from medcurate.readers import file_sha256

SECTION_MARK = re.compile(r"【\s*([^】]{1,20}?)\s*】")
LABEL_SEPARATOR = re.compile(r"^\s*={3,}\s*$")
SECTION_ALIASES = {"适应证": "适应症", "功能主治": "适应症", "禁忌证": "禁忌", "禁忌症": "禁忌",
                   "用法与用量": "用法用量", "成分": "成份", "通用名称": "药品名称"}
HEADING = re.compile(
    r"^\s*(?:(#{1,6})\s+(.+?)\s*#*\s*$"                                   # Markdown
    r"|(第[一二三四五六七八九十百零\d]+[章节部分篇]\s*.*)$"                  # 第一章 …
    r"|([一二三四五六七八九十]+、\s*\S.{0,40})$"                              # 一、…
    r"|([（(][一二三四五六七八九十]+[）)]\s*\S.{0,40})$"                      # （一）…
    r"|(\d+(?:\.\d+){0,3}\.?\s+\S.{0,40})$)")                             # 1. / 1.1 …
SENTENCE_END = re.compile(r"(?<=[。！？；!?;])")


def section_name(raw: str) -> str:
    name = raw.strip().strip("【】").strip()
    return SECTION_ALIASES.get(name, name)


def _location(spec: SourceSpec, display: str, line: int) -> dict[str, Any]:
    return {"name": spec.name, "file": display, "line": line, "sha256": spec.sha256}


def _source_file(spec: SourceSpec, ctx: StepContext) -> Path:
    path = ctx.resolve_path(spec.path)
    if not path.is_file():
        raise MedcurateError(f"source file not found (looked for {path})", file=str(spec.path),
                             field=f"sources.{spec.name}.path")
    spec.resolved_path = path
    spec.sha256 = file_sha256(path)
    return path


def _read_text(path: Path, spec: SourceSpec) -> str:
    try:
        return path.read_text(encoding=spec.encoding or "utf-8-sig")
    except UnicodeDecodeError:
        raise MedcurateError(f"not {spec.encoding or 'UTF-8'} text (set the source's encoding)",
                             file=str(spec.path)) from None


# ---------------------------------------------------------------- drug labels

def parse_label_text(lines: list[tuple[int, str]]) -> tuple[str, list[tuple[str, int, str]]]:
    """One label's numbered lines -> (title, [(section, first line, text)])."""
    title = ""
    sections: list[tuple[str, int, list[str]]] = []
    for number, line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        match = SECTION_MARK.match(stripped)
        if match:
            sections.append((section_name(match.group(1)), number, [stripped[match.end():].strip()]))
        elif sections:
            sections[-1][2].append(stripped)
        elif not title:
            title = stripped
    finished = [(name, number, "\n".join(part for part in parts if part)) for name, number, parts in sections]
    for name, _, text in finished:
        if name == "药品名称" and text:
            title = re.sub(r"^通用名称[:：]\s*", "", text.splitlines()[0]).strip() or title
            break
    return title, finished


def _label_blocks(text: str) -> Iterator[list[tuple[int, str]]]:
    block: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if LABEL_SEPARATOR.match(line):
            if block:
                yield block
            block = []
        else:
            block.append((number, line))
    if any(line.strip() for _, line in block):
        yield block


def _label_sections_from_json(record: Any) -> tuple[str, list[tuple[str, str]]]:
    if not isinstance(record, dict):
        raise ValueError("a drug label must be a JSON object")
    nested = record.get("sections")
    raw: dict[str, Any] = nested if isinstance(nested, dict) else {
        key: value for key, value in record.items() if key not in ("id", "name", "title")}
    sections = [(section_name(key), value.strip()) for key, value in raw.items()
                if isinstance(value, str) and value.strip()]
    title = str(record.get("name") or record.get("title") or dict(sections).get("药品名称", "")).strip()
    return title, sections


def _chunk_rows(spec: SourceSpec, ctx: StepContext, display: str, document_id: str, doc_type: str, title: str,
                chunks: Iterable[tuple[str, str, int, str]]) -> Iterator[Row]:
    for chunk_id, section, line, text in chunks:
        ctx.ledger.rows_in += 1
        row = {"document_id": document_id, "doc_type": doc_type, "title": title, "section": section,
               "chunk_id": chunk_id, "text": text, "source": _location(spec, display, line)}
        if not text.strip():
            ctx.reject(row, "empty section", "text")
            continue
        yield row


@register_source_reader("drug_label", doc="Chinese drug labels (说明书): 【section】 text (labels separated by ===) "
                                          "or JSON lines; one row per section. options.layout: text | json.")
def read_drug_labels(spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    path = _source_file(spec, ctx)
    display = path.name
    layout = spec.options.get("layout") or ("json" if path.suffix.lower() in (".json", ".jsonl") else "text")
    text = _read_text(path, spec)
    if layout == "text":
        for index, block in enumerate(_label_blocks(text), start=1):
            title, sections = parse_label_text(block)
            document_id = f"{spec.name}:{index}"
            if not sections:
                ctx.ledger.rows_in += 1
                ctx.reject({"source": _location(spec, display, block[0][0])}, "no 【section】 found", "text")
                continue
            yield from _chunk_rows(spec, ctx, display, document_id, "drug_label", title,
                                   ((f"{document_id}:{name}", name, line, body) for name, line, body in sections))
        return
    if layout != "json":
        raise MedcurateError("layout must be text or json", file=str(spec.path), field=f"sources.{spec.name}.options.layout")
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            records = [(number, item) for number, item in enumerate(json.loads(stripped), start=1)]
        except json.JSONDecodeError as exc:
            raise MedcurateError(f"invalid JSON: {exc.msg}", file=str(spec.path), line=exc.lineno) from None
    else:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((number, json.loads(line)))
            except json.JSONDecodeError:
                records.append((number, None))
    for index, (number, record) in enumerate(records, start=1):
        try:
            title, named = _label_sections_from_json(record)
        except ValueError as exc:
            ctx.ledger.rows_in += 1
            ctx.reject({"source": _location(spec, display, number)}, f"invalid drug label: {exc}")
            continue
        document_id = f"{spec.name}:{record.get('id') or index}"
        if not named:
            ctx.ledger.rows_in += 1
            ctx.reject({"source": _location(spec, display, number)}, "no section found", "sections")
            continue
        yield from _chunk_rows(spec, ctx, display, document_id, "drug_label", title,
                               ((f"{document_id}:{name}", name, number, body) for name, body in named))


# ---------------------------------------------------------------- guidelines

def heading_text(line: str) -> str | None:
    match = HEADING.match(line)
    if not match:
        return None
    groups = [group for group in match.groups()[1:] if group]
    return groups[0].strip() if groups else None


def split_long(text: str, max_chars: int) -> list[str]:
    """Cut a passage at sentence ends into parts of at most ``max_chars`` (a longer sentence stays whole)."""
    if len(text) <= max_chars:
        return [text]
    parts, current = [], ""
    for sentence in (s for s in SENTENCE_END.split(text) if s):
        if current and len(current) + len(sentence) > max_chars:
            parts.append(current)
            current = ""
        current += sentence
    if current:
        parts.append(current)
    return parts


def guideline_chunks(text: str, max_chars: int = 1200) -> list[tuple[str, int, str, str]]:
    """(heading path, first line, passage text, chunk number) for every passage under a heading;
    the parts of a long passage share its number with a ``.1``, ``.2`` suffix."""
    chunks: list[tuple[str, int, str, str]] = []
    passages = 0
    path: list[str] = []
    title = ""
    body: list[str] = []
    start = 1

    def flush() -> None:
        nonlocal passages
        passage = "\n".join(body).strip()
        if passage:
            passages += 1
            heading = " > ".join(path) or title
            parts = split_long(passage, max_chars)
            for number, part in enumerate(parts, start=1):
                chunks.append((heading, start, part,
                               f"c{passages:03d}" + (f".{number}" if len(parts) > 1 else "")))

    for number, line in enumerate(text.splitlines(), start=1):
        heading = heading_text(line)
        if heading is not None and len(line.strip()) <= 60:
            flush()
            body = []
            start = number + 1
            level = _heading_level(line)
            if not title and level == 1:
                title = heading
            path = path[:level - 1] + [heading]
        elif line.strip():
            if not body:
                start = number
            body.append(line.strip())
    flush()
    return chunks


def _heading_level(line: str) -> int:
    stripped = line.strip()
    if stripped.startswith("#"):
        return len(stripped) - len(stripped.lstrip("#"))
    if re.match(r"第.+?[章部分篇]", stripped):
        return 1
    if re.match(r"第.+?节", stripped) or re.match(r"[一二三四五六七八九十]+、", stripped):
        return 2
    if re.match(r"[（(]", stripped):
        return 3
    dotted = re.match(r"(\d+(?:\.\d+)*)", stripped)
    return 2 + (dotted.group(1).count(".") if dotted else 0)


@register_source_reader("guideline", doc="Guideline text (Markdown or plain, one guideline a file) chunked at "
                                         "headings; chunk ids kept as provenance. options.max_chars (1200).")
def read_guideline(spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    path = _source_file(spec, ctx)
    text = _read_text(path, spec)
    max_chars = int(spec.options.get("max_chars", 1200))
    chunks = guideline_chunks(text, max_chars)
    title = next((heading for heading, _, _, _ in chunks), path.stem).split(" > ")[0]
    if not chunks:
        ctx.ledger.rows_in += 1
        ctx.reject({"source": _location(spec, path.name, 1)}, "no text under any heading", "text")
        return
    yield from _chunk_rows(spec, ctx, path.name, f"{spec.name}", "guideline", title,
                           ((f"{spec.name}:{number}", heading, line, passage)
                            for heading, line, passage, number in chunks))
