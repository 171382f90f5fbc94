"""Build recipes: YAML files naming sources, steps and splits.

    name: kg-qa-demo
    kind: instruction            # instruction | conversation | ehr | preference
    description: ...
    license: research use only
    sources:
      - name: xywy
        path: ../data/xywy_sample.jsonl    # relative to this file
        format: xywy                       # a registered source format
        encoding: utf-8                    # honoured; a BOM is detected
        options: {}                        # format-specific
    steps:
      - kg_qa: {lang: zh}
      - dedupe: {fields: [instruction, answer]}
    splits: {seed: 42, validation: 0.1, test: 0.1, stratify: department, group: patient_id}

Everything is checked on load, with errors naming the recipe file, the key and, where
YAML can tell, the line.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError
from medcurate.pipeline import SourceSpec, get_source_format, get_step
from medcurate.schemas import row_kind
from medcurate.yamlio import parse_yaml

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TOP_KEYS = {"name", "kind", "description", "license", "sources", "steps", "splits", "seed", "card"}
_SOURCE_KEYS = {"name", "path", "format", "encoding", "options"}
_SPLIT_KEYS = {"seed", "validation", "test", "stratify", "group", "max_fraction"}


@dataclass
class SplitConfig:
    seed: int = 0
    validation: float = 0.0
    test: float = 0.0
    stratify: str | None = None
    group: str | None = None
    max_fraction: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class StepCall:
    name: str
    params: dict[str, Any]


@dataclass
class Recipe:
    name: str
    kind: str
    sources: list[SourceSpec]
    steps: list[StepCall]
    splits: SplitConfig
    description: str = ""
    license: str = ""
    seed: int = 0
    base_dir: Path = field(default_factory=Path.cwd)
    origin: str = "<recipe>"
    raw: dict[str, Any] = field(default_factory=dict)

    def as_written(self) -> dict[str, Any]:
        """The recipe as the user wrote it (paths untouched): hashed into the version id."""
        return copy.deepcopy(self.raw)


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MedcurateError("recipe not found", file=str(path)) from None
    except UnicodeDecodeError:
        raise MedcurateError("recipe is not UTF-8", file=str(path)) from None
    data = parse_yaml(text, origin=str(path))
    return recipe_from_dict(data, base_dir=path.resolve().parent, origin=str(path))


def recipe_from_dict(data: Any, *, base_dir: Path | None = None, origin: str = "<recipe>") -> Recipe:
    """Check and resolve a recipe given as a mapping (library and one-shot commands use this)."""
    def fail(message: str, key: str | None = None) -> MedcurateError:
        return MedcurateError(message, file=origin, field=key)

    if not isinstance(data, dict):
        raise fail("a recipe must be a YAML mapping")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise fail(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_TOP_KEYS))}", unknown[0])
    for key in ("name", "kind", "sources"):
        if key not in data or data[key] in (None, "", []):
            raise fail("missing required key", key)
    name = str(data["name"])
    if not NAME_PATTERN.match(name):
        raise fail("name may hold letters, digits, '.', '_' and '-' only", "name")
    try:
        row_kind(str(data["kind"]))
    except MedcurateError as exc:
        raise fail(exc.message, "kind") from None
    if not isinstance(data["sources"], list):
        raise fail("sources must be a list", "sources")

    sources: list[SourceSpec] = []
    for index, entry in enumerate(data["sources"]):
        where = f"sources[{index}]"
        if not isinstance(entry, dict):
            raise fail("each source must be a mapping with name, path and format", where)
        unknown = sorted(set(entry) - _SOURCE_KEYS)
        if unknown:
            raise fail(f"unknown key(s) {', '.join(unknown)}", f"{where}.{unknown[0]}")
        for key in ("path",):
            if not entry.get(key):
                raise fail("missing required key", f"{where}.{key}")
        fmt = entry.get("format")
        if not fmt:
            from medcurate.readers import guess_format
            try:
                fmt = guess_format(entry["path"])
            except MedcurateError as exc:
                raise fail(exc.message, f"{where}.format") from None
        try:
            source_format = get_source_format(str(fmt))
        except MedcurateError as exc:
            raise fail(exc.message, f"{where}.format") from None
        options = entry.get("options") or {}
        if not isinstance(options, dict):
            raise fail("options must be a mapping", f"{where}.options")
        source_name = str(entry.get("name") or Path(str(entry["path"])).stem)
        if any(s.name == source_name for s in sources):
            raise fail(f"duplicate source name {source_name!r}", f"{where}.name")
        sources.append(SourceSpec(name=source_name, path=str(entry["path"]), format=str(fmt),
                                  encoding=entry.get("encoding") or source_format.default_encoding,
                                  options=options))

    raw_steps = data.get("steps") or []
    if not isinstance(raw_steps, list):
        raise fail("steps must be a list", "steps")
    steps: list[StepCall] = []
    params: Any
    for index, entry in enumerate(raw_steps):
        where = f"steps[{index}]"
        if isinstance(entry, str):
            step_name, params = entry, {}
        elif isinstance(entry, dict) and len(entry) == 1:
            step_name, params = next(iter(entry.items()))
            params = params or {}
        else:
            raise fail("each step is a step name or a one-key mapping {step_name: {params}}", where)
        if not isinstance(params, dict):
            raise fail("step parameters must be a mapping", f"{where}.{step_name}")
        try:
            get_step(str(step_name))
        except MedcurateError as exc:
            raise fail(exc.message, where) from None
        steps.append(StepCall(str(step_name), dict(params)))

    split_data = data.get("splits") or {}
    if not isinstance(split_data, dict):
        raise fail("splits must be a mapping", "splits")
    unknown = sorted(set(split_data) - _SPLIT_KEYS)
    if unknown:
        raise fail(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_SPLIT_KEYS))}",
                   f"splits.{unknown[0]}")
    seed = int(data.get("seed", split_data.get("seed", 0)) or 0)
    splits = SplitConfig(seed=int(split_data.get("seed", seed)),
                         validation=_size(split_data.get("validation", 0), fail, "splits.validation"),
                         test=_size(split_data.get("test", 0), fail, "splits.test"),
                         stratify=split_data.get("stratify"), group=split_data.get("group"),
                         max_fraction=float(split_data.get("max_fraction", 0.1)))
    return Recipe(name=name, kind=str(data["kind"]), sources=sources, steps=steps, splits=splits,
                  description=str(data.get("description") or ""), license=str(data.get("license") or ""),
                  seed=seed, base_dir=base_dir or Path.cwd(), origin=origin, raw=copy.deepcopy(data))


def _size(value: Any, fail, key: str) -> float:
    """A held-out split size: a fraction in (0, 1) or a whole row count."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise fail("must be a fraction between 0 and 1 or a whole number of rows", key) from None
    if number < 0 or (number >= 1 and not number.is_integer()):
        raise fail("must be a fraction between 0 and 1 or a whole number of rows", key)
    return number
