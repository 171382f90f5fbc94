"""The model card written into every run directory: what was trained on what, and how."""
from __future__ import annotations

from typing import Any

from medcurate.card import markdown_table


def render_model_card(lineage: dict[str, Any]) -> str:
    dataset = lineage["dataset"]
    recipe = lineage["recipe"]["resolved"]
    method = recipe.get("method", "lora")
    lora = recipe.get("lora", {})
    settings = [["stage", lineage["stage"]], ["method", method],
                ["learning rate", recipe.get("learning_rate", "TRL default")],
                ["epochs", recipe.get("num_train_epochs", "TRL default")],
                ["effective batch size", lineage["effective_batch_size"]],
                ["max length", recipe.get("max_length", "TRL default")],
                ["precision", lineage["precision"]], ["device", lineage["device"]]]
    if method != "full":
        settings.append(["LoRA", f"r={lora.get('r')} alpha={lora.get('alpha')} dropout={lora.get('dropout')}"])
    metrics = [[name, f"{value:.6g}" if isinstance(value, float) else value]
               for name, value in sorted(lineage.get("final_metrics", {}).items())]
    header = "\n".join(["---", "library_name: peft" if method != "full" else "library_name: transformers",
                        f"base_model: {lineage['base_model']['path']}", "tags:", "- medcurate",
                        f"- {lineage['stage']}", "---", ""])
    return "\n".join([
        header,
        f"# {recipe.get('name', lineage['stage'])} on {dataset['ref']}",
        "",
        f"Trained by `medcurate train {lineage['stage']}` on dataset **{dataset['ref']}** "
        f"({dataset['kind']} rows; manifest sha256 `{dataset['manifest_sha256']}`; "
        f"{dataset['train_rows']} train / {dataset['eval_rows']} validation rows).",
        "",
        f"Base model: `{lineage['base_model']['path']}` (config sha256 `{lineage['base_model']['config_sha256']}`); "
        f"chat template sha256 `{lineage['chat_template_sha256']}`.",
        "",
        f"Recipe: `{lineage['recipe']['source']}`" + (f" with overrides {', '.join(lineage['recipe']['overrides'])}"
                                                     if lineage["recipe"]["overrides"] else ""),
        "",
        f"Paper settings the recipe carries: {recipe['paper']}" if recipe.get("paper") else "",
        "",
        "## Settings",
        "",
        markdown_table(["setting", "value"], settings),
        "",
        "## Final metrics",
        "",
        markdown_table(["metric", "value"], metrics) if metrics else "(none)",
        "",
        "Per-step metrics: `metrics.jsonl`; full lineage: `lineage.json`; resolved recipe: `recipe.yaml`.",
        "",
    ])
