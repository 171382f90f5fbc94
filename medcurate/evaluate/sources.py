"""Readers for the published evaluation sets, so each becomes an ordinary dataset version.

cmmlu        CMMLU CSV ``,Question,A,B,C,D,Answer``; subject = options.subject or the file name
mcmle        MedQA-MCMLE JSONL ``{question, options: {A..E}, answer, answer_idx?, meta_info}``;
             the answer may be the letter (answer_idx, or answer) or the option text; subject = meta_info
huatuo26m    Huatuo-26M test QA JSONL ``{"questions": [...], "answers": [...]}`` (a question may be a
             list of paraphrases: the first is asked); one row per record, the first answer the reference
cmedqa2      cMedQA2: path is the folder with ``question.csv`` (question_id, content) and ``answer.csv``
             (ans_id, question_id, content), joined by question id; options.candidates names a
             ``*_candidates.txt`` whose question ids are kept (e.g. test_candidates.txt). One row per
             question, the first answer the reference; its other answers are counted in the card stats.
meddialog    MedDialog (zh): the raw dump (``id=…`` / ``Description`` / ``Dialogue`` blocks with
             ``病人：`` / ``医生：`` lines, .txt) or the processed JSON (a list of dialogues, each a list
             of ``病人：…`` / ``医生：…`` utterances); conversation rows (patient = user, doctor = assistant)

Multiple-choice rows are instruction rows with ``task: mcq``, ``options`` (texts in letter order),
``answer`` (the letter), ``subject``; the query lists the options so the row also trains as is.
CMtMedQA (``cmtmedqa``) and CMB-Clin (``cmb_clin``) readers live with their features (mixing, ehr).
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medcurate.evaluate.items import LETTERS, MCQ_TASK
from medcurate.pipeline import RecordError, Row, SourceSpec, StepContext, register_source, register_source_reader


def mcq_row(question: str, options: list[str], answer: str, subject: str) -> Row:
    return {"instruction": question, "query": "\n".join(f"{l}. {t}" for l, t in zip(LETTERS, options, strict=False)),
            "answer": answer, "task": MCQ_TASK, "options": options, "subject": subject, "department": subject}


def _text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"missing or empty {key}", field=key)
    return value.strip()


@register_source("cmmlu", file_format="csv", doc="CMMLU multiple choice (,Question,A,B,C,D,Answer) -> mcq rows.")
def parse_cmmlu(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    question = _text(record, "Question")
    options = [_text(record, letter) for letter in LETTERS[:4]]
    answer = _text(record, "Answer").upper()
    if answer not in LETTERS[:4]:
        raise RecordError("answer must be one of A-D", field="Answer")
    subject = spec.options.get("subject") or (spec.resolved_path.stem if spec.resolved_path else spec.name)
    yield mcq_row(question, options, answer, str(subject))


@register_source("mcmle", file_format="jsonl", doc="MedQA-MCMLE {question, options A-E, answer, meta_info} -> mcq rows.")
def parse_mcmle(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    question = _text(record, "question")
    raw_options = record.get("options")
    if not isinstance(raw_options, dict) or not raw_options:
        raise RecordError("options must be an object {A: text, ...}", field="options")
    letters = sorted(raw_options)
    if letters != list(LETTERS[:len(letters)]) or not 2 <= len(letters) <= 5:
        raise RecordError("options must be lettered A, B, ... (2-5 of them)", field="options")
    options = [str(raw_options[letter]).strip() for letter in letters]
    answer = str(record.get("answer_idx") or "").strip().upper()
    if answer not in letters:
        given = str(record.get("answer") or "").strip()
        answer = given.upper() if given.upper() in letters else next(
            (letter for letter, text in zip(letters, options, strict=True) if text == given), "")
    if not answer:
        raise RecordError("answer is neither an option letter nor an option's text", field="answer")
    yield mcq_row(question, options, answer, str(record.get("meta_info") or spec.options.get("subject") or "all"))


def _first_text(value: Any) -> str:
    while isinstance(value, list) and value:
        value = value[0]
    return value.strip() if isinstance(value, str) else ""


@register_source("huatuo26m", file_format="jsonl", doc="Huatuo-26M test QA {questions: [...], answers: [...]}.")
def parse_huatuo26m(record: Row, spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    question, answer = _first_text(record.get("questions")), _first_text(record.get("answers"))
    if not question:
        raise RecordError("missing or empty questions", field="questions")
    if not answer:
        raise RecordError("missing or empty answers", field="answers")
    yield {"instruction": question, "query": "", "answer": answer, "task": "huatuo26m_qa"}


def _read_csv(path: Path) -> list[tuple[int, dict[str, str]]]:
    from medcurate.readers import read_text

    text = read_text(path, None)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    return [(number, record) for number, record in enumerate(reader, start=2)]


@register_source_reader("cmedqa2", doc="cMedQA2 folder: question.csv + answer.csv joined by question_id "
                                       "(options: questions, answers, candidates).")
def read_cmedqa2(spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    from medcurate.errors import MedcurateError
    from medcurate.readers import file_sha256

    folder = ctx.resolve_path(spec.path)
    questions_path = folder / spec.options.get("questions", "question.csv")
    answers_path = folder / spec.options.get("answers", "answer.csv")
    for path in (questions_path, answers_path):
        if not path.is_file():
            raise MedcurateError("cMedQA2 file not found", file=str(path), field=f"sources.{spec.name}.path")
    spec.resolved_path = questions_path
    spec.sha256 = file_sha256(questions_path)
    answers: dict[str, list[str]] = {}
    for _line, record in _read_csv(answers_path):
        content = (record.get("content") or "").strip()
        if record.get("question_id") and content:
            answers.setdefault(record["question_id"].strip(), []).append(content)
    wanted = None
    if spec.options.get("candidates"):
        wanted = {record["question_id"].strip() for _, record in _read_csv(folder / spec.options["candidates"])
                  if record.get("question_id")}
    for line, record in _read_csv(questions_path):
        ctx.ledger.rows_in += 1
        location = {"name": spec.name, "file": questions_path.name, "line": line, "sha256": spec.sha256}
        question_id = (record.get("question_id") or "").strip()
        if wanted is not None and question_id not in wanted:
            ctx.drop(None, "not_in_candidates")
            continue
        content = (record.get("content") or "").strip()
        if not question_id or not content:
            ctx.reject({"source": location}, "missing question_id or content", "content")
            continue
        found = answers.get(question_id)
        if not found:
            ctx.reject({"source": location}, "no answer with this question_id", "question_id")
            continue
        if len(found) > 1:
            stats = ctx.card.stats.setdefault("cmedqa2", {})
            stats["further_answers_not_used"] = stats.get("further_answers_not_used", 0) + len(found) - 1
        yield {"instruction": content, "query": "", "answer": found[0], "task": "cmedqa2_qa",
               "question_id": question_id, "source": location}


_SPEAKERS = {"病人": "user", "患者": "user", "医生": "assistant"}


def utterances_to_messages(utterances: list[str]) -> list[dict[str, str]]:
    """``病人：…`` / ``医生：…`` lines -> alternating user / assistant turns (same-speaker lines joined)."""
    messages: list[dict[str, str]] = []
    for utterance in utterances:
        speaker, colon, content = utterance.strip().partition("：")
        if not colon:
            speaker, colon, content = utterance.strip().partition(":")
        role = _SPEAKERS.get(speaker.strip())
        if role is None or not content.strip():
            raise RecordError("an utterance without 病人： or 医生： speaker", field="dialogue")
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n" + content.strip()
        else:
            messages.append({"role": role, "content": content.strip()})
    while messages and messages[-1]["role"] != "assistant":
        messages.pop()
    if not messages or messages[0]["role"] != "user":
        raise RecordError("a dialogue must start with the patient and have a doctor's answer", field="dialogue")
    return messages


def _raw_dialogues(text: str) -> Iterable[tuple[int, list[str]]]:
    """(line, utterances) of each ``id=`` block's Dialogue section in the raw MedDialog dump."""
    start, in_dialogue = 0, False
    utterances: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("id="):
            if start:
                yield start, utterances
            start, utterances, in_dialogue = number, [], False
        elif line == "Dialogue":
            in_dialogue = True
        elif line in ("Description", "Doctor faculty") or line.startswith("http"):
            in_dialogue = False
        elif in_dialogue and line:
            if line.split("：")[0].split(":")[0] in _SPEAKERS or not utterances:
                utterances.append(line)
            else:
                utterances[-1] += line
    if start:
        yield start, utterances


