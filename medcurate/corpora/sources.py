"""Source formats for the corpora the papers use: cMedQA2, MedDialog (zh), Huatuo-26M, CMCQA,
Safety-Prompts, ChatMed consult and MCMLE (MedQA Mainland), each in its published layout.

Record-per-line formats (Huatuo-26M, ChatMed, MCMLE, CMCQA) are plain registered sources; the
layouts that are not one record per line (cMedQA2's folder of CSVs, MedDialog's raw text blocks,
Safety-Prompts' object of scenario lists) are whole-source readers that count their own records.
The pure helpers (``mcmle_item``, ``huatuo_pair``, ``meddialog_dialogues``, ``cmedqa2_pairs``) are
meant for reuse by evaluation-set readers. Where users get the real files: docs/corpora.md.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError
from medcurate.mixing.sources import parse_cmtmedqa
from medcurate.pipeline import (
    RecordError,
    Row,
    SourceSpec,
    StepContext,
    register_source,
    register_source_reader,
)
from medcurate.readers import Malformed, file_sha256, iter_records, read_text

MCMLE_INSTRUCTION = "以下是中国医师资格考试（MCMLE）的单项选择题，请选出唯一正确的答案。"


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _qa_row(question: str, answer: str, task: str, **extra: Any) -> Row:
    return {"instruction": question, "query": "", "answer": answer, "task": task, **extra}


def _location(spec: SourceSpec, file: Path, line: int) -> dict[str, Any]:
    return {"name": spec.name, "file": file.name, "line": line, "sha256": spec.sha256}


def _resolve(spec: SourceSpec, ctx: StepContext) -> Path:
    path = ctx.resolve_path(spec.path)
    if not path.exists():
        raise MedcurateError(f"source not found (looked for {path})", file=str(spec.path),
                             field=f"sources.{spec.name}.path")
    spec.resolved_path = path
    return path


# Huatuo-26M ---------------------------------------------------------------------------------
def huatuo_pair(record: dict[str, Any]) -> tuple[str, str]:
    """(question, answer) of a Huatuo-26M record: ``questions``/``answers`` as strings (the
    26M test set) or lists, questions possibly nested (encyclopedia QA: paraphrases)."""
    questions, answers = record.get("questions", record.get("question")), record.get("answers", record.get("answer"))
    while isinstance(questions, list) and questions:
        questions = questions[0]
    while isinstance(answers, list) and answers:
        answers = answers[0]
    return _text(questions), _text(answers)


@register_source("huatuo26m", file_format="jsonl")
def parse_huatuo26m(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """Huatuo-26M (and its huatuo_*_qa parts): ``{questions, answers}``, strings or (nested) lists;
    the first question and first answer make the row."""
    question, answer = huatuo_pair(record)
    if not question or not answer:
        raise RecordError("missing field: questions or answers", field="questions" if not question else "answers")
    yield _qa_row(question, answer, "consultation_qa")


# ChatMed consult ----------------------------------------------------------------------------
@register_source("chatmed_consult", file_format="jsonl")
def parse_chatmed_consult(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """ChatMed consult: ``{query, response}`` per line (a web question and a ChatGPT answer)."""
    question, answer = _text(record.get("query")), _text(record.get("response"))
    if not question or not answer:
        raise RecordError("missing field: query or response", field="query" if not question else "response")
    yield _qa_row(question, answer, "consultation_qa", generated_by="chatgpt")


# MCMLE (MedQA, Mainland) -------------------------------------------------------------------
def mcmle_item(record: dict[str, Any]) -> dict[str, Any]:
    """A MedQA Mainland record ``{question, options: {A: …}, answer, answer_idx}`` checked and reduced
    to ``{question, options, answer_idx}``; raises RecordError naming the field."""
    question, options, idx = _text(record.get("question")), record.get("options"), _text(record.get("answer_idx"))
    if not question:
        raise RecordError("missing field: question", field="question")
    if not isinstance(options, dict) or len(options) < 2 or not all(_text(v) for v in options.values()):
        raise RecordError("bad options: expected {letter: text} with at least two options", field="options")
    if idx not in options:
        raise RecordError("bad answer_idx: not one of the option letters", field="answer_idx")
    if _text(record.get("answer")) and _text(record.get("answer")) != _text(options[idx]):
        raise RecordError("answer mismatch: answer differs from options[answer_idx]", field="answer")
    return {"question": question, "options": {str(k): _text(v) for k, v in sorted(options.items())}, "answer_idx": idx}


@register_source("mcmle", file_format="jsonl")
def parse_mcmle(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """MCMLE multiple-choice questions: the question and lettered options as ``query``, the answer
    ``答案：X. text``; ``options`` and ``answer_idx`` kept for scoring."""
    item = mcmle_item(record)
    options = "\n".join(f"{letter}. {text}" for letter, text in item["options"].items())
    yield {"instruction": MCMLE_INSTRUCTION, "query": f"{item['question']}\n{options}",
           "answer": f"答案：{item['answer_idx']}. {item['options'][item['answer_idx']]}", "task": "mcq",
           "options": json.dumps(item["options"], ensure_ascii=False), "answer_idx": item["answer_idx"],
           "meta_info": _text(record.get("meta_info"))}


# CMCQA (Zhongjing) --------------------------------------------------------------------------
for _name, _file_format in (("cmcqa", "json"), ("cmcqa_jsonl", "jsonl")):
    register_source(_name, file_format=_file_format,
                    doc=f"CMCQA (Zhongjing, ChunYu dialogues; {_file_format}): cate1, cate2, instruction, output, "
                        "history -> conversation rows.")(parse_cmtmedqa)


# cMedQA2 ------------------------------------------------------------------------------------
def _csv_rows(path: Path, encoding: str | None) -> Iterator[tuple[int, dict[str, Any]]]:
    for item in iter_records(path, "csv", encoding or "auto"):
        if isinstance(item, Malformed):
            raise MedcurateError(item.reason, file=str(path), line=item.line)
        yield item.line, item.data


def cmedqa2_pairs(folder: Path, split: str = "all", encoding: str | None = None) \
        -> tuple[dict[str, str], list[tuple[int, str, str, str]], set[str] | None]:
    """cMedQA2's ``question.csv`` (question_id, content) as a lookup, ``answer.csv`` rows as
    (line, ans_id, question_id, content), and the question ids of ``split`` (from
    ``<split>_candidates.txt``; ``None`` for all)."""
    question_file = next((folder / n for n in ("question.csv", "questions.csv") if (folder / n).exists()), None)
    answer_file = next((folder / n for n in ("answer.csv", "answers.csv") if (folder / n).exists()), None)
    if question_file is None or answer_file is None:
        raise MedcurateError("cMedQA2 folder needs question.csv and answer.csv", file=str(folder))
    questions = {str(r.get("question_id")).strip(): _text(r.get("content")) for _, r in _csv_rows(question_file, encoding)}
    answers = [(line, str(r.get("ans_id")).strip(), str(r.get("question_id")).strip(), _text(r.get("content")))
               for line, r in _csv_rows(answer_file, encoding)]
    in_split = None
    if split != "all":
        candidates = folder / f"{split}_candidates.txt"
        if not candidates.exists():
            raise MedcurateError(f"no {candidates.name} for split {split!r}", file=str(folder), field="options.split")
        in_split = {str(r.get("question_id")).strip() for _, r in _csv_rows(candidates, encoding)}
    return questions, answers, in_split


@register_source_reader("cmedqa2")
def read_cmedqa2(spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """cMedQA2: one row per question with one of its answers, chosen by the seed (ClinicalGPT:
    "randomly selected one answer per question"), or every answer with ``answers: all``. Records
    are the answers; the others of a question are dropped as ``other_answer``, those of questions
    outside ``split`` as ``other_split``, answers to unknown questions are rejected."""
    folder = _resolve(spec, ctx)
    split, mode = str(spec.options.get("split", "train")), str(spec.options.get("answers", "one"))
    questions, answers, in_split = cmedqa2_pairs(folder, split, spec.encoding)
    spec.sha256 = hashlib.sha256("".join(file_sha256(p) for p in sorted(folder.glob("*")) if p.is_file())
                                 .encode()).hexdigest()
    by_question: dict[str, list[tuple[int, str, str]]] = {}
    for line, ans_id, question_id, content in answers:
        ctx.ledger.rows_in += 1
        location = _location(spec, folder / "answer.csv", line)
        if question_id not in questions or not content:
            ctx.reject({"source": location}, "unknown question_id" if content else "missing field: content",
                       "question_id" if content else "content")
        elif in_split is not None and question_id not in in_split:
            ctx.drop(None, "other_split")
        else:
            by_question.setdefault(question_id, []).append((line, ans_id, content))
    for question_id, group in by_question.items():
        chosen = group if mode == "all" else [random.Random(f"{ctx.seed}|{question_id}").choice(group)]
        if len(group) > len(chosen):
            ctx.drop(None, "other_answer", len(group) - len(chosen))
        for line, ans_id, content in chosen:
            yield {**_qa_row(questions[question_id], content, "consultation_qa", question_id=question_id,
                             answer_id=ans_id), "source": _location(spec, folder / "answer.csv", line)}


# MedDialog (zh) -----------------------------------------------------------------------------
_SPEAKERS = {"病人": "user", "患者": "user", "医生": "assistant"}
_SPEAKER_LINE = re.compile(r"^(病人|患者|医生)[：:]\s*(.*)$")
_SECTION_HEADS = ("Description", "Dialogue", "Doctor faculty", "Diagnosis and suggestions")


def meddialog_dialogues(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The raw MedDialog-CN text (``id=N``, URL, ``Doctor faculty``, ``Description``, ``Dialogue``
    blocks with ``病人：``/``医生：`` turns) as (first line, {id, department, description, turns})."""
    block: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("id=") and block:
            yield _dialogue_block(block)
            block = []
        block.append((number, line.rstrip()))
    if block and any(line.startswith("id=") for _, line in block):
        yield _dialogue_block(block)


