"""CMedINS-style instruction data (IIMedGPT): the ``cmedins`` step.

The source formats (medcurate/cmedins/sources.py) read the published task files into rows holding the task, the query
text and the structured ``gold`` answer; malformed records (missing spans, offsets outside
the text, unknown entity types) are rejected with their file and line. The ``cmedins``
step then picks one of the task's paraphrased instruction templates per row (seeded) and
renders the answer with the task's renderer (medcurate/cmedins/formats.py); ``gold`` is
published as canonical JSON text (one column type for every task). EHR pair rows become diagnosis and triage rows; dialogue rows with a department become triage rows.
"""
from __future__ import annotations

import hashlib
import random
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import yaml

from medcurate.card import markdown_table, stacked_bar_chart
from medcurate.cmedins.formats import (
    CMEIE_PREDICATES,
    TASK_TITLES,
    TASKS,
)
from medcurate.cmedins.sources import gold_row
from medcurate.errors import MedcurateError
from medcurate.pipeline import RecordError, Row, StepContext, register_step
from medcurate.resources import data_folder
from medcurate.schemas import canonical_json

UNKNOWN_DEPARTMENT = "(unknown)"


@cache
def load_templates(task: str) -> tuple[dict[str, str], ...]:
    """The paraphrased instruction templates of one task (templates/cmedins/<task>.yaml)."""
    path = data_folder("templates") / "cmedins" / f"{task}.yaml"
    if not path.exists():
        raise MedcurateError(f"no instruction templates for task {task!r}", file=str(path))
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    templates = tuple(data.get("templates") or ())
    if len(templates) < 3 or any(not t.get("id") or not t.get("instruction") for t in templates):
        raise MedcurateError("a task needs at least 3 templates, each with id and instruction", file=str(path),
                             field="templates")
    return templates


def _first_user_turn(messages: list[dict[str, str]]) -> str:
    return next((m.get("content", "") for m in messages if m.get("role") == "user"), "")


def _ehr_gold_rows(row: Row, with_triage: bool) -> list[Row]:
    diagnoses = list(row.get("diagnoses") or [row["diagnosis"]])
    gold = {"primary": row["diagnosis"], "others": [d for d in diagnoses if d != row["diagnosis"]],
            "uncertain": bool(row.get("diagnosis_uncertain"))}
    department = str(row.get("department") or "")
    made = [gold_row("diagnosis", row["input"], gold, department)]
    if with_triage and department and row.get("chief_complaint"):
        made.append(gold_row("triage", row["chief_complaint"], {"department": department}, department))
    return made


def _template_index(seed: int, row: Row, count: int) -> int:
    source = row.get("source") or {}
    basis = f"{seed}|{row['task']}|{source.get('name')}|{source.get('file')}|{source.get('line')}|{row['query']}"
    return int.from_bytes(hashlib.sha256(basis.encode("utf-8")).digest()[:4], "big") % count


def _task_rows(row: Row, ctx: StepContext, triage: bool) -> list[Row]:
    """The task rows one input row gives (none when it is dropped or rejected, declared on ``ctx``)."""
    provenance = {"source": row["source"]} if row.get("source") else {}
    try:
        if row.get("task") in TASKS and isinstance(row.get("gold"), dict):
            made = [row]
        elif row.get("input") and row.get("diagnosis"):
            made = [dict(item, **provenance) for item in _ehr_gold_rows(row, triage)]
        elif isinstance(row.get("messages"), list):
            query = _first_user_turn(row["messages"]).strip()
            if not row.get("department") or not query:
                ctx.drop(row, "no_department" if query else "no_user_turn")
                return []
            made = [dict(gold_row("triage", query, {"department": row["department"]}, row["department"]),
                         **provenance)]
        else:
            ctx.reject(row, "unknown row: neither a task row, an EHR pair nor a dialogue with a department")
            return []
    except RecordError as exc:
        ctx.reject(row, exc.reason, exc.field)
        return []
    if made[0] is not row:
        ctx.merged(1)
        ctx.created(len(made))
    return made


def _with_template(row: Row, seed: int) -> None:
    templates = load_templates(row["task"])
    template = templates[_template_index(seed, row, len(templates))]
    row["instruction"] = template["instruction"]
    if row["task"] == "cmeie":
        row["instruction"] += f"\n可用的关系类型：{'、'.join(CMEIE_PREDICATES)}"
    row["template_id"] = template["id"]
    row.setdefault("department", "")


_TASK_NAMES = list(TASKS)


def render_task_rows(rows: list[Row], ctx: StepContext, triage: bool = True) -> list[Row]:
    """The row-local phase of ``cmedins`` (run in batches, in parallel): each input row's task
    rows, each with its seeded template as ``instruction`` and ``gold`` as canonical JSON text."""
    tasks: list[Row] = []
    for row in rows:
        for made in _task_rows(row, ctx, triage):
            _with_template(made, ctx.seed)
            made["gold"] = canonical_json(made["gold"])
            tasks.append(made)
    return tasks


def _department(row: Row) -> str:
    return row.get("department") or UNKNOWN_DEPARTMENT


