"""The versioned dataset store.

Layout::

    STORE/<name>/<version>/data/<split>.parquet
                          /manifest.json     sources + sha256, recipe, counts, rejects, stats
                          /README.md         dataset card (HF-style YAML header)
                          /rejects.jsonl     one line per rejected record: location + reason
    STORE/<name>/versions.jsonl              publication log (drives NAME@latest)

A version id is a content hash of the manifest and the data files, so the same inputs
and recipe give the same id and byte-identical Parquet. Publishing writes a temporary
folder and renames it into place: a killed build leaves no version.
"""
from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import itertools
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from medcurate.conversion import decode_json_columns
from medcurate.errors import ConservationError, MedcurateError
from medcurate.readers import file_sha256
from medcurate.schemas import canonical_json

STORE_ENV = "MEDCURATE_STORE"
VERSION_LOG = "versions.jsonl"
CACHE_ENV = "MEDCURATE_CACHE"
_TMP_PREFIX = ".tmp-"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
"""Dataset names: a single path component that cannot climb out of the store (no '/', no '..')."""
VERSION_PATTERN = re.compile(r"^[0-9a-f]{1,64}$")


def default_store() -> Path:
    return Path(os.environ.get(STORE_ENV) or "datasets")


def store_path(store: str | Path | None) -> Path:
    return Path(store) if store else default_store()


@dataclass(frozen=True)
class Version:
    name: str
    version: str
    path: Path

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def manifest(self) -> dict[str, Any]:
        path = self.path / "manifest.json"
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise MedcurateError("manifest.json is missing", file=str(path)) from None
        except (ValueError, UnicodeDecodeError):
            raise MedcurateError("manifest.json is not valid JSON (damaged?)", file=str(path)) from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("splits"), list):
            raise MedcurateError("manifest.json is not a medcurate manifest (damaged?)", file=str(path))
        return manifest

    def manifest_sha256(self) -> str:
        return hashlib.sha256((self.path / "manifest.json").read_bytes()).hexdigest()

    def split_files(self) -> dict[str, Path]:
        return {split: self.path / "data" / f"{split}.parquet" for split in self.manifest["splits"]}


def parse_ref(ref: str) -> tuple[str, str]:
    """``name``, ``name@latest`` or ``name@<version or prefix>`` -> (name, version selector)."""
    name, _, version = ref.partition("@")
    if not name:
        raise MedcurateError(f"expected NAME[@VERSION], got {ref!r}")
    check_name(name)
    version = version or "latest"
    if version != "latest" and not VERSION_PATTERN.match(version):
        raise MedcurateError(f"a version is 'latest' or a hexadecimal id (prefix), got {version!r}")
    return name, version


def check_name(name: str) -> str:
    """A dataset name is one path component inside the store: refs cannot reach other folders."""
    if not NAME_PATTERN.match(name) or ".." in name:
        raise MedcurateError(f"dataset name {name!r} may hold letters, digits, '.', '_' and '-' only "
                             f"(no path separators, no '..')", field="name")
    return name


