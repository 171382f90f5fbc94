"""The declarative recognizer: a name, an identifier type, patterns with scores, context words,
and an optional validator. The engine (medcurate/deid/engine.py) runs every recognizer, raises
the score of candidates with one of the recognizer's context words just before them (once, for
all recognizers), and resolves overlaps; a recognizer only proposes candidates.

Patterns use digit and letter lookarounds instead of ``\\b`` (which fails next to CJK characters).
A pattern with a named group ``value`` proposes that group; otherwise the whole match.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

CJK = "\u4e00-\u9fff"
SEP = r"[:：\s]*"
DIGITS = "0123456789"


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    type: str
    score: float
    recognizer: str = ""

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "type": self.type, "score": round(self.score, 3)}


@dataclass(frozen=True)
class Pattern:
    """One regular expression of a recognizer, with the score a bare match gets."""

    name: str
    regex: str
    score: float


class Recognizer:
    """Proposes candidate spans of one identifier type.

    Subclasses declare ``entity_type``, ``patterns`` and ``context``; ``validate`` may drop a
    match or change its score (checksums, look-alikes). Recognizers whose evidence is not a
    single regular expression (names, addresses) override ``candidates``.
    """

    entity_type: ClassVar[str] = ""
    patterns: ClassVar[tuple[Pattern, ...]] = ()
    context: ClassVar[tuple[str, ...]] = ()
    flags: ClassVar[int] = 0

    def __init__(self) -> None:
        self._compiled = [(pattern, re.compile(pattern.regex, self.flags)) for pattern in self.patterns]

    @property
    def name(self) -> str:
        return type(self).__name__

    def validate(self, text: str, start: int, end: int, pattern: Pattern) -> float | None:
        """The score of a match, or None to drop it. Default: the pattern's score."""
        return pattern.score

    def candidates(self, text: str) -> Iterator[Span]:
        for pattern, compiled in self._compiled:
            for match in compiled.finditer(text):
                group = "value" if "value" in compiled.groupindex else 0
                start, end = match.start(group), match.end(group)
                score = self.validate(text, start, end, pattern)
                if score is not None:
                    yield self.span(start, end, score)

    def span(self, start: int, end: int, score: float) -> Span:
        return Span(start, end, self.entity_type, score, self.name)


REGISTRY: dict[str, list[type[Recognizer]]] = {}


def register(cls: type[Recognizer]) -> type[Recognizer]:
    """Add a recognizer; several may serve one identifier type."""
    REGISTRY.setdefault(cls.entity_type, []).append(cls)
    return cls


def char_class_without(excluded: str) -> str:
    """A regex character class of every CJK character except ``excluded`` (a flat class is much
    faster than a per-character lookahead)."""
    ranges = []
    start = None
    for code in range(0x4E00, 0xA000):
        inside = chr(code) not in excluded
        if inside and start is None:
            start = code
        if not inside and start is not None:
            ranges.append((start, code - 1))
            start = None
    if start is not None:
        ranges.append((start, 0x9FFF))
    return "[" + "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges) + "]"


def preceded_by(text: str, position: int, words: tuple[str, ...] | re.Pattern, window: int = 12) -> bool:
    before = text[max(0, position - window):position]
    if isinstance(words, re.Pattern):
        return bool(words.search(before))
    return any(word in before for word in words)


def clear_before(text: str, start: int, blocked: str) -> bool:
    """True when the character before ``start`` is not one of ``blocked`` (a lookbehind done in code,
    so the pattern itself can start with a literal and be scanned for quickly)."""
    return start == 0 or text[start - 1] not in blocked
