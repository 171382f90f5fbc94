"""Identifiers of the internet: e-mail addresses, URLs, IP addresses."""
from __future__ import annotations

import re

from medcurate.deid.recognizers.base import Pattern, Recognizer, register


@register
class EmailRecognizer(Recognizer):
    entity_type = "EMAIL"
    patterns = (Pattern("email", r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*\s?(?:@|＠|\(at\)|\[at\])\s?"
                                 r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,10}(?![A-Za-z0-9-])", 0.99),)


@register
class UrlRecognizer(Recognizer):
    entity_type = "URL"
    patterns = (Pattern("url", r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'*+,;=%]+", 0.9),)
    flags = re.IGNORECASE

    def candidates(self, text):
        for span in super().candidates(text):
            end = span.end
            while end > span.start and text[end - 1] in ".,;:!?)":
                end -= 1
            yield self.span(span.start, end, span.score)


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"


@register
class IpRecognizer(Recognizer):
    entity_type = "IP"
    patterns = (Pattern("ipv4", rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\d.])", 0.85),)
