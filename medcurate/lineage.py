"""One lineage record for every artifact medcurate writes, and the tree it traces back to source files.

Every artifact carries a ``lineage.json`` (a folder: ``FOLDER/lineage.json``; a single file such
as a candidates JSONL or an evaluation JSON: ``FILE.lineage.json`` beside it)::

    {"lineage": 1, "artifact": "dataset_version" | "training_run" | "merged_model" | "model"
                              | "candidates" | "evaluation",
     "inputs": [LINK, ...], ...details of the artifact...}

A LINK names what the artifact was made from, by id and hash, so that it can be checked later:

    {"type": "file",      "path": ABS, "sha256": …}                     a source file
    {"type": "version",   "ref": "name@version", "manifest_sha256": …, "store": ABS}
    {"type": "run",       "path": ABS, "run_id": …, "files": {relative: sha256}}
    {"type": "model",     "path": ABS, "config_sha256": …, "weights": {relative: sha256}}
    {"type": "artifact",  "path": ABS, "sha256": …}                     a file with its own lineage

``trace`` follows the links down to the source files and reports the first broken one on each
branch (a file changed since, a version deleted, an adapter retrained). This module imports
neither torch nor transformers: it hashes files and reads JSON.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError
from medcurate.readers import file_sha256

LINEAGE_FILE = "lineage.json"
LINEAGE_SUFFIX = ".lineage.json"
SCHEMA_VERSION = 1
ADAPTER_DIR = "adapter"
MODEL_DIR = "model"
ADAPTER_CONFIG = "adapter_config.json"
# files whose bytes are the model: weights and what changes how they are read
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def lineage_path(artifact: str | Path) -> Path:
    """Where an artifact's lineage record lives: inside a folder, or beside a file."""
    artifact = Path(artifact)
    if artifact.name == LINEAGE_FILE or artifact.name.endswith(LINEAGE_SUFFIX):
        return artifact
    if artifact.is_dir():
        return artifact / LINEAGE_FILE
    return artifact.with_name(artifact.name + LINEAGE_SUFFIX)


def record(artifact: str, inputs: list[dict[str, Any]], **details: Any) -> dict[str, Any]:
    return {"lineage": SCHEMA_VERSION, "artifact": artifact, "created_at": now(), "inputs": inputs, **details}


def write_lineage(artifact: str | Path, value: dict[str, Any]) -> Path:
    path = lineage_path(artifact)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n",
                    encoding="utf-8")
    return path


def read_lineage(artifact: str | Path) -> dict[str, Any] | None:
    path = lineage_path(artifact)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MedcurateError(f"lineage record is not JSON ({exc.msg})", file=str(path), line=exc.lineno) from None


# ---------------------------------------------------------------- hashes and links

def files_sha256(folder: Path, names: list[str] | None = None) -> dict[str, str]:
    """sha256 of the named files of a folder (default: every weight file and adapter config)."""
    if names is None:
        names = sorted(p.name for p in folder.iterdir()
                       if p.is_file() and (p.suffix in _WEIGHT_SUFFIXES or p.name == ADAPTER_CONFIG))
    return {name: file_sha256(folder / name) for name in names if (folder / name).is_file()}


