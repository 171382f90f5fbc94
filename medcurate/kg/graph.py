"""The knowledge graph: normalised entity and relation names, one ``networkx.MultiDiGraph``.

Every source format emits one row per triple; ``build_graph`` folds them into typed nodes
(duplicates and aliases merged) and relation-keyed edges, and says for each row whether it
became an edge or why not (duplicate, self loop, empty), so the ``kg_qa`` step can declare it.
"""
from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import networkx as nx

from medcurate.quality.text import normalise_width

# Source relation names (xywy keys, 39health columns, CMeKG predicates, the graphs' own names)
# -> the canonical relation set. Unknown names are kept, lower-cased with underscores.
RELATION_ALIASES: dict[str, str] = {
    # xywy medical.json keys / Neo4j relation names
    "symptom": "has_symptom", "has_symptom": "has_symptom", "acompany": "acompany_with",
    "acompany_with": "acompany_with", "cure_department": "belongs_to_department",
    "belongs_to": "belongs_to_department", "common_drug": "common_drug", "recommand_drug": "recommand_drug",
    "check": "need_check", "need_check": "need_check", "do_eat": "do_eat", "not_eat": "not_eat",
    "no_eat": "not_eat", "recommand_eat": "recommand_eat", "cure_way": "cure_way", "drug_detail": "drug_producer",
    "drugs_of": "drug_producer", "category": "category",
    # 39health columns / relation names
    "alias": "alias", "alias_is": "alias", "part": "body_part", "part_is": "body_part",
    "department": "belongs_to_department", "department_is": "belongs_to_department", "checklist": "need_check",
    "complication": "acompany_with", "has_complication": "acompany_with", "treatment": "cure_way",
    "drug": "common_drug", "has_drug": "common_drug",
    # CMeKG predicates
    "相关疾病": "related_disease", "相关症状": "related_symptom", "临床表现": "has_symptom", "检查": "need_check",
    "并发症": "complication", "治疗": "cure_way", "病因": "cause", "适应症": "indication", "主治": "indication",
    "功能主治": "treats_symptom", "药物相互作用": "drug_interaction", "不良反应": "adverse_reaction",
    "禁忌": "contraindication", "用法用量": "usage", "注意事项": "precaution", "成份": "ingredient",
    "功效": "efficacy", "贮藏": "storage", "性状": "appearance", "有效期": "shelf_life", "规格": "specification",
    "入药部位": "medicinal_part", "性味": "property_flavour",
    # Chinese names used by the xywy / 39health graph builders
    "症状": "has_symptom", "科室": "belongs_to_department", "所属科室": "belongs_to_department",
    "常用药品": "common_drug", "推荐药品": "recommand_drug", "诊断检查": "need_check", "宜吃": "do_eat",
    "忌吃": "not_eat", "推荐食谱": "recommand_eat", "治疗方法": "cure_way", "生产药品": "drug_producer",
    "别名": "alias", "发病部位": "body_part",
}

# The (subject type, object type) a canonical relation implies when the source does not say.
RELATION_TYPES: dict[str, tuple[str, str]] = {
    "has_symptom": ("disease", "symptom"), "related_symptom": ("entity", "symptom"),
    "acompany_with": ("disease", "disease"), "complication": ("disease", "disease"), "related_disease": ("entity", "disease"),
    "belongs_to_department": ("disease", "department"), "common_drug": ("disease", "drug"),
    "recommand_drug": ("disease", "drug"), "need_check": ("disease", "check"), "do_eat": ("disease", "food"),
    "not_eat": ("disease", "food"), "recommand_eat": ("disease", "food"), "cure_way": ("disease", "procedure"),
    "drug_producer": ("drug", "producer"), "alias": ("disease", "alias"), "body_part": ("disease", "body_part"),
    "category": ("disease", "category"), "cause": ("disease", "cause"), "indication": ("drug", "disease"),
    "treats_symptom": ("drug", "symptom"), "drug_interaction": ("drug", "drug"),
    "adverse_reaction": ("drug", "symptom"), "contraindication": ("drug", "condition"),
}

# When one name is seen with several types, the node keeps the most specific one.
TYPE_PRIORITY = ("disease", "drug", "symptom", "check", "department", "food", "procedure", "body_part",
                 "producer", "category", "cause", "condition", "alias", "entity")

_TYPE_RANK = {name: index for index, name in enumerate(TYPE_PRIORITY)}
_SPACES = re.compile(r"\s+")


def normalise_entity(name: object) -> str:
    """One spelling per entity: full-width letters and digits -> half-width, Chinese punctuation kept
    Chinese (NFKC would turn ，into , inside names), whitespace collapsed and stripped."""
    if name is None:
        return ""
    return _normalise_text(str(name))


