"""Reading raw record files (JSONL, JSON arrays, CSV/TSV, Parquet) with their line numbers.

Chinese sources come in UTF-8, UTF-8 with a BOM, GBK or GB18030 and with CRLF line
ends; the encoding is honoured as given and a BOM is detected. Every record comes
out with the line it starts on, and a malformed record becomes a ``Malformed``
item (file, line, field, reason) instead of an exception, so callers can write it to
rejects and keep going. Unreadable, empty or wrongly-encoded files raise a
``MedcurateError`` naming the file and line.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast, overload

from medcurate.errors import MedcurateError

FORMATS = ("jsonl", "json", "csv", "tsv", "parquet")
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


@dataclass(frozen=True)
class RawRecord:
    line: int
    data: dict[str, Any]


@dataclass(frozen=True)
class JsonText:
    """A JSON Lines record not decoded yet (``iter_records(..., decode=False)``): whoever takes it
    decodes it with ``parse_json_record``, perhaps in another process."""

    line: int
    text: str


@dataclass(frozen=True)
class Malformed:
    line: int
    reason: str
    field: str | None = None


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def guess_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in ("jsonl", "ndjson"):
        return "jsonl"
    if suffix in FORMATS:
        return suffix
    if suffix == "txt":
        return "tsv"
    raise MedcurateError(f"cannot tell the format from the extension {suffix!r}; give format: "
                         f"one of {', '.join(FORMATS)}", file=str(path))


def read_text(path: str | Path, encoding: str | None = None) -> str:
    """Decode a whole file, honouring a BOM, with an error naming the line of a bad byte."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise MedcurateError("file not found", file=str(path)) from None
    except OSError as exc:
        raise MedcurateError(f"cannot read file: {exc.strerror}", file=str(path)) from None
    if not raw.strip():
        raise MedcurateError("file is empty", file=str(path))
    chosen = (encoding or "utf-8").lower()
    for bom, bom_encoding in _BOMS:
        if raw.startswith(bom):
            if chosen in ("utf-8", "utf8", "utf-8-sig", "auto") or bom_encoding == "utf-16":
                chosen = bom_encoding
            break
    candidates = ["utf-8", "gb18030"] if chosen == "auto" else [chosen]
    for candidate in candidates:
        try:
            return raw.decode(candidate)
        except LookupError:
            raise MedcurateError(f"unknown encoding {candidate!r}", file=str(path), field="encoding") from None
        except UnicodeDecodeError as exc:
            if candidate != candidates[-1]:
                continue
            line = raw[: exc.start].count(b"\n") + 1
            hint = " (Chinese sources are often GBK/GB18030: set `encoding: gb18030`)" if candidate.startswith("utf") else ""
            raise MedcurateError(f"bytes are not valid {candidate}{hint}", file=str(path), line=line) from None
    raise AssertionError("unreachable")


@overload
def iter_records(path: str | Path, fmt: str | None = None, encoding: str | None = None,
                 delimiter: str | None = None, *, decode: Literal[True] = True) -> Iterator[RawRecord | Malformed]: ...


@overload
def iter_records(path: str | Path, fmt: str | None = None, encoding: str | None = None,
                 delimiter: str | None = None, *, decode: bool) -> Iterator[RawRecord | Malformed | JsonText]: ...


def iter_records(path: str | Path, fmt: str | None = None, encoding: str | None = None,
                 delimiter: str | None = None, *, decode: bool = True) -> Iterator[RawRecord | Malformed | JsonText]:
    """Yield every record of a file with its line number, or a ``Malformed`` marker. With
    ``decode=False`` a JSON Lines record comes as its ``JsonText``, still to be decoded."""
    fmt = fmt or guess_format(path)
    if fmt == "parquet":
        yield from _iter_parquet(Path(path))
        return
    if fmt == "jsonl" and (encoding or "utf-8").lower() in _LINE_ENCODINGS:
        yield from _iter_jsonl_lines(Path(path), (encoding or "utf-8").lower(), decode)
        return
    text = read_text(path, encoding)
    if fmt == "jsonl":
        yield from _iter_jsonl(text, decode)
    elif fmt == "json":
        yield from _iter_json_array(text, str(path))
    elif fmt in ("csv", "tsv"):
        yield from _iter_csv(text, delimiter or ("\t" if fmt == "tsv" else ","), str(path))
    else:
        raise MedcurateError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}",
                             file=str(path), field="format")


MAX_DEPTH = 64
"""Deepest nesting of objects and arrays a record may have (Arrow and the steps recurse)."""
INT64_RANGE = (-(2 ** 63), 2 ** 63 - 1)


