"""Graph -> question/answer rows through the templates.

Default: one QA per (subject, relation) listing every object ("包括A、B和C" / "A, B and C"), at
most ``cap`` objects (a seeded sample, kept in graph order, when the list is longer). Option: one
QA per triple. Two-hop questions only where the middle entity is unique, so the answer is definite.
Every choice (phrasing, sample) is seeded by the subject and relation: the same graph and seed give
the same rows whatever the input order of unrelated records.
"""
from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from dataclasses import dataclass, field

import networkx as nx

from medcurate.kg.templates import Template, TemplateSet

TASK = "kg_qa"


def join_objects(items: list[str], lang: str) -> str:
    """A natural list: zh "A、B和C", en "A, B and C"."""
    if len(items) <= 1:
        return "".join(items)
    if lang == "zh":
        return "、".join(items[:-1]) + "和" + items[-1]
    return ", ".join(items[:-1]) + " and " + items[-1]


# "如血常规检查等检查": a template's category word right after an object ending in the same word.
_DOUBLED_CATEGORY = re.compile(r"(检查|症状|疾病|并发症|治疗|药物|药)等\1")
# Treatment items that say no treatment is needed: rendered as a statement, never listed as a treatment.
NEGATION_PREFIXES = ("无需", "不需", "无须", "不必", "无特效", "暂无特效", "无特殊", "没有特效")


def is_negation(item: str) -> bool:
    return item.startswith(NEGATION_PREFIXES)


_PARENTHESISED = re.compile(r"[(（]([^()（）]+)[)）]$")


def without_synonym_duplicates(objects: list[str]) -> list[str]:
    """``核磁共振成像(MRI)`` and ``MRI`` in one list name one thing: the bare short form is left out."""
    short_forms = {match.group(1).strip() for name in objects if (match := _PARENTHESISED.search(name))}
    return [name for name in objects if name not in short_forms]


def undouble(text: str) -> str:
    """``…检查等检查`` -> ``…检查等``: the template's category word is not repeated after an object."""
    return _DOUBLED_CATEGORY.sub(r"\1等", text)


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def fill(text: str, subject: str, objects: str, middle: str = "") -> str:
    """A template text with its slots filled (``objects`` already joined); {Subject} capitalises."""
    values = {"subject": subject, "objects": objects, "middle": middle}
    if "{S" in text or "{O" in text or "{M" in text:
        values.update({_capitalise(k): _capitalise(v) for k, v in list(values.items())})
    return undouble(text.format_map(values))


