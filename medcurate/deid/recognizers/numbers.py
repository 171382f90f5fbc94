"""Identifiers made of digits: identity cards, phones, record and insurance numbers, bank cards,
licence plates, and ages over 89. Full-width digits are folded to ASCII by the engine before
scanning, so the patterns only see ASCII digits."""
from __future__ import annotations

import re

from medcurate.deid.recognizers.base import DIGITS, SEP, Pattern, Recognizer, clear_before, register

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_GAP = r"[\s-]?"


def id_card_checksum_ok(number: str) -> bool:
    """The GB 11643 mod-11 check digit of an 18-digit resident identity number (separators ignored)."""
    number = re.sub(r"[\s-]", "", number)
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_ok(number: str) -> bool:
    digits = [int(d) for d in number if d.isdigit()]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


@register
class IdCardRecognizer(Recognizer):
    """18-digit numbers with a valid check digit anywhere; others (and the old 15-digit form) only
    with an identity-card word before them. Spaces or dashes between the digit groups are allowed."""

    entity_type = "ID_CARD"
    patterns = (
        Pattern("id18", r"(?<![0-9A-Za-z])[1-9]\d{5}" + _GAP + r"(?:18|19|20)\d{2}" + _GAP
                + r"(?:0[1-9]|1[0-2])" + _GAP + r"(?:0[1-9]|[12]\d|3[01])" + _GAP + r"\d{3}[\dXx](?![0-9A-Za-z])", 0.97),
        Pattern("id18-spaced-4", r"(?<![0-9A-Za-z])[1-9]\d{3}(?:[\s-]\d{4}){3}[\s-]\d{1}[\dXx](?![0-9A-Za-z])", 0.97),
        Pattern("id15", r"(?<![0-9A-Za-z])[1-9]\d{7}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}(?![0-9A-Za-z])", 0.3),
    )
    context = ("身份证", "证件号", "公民身份", "身份号", "身份证号")
    _other_context = re.compile(r"(医保|社保|卡号|住院号|门诊号|病案号|电话|手机)[^，,；;。\n]{0,6}$")

    def validate(self, text, start, end, pattern):
        if pattern.name == "id15":
            return pattern.score
        if not id_card_checksum_ok(text[start:end]):
            return 0.3
        if self._other_context.search(text, max(0, start - 10), start):
            return 0.6
        return pattern.score


@register
class PhoneRecognizer(Recognizer):
    entity_type = "PHONE"
    patterns = (
        Pattern("labelled", r"(?:电话|手机|联系方式|手机号|致电|拨打)(?:号码)?[:：\s]*(?P<value>1[3-9]\d" + _GAP + r"\d{4}"
                + _GAP + r"\d{4}|(?:[(（]0\d{2,3}[)）]|0\d{2,3}-)\d{7,8})", 0.93),
        Pattern("country-code", r"(?:\+|00)86[-\s]?1[3-9]\d" + _GAP + r"\d{4}" + _GAP + r"\d{4}(?![\d.])", 0.92),
        Pattern("mobile", r"1[3-9]\d(?:\d{8}|[-\s]\d{4}[-\s]\d{4}|\d[\s-]\d{3}[\s-]\d{4}|\d{4}[\s-]\d{4})(?![\d.])", 0.88),
        Pattern("landline", r"(?:[(（]0\d{2,3}[)）][-\s]?|0\d{2,3}[-\s])\d{3,4}[-\s]?\d{4}(?:[-转]\d{1,5})?(?![\d.])", 0.8),
    )
    context = ("电话", "手机", "联系", "致电", "拨打", "热线", "Tel", "TEL", "tel", "call")

    def validate(self, text, start, end, pattern):
        if pattern.name in ("mobile", "landline") and not clear_before(text, start, DIGITS + ".+"):
            return None
        if pattern.name == "landline" and len(re.sub(r"\D", "", text[start:end])) < 10:
            return None
        return pattern.score


_CN_DIGIT = "〇零一二三四五六七八九幺两"


@register
class ChineseNumeralPhoneRecognizer(Recognizer):
    """Mobile numbers spelled in Chinese numerals (一三八一二三四五六七八, 幺三九…)."""

    entity_type = "PHONE"
    patterns = (Pattern("cn-mobile", rf"(?<![{_CN_DIGIT}])[一幺][三四五六七八九][{_CN_DIGIT}]{{9}}(?![{_CN_DIGIT}])", 0.9),)
    context = ("电话", "手机", "联系", "拨打")


_NUMBER_VALUE = r"(?P<value>(?:No\.?\s?)?[A-Za-z]{0,4}-?\d[\dA-Za-z/\-]{3,24})(?![\dA-Za-z])"