def unusable_reason(value: Any) -> tuple[str, str | None] | None:
    """Why a parsed JSON value cannot be stored, as (reason, field), or None when it can.

    Valid JSON can still break the build later: integers beyond 64 bits (Parquet has no such
    type), lone surrogates (not encodable as UTF-8), nesting too deep to walk."""
    stack: list[tuple[Any, int, str | None]] = [(value, 0, None)]
    while stack:
        item, depth, field = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels", field
        if isinstance(item, dict):
            for key, child in item.items():
                if _has_lone_surrogate(key):
                    return "lone surrogate in a key (not valid Unicode text)", None
                stack.append((child, depth + 1, field or key))
        elif isinstance(item, list):
            stack.extend((child, depth + 1, field) for child in item)
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int) and not INT64_RANGE[0] <= item <= INT64_RANGE[1]:
            return "integer out of the 64-bit range", field
        elif isinstance(item, str) and _has_lone_surrogate(item):
            return "lone surrogate in a string (not valid Unicode text)", field
    return None


_LONG_DIGIT_RUN = re.compile(r"[0-9]{19}")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def may_be_unusable(text: str) -> bool:
    """A cheap screen of the raw JSON text, so only a record that could hold one of
    ``unusable_reason``'s problems is walked: an integer beyond 64 bits needs a run of 19 digits,
    a lone surrogate an escaped one (UTF-8 text cannot hold it raw), deep nesting as many brackets."""
    return (text.count("{") + text.count("[") > MAX_DEPTH or _LONG_DIGIT_RUN.search(text) is not None
            or ("\\u" in text and _SURROGATE_ESCAPE.search(text) is not None))


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_json_record(text: str, line: int) -> RawRecord | Malformed:
    """One JSON text -> a record, or the reason it cannot be one (never an exception)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return Malformed(line, f"malformed JSON: {exc.msg} at column {exc.colno}")
    except RecursionError:
        return Malformed(line, f"nested deeper than {MAX_DEPTH} levels")
    except ValueError:
        return Malformed(line, "number too long to read (more than 4300 digits)")
    if not isinstance(value, dict):
        return Malformed(line, f"not an object: expected a JSON object, got {type(value).__name__}")
    problem = unusable_reason(value) if may_be_unusable(text) else None
    if problem:
        return Malformed(line, problem[0], problem[1])
    return RawRecord(line, value)


def _iter_jsonl(text: str, decode: bool = True) -> Iterator[RawRecord | Malformed | JsonText]:
    """Records split on "\n" only: U+2028, U+2029 and U+0085 are characters inside strings
    (``str.splitlines`` would cut records there and shift every later line number)."""
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        yield parse_json_record(line, number) if decode else JsonText(number, line)


# Encodings in which a newline byte is always a line end, so a file can be decoded line by line.
_LINE_ENCODINGS = ("utf-8", "utf8", "utf-8-sig", "gb18030", "gbk", "gb2312")


def _iter_jsonl_lines(path: Path, encoding: str, decode: bool = True) -> Iterator[RawRecord | Malformed | JsonText]:
    """JSON Lines read one line at a time, so a file of any size streams in bounded memory."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise MedcurateError("file not found", file=str(path)) from None
    except OSError as exc:
        raise MedcurateError(f"cannot read file: {exc.strerror}", file=str(path)) from None
    with handle:
        start = handle.read(4)
        if any(start.startswith(bom) for bom, name in _BOMS if name == "utf-16"):
            handle.close()
            yield from _iter_jsonl(read_text(path, encoding), decode)
            return
        handle.seek(len(codecs.BOM_UTF8) if start.startswith(codecs.BOM_UTF8) and encoding.startswith("utf") else 0)
        codec = "utf-8" if encoding.startswith("utf") else encoding
        number = 0
        anything = False
        for block in _line_blocks(handle):
            try:
                lines = block.decode(codec).split("\n")
            except UnicodeDecodeError:
                bad = next(offset for offset, raw in enumerate(block.split(b"\n")) if not _decodes(raw, codec))
                hint = " (Chinese sources are often GBK/GB18030: set `encoding: gb18030`)" if codec == "utf-8" else ""
                raise MedcurateError(f"bytes are not valid {encoding}{hint}", file=str(path),
                                     line=number + bad + 1) from None
            for line in lines:
                number += 1
                if line.strip(_ASCII_SPACE):
                    anything = True
                    yield parse_json_record(line, number) if decode else JsonText(number, line)
    if not anything:
        raise MedcurateError("file is empty", file=str(path))


_ASCII_SPACE = " \t\n\r\x0b\x0c"
_BLOCK_BYTES = 1 << 20


