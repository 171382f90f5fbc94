"""Source formats that read knowledge graphs into one row per triple.

Each row is ``{head, head_type, relation, tail, tail_type, department}`` with the relation already
canonical (medcurate/kg/graph.py). Item-level clean-up inside a record (truncated ``...`` items,
empty cells, repeated items) is counted in ``stats["kg_sources"]``; a record with no triple at all
is dropped as ``no_triples``; a record without its entity name is a reject with file:line.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from medcurate.kg.graph import default_types, normalise_entity, normalise_relation
from medcurate.pipeline import RecordError, Row, SourceSpec, StepContext, register_source

XYWY_LIST_KEYS = ("symptom", "acompany", "cure_department", "common_drug", "recommand_drug", "check", "do_eat",
                  "not_eat", "recommand_eat", "cure_way", "drug_detail", "category")

# The Chinese headers of the xywy CSV export -> the medical.json keys.
XYWY_CSV_HEADERS = {"疾病名称": "name", "疾病描述": "desc", "疾病种类": "category", "科室": "cure_department",
                    "病因": "cause", "症状": "symptom", "检查": "check", "并发症": "acompany", "花费": "cost_money",
                    "疗程": "cure_lasttime", "疗法": "cure_way", "治愈率": "cured_prob", "易感人群": "easy_get",
                    "感染概率": "get_prob", "感染途径": "get_way", "预防措施": "prevent", "推荐药物": "recommand_drug",
                    "常用药物": "common_drug", "具体药物": "drug_detail", "可以吃": "do_eat", "不可以吃": "not_eat",
                    "推荐吃": "recommand_eat", "是否纳入医保": "yibao_status"}

HEALTH39_COLUMNS = {"alias": "alias", "part": "body_part", "department": "belongs_to_department",
                    "checklist": "need_check", "symptom": "has_symptom", "complication": "acompany_with",
                    "treatment": "cure_way", "drug": "common_drug"}

_PRODUCT = re.compile(r"^(?P<producer>.+?)\((?P<drug>[^()]+)\)$")
_DETAIL_MARK = "[详细]"
_ALIAS_SPLIT = re.compile(r"[,，、;；]")
_TREATMENT_SPLIT = re.compile(r"[、，,；;\s]+")
# A treatment cell that is a sentence, not a list ("本病无特效治疗，主要包括……", "目前暂无……").
_SENTENCE_ITEM = re.compile(r"^(主要|本病|目前|一般|通常|可以|需要)|包括")
_TRUNCATION_MARKS = ("...", "…")
# Cells the scrape fills when it has nothing: not an entity.
# Link texts and questions the scrape left in list cells (">>", "应该如何用药？用什么药？").
_WEB_LEFTOVER_ITEM = re.compile(r"^[>»\s.…]+$|[?？]")
PLACEHOLDERS = frozenset({"暂无相关资料", "暂无资料", "暂无", "无", "不详", "未知", "无相关资料"})

# Shapes of the values of other columns (period, rate, money, age): one of them in a disease-name
# or list column means the record's columns are shifted (39Health has such records).
_VALUE_SHAPES = (
    ("a duration", re.compile(r"^约?\d+(\.\d+)?\s*([-~～—至]+\s*\d+(\.\d+)?)?\s*(天|日|周|个月|月|年)")),
    ("a price", re.compile(r"\d\s*元|收费")),
    ("an age range", re.compile(r"\d+\s*[-~～至]\s*\d+\s*岁")),
    ("a percentage", re.compile(r"\d\s*%")),
)
_NAME_ONLY_SHAPES = (("a treatment or examination", re.compile(r"(治疗|检查)$")),)
# Columns checked item by item; drugs may carry a percentage (0.9%氯化钠注射液).
_SHAPE_CHECKED_COLUMNS = {"part": 4, "department": 4, "checklist": 4, "symptom": 4, "complication": 4, "drug": 3}


def value_shape(text: str, shapes=_VALUE_SHAPES) -> str | None:
    """The name of the other column's value shape ``text`` has (a duration, a price …), if any."""
    return next((name for name, pattern in shapes if pattern.search(text)), None)


def check_39health_shape(record: Row) -> None:
    """Reject a record whose name or list cells hold another column's kind of value."""
    name = normalise_entity(record.get("name"))
    shape = value_shape(name, _VALUE_SHAPES + _NAME_ONLY_SHAPES)
    if shape:
        raise RecordError(f"shifted columns: name holds {shape}", field="name")
    for column, checked in _SHAPE_CHECKED_COLUMNS.items():
        for item in str(record.get(column) or "").replace(_DETAIL_MARK, " ").split():
            shape = value_shape(item, _VALUE_SHAPES[:checked])
            if shape:
                raise RecordError(f"shifted columns: {column} holds {shape}", field=column)


