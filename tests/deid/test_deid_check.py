"""The independent scan behind `medcurate deid check`: blunt shapes that leftover identifiers can hardly
avoid, and masked clinical text that must not raise an alarm."""
from __future__ import annotations

import pytest

from medcurate.deid.check import leftover_types


@pytest.mark.parametrize("text, kind", [
    ("于2016-10-29；11：12入院", "DATE"), ("7月28日入院", "DATE"), ("二〇一六年七月", "DATE"),
    ("电话138 1234 5678", "DIGITS"), ("住院号ZY0012345", "DIGITS"), ("宽城县某某村人，主因", "ADDRESS"),
    ("现住址：某某乡", "ADDRESS"), ("其女宋娜陪同就诊", "PERSON"), ("p;郑志超，男性", "PERSON"),
    ("邮箱lvhm@163.com", "EMAIL"), ("一三八一二三四五六七八", "PHONE"), ("九十五岁", "AGE"),
])
def test_leftover_shapes_are_flagged(text, kind):
    assert kind in leftover_types(text)


@pytest.mark.parametrize("text", [
    "[PERSON]，男，66岁，[ADDRESS]人，主因“发现血糖升高5年”于[DATE]收入我科。",
    "T 36.5℃，BP 120/80mmHg，阿司匹林100mg qd，白细胞计数3.3*10^9/L，CA19-9 6119U/ml，病程2年。",
    "其女[PERSON]陪同就诊，患者pt-3f9a0b12c4d5e6f7于2016年起病。",
])
def test_masked_clinical_text_raises_no_alarm(text):
    assert leftover_types(text) == []