def _line_blocks(handle: IO[bytes]) -> Iterator[bytes]:
    """The rest of the file in blocks of whole lines (about a megabyte each, the last newline
    cut off), so lines are decoded and split a block at a time."""
    tail = b""
    while block := handle.read(_BLOCK_BYTES):
        block = tail + block
        cut = block.rfind(b"\n")
        if cut < 0:
            tail = block
            continue
        tail = block[cut + 1:]
        yield block[:cut]
    if tail:
        yield tail


def _decodes(raw: bytes, codec: str) -> bool:
    try:
        raw.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def _iter_json_array(text: str, path: str) -> Iterator[RawRecord | Malformed]:
    """Walk a (pretty-printed) JSON array element by element, keeping each element's line."""
    decoder = json.JSONDecoder()
    stripped = text.lstrip("\ufeff \t\r\n")
    offset = len(text) - len(stripped)
    if stripped.startswith("{"):
        try:
            value, end = decoder.raw_decode(text, offset)
        except json.JSONDecodeError as exc:
            raise MedcurateError(f"malformed JSON: {exc.msg}", file=path, line=exc.lineno) from None
        if text[end:].strip():
            yield from cast(Iterator[RawRecord | Malformed], _iter_jsonl(text))   # decoded: no JsonText
            return
        yield RawRecord(text.count("\n", 0, offset) + 1, value)
        return
    if not stripped.startswith("["):
        raise MedcurateError("expected a JSON array or object", file=path, line=text.count("\n", 0, offset) + 1)
    position = offset + 1
    line = text.count("\n", 0, position) + 1
    length = len(text)
    while True:
        while position < length and text[position] in " \t\r\n,":
            if text[position] == "\n":
                line += 1
            position += 1
        if position >= length:
            raise MedcurateError("JSON array is not closed", file=path, line=line)
        if text[position] == "]":
            return
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise MedcurateError(f"malformed JSON: {exc.msg}", file=path, line=exc.lineno) from None
        except (RecursionError, ValueError) as exc:
            skip_to = _end_of_value(text, position)
            if skip_to is None:
                raise MedcurateError("JSON array is not closed", file=path, line=line) from None
            reason = (f"nested deeper than {MAX_DEPTH} levels" if isinstance(exc, RecursionError)
                      else "number too long to read (more than 4300 digits)")
            yield Malformed(line, reason)
            line += text.count("\n", position, skip_to)
            position = skip_to
            continue
        problem = unusable_reason(value) if isinstance(value, dict) else None
        if not isinstance(value, dict):
            yield Malformed(line, f"not an object: expected a JSON object, got {type(value).__name__}")
        elif problem:
            yield Malformed(line, problem[0], problem[1])
        else:
            yield RawRecord(line, value)
        line += text.count("\n", position, end)
        position = end


def _end_of_value(text: str, start: int) -> int | None:
    """Where the JSON value starting at ``start`` ends, found without parsing it (for values the
    parser cannot take, so the records after it can still be read)."""
    depth = 0
    in_string = False
    position = start
    while position < len(text):
        char = text[position]
        if in_string:
            if char == "\\":
                position += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            if depth == 0:
                return position
            depth -= 1
            if depth == 0:
                return position + 1
        elif depth == 0 and char in ", \t\r\n":
            return position
        position += 1
    return None


def _iter_csv(text: str, delimiter: str, path: str) -> Iterator[RawRecord | Malformed]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise MedcurateError("file has no header row", file=path, line=1) from None
    except csv.Error as exc:
        raise MedcurateError(f"malformed CSV header: {exc}", file=path, line=1) from None
    names = [name.strip() for name in header]
    keep = [i for i, name in enumerate(names) if name]
    if not keep:
        raise MedcurateError("header row has no column names", file=path, line=1)
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Malformed(start, f"malformed CSV row: {exc}")
            start = reader.line_num + 1
            continue
        if not cells or all(not cell.strip() for cell in cells):
            start = reader.line_num + 1
            continue
        if len(cells) < len(names) or any(cell.strip() for cell in cells[len(names):]):
            yield Malformed(start, f"wrong field count: expected {len(names)}, got {len(cells)}")
            start = reader.line_num + 1
            continue
        record = {names[i]: cells[i] for i in keep}
        yield RawRecord(start, record)
        start = reader.line_num + 1


def _iter_parquet(path: Path) -> Iterator[RawRecord | Malformed]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise MedcurateError("file not found", file=str(path)) from None
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise MedcurateError(f"cannot read Parquet: {exc}", file=str(path)) from None
    for index, row in enumerate(table.to_pylist(), start=1):
        yield RawRecord(index, row)