def one_department(departments: list[str]) -> list[str]:
    """A department path (``中医科 中医综合``, ``内科 呼吸内科``) as one department: the most specific
    item that is a clinical department (ends in 科), else the first (``传染科 肝病`` -> 传染科)."""
    if len(departments) <= 1:
        return departments
    return [departments[-1] if departments[-1].endswith("科") else departments[0]]


def _count(ctx: StepContext, spec: SourceSpec, reason: str, number: int = 1) -> None:
    """Item-level clean-up inside a record (not rows, so not the ledger): kept in the card stats."""
    if number:
        counts = ctx.card.stats.setdefault("kg_sources", {}).setdefault(spec.name, {})
        counts[reason] = counts.get(reason, 0) + number


def _triple(head: str, relation: str, tail: str, department: str = "", head_type: str | None = None,
            tail_type: str | None = None) -> Row:
    default_head, default_tail = default_types(relation)
    return {"head": head, "head_type": head_type or default_head, "relation": relation, "tail": tail,
            "tail_type": tail_type or default_tail, "department": department}


def _clean_items(items: Iterable[str], ctx: StepContext, spec: SourceSpec) -> list[str]:
    """Normalised, de-duplicated items; empties and placeholders dropped and counted. An item cut
    with ``...``/``…`` is kept with the mark: the kg_qa step keeps it when its stem is a complete
    name found elsewhere in the graph, and drops it as ``truncated_item`` otherwise."""
    kept: list[str] = []
    for item in items:
        name = normalise_entity(item).rstrip("。")
        if not name or name == _DETAIL_MARK:
            continue
        if name in PLACEHOLDERS or name.startswith("暂无"):
            _count(ctx, spec, "placeholder_item")
            continue
        if _WEB_LEFTOVER_ITEM.search(name):
            _count(ctx, spec, "web_leftover_item")
            continue
        if name.endswith(_TRUNCATION_MARKS):
            _count(ctx, spec, "truncated_item")
            name = name.rstrip(".…").strip() + "…"
        if name in kept:
            _count(ctx, spec, "repeated_item")
            continue
        kept.append(name)
    return kept


def _as_list(value: object, csv_cell: bool) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(item) for item in value]
    if isinstance(value, str):
        return value.split(",") if csv_cell else [value]
    raise RecordError("bad list: expected a list of names", field=None)


def _xywy_rows(record: Row, spec: SourceSpec, ctx: StepContext, csv_cells: bool) -> list[Row]:
    name = normalise_entity(record.get("name"))
    if not name:
        raise RecordError("missing field: name", field="name")
    lists: dict[str, list[str]] = {}
    for key in XYWY_LIST_KEYS:
        try:
            lists[key] = _clean_items(_as_list(record.get(key), csv_cells), ctx, spec)
        except RecordError:
            raise RecordError("bad list: expected a list of names", field=key) from None
    lists["cure_department"] = one_department(lists["cure_department"])
    departments = lists["cure_department"]
    department = departments[-1] if departments else ""
    rows: list[Row] = []
    for key in XYWY_LIST_KEYS:
        relation = normalise_relation(key)
        for item in lists[key]:
            if key == "drug_detail":
                match = _PRODUCT.match(item)
                if not match:
                    _count(ctx, spec, "drug_detail_without_drug")
                    continue
                drug, producer = normalise_entity(match["drug"]), normalise_entity(match["producer"])
                if producer.endswith(drug) and len(producer) > len(drug):
                    producer = producer[: -len(drug)].strip()  # "丰原制药注射用X(注射用X)" -> 丰原制药
                rows.append(_triple(drug, relation, producer))
            else:
                rows.append(_triple(name, relation, item, department))
    return rows


def _emit(rows: list[Row], ctx: StepContext) -> list[Row]:
    if not rows:
        ctx.drop(None, "no_triples")
    return rows