class _BoundedCmedins:
    """The caps of ``cmedins`` in two passes over the rendered task rows, with the same rows,
    counts and card: the first pass keeps each row's task, department and template as a code (a
    few bytes a row), the per-task samples are then drawn as the whole-pass step draws them
    (``_capped``, over task codes), and the second pass keeps the chosen rows."""

    def __init__(self, ctx: StepContext, scratch: Path, max_per_task: int | dict | None = None,
                 max_task_share: float | None = 0.4, **_rendering):
        self.ctx = ctx
        self.max_per_task, self.max_task_share = max_per_task, max_task_share
        self.codes: dict[tuple[str, str, str], int] = {}
        self.parts: list[np.ndarray] = []
        self.chosen: np.ndarray | None = None

    def observe(self, rows: list[Row], start: int) -> None:
        codes = [self.codes.setdefault((row["task"], _department(row), row["template_id"]), len(self.codes))
                 for row in rows]
        self.parts.append(np.asarray(codes, dtype=np.int64))

    def finish(self) -> None:
        keys = list(self.codes)
        made = np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.int64)
        task_of = np.asarray([_TASK_NAMES.index(task) for task, _, _ in keys] or [0], dtype=np.int64)[made]
        self.chosen = _capped(task_of, self.ctx, self.max_per_task, self.max_task_share)
        kept = Counter(made[self.chosen].tolist())
        _card(_summed(kept, keys, (0, 1)), _summed(kept, keys, (2,)), self.ctx)

    def apply(self, rows: list[Row], start: int) -> list[Row]:
        assert self.chosen is not None
        return [row for row, keep in zip(rows, self.chosen[start:start + len(rows)].tolist(), strict=True) if keep]


def _summed(counts: Counter, keys: list[tuple[str, str, str]], fields: tuple[int, ...]) -> Counter:
    total: Counter = Counter()
    for code, number in counts.items():
        key = keys[code]
        total[key[fields[0]] if len(fields) == 1 else tuple(key[index] for index in fields)] += number
    return total


@register_step("cmedins", reads=("task", "query", "gold", "input", "diagnosis", "messages", "department"),
               writes=("instruction", "query", "answer", "task", "template_id", "gold", "department"),
               prepare=render_task_rows, bounded=_BoundedCmedins)
def cmedins(rows: list[Row], ctx: StepContext, triage: bool = True, max_per_task: int | dict | None = None,
            max_task_share: float | None = 0.4) -> list[Row]:
    """Rows from the task source formats, EHR pairs and department-labelled dialogues -> instruction rows.

    Each row gets one of its task's paraphrased templates (seeded by the row) as ``instruction``,
    the rendered answer and the structured ``gold``. An EHR pair gives a diagnosis row and, with
    ``triage``, a triage row from its chief complaint; a dialogue with a department gives a triage
    row from its first user turn. ``max_per_task`` keeps a seeded sample per task (a number for every
    task, or ``{cdn: 500}`` per task); ``max_task_share`` (default 0.4, ``null`` to switch off) then
    samples down any task that would make up more than that share of the rows, so one large task
    (CDN) does not dominate unless asked. CMeIE instructions list the relation types an answer may use.

    The rendering is the row-local phase ``render_task_rows``; this whole pass over its rows draws
    the caps and writes the card.
    """
    chosen = _capped(np.asarray([_TASK_NAMES.index(row["task"]) for row in rows], dtype=np.int64), ctx,
                     max_per_task, max_task_share)
    tasks = [row for row, keep in zip(rows, chosen.tolist(), strict=True) if keep]
    _card(Counter((row["task"], _department(row)) for row in tasks), Counter(row["template_id"] for row in tasks), ctx)
    return tasks


def _capped(task_of: np.ndarray, ctx: StepContext, max_per_task: int | dict | None,
            max_task_share: float | None) -> np.ndarray:
    """Which task rows (given by their task codes, in order) the caps keep: a seeded sample per
    task for ``max_per_task``, then for ``max_task_share``; the drops are declared on ``ctx``."""
    alive = np.ones(len(task_of), dtype=bool)
    if max_per_task is not None:
        present = {_TASK_NAMES[index] for index in np.unique(task_of).tolist()}
        alive = _sample_per_task(task_of, alive, ctx, _limits(present, max_per_task))
    if max_task_share is not None:
        values, numbers = np.unique(task_of[alive], return_counts=True)
        counts = Counter({_TASK_NAMES[index]: count for index, count in zip(values.tolist(), numbers.tolist(), strict=True)})
        alive = _sample_per_task(task_of, alive, ctx, share_limits(counts, float(max_task_share)))
    return alive


def _limits(tasks: set[str], max_per_task: int | dict) -> dict[str, int]:
    if isinstance(max_per_task, dict):
        unknown = sorted(set(max_per_task) - set(TASKS))
        if unknown:
            raise MedcurateError(f"max_per_task names an unknown task {unknown[0]!r}; tasks: {', '.join(TASKS)}",
                                 field="steps.cmedins.max_per_task")
        return {task: int(limit) for task, limit in max_per_task.items()}
    return dict.fromkeys(tasks, int(max_per_task))


