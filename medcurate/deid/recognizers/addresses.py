"""Addresses: labelled (住址：, 现住, 家住 …), unlabelled chains of administrative and street units
(省 市 县/区 镇/乡/街道 村 组, 路 号 栋 室 …), and home-village phrases (…县…村人，). A span stops at
sentence punctuation and at the words that start the next item of a note (主诉, 因, 电话 …)."""
from __future__ import annotations

import re

from medcurate.deid.lexicon import NOT_IN_PLACE_NAME, PROVINCES
from medcurate.deid.recognizers.base import CJK, SEP, Recognizer, char_class_without, register

# A character of a place name: CJK, but not a word of clinical prose (患者, 疼痛, 的 …).
_PLACE_NAME_CHAR = char_class_without("".join(NOT_IN_PLACE_NAME))
_PROVINCE = r"(?:" + "|".join(PROVINCES) + r")(?:省|市|自治区|壮族自治区|回族自治区|维吾尔自治区|特别行政区)?"
_CN_NUMBER = "一二三四五六七八九十"
_ADMIN_UNITS = (
    rf"{_PROVINCE}",
    rf"{_PLACE_NAME_CHAR}{{1,6}}?(?:市|州|盟|地区)",
    rf"{_PLACE_NAME_CHAR}{{1,6}}?(?:区|县|旗)",
    # towns and villages have names of two characters or more (农村, 城乡 are words, not places)
    rf"{_PLACE_NAME_CHAR}{{2,6}}?(?:镇|乡|街道|办事处)",
    rf"{_PLACE_NAME_CHAR}{{2,6}}?(?:村|屯|嘎查|社区|居委会)",
    rf"(?:\d+|[{_CN_NUMBER}]+)(?:组|队|社)",
)
_STREET_UNITS = (
    rf"[{CJK}A-Za-z0-9]{{1,8}}?(?:路|大道|大街|街|巷|弄|胡同|里)",
    r"\d+(?:号|弄|巷)",
    rf"{_PLACE_NAME_CHAR}{{1,8}}?(?:小区|花园|公寓|大厦|广场|新村|家园|苑|庄园|公馆|府)",
    r"\d+(?:栋|幢|座|号楼|号院)",
    r"\d+(?:单元|门)",
    r"\d+(?:层|楼)",
    r"\d+(?:室|户|房)",
)
_UNIT = "(?:" + "|".join(f"(?:{unit})" for unit in _ADMIN_UNITS + _STREET_UNITS) + ")"
_NUMBERED_UNIT = re.compile(r"\d+(?:号|弄|巷|栋|幢|座|号楼|号院|单元|门|层|楼|室|户|房)")
_COUNTY_OR_ABOVE = re.compile(r"(?:市|州|盟|区|县|旗)")
_LOCAL = re.compile(r"(?:镇|乡|街道|村|屯|嘎查|社区|组|队|路|街|号)")


@register
class AddressRecognizer(Recognizer):
    entity_type = "ADDRESS"
    context = ("住址", "地址", "现住", "家住", "户籍", "居住")
    _chain = re.compile(f"{_UNIT}{{2,}}")
    _labelled = re.compile(r"(?:家庭住址|现住址|现居住地|现居住于|现居住|现居|住址|户籍地址|户籍地|户籍所在地|居住地址|居住地|"
                           r"通讯地址|联系地址|地址|家住|住在|现住|籍贯|出生地)" + SEP + r"(?:在|于)?(?P<value>[^，,；;。\n（(]{2,60})")
    _stop = re.compile(r"(?:联系|电话|手机|邮编|邮箱|工作单位|身份证|主诉|主因|因[“\"「]|于\d|入院|就诊|发现)")
    # Home village: a chain of units (or one unit) right before 人 at a clause boundary (…村人，).
    _native_mark = re.compile(r"人(?=[，,。；;、\s]|$)")
    _native = re.compile(rf"(?:^|(?<=[，,、：:；;\s]))(?P<value>{_UNIT}{{1,6}})$")
    _one_unit = re.compile(_UNIT)
    _anchor = re.compile(r"\d+(?:号|栋|幢|室|单元|弄)|省|自治区|[县村镇乡旗]|[区市](?!场)|组|街道")

    def candidates(self, text):
        for match in self._labelled.finditer(text):
            start = match.start("value")
            end = match.end("value")
            stop = self._stop.search(text, start, end)
            if stop:
                end = stop.start()
            while end > start and text[end - 1] in " \t":
                end -= 1
            value = text[start:end]
            if end - start >= 2 and (self._chain.search(value) or _NUMBERED_UNIT.search(value)
                                     or self._one_unit.match(value)):
                yield self.span(start, end, 0.95)
        for mark in self._native_mark.finditer(text):
            match = self._native.search(text, max(0, mark.start() - 40), mark.start())
            if match and (_COUNTY_OR_ABOVE.search(match.group("value")) or _LOCAL.search(match.group("value"))):
                yield self.span(match.start("value"), match.end("value"), 0.88)
        for window_start, window_end in self._windows(text):
            yield from self._chains(text, window_start, window_end)

    def _windows(self, text: str) -> list[tuple[int, int]]:
        """Stretches of text around address anchors; chains are searched only there (speed)."""
        windows: list[tuple[int, int]] = []
        for anchor in self._anchor.finditer(text):
            start, end = max(0, anchor.start() - 30), min(len(text), anchor.end() + 30)
            if windows and start <= windows[-1][1]:
                windows[-1] = (windows[-1][0], end)
            else:
                windows.append((start, end))
        return windows

    def _chains(self, text: str, window_start: int, window_end: int):
        for match in self._chain.finditer(text, window_start, window_end):
            value = match.group()
            has_number = bool(_NUMBERED_UNIT.search(value))
            has_province = bool(re.match(_PROVINCE, value))
            if has_number and (has_province or len(_NUMBERED_UNIT.findall(value)) >= 2 or re.search("路|街|道|巷|弄", value)):
                yield self.span(match.start(), match.end(), 0.85)
            elif _COUNTY_OR_ABOVE.search(value) and (_LOCAL.search(value) or len(_COUNTY_OR_ABOVE.findall(value)) >= 2):
                yield self.span(match.start(), match.end(), 0.8)
