"""Scanning text for identifiers and replacing them by policy.

``Deidentifier.scan(text)`` runs every recognizer, resolves overlaps (higher score,
then longer span wins), and propagates names: once a name is found with confidence,
its other occurrences in the same text are found too. ``deidentify(text, patient=...)``
applies the policy per type:

mask       ``[PERSON]``-style tags
redact     the identifier is removed
surrogate  a realistic stand-in, the same for one patient across all of that patient's
           records (a keyed hash with a user-held secret); dates are shifted by a
           per-patient offset so intervals survive
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import html
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from medcurate.deid.recognizers import REGISTRY, Span, all_recognizers
from medcurate.deid.surrogates import surrogate_for
from medcurate.errors import MedcurateError

POLICIES = ("mask", "surrogate", "redact")
IDENTIFIER_TYPES = tuple(REGISTRY)
DEFAULT_THRESHOLD = 0.5
# A candidate with one of its recognizer's context words just before it scores at least this.
CONTEXT_FLOOR = 0.85
CONTEXT_WINDOW = 12
SECRET_ENV = "MEDCURATE_DEID_SECRET"


@dataclass(frozen=True)
class Policy:
    """Which replacement applies to each identifier type."""

    default: str = "mask"
    per_type: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: str | dict | None) -> Policy:
        if value is None:
            return cls()
        if isinstance(value, str):
            cls._check(value, "policy")
            return cls(default=value)
        if isinstance(value, dict):
            default = value.get("default", "mask")
            cls._check(default, "policy.default")
            per_type = {}
            for name, choice in value.items():
                if name == "default":
                    continue
                if name not in IDENTIFIER_TYPES:
                    raise MedcurateError(f"unknown identifier type {name!r}; known: {', '.join(IDENTIFIER_TYPES)}",
                                         field=f"policy.{name}")
                cls._check(choice, f"policy.{name}")
                per_type[name] = choice
            return cls(default=default, per_type=per_type)
        raise MedcurateError("policy must be mask, surrogate, redact or a mapping of type -> policy", field="policy")

    @staticmethod
    def _check(choice: str, where: str) -> None:
        if choice not in POLICIES:
            raise MedcurateError(f"unknown policy {choice!r}; expected one of {', '.join(POLICIES)}", field=where)

    def for_type(self, identifier_type: str) -> str:
        return self.per_type.get(identifier_type, self.default)

    @property
    def uses_surrogates(self) -> bool:
        return self.default == "surrogate" or "surrogate" in self.per_type.values()

    def summary(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.per_type.items()))
        return self.default + (f";{extra}" if extra else "")


@dataclass
class DeidResult:
    text: str
    spans: list[Span]
    below_threshold: list[Span] = field(default_factory=list)


class Deidentifier:
    """De-identifies Chinese clinical text; see the module docstring for the policies."""

    def __init__(self, policy: str | dict | Policy | None = None, *, secret: str | None = None,
                 threshold: float = DEFAULT_THRESHOLD, types: Iterable[str] | None = None,
                 pseudonym_key: bytes | None = None):
        self.policy = policy if isinstance(policy, Policy) else Policy.parse(policy)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
            raise MedcurateError("threshold must be a number between 0 and 1", field="threshold")
        self.threshold = float(threshold)
        self.recognizers = all_recognizers(tuple(types) if types else None)
        secret = secret if secret is not None else os.environ.get(SECRET_ENV)
        if self.policy.uses_surrogates and not secret:
            raise MedcurateError(f"the surrogate policy needs a secret: set ${SECRET_ENV} (keep it out of the repository)")
        self._key = (secret or "").encode("utf-8")
        # Patient and record keys become HMAC pseudonyms: with the user's secret they are stable across
        # builds; without one, a random key held only by this run (consistent within it, linkable by no one).
        self.stable_pseudonyms = bool(secret) or pseudonym_key is not None
        self.pseudonym_key = pseudonym_key or (hmac.new(self._key, b"pseudonym", hashlib.sha256).digest() if secret
                                               else os.urandom(32))

    def pseudonym(self, value: str) -> str:
        """A keyed pseudonym for a patient or record number: ``pt-`` and 16 hex digits."""
        return "pt-" + hmac.new(self.pseudonym_key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:16]

    def candidates(self, text: str) -> list[Span]:
        """Every recognizer's candidates, context-boosted, with offsets into ``text``. The text is
        scanned in a normal form (HTML entities unescaped, zero-width characters dropped, full-width
        digits and letters folded) and the spans mapped back."""
        normal = normalise(text)
        scanned = normal.text
        found: list[Span] = []
        for recognizer in self.recognizers:
            for span in recognizer.candidates(scanned):
                if recognizer.context and span.score < CONTEXT_FLOOR and _has_context(scanned, span.start,
                                                                                      recognizer.context):
                    span = Span(span.start, span.end, span.type, CONTEXT_FLOOR, span.recognizer)
                found.append(span)
        found.extend(_propagate_names(scanned, found))
        return found if normal.identity else [normal.original_span(span) for span in found]

    def scan(self, text: str, threshold: float | None = None) -> list[Span]:
        """Identifier spans in ``text`` with score >= threshold, non-overlapping, by position."""
        threshold = self.threshold if threshold is None else threshold
        candidates = self.candidates(text)
        chosen: list[Span] = []
        taken = bytearray(len(text) + 1)
        for tag in _MASK_TAG.finditer(text):
            taken[tag.start():tag.end()] = b"\x01" * (tag.end() - tag.start())
        for span in sorted(candidates, key=lambda s: (-s.score, -(s.end - s.start), s.start)):
            if span.score < threshold or span.end <= span.start:
                continue
            if any(taken[span.start:span.end]):
                continue
            taken[span.start:span.end] = b"\x01" * (span.end - span.start)
            chosen.append(span)
        return sorted(chosen, key=lambda s: s.start)

    def deidentify(self, text: str, patient: str | None = None) -> DeidResult:
        """The text with every identifier replaced by policy, the spans (offsets into ``text``), and the
        spans kept because they scored below the threshold. One scan serves both: overlaps are resolved
        highest score first, so low-scoring candidates never displace a span above the threshold."""
        candidates = self.scan(text, threshold=0.0)
        spans = [span for span in candidates if span.score >= self.threshold]
        pieces: list[str] = []
        position = 0
        for span in spans:
            pieces.append(text[position:span.start])
            pieces.append(self.replacement(text[span.start:span.end], span.type, patient))
            position = span.end
        pieces.append(text[position:])
        below = [span for span in candidates if span.score < self.threshold]
        return DeidResult("".join(pieces), spans, below)

    def replacement(self, value: str, identifier_type: str, patient: str | None) -> str:
        choice = self.policy.for_type(identifier_type)
        if choice == "mask":
            return f"[{identifier_type}]"
        if choice == "redact":
            return ""
        return surrogate_for(value, identifier_type, self._keyed(patient or ""), self.date_offset(patient or ""))

    def _keyed(self, patient: str):
        def digest(label: str) -> int:
            return int.from_bytes(hmac.new(self._key, f"{patient}\0{label}".encode(), hashlib.sha256).digest()[:8],
                                  "big")
        return digest

    def date_offset(self, patient: str) -> dt.timedelta:
        """A per-patient shift between 30 and 365 days (either direction), never zero."""
        value = self._keyed(patient)("date-offset")
        days = 30 + value % 336
        return dt.timedelta(days=days if (value >> 20) % 2 else -days)


_MASK_TAG = re.compile(r"\[(?:" + "|".join(IDENTIFIER_TYPES) + r")\]")


def _propagate_names(text: str, candidates: list[Span]) -> list[Span]:
    """Other occurrences of a confidently found name in the same text."""
    names = {text[s.start:s.end] for s in candidates if s.type == "PERSON" and s.score >= 0.85 and s.end - s.start >= 2}
    found = []
    for name in names:
        position = text.find(name)
        while position >= 0:
            found.append(Span(position, position + len(name), "PERSON", 0.9, "NamePropagation"))
            position = text.find(name, position + len(name))
    return found


def _has_context(text: str, start: int, words: tuple[str, ...]) -> bool:
    before = text[max(0, start - CONTEXT_WINDOW):start]
    return any(word in before for word in words)


_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
# Only what is folded or dropped: full-width punctuation such as ，：（ stays as it is.
_SPECIAL = re.compile(r"&(?:#\d{1,6}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z]{2,8});|[" + _ZERO_WIDTH + r"]"
                      r"|[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\uff0b\uff0d\uff0e\uff0f\uff20]+")
_FOLD = {code: code - 0xFEE0 for code in range(0xFF10, 0xFF1A)}
_FOLD.update({code: code - 0xFEE0 for code in range(0xFF21, 0xFF3B)})
_FOLD.update({code: code - 0xFEE0 for code in range(0xFF41, 0xFF5B)})
_FOLD.update({0xFF0B: ord("+"), 0xFF0D: ord("-"), 0xFF0E: ord("."), 0xFF0F: ord("/"), 0xFF20: ord("@")})


@dataclass
class Normalised:
    """Text in the form the recognizers see, and where each of its characters came from."""

    original: str
    text: str
    starts: list[int] | None = None  # original offset of each scanned character (None: identical)
    ends: list[int] | None = None

    @property
    def identity(self) -> bool:
        return self.starts is None

    def original_span(self, span: Span) -> Span:
        assert self.starts is not None and self.ends is not None
        if span.end <= span.start:
            return span
        return Span(self.starts[span.start], self.ends[span.end - 1], span.type, span.score, span.recognizer)


def normalise(text: str) -> Normalised:
    """HTML entities unescaped, zero-width characters dropped, full-width digits/letters folded, with
    an offset map back to ``text`` (identifiers hide behind markup debris and invisible characters)."""
    if not _SPECIAL.search(text):
        return Normalised(text, text)
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    position = 0
    for match in _SPECIAL.finditer(text):
        if match.start() > position:
            pieces.append(text[position:match.start()])
            starts.extend(range(position, match.start()))
            ends.extend(range(position + 1, match.start() + 1))
        token = match.group()
        if token[0] == "&":
            replacement = html.unescape(token)
            pieces.append(replacement)
            starts.extend([match.start()] * len(replacement))
            ends.extend([match.end()] * len(replacement))
        elif token[0] in _ZERO_WIDTH:
            pass
        else:
            pieces.append(token.translate(_FOLD))
            starts.extend(range(match.start(), match.end()))
            ends.extend(range(match.start() + 1, match.end() + 1))
        position = match.end()
    pieces.append(text[position:])
    starts.extend(range(position, len(text)))
    ends.extend(range(position + 1, len(text) + 1))
    return Normalised(text, "".join(pieces), starts, ends)
