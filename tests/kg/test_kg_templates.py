"""Templates as data: the paper's appendix B set ships complete, user templates load from a folder,
and a template naming a slot its relation lacks is refused at load time."""
from __future__ import annotations

import pytest

from medcurate.errors import MedcurateError
from medcurate.kg.templates import load_templates


def test_all_appendix_b_templates_ship_with_their_wording():
    for lang, expected in (("zh", 17), ("en", 18)):
        templates = load_templates(lang)
        paper = [t for ts in templates.one_hop.values() for t in ts if t.paper]
        assert len(paper) == expected
        assert {t.relation for t in paper} == {"related_disease", "has_symptom", "need_check", "indication", "cure_way",
                                               "complication", "drug_interaction", "treats_symptom"}
    zh = load_templates("zh")
    # 39Health/xywy co-occurrence columns (acompany_with) are never worded as causes
    assert not any("引起" in t.answer or "并发症" in t.answer for t in zh.one_hop["acompany_with"])
    assert "{subject}有哪些常见症状？" in [t.question for t in zh.one_hop["has_symptom"]]
    # relations the paper lacks have templates too
    assert {"do_eat", "not_eat", "belongs_to_department", "need_check", "cure_way", "drug_producer"} <= zh.relations


def test_template_with_a_slot_its_relation_lacks_is_refused(tmp_path):
    (tmp_path / "mine.yaml").write_text(
        "lang: zh\ntemplates:\n  - {id: my.bad, relation: has_symptom, question: '{drug}有什么症状？', answer: '{objects}'}\n",
        encoding="utf-8")
    with pytest.raises(MedcurateError) as caught:
        load_templates("zh", [tmp_path])
    message = str(caught.value)
    assert "mine.yaml" in message and "my.bad" in message and "{drug}" in message and "has_symptom" in message


def test_one_hop_template_cannot_use_the_two_hop_middle_slot(tmp_path):
    (tmp_path / "mid.yaml").write_text(
        "lang: en\ntemplates:\n  - {id: my.mid, relation: alias, question: '{middle}?', answer: '{objects}'}\n",
        encoding="utf-8")
    with pytest.raises(MedcurateError, match="my.mid"):
        load_templates("en", [tmp_path])


def test_user_template_adds_a_relation_without_code(tmp_path):
    (tmp_path / "extra.yaml").write_text(
        "lang: zh\ntemplates:\n  - {id: my.storage, relation: storage, question: '{subject}如何贮藏？', answer: '{subject}应{objects}。'}\n",
        encoding="utf-8")
    templates = load_templates("zh", [tmp_path])
    assert [t.id for t in templates.one_hop["storage"]] == ["my.storage"]
    assert "storage" not in load_templates("zh").relations