def list_datasets(store: str | Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every dataset name with its publications, oldest first."""
    root = store_path(store)
    result: dict[str, list[dict[str, Any]]] = {}
    if not root.is_dir():
        return result
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        published = _publications(folder)
        if published:
            result[folder.name] = published
    return result


def _publications(folder: Path) -> list[dict[str, Any]]:
    """The publication log, one entry per line; a torn or damaged line (a killed publish, a full
    disk) is skipped, so it affects no other version."""
    log = folder / VERSION_LOG
    entries: list[dict[str, Any]] = []
    if log.exists():
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line) if line.strip() else None
            except ValueError:
                continue
            if (isinstance(entry, dict) and isinstance(entry.get("version"), str)
                    and VERSION_PATTERN.match(entry["version"])
                    and (folder / entry["version"] / "manifest.json").exists()):
                entries.append(entry)
    return entries


def resolve(ref: str | Version, store: str | Path | None = None) -> Version:
    """Find a published version: exact id, unique prefix, or ``latest``."""
    if isinstance(ref, Version):
        return ref
    name, selector = parse_ref(ref)
    root = store_path(store)
    folder = root / name
    published = _publications(folder) if folder.is_dir() else []
    if not published:
        raise MedcurateError(f"no dataset named {name!r} in store {root}")
    if selector == "latest":
        return Version(name, published[-1]["version"], folder / published[-1]["version"])
    matches = sorted({e["version"] for e in published if e["version"].startswith(selector)})
    if not matches:
        raise MedcurateError(f"{name} has no version {selector!r}; known: "
                             f"{', '.join(sorted({e['version'] for e in published}))}")
    if len(matches) > 1:
        raise MedcurateError(f"version prefix {selector!r} of {name} is ambiguous: {', '.join(matches)}")
    return Version(name, matches[0], folder / matches[0])


def load_rows(ref: str | Version, store: str | Path | None = None,
              split: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Rows of a version as plain dicts per split, without going through ``datasets``."""
    import pyarrow.parquet as pq

    version = verified(resolve(ref, store))
    files = version.split_files()
    if split is not None:
        if split not in files:
            raise MedcurateError(f"{version.ref} has no split {split!r}; splits: {', '.join(files)}")
        files = {split: files[split]}
    json_columns = version.manifest.get("json_columns") or []
    return {name: [decode_json_columns(row, json_columns) for row in pq.read_table(path).to_pylist()]
            for name, path in files.items()}


def load(ref: str | Version, store: str | Path | None = None):
    """A published version as a ``datasets.DatasetDict`` (memory-mapped Arrow). Columns stored as
    JSON text (values of mixed types) are decoded as rows are read."""
    from datasets import Dataset, DatasetDict

    version = verified(resolve(ref, store))
    json_columns = version.manifest.get("json_columns") or []
    splits = DatasetDict({split: Dataset.from_parquet(str(path), split=split)
                          for split, path in version.split_files().items()})
    if json_columns:
        for dataset in splits.values():
            dataset.set_transform(_decoding_transform(json_columns))
    return splits


def iter_rows(ref: str | Version, split: str, store: str | Path | None = None,
              batch_size: int = 1024) -> Iterator[dict[str, Any]]:
    """The rows of one split, decoded, a Parquet batch at a time (memory flat in the version's size)."""
    import pyarrow.parquet as pq

    version = verified(resolve(ref, store))
    files = version.split_files()
    if split not in files:
        raise MedcurateError(f"{version.ref} has no split {split!r}; splits: {', '.join(files)}")
    json_columns = version.manifest.get("json_columns") or []
    for batch in pq.ParquetFile(files[split]).iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            yield decode_json_columns(row, json_columns)


def verified(version: Version) -> Version:
    """The version, once its data files match the manifest's sha256 and the manifest its id.

    Every read goes through here, so a tampered or damaged file is an error, not served. The
    hash of a file is remembered by path, size and mtime in the user's cache (``verify_cache_path``;
    never in the store, which reads leave untouched), so reading an unchanged version again
    costs a stat."""
    manifest = version.manifest
    if compute_version_id(manifest) != version.version:
        raise MedcurateError("manifest.json does not hash to its version id (edited after publishing?)",
                             file=str(version.path / "manifest.json"))
    cache = _read_verify_cache()
    changed = False
    for relative, expected in sorted(manifest.get("files", {}).items()):
        if not relative.startswith("data/"):
            continue
        path = version.path / relative
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise MedcurateError("missing: the version is incomplete", file=str(path)) from None
        key = str(path.resolve())
        stamp = [stat.st_size, stat.st_mtime_ns]
        if cache.get(key, {}).get("stamp") == stamp and cache[key].get("sha256") == expected:
            continue
        if file_sha256(path) != expected:
            raise MedcurateError("sha256 differs from the manifest: the file changed after publishing; "
                                 "refusing to read it", file=str(path))
        cache[key] = {"stamp": stamp, "sha256": expected}
        changed = True
    if changed:
        _write_verify_cache(cache)
    return version


def verify_cache_path() -> Path:
    """``$MEDCURATE_CACHE/verified.json``, else under ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    base = os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medcurate"
    return Path(base) / "verified.json"


def _read_verify_cache() -> dict[str, Any]:
    try:
        cache = json.loads(verify_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _write_verify_cache(cache: dict[str, Any]) -> None:
    """Best effort (without a writable cache folder the next read hashes again); entries of
    files that are gone are dropped so the cache does not grow with deleted stores."""
    target = verify_cache_path()
    temporary = target.with_name(f"{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        live = {key: entry for key, entry in cache.items() if Path(key).exists()}
        temporary.write_text(json.dumps(live, sort_keys=True), encoding="utf-8")
        os.replace(temporary, target)
    except OSError:
        temporary.unlink(missing_ok=True)


def disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


class StagedFiles:
    """Files written under temporary names in one folder and renamed into place together when
    all are complete: an interrupted or failed write (a full disk) leaves no file that looks
    finished. ``committed`` lists the final paths."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.committed: list[Path] = []
        self._staged: list[tuple[Path, Path]] = []

    def __enter__(self) -> StagedFiles:
        for stale in self.folder.glob(f".*{_TMP_PREFIX}*"):
            match = re.search(rf"{re.escape(_TMP_PREFIX)}(\d+)-", stale.name)
            if match and stale.is_file() and not _process_alive(int(match.group(1))):
                stale.unlink(missing_ok=True)
        return self

    @contextmanager
    def open(self, relative: str) -> Iterator[IO[bytes]]:
        final = self.folder / relative
        temporary = final.with_name(f".{final.name}{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self._staged.append((temporary, final))
        with open(temporary, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())

    def __exit__(self, kind, exc, traceback) -> None:
        if exc is None:
            for temporary, final in self._staged:
                os.replace(temporary, final)
                self.committed.append(final)
            return
        for temporary, _ in self._staged:
            temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError) and disk_full(exc):
            raise MedcurateError("disk full while writing; nothing was written (free space and retry)",
                                 file=str(self.folder)) from None


def _decoding_transform(json_columns: list[str]):
    """A ``datasets`` transform that decodes the JSON-text columns of each batch it formats."""
    def transform(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for column in json_columns:
            if column in batch:
                batch[column] = [decode_json_columns({column: value}, (column,))[column] for value in batch[column]]
        return batch
    return transform


def _sha256_bytes(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def write_parquet_bytes(table) -> bytes:
    """Serialise a table to Parquet deterministically (same rows -> same bytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", use_dictionary=True, write_statistics=True)
    return sink.getvalue().to_pybytes()


_LEADING = ("id", "instruction", "query", "answer", "messages", "prompt", "chosen", "rejected",
            "input", "diagnosis", "department", "task", "template_id")


def _column_order(name: str) -> tuple[int, str]:
    return (_LEADING.index(name) if name in _LEADING else len(_LEADING), name)


def compute_version_id(manifest: dict[str, Any]) -> str:
    basis = {key: value for key, value in manifest.items() if key not in ("version", "paths")}
    return hashlib.sha256(canonical_json(basis).encode("utf-8")).hexdigest()[:12]


ROW_GROUP_ROWS = 32_768
SCHEMA_CHUNK_ROWS = 8_192


@dataclass
class RowChunk:
    """A fixed number of a version's rows, column by column, as Arrow arrays inferred from this
    chunk alone. Such an array is what the final schema stores unless the column's type changes
    in a later chunk or the column becomes JSON; then the Python values are needed again, and
    for a column whose values the array does not give back exactly (``inexact``: a mix such as
    int and float, dicts, lists) they are kept aside, in memory or in a spill file read only
    then. Columns already stored as JSON keep their Python values in ``values``."""

    rows: int
    arrays: dict[str, Any]
    values: dict[str, list[Any]]
    inexact: tuple[str, ...] = ()
    kept_aside: dict[str, list[Any]] | None = None
    load_aside: Callable[[], dict[str, list[Any]]] | None = None

    def original(self, name: str) -> list[Any] | None:
        """The column's Python values as the rows held them (None when no row had the column)."""
        if name in self.values:
            return self.values[name]
        if name not in self.arrays:
            return None
        if name not in self.inexact:
            return self.arrays[name].to_pylist()
        if self.kept_aside is None:
            assert self.load_aside is not None
            self.kept_aside = self.load_aside()
        return self.kept_aside[name]


_SCALARS = frozenset({str, int, float, bool})


def _held_exactly(kinds: frozenset) -> bool:
    """Whether an Arrow array gives back these Python values unchanged (a mix such as int and
    float would come back as floats, a dict as a struct with every field)."""
    present = kinds - {type(None)}
    return len(present) <= 1 and present <= _SCALARS


class SchemaInference:
    """One Arrow schema for a version, inferred column by column over fixed-size chunks of rows
    (so the result does not depend on how the rows were batched). A column whose values have no
    common Arrow type is stored as JSON text and listed in ``json_columns``. The chunks come
    back as ``RowChunk``s, which ``table`` turns into Arrow under the final schema."""

    def __init__(self) -> None:
        self.types: dict[str, Any] = {}
        self.json_columns: list[str] = []
        self._chunk: list[dict[str, Any]] = []

    def add(self, rows: list[dict[str, Any]]) -> list[RowChunk]:
        """Takes rows in order; returns the chunks they completed."""
        done = []
        for row in rows:
            self._chunk.append(row)
            if len(self._chunk) == SCHEMA_CHUNK_ROWS:
                done.append(self._infer())
        return done

    def finish(self) -> list[RowChunk]:
        """The last, partial chunk (if any); the schema is final after this."""
        return [self._infer()] if self._chunk else []

    def _infer(self) -> RowChunk:
        import pyarrow as pa

        rows, self._chunk = self._chunk, []
        chunk = RowChunk(len(rows), {}, {})
        aside: dict[str, list[Any]] = {}
        text_only = {frozenset({str}): pa.string(), frozenset({str, type(None)}): pa.string(),
                     frozenset({type(None)}): pa.null()}
        names = list(dict.fromkeys(itertools.chain.from_iterable(rows)))
        for name in names:
            values = [row.get(name) for row in rows]
            if name in self.json_columns:
                chunk.values[name] = values
                continue
            kinds = frozenset(map(type, values))
            array = pa.array(values, type=text_only[kinds]) if kinds in text_only else None
            try:
                if array is None:
                    array = pa.array(values)
                found = array.type
                known = self.types.get(name)
                if known is not None and known != found:
                    found = pa.unify_schemas([pa.schema([(name, known)]), pa.schema([(name, found)])],
                                             promote_options="permissive").field(name).type
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                self.json_columns.append(name)
                found, array = pa.string(), None
            self.types[name] = found
            if array is None:
                chunk.values[name] = values
                continue
            chunk.arrays[name] = array
            if not _held_exactly(kinds):
                aside[name] = values
        chunk.inexact, chunk.kept_aside = tuple(aside), aside
        return chunk

    def schema(self):
        import pyarrow as pa

        if self._chunk:
            raise RuntimeError("SchemaInference.finish() was not called")
        return pa.schema([(name, self.types[name]) for name in sorted(self.types, key=_column_order)])

    def table(self, chunk: RowChunk, schema):
        """The chunk's rows under the final schema, as ``Table.from_pylist`` would build them
        from the rows: missing columns are nulls, and every non-null value of a JSON column is
        canonical JSON (text too, so a reader can decode the column without guessing)."""
        import pyarrow as pa

        columns = []
        for field in schema:
            name = field.name
            if name in self.json_columns:
                values = chunk.original(name)
                columns.append(pa.nulls(chunk.rows, pa.string()) if values is None else
                               pa.array([None if value is None else canonical_json(value) for value in values],
                                        type=pa.string()))
            elif name in chunk.arrays and chunk.arrays[name].type == field.type:
                columns.append(chunk.arrays[name])
            elif name in chunk.arrays:
                columns.append(pa.array(chunk.original(name), type=field.type))
            else:
                columns.append(pa.nulls(chunk.rows, field.type))
        return pa.Table.from_arrays(columns, schema=schema)


class SplitFileWriter:
    """Rows of one split written to Parquet as they come, in row groups of a fixed number of
    rows, so the file's bytes do not depend on the batch size of the build."""

    def __init__(self, path: Path, schema):
        import pyarrow.parquet as pq

        path.parent.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.rows = 0
        self.buffered = 0
        self._pending: list[Any] = []
        self._writer = pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=True,
                                        write_statistics=True)

    def write(self, table) -> None:
        """Appends an Arrow table of this split's next rows."""
        if not table.num_rows:
            return
        self._pending.append(table)
        self.buffered += table.num_rows
        while self.buffered >= ROW_GROUP_ROWS:
            self._flush(ROW_GROUP_ROWS)

    def _flush(self, count: int) -> None:
        import pyarrow as pa

        pending = pa.concat_tables(self._pending)
        group = pending.slice(0, count).combine_chunks()
        rest = pending.slice(count)
        self._writer.write_table(group, row_group_size=ROW_GROUP_ROWS)
        self.rows += group.num_rows
        self.buffered = rest.num_rows
        self._pending = [rest] if rest.num_rows else []

    def close(self) -> None:
        if self.buffered:
            self._flush(self.buffered)
        self._writer.close()


def staging_folder(name: str, store: str | Path | None = None, suffix: str = "") -> Path:
    """A fresh temporary folder inside the dataset's folder; a killed build's one is removed
    by the next publish (the process id in its name is gone)."""
    folder = store_path(store) / name
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(folder)
    staged = folder / f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"
    staged.mkdir()
    return staged


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def publish(name: str, manifest: dict[str, Any], tables: dict[str, Any], rejects: list[dict[str, Any]],
            card_renderer, artifacts: dict[str, bytes] | None = None,
            store: str | Path | None = None) -> Version:
    """Write a version atomically and return it. ``manifest`` gets ``files`` and ``version``."""
    staged = staging_folder(check_name(name), store)
    try:
        files: dict[str, bytes] = {f"data/{split}.parquet": write_parquet_bytes(table)
                                   for split, table in tables.items()}
        files["rejects.jsonl"] = "".join(canonical_json(r) + "\n" for r in rejects).encode("utf-8")
        files.update(artifacts or {})
        for relative, content in files.items():
            target = staged / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return publish_staged(name, manifest, staged, card_renderer, store)


def publish_staged(name: str, manifest: dict[str, Any], staged: Path, card_renderer,
                   store: str | Path | None = None) -> Version:
    """Publish a staging folder that holds the data files, rejects.jsonl and artifacts: hash
    them into the manifest, add manifest.json and the card, and rename it into place."""
    folder = store_path(store) / name
    try:
        paths = sorted(path for path in staged.rglob("*") if path.is_file())
        manifest = dict(manifest)
        manifest.setdefault("privacy", {"status": "not screened"})  # medcurate/privacy.py: unknown means unscreened
        manifest["files"] = {path.relative_to(staged).as_posix(): _file_sha256(path) for path in paths}
        version_id = compute_version_id(manifest)
        manifest["version"] = version_id
        (staged / "manifest.json").write_bytes(
            (json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode())
        (staged / "README.md").write_bytes(card_renderer(manifest).encode("utf-8"))
        for path in [*paths, staged / "manifest.json", staged / "README.md"]:
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        final = folder / version_id
        if final.exists():
            shutil.rmtree(staged, ignore_errors=True)
        else:
            try:
                os.rename(staged, final)
            except OSError:
                if not final.exists():
                    raise
                shutil.rmtree(staged, ignore_errors=True)
    except BaseException as exc:
        shutil.rmtree(staged, ignore_errors=True)
        if isinstance(exc, OSError) and disk_full(exc):
            raise MedcurateError(f"disk full while publishing {name}; nothing was published "
                                 f"(free space and retry)", file=str(folder)) from None
        raise
    _append_publication(folder / VERSION_LOG, {
        "version": version_id, "published_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
    return Version(name, version_id, final)


def _append_publication(log: Path, entry: dict[str, Any]) -> None:
    """One line appended to the publication log, starting on a fresh line when the last one was
    torn (a publish killed mid-write), so a damaged line never swallows a good one."""
    line = (json.dumps(entry) + "\n").encode("utf-8")
    with open(log, "ab+") as handle:
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                line = b"\n" + line
        try:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as exc:
            if disk_full(exc):
                raise MedcurateError("disk full while recording the publication; the version folder is "
                                     "complete, publish again to record it", file=str(log)) from None
            raise


def _remove_stale_temporaries(folder: Path) -> None:
    """Remove temporary folders left by builds whose process is gone (killed mid-build)."""
    for candidate in folder.glob(f"{_TMP_PREFIX}*"):
        match = re.match(rf"{re.escape(_TMP_PREFIX)}(\d+)-", candidate.name)
        if match and not _process_alive(int(match.group(1))):
            shutil.rmtree(candidate, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def verify(ref: str | Version, store: str | Path | None = None) -> list[str]:
    """Recompute a version's hashes and counts from its files; returns the problems found."""
    import pyarrow.parquet as pq

    version = resolve(ref, store)
    manifest = version.manifest
    problems: list[str] = []
    for relative, expected in manifest.get("files", {}).items():
        path = version.path / relative
        if not path.exists():
            problems.append(f"{relative}: missing")
        elif _sha256_bytes(path.read_bytes()) != expected:
            problems.append(f"{relative}: sha256 differs from the manifest")
    if compute_version_id(manifest) != version.version:
        problems.append("manifest.json: content does not hash to the version id (edited after publishing?)")
    counts = manifest.get("counts", {})
    for split, path in version.split_files().items():
        if path.exists():
            actual = pq.ParquetFile(path).metadata.num_rows
            if actual != counts.get("splits", {}).get(split):
                problems.append(f"data/{split}.parquet: {actual} rows, manifest says {counts.get('splits', {}).get(split)}")
    rejects_path = version.path / "rejects.jsonl"
    if rejects_path.exists():
        lines = [json.loads(line) for line in rejects_path.read_text(encoding="utf-8").splitlines() if line]
        if len(lines) != sum(counts.get("rejects", {}).values()):
            problems.append(f"rejects.jsonl: {len(lines)} lines, manifest counts {sum(counts.get('rejects', {}).values())}")
    try:
        check_counts(counts)
    except ConservationError as exc:
        problems.append(exc.message)
    return problems


def check_counts(counts: dict[str, Any]) -> None:
    """The conservation rules of a manifest's ``counts``; raises ConservationError on a gap."""
    stages = counts.get("stages", [])
    for stage in stages:
        gap = (stage["rows_in"] - sum(stage["dropped"].values()) - sum(stage["rejected"].values())
               - stage["merged"] + stage["created"] - stage["rows_out"])
        if gap:
            raise ConservationError(f"stage {stage['stage']!r} does not add up (gap {gap})")
    sources = [s for s in stages if s["stage"].startswith("source:")]
    steps = [s for s in stages if not s["stage"].startswith("source:")]
    if sum(s["rows_in"] for s in sources) != counts.get("inputs_read"):
        raise ConservationError(f"inputs_read {counts.get('inputs_read')} differs from the records the sources read "
                                f"({sum(s['rows_in'] for s in sources)})")
    flowing = sum(s["rows_out"] for s in sources)
    for step in steps:
        if step["rows_in"] != flowing:
            raise ConservationError(f"step {step['stage']!r} received {step['rows_in']} rows, "
                                    f"the stage before passed on {flowing}")
        flowing = step["rows_out"]
    written = sum(counts.get("splits", {}).values())
    if written != flowing or written != counts.get("rows_written"):
        raise ConservationError(f"rows written {counts.get('rows_written')} / per split {written} differ from the "
                                f"{flowing} rows the last stage passed on")
    totals = _sum_by_name(stages, "rejected")
    if totals != counts.get("rejects", {}):
        raise ConservationError(f"rejects by reason {counts.get('rejects')} differ from the stages' {totals}")
    filtered = _sum_by_name(stages, "dropped")
    if filtered != counts.get("filtered", {}):
        raise ConservationError(f"filtered rows {counts.get('filtered')} differ from the stages' {filtered}")


def _sum_by_name(stages: list[dict[str, Any]], key: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for stage in stages:
        for name, number in stage[key].items():
            totals[name] = totals.get(name, 0) + number
    return totals
