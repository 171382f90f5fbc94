"""One entry point for every stage: resolve the recipe, check the data, hand over to TRL, record lineage.

The trainers load the model themselves (``model`` given as a path, with
``model_init_kwargs``, ``quantization_config`` and ``peft_config``), as TRL's own scripts do;
medcurate adds the dataset version, the recipe, the run directory and its lineage.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from medcurate.errors import MedcurateError
from medcurate.lineage import (
    ADAPTER_DIR,
    LINEAGE_FILE,
    MODEL_DIR,
    files_sha256,
    model_link,
    read_lineage,
    record,
    resolve_adapter,
    version_link,
    write_lineage,
)
from medcurate.train.chat_templates import ChatTemplate, check_training_template, resolve_chat_template
from medcurate.train.data import load_training_data
from medcurate.train.quiet import silence_torch_warnings
from medcurate.train.recipe import apply_overrides, read_recipe, resolve_recipe, trl_arguments, trl_config_class

METRICS_FILE = "metrics.jsonl"
HELD_OUT_FILE = "heldout.jsonl"


@dataclass
class RunResult:
    run_dir: Path
    output_dir: Path
    lineage: dict[str, Any]


def sha256_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prepare_recipe(stage: str, recipe: str, overrides: list[str] | None = None) -> tuple[dict[str, Any], Path]:
    data, path = read_recipe(recipe)
    data = apply_overrides(data, overrides or [])
    return resolve_recipe(data, stage, origin=str(path)), path


def _device_settings(recipe: dict[str, Any]) -> dict[str, Any]:
    """bf16 where CUDA has it, fp32 on CPU (TRL configs default to bf16, which fails on CPU)."""
    import torch

    if torch.cuda.is_available():
        wants_bf16 = recipe.get("bf16")
        bf16 = torch.cuda.is_bf16_supported() if wants_bf16 is None else bool(wants_bf16)
        return {"bf16": bf16, "device": torch.cuda.get_device_name(0), "compute_dtype": "bfloat16" if bf16 else "float32"}
    return {"bf16": False, "fp16": False, "tf32": None, "use_cpu": True, "device": "cpu", "compute_dtype": "float32"}


def build_trl_config(recipe: dict[str, Any], out: Path, has_eval: bool, device: dict[str, Any]):
    """The stage's TRL config from the recipe plus run-dir, logging, evaluation and device settings."""
    import torch

    arguments = trl_arguments(recipe)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    per_device = int(arguments.get("per_device_train_batch_size", 8))
    arguments["per_device_train_batch_size"] = per_device
    if recipe.get("batch_size") and "gradient_accumulation_steps" not in arguments:
        arguments["gradient_accumulation_steps"] = max(1, int(recipe["batch_size"]) // (per_device * world_size))
    arguments.setdefault("logging_steps", 1)
    arguments.setdefault("report_to", "none")
    arguments.setdefault("save_strategy", "no")
    arguments.setdefault("disable_tqdm", True)
    if has_eval:
        arguments.setdefault("eval_strategy", "epoch")
    if recipe["keep_best"]:
        if not has_eval:
            raise MedcurateError("keep_best needs validation rows: set validation: 0.1 or use a dataset with a "
                                 "validation split", field="keep_best")
        arguments["save_strategy"] = arguments["eval_strategy"] if arguments["save_strategy"] == "no" else arguments["save_strategy"]
        arguments.update(load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False)
        arguments.setdefault("save_total_limit", 2)
    for key in ("bf16", "fp16", "tf32", "use_cpu"):
        if key in device:
            arguments[key] = device[key]
    dtype = torch.bfloat16 if device["compute_dtype"] == "bfloat16" else torch.float32
    arguments["model_init_kwargs"] = {**(arguments.get("model_init_kwargs") or {}), "dtype": dtype}
    if recipe["stage"] == "dpo" and recipe["dpo_reference"] == "precomputed":
        arguments["precompute_ref_log_probs"] = True
    if recipe["stage"] == "sft" and "assistant_only_loss" not in arguments:
        arguments["assistant_only_loss"] = recipe.get("_kind") == "conversation"
    return trl_config_class(recipe["stage"])(output_dir=str(out / "checkpoints"), **arguments)


def quantization_config(recipe: dict[str, Any], device: dict[str, Any]):
    """4-bit NF4 with double quantisation; bf16 compute on CUDA, fp32 on CPU."""
    if recipe["method"] != "qlora":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    quant = recipe["quantization"]
    compute = quant["compute_dtype"]
    if compute == "auto":
        compute = device["compute_dtype"]
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant["quant_type"],
                              bnb_4bit_use_double_quant=bool(quant["double_quant"]),
                              bnb_4bit_compute_dtype=getattr(torch, compute))


