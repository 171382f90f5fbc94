"""Chat templates for training: the shipped ones (templates/chat/*.jinja) or a file, checked
before any trainer starts.

A template is training-compatible when it renders a multi-turn conversation, every special
marker it writes (``<|im_start|>``, ``<reserved_106>`` …) is one token of the model's
tokenizer, and, when the loss is on assistant turns only, ``{% generation %}`` marks exactly
the assistant answers. Anything else is a one-line error naming the template, not a
traceback from inside the trainer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError
from medcurate.resources import data_folder

# other names people use for a shipped template's family
ALIASES = {"qwen": "chatml", "qwen2": "chatml", "yi": "chatml", "llama3": "llama-3", "chatglm": "chatglm3",
           "baichuan": "baichuan2"}
# what a template writes as a control marker (literal special tokens)
_MARKER = re.compile(r"<\|[^<>|\s]+\|>|<reserved_\d+>|\[gMASK\]")
SAMPLE_CONVERSATION = [
    {"role": "system", "content": "你是一名医生。"},
    {"role": "user", "content": "头痛三天，伴发热。"},
    {"role": "assistant", "content": "建议测量体温并就诊神经内科。"},
    {"role": "user", "content": "需要做什么检查？"},
    {"role": "assistant", "content": "血常规和头颅CT。"},
]


@dataclass(frozen=True)
class ChatTemplate:
    name: str
    text: str
    origin: str          # "shipped", "file" or "tokenizer"

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "origin": self.origin}


def shipped_templates() -> dict[str, Path]:
    return {path.stem: path for path in sorted((data_folder("templates") / "chat").glob("*.jinja"))}


def resolve_chat_template(value: str) -> ChatTemplate:
    """``NAME`` of a shipped template (or an alias such as ``qwen``) or a path to a Jinja file."""
    shipped = shipped_templates()
    name = ALIASES.get(value.lower(), value.lower())
    if name in shipped:
        return ChatTemplate(name, shipped[name].read_text(encoding="utf-8"), "shipped")
    path = Path(value).expanduser()
    if path.is_file():
        try:
            return ChatTemplate(path.name, path.read_text(encoding="utf-8"), "file")
        except UnicodeDecodeError:
            raise MedcurateError("chat template file is not UTF-8 text", file=str(path)) from None
    raise MedcurateError(f"no chat template {value!r}: give a file or one of {', '.join(shipped)} "
                         f"(aliases: {', '.join(sorted(ALIASES))})", field="--chat-template")


def check_training_template(tokenizer: Any, template: ChatTemplate, assistant_only: bool) -> None:
    """Raise a one-line MedcurateError unless ``tokenizer`` with ``template`` can train."""
    where = f"chat template {template.name} ({template.origin})"
    try:
        rendered = tokenizer.apply_chat_template(SAMPLE_CONVERSATION, tokenize=False, chat_template=template.text)
        tokenizer.apply_chat_template(SAMPLE_CONVERSATION[:2], tokenize=False, add_generation_prompt=True,
                                      chat_template=template.text)
    except Exception as exc:  # jinja2 syntax/undefined errors and whatever the template raises itself
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MedcurateError(f"{where} does not render a conversation: {detail}", field="chat_template") from None
    vocabulary = tokenizer.get_vocab()
    unknown = sorted({marker for marker in _MARKER.findall(rendered) if marker not in vocabulary})
    if unknown:
        raise MedcurateError(f"{where} writes {', '.join(unknown)}, which the model's tokenizer does not have as "
                             f"tokens: use the template of the model's family", field="chat_template")
    if assistant_only:
        _check_generation_marks(tokenizer, template, where)


def _check_generation_marks(tokenizer: Any, template: ChatTemplate, where: str) -> None:
    """Assistant-only loss trains on the tokens inside ``{% generation %}``: they must be the answers."""
    encoded = tokenizer.apply_chat_template(SAMPLE_CONVERSATION, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True, chat_template=template.text)
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    trained = tokenizer.decode([token for token, keep in zip(ids, mask, strict=True) if keep])
    if not trained:
        raise MedcurateError(f"{where} has no {{% generation %}} … {{% endgeneration %}} around assistant turns, "
                             f"so the loss cannot be on answers only", field="chat_template")
    answers = [m["content"] for m in SAMPLE_CONVERSATION if m["role"] == "assistant"]
    prompts = [m["content"] for m in SAMPLE_CONVERSATION if m["role"] != "assistant"]
    if any(answer not in trained for answer in answers) or any(text in trained for text in prompts):
        raise MedcurateError(f"{where} marks other tokens than the assistant answers with {{% generation %}}",
                             field="chat_template")
