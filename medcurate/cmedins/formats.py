"""Answer formats of the six CMedINS task forms: each task's renderer sits beside its parser.

A row's ``gold`` is the structured answer; ``render(task, gold)`` writes the answer text the
model is trained on and ``parse(task, text)`` reads a model's output back into the same
structure, so ``parse(render(gold)) == gold`` holds for every published row and outputs can
be scored against gold. A gold value that the format cannot write unambiguously (a value
containing a separator) raises ``Unrenderable`` and the record goes to rejects instead of
becoming a row whose answer cannot be read back.

Formats (one line per item, ``：`` after a label, ``；`` between values):

cdee       主体词：X；发生状态：Y；描述词：a、b；解剖部位：c    (one line per event; 无 = empty list;
           发生状态 is 肯定 for an affirmed event (CDEE's empty tendency), else 否定 / 不确定; a value
           holding 、 or ； is quoted 「左肺上叶、下叶」)
ner        疾病：A；B  /  临床表现：C  … (one line per entity type present, fixed type order; an entity
           holding ； is quoted 「…」)
diagnosis  诊断：X  then optionally 其他诊断：Y；Z  and 诊断不确定：是
triage     科室：X
report     主诉：… / 现病史：… / 辅助检查：… / 既往史：… / 诊断：… / 建议：…  (six lines, fixed order)
cdn        标准术语：A；B
cmeie      （S，P，O） one triple per line, P one of the CMeIE relation types (the instruction lists
           them); S and O may hold ，；() (t(8；14)): the line is split at the known relation
An empty extraction renders as 无.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

NONE_MARK = "无"
VALUE_SEPARATOR = "；"
LIST_SEPARATOR = "、"

CMEEE_TYPES = {"dis": "疾病", "sym": "临床表现", "pro": "医疗程序", "equ": "医疗设备", "dru": "药物",
               "ite": "医学检验项目", "bod": "身体", "dep": "科室", "mic": "微生物类"}
CDEE_TENDENCIES = ("", "不确定", "否定")
# CDEE marks affirmed events with an empty tendency; the answer says so in a word, never 无
# (a clinician reads 发生状态：无 as "absent").
AFFIRMED = "肯定"
QUOTE_OPEN, QUOTE_CLOSE = "「", "」"
# The 44 relation types of CMeIE's 53 schemas (53_schemas.json), the ones an answer may use.
CMEIE_PREDICATES = (
    "预防", "阶段", "就诊科室", "同义词", "辅助治疗", "化疗", "放射治疗", "手术治疗", "实验室检查", "影像学检查",
    "辅助检查", "组织学检查", "内窥镜检查", "筛查", "多发群体", "发病率", "发病年龄", "多发地区", "发病性别倾向",
    "死亡率", "多发季节", "传播途径", "并发症", "病理分型", "相关（导致）", "鉴别诊断", "相关（转化）", "相关（症状）",
    "临床表现", "治疗后症状", "侵及周围组织转移的症状", "病因", "高危因素", "风险评估因素", "病史", "遗传因素",
    "发病机制", "病理生理", "药物治疗", "发病部位", "转移部位", "外侵部位", "预后状况", "预后生存率")
REPORT_SECTIONS = ("主诉", "现病史", "辅助检查", "既往史", "诊断", "建议")


class Unrenderable(ValueError):
    """The gold value cannot be written in the task's answer format without ambiguity."""


def _check_value(value: str, forbidden: str, what: str, none_allowed: bool = False) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise Unrenderable(f"unrenderable: empty or padded {what}")
    if (value == NONE_MARK and not none_allowed) or any(char in value for char in forbidden + "\n"):
        raise Unrenderable(f"unrenderable: separator inside {what}")
    return value


def _quote(value: str, separators: str) -> str:
    """A value holding a separator is written in 「」 so the list stays readable and parseable."""
    if QUOTE_OPEN in value or QUOTE_CLOSE in value:
        raise Unrenderable("unrenderable: quote mark inside a value")
    return f"{QUOTE_OPEN}{value}{QUOTE_CLOSE}" if any(char in value for char in separators) else value


