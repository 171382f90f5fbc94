"""Text clean-up for scraped Chinese medical text, as pure functions.

Why not NFKC: it turns Chinese punctuation (，。：；？！（）) into ASCII inside Chinese sentences.
Here only full-width letters, digits and the ideographic space become half-width; ASCII
punctuation written right after a Chinese character becomes its Chinese form.
"""
from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

# The text columns of the four row kinds (plus common raw names); ``messages`` contents too.
TEXT_FIELDS = ("instruction", "query", "answer", "input", "output", "prompt", "chosen", "rejected", "text",
               "question", "response")

_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]{0,300})?/?>")
_LINE_BREAK_TAG = re.compile(r"<(?:br|/p|/div|/li|/h[1-6])\s*/?>", re.I)
_MARKDOWN_LINK = re.compile(r"\[([^\[\]\n]{1,80})\]\((?:https?://|/)[^()\s]*\)")
_WEB_LEFTOVERS = (
    re.compile(r"targetUrl=\S*"),
    re.compile(r"\(/(?:druglink|drug|link|search|url)[^()\s]*\)"),
    re.compile(r"\bopen_in_new\b"),
    re.compile(r"(?:查看全部|展开全部|点击查看|查看更多)(?:>>|»|>)?"),
)
_MARKDOWN_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]*", re.M)
# Heading marks left inside a line by scraped pages ("急性髓性白血病@## 鉴别诊断 ### 查看全部").
_INLINE_HEADING = re.compile(r"(?<![#\w])#{2,6}(?=[ \t])[ \t]*")
_MARKDOWN_BOLD = re.compile(r"\*\*([^*\n]+)\*\*")
_DOUBLED_PUNCTUATION = re.compile(r"([。，、；：])\1+")
_CLASHING_PUNCTUATION = re.compile(r"[，、；：]+([。！？])|([。！？])[，、；]+")
# ASCII , or ; right after Chinese punctuation ("。。。,根据"): a leftover, removed.
_ASCII_AFTER_CHINESE_PUNCTUATION = re.compile(r"(?<=[。！？，、；：])[ \t]*[,;]")
_SPACES = re.compile(r"[ \t\u3000\xa0]{2,}")
_BLANK_LINES = re.compile(r"\n{3,}")
_SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]*\n?|\n")

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# Full-width forms that are ordinary Chinese punctuation and stay as they are.
_CHINESE_FULL_WIDTH = frozenset("！（），：；？～")
_SPACE_AFTER_CHINESE_PUNCTUATION = re.compile(r"([，。、；：！？])[ \t]+")
_TO_CHINESE = {",": "，", ";": "；", ":": "：", "?": "？", "!": "！"}
_ASCII_AFTER_CJK = re.compile(r"(?<=[\u3400-\u9fff\uf900-\ufaff])[ \t]*([,;:?!])(?![0-9A-Za-z/])")
_PERIOD_AFTER_CJK = re.compile(r"(?<=[\u3400-\u9fff\uf900-\ufaff])\.(?=$|\s|[\u3400-\u9fff])", re.M)


def normalise_width(text: str) -> str:
    """Full-width letters, digits and spaces -> half-width; ASCII ,;:?!. after a Chinese character
    -> Chinese punctuation. Chinese punctuation itself is left as it is."""
    chars = []
    for char in text:
        code = ord(char)
        if 0xFF01 <= code <= 0xFF5E and char not in _CHINESE_FULL_WIDTH:
            chars.append(chr(code - 0xFEE0))
        elif char == "\u3000":
            chars.append(" ")
        else:
            chars.append(char)
    text = "".join(chars)
    text = _ASCII_AFTER_CJK.sub(lambda m: _TO_CHINESE[m.group(1)], text)
    return _PERIOD_AFTER_CJK.sub("。", text)


def strip_markup(text: str) -> str:
    """HTML entities and tags, markdown headings/links/bold and scraped web leftovers removed."""
    for _ in range(2):  # doubly escaped entities (&amp;nbsp;)
        text = html.unescape(text)
    text = _LINE_BREAK_TAG.sub("\n", text)
    text = _TAG.sub("", text)
    text = _MARKDOWN_LINK.sub(r"\1", text)
    for pattern in _WEB_LEFTOVERS:
        text = pattern.sub("", text)
    text = _MARKDOWN_HEADING.sub("", text)
    text = _INLINE_HEADING.sub("", text)
    return _MARKDOWN_BOLD.sub(r"\1", text)


def fix_punctuation(text: str) -> str:
    """``。。`` -> ``。``, ``，。`` -> ``。``; ellipses (……, ...) and !!/?? are left alone."""
    text = _ASCII_AFTER_CHINESE_PUNCTUATION.sub("", text)
    text = _DOUBLED_PUNCTUATION.sub(r"\1", text)
    return _CLASHING_PUNCTUATION.sub(lambda m: m.group(1) or m.group(2), text)


def drop_repeated_sentences(text: str, min_chars: int = 6) -> str:
    """A sentence written again later in the same text (scrapes repeat them) is removed; short
    ones (below ``min_chars``, e.g. 是的。) only when they repeat right after themselves."""
    seen: set[str] = set()
    kept: list[str] = []
    previous = ""
    for piece in _SENTENCE.findall(text):
        key = piece.strip()
        if key and (key == previous or (len(key) >= min_chars and key in seen)):
            continue
        if key:
            seen.add(key)
            previous = key
        kept.append(piece)
    return "".join(kept)


def clean_text(text: str) -> str:
    """All clean-ups in order; whitespace tidied last."""
    text = strip_markup(text)
    text = normalise_width(text)
    text = fix_punctuation(text)
    text = drop_repeated_sentences(text)
    text = _SPACES.sub(" ", text)
    text = _SPACE_AFTER_CHINESE_PUNCTUATION.sub(r"\1", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.strip().splitlines())


def row_texts(row: dict[str, Any], fields: tuple[str, ...] = TEXT_FIELDS) -> list[str]:
    """Every text of a row the quality steps look at: the named fields and message contents."""
    texts = [row[name] for name in fields if isinstance(row.get(name), str)]
    for message in row.get("messages") or []:
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            texts.append(message["content"])
    return texts


def map_row_texts(row: dict[str, Any], function: Callable[[str], str],
                  fields: tuple[str, ...] = TEXT_FIELDS) -> bool:
    """Apply ``function`` to every text of the row in place; True when anything changed."""
    changed = False
    for name in fields:
        value = row.get(name)
        if isinstance(value, str):
            new = function(value)
            if new != value:
                row[name] = new
                changed = True
    for message in row.get("messages") or []:
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            new = function(message["content"])
            if new != message["content"]:
                message["content"] = new
                changed = True
    return changed


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


_CLAUSE_BREAK = re.compile(r"[，,。！？!?；;：:\n、）)（(“”\"]")


def longest_clause(text: str) -> int:
    """Characters in the longest stretch without any punctuation. Chinese prose breaks every
    10-25 characters; scrapes that lost their commas (with the character before each: Toyhom's
    "根据你的叙考虑如果……") run on for 40 and more."""
    return max((len(part) for part in _CLAUSE_BREAK.split(text)), default=0)
