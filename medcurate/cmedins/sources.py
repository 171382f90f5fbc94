"""Source formats of the CMedINS task files (CBLUE CHIP-CDEE, CMeEE, CMeIE, CHIP-CDN and
PromptCBLUE IMCS-V2-MRG): each record -> rows with a task, a query and a structured gold answer.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from medcurate.cmedins.formats import (
    CDEE_TENDENCIES,
    CMEEE_TYPES,
    NONE_MARK,
    REPORT_SECTIONS,
    Unrenderable,
    parse,
    render,
)
from medcurate.pipeline import RecordError, Row, SourceSpec, StepContext, register_source


def _require_text(record: Row, name: str = "text") -> str:
    text = record.get(name)
    if not isinstance(text, str) or not text.strip():
        raise RecordError(f"missing field: {name}", field=name)
    return text


def gold_row(task: str, query: str, gold: dict[str, Any], department: str | None = None) -> Row:
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


@register_source("cdee", file_format="json")
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
    yield gold_row("cdee", text, {"events": gold_events})


@register_source("cmeee", file_format="json")
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
    row = gold_row("ner", text, gold)
    row["spans"] = spans
    yield row


@register_source("cmeie", file_format="jsonl")
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
        if not isinstance(spo, dict) or not isinstance(obj, str) or not all(
                isinstance(v, str) and v.strip() for v in (spo.get("subject"), spo.get("predicate"), obj)):
            raise RecordError("bad triple: subject, predicate or object missing", field=f"spo_list[{index}]")
        triple = [spo["subject"].strip(), spo["predicate"].strip(), obj.strip()]
        if triple not in triples:
            triples.append(triple)
    yield gold_row("cmeie", text, {"triples": triples})


@register_source("cdn", file_format="json")
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
    yield gold_row("cdn", text, {"terms": terms})


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


@register_source("imcs_mrg", file_format="jsonl")
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
    row = gold_row("report", "\n".join(turns), {"sections": sections})
    row["dialogue_turns"] = len(turns)
    yield row
