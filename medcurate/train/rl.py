"""The RL stage: a LoRA policy optimised against medcurate's reward model, with a KL penalty toward SFT.

ClinicalGPT (section 2.4) optimises with PPO and a reward R(x, y) = r(x, y) - beta * log(pi_RL / pi_SFT);
IvyGPT (section 2.2) scores the top-k answers to one question with its reward model under a constraint
toward the SFT model. TRL 1.16 ships no PPO trainer, so medcurate uses TRL's RLOO trainer (REINFORCE
leave-one-out): it samples k answers per prompt (IvyGPT's top-k), puts the same sequence-level KL
penalty into the reward as ClinicalGPT's formula, and needs no value network. See docs/training.md.

The policy is the base model with the SFT adapter loaded trainable; TRL keeps a frozen copy of that
adapter as the reference, so the KL is measured against the SFT policy without a second copy of the
model. The reward model is medcurate's own `train reward` run, merged into its base in memory.
"""
from __future__ import annotations

import datetime as _dt
import json
import uuid
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError
from medcurate.lineage import (
    ADAPTER_DIR,
    LINEAGE_FILE,
    config_sha256,
    model_link,
    read_lineage,
    record,
    resolve_adapter,
    version_link,
    write_lineage,
)
from medcurate.lineage import files_sha256 as weight_files_sha256
from medcurate.train.data import load_prompt_data
from medcurate.train.runner import (
    METRICS_FILE,
    MetricsWriter,
    RunResult,
    _device_settings,
    _trainable_to_float32,
    build_trl_config,
    dataset_summary,
    is_main_process,
    load_tokenizer,
    prepare_recipe,
    quantization_config,
    resolved_without_private,
    run_environment,
    sha256_text,
)

REFERENCE = "sft_adapter_frozen_copy"
"""How the KL reference is held: TRL copies the SFT adapter into a frozen "ref" adapter."""


def _run_lineage(adapter_dir: Path) -> dict[str, Any] | None:
    """The lineage.json of the run an adapter folder belongs to, when it has one."""
    run_dir = resolve_adapter(adapter_dir).run_dir
    return read_lineage(run_dir) if run_dir else None


def _adapter_base(adapter_dir: Path) -> Path:
    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base or not (Path(base) / "config.json").is_file():
        raise MedcurateError("the adapter's base model folder is missing (adapter_config.json "
                             "base_model_name_or_path)", file=str(adapter_dir))
    return Path(base)


def check_reward_run(reward: str | Path) -> tuple[Path, dict[str, Any] | None]:
    """The reward run's adapter folder, refusing anything that is not a reward model."""
    adapter_dir = resolve_adapter(reward).adapter_dir
    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    lineage = _run_lineage(adapter_dir)
    stage = (lineage or {}).get("stage")
    if config.get("task_type") != "SEQ_CLS" or (stage is not None and stage != "reward"):
        made_by = f"a {stage} run" if stage else f"a {config.get('task_type') or 'non-classifier'} adapter"
        raise MedcurateError(f"--reward must be a reward model (medcurate train reward), this is {made_by}",
                             file=str(reward))
    return adapter_dir, lineage


def check_policy_adapter(adapter: str | Path, model_path: Path) -> tuple[Path, dict[str, Any] | None]:
    """The SFT adapter folder, refusing one trained on another base model (config hash mismatch)."""
    adapter_dir = resolve_adapter(adapter).adapter_dir
    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    if config.get("task_type") == "SEQ_CLS":
        raise MedcurateError("--adapter is a reward-model adapter; give the SFT run", file=str(adapter))
    lineage = _run_lineage(adapter_dir)
    trained_on = ((lineage or {}).get("base_model") or {}).get("config_sha256")
    if trained_on is None:
        trained_on = config_sha256(_adapter_base(adapter_dir))
    if trained_on != config_sha256(model_path):
        raise MedcurateError("the adapter was trained on another base model (config sha256 differs from --model)",
                             file=str(adapter))
    return adapter_dir, lineage


def load_reward_model(adapter_dir: Path, dtype):
    """The reward model as one sequence classifier: base + its LoRA merged in memory (QLoRA runs are
    merged into the full-precision base: scoring needs no gradients)."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = AutoModelForSequenceClassification.from_pretrained(str(_adapter_base(adapter_dir)), num_labels=1,
                                                              dtype=dtype)
    model = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer


def _policy(model_path: Path, adapter_dir: Path, config, quantization):
    """Base + SFT adapter, trainable; TRL adds the frozen "ref" copy of the adapter itself."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    kwargs = dict(config.model_init_kwargs or {})
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    base = AutoModelForCausalLM.from_pretrained(str(model_path), **kwargs)
    if quantization is not None:
        from peft import prepare_model_for_kbit_training

        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
    return PeftModel.from_pretrained(base, str(adapter_dir), is_trainable=True)


