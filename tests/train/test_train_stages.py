"""SFT (LoRA, QLoRA), DPO and reward training run on the tiny model through the real store."""
from __future__ import annotations

import pytest

pytest.importorskip("trl", reason="the train extra is not installed")

import json
import math

from medcurate.errors import MedcurateError
from medcurate.train.runner import merge_adapter, run_training
from tests.train.train_helpers import FAST, losses, repeated_batch


def _falls(values: list[float]) -> None:
    assert values and all(math.isfinite(v) for v in values), values
    assert values[-1] < values[0], f"loss did not fall on a repeated batch: {values}"


def _logits(model, tokenizer):
    import torch

    batch = tokenizer("高血压吃什么药？", return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits


def test_sft_lora_trains_saves_loads_and_merges(train_world, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref = train_world["refs"]["instruction"]
    result = run_training("sft", "clinicalgpt-sft", train_world["model"], ref, tmp_path / "run",
                          store=train_world["store"], overrides=repeated_batch(4, steps=8))
    _falls(losses(result.run_dir))

    lineage = json.loads((result.run_dir / "lineage.json").read_text(encoding="utf-8"))
    assert lineage["dataset"]["ref"] == ref and lineage["dataset"]["kind"] == "instruction"
    assert len(lineage["dataset"]["manifest_sha256"]) == 64
    assert lineage["base_model"]["path"] == str(train_world["model"].resolve())
    assert len(lineage["base_model"]["config_sha256"]) == 64 and len(lineage["chat_template_sha256"]) == 64
    assert lineage["recipe"]["resolved"]["lora"] == {"r": 8, "alpha": 32, "dropout": 0.1,
                                                     "target_modules": "all-linear"}
    assert lineage["recipe"]["resolved"]["learning_rate"] == 5e-3
    assert lineage["status"] == "finished" and not lineage["base_model"]["loaded_in_4bit"]
    assert ref in (result.run_dir / "README.md").read_text(encoding="utf-8")
    assert "learning_rate: 0.005" in (result.run_dir / "recipe.yaml").read_text(encoding="utf-8")

    tokenizer = AutoTokenizer.from_pretrained(result.output_dir)
    base = AutoModelForCausalLM.from_pretrained(train_world["model"])
    before = _logits(base, tokenizer)
    adapted = PeftModel.from_pretrained(base, result.output_dir)
    with_adapter = _logits(adapted, tokenizer)
    assert not torch.allclose(before, with_adapter), "the saved adapter changes nothing"
    merged_dir = merge_adapter(result.run_dir, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    assert torch.allclose(_logits(merged, tokenizer), with_adapter, atol=1e-4)


def test_sft_qlora_on_conversations_loads_4bit_and_learns(train_world, tmp_path):
    pytest.importorskip("bitsandbytes")
    ref = train_world["refs"]["conversation"]
    result = run_training("sft", "ivygpt-qlora-sft", train_world["model"], ref, tmp_path / "run",
                          store=train_world["store"], overrides=repeated_batch(2, steps=8, lr=1e-2))
    assert result.lineage["base_model"]["loaded_in_4bit"] is True
    assert result.lineage["recipe"]["resolved"]["method"] == "qlora"
    _falls(losses(result.run_dir))
    assert (result.output_dir / "adapter_config.json").is_file()
    merged = merge_adapter(result.output_dir, tmp_path / "merged")
    assert (merged / "model.safetensors").is_file()


def test_continue_training_an_adapter_on_ehr_rows(train_world, tmp_path):
    first = run_training("sft", "medgo-sft", train_world["model"], train_world["refs"]["ehr"], tmp_path / "one",
                         store=train_world["store"], overrides=[*FAST, "num_train_epochs=1"])
    second = run_training("sft", "medgo-sft", train_world["model"], train_world["refs"]["ehr"], tmp_path / "two",
                          store=train_world["store"], adapter=first.output_dir,
                          overrides=[*FAST, "num_train_epochs=1"])
    assert second.lineage["init_adapter"] == str(first.output_dir.resolve())
    assert (second.output_dir / "adapter_model.safetensors").is_file()


def test_dpo_memory_light_learns_on_a_repeated_batch(train_world, tmp_path):
    ref = train_world["refs"]["preference"]
    result = run_training("dpo", "medgo-dpo", train_world["model"], ref, tmp_path / "run",
                          store=train_world["store"], overrides=repeated_batch(4, steps=6, lr=1e-2))
    assert result.lineage["recipe"]["resolved"]["dpo_reference"] == "adapter_disabled"
    _falls(losses(result.run_dir))
    assert result.lineage["dataset"]["ref"] == ref


def test_dpo_with_precomputed_reference_log_probs(train_world, tmp_path):
    result = run_training("dpo", "iimedgpt-dpo", train_world["model"], train_world["refs"]["preference"],
                          tmp_path / "run", store=train_world["store"],
                          overrides=[*repeated_batch(4, steps=2), "dpo_reference=precomputed"])
    assert all(math.isfinite(v) for v in losses(result.run_dir))
    assert "dpo_reference: precomputed" in (result.run_dir / "recipe.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_reward_model_learns_and_merges(train_world, tmp_path, method):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if method == "qlora":
        pytest.importorskip("bitsandbytes")
    result = run_training("reward", "clinicalgpt-reward", train_world["model"], train_world["refs"]["preference"],
                          tmp_path / "run", store=train_world["store"],
                          overrides=[*repeated_batch(4, steps=6, lr=1e-2), f"method={method}"])
    assert result.lineage["base_model"]["loaded_in_4bit"] is (method == "qlora")
    _falls(losses(result.run_dir))
    merged = merge_adapter(result.run_dir, tmp_path / "merged")
    model = AutoModelForSequenceClassification.from_pretrained(merged)
    tokenizer = AutoTokenizer.from_pretrained(merged)
    with torch.no_grad():
        score = model(**tokenizer("高血压吃什么药？", return_tensors="pt")).logits
    assert score.shape == (1, 1) and torch.isfinite(score).all()


def test_keep_best_checkpoint_by_validation_loss(train_world, tmp_path):
    result = run_training("sft", "iimedgpt-sft", train_world["model"], train_world["refs"]["instruction"],
                          tmp_path / "run", store=train_world["store"],
                          overrides=["activation_checkpointing=false", "bf16=false", "num_train_epochs=2",
                                     "per_device_train_batch_size=2", "validation=0.25"])
    assert result.lineage["dataset"]["eval_rows"] == 1
    assert result.lineage["best_checkpoint"] and "checkpoint-" in result.lineage["best_checkpoint"]
    assert "eval_loss" in result.lineage["final_metrics"]


@pytest.mark.parametrize("stage, kind", [("sft", "preference"), ("dpo", "instruction"), ("reward", "conversation")])
def test_a_row_kind_that_does_not_fit_the_stage_is_refused(train_world, tmp_path, stage, kind):
    recipe = {"sft": "clinicalgpt-sft", "dpo": "medgo-dpo", "reward": "clinicalgpt-reward"}[stage]
    with pytest.raises(MedcurateError, match=f"holds '{kind}' rows, which stage '{stage}' cannot train on"):
        run_training(stage, recipe, train_world["model"], train_world["refs"][kind], tmp_path / "run",
                     store=train_world["store"])
    assert not (tmp_path / "run").exists()