def lora_config(recipe: dict[str, Any]):
    if recipe["method"] == "full":
        return None
    from peft import LoraConfig

    lora = recipe["lora"]
    return LoraConfig(r=int(lora["r"]), lora_alpha=int(lora["alpha"]), lora_dropout=float(lora["dropout"]),
                      target_modules=lora["target_modules"], bias=lora.get("bias", "none"),
                      modules_to_save=lora.get("modules_to_save"),
                      task_type="SEQ_CLS" if recipe["stage"] == "reward" else "CAUSAL_LM")


def load_tokenizer(model_path: str | Path, chat_template: ChatTemplate | None = None):
    """The base model's tokenizer, with ``chat_template`` in place of its own when given."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    if chat_template is not None:
        tokenizer.chat_template = chat_template.text
    elif not tokenizer.chat_template:
        raise MedcurateError("the tokenizer has no chat_template: give --chat-template NAME|FILE "
                             "(`medcurate train templates` lists the shipped ones)", file=str(model_path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _model_with_adapter(model_path: str, adapter: str, stage: str, config, quantization):
    """The base model with an existing adapter made trainable (continue training it)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    kwargs = dict(config.model_init_kwargs or {})
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    if stage == "reward":
        base = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=1, **kwargs)
    else:
        base = AutoModelForCausalLM.from_pretrained(model_path, **kwargs)
    if quantization is not None:
        from peft import prepare_model_for_kbit_training

        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=bool(config.activation_checkpointing or config.gradient_checkpointing))
    return PeftModel.from_pretrained(base, adapter, is_trainable=True)


