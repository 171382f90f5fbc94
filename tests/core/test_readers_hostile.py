"""Readers on valid but awkward JSON (#11): line separators inside strings, values the build
cannot store. Each becomes a record or a reject with its reason; none aborts the build."""
from __future__ import annotations

import json

from medcurate.build import build
from medcurate.readers import Malformed, RawRecord, iter_records
from medcurate.recipe import recipe_from_dict


def _line(answer: str) -> str:
    return json.dumps({"instruction": "问", "query": "", "answer": answer, "task": "qa"}, ensure_ascii=False)


SEPARATORS = ["\u2028", "\u2029", "\u0085"]


def test_jsonl_is_split_on_newline_only(tmp_path):
    path = tmp_path / "sep.jsonl"
    lines = [_line(f"第{i}行{SEPARATORS[i % 3]}续") for i in range(6)] + [_line("最后")]
    path.write_text("\r\n".join(lines) + "\n", encoding="utf-8")
    records = list(iter_records(path, "jsonl"))
    assert all(isinstance(r, RawRecord) for r in records)
    assert [r.line for r in records] == [1, 2, 3, 4, 5, 6, 7]
    assert records[0].data["answer"] == "第0行\u2028续"


HOSTILE = {
    "deep": '{"instruction": ' + "[" * 200_000 + "]" * 200_000 + "}",
    "long_number": '{"instruction": "问", "answer": ' + "9" * 5000 + "}",
    "big_int": json.dumps({"instruction": "问", "query": "", "answer": "答", "task": "qa", "score": 2 ** 64}),
    "surrogate": '{"instruction": "问", "query": "", "answer": "\\ud800", "task": "qa"}',
}
REASONS = {"deep": "nested deeper than 64 levels", "long_number": "number too long to read (more than 4300 digits)",
           "big_int": "integer out of the 64-bit range", "surrogate": "lone surrogate in a string (not valid Unicode text)"}


def test_unusable_records_become_rejects_and_the_build_goes_on(tmp_path):
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join([_line("好的一"), *HOSTILE.values(), _line("好的二\u2028")]) + "\n", encoding="utf-8")
    result = build(recipe_from_dict({"name": "h", "kind": "instruction", "sources": [{"path": str(path)}]}),
                   store=tmp_path / "s")
    rejects = [json.loads(line) for line in (result.version.path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == [(2 + i, REASONS[k]) for i, k in enumerate(HOSTILE)]
    assert result.manifest["counts"]["rows_written"] == 2
    assert result.manifest["counts"]["inputs_read"] == 6
    assert [r.get("field") for r in rejects] == [None, None, "score", "answer"]


def test_json_arrays_skip_an_unreadable_element_and_keep_reading(tmp_path):
    path = tmp_path / "array.json"
    path.write_text("[\n" + ",\n".join([_line("一"), HOSTILE["deep"], HOSTILE["long_number"], HOSTILE["surrogate"],
                                        _line("二")]) + "\n]\n", encoding="utf-8")
    items = list(iter_records(path, "json"))
    assert [(type(i).__name__, i.line) for i in items] == [("RawRecord", 2), ("Malformed", 3), ("Malformed", 4),
                                                           ("Malformed", 5), ("RawRecord", 6)]
    assert [i.reason for i in items if isinstance(i, Malformed)] == [REASONS["deep"], REASONS["long_number"],
                                                                     REASONS["surrogate"]]


def test_jsonl_read_in_blocks_keeps_every_line_number(tmp_path, monkeypatch):
    """Lines are decoded a block at a time; blocks of a few bytes cut through multibyte
    characters, CRLF pairs and blank lines, and every record keeps its own line number."""
    import medcurate.readers as readers

    lines = ['{"问": "头晕乏力怎么办？"}', "", '{"问": "血压高"}\r', "  ", '{"问": "糖尿病饮食"}', '{"问": ']
    for encoding in ("utf-8", "gb18030"):
        path = tmp_path / f"blocks-{encoding}.jsonl"
        path.write_bytes("\n".join(lines).encode(encoding))
        expected = [(item.line, getattr(item, "data", None)) for item in iter_records(path, "jsonl", encoding)]
        for block in (1, 3, 7, 64):
            monkeypatch.setattr(readers, "_BLOCK_BYTES", block)
            got = [(item.line, getattr(item, "data", None)) for item in iter_records(path, "jsonl", encoding)]
            assert got == expected, (encoding, block)
        monkeypatch.undo()
    assert [line for line, _ in expected] == [1, 3, 5, 6]
    assert [data for _, data in expected][:3] == [{"问": "头晕乏力怎么办？"}, {"问": "血压高"}, {"问": "糖尿病饮食"}]


def test_bad_bytes_in_a_block_name_their_line(tmp_path, monkeypatch):
    import pytest

    import medcurate.readers as readers
    from medcurate.errors import MedcurateError

    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"a": "1"}\n{"a": "2"}\n{"a": "\xff"}\n{"a": "4"}\n')
    for block in (5, 1 << 20):
        monkeypatch.setattr(readers, "_BLOCK_BYTES", block)
        with pytest.raises(MedcurateError) as raised:
            list(iter_records(path, "jsonl", "utf-8"))
        assert raised.value.line == 3 and "gb18030" in str(raised.value)