def share_limits(counts: Counter, share: float) -> dict[str, int]:
    """Per-task limits so that the largest task makes up at most ``share`` of the rows kept: the
    largest cap ``c`` with ``c <= share * sum(min(n, c))``, but never below the second-largest task,
    so only the one dominating task is cut (when two tasks are both large, both stay whole)."""
    if not 0 < share <= 1:
        raise MedcurateError("max_task_share must be in (0, 1]", field="steps.cmedins.max_task_share")
    limits = dict(counts)
    if len(limits) < 2 or max(limits.values()) <= share * sum(limits.values()):
        return limits
    low, high = 1, max(limits.values())
    while low < high:
        cap = (low + high + 1) // 2
        if cap <= share * sum(min(n, cap) for n in limits.values()):
            low = cap
        else:
            high = cap - 1
    second = sorted(limits.values())[-2]
    return {task: min(n, max(low, second)) for task, n in limits.items()}


def _sample_per_task(task_of: np.ndarray, alive: np.ndarray, ctx: StepContext, limits: dict[str, int]) -> np.ndarray:
    """``alive`` less the rows past each task's limit: a seeded sample of the task's alive rows."""
    keep = alive.copy()
    for task in sorted({_TASK_NAMES[index] for index in np.unique(task_of[alive]).tolist()}):
        positions = np.flatnonzero(alive & (task_of == _TASK_NAMES.index(task)))
        limit = limits.get(task, len(positions))
        if len(positions) > limit:
            picked = random.Random(f"{ctx.seed}:{task}").sample(range(len(positions)), limit)
            keep[positions] = False
            keep[positions[picked]] = True
            ctx.drop(None, f"max_per_task:{task}", len(positions) - limit)
    return keep


def task_department_table(rows: list[Row]) -> tuple[list[str], list[str], dict[tuple[str, str], int]]:
    """Tasks, departments (largest first) and counts per (task, department)."""
    return task_department_counts(Counter((row["task"], row.get("department") or UNKNOWN_DEPARTMENT) for row in rows))


def task_department_counts(counts: Counter) -> tuple[list[str], list[str], dict[tuple[str, str], int]]:
    """``task_department_table`` from counts per (task, department); zero counts are left out."""
    counts = Counter({key: number for key, number in counts.items() if number})
    tasks = [task for task in TASKS if any(t == task for t, _ in counts)]
    totals: Counter[str] = Counter()
    for (_, department), number in counts.items():
        totals[department] += number
    departments = sorted(totals, key=lambda d: (-totals[d], d))
    return tasks, departments, dict(counts)


def task_department_chart(rows: list[Row], max_departments: int = 12) -> tuple[bytes, bytes, bool]:
    """A stacked bar chart of rows per task by department (IIMedGPT figure 2): SVG with the
    department names as text, PNG beside it (names with a CJK font, else the keys D1, D2 …)."""
    return _chart(*task_department_table(rows), max_departments=max_departments)


def _chart(tasks: list[str], departments: list[str], counts: dict[tuple[str, str], int],
           max_departments: int = 12) -> tuple[bytes, bytes, bool]:
    shown = departments[:max_departments]
    groups = [(name, [name]) for name in shown]
    keys = [f"D{index + 1}" for index in range(len(shown))]
    if len(departments) > len(shown):
        groups.append(("其他", departments[len(shown):]))
        keys.append("other")
    series = [(label, [sum(counts.get((task, name), 0) for name in members) for task in tasks])
              for label, members in groups]
    return stacked_bar_chart(tasks, series, title="CMedINS rows per task and department", ylabel="rows", keys=keys)


def _card(counts: Counter, templates: Counter, ctx: StepContext) -> None:
    tasks, departments, table = task_department_counts(counts)
    ctx.card.stats["cmedins"] = {
        "tasks": {task: sum(n for (t, _), n in table.items() if t == task) for task in tasks},
        "task_department": {task: {d: table[(task, d)] for d in departments if (task, d) in table} for task in tasks},
        "templates": dict(sorted(templates.items())),
    }
    total = sum(table.values())
    header = ["chart key", "department", *tasks, "total"]
    table_rows = [[f"D{i + 1}" if i < 12 else "other", department,
                   *(table.get((task, department), 0) for task in tasks),
                   sum(table.get((task, department), 0) for task in tasks)]
                  for i, department in enumerate(departments)]
    table_rows.append(["", "total", *(ctx.card.stats["cmedins"]["tasks"][task] for task in tasks), total])
    legend = ", ".join(f"{task} = {TASK_TITLES[task]}" for task in tasks)
    body = markdown_table(header, table_rows) + f"\n\nTasks: {legend}."
    if total:
        svg, png, png_has_names = _chart(tasks, departments, table)
        ctx.card.add_artifact("figures/task_department.svg", svg)
        ctx.card.add_artifact("figures/task_department.png", png)
        keyed = "" if png_has_names else " (PNG keyed by the chart keys above)"
        body += ("\n\n![rows per task and department](figures/task_department.svg)\n\n"
                 f"[PNG version](figures/task_department.png){keyed}")
    ctx.card.add_section("Task x department", body)
