"""`--chat-template NAME|FILE`: the shipped templates mask exactly the answers, and a template that
cannot train (no generation marks, does not render, markers the tokenizer lacks) is one line."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("trl", reason="the train extra is not installed")

from medcurate.errors import MedcurateError
from medcurate.train.chat_templates import (
    SAMPLE_CONVERSATION,
    ChatTemplate,
    check_training_template,
    resolve_chat_template,
    shipped_templates,
)
from medcurate.train.runner import prepare_run
from tests.conftest import run_medcurate
from tests.train.conftest import CONVERSATIONS
from tests.train.train_helpers import FAST

IGNORE = -100
ANSWERS = [m["content"] for m in SAMPLE_CONVERSATION if m["role"] == "assistant"]
# what a correct mask trains on, per shipped template: each answer and the end of its turn
TRAINED = {
    "chatml": "".join(answer + "<|im_end|>" for answer in ANSWERS),
    "llama-3": "".join(answer + "<|eot_id|>" for answer in ANSWERS),
    "chatglm3": "".join(ANSWERS) + "<|im_end|>",
    "baichuan2": "".join(answer + "<|im_end|>" for answer in ANSWERS),
}
# the family's control markers, added to the tiny tokenizer so that each template can be tried on it
MARKERS = {
    "chatml": [],
    "llama-3": ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    "chatglm3": ["[gMASK]", "sop", "<|system|>", "<|user|>", "<|assistant|>"],
    "baichuan2": ["<reserved_106>", "<reserved_107>"],
}
NO_MARKS = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
            "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


@pytest.fixture(scope="module")
def tiny_tokenizer(train_world):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(train_world["model"]))


def test_every_family_is_shipped():
    assert set(shipped_templates()) == set(TRAINED)
    assert resolve_chat_template("qwen").name == "chatml" and resolve_chat_template("Llama3").name == "llama-3"


@pytest.mark.parametrize("name", sorted(TRAINED))
def test_shipped_template_masks_exactly_the_answers(name, tiny_tokenizer):
    tokenizer = tiny_tokenizer.__class__.from_pretrained(tiny_tokenizer.name_or_path)
    tokenizer.add_special_tokens({"additional_special_tokens": MARKERS[name]})
    template = resolve_chat_template(name)
    check_training_template(tokenizer, template, assistant_only=True)
    encoded = tokenizer.apply_chat_template(SAMPLE_CONVERSATION, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True, chat_template=template.text)
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    assert tokenizer.decode([t for t, keep in zip(ids, mask, strict=True) if keep]) == TRAINED[name]
    prompt = tokenizer.apply_chat_template(SAMPLE_CONVERSATION[:2], tokenize=False, add_generation_prompt=True,
                                           chat_template=template.text)
    full = tokenizer.apply_chat_template(SAMPLE_CONVERSATION[:3], tokenize=False, chat_template=template.text)
    assert full.startswith(prompt), "the generation prompt must be the start of the answered conversation"


def test_a_family_whose_markers_the_tokenizer_lacks_is_refused(tiny_tokenizer):
    with pytest.raises(MedcurateError, match=r"writes .*<\|start_header_id\|>.*use the template of the model's family"):
        check_training_template(tiny_tokenizer, resolve_chat_template("llama-3"), assistant_only=False)


def test_templates_that_cannot_train_are_one_line_errors(tiny_tokenizer, tmp_path):
    with pytest.raises(MedcurateError, match=r"has no \{% generation %\}"):
        check_training_template(tiny_tokenizer, ChatTemplate("plain", NO_MARKS, "file"), assistant_only=True)
    check_training_template(tiny_tokenizer, ChatTemplate("plain", NO_MARKS, "file"), assistant_only=False)
    marks_prompt = NO_MARKS.replace("{{ '<|im_start|>' + m['role']",
                                    "{% generation %}{{ '<|im_start|>' + m['role']").replace(
        "'<|im_end|>\\n' }}", "'<|im_end|>\\n' }}{% endgeneration %}")
    with pytest.raises(MedcurateError, match="marks other tokens than the assistant answers"):
        check_training_template(tiny_tokenizer, ChatTemplate("all", marks_prompt, "file"), assistant_only=True)
    with pytest.raises(MedcurateError, match="does not render a conversation: ") as error:
        check_training_template(tiny_tokenizer, ChatTemplate("broken", "{% for m in messages %}{{ m.content }",
                                                             "file"), assistant_only=False)
    assert "\n" not in str(error.value)
    with pytest.raises(MedcurateError, match="no chat template 'nope'"):
        resolve_chat_template("nope")


@pytest.fixture()
def unmarked_model(train_world, tmp_path):
    """The tiny model with a tokenizer whose own template has no generation marks."""
    from transformers import AutoTokenizer

    folder = tmp_path / "unmarked"
    shutil.copytree(train_world["model"], folder)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    tokenizer.chat_template = NO_MARKS
    tokenizer.save_pretrained(str(folder))
    return folder


def test_chat_template_option_gives_an_assistant_only_mask(train_world, unmarked_model, tmp_path):
    ref, store = train_world["refs"]["conversation"], train_world["store"]
    with pytest.raises(MedcurateError, match=r"chat template unmarked \(the model's own\) has no \{% generation"):
        prepare_run("sft", "clinicalgpt-sft", unmarked_model, ref, tmp_path / "own", store=store, overrides=FAST)
    assert not (tmp_path / "own").exists(), "a refused template leaves no run directory behind"
    run = prepare_run("sft", "clinicalgpt-sft", unmarked_model, ref, tmp_path / "run", store=store, overrides=FAST,
                      chat_template="chatml")
    assert run.lineage["chat_template"] == {"name": "chatml", "origin": "shipped"}
    dataset = run.trainer.train_dataset
    index = next(i for i, row in enumerate(dataset) if len(row["messages"]) == len(CONVERSATIONS[0]))
    batch = run.trainer.data_collator([dataset[index]])
    labels = [token for token in batch["labels"][0].tolist() if token != IGNORE]
    answers = [m["content"] for m in CONVERSATIONS[0] if m["role"] == "assistant"]
    assert run.tokenizer.decode(labels) == "".join(answer + "<|im_end|>" for answer in answers)


def test_cli_names_a_bad_template_in_one_line(train_world, tmp_path):
    broken = tmp_path / "broken.jinja"
    broken.write_text("{% for m in messages %}", encoding="utf-8")
    for value, message in ((str(broken), "chat template broken.jinja (file) does not render"),
                           ("nope", "no chat template 'nope'")):
        result = run_medcurate("train", "sft", "--recipe", "clinicalgpt-sft", "--model", str(train_world["model"]),
                               "--data", train_world["refs"]["conversation"], "--out", str(tmp_path / "run"),
                               "--store", str(train_world["store"]), "--chat-template", value)
        errors = [line for line in result.stderr.splitlines() if line.startswith("medcurate: error:")]
        assert result.returncode == 2 and len(errors) == 1 and message in errors[0]
        assert "Traceback" not in result.stderr
    listed = run_medcurate("train", "templates", check=True).stdout
    assert all(name in listed for name in TRAINED)
