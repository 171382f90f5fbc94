"""A tiny local chat model for demos and tests: nothing can be downloaded from a hub here.

The model is a randomly initialised Llama-architecture network (hidden 64, 2 layers) and a
byte-level BPE tokenizer trained on the corpus by ``tokenizers``, with ChatML special tokens
and the shipped ``chatml`` template (templates/chat/chatml.jinja), which marks assistant turns
with ``{% generation %}`` so TRL can compute the loss on answer tokens only. Llama rather than Qwen2: with ``model_type=qwen2``
``AutoTokenizer`` swaps in Qwen2's own pre-tokenizer and silently changes the ids.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcurate.errors import MedcurateError
from medcurate.train.chat_templates import resolve_chat_template

if TYPE_CHECKING:
    from medcurate.store import Version

IM_START, IM_END, END_OF_TEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
SPECIAL_TOKENS = (END_OF_TEXT, IM_START, IM_END)

_TEXT_FIELDS = ("instruction", "query", "answer", "prompt", "chosen", "rejected", "input", "diagnosis")


def row_texts(row: dict[str, Any]) -> Iterable[str]:
    """Every piece of text in a row of any kind (messages included), for tokenizer training."""
    for name in _TEXT_FIELDS:
        value = row.get(name)
        if isinstance(value, str) and value:
            yield value
        elif isinstance(value, list):
            yield from (m["content"] for m in value if isinstance(m, dict) and isinstance(m.get("content"), str))
    messages = row.get("messages")
    if isinstance(messages, str):
        try:
            messages = json.loads(messages)
        except ValueError:
            messages = None
    if isinstance(messages, list):
        yield from (m["content"] for m in messages if isinstance(m, dict) and isinstance(m.get("content"), str))


def corpus_texts(ref: str | Version, store: str | Path | None = None) -> list[str]:
    """All texts of a published dataset version (every split)."""
    from medcurate.store import load_rows

    return [text for rows in load_rows(ref, store).values() for row in rows for text in row_texts(row)]


def train_tokenizer(texts: list[str], vocab_size: int = 2000):
    """A byte-level BPE tokenizer with ChatML special tokens, as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if not any(text.strip() for text in texts):
        raise MedcurateError("the corpus holds no text to train a tokenizer on")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    # the chat template's role names are in every sample: let them merge into tokens too
    backend.train_from_iterator([*texts, "system\nuser\nassistant\n"], trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=None, eos_token=IM_END,
                                        pad_token=END_OF_TEXT, unk_token=None,
                                        additional_special_tokens=[IM_START])
    tokenizer.chat_template = resolve_chat_template("chatml").text
    tokenizer.model_max_length = 2048
    return tokenizer


def tiny_llama_config(tokenizer, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4,
                      max_positions: int = 2048):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                       num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_heads,
                       max_position_embeddings=max_positions, tie_word_embeddings=True,
                       bos_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)


def build_tiny_model(texts: list[str], out_dir: str | Path, *, vocab_size: int = 2000, hidden_size: int = 64,
                     num_layers: int = 2, seed: int = 0) -> Path:
    """Train a tokenizer on ``texts``, build a random tiny Llama model and save both as an HF folder.

    The folder loads with ``AutoTokenizer`` / ``AutoModelForCausalLM.from_pretrained(out_dir)``.
    """
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    out = Path(out_dir)
    tokenizer = train_tokenizer(list(texts), vocab_size=vocab_size)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_llama_config(tokenizer, hidden_size=hidden_size, num_layers=num_layers))
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id, do_sample=True,
                                               max_new_tokens=64)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_model_from_dataset(ref: str, out_dir: str | Path, store: str | Path | None = None,
                                  **options: Any) -> Path:
    """``build_tiny_model`` on the texts of a published dataset version; records the corpus used."""
    from medcurate.store import resolve

    version = resolve(ref, store)
    out = build_tiny_model(corpus_texts(version, store), out_dir, **options)
    (out / "medcurate_tiny.json").write_text(json.dumps(
        {"corpus": version.ref, "corpus_manifest_sha256": version.manifest_sha256(), **options},
        indent=2, sort_keys=True) + "\n", encoding="utf-8")
    from medcurate.lineage import files_sha256, record, version_link, write_lineage

    write_lineage(out, record("model", [version_link(version, store)], built_by="medcurate model tiny",
                              options=options, weights_sha256=files_sha256(out)))
    return out