class MetricsWriter:
    """A TrainerCallback (built lazily) appending every logged metric set to metrics.jsonl."""

    @staticmethod
    def create(path: Path):
        from transformers import TrainerCallback

        class _Writer(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and state.is_world_process_zero:
                    entry = {"step": state.global_step, "epoch": state.epoch, **logs}
                    with open(path, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(entry, sort_keys=True, default=float) + "\n")

        return _Writer()


@dataclass
class PreparedRun:
    """Everything set up for one stage, before ``trainer.train()``: tests and benchmarks inspect it."""

    trainer: Any
    tokenizer: Any
    lineage: dict[str, Any]
    run_dir: Path
    output_dir: Path


def dataset_summary(version, train_rows: int, eval_rows: int) -> dict[str, Any]:
    """The dataset part of a run's lineage: which version, its manifest hash, rows used."""
    return {"ref": version.ref, "name": version.name, "version": version.version, "kind": version.manifest["kind"],
            "manifest_sha256": version.manifest_sha256(), "train_rows": train_rows, "eval_rows": eval_rows}


def run_environment(config, device: dict[str, Any]) -> dict[str, Any]:
    """Where and with what a run trained: device, precision, effective batch, library versions."""
    import peft
    import torch
    import transformers
    import trl

    return {"device": device["device"], "precision": device["compute_dtype"],
            "effective_batch_size": config.per_device_train_batch_size * config.gradient_accumulation_steps
            * int(os.environ.get("WORLD_SIZE", "1")),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "trl": trl.__version__, "peft": peft.__version__},
            "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "status": "running"}


def prepare_run(stage: str, recipe: str, model_path: str | Path, data: str, out: str | Path,
                store: str | Path | None = None, adapter: str | Path | None = None,
                overrides: list[str] | None = None, chat_template: str | None = None) -> PreparedRun:
    """Resolve the recipe, load and check the data and the chat template (``chat_template``: a shipped
    template's name or a Jinja file, default the tokenizer's own), build the TRL trainer, write the
    starting lineage."""
    silence_torch_warnings()

    resolved, recipe_path = prepare_recipe(stage, recipe, overrides)
    model_path = Path(model_path).resolve()
    base = model_link(model_path)
    init_adapter = resolve_adapter(adapter) if adapter is not None else None
    adapter = init_adapter.adapter_dir if init_adapter else None
    seed = int(resolved.get("seed", 42))
    version, train_data, eval_data = load_training_data(data, stage, store, validation=resolved["validation"],
                                                        seed=seed, system_prompt=resolved.get("system_prompt"))
    resolved["_kind"] = version.manifest["kind"]
    template = resolve_chat_template(chat_template) if chat_template else None
    tokenizer = load_tokenizer(model_path, template)
    template = template or ChatTemplate(model_path.name, tokenizer.get_chat_template(), "the model's own")
    device = _device_settings(resolved)
    out = Path(out)
    main_process = is_main_process()
    if main_process and (out / LINEAGE_FILE).exists():
        raise MedcurateError("run directory already holds a run; choose a new --out", file=str(out))
    config = build_trl_config(resolved, out, eval_data is not None, device)
    check_training_template(tokenizer, template, assistant_only=bool(getattr(config, "assistant_only_loss", False)))
    out.mkdir(parents=True, exist_ok=True)
    quantization = quantization_config(resolved, device)
    peft_config = lora_config(resolved)
    recipe_as_run = resolved_without_private(resolved)

    inputs = [version_link(version, store), base] + ([init_adapter.link()] if init_adapter else [])
    lineage: dict[str, Any] = {
        **record("training_run", inputs, run_id=f"{stage}-{uuid.uuid4().hex[:12]}"),
        "stage": stage,
        "dataset": dataset_summary(version, len(train_data), len(eval_data) if eval_data is not None else 0),
        "recipe": {"source": str(recipe_path), "overrides": list(overrides or []), "resolved": recipe_as_run},
        "base_model": {"path": str(model_path), "config_sha256": base["config_sha256"],
                       "weights_sha256": base["weights"], "merged_from": _merged_from(model_path)},
        "chat_template": template.describe(),
        "chat_template_sha256": sha256_text(template.text),
        "init_adapter": str(adapter) if adapter else None,
        "eval_data": _eval_source(version, eval_data, resolved),
        **run_environment(config, device),
    }
    if main_process:
        (out / "recipe.yaml").write_text(yaml.safe_dump(recipe_as_run, allow_unicode=True, sort_keys=True),
                                         encoding="utf-8")
    trainer = _make_trainer(stage, str(model_path), adapter, config, quantization, peft_config, tokenizer,
                            train_data, eval_data, [MetricsWriter.create(out / METRICS_FILE)])
    if stage == "dpo":
        lineage["dpo_reference"] = dpo_reference(trainer, resolved, base, init_adapter)
        lineage["dpo_reference_kind"] = lineage["dpo_reference"]["kind"]
    lineage["base_model"]["loaded_in_4bit"] = any(type(m).__name__ == "Linear4bit" for m in trainer.model.modules())
    if lineage["base_model"]["loaded_in_4bit"] and device["compute_dtype"] == "float32":
        _trainable_to_float32(trainer.model)
    if main_process:
        if lineage["eval_data"]["source"] == "held_out_of_train":
            eval_data.to_json(str(out / HELD_OUT_FILE), force_ascii=False)
            lineage["eval_data"]["file"] = HELD_OUT_FILE
        write_lineage(out, lineage)
    final_dir = out / (MODEL_DIR if peft_config is None and adapter is None else ADAPTER_DIR)
    return PreparedRun(trainer, tokenizer, lineage, out, final_dir)


def run_training(stage: str, recipe: str, model_path: str | Path, data: str, out: str | Path,
                 store: str | Path | None = None, adapter: str | Path | None = None,
                 overrides: list[str] | None = None, chat_template: str | None = None) -> RunResult:
    """Train one stage and write the run directory: weights, lineage.json, metrics.jsonl, recipe.yaml, README.md."""
    from medcurate.train.card import render_model_card

    run = prepare_run(stage, recipe, model_path, data, out, store=store, adapter=adapter, overrides=overrides,
                      chat_template=chat_template)
    trainer, lineage = run.trainer, run.lineage
    train_output = trainer.train()
    trainer.save_model(str(run.output_dir))
    metrics = dict(train_output.metrics)
    if trainer.eval_dataset is not None:
        metrics.update(trainer.evaluate())
    if not is_main_process():
        return RunResult(run.run_dir, run.output_dir, lineage)
    run.tokenizer.save_pretrained(str(run.output_dir))
    lineage.update(status="finished", output=run.output_dir.name, output_files=files_sha256(run.output_dir),
                   final_metrics=metrics,
                   best_checkpoint=trainer.state.best_model_checkpoint,
                   finished_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    write_lineage(run.run_dir, lineage)
    (run.run_dir / "README.md").write_text(render_model_card(lineage), encoding="utf-8")
    return RunResult(run.run_dir, run.output_dir, lineage)


def _merged_from(model_path: Path) -> str | None:
    """The run whose adapter a merged model folder carries (None for any other model)."""
    lineage = read_lineage(model_path)
    return (lineage or {}).get("run_path") if (lineage or {}).get("artifact") == "merged_model" else None


def _eval_source(version, eval_data, recipe: dict[str, Any]) -> dict[str, Any]:
    if eval_data is None:
        return {"source": "none", "rows": 0}
    if "validation" in version.manifest["splits"]:
        return {"source": "validation_split", "ref": version.ref, "rows": len(eval_data)}
    return {"source": "held_out_of_train", "fraction": recipe["validation"], "seed": int(recipe.get("seed", 42)),
            "rows": len(eval_data)}


def dpo_reference(trainer, recipe: dict[str, Any], base: dict[str, Any], init_adapter) -> dict[str, Any]:
    """Which policy DPO compares against, made explicit and recorded.

    A new adapter on ``--model``: the reference is ``--model`` itself (adapter disabled), which is
    the SFT policy when ``--model`` is a merged SFT model. Continuing an SFT adapter: TRL keeps a
    frozen copy of it (adapter ``ref``), so the reference is the SFT policy; where it cannot
    (a peft/TRL combination without that copy) the run is refused rather than silently compared
    with the base."""
    precomputed = recipe["dpo_reference"] == "precomputed"
    how = "log-probs precomputed before training" if precomputed else "computed at every step"
    if init_adapter is None:
        merged = _merged_from(Path(base["path"]))
        return {"kind": "sft_policy" if merged else "model", "model": base["path"], "merged_from": merged,
                "via": f"the model with the new adapter disabled; {how}"}
    model = trainer.accelerator.unwrap_model(trainer.model) if hasattr(trainer, "accelerator") else trainer.model
    if "ref" not in getattr(model, "peft_config", {}):
        raise MedcurateError("DPO from an SFT adapter: this peft/TRL combination would use the base model as the "
                             "reference, not the SFT model; merge the adapter first (medcurate train merge "
                             "--adapter RUN --out DIR) and pass DIR as --model", field="adapter")
    return {"kind": "sft_policy", "model": base["path"], "adapter": str(init_adapter.adapter_dir),
            "adapter_run": str(init_adapter.run_dir) if init_adapter.run_dir else None,
            "via": f"a frozen copy of the SFT adapter (TRL adapter 'ref'); {how}"}


def _trainable_to_float32(model) -> None:
    """TRL casts a quantised model's trainable weights to bf16 (the QLoRA paper's choice for GPUs);
    with fp32 compute on CPU a plain trainable layer such as the reward head then fails on a
    float/bf16 mismatch, so the trainable weights follow the compute dtype there."""
    import torch

    for parameter in model.parameters():
        if parameter.requires_grad and parameter.dtype != torch.float32:
            parameter.data = parameter.data.to(torch.float32)


def is_main_process() -> bool:
    """Rank 0 under ``accelerate launch`` / torchrun (or a plain single process) writes the run files."""
    return int(os.environ.get("RANK", "0")) == 0


def resolved_without_private(resolved: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in resolved.items() if not key.startswith("_")}


def _make_trainer(stage, model_path, adapter, config, quantization, peft_config, tokenizer, train_data, eval_data,
                  callbacks):
    from trl import DPOTrainer, RewardTrainer, SFTTrainer

    trainer_class = {"sft": SFTTrainer, "dpo": DPOTrainer, "reward": RewardTrainer}[stage]
    if adapter is not None:
        model = _model_with_adapter(model_path, str(adapter), stage, config, quantization)
        quantization, peft_config = None, None
    else:
        model = model_path
    if stage == "reward" and isinstance(model, str):
        config.model_init_kwargs = {**(config.model_init_kwargs or {}), "num_labels": 1}
    extra = {"ref_model": None} if stage == "dpo" else {}
    return trainer_class(model=model, args=config, train_dataset=train_data, eval_dataset=eval_data,
                         processing_class=tokenizer, peft_config=peft_config, quantization_config=quantization,
                         callbacks=callbacks, **extra)


def merge_adapter(adapter_or_run: str | Path, out: str | Path) -> Path:
    """Merge a LoRA/QLoRA adapter into its (full-precision) base model and save a plain HF model
    whose ``lineage.json`` carries the adapter's run forward (so the merged folder names the SFT
    run, its dataset and its base, not only a config equal to the base's)."""
    resolved = resolve_adapter(adapter_or_run)
    silence_torch_warnings()
    from peft import AutoPeftModelForCausalLM, AutoPeftModelForSequenceClassification
    from transformers import AutoTokenizer

    task = resolved.task_type
    if task == "SEQ_CLS":
        model = AutoPeftModelForSequenceClassification.from_pretrained(str(resolved.adapter_dir), num_labels=1)
    else:
        model = AutoPeftModelForCausalLM.from_pretrained(str(resolved.adapter_dir))
    merged = model.merge_and_unload()
    out = Path(out)
    merged.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(resolved.adapter_dir)).save_pretrained(str(out))
    run = read_lineage(resolved.run_dir) if resolved.run_dir else None
    write_lineage(out, record("merged_model", [resolved.link()], run_id=(run or {}).get("run_id"),
                              stage=(run or {}).get("stage"),
                              run_path=str(resolved.run_dir) if resolved.run_dir else None,
                              adapter=str(resolved.adapter_dir), task_type=task,
                              weights_sha256=files_sha256(out)))
    return out
