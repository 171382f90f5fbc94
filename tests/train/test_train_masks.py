"""Loss only on answer tokens: label masks checked token by token against character spans."""
from __future__ import annotations

import pytest

pytest.importorskip("trl", reason="the train extra is not installed")

from medcurate.train.runner import prepare_run
from tests.train.conftest import CONVERSATIONS, QA
from tests.train.train_helpers import FAST

IGNORE = -100


def _expected_labels(tokenizer, text: str, answer_spans: list[tuple[int, int]]):
    """Ids of ``text`` and the labels a correct mask gives: the id inside an answer span, -100 outside."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    labels = []
    for token_id, (start, end) in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True):
        inside = any(span_start <= start and end <= span_end for span_start, span_end in answer_spans)
        labels.append(token_id if inside else IGNORE)
    return encoded["input_ids"], labels


def _answer_spans(text: str, answers: list[str]) -> list[tuple[int, int]]:
    """Each answer with its end-of-turn marker, found in order after its assistant header."""
    spans, cursor = [], 0
    for answer in answers:
        start = text.index("<|im_start|>assistant\n" + answer, cursor) + len("<|im_start|>assistant\n")
        end = start + len(answer) + len("<|im_end|>")
        spans.append((start, end))
        cursor = end
    return spans


def _first_collated(run, index: int = 0):
    trainer = run.trainer
    batch = trainer.data_collator([trainer.train_dataset[index]])
    return batch["input_ids"][0].tolist(), batch["labels"][0].tolist()


def test_multi_turn_labels_cover_assistant_turns_only(train_world, tmp_path):
    run = prepare_run("sft", "clinicalgpt-sft", train_world["model"], train_world["refs"]["conversation"],
                      tmp_path / "run", store=train_world["store"], overrides=FAST)
    dataset = run.trainer.train_dataset
    index = next(i for i, row in enumerate(dataset) if len(row["messages"]) == len(CONVERSATIONS[0]))
    messages = dataset[index]["messages"]
    text = run.tokenizer.apply_chat_template(messages, tokenize=False)
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    assert len(answers) == 2
    expected_ids, expected_labels = _expected_labels(run.tokenizer, text, _answer_spans(text, answers))

    input_ids, labels = _first_collated(run, index)
    assert input_ids == expected_ids
    for position, (got, want) in enumerate(zip(labels, expected_labels, strict=True)):
        assert got == want, f"token {position} ({run.tokenizer.decode([input_ids[position]])!r}): {got} != {want}"
    trained = [token for token in labels if token != IGNORE]
    assert run.tokenizer.decode(trained) == "".join(answer + "<|im_end|>" for answer in answers)
    assert 0 < len(trained) < len(labels)


def test_prompt_completion_labels_cover_the_answer_only(train_world, tmp_path):
    run = prepare_run("sft", "clinicalgpt-sft", train_world["model"], train_world["refs"]["instruction"],
                      tmp_path / "run", store=train_world["store"], overrides=FAST)
    input_ids, labels = _first_collated(run)
    row = run.trainer.train_dataset[0]
    completion = run.tokenizer.decode([token for token in labels if token != IGNORE])
    answer = next(a for _, a in QA if completion.startswith(a))
    assert completion == answer + "<|im_end|>"
    first = next(i for i, token in enumerate(labels) if token != IGNORE)
    assert all(token == IGNORE for token in labels[:first])
    assert labels[first:] == input_ids[first:]
    assert run.tokenizer.decode(input_ids[:first]).endswith("<|im_start|>assistant\n")
    assert row["prompt"][-1]["role"] == "user"
