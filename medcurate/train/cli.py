"""``medcurate model …``, ``medcurate train …`` and ``medcurate evaluate``.

This module is imported whenever one of those commands runs (and for ``--help``), so it
imports only click and medcurate's light modules; torch, transformers, peft and trl are
imported inside the command bodies.
"""
from __future__ import annotations

import click

from medcurate.console import console, store_option
from medcurate.errors import MedcurateError
from medcurate.train.quiet import silence_torch_warnings


@click.group("model")
def model():
    """Build local models for demos and tests."""
    silence_torch_warnings()


@model.command("tiny")
@click.option("--corpus", required=True, metavar="NAME@VERSION", help="Dataset version whose texts train the tokenizer.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the HF model.")
@click.option("--vocab-size", default=2000, show_default=True, type=int)
@click.option("--hidden-size", default=64, show_default=True, type=int)
@click.option("--layers", "num_layers", default=2, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@store_option
def tiny(corpus, out_dir, vocab_size, hidden_size, num_layers, seed, store):
    """A tiny Llama-architecture chat model (random weights) with a tokenizer trained on CORPUS."""
    from medcurate.train.tiny import build_tiny_model_from_dataset

    out = build_tiny_model_from_dataset(corpus, out_dir, store=store, vocab_size=vocab_size,
                                        hidden_size=hidden_size, num_layers=num_layers, seed=seed)
    console.print(f"tiny model (tokenizer trained on {corpus}) written to {out}")


_STAGE_OPTIONS = [
    click.option("--recipe", required=True, help="Recipe YAML path, or a shipped recipe name (e.g. clinicalgpt-sft)."),
    click.option("--model", "model_path", required=True, type=click.Path(exists=True, file_okay=False),
                 help="Local HF base model folder."),
    click.option("--data", required=True, metavar="NAME@VERSION", help="Dataset version from the store."),
    click.option("--adapter", type=click.Path(exists=True, file_okay=False), default=None,
                 help="A run directory or its adapter folder: continue training that adapter (DPO: it is also "
                      "the reference policy)."),
    click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="New run directory."),
    click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                 help="Override a recipe field (repeatable; lora.r=16 for nested keys)."),
    store_option,
]


def _stage_command(stage: str, summary: str):
    def command(recipe, model_path, data, adapter, out_dir, overrides, store):
        from medcurate.train.runner import run_training

        result = run_training(stage, recipe, model_path, data, out_dir, store=store, adapter=adapter,
                              overrides=list(overrides))
        metrics = result.lineage.get("final_metrics", {})
        loss = metrics.get("train_loss")
        console.print(f"{stage} on {result.lineage['dataset']['ref']}: train_loss="
                      f"{loss:.4f}" if isinstance(loss, float) else f"{stage} finished")
        console.print(f"run directory: {result.run_dir}  (weights in {result.output_dir})")

    command.__doc__ = summary
    for option in reversed(_STAGE_OPTIONS):
        command = option(command)
    return click.command(stage)(command)


@click.group("train")
def train():
    """Train on dataset versions: SFT (LoRA/QLoRA), DPO, reward model, RL; merge adapters."""
    silence_torch_warnings()


train.add_command(_stage_command("sft", "Supervised fine-tuning, loss on answer tokens only."))
train.add_command(_stage_command("dpo", "Direct preference optimisation on preference pairs."))
train.add_command(_stage_command("reward", "A reward model (sequence classifier) on preference pairs."))


@train.command("rl")
@click.option("--recipe", required=True, help="Recipe YAML path, or a shipped recipe name (clinicalgpt-rl, ivygpt-rl).")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, file_okay=False),
              help="Local HF base model folder (the one the SFT adapter was trained on).")
@click.option("--adapter", required=True, type=click.Path(exists=True, file_okay=False),
              help="The SFT run directory or its adapter folder: the starting policy and the KL reference.")
@click.option("--reward", required=True, type=click.Path(exists=True, file_okay=False),
              help="A `medcurate train reward` run directory or its adapter folder.")
