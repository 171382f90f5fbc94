"""Local-model work for evaluation (the only evaluation module that imports torch): batched greedy
generation, and batched log-likelihood of each multiple-choice option after the question."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from medcurate.evaluate.items import LETTERS, EvalItem


class LocalGenerator:
    """A model and tokenizer loaded once; ``generate`` and ``option_log_likelihoods`` work in batches."""

    def __init__(self, model_path: str, adapter: str | None, settings: dict[str, Any]):
        import torch

        from medcurate.train.evaluate import load_model_for_eval

        torch.manual_seed(settings["seed"])
        self.model, self.tokenizer = load_model_for_eval(model_path, adapter)
        self.device = settings.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        self.settings = settings
        self.tokens_generated = 0
        self.tokens_scored = 0

    def _prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        encoded = self.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                                     return_dict=True)
        ids = list(encoded["input_ids"])
        limit = self.settings["max_prompt_tokens"]
        return ids[-limit:] if len(ids) > limit else ids

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else self.tokenizer.eos_token_id

    def generate(self, items: list[EvalItem]) -> list[str]:
        """Greedy answers for one batch, prompts left-padded so every answer starts at the same column."""
        import torch

        prompts = [self._prompt_ids(item.messages) for item in items]
        width = max(len(ids) for ids in prompts)
        pad = self._pad_id()
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in prompts], device=self.device)
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts], device=self.device)
        with torch.no_grad():
            output = self.model.generate(input_ids=input_ids, attention_mask=attention, do_sample=False,
                                         max_new_tokens=self.settings["max_new_tokens"], pad_token_id=pad)
        answers = []
        eos = self.tokenizer.eos_token_id
        for row in output[:, width:].tolist():
            if eos in row:
                row = row[:row.index(eos)]
            self.tokens_generated += len(row)
            answers.append(self.tokenizer.decode(row, skip_special_tokens=True).strip())
        return answers

    def _option_sequences(self, item: EvalItem) -> Iterator[tuple[list[int], int]]:
        prompt = self._prompt_ids(item.messages)
        for letter, text in zip(LETTERS, item.gold["options"], strict=False):
            answer = self.tokenizer.encode(f"{letter}. {text}", add_special_tokens=False)
            yield prompt + answer, len(prompt)

    def option_log_likelihoods(self, items: list[EvalItem]) -> list[list[float]]:
        """Per item, the summed log-probability of each option (``X. text``) as the answer; one padded batch."""
        import torch

        sequences = [seq for item in items for seq in self._option_sequences(item)]
        width = max(len(ids) for ids, _ in sequences)
        pad = self._pad_id()
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in sequences], device=self.device)
        attention = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in sequences],
                                 device=self.device)
        with torch.no_grad():
            logits = self.model(input_ids=input_ids, attention_mask=attention).logits[:, :-1].float()
        picked = torch.log_softmax(logits, dim=-1).gather(2, input_ids[:, 1:, None])[:, :, 0]
        totals = []
        for row, (ids, prompt_length) in enumerate(sequences):
            totals.append(float(picked[row, prompt_length - 1:len(ids) - 1].sum()))
            self.tokens_scored += len(ids) - prompt_length
        result, start = [], 0
        for item in items:
            count = len(item.gold["options"])
            result.append(totals[start:start + count])
            start += count
        return result
