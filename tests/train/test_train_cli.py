"""The commands as a user runs them: model tiny, train sft with a shipped recipe and --set, errors in one line."""
from __future__ import annotations

import pytest

pytest.importorskip("trl", reason="the train extra is not installed")

import json
import subprocess
import sys

from medcurate.errors import MedcurateError
from medcurate.train.recipe import apply_overrides, find_recipe, read_recipe, resolve_recipe
from tests.conftest import REPO, run_medcurate

PAPER_SETTINGS = {
    "clinicalgpt-sft": {"learning_rate": 5e-5, "batch_size": 128, "max_length": 1024, "num_train_epochs": 3,
                        "lora": {"r": 8, "alpha": 32, "dropout": 0.1}},
    "clinicalgpt-reward": {"learning_rate": 2e-5, "stage": "reward"},
    "medgo-sft": {"learning_rate": 2e-5, "num_train_epochs": 2, "lr_scheduler_type": "cosine", "warmup_steps": 0.01,
                  "gradient_accumulation_steps": 4, "lora": {"r": 16, "alpha": 8, "dropout": 0.05}},
    "medgo-dpo": {"stage": "dpo", "lora": {"r": 16, "alpha": 8, "dropout": 0.05}},
    "ivygpt-qlora-sft": {"method": "qlora", "learning_rate": 5e-5, "batch_size": 16, "max_length": 1024,
                         "num_train_epochs": 3, "quantization": {"quant_type": "nf4", "double_quant": True}},
    "iimedgpt-sft": {"bf16": True, "optim": "adamw_torch", "lr_scheduler_type": "cosine", "validation": 0.1,
                     "keep_best": True},
    "iimedgpt-dpo": {"stage": "dpo", "validation": 0.1, "keep_best": True},
}


@pytest.mark.parametrize("name", sorted(PAPER_SETTINGS))
def test_shipped_recipes_carry_the_papers_settings(name):
    data, path = read_recipe(name)
    resolved = resolve_recipe(data, data["stage"], str(path))
    for key, value in PAPER_SETTINGS[name].items():
        if isinstance(value, dict):
            assert {k: resolved[key][k] for k in value} == value, key
        else:
            assert resolved[key] == value, key


def test_overrides_parse_values_and_reach_nested_keys():
    data, path = read_recipe("clinicalgpt-sft")
    changed = apply_overrides(data, ["learning_rate=1e-4", "lora.r=16", "packing=true", "save_strategy=no"])
    resolved = resolve_recipe(changed, "sft", str(path))
    assert resolved["save_strategy"] == "no"
    assert resolved["learning_rate"] == 1e-4 and resolved["lora"]["r"] == 16 and resolved["packing"] is True
    assert data["lora"]["r"] == 8
    with pytest.raises(MedcurateError, match="unknown key 'learning_rat'"):
        resolve_recipe(apply_overrides(data, ["learning_rat=1"]), "sft", str(path))
    with pytest.raises(MedcurateError, match="for stage 'sft', not 'dpo'"):
        resolve_recipe(data, "dpo", str(path))
    with pytest.raises(MedcurateError, match="training recipe not found"):
        find_recipe("no-such-recipe")


def test_cli_module_imports_no_torch():
    code = "import sys, medcurate.train.cli; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_model_tiny_and_train_sft_from_the_command_line(train_world, tmp_path):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    store = str(train_world["store"])
    ref = train_world["refs"]["instruction"]
    model_dir = tmp_path / "tiny"
    run_medcurate("model", "tiny", "--corpus", ref, "--out", str(model_dir), "--store", store, check=True)
    assert json.loads((model_dir / "medcurate_tiny.json").read_text())["corpus"] == ref
    text = "患者男，45岁，血压160/95 mmHg。"
    auto, fast = AutoTokenizer.from_pretrained(model_dir), PreTrainedTokenizerFast.from_pretrained(model_dir)
    assert auto(text)["input_ids"] == fast(text)["input_ids"]
    assert auto.decode(auto(text)["input_ids"]) == text
    prompt = auto.apply_chat_template([{"role": "user", "content": "你好"}], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n"

    run_dir = tmp_path / "run"
    result = run_medcurate("train", "sft", "--recipe", "clinicalgpt-sft", "--model", str(model_dir), "--data", ref,
                           "--out", str(run_dir), "--store", store, "--set", "num_train_epochs=1",
                           "--set", "activation_checkpointing=false", "--set", "learning_rate=1e-4", check=True)
    assert "run directory" in result.stderr
    lineage = json.loads((run_dir / "lineage.json").read_text())
    assert lineage["dataset"]["ref"] == ref
    assert lineage["recipe"]["overrides"] == ["num_train_epochs=1", "activation_checkpointing=false",
                                              "learning_rate=1e-4"]
    assert lineage["recipe"]["resolved"]["learning_rate"] == 1e-4
    assert (run_dir / "metrics.jsonl").read_text().strip()

    refused = run_medcurate("train", "dpo", "--recipe", "medgo-dpo", "--model", str(model_dir), "--data", ref,
                            "--out", str(tmp_path / "refused"), "--store", store)
    assert refused.returncode == 2
    assert "holds 'instruction' rows, which stage 'dpo' cannot train on" in refused.stderr
    assert "Traceback" not in refused.stderr

    merged = run_medcurate("train", "merge", "--adapter", str(run_dir), "--out", str(tmp_path / "merged"), check=True)
    assert (tmp_path / "merged" / "config.json").is_file(), merged.stderr