def _dialogue_block(block: list[tuple[int, str]]) -> tuple[int, dict[str, Any]]:
    section = ""
    sections: dict[str, list[str]] = {}
    turns: list[list[str]] = []
    for _, line in block[1:]:
        stripped = line.strip()
        if stripped in _SECTION_HEADS:
            section = stripped
            continue
        if section == "Dialogue":
            speaker = _SPEAKER_LINE.match(stripped)
            if speaker:
                turns.append([_SPEAKERS[speaker.group(1)], speaker.group(2).strip()])
            elif stripped and turns:
                turns[-1][1] = (turns[-1][1] + "\n" + stripped).strip()
        elif stripped and section:
            sections.setdefault(section, []).append(stripped)
    return block[0][0], {"id": block[0][1][3:].strip(), "department": " ".join(sections.get("Doctor faculty", [])),
                         "description": "\n".join(sections.get("Description", [])), "turns": turns}


def dialogue_messages(turns: list[list[str]]) -> list[dict[str, str]]:
    """Turns -> alternating messages: same-speaker turns merged, leading doctor and trailing patient
    turns left out (a training conversation starts with the user and ends with the assistant)."""
    messages: list[dict[str, str]] = []
    for role, content in turns:
        if not content:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n" + content
        elif messages or role == "user":
            messages.append({"role": role, "content": content})
    if messages and messages[-1]["role"] == "user":
        messages.pop()
    return messages