def _split_quoted(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside 「」, removing the quotes."""
    return [_unquote(part.strip()) for part in _split_quoted_keep(text, separator)]


def _unquote(text: str) -> str:
    if text.startswith(QUOTE_OPEN) and text.endswith(QUOTE_CLOSE):
        return text[1:-1]
    return text


def _split_values(text: str, separator: str) -> list[str]:
    text = text.strip()
    return [] if text in ("", NONE_MARK) else [part.strip() for part in text.split(separator)]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines() if line.strip()]


def _label_value(line: str) -> tuple[str, str]:
    label, colon, value = line.partition("：")
    if not colon:
        raise ValueError("expected 'label：value', got a line without '：'")
    return label.strip(), value.strip()


# cdee: clinical finding events -------------------------------------------------------------
def _quoted_value(value: str, what: str, separators: str = VALUE_SEPARATOR) -> str:
    """A list value; one holding a separator, or the word 无 itself, is quoted 「…」."""
    value = _check_value(value, "", what, none_allowed=True)
    return f"{QUOTE_OPEN}{value}{QUOTE_CLOSE}" if value == NONE_MARK else _quote(value, separators)


def _quoted_list(text: str, separator: str) -> list[str]:
    text = text.strip()
    return [] if text in ("", NONE_MARK) else _split_quoted(text, separator)


def _cdee_value(value: str, what: str) -> str:
    return _quoted_value(value, what, VALUE_SEPARATOR + LIST_SEPARATOR)


def render_cdee(gold: dict[str, Any]) -> str:
    lines = []
    for event in gold["events"]:
        if event["tendency"] not in CDEE_TENDENCIES:
            raise Unrenderable("unrenderable: unknown tendency")
        core = _cdee_value(event["core_name"], "core_name")
        characters = [_cdee_value(v, "character") for v in event["character"]]
        anatomy = [_cdee_value(v, "anatomy") for v in event["anatomy_list"]]
        lines.append(f"主体词：{core}；发生状态：{event['tendency'] or AFFIRMED}；"
                     f"描述词：{LIST_SEPARATOR.join(characters) or NONE_MARK}；"
                     f"解剖部位：{LIST_SEPARATOR.join(anatomy) or NONE_MARK}")
    return "\n".join(lines) or NONE_MARK


def parse_cdee(text: str) -> dict[str, Any]:
    events = []
    for line in _lines(text):
        if line == NONE_MARK:
            continue
        fields = dict(_label_value(part) for part in _split_quoted_keep(line, VALUE_SEPARATOR))
        tendency = fields.get("发生状态", AFFIRMED)
        events.append({"core_name": _unquote(fields.get("主体词", "")),
                       "tendency": "" if tendency in (AFFIRMED, NONE_MARK) else tendency,
                       "character": _quoted_list(fields.get("描述词", ""), LIST_SEPARATOR),
                       "anatomy_list": _quoted_list(fields.get("解剖部位", ""), LIST_SEPARATOR)})
    return {"events": events}


def _split_quoted_keep(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside 「」, keeping the quotes (the parts are parsed further)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == QUOTE_OPEN:
            depth += 1
        elif char == QUOTE_CLOSE and depth:
            depth -= 1
        if char == separator and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


# ner: CMeEE entity types -------------------------------------------------------------------
def render_ner(gold: dict[str, Any]) -> str:
    lines = []
    for code, label in CMEEE_TYPES.items():
        names = gold["entities"].get(code) or []
        if names:
            checked = [_quoted_value(name, "entity") for name in names]
            lines.append(f"{label}：{VALUE_SEPARATOR.join(checked)}")
    unknown = set(gold["entities"]) - set(CMEEE_TYPES)
    if unknown:
        raise Unrenderable("unrenderable: unknown entity type")
    return "\n".join(lines) or NONE_MARK


def parse_ner(text: str) -> dict[str, Any]:
    codes = {label: code for code, label in CMEEE_TYPES.items()}
    entities: dict[str, list[str]] = {}
    for line in _lines(text):
        if line == NONE_MARK:
            continue
        label, value = _label_value(line)
        if label in codes:
            entities.setdefault(codes[label], []).extend(_quoted_list(value, VALUE_SEPARATOR))
    return {"entities": {code: entities[code] for code in CMEEE_TYPES if code in entities}}


# diagnosis: from an EHR record -------------------------------------------------------------
def render_diagnosis(gold: dict[str, Any]) -> str:
    primary = _check_value(gold["primary"], VALUE_SEPARATOR, "diagnosis")
    lines = [f"诊断：{primary}"]
    others = [_check_value(v, VALUE_SEPARATOR, "diagnosis") for v in gold["others"]]
    if others:
        lines.append(f"其他诊断：{VALUE_SEPARATOR.join(others)}")
    if gold["uncertain"]:
        lines.append("诊断不确定：是")
    return "\n".join(lines)


def parse_diagnosis(text: str) -> dict[str, Any]:
    fields = dict(_label_value(line) for line in _lines(text))
    return {"primary": fields.get("诊断", ""), "others": _split_values(fields.get("其他诊断", ""), VALUE_SEPARATOR),
            "uncertain": fields.get("诊断不确定") == "是"}


# triage: department from a complaint or dialogue -------------------------------------------
def render_triage(gold: dict[str, Any]) -> str:
    return f"科室：{_check_value(gold['department'], '', 'department')}"


def parse_triage(text: str) -> dict[str, Any]:
    fields = dict(_label_value(line) for line in _lines(text)[:1])
    return {"department": fields.get("科室", "")}


# report: IMCS-21 medical report from a dialogue --------------------------------------------
def render_report(gold: dict[str, Any]) -> str:
    if set(gold["sections"]) != set(REPORT_SECTIONS):
        raise Unrenderable("unrenderable: report sections incomplete")
    return "\n".join(f"{name}：{_check_value(gold['sections'][name], '', name, none_allowed=True)}" for name in REPORT_SECTIONS)


def parse_report(text: str) -> dict[str, Any]:
    sections: dict[str, str] = {}
    for line in _lines(text):
        label, colon, value = line.partition("：")
        if colon and label.strip() in REPORT_SECTIONS:
            sections[label.strip()] = value.strip()
    return {"sections": {name: sections[name] for name in REPORT_SECTIONS if name in sections}}


# cdn: raw diagnosis -> standard terms ------------------------------------------------------
def render_cdn(gold: dict[str, Any]) -> str:
    terms = [_check_value(term, VALUE_SEPARATOR, "term") for term in gold["terms"]]
    return f"标准术语：{VALUE_SEPARATOR.join(terms) or NONE_MARK}"


def parse_cdn(text: str) -> dict[str, Any]:
    fields = dict(_label_value(line) for line in _lines(text)[:1])
    return {"terms": _split_values(fields.get("标准术语", ""), VALUE_SEPARATOR)}


# cmeie: relation triples -------------------------------------------------------------------
def render_cmeie(gold: dict[str, Any]) -> str:
    """``（主体，关系，客体）`` per line, as the cmeie instructions ask."""
    lines = []
    for subject, predicate, obj in gold["triples"]:
        if predicate not in CMEIE_PREDICATES:
            raise Unrenderable("unrenderable: relation type outside the CMeIE schema")
        subject, obj = (_check_value(value, "", "triple") for value in (subject, obj))
        lines.append(f"（{subject}，{predicate}，{obj}）")
    return "\n".join(lines) or NONE_MARK


def _cmeie_line(line: str) -> list[str]:
    inner = line[1:-1] if line.startswith(("（", "(")) and line.endswith(("）", ")")) else line
    found = [(inner.find(f"，{p}，"), -len(p), p) for p in CMEIE_PREDICATES if f"，{p}，" in inner]
    if found:
        start, _, predicate = min(found)
        return [inner[:start].strip(), predicate, inner[start + len(predicate) + 2:].strip()]
    parts = [part.strip() for part in inner.replace(",", "，").split("，")]
    return parts[:3] if len(parts) >= 3 else parts + [""] * (3 - len(parts))


def parse_cmeie(text: str) -> dict[str, Any]:
    return {"triples": [_cmeie_line(line) for line in _lines(text) if line != NONE_MARK]}


TASKS: dict[str, tuple[Callable[[dict], str], Callable[[str], dict]]] = {
    "cdee": (render_cdee, parse_cdee),
    "ner": (render_ner, parse_ner),
    "diagnosis": (render_diagnosis, parse_diagnosis),
    "triage": (render_triage, parse_triage),
    "report": (render_report, parse_report),
    "cdn": (render_cdn, parse_cdn),
    "cmeie": (render_cmeie, parse_cmeie),
}
TASK_TITLES = {"cdee": "临床发现事件抽取", "ner": "医学命名实体识别", "diagnosis": "病历诊断", "triage": "科室分诊",
               "report": "诊疗报告生成", "cdn": "术语标准化", "cmeie": "关系三元组抽取"}


def render(task: str, gold: dict[str, Any]) -> str:
    """The answer text for ``gold``; raises Unrenderable when the format cannot hold it."""
    return TASKS[task][0](gold)


def parse(task: str, text: str) -> dict[str, Any]:
    """A model's answer text back into the task's gold structure (for scoring)."""
    return TASKS[task][1](text)
