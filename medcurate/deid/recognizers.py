"""One recognizer per identifier type, in a registry (the Presidio layout, written for Chinese).

Patterns use digit and letter lookarounds instead of ``\\b`` (which fails next to CJK
characters). Each recognizer returns candidate spans with a score in [0, 1]; context
words before a candidate (姓名, 身份证号, 联系电话, 住址 …) raise it, and look-alikes in
clinical text (lab values, doses, blood pressure, ICD codes, treatment-course dates)
stay below the masking threshold.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from medcurate.deid.lexicon import (
    CARE_SETTING_SUFFIXES,
    COMPOUND_SURNAMES,
    NAME_BOUNDARY,
    NAME_FOLLOWERS,
    NAME_LABELS,
    NAME_LOOKALIKES,
    NOT_IN_GIVEN_NAME,
    PROVINCES,
    SINGLE_SURNAMES,
    TITLE_FOLLOWERS,
)

CJK = "\u4e00-\u9fff"
SEP = r"[:：\s]*"


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    type: str
    score: float
    recognizer: str = ""

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "type": self.type, "score": round(self.score, 3)}


class Recognizer:
    """Finds one identifier type in a text."""

    type: str = ""

    def find(self, text: str) -> Iterator[Span]:
        raise NotImplementedError

    def span(self, start: int, end: int, score: float) -> Span:
        return Span(start, end, self.type, score, type(self).__name__)


REGISTRY: dict[str, Callable[[], Recognizer]] = {}


def register(cls):
    REGISTRY[cls.type] = cls
    return cls


def _preceded_by(text: str, position: int, words: tuple[str, ...] | re.Pattern, window: int = 12) -> bool:
    before = text[max(0, position - window):position]
    if isinstance(words, re.Pattern):
        return bool(words.search(before))
    return any(word in before for word in words)


# ---------------------------------------------------------------- ID_CARD

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_card_checksum_ok(number: str) -> bool:
    """The GB 11643 mod-11 check digit of an 18-digit resident identity number."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


@register
class IdCardRecognizer(Recognizer):
    type = "ID_CARD"
    _eighteen = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
                           r"(?![0-9A-Za-z])")
    _fifteen = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{7}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}(?![0-9A-Za-z])")
    _context = ("身份证", "证件号", "公民身份", "身份号")
    _other_context = re.compile(r"(医保|社保|卡号|住院号|门诊号|病案号|电话|手机)[^，,；;。\n]{0,6}$")

    def find(self, text):
        for match in self._eighteen.finditer(text):
            labelled = _preceded_by(text, match.start(), self._context)
            if id_card_checksum_ok(match.group()):
                yield self.span(match.start(), match.end(), 0.97 if not self._other(text, match) else 0.6)
            elif labelled:
                yield self.span(match.start(), match.end(), 0.85)
        for match in self._fifteen.finditer(text):
            if _preceded_by(text, match.start(), self._context):
                yield self.span(match.start(), match.end(), 0.85)

    def _other(self, text, match) -> bool:
        return bool(self._other_context.search(text[max(0, match.start() - 10):match.start()]))


# ---------------------------------------------------------------- PHONE

def _clear_before(text: str, start: int, blocked: str) -> bool:
    """True when the character before ``start`` is not one of ``blocked`` (a lookbehind done in code,
    so the pattern itself can start with a literal and be scanned for quickly)."""
    return start == 0 or text[start - 1] not in blocked


_DIGITS = "0123456789"


@register
class PhoneRecognizer(Recognizer):
    type = "PHONE"
    _mobile = re.compile(r"1[3-9]\d(?:\d{8}(?![\d.])|[-\s]\d{4}[-\s]\d{4})")
    _landline = re.compile(r"(?:[(（]0\d{2,3}[)）][-\s]?|0\d{2,3}[-\s])\d{7,8}(?:[-转]\d{1,5})?(?![\d.])")
    _country_code = re.compile(r"(?:\+|00)?86[-\s]?$")
    _context = ("电话", "手机", "联系", "致电", "拨打", "热线", "Tel", "TEL", "tel", "call")
    # After a phone label the number is taken even when the text runs on without a break.
    _labelled = re.compile(r"(?:电话|手机|联系方式|手机号|致电|拨打)(?:号码)?[:：\s]*(?P<value>1[3-9]\d{9}|"
                           r"(?:[(（]0\d{2,3}[)）]|0\d{2,3}-)\d{7,8})")

    def find(self, text):
        for match in self._labelled.finditer(text):
            yield self.span(match.start("value"), match.end("value"), 0.93)
        for pattern, plain_score in ((self._mobile, 0.88), (self._landline, 0.8)):
            for match in pattern.finditer(text):
                start = match.start()
                code = self._country_code.search(text, max(0, start - 5), start)
                if code:
                    start = code.start()
                if not _clear_before(text, start, _DIGITS + "."):
                    continue
                labelled = _preceded_by(text, start, self._context)
                yield self.span(start, match.end(), 0.95 if labelled else plain_score)