def config_sha256(model_dir: Path) -> str:
    """sha256 of config.json with sorted keys (formatting does not count)."""
    config_file = model_dir / "config.json"
    if not config_file.is_file():
        raise MedcurateError("not a local HF model folder (config.json missing)", file=str(model_dir))
    canonical = json.dumps(json.loads(config_file.read_text(encoding="utf-8")), sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def file_link(path: str | Path) -> dict[str, Any]:
    path = Path(path).resolve()
    return {"type": "file", "path": str(path), "sha256": file_sha256(path)}


def artifact_link(path: str | Path) -> dict[str, Any]:
    """A file that carries its own lineage (candidates, evaluation JSON)."""
    return {**file_link(path), "type": "artifact"}


def version_link(version, store: str | Path | None = None) -> dict[str, Any]:
    from medcurate.store import store_path

    return {"type": "version", "ref": version.ref, "manifest_sha256": version.manifest_sha256(),
            "store": str(store_path(store).resolve())}


def model_link(model_dir: str | Path) -> dict[str, Any]:
    model_dir = Path(model_dir).resolve()
    return {"type": "model", "path": str(model_dir), "config_sha256": config_sha256(model_dir),
            "weights": files_sha256(model_dir)}


def run_link(run_dir: str | Path) -> dict[str, Any]:
    """A finished training run: its id and the hashes of the weights it produced."""
    run_dir = Path(run_dir).resolve()
    lineage = read_lineage(run_dir)
    if lineage is None:
        raise MedcurateError("not a run directory (lineage.json missing)", file=str(run_dir))
    output = run_dir / str(lineage.get("output") or ADAPTER_DIR)
    return {"type": "run", "path": str(run_dir), "run_id": lineage.get("run_id"), "stage": lineage.get("stage"),
            "output": output.name, "files": files_sha256(output) if output.is_dir() else {}}


# ---------------------------------------------------------------- adapters

@dataclass(frozen=True)
class ResolvedAdapter:
    adapter_dir: Path
    run_dir: Path | None

    @property
    def task_type(self) -> str | None:
        return json.loads((self.adapter_dir / ADAPTER_CONFIG).read_text(encoding="utf-8")).get("task_type")

    def link(self) -> dict[str, Any]:
        if self.run_dir is not None and (self.run_dir / LINEAGE_FILE).is_file():
            return run_link(self.run_dir)
        return {"type": "model", "path": str(self.adapter_dir), "config_sha256": None,
                "weights": files_sha256(self.adapter_dir)}


def resolve_adapter(path: str | Path) -> ResolvedAdapter:
    """The one meaning of ``--adapter``: a run directory (its ``adapter/``) or an adapter folder."""
    given = Path(path)
    if (given / ADAPTER_DIR / ADAPTER_CONFIG).is_file():
        return ResolvedAdapter((given / ADAPTER_DIR).resolve(), given.resolve())
    if (given / ADAPTER_CONFIG).is_file():
        parent = given.resolve().parent
        run_dir = parent if given.name == ADAPTER_DIR and (parent / LINEAGE_FILE).is_file() else None
        return ResolvedAdapter(given.resolve(), run_dir)
    raise MedcurateError("no adapter here: give a run directory (with adapter/) or an adapter folder "
                         "(with adapter_config.json)", file=str(path), field="adapter")


# ---------------------------------------------------------------- trace

@dataclass
class Node:
    """One artifact in the lineage tree; ``problem`` names the broken link, if any."""

    label: str
    kind: str
    detail: str = ""
    problem: str | None = None
    children: list[Node] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "kind": self.kind, "detail": self.detail, "problem": self.problem,
                "children": [child.to_dict() for child in self.children]}

    def problems(self) -> list[str]:
        found = [f"{self.label}: {self.problem}"] if self.problem else []
        for child in self.children:
            found.extend(child.problems())
        return found

    def source_files(self) -> list[Node]:
        found = [self] if self.kind == "file" else []
        for child in self.children:
            found.extend(child.source_files())
        return found

    def render(self, prefix: str = "", last: bool = True, root: bool = True) -> list[str]:
        branch = "" if root else ("└── " if last else "├── ")
        status = f"  !! {self.problem}" if self.problem else ""
        lines = [f"{prefix}{branch}{self.kind} {self.label}{'  ' + self.detail if self.detail else ''}{status}"]
        child_prefix = prefix if root else prefix + ("    " if last else "│   ")
        for index, child in enumerate(self.children):
            lines.extend(child.render(child_prefix, index == len(self.children) - 1, root=False))
        return lines


def trace(path_or_ref: str, store: str | Path | None = None) -> Node:
    """The lineage tree of a path (run, model, candidates file, evaluation, version folder) or NAME@VERSION."""
    path = Path(path_or_ref)
    if path.exists():
        path = path.resolve()
        if path.is_dir() and (path / "manifest.json").is_file():
            from medcurate.store import Version

            version = Version(path.parent.name, path.name, path)
            return _trace_version({"ref": version.ref, "store": str(path.parent.parent),
                                   "manifest_sha256": version.manifest_sha256()}, store, set())
        lineage = read_lineage(path)
        if lineage is None:
            raise MedcurateError("no lineage record here (lineage.json or FILE.lineage.json)", file=str(path))
        return _node_from_record(str(path), lineage, store, set())
    if "@" in path_or_ref:
        from medcurate.store import resolve

        version = resolve(path_or_ref, store)
        return _trace_version({"ref": version.ref, "manifest_sha256": version.manifest_sha256()}, store, set())
    raise MedcurateError("neither a path nor a NAME@VERSION", file=path_or_ref)


def _node_from_record(label: str, lineage: dict[str, Any], store, seen: set[str]) -> Node:
    node = Node(label, str(lineage.get("artifact", "artifact")), _describe(lineage))
    for link in lineage.get("inputs") or []:
        node.children.append(_trace_link(link, store, seen))
    return node