@lru_cache(maxsize=1 << 18)
def _normalise_text(text: str) -> str:
    return _SPACES.sub(" ", normalise_width(text)).strip()


def normalise_relation(name: object) -> str:
    """The canonical relation name of a source relation name."""
    text = normalise_entity(name)
    key = text.lower().replace(" ", "_").replace("-", "_")
    return RELATION_ALIASES.get(text) or RELATION_ALIASES.get(key) or key


def default_types(relation: str) -> tuple[str, str]:
    return RELATION_TYPES.get(relation, ("entity", "entity"))


def _better_type(current: str | None, new: str) -> str:
    if current is None:
        return new
    return new if _TYPE_RANK.get(new, len(_TYPE_RANK)) < _TYPE_RANK.get(current, len(_TYPE_RANK)) else current


@dataclass
class GraphBuild:
    """The graph plus, per input row index, why a row did not become an edge."""

    graph: nx.MultiDiGraph
    removed: dict[int, str] = field(default_factory=dict)
    aliases_merged: int = 0
    edge_rows: dict[tuple[str, str, str], int] = field(default_factory=dict)


def alias_map(rows: Iterable[dict]) -> dict[str, str]:
    """alias -> canonical disease, for aliases that name one disease only and are not a disease themselves."""
    rows = list(rows)
    heads = {normalise_entity(row.get("head")) for row in rows if row.get("relation") != "alias"}
    targets: dict[str, set[str]] = {}
    for row in rows:
        if row.get("relation") == "alias":
            alias, head = normalise_entity(row.get("tail")), normalise_entity(row.get("head"))
            if alias and head and alias != head:
                targets.setdefault(alias, set()).add(head)
    return {alias: next(iter(names)) for alias, names in targets.items() if len(names) == 1 and alias not in heads}


def build_graph(rows: list[dict]) -> GraphBuild:
    """Triple rows -> MultiDiGraph (edge key = canonical relation); duplicates, self loops and empty
    names are recorded in ``removed`` by row index, never silently lost. An edge's ``support`` is the
    number of rows (records, sources) that state it."""
    graph = nx.MultiDiGraph()
    aliases = alias_map(rows)
    result = GraphBuild(graph)
    for index, row in enumerate(rows):
        relation = normalise_relation(row.get("relation"))
        head, tail = normalise_entity(row.get("head")), normalise_entity(row.get("tail"))
        if not head or not tail or not relation:
            result.removed[index] = "empty_entity"
            continue
        if head in aliases:
            head = aliases[head]
            result.aliases_merged += 1
        if relation != "alias" and tail in aliases:
            tail = aliases[tail]
            result.aliases_merged += 1
        if head == tail:
            result.removed[index] = "self_loop"
            continue
        if graph.has_edge(head, tail, key=relation):
            result.removed[index] = "duplicate_triple"
            graph.edges[head, tail, relation]["support"] += 1
            continue
        head_default, tail_default = default_types(relation)
        for name, given, default in ((head, row.get("head_type"), head_default), (tail, row.get("tail_type"), tail_default)):
            kind = normalise_entity(given) or default
            if name in graph:
                graph.nodes[name]["type"] = _better_type(graph.nodes[name]["type"], kind)
            else:
                graph.add_node(name, type=kind)
            department = row.get("department")
            if department and name == head and "department" not in graph.nodes[name]:
                graph.nodes[name]["department"] = department
        graph.add_edge(head, tail, key=relation, relation=relation, support=1)
        result.edge_rows[(head, tail, relation)] = index
    return result


def degree_summary(graph: nx.MultiDiGraph) -> dict[str, float]:
    degrees = [degree for _, degree in graph.degree()]
    if not degrees:
        return {"min": 0, "median": 0, "max": 0, "mean": 0}
    return {"min": min(degrees), "median": statistics.median(degrees), "max": max(degrees),
            "mean": round(sum(degrees) / len(degrees), 2)}


def graph_stats(graph: nx.MultiDiGraph) -> dict:
    """Nodes by type, edges by relation and by (subject type, relation, object type), degree summary."""
    node_types = Counter(data["type"] for _, data in graph.nodes(data=True))
    relations = Counter(key for _, _, key in graph.edges(keys=True))
    typed = Counter(f"{graph.nodes[h]['type']} -{key}-> {graph.nodes[t]['type']}" for h, t, key in graph.edges(keys=True))
    return {"nodes": graph.number_of_nodes(), "edges": graph.number_of_edges(),
            "nodes_by_type": dict(node_types.most_common()), "edges_by_relation": dict(relations.most_common()),
            "edges_by_type": dict(typed.most_common()), "degree": degree_summary(graph)}
