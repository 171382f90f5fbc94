"""Dates, the Safe Harbor way: every date more specific than a year is an identifier (birth,
admission, discharge, operation, examination, follow-up, treatment course), with or without a
clock time, in Arabic or Chinese numerals, with noisy separators, as month-day or year-month.
Years alone, durations (3天, 2周) and times of day without a date are left alone. The surrogate
policy shifts dates per patient, so intervals survive de-identification."""
from __future__ import annotations

from medcurate.deid.recognizers.base import Pattern, Recognizer, register

_YEAR = r"(?:19|20)\d{2}"
_MONTH = r"(?:1[0-2]|0?[1-9])"
_DAY = r"(?:3[01]|[12]\d|0?[1-9])"
_HOUR = r"(?:2[0-3]|[01]?\d)"
# An optional clock time glued to the date, after a space, comma or semicolon, or in brackets.
_PART_OF_DAY = r"(?:上午|下午|中午|晚上|夜间|凌晨|早上|早晨|傍晚|晨|晚)?"
_TIME = (rf"(?:\s{{0,2}}[，,；;]?\s{{0,2}}{_PART_OF_DAY}[(（]?{_HOUR}\s?[:：]\s?[0-5]\d(?:[:：][0-5]\d)?[)）]?"
         rf"|\s?{_PART_OF_DAY}{_HOUR}\s?[时点](?:\s?[0-5]?\d\s?分)?(?:\s?[0-5]?\d\s?秒)?"
         # a day glued to the hour (…2.14时25分 = the 1st at 4:25 or the 14th at 25 past: either way the date-time)
         rf"|[时点][0-5]?\d分)?")
_SEPARATED = rf"(?<![\d.\-/]){_YEAR}\s?(?P<sep>-{{1,2}}|/{{1,2}}|\.{{1,2}}|_)\s?{_MONTH}\s?(?P=sep)\s?{_DAY}(?:\s?[日号])?{_TIME}(?![\d])"
_CJK_FULL = rf"(?<!\d){_YEAR}\s?年\s?{_MONTH}\s?月\s?{_DAY}\s?[日号]?{_TIME}(?![\d])"
_CJK_YEAR_MONTH = rf"(?<!\d){_YEAR}\s?年\s?{_MONTH}\s?(?:月份|月)"
_YEAR_MONTH = rf"(?<![\d.\-/]){_YEAR}[-/]{_MONTH}(?![\d.\-/])"
_MONTH_DAY = rf"(?<![\d.年]){_MONTH}\s?月\s?{_DAY}\s?[日号]{_TIME}(?![\d])"
_COMPACT = rf"(?<![\dA-Za-z]){_YEAR}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?![\dA-Za-z])"

_CN_DIGIT = "〇零○Ｏ一二三四五六七八九"
_CN_YEAR = rf"[{_CN_DIGIT}]{{4}}\s?年"
_CN_MONTH = r"(?:十[一二]?|[一二三四五六七八九])\s?月"
_CN_DAY = r"(?:三十一?|二十[一二三四五六七八九]?|十[一二三四五六七八九]?|[一二三四五六七八九])\s?[日号]"
_CN_TIME = (rf"(?:{_PART_OF_DAY}(?:二十[一二三]?|十[一二三四五六七八九]?|[零一二三四五六七八九])[时点]"
            r"(?:(?:[一二三四五]?十[一二三四五六七八九]?|[零〇][一二三四五六七八九]|[一二三四五六七八九])分|半)?)?")


@register
class DateRecognizer(Recognizer):
    entity_type = "DATE"
    patterns = (
        Pattern("separated", _SEPARATED, 0.9),
        Pattern("cjk", _CJK_FULL, 0.9),
        Pattern("cjk-year-month", _CJK_YEAR_MONTH, 0.85),
        Pattern("year-month", _YEAR_MONTH, 0.7),
        Pattern("month-day", _MONTH_DAY, 0.85),
        Pattern("compact", _COMPACT, 0.6),
        Pattern("chinese-numerals", rf"{_CN_YEAR}{_CN_MONTH}(?:{_CN_DAY}{_CN_TIME})?", 0.9),
        Pattern("chinese-month-day", rf"(?<![{_CN_DIGIT}十]){_CN_MONTH}{_CN_DAY}{_CN_TIME}", 0.85),
    )
    context = ("出生", "生日", "入院", "出院", "住院", "就诊", "初诊", "复诊", "随访", "死亡", "签名", "日期", "生于")
