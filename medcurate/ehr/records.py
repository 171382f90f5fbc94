"""EHR records as pure functions: field mapping, diagnosis normalisation and the labelled input.

ClinicalGPT's MD-EHR pairs concatenate a record's notes (complaint, history, exam, tests)
as the input and use the final diagnosis as the output. Hospital exports name their
columns in Chinese or English, so a recipe's field mapping (or the built-in aliases below)
says which column holds which section.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from medcurate.schemas import EHR_SECTIONS

SECTION_LABELS = {"chief_complaint": "主诉", "present_illness": "现病史", "past_history": "既往史",
                  "physical_exam": "体格检查", "auxiliary_exam": "辅助检查"}
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "chief_complaint": ("主诉", "chief_complaint", "complaint", "cc"),
    "present_illness": ("现病史", "present_illness", "hpi", "history_of_present_illness"),
    "past_history": ("既往史", "past_history", "pmh", "past_medical_history"),
    "physical_exam": ("体格检查", "查体", "physical_exam", "physical_examination"),
    "auxiliary_exam": ("辅助检查", "检查结果", "auxiliary_exam", "tests", "lab_results"),
    "diagnosis": ("诊断", "出院诊断", "入院诊断", "初步诊断", "diagnosis", "final_diagnosis"),
    "department": ("科室", "就诊科室", "department", "dept"),
    "patient_id": ("患者ID", "病人ID", "病案号", "patient_id", "patient"),
    "record_id": ("病历号", "记录号", "record_id", "id"),
}
TEXT_FIELDS = (*EHR_SECTIONS, "diagnosis_raw")
"""Every free-text field of an EHR row: all of them must pass the deid step."""

_UNCERTAINTY = re.compile(r"[？?]|待查|待排|可能性大|可能|考虑|疑似|不除外")
_NUMBERED_ITEMS = re.compile(r"(?:^|\s)\d+[.．、)）]\s*|\s{2,}")
_NUMBERING = re.compile(r"^\s*(?:(?:\d+|[一二三四五六七八九十]+)[.、．)）]|[①-⑳])\s*")


@dataclass(frozen=True)
class Diagnosis:
    """A normalised diagnosis field: the primary one is the answer, the rest is metadata."""

    primary: str
    all: tuple[str, ...]
    uncertain: bool
    uncertain_items: tuple[bool, ...] = field(default=())


def map_fields(record: dict[str, Any], mapping: dict[str, str] | None = None, *,
               require_mapped: bool = False) -> dict[str, Any]:
    """Canonical EHR fields from a raw record, via the recipe's mapping or the known aliases.

    The mapping is ``{canonical_field: source_column}``; unmapped canonical fields fall back
    to the aliases (Chinese or English names). ``require_mapped`` (the first record of a source)
    makes a mapped column the record does not have an error: almost always a typo in the recipe.
    """
    mapping = mapping or {}
    unknown = set(mapping) - set(FIELD_ALIASES)
    if unknown:
        from medcurate.errors import MedcurateError
        raise MedcurateError(f"unknown EHR field(s) in mapping: {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(FIELD_ALIASES)}", field="options.fields")
    result: dict[str, Any] = {}
    lowered = {str(key).strip().lower(): key for key in record}
    for name, aliases in FIELD_ALIASES.items():
        column = mapping.get(name)
        if require_mapped and column is not None and column not in record:
            from medcurate.errors import MedcurateError
            raise MedcurateError(f"the mapping names column {column!r}, which the record does not have",
                                 field=f"options.fields.{name}")
        if column is None:
            column = next((lowered[a.lower()] for a in aliases if a.lower() in lowered), None)
        value = record.get(column) if column is not None else None
        if isinstance(value, str):
            value = value.replace("\r\n", "\n").strip()
        result[name] = value if value not in ("", None) else None
    return result


def split_diagnoses(text: str) -> list[str]:
    """Split a diagnosis field on ；，、 newlines and numbering, never inside brackets."""
    pieces: list[str] = []
    current: list[str] = []
    depth = 0
    for char in _NUMBERED_ITEMS.sub("\n", text.replace("\r", "")):
        if char in "（(":
            depth += 1
        elif char in "）)" and depth:
            depth -= 1
        if depth == 0 and char in ";；,，、\n":
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    pieces.append("".join(current))
    return pieces


def normalise_diagnosis(text: str) -> Diagnosis:
    """Split a diagnosis field into items, strip uncertainty markers (？ 待查 可能 考虑 …) into a
    flag, and keep the first item as the primary diagnosis."""
    items: list[str] = []
    flags: list[bool] = []
    for piece in split_diagnoses(text):
        piece = _NUMBERING.sub("", piece).strip(" 。.：:")
        if not piece:
            continue
        uncertain = bool(_UNCERTAINTY.search(piece))
        cleaned = _UNCERTAINTY.sub("", piece).strip(" 。.：:")
        if cleaned and cleaned not in items:
            items.append(cleaned)
            flags.append(uncertain)
    if not items:
        return Diagnosis("", (), False)
    return Diagnosis(items[0], tuple(items), flags[0], tuple(flags))


def labelled_input(row: dict[str, Any]) -> str:
    """The note sections with their labels, in the fixed order of EHR_SECTIONS; absent ones skipped."""
    return "\n".join(f"{SECTION_LABELS[name]}：{row[name]}" for name in EHR_SECTIONS if row.get(name))


_CMB_TOP = re.compile(r"^(现病史|体格检查|辅助检查)\s*$")
_CMB_SUB = re.compile(r"^[（(]\d+[）)]\s*([^：:\s]+)[：:]?\s*(.*)$")
_CMB_DIAGNOSIS = re.compile(r"(?<!鉴别)(?<!鉴别的)(?:初步诊断|诊断)[ \t]*(?:为|是)?[ \t]*[：:][ \t　]*([^\n。]{1,60})(?:[\n。]|$)")


def cmb_clin_sections(description: str) -> dict[str, str]:
    """Sections of a CMB-Clin case description: the 现病史 / 体格检查 / 辅助检查 blocks and the
    numbered sub-items inside them (病史摘要, 主诉, 现病史, 既往史 …)."""
    blocks: dict[str, list[str]] = {}
    subs: dict[str, list[str]] = {}
    current_block, current_sub = None, None
    for raw_line in description.replace("\r\n", "\n").split("\n"):
        line = raw_line.strip()
        if not line:
            continue
        top = _CMB_TOP.match(line)
        if top:
            current_block, current_sub = top.group(1), None
            blocks.setdefault(current_block, [])
            continue
        sub = _CMB_SUB.match(line)
        if sub and current_block:
            current_sub = f"{current_block}/{sub.group(1)}"
            subs.setdefault(current_sub, [])
            if sub.group(2):
                subs[current_sub].append(sub.group(2))
            continue
        if current_block:
            (subs[current_sub] if current_sub else blocks[current_block]).append(line)
    joined = {key: "\n".join(value) for key, value in subs.items()}
    sections: dict[str, str] = {}
    sections["chief_complaint"] = joined.get("现病史/主诉", "")
    sections["present_illness"] = (joined.get("现病史/病史摘要", "") or joined.get("体格检查/现病史", "")
                                   or "\n".join(line for line in blocks.get("现病史", []) if line != "病史摘要"))
    sections["past_history"] = joined.get("体格检查/既往史", "") or joined.get("现病史/既往史", "")
    used = {"现病史/主诉", "现病史/病史摘要", "体格检查/现病史", "体格检查/既往史", "现病史/既往史"}
    for block, name in (("体格检查", "physical_exam"), ("辅助检查", "auxiliary_exam")):
        parts = ["\n".join(blocks.get(block, []))]
        parts += [f"{key.split('/', 1)[1]}：{text}" for key, text in joined.items()
                  if key.startswith(block + "/") and key not in used]
        sections[name] = "\n".join(part for part in parts if part).strip()
    return {key: value for key, value in sections.items() if value}


def cmb_clin_diagnosis(qa_pairs: list[dict[str, Any]]) -> str | None:
    """The diagnosis a CMB-Clin case's QA answers state (``诊断：…``), or None."""
    for pair in qa_pairs:
        if "诊断" not in str(pair.get("question", "")):
            continue
        match = _CMB_DIAGNOSIS.search(str(pair.get("answer", "")))
        if match:
            return match.group(1).strip()
    return None
