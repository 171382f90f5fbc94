"""canonical_json is the basis of every content hash (row ids, dedupe keys, version ids), so its
fast path must write exactly what the standard library's encoder writes."""
from __future__ import annotations

import datetime as dt
import json
import math

from medcurate.schemas import canonical_json

REFERENCE = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def test_canonical_json_writes_what_the_standard_encoder_writes():
    values = [
        {"b": 1, "a": [1, 2.5, None, True, False], "中文": "头晕\n\"引号\"\u2028", "z": {"y": {}, "x": []}},
        ["病例", 1e300, -0.0, 10**18, {"k": dt.date(2024, 1, 2)}],
        {"content": {"instruction": "问", "answer": "答", "query": ""}, "source": ["rows", "r.jsonl", 3]},
        1.5, 7, None, True, "只是一段文字", [], {},
        {"nan": math.nan, "inf": math.inf},
        {2: "integer keys", 1: "are written as text"},
    ]
    for value in values:
        assert canonical_json(value) == REFERENCE.encode(value)