def _linked_run(adapter_dir: Path, lineage: dict[str, Any] | None) -> dict[str, Any]:
    link: dict[str, Any] = {"adapter": str(adapter_dir.resolve()), "adapter_sha256": weight_files_sha256(adapter_dir)}
    if lineage:
        link.update(run=str((adapter_dir.parent if adapter_dir.name == ADAPTER_DIR else adapter_dir).resolve()),
                    stage=lineage.get("stage"), dataset=lineage.get("dataset"),
                    base_model=lineage.get("base_model"))
    return link


def run_rl(recipe: str, model_path: str | Path, adapter: str | Path, reward: str | Path, data: str,
           out: str | Path, store: str | Path | None = None, overrides: list[str] | None = None) -> RunResult:
    """Online RL on the prompts of a version; every input is checked before any model loads."""
    import torch
    from trl import RLOOTrainer

    from medcurate.train.card import render_model_card

    resolved, recipe_path = prepare_recipe("rl", recipe, overrides)
    if resolved["method"] == "full":
        raise MedcurateError("the RL stage trains the SFT LoRA adapter further: method must be lora or qlora",
                             file=str(recipe_path), field="method")
    if float(resolved.get("beta", 0)) <= 0:
        raise MedcurateError("beta (the KL coefficient toward the SFT policy) must be > 0", file=str(recipe_path),
                             field="beta")
    model_path = Path(model_path).resolve()
    reward_dir, reward_lineage = check_reward_run(reward)
    adapter_dir, sft_lineage = check_policy_adapter(adapter, model_path)
    seed = int(resolved.get("seed", 42))
    version, prompts = load_prompt_data(data, store, seed=seed, system_prompt=resolved.get("system_prompt"))
    resolved["_kind"] = version.manifest["kind"]
    out = Path(out)
    if is_main_process() and (out / LINEAGE_FILE).exists():
        raise MedcurateError("run directory already holds a run; choose a new --out", file=str(out))
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = load_tokenizer(adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else model_path)
    tokenizer.padding_side = "left"
    device = _device_settings(resolved)
    config = build_trl_config(resolved, out, False, device)
    quantization = quantization_config(resolved, device)
    dtype = torch.bfloat16 if device["compute_dtype"] == "bfloat16" else torch.float32
    reward_model, reward_tokenizer = load_reward_model(reward_dir, dtype)
    policy = _policy(model_path, adapter_dir, config, quantization)
    recipe_as_run = resolved_without_private(resolved)
    inputs = [version_link(version, store), model_link(model_path), resolve_adapter(adapter_dir).link(),
              resolve_adapter(reward_dir).link()]
    lineage: dict[str, Any] = {
        **record("training_run", inputs, run_id=f"rl-{uuid.uuid4().hex[:12]}"),
        "stage": "rl",
        "algorithm": "rloo",
        "reference": REFERENCE,
        "dataset": dataset_summary(version, len(prompts), 0),
        "sft_run": _linked_run(adapter_dir, sft_lineage),
        "reward_run": _linked_run(reward_dir, reward_lineage),
        "recipe": {"source": str(recipe_path), "overrides": list(overrides or []), "resolved": recipe_as_run},
        "base_model": {"path": str(model_path), "config_sha256": config_sha256(model_path)},
        "chat_template_sha256": sha256_text(tokenizer.chat_template),
        "init_adapter": str(adapter_dir.resolve()),
        **run_environment(config, device),
    }
    if is_main_process():
        import yaml

        (out / "recipe.yaml").write_text(yaml.safe_dump(recipe_as_run, allow_unicode=True, sort_keys=True),
                                         encoding="utf-8")
        write_lineage(out, lineage)
    trainer = RLOOTrainer(model=policy, reward_funcs=reward_model, args=config, train_dataset=prompts,
                          processing_class=tokenizer, reward_processing_classes=reward_tokenizer,
                          callbacks=[MetricsWriter.create(out / METRICS_FILE)])
    lineage["base_model"]["loaded_in_4bit"] = any(type(m).__name__ == "Linear4bit" for m in policy.modules())
    if lineage["base_model"]["loaded_in_4bit"] and device["compute_dtype"] == "float32":
        _trainable_to_float32(policy)
    train_output = trainer.train()
    output_dir = out / ADAPTER_DIR
    policy.save_pretrained(str(output_dir), selected_adapters=["default"])
    if not is_main_process():
        return RunResult(out, output_dir, lineage)
    tokenizer.padding_side = "right"
    tokenizer.save_pretrained(str(output_dir))
    lineage.update(status="finished", output=output_dir.name, output_files=weight_files_sha256(output_dir),
                   final_metrics=dict(train_output.metrics),
                   finished_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    write_lineage(out, lineage)
    (out / "README.md").write_text(render_model_card(lineage), encoding="utf-8")
    return RunResult(out, output_dir, lineage)