# ---------------------------------------------------------------- labelled record numbers

_NUMBER_VALUE = r"(?P<value>[A-Za-z]{0,3}\d[\dA-Za-z-]{3,24})(?![\dA-Za-z])"


class _LabelledNumberRecognizer(Recognizer):
    labels: tuple[str, ...] = ()
    score = 0.95

    def __init__(self):
        alternatives = "|".join(sorted(map(re.escape, self.labels), key=len, reverse=True))
        self._pattern = re.compile(rf"(?<![A-Za-z])(?:{alternatives})(?:号码|编号|号)?{SEP}(?:为|是)?{SEP}{_NUMBER_VALUE}")

    def find(self, text):
        for match in self._pattern.finditer(text):
            yield self.span(match.start("value"), match.end("value"), self.score)


@register
class MedicalRecordNumberRecognizer(_LabelledNumberRecognizer):
    type = "MEDICAL_RECORD_NO"
    labels = ("住院号", "住院病历号", "门诊号", "急诊号", "病案号", "病历号", "登记号", "就诊卡号", "就诊号", "诊疗卡号",
              "检查号", "影像号", "标本号", "床号ID", "患者ID", "病人ID", "ID号", "ID", "MRN", "流水号")


@register
class InsuranceNumberRecognizer(_LabelledNumberRecognizer):
    type = "INSURANCE_NO"
    labels = ("医保卡号", "医保号", "医保卡", "社保卡号", "社保号", "社保卡", "医疗保险号", "医疗保险卡号", "参保号",
              "新农合号", "农合号", "医疗证号")


# ---------------------------------------------------------------- BANK_CARD

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
class BankCardRecognizer(Recognizer):
    type = "BANK_CARD"
    _pattern = re.compile(r"(?<![\dA-Za-z])\d{4}(?:[\s-]?\d{3,4}){3,4}(?![\dA-Za-z])")
    _context = ("银行卡", "储蓄卡", "信用卡", "借记卡", "银行账号", "账号", "卡号")
    _not_bank = re.compile(r"(医保|社保|身份证|住院|门诊|病案)[^，,；;。\n]{0,4}$")

    def find(self, text):
        for match in self._pattern.finditer(text):
            digits = re.sub(r"\D", "", match.group())
            if not 16 <= len(digits) <= 19 or not luhn_ok(digits):
                continue
            if self._not_bank.search(text[max(0, match.start() - 8):match.start()]):
                continue
            score = 0.92 if _preceded_by(text, match.start(), self._context) else 0.55
            yield self.span(match.start(), match.end(), score)


# ---------------------------------------------------------------- EMAIL, URL, IP

@register
class EmailRecognizer(Recognizer):
    type = "EMAIL"
    _pattern = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,10}"
                          r"(?![A-Za-z0-9-])")

    def find(self, text):
        for match in self._pattern.finditer(text):
            yield self.span(match.start(), match.end(), 0.99)