@register_source_reader("meddialog", doc="MedDialog (zh): raw dump (.txt id=/Dialogue blocks) or processed JSON "
                                         "(lists of 病人：/医生： utterances) -> conversation rows.")
def read_meddialog(spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    from medcurate.errors import MedcurateError
    from medcurate.readers import file_sha256, read_text

    path = ctx.resolve_path(spec.path)
    if not path.is_file():
        raise MedcurateError("MedDialog file not found", file=str(path), field=f"sources.{spec.name}.path")
    spec.resolved_path = path
    spec.sha256 = file_sha256(path)
    text = read_text(path, spec.encoding)
    if path.suffix == ".json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MedcurateError(f"malformed JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
        dialogues = [(index, item) for index, item in enumerate(value if isinstance(value, list) else [], start=1)]
    else:
        dialogues = list(_raw_dialogues(text))
    for line, utterances in dialogues:
        ctx.ledger.rows_in += 1
        location = {"name": spec.name, "file": path.name, "line": line, "sha256": spec.sha256}
        try:
            if not isinstance(utterances, list) or not all(isinstance(u, str) for u in utterances):
                raise RecordError("a dialogue must be a list of utterance strings", field="dialogue")
            messages = utterances_to_messages(utterances)
        except RecordError as exc:
            ctx.reject({"source": location}, exc.reason, exc.field)
            continue
        yield {"messages": messages, "source": location}
