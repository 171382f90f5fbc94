"""CMedINS-style instruction data (IIMedGPT): CBLUE / IMCS source formats and the ``cmedins`` step.

The source formats read the published task files into rows holding the task, the query
text and the structured ``gold`` answer; malformed records (missing spans, offsets outside
the text, unknown entity types) are rejected with their file and line. The ``cmedins``
step then picks one of the task's paraphrased instruction templates per row (seeded) and
renders the answer with the task's renderer (medcurate/cmedins/formats.py); ``gold`` is
published as canonical JSON text (one column type for every task). EHR pair rows become diagnosis and triage rows; dialogue rows with a department become triage rows.
"""
from __future__ import annotations

import hashlib
import io
import random
import re
from collections import Counter
from collections.abc import Iterable
from functools import cache
from typing import Any

import yaml

from medcurate.card import markdown_table
from medcurate.cmedins.formats import (
    CDEE_TENDENCIES,
    CMEEE_TYPES,
    CMEIE_PREDICATES,
    NONE_MARK,
    REPORT_SECTIONS,
    TASK_TITLES,
    TASKS,
    Unrenderable,
    parse,
    render,
)
from medcurate.errors import MedcurateError
from medcurate.pipeline import RecordError, Row, SourceSpec, StepContext, register_source, register_step
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


def _require_text(record: Row, name: str = "text") -> str:
    text = record.get(name)
    if not isinstance(text, str) or not text.strip():
        raise RecordError(f"missing field: {name}", field=name)
    return text


def _gold_row(task: str, query: str, gold: dict[str, Any], department: str | None = None) -> Row:
    """A task row before templating; the answer must read back to the gold (else a reject)."""
    try:
        answer = render(task, gold)
    except Unrenderable as exc:
        raise RecordError(str(exc), field="gold") from None
    if parse(task, answer) != gold:
        raise RecordError("unrenderable: answer does not parse back to the gold", field="gold")
    row: Row = {"task": task, "query": query.strip(), "gold": gold, "answer": answer}
    if department:
        row["department"] = department
    return row


@register_source("cdee", file_format="json", doc="CBLUE CHIP-CDEE clinical finding events -> task cdee.")
def parse_cdee_record(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """CHIP-CDEE clinical finding events -> task cdee.

    Records are ``{text, event: [{core_name, tendency, character, anatomy_list}]}``; records without
    events (the unannotated test file) are dropped as ``no_events``."""
    text = _require_text(record)
    events = record.get("event")
    if not isinstance(events, list):
        raise RecordError("missing field: event", field="event")
    if not events:
        ctx.drop(None, "no_events")
        return
    gold_events = []
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("core_name"), str) or not event["core_name"].strip():
            raise RecordError("bad event: missing core_name", field="event.core_name")
        tendency = str(event.get("tendency") or "").strip()
        if tendency not in CDEE_TENDENCIES:
            raise RecordError("bad event: unknown tendency", field="event.tendency")
        character, anatomy = event.get("character") or [], event.get("anatomy_list") or []
        if not isinstance(character, list) or not isinstance(anatomy, list):
            raise RecordError("bad event: character and anatomy_list must be lists", field="event")
        gold_events.append({"core_name": event["core_name"].strip(), "tendency": tendency,
                            "character": [str(v).strip() for v in character if str(v).strip()],
                            "anatomy_list": [str(v).strip() for v in anatomy if str(v).strip()]})
    yield _gold_row("cdee", text, {"events": gold_events})