@register
class UrlRecognizer(Recognizer):
    type = "URL"
    _pattern = re.compile(r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'*+,;=%]+", re.IGNORECASE)

    def find(self, text):
        for match in self._pattern.finditer(text):
            end = match.end()
            while end > match.start() and text[end - 1] in ".,;:!?)":
                end -= 1
            yield self.span(match.start(), end, 0.9)


@register
class IpRecognizer(Recognizer):
    type = "IP"
    _octet = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    _pattern = re.compile(rf"(?<![\d.]){_octet}(?:\.{_octet}){{3}}(?![\d.])")

    def find(self, text):
        for match in self._pattern.finditer(text):
            yield self.span(match.start(), match.end(), 0.85)


# ---------------------------------------------------------------- LICENSE_PLATE

@register
class LicensePlateRecognizer(Recognizer):
    type = "LICENSE_PLATE"
    _pattern = re.compile(r"(?<![A-Za-z0-9])[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼]"
                          r"[A-HJ-NP-Z][·•\s]?(?:[A-HJ-NP-Z0-9]{5}|[DF][A-HJ-NP-Z0-9]{5}|[A-HJ-NP-Z0-9]{5}[DF])"
                          r"(?![A-Za-z0-9])")

    def find(self, text):
        for match in self._pattern.finditer(text):
            plate = re.sub(r"[·•\s]", "", match.group())[2:]
            if sum(ch.isdigit() for ch in plate) >= 2:
                yield self.span(match.start(), match.end(), 0.85)


# ---------------------------------------------------------------- AGE over 89

@register
class AgeRecognizer(Recognizer):
    """Ages of 90 and over identify people (HIPAA's safe harbour groups them as '90 or older')."""

    type = "AGE"
    _pattern = re.compile(r"(?<![\d.])(?P<age>9\d|1[0-2]\d)(?:\s?(?:周岁|岁半|岁)|(?=\s?(?:y|Y)(?:ears?|rs?|\.o\.)))")
    _labelled = re.compile(r"年龄" + SEP + r"(?P<age>9\d|1[0-2]\d)(?![\d.])")

    def find(self, text):
        for pattern in (self._pattern, self._labelled):
            for match in pattern.finditer(text):
                yield self.span(match.start("age"), match.end(), 0.9)


# ---------------------------------------------------------------- DATE

_YEAR = r"(?:19|20)\d{2}"
_MONTH = r"(?:0?[1-9]|1[0-2])"
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_DATE_FORMS = (rf"{_YEAR}\s?年\s?{_MONTH}\s?月\s?{_DAY}\s?[日号]?", rf"{_YEAR}-{_MONTH}-{_DAY}", rf"{_YEAR}\.{_MONTH}\.{_DAY}",
               rf"{_YEAR}/{_MONTH}/{_DAY}", rf"{_YEAR}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")


@register
class DateRecognizer(Recognizer):
    """Dates that identify a person's life or care events: birth, admission, discharge, visits, signatures.

    Dates in the course of treatment ("于2017年3月14日予以化疗") are kept by default
    (score below the threshold) and reported; lower the threshold to remove them too.
    """

    type = "DATE"
    _pattern = re.compile(rf"(?:{'|'.join(_DATE_FORMS)})(?![\d])")
    _labels = re.compile(r"(出生|生日|诞生|入院|出院|住院|就诊|初诊|复诊|随访|死亡|签名|登记|日期|生于)"
                         r"[^，,；;。\n(（]{0,3}[:：]?\s*$")
    _signature = re.compile(r"(医师|医生|护士|签名|记录者?)[^\n，。；]{0,12}[）)]?\s*$")
    _events_after = re.compile(r"^\s*(入院|出院|住院|入我院|就诊|来诊|来院|初诊|复诊|复查|随访|生|出生|手术|死亡|转入|转出|门诊)")
    _yu_before = re.compile(r"[于在]\s*$")

    def find(self, text):
        for match in self._pattern.finditer(text):
            if not _clear_before(text, match.start(), _DIGITS + ".-/"):
                continue
            before = text[max(0, match.start() - 16):match.start()]
            after = text[match.end():match.end() + 6]
            compact = match.group().isdigit()
            if self._labels.search(before) or self._signature.search(before):
                score = 0.95
            elif self._events_after.search(after):
                score = 0.92
            elif compact:
                score = 0.3
            else:
                score = 0.4
            yield self.span(match.start(), match.end(), score)


# ---------------------------------------------------------------- ADDRESS

_PROVINCE = r"(?:" + "|".join(PROVINCES) + r")(?:省|市|自治区|壮族自治区|回族自治区|维吾尔自治区|特别行政区)?"
_ADDRESS_UNITS = (
    rf"{_PROVINCE}",
    rf"[{CJK}]{{1,6}}?(?:市|州|盟|地区)",
    rf"[{CJK}]{{1,6}}?(?:区|县|旗)",
    rf"[{CJK}]{{1,6}}?(?:镇|乡|街道)",
    rf"[{CJK}A-Za-z0-9]{{1,8}}?(?:路|大道|大街|街|巷|弄|胡同|里)",
    r"\d+(?:号|弄|巷)",
    rf"[{CJK}]{{1,8}}?(?:小区|花园|公寓|大厦|广场|新村|家园|苑|村|社区|庄园|公馆|府)",
    r"\d+(?:栋|幢|座|号楼|号院)",
    r"\d+(?:单元|门)",
    r"\d+(?:层|楼)",
    r"\d+(?:室|户|房)",
)
_NUMBERED_UNIT = re.compile(r"\d+(?:号|弄|巷|栋|幢|座|号楼|号院|单元|门|层|楼|室|户|房)")


@register
class AddressRecognizer(Recognizer):
    type = "ADDRESS"
    _chain = re.compile("(?:" + "|".join(f"(?:{unit})" for unit in _ADDRESS_UNITS) + "){2,}")
    _labelled = re.compile(r"(?:家庭住址|现住址|住址|户籍地址|户籍地|居住地址|居住地|通讯地址|联系地址|地址|家住|住在|现住)"
                           + SEP + r"(?P<value>[^，,；;。\n（(]{4,60})")
    _stop = re.compile(r"(联系|电话|手机|邮编|邮箱|工作单位|身份证)")

    def find(self, text):
        for match in self._labelled.finditer(text):
            value_end = match.end("value")
            stop = self._stop.search(text, match.start("value"), value_end)
            if stop:
                value_end = stop.start()
            while value_end > match.start("value") and text[value_end - 1] in " \t":
                value_end -= 1
            value = text[match.start("value"):value_end]
            looks_like_address = (self._chain.search(value) or re.match(_PROVINCE, value)
                                  or _NUMBERED_UNIT.search(value))
            if value_end - match.start("value") >= 4 and looks_like_address:
                yield self.span(match.start("value"), value_end, 0.95)
        for window_start, window_end in self._windows(text):
            yield from self._chains(text, window_start, window_end)

    _anchor = re.compile(r"\d+(?:号|栋|幢|室|单元|弄)|省|自治区")

    def _windows(self, text: str) -> list[tuple[int, int]]:
        """Stretches of text around address anchors; chains are searched only there (speed)."""
        windows: list[tuple[int, int]] = []
        for anchor in self._anchor.finditer(text):
            start, end = max(0, anchor.start() - 40), min(len(text), anchor.end() + 40)
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
            elif has_province and re.search("市|区|县", value[2:]):
                yield self.span(match.start(), match.end(), 0.55)


# ---------------------------------------------------------------- ORGANIZATION

@register
class OrganizationRecognizer(Recognizer):
    """Employers and schools. The hospital and its departments are the care setting, not an identifier."""

    type = "ORGANIZATION"
    _labelled = re.compile(r"(?:(?:工作单位|单位名称|所在单位|单位|学校|雇主)[:：]\s*|(?:就职于|任职于|工作于|供职于|就读于)\s*)"
                           + rf"(?P<value>[{CJK}A-Za-z0-9（）()·&]{{2,30}})")
    _suffix = re.compile(r"股份有限公司|有限责任公司|有限公司|集团|公司|银行|中学|小学|大学|学院|幼儿园|研究所|研究院|事务所|"
                         r"工厂|派出所|法院|分行|支行")
    _lead = re.compile(r"(?:在|于|到|是|为|就职于|任职于|就读于|工作于|系)")
    _strong = re.compile("公司|集团|银行|分行|支行|中学|小学|幼儿园|派出所")
    # Unlabelled company or school names (drug makers in a textbook) are kept unless the text
    # says the person works or studies there.
    _employment = re.compile(r"(就职|任职|工作|上班|就读|在读|供职|退休于|单位)[于在是为]?\s*$")

    def find(self, text):
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


# ---------------------------------------------------------------- PERSON

_SURNAME_CLASS = "".join(sorted(SINGLE_SURNAMES))
_COMPOUND = "|".join(sorted(COMPOUND_SURNAMES, key=len, reverse=True))
_CANDIDATE = rf"(?:{_COMPOUND}|[{_SURNAME_CLASS}])[{CJK}]{{1,3}}"


_jieba_tables: tuple[dict, dict] | None = None


def _is_common_word(candidate: str) -> bool:
    """jieba's dictionary knows it as a frequent word that is not a person name (常规, 高兴 …)."""
    global _jieba_tables
    if _jieba_tables is None:
        import jieba
        import jieba.posseg

        jieba.setLogLevel(60)
        jieba.dt.check_initialized()
        _jieba_tables = (jieba.posseg.dt.word_tag_tab, jieba.dt.FREQ)
    tags, frequencies = _jieba_tables
    tag = tags.get(candidate)
    return tag is not None and not tag.startswith("nr") and frequencies.get(candidate, 0) >= 20


def _name_before_title(text: str, title_start: int) -> tuple[int, float] | None:
    """The name (or bare surname) right before a title such as 医生/主任, found by jieba's segmentation of
    a short window: 由张明华医生 -> 张明华, 查房时刘主任 -> 刘, 谢谢医生 -> none."""
    import jieba

    window_start = max(0, title_start - 6)
    window = text[window_start:title_start]
    if not window or not ("\u4e00" <= window[-1] <= "\u9fff"):
        return None
    jieba.setLogLevel(60)
    last = jieba.lcut(window)[-1]
    start = title_start - len(last)
    if last in NAME_LOOKALIKES or (start > 0 and text[start - 1:title_start] in NAME_LOOKALIKES):
        return None
    if len(last) == 1:
        if last in SINGLE_SURNAMES and not (start > 0 and text[start - 1] in "主副科院室部处护军医技药教讲总"):
            return start, 0.7
        return None
    if 2 <= len(last) <= 4 and _name_length(text, start, labelled=True) == len(last) and not _is_common_word(last):
        return start, 0.85
    return None


def _name_length(text: str, start: int, labelled: bool) -> int:
    """How many characters from ``start`` form a name, or 0 when none fits.

    A name is a surname (compound first) plus one or two given-name characters that are
    not function words or clinical nouns, followed by punctuation or a name follower.
    """
    surname = 2 if text[start:start + 2] in COMPOUND_SURNAMES else 1
    if surname == 1 and text[start] not in SINGLE_SURNAMES:
        return 0
    best = 0
    for given in (2, 1):
        end = start + surname + given
        if end > len(text):
            continue
        chars = text[start + surname:end]
        if not all("\u4e00" <= c <= "\u9fff" and c not in NOT_IN_GIVEN_NAME for c in chars) or "某" in chars:
            continue
        if text[start:end] in NAME_LOOKALIKES:
            continue
        if end == len(text) or text[end] in NAME_BOUNDARY or text.startswith(NAME_FOLLOWERS, end):
            best = surname + given
            break
    return best


@register
class PersonRecognizer(Recognizer):
    """Names of patients, relatives and staff.

    Found by a label before the name (姓名, 患者, 家属, 记录医师 …), by what follows it
    (（主任医师, 家属诉, 自述, ，男 …) at a clause boundary, or by a surname with a title
    (张医生, 刘主任); a surname list including compound surnames decides where a name
    starts, and given-name characters must not be function words or clinical nouns, so
    herbal and drug names (黄芪, 金银花, 白术, 何首乌) are never taken for names.
    """

    type = "PERSON"
    _labels = re.compile(r"(?:" + "|".join(sorted(map(re.escape, NAME_LABELS), key=len, reverse=True)) + r")"
                         + r"[:：\s]*(?:为|是)?[:：\s]*")
    _followers = "|".join(map(re.escape, sorted(set(NAME_FOLLOWERS) - {"因", "于"}, key=len, reverse=True)))
    # A clause-initial surname with a name follower one to three characters later; the
    # follower is checked inside the regex so only plausible positions reach Python.
    _start = re.compile(rf"(?:^|[\n。；;！？!?\s，,、：:“\"])(?P<name>{_COMPOUND}|[{_SURNAME_CLASS}])"
                        rf"(?=[{CJK}]{{1,3}}?(?:{_followers}))", re.MULTILINE)
    # Labels that are also ordinary subjects of a sentence (患者区别于…): the name must not be a common word.
    _weak_labels = frozenset({"患者", "病人", "患儿", "产妇", "孕妇", "病员", "伤者", "医生", "医师", "护士"})
    _title = re.compile("(?:" + "|".join(TITLE_FOLLOWERS) + r"|医师|院长|护士长)(?![\u4e00-\u9fff]{0,1}(?:科|室|院))")

    def find(self, text):
        seen: set[tuple[int, int]] = set()
        for match in self._labels.finditer(text):
            start = match.end()
            length = _name_length(text, start, labelled=True)
            weak = match.group().strip() in self._weak_labels
            if length and weak and _is_common_word(text[start:start + length]):
                continue
            if length:
                seen.add((start, start + length))
                yield self.span(start, start + length, 0.92)
        for match in self._start.finditer(text):
            start = match.start("name")
            length = _name_length(text, start, labelled=False)
            if not length or (start, start + length) in seen:
                continue
            end = start + length
            if text.startswith(TITLE_FOLLOWERS, end) and _is_common_word(text[start:end]):
                continue
            if text.startswith(NAME_FOLLOWERS, end) and not text.startswith(("因", "于"), end):
                yield self.span(start, end, 0.88)
            elif text.startswith(("，男", "，女", ",男", ",女", " 男", " 女"), end):
                yield self.span(start, end, 0.9)
        for match in self._title.finditer(text):
            found = _name_before_title(text, match.start())
            if found and (found[0], match.start()) not in seen:
                yield self.span(found[0], match.start(), found[1])


def all_recognizers(types: tuple[str, ...] | None = None) -> list[Recognizer]:
    return [factory() for name, factory in REGISTRY.items() if types is None or name in types]
