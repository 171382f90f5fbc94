"""Registries of source formats and steps, and the ledger that keeps every record accounted for.

A recipe names source formats and steps; both are looked up here by name, the way
Data-Juicer composes operators. A *source format* turns one raw record (a JSONL line,
a CSV row, a JSON-array element) into zero or more rows; a *step* turns a list of rows
into a list of rows. Neither may lose a record silently: everything that is not
passed on is declared through the context as dropped by a named filter, rejected with
a reason, or merged into another row, and the runner checks the arithmetic.

Plug-in modules (KG, de-identification, EHR, CMedINS, mixing, annotation) register
with the decorators below; they are imported lazily on the first lookup and must not
import torch.
"""
from __future__ import annotations

import difflib
import importlib
import inspect
import typing
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from medcurate.errors import ConservationError, MedcurateError

PLUGIN_MODULES = (
    "medcurate.sources",
    "medcurate.steps.core",
    "medcurate.kg.sources",
    "medcurate.kg.steps",
    "medcurate.deid.steps",
    "medcurate.ehr.sources",
    "medcurate.ehr.steps",
    "medcurate.cmedins.sources",
    "medcurate.cmedins.steps",
    "medcurate.mixing.sources",
    "medcurate.mixing.steps",
    "medcurate.annotate.sources",
    "medcurate.annotate.steps",
    "medcurate.quality.steps",
    "medcurate.corpora.sources",
    "medcurate.annotate.review_sources",
    "medcurate.annotate.review",
    "medcurate.llm.sources",
    "medcurate.llm.steps",
    "medcurate.evaluate.sources",
)

Row = dict[str, Any]


class RecordError(Exception):
    """Raised by a source parser or a step for one bad record: it becomes a reject, not a crash.

    The message must not contain record text (it lands in rejects.jsonl).
    """

    def __init__(self, reason: str, field: str | None = None):
        self.reason = reason
        self.field = field
        super().__init__(reason)


@dataclass
class Reject:
    reason: str
    step: str
    source: str | None = None
    file: str | None = None
    line: int | None = None
    field: str | None = None
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None}

    @property
    def reason_key(self) -> str:
        """The reason without per-record detail, for counting by reason."""
        return self.reason.split(":", 1)[0].strip()


@dataclass
class StageLedger:
    """Counts of one stage (a source or a step). ``created``/``merged`` are declared by the stage."""

    stage: str
    rows_in: int = 0
    rows_out: int = 0
    created: int = 0
    merged: int = 0
    dropped: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)

    def balance(self) -> int:
        """Zero when the stage's arithmetic holds: in - dropped - rejected - merged + created = out."""
        return (self.rows_in - sum(self.dropped.values()) - sum(self.rejected.values())
                - self.merged + self.created - self.rows_out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "created": self.created,
            "merged": self.merged,
            "dropped": dict(sorted(self.dropped.items())),
            "rejected": dict(sorted(self.rejected.items())),
        }

    def check(self) -> None:
        gap = self.balance()
        if gap:
            verb = "lost" if gap > 0 else "invented"
            raise ConservationError(
                f"stage {self.stage!r} {verb} {abs(gap)} row(s): in={self.rows_in} out={self.rows_out} "
                f"dropped={sum(self.dropped.values())} rejected={sum(self.rejected.values())} "
                f"merged={self.merged} created={self.created}")