def _describe(lineage: dict[str, Any]) -> str:
    parts = []
    for key in ("stage", "run_id", "dpo_reference_kind", "prompt_version", "model_evaluated"):
        value = lineage.get(key)
        if value:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def _trace_link(link: dict[str, Any], store, seen: set[str]) -> Node:
    kind = link.get("type")
    if kind == "file":
        return _trace_file(link)
    if kind == "version":
        return _trace_version(link, store, seen)
    if kind == "run":
        return _trace_run(link, store, seen)
    if kind == "model":
        return _trace_model(link, store, seen)
    if kind == "artifact":
        node = _trace_file(link)
        node.kind = "artifact"
        if node.problem is None:
            lineage = read_lineage(link["path"])
            if lineage is None:
                node.problem = "its lineage record is missing"
            else:
                node.kind = str(lineage.get("artifact", "artifact"))
                node.detail = _describe(lineage)
                node.children = [_trace_link(child, store, seen) for child in lineage.get("inputs") or []]
        return node
    return Node(str(link), "unknown", problem=f"unknown link type {kind!r}")


def _trace_file(link: dict[str, Any]) -> Node:
    path = Path(link["path"])
    node = Node(str(path), "file", f"sha256={link.get('sha256', '')}")
    if not path.is_file():
        node.problem = "file missing"
    elif file_sha256(path) != link.get("sha256"):
        node.problem = "file changed since (sha256 differs)"
    return node


def _trace_version(link: dict[str, Any], store, seen: set[str]) -> Node:
    from medcurate.store import resolve

    ref = link["ref"]
    node = Node(ref, "version", f"manifest sha256={str(link.get('manifest_sha256', ''))[:16]}…")
    name, _, version_id = ref.partition("@")
    if not version_id or version_id == "latest":
        node.problem = "recorded as @latest, not as the version id read"
        return node
    version = None
    for candidate in dict.fromkeys([link.get("store"), str(store) if store else None, None]):
        try:
            found = resolve(ref, candidate)
        except MedcurateError:
            continue
        if found.version == version_id:
            version = found
            break
    if version is None:
        node.problem = "version deleted (not found in the store)"
        return node
    if link.get("manifest_sha256") and version.manifest_sha256() != link["manifest_sha256"]:
        node.problem = "manifest changed since (sha256 differs)"
        return node
    if ref in seen:
        node.detail += " (traced above)"
        return node
    seen.add(ref)
    lineage = read_lineage(version.path)
    if lineage is None:
        node.problem = "version has no lineage.json (published before lineage records; rebuild it)"
        return node
    node.children = [_trace_link(child, store, seen) for child in lineage.get("inputs") or []]
    return node


def _check_files(folder: Path, expected: dict[str, str]) -> str | None:
    for name, digest in sorted(expected.items()):
        target = folder / name
        if not target.is_file():
            return f"{name} missing"
        if file_sha256(target) != digest:
            return f"{name} changed since (sha256 differs)"
    return None


def _trace_run(link: dict[str, Any], store, seen: set[str]) -> Node:
    run_dir = Path(link["path"])
    node = Node(str(run_dir), "training_run", f"stage={link.get('stage')} run_id={link.get('run_id')}")
    lineage = read_lineage(run_dir) if run_dir.is_dir() else None
    if lineage is None:
        node.problem = "run directory missing (or its lineage.json)"
        return node
    if lineage.get("run_id") != link.get("run_id"):
        node.problem = f"a different run now ({lineage.get('run_id')}, recorded {link.get('run_id')})"
        return node
    node.problem = _check_files(run_dir / str(link.get("output") or ADAPTER_DIR), link.get("files") or {})
    if node.problem is None:
        _trace_inputs(node, f"run:{run_dir}", lineage, store, seen)
    return node


def _trace_model(link: dict[str, Any], store, seen: set[str]) -> Node:
    model_dir = Path(link["path"])
    node = Node(str(model_dir), "model")
    if not model_dir.is_dir():
        node.problem = "model folder missing"
        return node
    if link.get("config_sha256") and config_sha256(model_dir) != link["config_sha256"]:
        node.problem = "config.json changed since (sha256 differs)"
        return node
    node.problem = _check_files(model_dir, link.get("weights") or {})
    if node.problem:
        return node
    lineage = read_lineage(model_dir)
    if lineage is None:
        node.detail = "external model (no lineage record): its weights are pinned by sha256"
        return node
    node.kind = str(lineage.get("artifact", "model"))
    node.detail = _describe(lineage)
    return _trace_inputs(node, f"model:{model_dir}", lineage, store, seen)


def _trace_inputs(node: Node, key: str, lineage: dict[str, Any], store, seen: set[str]) -> Node:
    """The artifact's inputs as the node's children, traced once: a second mention says so."""
    if key in seen:
        node.detail += " (traced above)"
        return node
    seen.add(key)
    node.children = [_trace_link(child, store, seen) for child in lineage.get("inputs") or []]
    return node
