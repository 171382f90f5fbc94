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


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def fill(text: str, subject: str, objects: str, middle: str = "") -> str:
    """A template text with its slots filled (``objects`` already joined); {Subject} capitalises."""
    values = {"subject": subject, "objects": objects, "middle": middle}
    if "{S" in text or "{O" in text or "{M" in text:
        values.update({_capitalise(k): _capitalise(v) for k, v in list(values.items())})
    return text.format_map(values)


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


def _row(template: Template, subject: str, objects: list[str], triples: list[list[str]], lang: str,
         department: str, middle: str = "") -> dict:
    joined = join_objects(objects, lang)
    return {"instruction": fill(template.question, subject, joined, middle), "query": "",
            "answer": fill(template.answer, subject, joined, middle), "task": TASK,
            "template_id": template.id, "relation": template.relation, "subject": subject,
            "department": department, "triples": triples}


def _sample(objects: list[str], cap: int | None, seed: int, key: str) -> list[str]:
    if cap is None or len(objects) <= cap:
        return objects
    chosen = set(random.Random(f"{seed}|{key}").sample(range(len(objects)), cap))
    return [name for index, name in enumerate(objects) if index in chosen]


def render(graph: nx.MultiDiGraph, templates: TemplateSet, *, lang: str, seed: int = 0, cap: int | None = 10,
           per_triple: bool = False, two_hop: bool = True, max_per_entity: int | None = None,
           index: EdgeIndex | None = None) -> Rendered:
    """QA rows for every (subject, relation) group that has a template, then the two-hop rows."""
    index = index or index_edges(graph)
    result = Rendered()
    per_subject: dict[str, list[dict]] = {}

    def department_of(*names: str) -> str:
        return next((graph.nodes[n].get("department") for n in names if graph.nodes[n].get("department")), "")

    for (subject, relation), objects in index.out.items():
        choices = templates.for_subject(relation, graph.nodes[subject]["type"])
        if not choices:
            continue
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
                _row(template, subject, shown, triples, lang, department_of(subject)))

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
                shown = _sample(objects, cap, seed, f"{subject}|{template.id}")
                first_triple = [middle, first.relation, subject] if first.inverse else [subject, first.relation, middle]
                triples = [first_triple] + [[middle, second.relation, name] for name in shown]
                per_subject.setdefault(subject, []).append(
                    _row(template, subject, shown, triples, lang, department_of(subject, middle), middle))

    for subject, rows in per_subject.items():
        if max_per_entity is not None and len(rows) > max_per_entity:
            keep = set(random.Random(f"{seed}|entity|{subject}").sample(range(len(rows)), max_per_entity))
            result.capped_by_max_per_entity += len(rows) - len(keep)
            rows = [row for i, row in enumerate(rows) if i in keep]
        result.rows.extend(rows)
    return result


def rows_per_template(rows: list[dict]) -> dict[str, int]:
    return dict(sorted(Counter(row["template_id"] for row in rows).items()))