class StepContext:
    """What a source parser or step may use besides its rows: where files are, the seed,
    and the ledger through which it declares drops, rejects, merges and new rows."""

    def __init__(self, stage: str, *, base_dir: Path, store: Path, seed: int,
                 rejects: list[Reject], card: CardContributions, grouping: Any = None):
        self.stage = stage
        self.grouping = grouping
        """The engine's distributed grouping (the Ray engine's ``RayGrouping``), in which a bounded
        step keeps the keys of its whole-pass decision; None when the build runs on one machine."""
        self.base_dir = base_dir
        self.store = store
        self.seed = seed
        self.ledger = StageLedger(stage)
        self._rejects = rejects
        self.card = card
        self.declarations = 0
        """How many drops, rejects and merges were declared through this context (a cheap way to
        tell whether a call declared anything)."""
        self.record: int | None = None
        """While a source format parses a record: the record's number in its file (1 for the first,
        malformed ones counted), whichever batch it came in."""

    def resolve_path(self, path: str | Path) -> Path:
        """A path from the recipe, relative to the recipe's folder."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate)

    def drop(self, row: Row | None, filter_name: str, count: int = 1) -> None:
        """A row removed on purpose by a named filter (duplicates, too short, no template …)."""
        self.ledger.dropped[filter_name] += count
        self.declarations += 1

    def reject(self, row: Row | None, reason: str, field: str | None = None) -> None:
        """A row that cannot be used, kept in rejects.jsonl with its location and reason."""
        source = (row or {}).get("source") or {}
        self._rejects.append(Reject(reason=reason, step=self.stage, source=source.get("name"),
                                    file=source.get("file"), line=source.get("line"), field=field,
                                    id=(row or {}).get("id")))
        self.ledger.rejected[Reject(reason, self.stage).reason_key] += 1
        self.declarations += 1

    def created(self, count: int = 1) -> None:
        """Declare rows made in addition to the ones received (one record -> several rows)."""
        self.ledger.created += count

    def merged(self, count: int = 1) -> None:
        """Declare rows folded into other rows (several records -> one row)."""
        self.ledger.merged += count
        self.declarations += 1


@dataclass
class CardContributions:
    """What steps add to the manifest's ``stats`` and to the dataset card."""

    stats: dict[str, Any] = field(default_factory=dict)
    sections: list[tuple[str, str]] = field(default_factory=list)
    artifacts: dict[str, bytes] = field(default_factory=dict)

    def add_section(self, title: str, markdown: str) -> None:
        self.sections.append((title, markdown))

    def add_artifact(self, relative_path: str, content: bytes) -> None:
        """A file published inside the version folder (e.g. ``figures/tasks.png``)."""
        self.artifacts[relative_path] = content


SourceParser = Callable[[Row, "SourceSpec", StepContext], Iterable[Row]]
StepFunction = Callable[..., list[Row]]


class SourceOptions(BaseModel):
    """A source's ``options``; a format declares its own subclass. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


def _one_item_list(value: Any) -> Any:
    """A bare string where a list is expected is a one-item list, never a list of its characters."""
    return [value] if isinstance(value, str) else value


StringList = Annotated[list[str], BeforeValidator(_one_item_list)]


class FileOptions(SourceOptions):
    """Options of the record-file formats: rename/pick/default columns and the CSV delimiter."""

    fields: dict[str, str] | None = None
    keep: StringList | None = None
    defaults: dict[str, Any] | None = None
    keep_unmapped: bool = False
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] | None = None


@dataclass(frozen=True)
class SourceFormat:
    name: str
    parse: SourceParser | None
    file_format: str
    doc: str
    default_encoding: str | None = None
    reader: Callable[[SourceSpec, StepContext], Iterable[Row]] | None = None
    options: type[SourceOptions] = FileOptions
    path_is_ref: bool = False
    """The source's ``path`` names a published version (NAME@VERSION), checked when the recipe loads."""


ROW_LOCAL = "row_local"
WHOLE_PASS = "whole_pass"
STEP_KINDS = (ROW_LOCAL, WHOLE_PASS)


@dataclass(frozen=True)
class StepInfo:
    """A registered step. ``kind`` tells the engine what the step needs: a ``row_local`` step
    maps, filters or flat-maps each row on its own, so any batch of rows can go through it
    (the engine streams it, or runs it in several processes); a ``whole_pass`` step (the
    default) sees every row at once. ``bounded`` builds an object with ``observe(rows, start)``,
    ``finish()`` and ``apply(rows, start)`` that gives the same result as ``function`` in two
    passes over spilled batches, so a streaming build keeps memory bounded. It may also have
    ``decide(rows, start)``, which returns a batch's kept rows at once while it can (dedupe,
    while its digests fit in memory) and None from the first batch it cannot; that batch and
    the rest then take the two passes. A plan whose output is not in input order (``mix``
    shuffles) returns no rows from ``apply`` and yields them from ``remaining()`` afterwards.

    A whole-pass step whose per-row work is heavy splits it off into row-local *phases*, which
    run batch by batch (in worker processes, on Ray) like a row-local step: ``prepare`` maps
    the input rows before the whole pass (``function`` and ``bounded`` then receive its
    output), ``complete`` maps the whole pass's output. Phases count in the step's own stage:
    its ``rows_in`` are the rows ``prepare`` received, its ``rows_out`` the rows ``complete``
    returned, and what any phase declares adds to the one ledger, so the manifest is the one
    the undivided step would give. A phase gets the step's parameters that it names."""

    name: str
    function: StepFunction
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    doc: str
    kind: str = WHOLE_PASS
    bounded: Callable[..., Any] | None = None
    summary: Callable[..., None] | None = None
    params: type[BaseModel] = SourceOptions
    prepare: StepFunction | None = None
    complete: StepFunction | None = None

    def run(self, rows: list[Row], ctx: StepContext, params: dict[str, Any]) -> list[Row]:
        """The whole step on a list of rows: its phases and its whole pass, one after another."""
        if self.prepare is not None:
            rows = self.prepare(rows, ctx, **phase_params(self.prepare, params))
        rows = self.function(rows, ctx, **params)
        if self.complete is not None:
            rows = self.complete(rows, ctx, **phase_params(self.complete, params))
        return rows