def _stable_index(seed: int, key: str, count: int) -> int:
    digest = hashlib.sha256(f"{seed}|{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % count


@dataclass
class Rendered:
    rows: list[dict] = field(default_factory=list)
    capped_lists: int = 0
    objects_left_out: int = 0
    capped_by_max_per_entity: int = 0
    two_hop_ambiguous: int = 0
    two_hop_unsupported: int = 0
    synonyms_left_out: int = 0
    treatment_negations_left_out: int = 0


@dataclass
class EdgeIndex:
    """(node, relation) -> objects (out) and subjects (in), in graph insertion order."""

    out: dict[tuple[str, str], list[str]]
    into: dict[tuple[str, str], list[str]]


def index_edges(graph: nx.MultiDiGraph) -> EdgeIndex:
    out: dict[tuple[str, str], list[str]] = {}
    into: dict[tuple[str, str], list[str]] = {}
    for head, tail, relation in graph.edges(keys=True):
        out.setdefault((head, relation), []).append(tail)
        into.setdefault((tail, relation), []).append(head)
    return EdgeIndex(out, into)


PLANNED_TEXT = "kg_text"
"""The column of a planned QA row that holds what its texts are filled from (see ``filled``)."""


def _planned(template: Template, subject: str, objects: list[str], triples: list[list[str]], lang: str,
             department: str, middle: str = "") -> dict:
    """A QA row with every choice made but its texts not yet filled in."""
    return {"template_id": template.id, "relation": template.relation, "subject": subject, "department": department,
            "triples": triples, PLANNED_TEXT: {"question": template.question, "answer": template.answer,
                                               "objects": objects, "middle": middle, "lang": lang}}


def filled(planned: dict) -> dict:
    """A planned QA row with its question and answer filled in: the per-row work of rendering, done
    row by row (in parallel in a build) once the graph has made every choice."""
    text = planned[PLANNED_TEXT]
    subject, objects, middle, lang = planned["subject"], text["objects"], text["middle"], text["lang"]
    joined = join_objects(objects, lang)
    answer = fill(text["answer"], subject, joined, middle)
    if planned["relation"] == "cure_way" and objects and all(is_negation(item) for item in objects):
        answer = f"{subject}{'，'.join(objects)}。" if lang == "zh" else f"{_capitalise(subject)}: {joined}."
    return {"instruction": fill(text["question"], subject, joined, middle), "query": "", "answer": answer, "task": TASK,
            **{key: value for key, value in planned.items() if key != PLANNED_TEXT}}


def _sample(objects: list[str], cap: int | None, seed: int, key: str) -> list[str]:
    if cap is None or len(objects) <= cap:
        return objects
    chosen = set(random.Random(f"{seed}|{key}").sample(range(len(objects)), cap))
    return [name for index, name in enumerate(objects) if index in chosen]


def render(graph: nx.MultiDiGraph, templates: TemplateSet, *, lang: str, seed: int = 0, cap: int | None = 10,
           per_triple: bool = False, two_hop: bool = True, max_per_entity: int | None = None,
           index: EdgeIndex | None = None, two_hop_min_support: int = 2, fill_texts: bool = True) -> Rendered:
    """QA rows for every (subject, relation) group that has a template, then the two-hop rows.

    A treatment list mixing negations (无需治疗) with treatments lists the treatments only; one made
    of negations only is written as the statement itself. A two-hop path whose first hop is inverse
    ("X 是哪种疾病的常用药") asserts a main use: it needs that edge stated by ``two_hop_min_support``
    records or sources, else it is counted in ``two_hop_unsupported`` and not asked. With
    ``fill_texts=False`` the rows are planned ones, whose texts ``filled`` fills in later."""
    index = index or index_edges(graph)
    result = Rendered()
    per_subject: dict[str, list[dict]] = {}

    def department_of(*names: str) -> str:
        return next((graph.nodes[n].get("department") for n in names if graph.nodes[n].get("department")), "")

    for (subject, relation), objects in index.out.items():
        choices = templates.for_subject(relation, graph.nodes[subject]["type"])
        if not choices:
            continue
        if relation == "cure_way" and not per_triple and any(is_negation(o) for o in objects) \
                and not all(is_negation(o) for o in objects):
            objects = [o for o in objects if not is_negation(o)]
            result.treatment_negations_left_out += 1
        if not per_triple:
            distinct = without_synonym_duplicates(objects)
            result.synonyms_left_out += len(objects) - len(distinct)
            objects = distinct
        groups = [[name] for name in objects] if per_triple else [objects]
        for group in groups:
            key = f"{subject}|{relation}|{group[0] if per_triple else ''}"
            shown = _sample(group, cap, seed, key)
            if len(shown) < len(group):
                result.capped_lists += 1
                result.objects_left_out += len(group) - len(shown)
            template = choices[_stable_index(seed, key, len(choices))]
            triples = [[subject, relation, name] for name in shown]
            per_subject.setdefault(subject, []).append(
                _planned(template, subject, shown, triples, lang, department_of(subject)))

    if two_hop:
        for template in templates.two_hop:
            first, second = template.path
            table = index.into if first.inverse else index.out
            for (subject, relation), middles in table.items():
                if relation != first.relation:
                    continue
                if len(middles) != 1:
                    result.two_hop_ambiguous += 1
                    continue
                objects = index.out.get((middles[0], second.relation), [])
                if not objects:
                    continue
                middle = middles[0]
                if first.inverse and graph.edges[middle, subject, first.relation].get("support", 1) < two_hop_min_support:
                    result.two_hop_unsupported += 1
                    continue
                shown = _sample(objects, cap, seed, f"{subject}|{template.id}")
                first_triple = [middle, first.relation, subject] if first.inverse else [subject, first.relation, middle]
                triples = [first_triple] + [[middle, second.relation, name] for name in shown]
                per_subject.setdefault(subject, []).append(
                    _planned(template, subject, shown, triples, lang, department_of(subject, middle), middle))

    for subject, rows in per_subject.items():
        if max_per_entity is not None and len(rows) > max_per_entity:
            keep = set(random.Random(f"{seed}|entity|{subject}").sample(range(len(rows)), max_per_entity))
            result.capped_by_max_per_entity += len(rows) - len(keep)
            rows = [row for i, row in enumerate(rows) if i in keep]
        result.rows.extend(map(filled, rows) if fill_texts else rows)
    return result


def rows_per_template(rows: list[dict]) -> dict[str, int]:
    return dict(sorted(Counter(row["template_id"] for row in rows).items()))
