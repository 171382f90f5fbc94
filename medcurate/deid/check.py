"""``medcurate deid check``: a second, independent scan of de-identified output.

It shares no pattern with the recognizers: blunt, high-recall shapes (long digit runs, anything
date-shaped, village/town phrases, a surname right after a role word, e-mail and URL shapes) that
a leftover identifier can hardly avoid. False alarms are acceptable here; a miss is not. It reports
record ids and identifier types, never the values.
"""
from __future__ import annotations

import re

from medcurate.deid.lexicon import COMPOUND_SURNAMES, NOT_IN_GIVEN_NAME, SINGLE_SURNAMES

_TAG = re.compile(r"\[[A-Z_]+\]")
_PSEUDONYM = re.compile(r"pt-[0-9a-f]{16}")
_GIVEN = "(?:(?![" + "".join(sorted(NOT_IN_GIVEN_NAME)) + "])[\u4e00-\u9fff]){1,2}"
_CJK_DIGIT = "〇零一二三四五六七八九十"
_SURNAME = "(?:" + "|".join(sorted(COMPOUND_SURNAMES, key=len, reverse=True)) + "|[" + "".join(sorted(SINGLE_SURNAMES)) + "])"

SHAPES: dict[str, re.Pattern] = {
    "DIGITS": re.compile(r"(?<![\d.])\d(?:[\s-]?\d){6,}(?![\d.])"),
    "DATE": re.compile(r"(?<!\d)(?:19|20)\d{2}\s*(?:[-./_年]{1,2})\s*\d{1,2}(?!\d{3})"
                       r"|(?<![\d.])\d{1,2}\s*月\s*\d{1,2}\s*[日号]"
                       rf"|[{_CJK_DIGIT}○]{{4}}\s*年|[{_CJK_DIGIT}]{{1,2}}月[{_CJK_DIGIT}]{{1,3}}[日号]"),
    "ADDRESS": re.compile(r"[\u4e00-\u9fff]{1,8}[村镇乡屯][\u4e00-\u9fff\d]{0,6}人[，,。；;\s]"
                          r"|[县区旗][\u4e00-\u9fff]{1,8}[镇乡村]|(?:现住|家住|住址|地址)[:：]?\s*[\u4e00-\u9fff]{2}"),
    "PERSON": re.compile(rf"(?:患者|病人|患儿|家属|其子|其女|其夫|其妻|联系人|姓名|陪同人|医师|签名)[:：\s]*(?![男女自于因]){_SURNAME}{_GIVEN}"
                         r"(?=[，,、。；;\s（(]|签字|陪同)"
                         r"|(?:^|[^\u4e00-\u9fff\[\]])" + _SURNAME + _GIVEN + r"[，,]\s*(?:男|女)"),
    "PHONE": re.compile(r"[一幺][三四五六七八九][〇零一二三四五六七八九幺]{9}"),
    "EMAIL": re.compile(r"[A-Za-z0-9._%+-]+\s?(?:@|＠)\s?[A-Za-z0-9-]+\.[A-Za-z]{2,}"),
    "URL": re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE),
    "AGE": re.compile(r"(?<!\d)(?:9\d|1[0-2]\d)\s?岁|九十[一二三四五六七八九]?岁|一百[零一二三四五六七八九十]*岁"),
}


def _number_like(run: str) -> bool:
    """Phone, identity and record numbers come in groups of three or more digits (138 1234 5678);
    lab names with numbers (CA19-9 6119) do not."""
    groups = re.split(r"[\s-]", run)
    return all(len(group) >= 3 for group in groups[:-1])


def leftover_types(text: str) -> list[str]:
    """The identifier types whose shapes still occur in ``text`` (already masked tags ignored)."""
    cleaned = _PSEUDONYM.sub(" ", _TAG.sub(" ", text))
    found = []
    for name, shape in SHAPES.items():
        if name == "DIGITS":
            if any(_number_like(match.group()) for match in shape.finditer(cleaned)):
                found.append(name)
        elif shape.search(cleaned):
            found.append(name)
    return found