def phase_params(function: Callable[..., Any], params: dict[str, Any]) -> dict[str, Any]:
    """The step parameters a phase function names (it may name fewer than the step takes)."""
    names = set(list(inspect.signature(function).parameters)[2:])
    return {name: value for name, value in params.items() if name in names}


def _mentions_list(annotation: Any) -> bool:
    if annotation is list or typing.get_origin(annotation) is list:
        return True
    return any(_mentions_list(arg) for arg in typing.get_args(annotation))


def parameter_model(name: str, function: Callable[..., Any]) -> type[BaseModel]:
    """The pydantic model of a step's parameters, read from its signature and type hints
    (everything after ``rows, ctx``): registering a step is enough to have its recipe entry checked.
    A parameter typed as a list also takes a bare string, as a one-item list."""
    hints = typing.get_type_hints(function, include_extras=True)
    fields: dict[str, Any] = {}
    for parameter in list(inspect.signature(function).parameters.values())[2:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(parameter.name, Any)
        if _mentions_list(annotation):
            annotation = Annotated[annotation, BeforeValidator(_one_item_list)]
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)
    model_name = "".join(part.title() for part in name.split("_")) + "Params"
    return create_model(model_name, __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
                        **fields)


def validation_problem(error: ValidationError, prefix: str, model: type[BaseModel] | None = None) -> tuple[str, str]:
    """The first problem of a pydantic error as (dotted field, message), without the value
    (a value may be record text). A mistyped key comes first: it explains the missing one."""
    problems = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = problems[0]
    location = ".".join(str(part) for part in first["loc"])
    field_name = f"{prefix}.{location}" if location else prefix
    kind = first["type"]
    if kind == "extra_forbidden":
        known = list(model.model_fields) if model is not None and len(first["loc"]) == 1 else []
        close = difflib.get_close_matches(str(first["loc"][-1]), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else (f"; allowed: {', '.join(known)}" if known else "")
        return field_name, f"unknown key{hint}"
    if kind == "missing":
        return field_name, "missing required key"
    return field_name, first["msg"]


def check_params(model: type[BaseModel], values: dict[str, Any], where: str) -> dict[str, Any]:
    """Validated parameters (only the ones given, so the function's defaults stay its own);
    raises MedcurateError naming the first bad field."""
    try:
        checked = model.model_validate(values)
    except ValidationError as exc:
        field_name, message = validation_problem(exc, where, model)
        raise MedcurateError(message, field=field_name) from None
    return {name: getattr(checked, name) for name in checked.model_fields_set}


@dataclass
class SourceSpec:
    """One entry of a recipe's ``sources`` list, resolved."""

    name: str
    path: str
    format: str
    encoding: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    resolved_path: Path | None = None
    sha256: str | None = None
    # what the source really read, for lineage: a version id (never @latest) or linked artifacts
    resolved_ref: str | None = None
    lineage_inputs: list[dict[str, Any]] = field(default_factory=list)


PublishCheck = Callable[[list[Row]], None]

_SOURCE_FORMATS: dict[str, SourceFormat] = {}
_STEPS: dict[str, StepInfo] = {}
_PUBLISH_CHECKS: dict[str, list[PublishCheck]] = {}
_loaded = False


def _documentation(kind: str, name: str, function: Callable, doc: str | None, registry: dict[str, Any]) -> str:
    """One rule for what ``medcurate steps`` shows: the function's docstring. ``doc=`` is only for one
    function registered under several names (a text per name, shown for that name); on a documented
    function's first registration it would hide one of the two texts, so it is refused."""
    own = (function.__doc__ or "").strip()
    if own and doc and not any(_function_of(entry) is function for entry in registry.values()):
        raise ValueError(f"{kind} {name!r}: give the documentation once (docstring or doc=, not both)")
    return (doc or own).strip()


def _function_of(entry: SourceFormat | StepInfo) -> Callable | None:
    return (entry.parse or entry.reader) if isinstance(entry, SourceFormat) else entry.function


def _refuse_duplicate(kind: str, name: str, registry: dict[str, Any], function: Callable) -> None:
    """A name means one thing: a second registration under the same name is an error, unless it is
    the very same function again (a module imported twice)."""
    existing = registry.get(name)
    if existing is None:
        return
    previous = _function_of(existing)
    if previous is not None and (previous.__module__, previous.__qualname__) != (function.__module__, function.__qualname__):
        raise ValueError(f"{kind} {name!r} is registered twice: {previous.__module__}.{previous.__qualname__} "
                         f"and {function.__module__}.{function.__qualname__}")


def register_source(name: str, *, file_format: str, doc: str | None = None, default_encoding: str | None = None,
                    options: type[SourceOptions] = FileOptions):
    """Register a parser ``(raw_record, spec, ctx) -> iterable of rows`` for a source format.

    ``file_format`` is how the file is split into raw records (jsonl, json, csv, tsv, parquet);
    ``options`` is the model of the source's ``options`` (checked when the recipe loads).
    Raise ``RecordError`` for a bad record; return nothing only after ``ctx.drop``.
    """
    def decorator(function: SourceParser) -> SourceParser:
        _refuse_duplicate("source format", name, _SOURCE_FORMATS, function)
        _SOURCE_FORMATS[name] = SourceFormat(name, function, file_format,
                                             _documentation("source format", name, function, doc, _SOURCE_FORMATS),
                                             default_encoding, options=options)
        return function
    return decorator


def register_source_reader(name: str, *, doc: str | None = None, options: type[SourceOptions] = SourceOptions,
                           path_is_ref: bool = False):
    """Register a whole-source reader ``(spec, ctx) -> iterable of rows`` for inputs that are not
    record files (a published dataset version, a directory). It counts its own records in ctx.ledger."""
    def decorator(function):
        _refuse_duplicate("source format", name, _SOURCE_FORMATS, function)
        _SOURCE_FORMATS[name] = SourceFormat(name, None, "", _documentation("source format", name, function, doc,
                                                                            _SOURCE_FORMATS), None, function,
                                             options=options, path_is_ref=path_is_ref)
        return function
    return decorator


def register_step(name: str, *, reads: Iterable[str] = (), writes: Iterable[str] = (), doc: str | None = None,
                  kind: str = WHOLE_PASS, bounded: Callable[..., Any] | None = None,
                  summary: Callable[..., None] | None = None, prepare: StepFunction | None = None,
                  complete: StepFunction | None = None):
    """Register a step ``(rows, ctx, **params) -> rows``; its docstring documents it.

    ``kind=ROW_LOCAL`` promises that the step treats each row on its own (no state across rows),
    so it may run batch by batch; see ``StepInfo``. Such a step's ``card.stats`` of every batch
    are added up (numbers summed, dicts merged) and handed to ``summary(stats, card, **params)``,
    which writes the stats and card sections of the whole step. ``prepare`` and ``complete``
    are the row-local phases of a whole-pass step (see ``StepInfo``)."""
    if kind not in STEP_KINDS:
        raise ValueError(f"step kind must be one of {STEP_KINDS}")
    if kind == ROW_LOCAL and (prepare or complete):
        raise ValueError(f"step {name!r}: a row-local step has no phases (prepare, complete)")

    def decorator(function: StepFunction) -> StepFunction:
        _refuse_duplicate("step", name, _STEPS, function)
        _STEPS[name] = StepInfo(name, function, tuple(reads), tuple(writes),
                                _documentation("step", name, function, doc, _STEPS), kind=kind, bounded=bounded,
                                summary=summary, params=parameter_model(name, function), prepare=prepare,
                                complete=complete)
        return function
    return decorator


def register_publish_check(kind: str):
    """Register ``(rows) -> None``, run on the rows of every version of row kind ``kind`` just
    before it is published; it raises MedcurateError to refuse the whole version (e.g. the EHR
    privacy gate). The core build thus enforces a feature's rule without importing the feature."""
    def decorator(function: PublishCheck) -> PublishCheck:
        _PUBLISH_CHECKS.setdefault(kind, []).append(function)
        return function
    return decorator


def _load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in PLUGIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def source_formats() -> dict[str, SourceFormat]:
    _load_plugins()
    return dict(sorted(_SOURCE_FORMATS.items()))


def steps() -> dict[str, StepInfo]:
    _load_plugins()
    return dict(sorted(_STEPS.items()))


def publish_checks(kind: str) -> list[PublishCheck]:
    _load_plugins()
    return list(_PUBLISH_CHECKS.get(kind, ()))


def get_source_format(name: str) -> SourceFormat:
    formats = source_formats()
    if name not in formats:
        raise MedcurateError(f"unknown source format {name!r}; known: {', '.join(formats)}", field="format")
    return formats[name]


def get_step(name: str) -> StepInfo:
    known = steps()
    if name not in known:
        raise MedcurateError(f"unknown step {name!r}; known steps: {', '.join(known)}", field="steps")
    return known[name]
