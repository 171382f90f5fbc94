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

Everything is checked on load, before any source is read: the recipe, each source and its
``options`` (the format's options model), the splits and every step's parameters (a model
derived from the step function's signature), with unknown keys refused. An error is one line
naming the recipe file and the field.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medcurate.errors import MedcurateError
from medcurate.pipeline import SourceSpec, check_params, get_source_format, get_step, validation_problem
from medcurate.schemas import row_kind
from medcurate.store import check_name, parse_ref
from medcurate.yamlio import parse_yaml


class SplitConfig(BaseModel):
    """``splits:``: held-out sizes (a fraction in [0, 1) or a whole row count), stratify and group columns."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    validation: Annotated[float, Field(ge=0)] = 0.0
    test: Annotated[float, Field(ge=0)] = 0.0
    stratify: str | None = None
    group: str | None = None
    max_fraction: Annotated[float, Field(gt=0, le=1)] = 0.1

    @field_validator("validation", "test")
    @classmethod
    def _fraction_or_count(cls, value: float) -> float:
        if value >= 1 and not value.is_integer():
            raise ValueError("must be a fraction between 0 and 1 or a whole number of rows")
        return value

    @model_validator(mode="after")
    def _train_keeps_rows(self) -> SplitConfig:
        held_out = sum(size if size < 1 else self.max_fraction for size in (self.validation, self.test) if size)
        if held_out > 1:  # exactly 100% is an evaluation set (everything in test), more is impossible
            raise ValueError(f"validation and test together ask for {held_out:.0%} of the rows")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


class _SourceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    path: Annotated[str, Field(min_length=1)]
    format: str | None = None
    encoding: str | None = None
    options: dict[str, Any] | None = None


class _RecipeHead(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1)]
    kind: str
    description: str | None = None
    license: str | None = None
    sources: Annotated[list[Any], Field(min_length=1)]
    steps: list[Any] | None = None
    splits: dict[str, Any] | None = None
    seed: int = 0
    card: dict[str, Any] | None = None


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


def _validated(model: type[BaseModel], data: Any, origin: str, where: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        key, message = validation_problem(exc, where, model)
        raise MedcurateError(message, file=origin, field=key.strip(".") or None) from None


def recipe_from_dict(data: Any, *, base_dir: Path | None = None, origin: str = "<recipe>") -> Recipe:
    """Check and resolve a recipe given as a mapping (library and one-shot commands use this)."""
    def fail(message: str, key: str | None = None) -> MedcurateError:
        return MedcurateError(message, file=origin, field=key)

    if not isinstance(data, dict):
        raise fail("a recipe must be a YAML mapping")
    head: _RecipeHead = _validated(_RecipeHead, data, origin)
    try:
        check_name(head.name)
    except MedcurateError as exc:
        raise fail(exc.message, "name") from None
    try:
        row_kind(head.kind)
    except MedcurateError as exc:
        raise fail(exc.message, "kind") from None
    sources: list[SourceSpec] = []
    for index, entry in enumerate(head.sources):
        sources.append(_source(entry, index, sources, origin))
    steps = [_step(entry, index, origin) for index, entry in enumerate(head.steps or [])]
    split_data = dict(head.splits or {})
    split_data.setdefault("seed", head.seed)
    splits: SplitConfig = _validated(SplitConfig, split_data, origin, "splits")
    return Recipe(name=head.name, kind=head.kind, sources=sources, steps=steps, splits=splits,
                  description=head.description or "", license=head.license or "",
                  seed=head.seed, base_dir=base_dir or Path.cwd(), origin=origin, raw=copy.deepcopy(data))


def _source(entry: Any, index: int, seen: list[SourceSpec], origin: str) -> SourceSpec:
    where = f"sources[{index}]"
    if not isinstance(entry, dict):
        raise MedcurateError("each source must be a mapping with name, path and format", file=origin, field=where)
    checked: _SourceEntry = _validated(_SourceEntry, entry, origin, where)
    fmt = checked.format
    if not fmt:
        from medcurate.readers import guess_format
        try:
            fmt = guess_format(checked.path)
        except MedcurateError as exc:
            raise MedcurateError(exc.message, file=origin, field=f"{where}.format") from None
    try:
        source_format = get_source_format(fmt)
    except MedcurateError as exc:
        raise MedcurateError(exc.message, file=origin, field=f"{where}.format") from None
    if source_format.path_is_ref:
        try:
            parse_ref(checked.path)
        except MedcurateError as exc:
            raise MedcurateError(exc.message, file=origin, field=f"{where}.path") from None
    options = _validated(source_format.options, checked.options or {}, origin, f"{where}.options")
    source_name = checked.name or Path(checked.path).stem
    if any(s.name == source_name for s in seen):
        raise MedcurateError(f"duplicate source name {source_name!r}", file=origin, field=f"{where}.name")
    spec = SourceSpec(name=source_name, path=checked.path, format=fmt,
                      encoding=checked.encoding or source_format.default_encoding,
                      options=options.model_dump(exclude_unset=True))
    return spec


def _step(entry: Any, index: int, origin: str) -> StepCall:
    where = f"steps[{index}]"
    params: Any
    if isinstance(entry, str):
        step_name, params = entry, {}
    elif isinstance(entry, dict) and len(entry) == 1:
        step_name, params = next(iter(entry.items()))
        params = {} if params is None else params
    else:
        raise MedcurateError("each step is a step name or a one-key mapping {step_name: {params}}",
                             file=origin, field=where)
    if not isinstance(params, dict):
        raise MedcurateError("step parameters must be a mapping", file=origin, field=f"{where}.{step_name}")
    try:
        info = get_step(str(step_name))
        checked = check_params(info.params, params, f"{where}.{step_name}")
    except MedcurateError as exc:
        raise MedcurateError(exc.message, file=origin, field=exc.field if exc.field != "steps" else where) from None
    return StepCall(str(step_name), checked)
