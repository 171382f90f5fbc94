"""Rendering: natural list joining, the seeded cap, per-triple rows, two-hop definiteness, the entity cap."""
from __future__ import annotations

from medcurate.kg.graph import build_graph
from medcurate.kg.render import join_objects, render
from medcurate.kg.templates import load_templates


def triple(head, relation, tail):
    return {"head": head, "relation": relation, "tail": tail}


def test_join_objects_reads_naturally():
    assert join_objects(["A", "B", "C"], "zh") == "A、B和C"
    assert join_objects(["A", "B"], "en") == "A and B"
    assert join_objects(["A", "B", "C"], "en") == "A, B and C"
    assert join_objects(["A"], "zh") == "A"


def symptoms_graph(count: int):
    return build_graph([triple("流感", "has_symptom", f"症状{i:02d}") for i in range(count)]).graph


def test_one_row_per_subject_and_relation_with_a_seeded_cap():
    graph, templates = symptoms_graph(25), load_templates("zh")
    first = render(graph, templates, lang="zh", seed=3, cap=10)
    again = render(graph, templates, lang="zh", seed=3, cap=10)
    other = render(graph, templates, lang="zh", seed=4, cap=10)
    assert len(first.rows) == 1 and first.rows == again.rows
    row = first.rows[0]
    assert len(row["triples"]) == 10 and first.objects_left_out == 15
    names = [t[2] for t in row["triples"]]
    assert names == sorted(names)  # the sample keeps graph order
    assert "、".join(names[:-1]) + "和" + names[-1] in row["answer"]
    assert [t[2] for t in other.rows[0]["triples"]] != names
    assert row["template_id"].startswith("zh.has_symptom.")


def test_uncapped_lists_every_object_and_per_triple_gives_one_row_each():
    graph, templates = symptoms_graph(3), load_templates("en")
    grouped = render(graph, templates, lang="en", cap=None)
    assert grouped.rows[0]["answer"].count("症状") == 3 and "症状00, 症状01 and 症状02" in grouped.rows[0]["answer"]
    per_triple = render(graph, templates, lang="en", per_triple=True)
    assert [r["triples"] for r in per_triple.rows] == [[["流感", "has_symptom", f"症状{i:02d}"]] for i in range(3)]
    # seeded phrasing: several templates get used across subjects
    many = build_graph([triple(f"病{i}", "has_symptom", "发热") for i in range(40)]).graph
    assert len({r["template_id"] for r in render(many, templates, lang="en").rows}) >= 3


def test_two_hop_only_when_the_middle_entity_is_unique():
    graph = build_graph([
        triple("感冒", "common_drug", "感冒灵"), triple("感冒", "has_symptom", "发热"),
        triple("感冒", "common_drug", "布洛芬"), triple("偏头痛", "common_drug", "布洛芬"),
        triple("偏头痛", "has_symptom", "头痛")]).graph
    result = render(graph, load_templates("zh"), lang="zh", two_hop_min_support=1)
    two_hop = [r for r in result.rows if r["template_id"] == "zh.two_hop.drug_disease_symptom"]
    assert [r["subject"] for r in two_hop] == ["感冒灵"]
    assert two_hop[0]["answer"] == "感冒灵是感冒的常用药，感冒的常见症状包括发热。"
    assert two_hop[0]["triples"] == [["感冒", "common_drug", "感冒灵"], ["感冒", "has_symptom", "发热"]]
    assert result.two_hop_ambiguous == 1  # 布洛芬 treats two diseases: no definite answer


def test_max_per_entity_caps_hub_subjects():
    graph = build_graph([triple("感冒", relation, f"x{i}") for i, relation in
                         enumerate(["has_symptom", "need_check", "do_eat", "not_eat", "cure_way"])]).graph
    result = render(graph, load_templates("zh"), lang="zh", max_per_entity=2, seed=1)
    assert len(result.rows) == 2 and result.capped_by_max_per_entity == 3
    assert result.rows == render(graph, load_templates("zh"), lang="zh", max_per_entity=2, seed=1).rows


def test_subject_type_keys_a_template(tmp_path):
    from medcurate.kg.graph import build_graph as build

    (tmp_path / "typed.yaml").write_text(
        "lang: zh\ntemplates:\n"
        "  - {id: my.drug_related, relation: related_disease, subject_type: drug, question: '{subject}与哪些疾病有关？', answer: '药物{subject}：{objects}'}\n",
        encoding="utf-8")
    templates = load_templates("zh", [tmp_path])
    graph = build([{"head": "阿司匹林", "head_type": "drug", "relation": "相关疾病", "tail": "心绞痛"},
                   {"head": "尿沉渣计数", "head_type": "check", "relation": "相关疾病", "tail": "尿路感染"}]).graph
    rows = {row["subject"]: row for row in render(graph, templates, lang="zh", seed=0).rows}
    assert rows["阿司匹林"]["template_id"] in {"my.drug_related", "zh.related_disease.p1"}
    assert rows["尿沉渣计数"]["template_id"] == "zh.related_disease.p1"
    chosen = {render(graph, templates, lang="zh", seed=seed).rows[0]["template_id"] for seed in range(12)}
    assert chosen == {"my.drug_related", "zh.related_disease.p1"}


def test_drug_to_disease_two_hop_needs_two_records_by_default():
    once = build_graph([triple("感冒", "common_drug", "感冒灵"), triple("感冒", "has_symptom", "发热")]).graph
    result = render(once, load_templates("zh"), lang="zh")
    assert not [r for r in result.rows if r["template_id"] == "zh.two_hop.drug_disease_symptom"]
    assert result.two_hop_unsupported == 1
    twice = build_graph([triple("感冒", "common_drug", "感冒灵"), triple("感冒", "common_drug", "感冒灵"),
                         triple("感冒", "has_symptom", "发热")]).graph
    asked = [r for r in render(twice, load_templates("zh"), lang="zh").rows
             if r["template_id"] == "zh.two_hop.drug_disease_symptom"]
    assert [r["subject"] for r in asked] == ["感冒灵"]
