"""Recognizers as data (the Presidio layout, written for Chinese clinical text): one module per
family, each recognizer a small class with its patterns, scores, context words and validator.
Several recognizers may serve one identifier type; ``REGISTRY`` maps a type to its classes."""
from __future__ import annotations

from medcurate.deid.recognizers import addresses, dates, numbers, organizations, persons, web
from medcurate.deid.recognizers.base import REGISTRY, Pattern, Recognizer, Span, register
from medcurate.deid.recognizers.numbers import id_card_checksum_ok, luhn_ok

_FAMILIES = (addresses, dates, numbers, organizations, persons, web)


def all_recognizers(types: tuple[str, ...] | None = None) -> list[Recognizer]:
    return [factory() for name, factories in REGISTRY.items() if types is None or name in types for factory in factories]


__all__ = ["REGISTRY", "Pattern", "Recognizer", "Span", "all_recognizers", "id_card_checksum_ok", "luhn_ok", "register"]
