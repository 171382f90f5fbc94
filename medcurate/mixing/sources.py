"""Source formats of the mixture parts: published versions (mix_part), CMtMedQA dialogues and toyhom CSV."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from medcurate.pipeline import (
    RecordError,
    Row,
    SourceSpec,
    StepContext,
    register_source,
    register_source_reader,
)
from medcurate.sources import read_published_version


@register_source_reader("mix_part")
def read_mix_part(spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """A published version whose rows keep their provenance and get ``mix_part`` = the source's name.

    Only its ``train`` split by default (``options: {splits: [...]}`` to choose): a mixture built
    for training must not carry the part's validation and test rows."""
    if "splits" not in spec.options:
        spec.options = {**spec.options, "splits": ["train"]}
    for row in read_published_version(spec, ctx):
        row["mix_part"] = spec.name
        yield row


def _strip(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _department(value: Any) -> str:
    """A department label; the placeholder ``nan`` some exports carry counts as unknown."""
    text = _strip(value)
    return "" if text.lower() in ("nan", "none", "null") else text


@register_source("cmtmedqa", file_format="json")
def parse_cmtmedqa(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """CMtMedQA (Zhongjing) dialogues and safety records as conversation rows.

    Two record shapes: dialogues ``{cate1, cate2, instruction, output, history}`` (department =
    cate1) and safety records ``{instruct, output}`` (``subset: safety``)."""
    if "instruct" in record:
        question, answer = _strip(record.get("instruct")), _strip(record.get("output"))
        if not question or not answer:
            raise RecordError("empty turn: safety record without question or answer", field="instruct")
        yield {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
               "subset": "safety", "department": ""}
        return
    history = record.get("history")
    if not isinstance(history, list):
        raise RecordError("missing field: history", field="history")
    messages = []
    for index, pair in enumerate(history + [[record.get("instruction"), record.get("output")]]):
        if not isinstance(pair, list) or len(pair) != 2 or not _strip(pair[0]) or not _strip(pair[1]):
            raise RecordError(f"empty turn: history[{index}]", field="history")
        messages += [{"role": "user", "content": _strip(pair[0])}, {"role": "assistant", "content": _strip(pair[1])}]
    yield {"messages": messages, "subset": "dialogue", "department": _department(record.get("cate1")),
           "sub_department": _strip(record.get("cate2")), "dialogue_id": _strip(record.get("id"))}


@register_source("toyhom", file_format="csv", default_encoding="gb18030")
def parse_toyhom(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """Toyhom single-turn QA (GBK CSV): title and question as the user turn, the doctor's answer."""
    ask, title, answer = _strip(record.get("ask")), _strip(record.get("title")), _strip(record.get("answer"))
    if not answer or not (ask or title):
        raise RecordError("empty turn: question or answer missing", field="answer" if not answer else "ask")
    question = ask if not title or ask.startswith(title) else f"{title}\n{ask}"
    yield {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
           "department": _department(record.get("department"))}
