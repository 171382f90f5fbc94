"""Employers and schools. The hospital and its departments are the care setting, not an identifier."""
from __future__ import annotations

import re

from medcurate.deid.lexicon import CARE_SETTING_SUFFIXES
from medcurate.deid.recognizers.base import CJK, Recognizer, register


@register
class OrganizationRecognizer(Recognizer):
    entity_type = "ORGANIZATION"
    _labelled = re.compile(r"(?:(?:工作单位|单位名称|所在单位|单位|学校|雇主)[:：]\s*|(?:就职于|任职于|工作于|供职于|就读于)\s*)"
                           + rf"(?P<value>[{CJK}A-Za-z0-9（）()·&]{{2,30}})")
    _suffix = re.compile(r"股份有限公司|有限责任公司|有限公司|集团|公司|银行|中学|小学|大学|学院|幼儿园|研究所|研究院|事务所|"
                         r"工厂|派出所|法院|分行|支行")
    _lead = re.compile(r"(?:在|于|到|是|为|就职于|任职于|就读于|工作于|系)")
    _strong = re.compile("公司|集团|银行|分行|支行|中学|小学|幼儿园|派出所")
    # Unlabelled company or school names (drug makers in a textbook) are kept unless the text
    # says the person works or studies there.
    _employment = re.compile(r"(就职|任职|工作|上班|就读|在读|供职|退休于|单位)[于在是为]?\s*$")

    def candidates(self, text):
        for match in self._labelled.finditer(text):
            value = match.group("value")
            if value.endswith(CARE_SETTING_SUFFIXES) or value in ("无", "不详", "暂无", "退休", "无业"):
                continue
            yield self.span(match.start("value"), match.end("value"), 0.92)
        for match in self._suffix.finditer(text):
            start = match.start()
            while start > 0 and match.start() - start < 14 and "\u4e00" <= text[start - 1] <= "\u9fff":
                start -= 1
            if match.start() - start < 2:
                continue
            lead = self._lead.match(text, start)
            if lead:
                start = lead.end()
            particle = text.rfind("的", start, match.start())
            if particle >= 0:
                start = particle + 1
            if match.start() - start < 2 or any(text[start:match.end()].endswith(s) for s in CARE_SETTING_SUFFIXES):
                continue
            employed = self._employment.search(text, max(0, start - 8), start)
            yield self.span(start, match.end(), 0.85 if employed and self._strong.search(match.group()) else 0.45)
