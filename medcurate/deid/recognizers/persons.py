"""Names of patients, relatives and staff, in Chinese characters or pinyin."""
from __future__ import annotations

import re

from medcurate.deid.lexicon import (
    COMPOUND_SURNAMES,
    NAME_BOUNDARY,
    NAME_FOLLOWERS,
    NAME_LABELS,
    NAME_LOOKALIKES,
    NOT_IN_GIVEN_NAME,
    PINYIN_SURNAMES,
    SINGLE_SURNAMES,
    TITLE_FOLLOWERS,
)
from medcurate.deid.recognizers.base import CJK, Pattern, Recognizer, register

_SURNAME_CLASS = "".join(sorted(SINGLE_SURNAMES))
_COMPOUND = "|".join(sorted(COMPOUND_SURNAMES, key=len, reverse=True))
_CANDIDATE = rf"(?:{_COMPOUND}|[{_SURNAME_CLASS}])[{CJK}]{{1,3}}"


_TWO_CHARACTER_FOLLOWERS = tuple(word for word in NAME_FOLLOWERS if len(word) == 2 and "\u4e00" <= word[0] <= "\u9fff")
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
    if 2 <= len(last) <= 4 and _name_length(text, start) == len(last) and not _is_common_word(last):
        return start, 0.85
    return None


def _name_length(text: str, start: int) -> int:
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
        if given == 2 and text.startswith(_TWO_CHARACTER_FOLLOWERS, end - 1):
            continue  # 张三代诉: the name is 张三, 代诉 follows it
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

    entity_type = "PERSON"
    _labels = re.compile(r"(?:" + "|".join(sorted(map(re.escape, NAME_LABELS), key=len, reverse=True)) + r")"
                         + r"(?:[（(][\u4e00-\u9fff]{1,4}[）)])?[:：\s]*(?:为|是)?[:：\s]*")
    _followers = "|".join([*map(re.escape, sorted(set(NAME_FOLLOWERS) - {"因", "于"}, key=len, reverse=True))]
                          + [r"于\s?(?:(?:19|20)\d\d|\d{1,2}月)", "因[“\"「(（]", r"[，,]\s?\d{1,3}\s?岁"])
    # A clause-initial surname with a name follower one to three characters later; the
    # follower is checked inside the regex so only plausible positions reach Python.
    _start = re.compile(rf"(?<![{CJK}])(?P<name>{_COMPOUND}|[{_SURNAME_CLASS}])"
                        rf"(?=[{CJK}]{{1,3}}?(?:{_followers}))", re.MULTILINE)
    # Labels that are also ordinary subjects of a sentence (患者区别于…): the name must not be a common word.
    _weak_labels = frozenset({"患者", "病人", "患儿", "产妇", "孕妇", "病员", "伤者", "医生", "医师", "护士"})
    # A clause-initial name before 于 + a date or 因 + a quoted complaint (张伟于2016年…, 李娜因“…”).
    _event_after = re.compile(r"(?:于\s?(?:(?:19|20)\d{2}|\d{1,2}月|[〇一二三四五六七八九十]+[年月])|因[“\"「(（])")
    _age_after = re.compile(r"[，,]\s?\d{1,3}\s?岁")
    _title = re.compile("(?:" + "|".join(TITLE_FOLLOWERS) + r"|医师|院长|护士长)(?![\u4e00-\u9fff]{0,1}(?:科|室|院))")

    def candidates(self, text):
        seen: set[tuple[int, int]] = set()
        for match in self._labels.finditer(text):
            start = match.end()
            length = _name_length(text, start)
            weak = match.group().strip() in self._weak_labels
            if length and weak and _is_common_word(text[start:start + length]):
                continue
            if length:
                seen.add((start, start + length))
                yield self.span(start, start + length, 0.92)
        for match in self._start.finditer(text):
            start = match.start("name")
            length = _name_length(text, start)
            if not length or (start, start + length) in seen:
                continue
            end = start + length
            if text.startswith(TITLE_FOLLOWERS, end) and _is_common_word(text[start:end]):
                continue
            if text.startswith(NAME_FOLLOWERS, end) and not text.startswith(("因", "于"), end):
                yield self.span(start, end, 0.88)
            elif self._event_after.match(text, end) or self._age_after.match(text, end):
                yield self.span(start, end, 0.8)
            elif text.startswith(("，男", "，女", ",男", ",女", " 男", " 女"), end):
                yield self.span(start, end, 0.9)
        for match in self._title.finditer(text):
            found = _name_before_title(text, match.start())
            if found and (found[0], match.start()) not in seen:
                yield self.span(found[0], match.start(), found[1])


_INITIAL = r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?"
_FINAL = r"(?:iang|iong|uang|ang|eng|ing|ong|ian|iao|uai|uan|ai|ei|ao|ou|an|en|in|un|ia|ie|iu|ua|uo|ue|ui|er|a|o|e|i|u|v)"
_SYLLABLE = re.compile(rf"{_INITIAL}{_FINAL}")
_GIVEN = re.compile(rf"(?:{_INITIAL}{_FINAL}){{1,2}}")


@register
class PinyinNameRecognizer(Recognizer):
    """Names in pinyin in running text (Zhang Wei, WANG Xiaoming, Xiaoming Wang): a pinyin surname and
    a given name of one or two pinyin syllables, both capitalised."""

    entity_type = "PERSON"
    context = ("患者", "病人", "家属", "姓名", "patient", "Patient", "Mr", "Ms", "Mrs", "Dr")
    _pair = re.compile(r"(?<![A-Za-z])([A-Z][a-z]{0,11}|[A-Z]{2,8})[ \u00a0]([A-Z][a-z]{1,11}(?:-[a-z]{1,6})?)(?![A-Za-z])")
    _surnames = frozenset(name.lower() for name in PINYIN_SURNAMES)

    def candidates(self, text):
        if not _ASCII_UPPER.search(text):
            return
        for match in self._pair.finditer(text):
            first, second = match.group(1).lower(), match.group(2).lower().replace("-", "")
            if first in self._surnames and _GIVEN.fullmatch(second) or (
                    second in self._surnames and _GIVEN.fullmatch(first)):
                yield self.span(match.start(), match.end(), 0.75)


_ASCII_UPPER = re.compile("[A-Z][a-z]* [A-Z]")


@register
class TransliteratedNameRecognizer(Recognizer):
    """Names transliterated with a middle dot (阿依古丽·买买提): taken after a role word or label
    (context) or before a sex, age or signature; otherwise left alone (foreign names in textbooks)."""

    entity_type = "PERSON"
    patterns = (Pattern("dotted", rf"(?<![{CJK}])[{CJK}]{{2,6}}[·•・][{CJK}]{{2,8}}", 0.45),)
    context = ("患者", "病人", "患儿", "姓名", "家属", "其子", "其女", "其夫", "其妻", "联系人", "陪同", "医师", "签名")
    _after = re.compile(r"[，,\s]*(?:男|女|\d{1,3}\s?岁)|签字|签名|陪同|代诉|代述|同意|因|于")
    _tail = re.compile(r"(?:签字|签名|陪同|代诉|代述|同意|因|于)")
    _role = re.compile(r"患者|病人|患儿|家属|其子|其女|其夫|其妻|联系人|陪同人|姓名[:：]?")

    def candidates(self, text):
        for span in super().candidates(text):
            role = self._role.match(text, span.start)
            start = role.end() if role else span.start
            tail = self._tail.search(text, start + 3, span.end)
            end = tail.start() if tail else span.end
            if end - start >= 5:
                yield self.span(start, end, 0.88 if self._after.match(text, end) or role else span.score)