@click.option("--data", required=True, metavar="NAME@VERSION", help="Dataset version whose prompts the policy answers.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="New run directory.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe field (repeatable; lora.r=16 for nested keys).")
@store_option
def rl(recipe, model_path, adapter, reward, data, out_dir, overrides, store):
    """Reward-model-guided RL (RLOO) with a KL penalty toward the SFT policy."""
    from medcurate.train.rl import run_rl

    result = run_rl(recipe, model_path, adapter, reward, data, out_dir, store=store, overrides=list(overrides))
    console.print(f"rl on {result.lineage['dataset']['ref']} finished; run directory: {result.run_dir}  "
                  f"(adapter in {result.output_dir})")


@train.command("merge")
@click.option("--adapter", "adapter", required=True, type=click.Path(exists=True, file_okay=False),
              help="A run directory or its adapter folder.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the merged model.")
def merge(adapter, out_dir):
    """Merge a LoRA/QLoRA adapter into its base model and save a plain HF model."""
    from medcurate.train.runner import merge_adapter

    console.print(f"merged model written to {merge_adapter(adapter, out_dir)}")


@train.command("recipes")
def recipes():
    """List the shipped training recipes."""
    import yaml

    from medcurate.resources import data_folder

    for path in sorted(data_folder("training").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        click.echo(f"{path.stem:<22} {data.get('stage', '?'):<7} {data.get('paper', '')}")


def _evaluation_options(function):
    function = click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
                            help="Also write the result as JSON here (and its lineage beside it).")(function)
    function = click.option("--limit", type=int, default=None, help="Only the first N rows / questions.")(function)
    function = click.option("--adapter", type=click.Path(exists=True, file_okay=False), default=None,
                            help="A run directory or adapter folder to apply to the model.")(function)
    return click.option("--model", "model_path", required=True, type=click.Path(exists=True, file_okay=False),
                        help="Local HF model folder (the base, when --adapter is given).")(function)


def _report(result: dict, out_file: str | None, inputs: list[dict]) -> None:
    """Print the result; with --out also write it (folders created) and its lineage record."""
    import json
    from pathlib import Path

    text = json.dumps(result, ensure_ascii=False, indent=2, sort_keys=True)
    click.echo(text)
    if out_file:
        from medcurate.lineage import record, write_lineage

        out = Path(out_file)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        write_lineage(out, record("evaluation", inputs, model_evaluated=result["model"]["path"],
                                  adapter=result["model"]["adapter"], metric=result.get("metric")))


@click.group("evaluate")
def evaluate():
    """Quick model checks: answer-token loss, multiple-choice accuracy, reward-model pairwise accuracy."""
    silence_torch_warnings()


@evaluate.command("loss")
@_evaluation_options
@click.option("--data", required=True, metavar="NAME@VERSION", help="Dataset version from the store.")
@click.option("--split", default=None, help="Split to score [default: validation, else test].")
@store_option
def evaluate_loss(model_path, adapter, limit, out_file, data, split, store):
    """Answer-token loss and perplexity (preference rows: how often chosen beats rejected)."""
    from medcurate.lineage import version_link
    from medcurate.train.evaluate import evaluate_split, load_model_for_eval, model_evaluated, model_links, pick_split

    version, split = pick_split(data, split, store)
    model_, tokenizer = load_model_for_eval(model_path, adapter)
    result = evaluate_split(model_, tokenizer, version.ref, split, store=store, limit=limit)
    result.update(metric="loss", model=model_evaluated(model_path, adapter))
    _report(result, out_file, [*model_links(model_path, adapter), version_link(version, store)])


@evaluate.command("mcq")
@_evaluation_options
@click.option("--csv", "csv_path", required=True, type=click.Path(exists=True),
              help="A CMMLU-style CSV file or a folder of them (e.g. cmmlu-medical/test).")
def evaluate_mcq_command(model_path, adapter, limit, out_file, csv_path):
    """Multiple-choice accuracy: the most likely answer letter after the chat prompt (--limit: questions in all)."""
    from medcurate.lineage import file_link
    from medcurate.train.evaluate import evaluate_mcq, load_model_for_eval, mcq_files, model_evaluated, model_links

    files = mcq_files(csv_path)
    model_, tokenizer = load_model_for_eval(model_path, adapter)
    result = evaluate_mcq(model_, tokenizer, files, limit=limit)
    result.update(metric="mcq", model=model_evaluated(model_path, adapter))
    _report(result, out_file, [*model_links(model_path, adapter), *(file_link(path) for path in files)])


@evaluate.command("reward")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, file_okay=False),
              help="A reward run directory, its adapter folder, or a merged reward model folder.")
@click.option("--data", required=True, metavar="NAME@VERSION", help="Preference dataset version from the store.")
@click.option("--split", default=None, help="Split to score [default: validation, else test].")
@click.option("--limit", type=int, default=None, help="Only the first N pairs.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the result as JSON here (and its lineage beside it).")
@store_option
def evaluate_reward_command(model_path, data, split, limit, out_file, store):
    """A reward model's pairwise accuracy (chosen scores higher) and reward margin distribution."""
    from medcurate.lineage import resolve_adapter, version_link
    from medcurate.train.data import check_kind
    from medcurate.train.evaluate import evaluate_reward, load_reward_model, model_evaluated, pick_split

    version, split = pick_split(data, split, store)
    check_kind("reward", version.manifest["kind"], version.ref)
    model_, tokenizer = load_reward_model(model_path)
    result = evaluate_reward(model_, tokenizer, version, split, store=store, limit=limit)
    try:
        adapter = resolve_adapter(model_path)
        described = model_evaluated(model_path, adapter.adapter_dir)
        links = [adapter.link()]
    except MedcurateError:
        from medcurate.lineage import model_link

        described = model_evaluated(model_path)
        links = [model_link(model_path)]
    result.update(metric="reward", model=described)
    _report(result, out_file, [*links, version_link(version, store)])
