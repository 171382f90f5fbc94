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
    # an affirmed event is never written 发生状态：无 (reads as "absent")
    assert render("cdee", GOLDS["cdee"][0]).splitlines()[0] == "主体词：食欲；发生状态：肯定；描述词：正常；解剖部位：无"
    assert render("ner", GOLDS["ner"][0]).splitlines()[0] == "疾病：成人SARS；肺炎"
    assert render("diagnosis", GOLDS["diagnosis"][0]) == "诊断：社区获得性肺炎\n其他诊断：2型糖尿病；高血压病2级\n诊断不确定：是"
    assert render("triage", GOLDS["triage"][0]) == "科室：呼吸内科"
    assert render("cdn", GOLDS["cdn"][0]) == "标准术语：糖尿病性低血糖症；骨质疏松；高血压"
    # the answer format is the one the cmeie instructions ask for
    assert render("cmeie", GOLDS["cmeie"][0]).splitlines() == ["（急性胰腺炎，影像学检查，ERCP）", "（哮喘，临床表现，喘息，咳嗽）"]
    assert all("（主体，关系，客体）" in t["instruction"] for t in load_templates("cmeie"))
    assert [line.split("：")[0] for line in render("report", GOLDS["report"][0]).splitlines()] == list(REPORT_SECTIONS)
    assert render("ner", {"entities": {}}) == "无"


@pytest.mark.parametrize("task, gold", [
    ("ner", {"entities": {"dis": ["甲「乙」"]}}),
    ("cdee", {"events": [{"core_name": "痛", "tendency": "", "character": ["「钝」"], "anatomy_list": []}]}),
    ("cmeie", {"triples": [["a", "不是关系类型", "c"]]}),
    ("cdn", {"terms": ["无"]}),
    ("cmeie", {"triples": [["a", "b", "c\nd"]]}),
    ("report", {"sections": {"主诉": "咳嗽"}}),
    ("ner", {"entities": {"xyz": ["甲"]}}),
])
def test_ambiguous_gold_is_refused(task, gold):
    with pytest.raises(Unrenderable):
        render(task, gold)


# Valid records the parsers used to reject (clinical review): values holding 、 (TNM stages,
# multi-segment locations), a CMeIE object with ； and parentheses.
REVIEW_GOLDS = [
    ("ner", {"entities": {"sym": ["皮疹稀疏细小，消失快；可见脱屑", "无"]}}),
    ("cdee", {"events": [{"core_name": "进食", "tendency": "", "character": ["无"], "anatomy_list": []}]}),
    ("cdee", {"events": [{"core_name": "结节", "tendency": "", "character": ["T2N1M0、IIB期"],
                          "anatomy_list": ["左肺上叶、下叶背段及右肺中叶"]},
                         {"core_name": "关节肿痛", "tendency": "否定", "character": [], "anatomy_list": ["右手第3、4、5指关节", "腕"]}]}),
    ("cmeie", {"triples": [["急性髓系白血病", "病理分型", "t(8；14)"], ["淋巴瘤", "相关（导致）", "EB病毒（EBV），感染"]]}),
]


@pytest.mark.parametrize("task, gold", REVIEW_GOLDS)
def test_review_records_round_trip(task, gold):
    text = render(task, gold)
    assert parse(task, text) == gold
    if task == "cdee" and "结节" in text:
        assert "「左肺上叶、下叶背段及右肺中叶」" in text and "发生状态：肯定" in text


def test_model_output_with_noise_still_parses():
    output = "\n 疾病：肺炎 \n\n身体：肺\n"
    assert parse("ner", output) == {"entities": {"dis": ["肺炎"], "bod": ["肺"]}}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_has_at_least_three_templates(task):
    templates = load_templates(task)
    assert len(templates) >= 3 and len({t["id"] for t in templates}) == len(templates)
    assert len({t["instruction"] for t in templates}) == len(templates)
