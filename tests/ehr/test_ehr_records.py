"""EHR field mapping, diagnosis normalisation, the labelled input and CMB-Clin case parsing."""
from __future__ import annotations

import json

import pytest

from medcurate.ehr.records import cmb_clin_diagnosis, cmb_clin_sections, labelled_input, map_fields, normalise_diagnosis
from medcurate.errors import MedcurateError
from tests.conftest import shared_path


@pytest.mark.parametrize("text, primary, items, uncertain", [
    ("1.高血压病3级 2.冠心病？", "高血压病3级", ["高血压病3级", "冠心病"], False),
    ("肺部感染可能；2型糖尿病", "肺部感染", ["肺部感染", "2型糖尿病"], True),
    ("腹痛待查", "腹痛", ["腹痛"], True),
    ("考虑急性阑尾炎，慢性胃炎", "急性阑尾炎", ["急性阑尾炎", "慢性胃炎"], True),
    ("冠状动脉粥样硬化性心脏病 不稳定型心绞痛", "冠状动脉粥样硬化性心脏病 不稳定型心绞痛",
     ["冠状动脉粥样硬化性心脏病 不稳定型心绞痛"], False),
    ("脑梗死、高血压病、脑梗死", "脑梗死", ["脑梗死", "高血压病"], False),
    ("？", "", [], False),
    ("①五步蛇咬伤，②失血性贫血", "五步蛇咬伤", ["五步蛇咬伤", "失血性贫血"], False),
    ("1、高血压病 2、冠心病", "高血压病", ["高血压病", "冠心病"], False),
    ("食管裂孔疝（混合型），反流性食管炎（LA-C）", "食管裂孔疝（混合型）", ["食管裂孔疝（混合型）", "反流性食管炎（LA-C）"], False),
    ("右手压砸伤（食、中指骨折）", "右手压砸伤（食、中指骨折）", ["右手压砸伤（食、中指骨折）"], False),
])
def test_normalise_diagnosis_splits_and_flags(text, primary, items, uncertain):
    result = normalise_diagnosis(text)
    assert result.primary == primary
    assert list(result.all) == items
    assert result.uncertain is uncertain


def test_uncertainty_is_per_item():
    result = normalise_diagnosis("1.高血压病3级 2.冠心病？")
    assert result.uncertain_items == (False, True)


def test_map_fields_accepts_chinese_english_and_an_explicit_mapping():
    chinese = map_fields({"主诉": " 咳嗽3天 ", "诊断": "肺炎", "科室": "呼吸内科", "患者ID": "P1"})
    assert chinese["chief_complaint"] == "咳嗽3天" and chinese["diagnosis"] == "肺炎"
    assert chinese["department"] == "呼吸内科" and chinese["patient_id"] == "P1" and chinese["physical_exam"] is None
    english = map_fields({"Chief_Complaint": "cough", "Diagnosis": "pneumonia"})
    assert english["chief_complaint"] == "cough" and english["diagnosis"] == "pneumonia"
    mapped = map_fields({"出院诊断": "肺炎", "dx_note": "x"}, {"diagnosis": "出院诊断", "auxiliary_exam": "dx_note"})
    assert mapped["diagnosis"] == "肺炎" and mapped["auxiliary_exam"] == "x"
    with pytest.raises(MedcurateError, match="unknown EHR field"):
        map_fields({}, {"diagnosys": "诊断"})


def test_labelled_input_has_fixed_order_and_skips_missing_sections():
    row = {"auxiliary_exam": "胸片示肺炎", "chief_complaint": "咳嗽3天", "physical_exam": "右下肺湿啰音"}
    assert labelled_input(row) == "主诉：咳嗽3天\n体格检查：右下肺湿啰音\n辅助检查：胸片示肺炎"


def test_cmb_clin_cases_give_sections_and_diagnoses():
    path = shared_path("data", "cmb-clin", "CMB-test-qa.json")
    cases = {case["id"]: case for case in json.loads(path.read_text(encoding="utf-8"))}
    first = cmb_clin_sections(cases["0"]["description"])
    assert first["chief_complaint"] == "右下腹痛并自扪及包块3小时。"
    assert first["physical_exam"].startswith("体温") and "血常规" in first["auxiliary_exam"]
    assert cmb_clin_diagnosis(cases["0"]["QA_pairs"]) == "嵌顿性腹股沟斜疝合并肠梗阻"
    case_42 = cmb_clin_sections(cases["42"]["description"])
    assert "陆桂华" in case_42["present_illness"]  # the identifiers the deid step must remove
    assert case_42["past_history"].startswith("否认")
