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
import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medcurate.errors import ConservationError, MedcurateError
from medcurate.schemas import canonical_json

STORE_ENV = "MEDCURATE_STORE"
VERSION_LOG = "versions.jsonl"
_TMP_PREFIX = ".tmp-"


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
        return json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))

    def manifest_sha256(self) -> str:
        return hashlib.sha256((self.path / "manifest.json").read_bytes()).hexdigest()

    def split_files(self) -> dict[str, Path]:
        return {split: self.path / "data" / f"{split}.parquet" for split in self.manifest["splits"]}


def parse_ref(ref: str) -> tuple[str, str]:
    """``name``, ``name@latest`` or ``name@<version or prefix>`` -> (name, version selector)."""
    name, _, version = ref.partition("@")
    if not name:
        raise MedcurateError(f"expected NAME[@VERSION], got {ref!r}")
    return name, version or "latest"


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
    log = folder / VERSION_LOG
    entries: list[dict[str, Any]] = []
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                if (folder / entry["version"] / "manifest.json").exists():
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

    version = resolve(ref, store)
    files = version.split_files()
    if split is not None:
        if split not in files:
            raise MedcurateError(f"{version.ref} has no split {split!r}; splits: {', '.join(files)}")
        files = {split: files[split]}
    return {name: pq.read_table(path).to_pylist() for name, path in files.items()}


def load(ref: str | Version, store: str | Path | None = None):
    """A published version as a ``datasets.DatasetDict`` (memory-mapped Arrow)."""
    from datasets import Dataset, DatasetDict

    version = resolve(ref, store)
    return DatasetDict({split: Dataset.from_parquet(str(path), split=split)
                        for split, path in version.split_files().items()})


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


class SchemaInference:
    """One Arrow schema for a version, inferred column by column over fixed-size chunks of rows
    (so the result does not depend on how the rows were batched). A column whose values have no
    common Arrow type is stored as JSON text and listed in ``json_columns``."""

    def __init__(self) -> None:
        self.types: dict[str, Any] = {}
        self.json_columns: list[str] = []
        self._chunk: list[dict[str, Any]] = []

    def add(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._chunk.append(row)
            if len(self._chunk) == SCHEMA_CHUNK_ROWS:
                self._infer()

    def _infer(self) -> None:
        import pyarrow as pa

        rows, self._chunk = self._chunk, []
        text_only = {frozenset({str}): pa.string(), frozenset({str, type(None)}): pa.string(),
                     frozenset({type(None)}): pa.null()}
        names = list(dict.fromkeys(key for row in rows for key in row))
        for name in names:
            if name in self.json_columns:
                continue
            values = [row.get(name) for row in rows]
            try:
                kinds = frozenset(map(type, values))
                found = text_only[kinds] if kinds in text_only else pa.array(values).type
                known = self.types.get(name)
                if known is not None and known != found:
                    found = pa.unify_schemas([pa.schema([(name, known)]), pa.schema([(name, found)])],
                                             promote_options="permissive").field(name).type
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                self.json_columns.append(name)
                found = pa.string()
            self.types[name] = found

    def schema(self):
        import pyarrow as pa

        if self._chunk:
            self._infer()
        return pa.schema([(name, self.types[name]) for name in sorted(self.types, key=_column_order)])

    def stored(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row as written: every non-null value of a JSON column becomes canonical JSON
        (text too, so a reader can decode the column without guessing)."""
        for name in self.json_columns:
            if row.get(name) is not None:
                row[name] = canonical_json(row[name])
        return row


class SplitFileWriter:
    """Rows of one split written to Parquet as they come, in row groups of a fixed number of
    rows, so the file's bytes do not depend on the batch size of the build."""

    def __init__(self, path: Path, schema):
        import pyarrow.parquet as pq

        path.parent.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.rows = 0
        self._buffer: list[dict[str, Any]] = []
        self._writer = pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=True,
                                        write_statistics=True)

    def write(self, row: dict[str, Any]) -> None:
        self._buffer.append(row)
        if len(self._buffer) == ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._buffer:
            self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=self.schema),
                                     row_group_size=ROW_GROUP_ROWS)
            self.rows += len(self._buffer)
            self._buffer = []

    def close(self) -> None:
        self._flush()
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
    staged = staging_folder(name, store)
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
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    with open(folder / VERSION_LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps({"version": version_id,
                              "published_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
                  + "\n")
    return Version(name, version_id, final)


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