@register_source("xywy", file_format="jsonl")
def parse_xywy(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """xywy KG medical.json, one disease object per line -> one row per triple.

    List keys (symptom, acompany, cure_department, common_drug, recommand_drug, check, do_eat, not_eat,
    recommand_eat, cure_way, drug_detail ``producer(drug)``, category) become relations."""
    return _emit(_xywy_rows(record, spec, ctx, csv_cells=False), ctx)


@register_source("xywy_csv", file_format="csv")
def parse_xywy_csv(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """xywy KG CSV export (Chinese headers such as 疾病名称, 症状; lists comma-joined in a cell) -> triples."""
    mapped = {XYWY_CSV_HEADERS.get(key, key): value for key, value in record.items()}
    if "name" not in mapped:
        raise RecordError("missing field: 疾病名称", field="疾病名称")
    return _emit(_xywy_rows(mapped, spec, ctx, csv_cells=True), ctx)


def _health39_items(cell: str, column: str, ctx: StepContext, spec: SourceSpec) -> list[str]:
    text = (cell or "").strip()
    if text.endswith(_DETAIL_MARK):
        text = text[: -len(_DETAIL_MARK)]
    if column == "alias":
        parts = _ALIAS_SPLIT.split(text)
    elif column == "treatment":
        parts = _TREATMENT_SPLIT.split(text)
        sentences = [part for part in parts if _SENTENCE_ITEM.search(part)]
        _count(ctx, spec, "sentence_item", len(sentences))
        parts = [part for part in parts if part not in sentences]
    else:
        parts = text.split()
    return _clean_items(parts, ctx, spec)


@register_source("39health", file_format="csv", default_encoding="gb18030")
def parse_39health(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """39Health KG disease.csv (GB18030) -> one row per triple.

    Columns alias (Chinese/ASCII commas), part, department, checklist, symptom, complication,
    treatment (、-separated), drug; the scraped `` [详细]`` marker is removed, truncated items are
    resolved by the kg_qa step, a department path becomes one department, and a record whose name or
    list cells hold a duration, price, age range or percentage (shifted columns) is rejected; a record whose disease name itself is truncated is
    dropped as ``truncated_name`` (several different diseases share such a prefix)."""
    name = normalise_entity(record.get("name"))
    if not name:
        raise RecordError("missing field: name", field="name")
    if name.endswith(_TRUNCATION_MARKS):
        ctx.drop(None, "truncated_name")
        return []
    if "?" in name or "\ufffd" in name:
        ctx.drop(None, "unreadable_name")  # a character the site could not encode ("?耳")
        return []
    check_39health_shape(record)
    departments = one_department(_health39_items(record.get("department", ""), "department", ctx, spec))
    department = departments[-1] if departments else ""
    rows: list[Row] = []
    for column, relation in HEALTH39_COLUMNS.items():
        items = departments if column == "department" else _health39_items(record.get(column, ""), column, ctx, spec)
        for item in items:
            rows.append(_triple(name, relation, item, department))
    return _emit(rows, ctx)


@register_source("cmekg", file_format="json")
def parse_cmekg(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """CMeKG-style ``{text, spo_list: [[subject, predicate, object], …]}`` -> one row per triple.

    Predicates (相关疾病, 临床表现, 并发症, 适应症 …) map to canonical relations; types follow the relation."""
    spo_list = record.get("spo_list")
    if not isinstance(spo_list, list):
        raise RecordError("missing field: spo_list", field="spo_list")
    rows: list[Row] = []
    for index, spo in enumerate(spo_list):
        if not (isinstance(spo, list) and len(spo) == 3 and all(isinstance(v, str) for v in spo)):
            raise RecordError("bad triple: expected [subject, predicate, object]", field=f"spo_list[{index}]")
        rows.append(_triple(normalise_entity(spo[0]), normalise_relation(spo[1]), normalise_entity(spo[2])))
    return _emit(rows, ctx)


def _parse_triple_record(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    fields = {"head": ("head", "subject", "s"), "relation": ("relation", "predicate", "p"),
              "tail": ("tail", "object", "o")}
    values = {}
    for name, keys in fields.items():
        value = next((record[key] for key in keys if record.get(key) not in (None, "")), None)
        if not isinstance(value, str) or not value.strip():
            raise RecordError(f"missing field: {name}", field=name)
        values[name] = value
    relation = normalise_relation(values["relation"])
    row = _triple(normalise_entity(values["head"]), relation, normalise_entity(values["tail"]),
                  normalise_entity(record.get("department")), normalise_entity(record.get("head_type")) or None,
                  normalise_entity(record.get("tail_type")) or None)
    yield row


for _name, _file_format in (("triples", "csv"), ("triples_tsv", "tsv"), ("triples_jsonl", "jsonl")):
    register_source(_name, file_format=_file_format,
                    doc=f"Generic triples ({_file_format}): head, relation, tail, optional head_type, tail_type.")(
        _parse_triple_record)