class _LabelledNumberRecognizer(Recognizer):
    """A number right after its label (住院号：ZY0012345, 病案号 No.8812345)."""

    labels: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        alternatives = "|".join(sorted(map(re.escape, cls.labels), key=len, reverse=True))
        cls.patterns = (Pattern("labelled", rf"(?<![A-Za-z])(?:{alternatives})(?:号码|编号|号)?{SEP}(?:为|是)?{SEP}"
                                            + _NUMBER_VALUE, 0.95),) + cls.patterns




@register
class MedicalRecordNumberRecognizer(_LabelledNumberRecognizer):
    entity_type = "MEDICAL_RECORD_NO"
    labels = ("住院号", "住院病历号", "门诊号", "急诊号", "病案号", "病历号", "登记号", "就诊卡号", "就诊号", "诊疗卡号",
              "检查号", "影像号", "标本号", "床号ID", "患者ID", "病人ID", "ID号", "ID", "MRN", "流水号", "档案号", "条码号")
    patterns = (
        # Record numbers with their own prefix, unlabelled: No.8812345, ZY0012345, OP2023/00876, A-12-3456.
        Pattern("no-prefix", r"(?<![A-Za-z0-9])(?:No|NO|no)\.?\s?\d{5,}(?![\dA-Za-z])", 0.85),
        Pattern("letter-prefix", r"(?<![A-Za-z0-9.])[A-Z]{2,3}\d{6,}(?![\dA-Za-z])", 0.7),
        Pattern("year-serial", r"(?<![A-Za-z0-9])[A-Z]{1,3}(?:19|20)\d{2}[/-]\d{4,}(?![\dA-Za-z])", 0.85),
        Pattern("dashed", r"(?<![A-Za-z0-9-])[A-Z]-\d{2}-\d{4}(?![\dA-Za-z-])", 0.7),
    )
    context = ("住院号", "病案号", "门诊号", "病历号", "登记号", "档案号")


@register
class InsuranceNumberRecognizer(_LabelledNumberRecognizer):
    entity_type = "INSURANCE_NO"
    labels = ("医保卡号", "医保号", "医保卡", "社保卡号", "社保号", "社保卡", "医疗保险号", "医疗保险卡号", "参保号",
              "新农合号", "农合号", "医疗证号")


@register
class BankCardRecognizer(Recognizer):
    entity_type = "BANK_CARD"
    patterns = (Pattern("card", r"(?<![\dA-Za-z])\d{4}(?:[\s-]?\d{3,4}){3,4}(?![\dA-Za-z])", 0.55),)
    context = ("银行卡", "储蓄卡", "信用卡", "借记卡", "银行账号", "账号", "卡号")
    _not_bank = re.compile(r"(医保|社保|身份证|住院|门诊|病案)[^，,；;。\n]{0,4}$")

    def validate(self, text, start, end, pattern):
        digits = re.sub(r"\D", "", text[start:end])
        if not 16 <= len(digits) <= 19 or not luhn_ok(digits):
            return None
        if self._not_bank.search(text, max(0, start - 8), start):
            return None
        return pattern.score


@register
class LicensePlateRecognizer(Recognizer):
    entity_type = "LICENSE_PLATE"
    patterns = (Pattern("plate", r"(?<![A-Za-z0-9])[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼]"
                                 r"[A-HJ-NP-Z][·•\s]?(?:[A-HJ-NP-Z0-9]{5}|[DF][A-HJ-NP-Z0-9]{5}|[A-HJ-NP-Z0-9]{5}[DF])"
                                 r"(?![A-Za-z0-9])", 0.85),)

    def validate(self, text, start, end, pattern):
        plate = re.sub(r"[·•\s]", "", text[start:end])[2:]
        return pattern.score if sum(ch.isdigit() for ch in plate) >= 2 else None


_CN_UNIT = "一二三四五六七八九"


@register
class AgeRecognizer(Recognizer):
    """Ages of 90 and over identify people (HIPAA's Safe Harbor groups them as '90 or older');
    in Arabic or Chinese numerals (九十五岁, 一百零一岁)."""

    entity_type = "AGE"
    patterns = (
        Pattern("years", r"(?<![\d.])(?:9\d|1[0-2]\d)(?=\s?(?:周岁|岁半|岁)|\s?(?:y|Y)(?:ears?|rs?|\.o\.))",
                0.9),
        Pattern("labelled", r"年龄" + SEP + r"(?P<value>(?:9\d|1[0-2]\d))(?![\d.])", 0.9),
        Pattern("chinese", rf"(?<![{_CN_UNIT}十百零])(?:九十[{_CN_UNIT}]?|一百(?:零[{_CN_UNIT}]|一十[{_CN_UNIT}]?|"
                           rf"[一二]十[{_CN_UNIT}]?)?)(?=周岁|岁)", 0.9),
    )
