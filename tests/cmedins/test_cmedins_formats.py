"""Every task's answer renderer and parser agree: parse(render(gold)) == gold."""
from __future__ import annotations

from typing import Any

import pytest

from medcurate.cmedins.formats import REPORT_SECTIONS, TASKS, Unrenderable, parse, render
from medcurate.cmedins.steps import load_templates

GOLDS: dict[str, list[dict[str, Any]]] = {
    "cdee": [{"events": [{"core_name": "食欲", "tendency": "", "character": ["正常"], "anatomy_list": []},
                         {"core_name": "疼痛", "tendency": "否定", "character": [], "anatomy_list": ["右下腹", "脐周"]},
                         {"core_name": "结节", "tendency": "不确定", "character": ["第 3 级：中度"], "anatomy_list": []}]},
             {"events": []}],
    "ner": [{"entities": {"dis": ["成人SARS", "肺炎"], "bod": ["SARST细胞"], "sym": ["发热、咳嗽"]}}, {"entities": {}}],
    "diagnosis": [{"primary": "社区获得性肺炎", "others": ["2型糖尿病", "高血压病2级"], "uncertain": True},
                  {"primary": "偏头痛", "others": [], "uncertain": False}],
    "triage": [{"department": "呼吸内科"}],
    "report": [{"sections": {name: f"{name}内容，含：冒号" for name in REPORT_SECTIONS} | {"既往史": "无"}}],
    "cdn": [{"terms": ["糖尿病性低血糖症", "骨质疏松", "高血压"]}, {"terms": []}],
    "cmeie": [{"triples": [["急性胰腺炎", "影像学检查", "ERCP"], ["哮喘", "临床表现", "喘息，咳嗽"]]}, {"triples": []}],
}


def test_every_task_has_a_gold_example():
    assert set(GOLDS) == set(TASKS)


@pytest.mark.parametrize("task, gold", [(task, gold) for task, golds in GOLDS.items() for gold in golds])
def test_parse_inverts_render(task, gold):
    assert parse(task, render(task, gold)) == gold


def test_answer_formats_are_the_documented_ones():
    assert render("cdee", GOLDS["cdee"][0]).splitlines()[1] == "主体词：疼痛；发生状态：否定；描述词：无；解剖部位：右下腹、脐周"
    assert render("ner", GOLDS["ner"][0]).splitlines()[0] == "疾病：成人SARS；肺炎"
    assert render("diagnosis", GOLDS["diagnosis"][0]) == "诊断：社区获得性肺炎\n其他诊断：2型糖尿病；高血压病2级\n诊断不确定：是"
    assert render("triage", GOLDS["triage"][0]) == "科室：呼吸内科"
    assert render("cdn", GOLDS["cdn"][0]) == "标准术语：糖尿病性低血糖症；骨质疏松；高血压"
    assert render("cmeie", GOLDS["cmeie"][0]).splitlines()[0] == "主体：急性胰腺炎；关系：影像学检查；客体：ERCP"
    assert [line.split("：")[0] for line in render("report", GOLDS["report"][0]).splitlines()] == list(REPORT_SECTIONS)
    assert render("ner", {"entities": {}}) == "无"


@pytest.mark.parametrize("task, gold", [
    ("ner", {"entities": {"dis": ["甲；乙"]}}),
    ("cdee", {"events": [{"core_name": "痛", "tendency": "", "character": ["钝、胀"], "anatomy_list": []}]}),
    ("cdn", {"terms": ["无"]}),
    ("cmeie", {"triples": [["a", "b", "c\nd"]]}),
    ("report", {"sections": {"主诉": "咳嗽"}}),
    ("ner", {"entities": {"xyz": ["甲"]}}),
])
def test_ambiguous_gold_is_refused(task, gold):
    with pytest.raises(Unrenderable):
        render(task, gold)


def test_model_output_with_noise_still_parses():
    output = "\n 疾病：肺炎 \n\n身体：肺\n"
    assert parse("ner", output) == {"entities": {"dis": ["肺炎"], "bod": ["肺"]}}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_has_at_least_three_templates(task):
    templates = load_templates(task)
    assert len(templates) >= 3 and len({t["id"] for t in templates}) == len(templates)
    assert len({t["instruction"] for t in templates}) == len(templates)