def _meddialog_row(dialogue: dict[str, Any]) -> Row:
    messages = dialogue_messages(dialogue["turns"])
    if len(messages) < 2:
        raise RecordError("empty dialogue: no patient turn answered by the doctor", field="Dialogue")
    return {"messages": messages, "department": dialogue.get("department", ""),
            "description": dialogue.get("description", ""), "dialogue_id": dialogue.get("id", "")}


@register_source_reader("meddialog_zh")
def read_meddialog_zh(spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """MedDialog (zh) as released (``2010.txt`` …): one conversation row per ``id=`` block; a block
    whose dialogue has no answered patient turn is rejected with its line."""
    path = _resolve(spec, ctx)
    spec.sha256 = file_sha256(path)
    for line, dialogue in meddialog_dialogues(read_text(path, spec.encoding or "auto")):
        ctx.ledger.rows_in += 1
        location = _location(spec, path, line)
        try:
            yield {**_meddialog_row(dialogue), "source": location}
        except RecordError as exc:
            ctx.reject({"source": location}, exc.reason, exc.field)


def meddialog_json_turns(utterances: Any) -> list[list[str]]:
    """One dialogue of the preprocessed MedDialog-CN files: utterances prefixed 病人： or 医生：."""
    if not isinstance(utterances, list):
        raise RecordError("bad dialogue: expected a list of utterances", field="dialogue")
    turns = []
    for utterance in utterances:
        match = _SPEAKER_LINE.match(str(utterance).strip())
        if not match:
            raise RecordError("bad utterance: expected 病人： or 医生： first", field="dialogue")
        turns.append([_SPEAKERS[match.group(1)], match.group(2).strip()])
    return turns


@register_source_reader("meddialog_zh_json")
def read_meddialog_zh_json(spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """The preprocessed MedDialog-CN split files (``train_data.json`` …): a JSON array whose items
    are lists of utterances; ``line`` in the provenance is the dialogue's position (1-based)."""
    path = _resolve(spec, ctx)
    spec.sha256 = file_sha256(path)
    try:
        data = json.loads(read_text(path, spec.encoding or "auto"))
    except json.JSONDecodeError as exc:
        raise MedcurateError(f"malformed JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
    if not isinstance(data, list):
        raise MedcurateError("expected a JSON array of dialogues", file=str(path))
    for number, utterances in enumerate(data, 1):
        ctx.ledger.rows_in += 1
        location = _location(spec, path, number)
        try:
            yield {**_meddialog_row({"turns": meddialog_json_turns(utterances)}), "source": location}
        except RecordError as exc:
            ctx.reject({"source": location}, exc.reason, exc.field)


# Safety-Prompts -----------------------------------------------------------------------------
@register_source_reader("safety_prompts")
def read_safety_prompts(spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    """thu-coai Safety-Prompts (``typical_safety_scenarios.json``, ``instruction_attack_scenarios.json``):
    an object of scenario lists; each item gives a row with ``safety_type`` = its scenario (``line`` in
    the provenance is the item's position in the file).
    ``options: {types: [...]}`` keeps only those scenarios (others dropped as ``other_type``)."""
    path = _resolve(spec, ctx)
    spec.sha256 = file_sha256(path)
    try:
        data = json.loads(read_text(path, spec.encoding or "auto"))
    except json.JSONDecodeError as exc:
        raise MedcurateError(f"malformed JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
    if not isinstance(data, dict):
        raise MedcurateError("expected an object of scenario lists", file=str(path))
    wanted = set(spec.options.get("types") or [])
    number = 0
    for scenario, items in data.items():
        for item in items if isinstance(items, list) else []:
            ctx.ledger.rows_in += 1
            number += 1
            location = _location(spec, path, number)
            if wanted and scenario not in wanted:
                ctx.drop(None, "other_type")
                continue
            prompt = _text(item.get("prompt")) if isinstance(item, dict) else ""
            response = _text(item.get("response")) if isinstance(item, dict) else ""
            if not prompt or not response:
                ctx.reject({"source": location}, "missing field: prompt or response", "prompt")
                continue
            yield {**_qa_row(prompt, response, "safety", safety_type=scenario, subset="safety"), "source": location}