@register_source("cmeee", file_format="json", doc="CBLUE CMeEE sentences with entity spans -> task ner.")
def parse_cmeee_record(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """CMeEE entity spans -> task ner.

    Records are ``{text, entities: [{start_idx, end_idx (inclusive), type, entity}]}``; a missing span,
    an offset outside the text, a span that does not match the entity or an unknown type is a reject."""
    text = _require_text(record)
    entities = record.get("entities")
    if not isinstance(entities, list):
        raise RecordError("missing spans: no entities list", field="entities")
    grouped: dict[str, list[str]] = {}
    spans = []
    for index, entity in enumerate(entities):
        where = f"entities[{index}]"
        if not isinstance(entity, dict) or not all(isinstance(entity.get(k), int) for k in ("start_idx", "end_idx")):
            raise RecordError("missing spans: start_idx/end_idx", field=where)
        start, end = entity["start_idx"], entity["end_idx"]
        if start < 0 or end < start or end >= len(text):
            raise RecordError(f"offset outside text: [{start}, {end}] in a text of {len(text)}", field=where)
        if entity.get("type") not in CMEEE_TYPES:
            raise RecordError(f"unknown entity type: {str(entity.get('type'))[:20]}", field=f"{where}.type")
        surface = text[start:end + 1]
        if entity.get("entity") not in (None, surface):
            raise RecordError("span mismatch: entity differs from text[start:end+1]", field=f"{where}.entity")
        names = grouped.setdefault(entity["type"], [])
        if surface not in names:
            names.append(surface)
        spans.append({"start": start, "end": end, "type": entity["type"], "entity": surface})
    gold = {"entities": {code: grouped[code] for code in CMEEE_TYPES if code in grouped}}
    row = _gold_row("ner", text, gold)
    row["spans"] = spans
    yield row


@register_source("cmeie", file_format="jsonl", doc="CBLUE CMeIE sentences with SPO triples -> task cmeie.")
def parse_cmeie_record(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """CMeIE relation triples (JSON Lines) -> task cmeie.

    Records are ``{text, spo_list: [{subject, predicate, object: {@value}, …}]}``."""
    text = _require_text(record)
    spo_list = record.get("spo_list")
    if not isinstance(spo_list, list):
        raise RecordError("missing field: spo_list", field="spo_list")
    if not spo_list:
        ctx.drop(None, "no_triples")
        return
    triples = []
    for index, spo in enumerate(spo_list):
        obj = (spo.get("object") or {}).get("@value") if isinstance(spo, dict) else None
        if not isinstance(spo, dict) or not all(isinstance(v, str) and v.strip()
                                                for v in (spo.get("subject"), spo.get("predicate"), obj)):
            raise RecordError("bad triple: subject, predicate or object missing", field=f"spo_list[{index}]")
        triple = [spo["subject"].strip(), spo["predicate"].strip(), obj.strip()]
        if triple not in triples:
            triples.append(triple)
    yield _gold_row("cmeie", text, {"triples": triples})


@register_source("cdn", file_format="json", doc="CBLUE CHIP-CDN raw diagnosis -> standard terms (task cdn).")
def parse_cdn_record(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """CHIP-CDN raw diagnosis -> standard terms (task cdn).

    Records are ``{text, normalized_result: "term##term"}``; a BOM character in the text is removed."""
    text = _require_text(record).replace("\ufeff", "")
    result = record.get("normalized_result")
    if not isinstance(result, str) or not result.strip():
        raise RecordError("missing field: normalized_result", field="normalized_result")
    terms = []
    for term in result.split("##"):
        if term.strip() and term.strip() not in terms:
            terms.append(term.strip())
    yield _gold_row("cdn", text, {"terms": terms})


_MRG_DIALOGUE = re.compile(r"问诊对话历史[：:]\s*\n(.*?)\n说明[：:]", re.S)
_SPEAKER = re.compile(r"^(患者|医生)[：:](.*)$")


def parse_imcs_report(target: str) -> dict[str, str]:
    """The six IMCS-21 report sections of a PromptCBLUE MRG target (主诉：… lines)."""
    sections: dict[str, str] = {}
    for line in target.splitlines():
        label, colon, value = line.strip().partition("：")
        if colon and label in REPORT_SECTIONS and label not in sections:
            sections[label] = value.strip()
    return sections


@register_source("imcs_mrg", file_format="jsonl", doc="PromptCBLUE IMCS-V2-MRG examples: dialogue -> report.")
def parse_imcs_mrg(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """PromptCBLUE IMCS-V2-MRG examples -> task report (dialogue -> six-section report).

    The dialogue is parsed out of ``input`` (患者/医生 lines), the six report sections out of ``target``; other tasks are dropped as ``other_task``,
    records without a target (the test file) as ``no_target``."""
    if record.get("task_dataset") != "IMCS-V2-MRG":
        ctx.drop(None, "other_task")
        return
    target = record.get("target")
    if not isinstance(target, str) or not target.strip():
        ctx.drop(None, "no_target")
        return
    match = _MRG_DIALOGUE.search(str(record.get("input") or ""))
    if not match:
        raise RecordError("missing dialogue: no 问诊对话历史 block", field="input")
    turns = []
    for line in match.group(1).splitlines():
        speaker = _SPEAKER.match(line.strip())
        if speaker and speaker.group(2).strip():
            turns.append(f"{speaker.group(1)}：{speaker.group(2).strip()}")
    if not turns:
        raise RecordError("missing dialogue: no 患者/医生 turns", field="input")
    sections = parse_imcs_report(target)
    missing = [name for name in REPORT_SECTIONS if name not in sections]
    if missing:
        raise RecordError(f"missing report section: {missing[0]}", field="target")
    # a section that is present but empty (辅助检查：) means none was done: written 无
    sections = {name: value or NONE_MARK for name, value in sections.items()}
    row = _gold_row("report", "\n".join(turns), {"sections": sections})
    row["dialogue_turns"] = len(turns)
    yield row


def _first_user_turn(messages: list[dict[str, str]]) -> str:
    return next((m.get("content", "") for m in messages if m.get("role") == "user"), "")


def _ehr_gold_rows(row: Row, with_triage: bool) -> list[Row]:
    diagnoses = list(row.get("diagnoses") or [row["diagnosis"]])
    gold = {"primary": row["diagnosis"], "others": [d for d in diagnoses if d != row["diagnosis"]],
            "uncertain": bool(row.get("diagnosis_uncertain"))}
    department = str(row.get("department") or "")
    made = [_gold_row("diagnosis", row["input"], gold, department)]
    if with_triage and department and row.get("chief_complaint"):
        made.append(_gold_row("triage", row["chief_complaint"], {"department": department}, department))
    return made


def _template_index(seed: int, row: Row, count: int) -> int:
    source = row.get("source") or {}
    basis = f"{seed}|{row['task']}|{source.get('name')}|{source.get('file')}|{source.get('line')}|{row['query']}"
    return int.from_bytes(hashlib.sha256(basis.encode("utf-8")).digest()[:4], "big") % count


@register_step("cmedins", reads=("task", "query", "gold", "input", "diagnosis", "messages", "department"),
               writes=("instruction", "query", "answer", "task", "template_id", "gold", "department"))
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
    """
    tasks: list[Row] = []
    for row in rows:
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
                    continue
                made = [dict(_gold_row("triage", query, {"department": row["department"]}, row["department"]),
                             **provenance)]
            else:
                ctx.reject(row, "unknown row: neither a task row, an EHR pair nor a dialogue with a department")
                continue
        except RecordError as exc:
            ctx.reject(row, exc.reason, exc.field)
            continue
        if made[0] is not row:
            ctx.merged(1)
            ctx.created(len(made))
        tasks.extend(made)

    if max_per_task is not None:
        tasks = _sample_per_task(tasks, ctx, _limits(tasks, max_per_task))
    if max_task_share is not None:
        tasks = _sample_per_task(tasks, ctx, share_limits(Counter(row["task"] for row in tasks), float(max_task_share)))
    for row in tasks:
        templates = load_templates(row["task"])
        template = templates[_template_index(ctx.seed, row, len(templates))]
        row["instruction"] = template["instruction"]
        if row["task"] == "cmeie":
            row["instruction"] += f"\n可用的关系类型：{'、'.join(CMEIE_PREDICATES)}"
        row["template_id"] = template["id"]
        row.setdefault("department", "")
    _card(tasks, ctx)
    for row in tasks:
        row["gold"] = canonical_json(row["gold"])
    return tasks


def _limits(rows: list[Row], max_per_task: int | dict) -> dict[str, int]:
    tasks = {row["task"] for row in rows}
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


def _sample_per_task(rows: list[Row], ctx: StepContext, limits: dict[str, int]) -> list[Row]:
    by_task: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        by_task.setdefault(row["task"], []).append(index)
    keep: set[int] = set()
    for task, indices in sorted(by_task.items()):
        limit = limits.get(task, len(indices))
        chosen = indices if len(indices) <= limit else random.Random(f"{ctx.seed}:{task}").sample(indices, limit)
        keep.update(chosen)
        if len(indices) > limit:
            ctx.drop(None, f"max_per_task:{task}", len(indices) - limit)
    return [row for index, row in enumerate(rows) if index in keep]


def task_department_table(rows: list[Row]) -> tuple[list[str], list[str], dict[tuple[str, str], int]]:
    """Tasks, departments (largest first) and counts per (task, department)."""
    counts = Counter((row["task"], row.get("department") or UNKNOWN_DEPARTMENT) for row in rows)
    tasks = [task for task in TASKS if any(t == task for t, _ in counts)]
    totals = Counter()
    for (_, department), number in counts.items():
        totals[department] += number
    departments = sorted(totals, key=lambda d: (-totals[d], d))
    return tasks, departments, dict(counts)


def task_department_chart(rows: list[Row], max_departments: int = 12) -> bytes:
    """A stacked bar chart of rows per task by department (IIMedGPT figure 2), as PNG bytes.

    Departments are keyed D1, D2 … (the card's table gives the names): the chart then needs
    no CJK font and its bytes are the same on every machine.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.figure import Figure

    tasks, departments, counts = task_department_table(rows)
    shown = departments[:max_departments]
    figure = Figure(figsize=(8, 4.5), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    series = [(f"D{index + 1}", [name]) for index, name in enumerate(shown)]
    if len(departments) > len(shown):
        series.append(("other", departments[len(shown):]))
    bottoms = [0] * len(tasks)
    colours = plt.get_cmap("tab20")
    for index, (key, group) in enumerate(series):
        values = [sum(counts.get((task, name), 0) for name in group) for task in tasks]
        axes.bar(tasks, values, bottom=bottoms, label=key, color=colours(index % 20))
        bottoms = [b + v for b, v in zip(bottoms, values)]
    axes.set_ylabel("rows")
    axes.set_title("CMedINS rows per task and department")
    axes.legend(fontsize=7, ncol=2, loc="upper right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _card(rows: list[Row], ctx: StepContext) -> None:
    tasks, departments, counts = task_department_table(rows)
    ctx.card.stats["cmedins"] = {
        "tasks": {task: sum(n for (t, _), n in counts.items() if t == task) for task in tasks},
        "task_department": {task: {d: counts[(task, d)] for d in departments if (task, d) in counts} for task in tasks},
        "templates": dict(sorted(Counter(row["template_id"] for row in rows).items())),
    }
    header = ["chart key", "department", *tasks, "total"]
    table_rows = [[f"D{i + 1}" if i < 12 else "other", department,
                   *(counts.get((task, department), 0) for task in tasks),
                   sum(counts.get((task, department), 0) for task in tasks)]
                  for i, department in enumerate(departments)]
    table_rows.append(["", "total", *(ctx.card.stats["cmedins"]["tasks"][task] for task in tasks), len(rows)])
    legend = ", ".join(f"{task} = {TASK_TITLES[task]}" for task in tasks)
    body = (markdown_table(header, table_rows) + f"\n\nTasks: {legend}.\n\n"
            "![rows per task and department](figures/task_department.png)")
    ctx.card.add_section("Task x department", body)
    if rows:
        ctx.card.add_artifact("figures/task_department.png", task_department_chart(rows))
