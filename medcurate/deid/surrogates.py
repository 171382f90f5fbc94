"""Realistic stand-ins for identifiers, derived from a keyed hash so one patient's
identifier always maps to the same stand-in, and dates shifted by the patient's offset."""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from medcurate.deid.lexicon import PROVINCES, SINGLE_SURNAMES
from medcurate.deid.recognizers import id_card_checksum_ok, luhn_ok

Keyed = Callable[[str], int]

_SURNAMES = sorted(SINGLE_SURNAMES)[:200]
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志新宇佳欣怡浩然子轩梓涵雨晨思远博文"
_ROADS = ("幸福", "和平", "建设", "人民", "文化", "光明", "新华", "中山", "育才", "青年", "胜利", "友谊")
_ESTATES = ("阳光", "翠湖", "锦绣", "和园", "春晓", "枫林", "景苑", "康宁")
_ORGANIZATIONS = ("华安科技有限公司", "远航物流有限公司", "第三实验小学", "城东中学", "恒信会计师事务所", "启明职业技术学院",
                  "新源食品有限公司", "瑞丰建设集团")
_PLATE_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁苏浙赣鄂桂甘晋陕吉闽贵粤川"
_PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_DATE_PATTERNS = (
    (re.compile(r"^(\d{4})\s?年\s?(\d{1,2})\s?月\s?(\d{1,2})\s?([日号]?)$"), "cjk"),
    (re.compile(r"^(\d{4})([-./])(\d{1,2})\2(\d{1,2})$"), "sep"),
    (re.compile(r"^(\d{4})(\d{2})(\d{2})$"), "compact"),
)


def _pick(options, keyed: Keyed, label: str):
    return options[keyed(label) % len(options)]


def _digits_like(value: str, keyed: Keyed, label: str) -> str:
    """Same shape, other digits and letters."""
    out = []
    for index, char in enumerate(value):
        number = keyed(f"{label}:{index}")
        if char.isdigit():
            out.append(str(number % 10))
        elif char.isascii() and char.isalpha():
            letter = chr(ord("A") + number % 26)
            out.append(letter if char.isupper() else letter.lower())
        else:
            out.append(char)
    return "".join(out)


def shift_date(value: str, offset: dt.timedelta) -> str | None:
    """The date moved by ``offset`` in its own format, or None when it is not a full date."""
    for pattern, form in _DATE_PATTERNS:
        match = pattern.match(value)
        if not match:
            continue
        try:
            if form == "sep":
                year, sep, month, day = match.group(1), match.group(2), match.group(3), match.group(4)
            else:
                year, month, day = match.group(1), match.group(2), match.group(3)
            moved = dt.date(int(year), int(month), int(day)) + offset
        except ValueError:
            return None
        if form == "cjk":
            return f"{moved.year}年{moved.month}月{moved.day}{match.group(4)}"
        if form == "sep":
            width = 2 if len(match.group(3)) == 2 else 1
            return f"{moved.year}{sep}{moved.month:0{width}d}{sep}{moved.day:0{width}d}"
        return moved.strftime("%Y%m%d")
    return None


def _id_card(value: str, keyed: Keyed, offset: dt.timedelta) -> str:
    region = f"{110000 + keyed('id-region') % 540000:06d}"
    birth = shift_date(value[6:14], offset) if len(value) == 18 else None
    birth = birth or f"19{keyed('id-year') % 90 + 10:02d}0101"
    body = region + birth + f"{keyed('id-seq') % 1000:03d}"
    for check in "0123456789X":
        if id_card_checksum_ok(body + check):
            return body + check
    return body + "X"


def _bank_card(value: str, keyed: Keyed) -> str:
    candidate = _digits_like(value, keyed, "bank")
    digits = re.sub(r"\D", "", candidate)
    for last in "0123456789":
        if luhn_ok(digits[:-1] + last):
            return candidate[:-1] + last
    return candidate


def surrogate_for(value: str, identifier_type: str, keyed: Keyed, offset: dt.timedelta) -> str:
    label = f"{identifier_type}:{value}"
    if identifier_type == "PERSON":
        given = max(1, min(2, len(value) - 1))
        return _pick(_SURNAMES, keyed, label) + "".join(_pick(_GIVEN, keyed, f"{label}:{i}") for i in range(given))
    if identifier_type == "DATE":
        return shift_date(value, offset) or _digits_like(value, keyed, label)
    if identifier_type == "ID_CARD":
        return _id_card(value, keyed, offset)
    if identifier_type == "PHONE":
        shaped = _digits_like(value, keyed, label)
        mobile = re.search(r"1[3-9]\d", value)
        if mobile and not value.lstrip("+(（").startswith("0"):
            index = mobile.start()
            return shaped[:index] + "1" + str(3 + keyed(label + ":2") % 7) + shaped[index + 2:]
        return shaped
    if identifier_type == "BANK_CARD":
        return _bank_card(value, keyed)
    if identifier_type == "EMAIL":
        return f"user{keyed(label) % 1_000_000:06d}@example.com"
    if identifier_type == "URL":
        return f"https://example.org/{keyed(label) % 100000:05d}"
    if identifier_type == "ADDRESS":
        return (f"{_pick(PROVINCES, keyed, label + ':p')}{_pick(_ROADS, keyed, label + ':r')}路{keyed(label) % 900 + 10}号"
                f"{_pick(_ESTATES, keyed, label + ':e')}小区{keyed(label + ':b') % 30 + 1}栋{keyed(label + ':f') % 20 + 1}0"
                f"{keyed(label + ':u') % 4 + 1}室")
    if identifier_type == "ORGANIZATION":
        return _pick(_ORGANIZATIONS, keyed, label)
    if identifier_type == "LICENSE_PLATE":
        return (_pick(_PLATE_PROVINCES, keyed, label + ":p") + _pick(_PLATE_LETTERS, keyed, label + ":l")
                + _digits_like("12345", keyed, label))
    if identifier_type == "AGE":
        return "90岁以上"
    return _digits_like(value, keyed, label)
