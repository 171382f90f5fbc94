"""Training recipes: a YAML mapping of medcurate keys plus TRL config fields.

    name: clinicalgpt-sft
    stage: sft                  # sft | dpo | reward
    method: lora                # lora | qlora | full
    lora: {r: 8, alpha: 32, dropout: 0.1, target_modules: all-linear}
    batch_size: 128             # effective batch = per device x accumulation x processes
    validation: 0.1             # held out of train when the dataset has no validation split
    keep_best: true             # keep the checkpoint with the lowest validation loss
    learning_rate: 5.0e-5       # every other key is a field of SFTConfig / DPOConfig / RewardConfig
    ...

Recipes are read from a path or, by bare name, from the shipped ``training/`` folder.
Overrides ``key=value`` (``lora.r=16`` for nested keys) are applied before checking, with
values parsed as YAML, so ``--set learning_rate=1e-4 --set packing=true`` works.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError
from medcurate.yamlio import parse_yaml

STAGES = ("sft", "dpo", "reward", "rl")
METHODS = ("lora", "qlora", "full")
# keys medcurate reads itself; every other key must be a field of the stage's TRL config
MEDCURATE_KEYS = {"name", "stage", "method", "paper", "description", "lora", "quantization", "batch_size",
                  "validation", "keep_best", "dpo_reference", "system_prompt", "cite"}
LORA_KEYS = {"r", "alpha", "dropout", "target_modules", "modules_to_save", "bias"}
QUANT_KEYS = {"quant_type", "double_quant", "compute_dtype"}
DEFAULTS: dict[str, Any] = {
    "method": "lora",
    "lora": {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": "all-linear"},
    "quantization": {"quant_type": "nf4", "double_quant": True, "compute_dtype": "auto"},
    "validation": 0.0,
    "keep_best": False,
    "dpo_reference": "adapter_disabled",
}
DPO_REFERENCES = ("adapter_disabled", "precomputed")


def find_recipe(name_or_path: str) -> Path:
    """A recipe path, or a bare name (``clinicalgpt-sft``) looked up in the shipped ``training/`` folder."""
    from medcurate.resources import data_folder

    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = data_folder("training")
    for candidate in (shipped / name_or_path, shipped / f"{name_or_path}.yaml", shipped / path.name):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.stem for p in shipped.glob("*.yaml")))
    raise MedcurateError(f"training recipe not found (shipped recipes: {known})", file=name_or_path)


def read_recipe(name_or_path: str) -> tuple[dict[str, Any], Path]:
    path = find_recipe(name_or_path)
    data = parse_yaml(path.read_text(encoding="utf-8-sig"), origin=str(path))
    if not isinstance(data, dict):
        raise MedcurateError("a training recipe must be a YAML mapping", file=str(path))
    return data, path


def apply_overrides(recipe: dict[str, Any], overrides: list[str], origin: str = "--set") -> dict[str, Any]:
    """``key=value`` strings applied to a copy of the recipe (dotted keys reach into mappings)."""
    result = copy.deepcopy(recipe)
    for override in overrides:
        key, sep, raw_value = override.partition("=")
        if not sep or not key.strip():
            raise MedcurateError(f"expected KEY=VALUE, got {override!r}", file=origin)
        try:
            value = parse_yaml(raw_value) if raw_value.strip() else None
        except MedcurateError:
            value = raw_value
        target = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise MedcurateError(f"{'.'.join(parts[:-1])} is not a mapping", file=origin, field=key)
        target[parts[-1]] = value
    return result


def resolve_recipe(data: dict[str, Any], stage: str, origin: str) -> dict[str, Any]:
    """Defaults filled in and every key checked against medcurate's keys and the TRL config."""
    import dataclasses

    def fail(message: str, key: str | None = None) -> MedcurateError:
        return MedcurateError(message, file=origin, field=key)

    if stage not in STAGES:
        raise fail(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}", "stage")
    written_stage = data.get("stage")
    if written_stage and written_stage != stage:
        raise fail(f"this recipe is for stage {written_stage!r}, not {stage!r}", "stage")
    resolved = copy.deepcopy(DEFAULTS)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(resolved.get(key), dict):
            resolved[key] = {**resolved[key], **value}
        else:
            resolved[key] = value
    resolved["stage"] = stage
    if resolved["method"] not in METHODS:
        raise fail(f"unknown method {resolved['method']!r}; expected one of {', '.join(METHODS)}", "method")
    for section, allowed in (("lora", LORA_KEYS), ("quantization", QUANT_KEYS)):
        unknown = sorted(set(resolved[section]) - allowed)
        if unknown:
            raise fail(f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}", f"{section}.{unknown[0]}")
    if resolved["dpo_reference"] not in DPO_REFERENCES:
        raise fail(f"expected one of {', '.join(DPO_REFERENCES)}", "dpo_reference")
    validation = resolved["validation"]
    if not isinstance(validation, (int, float)) or not 0 <= validation < 1:
        raise fail("must be a fraction in [0, 1)", "validation")
    config_fields = {f.name for f in dataclasses.fields(trl_config_class(stage))}
    for key in resolved:
        if key not in MEDCURATE_KEYS and key not in config_fields:
            raise fail(f"unknown key {key!r}: neither a medcurate key nor a field of "
                       f"{trl_config_class(stage).__name__}", key)
    return resolved


def trl_config_class(stage: str):
    from trl import DPOConfig, RewardConfig, RLOOConfig, SFTConfig

    return {"sft": SFTConfig, "dpo": DPOConfig, "reward": RewardConfig, "rl": RLOOConfig}[stage]


def trl_arguments(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe's keys that go straight into the TRL config."""
    return {key: value for key, value in recipe.items() if key not in MEDCURATE_KEYS and not key.startswith("_")}
