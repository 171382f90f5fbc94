"""``medcurate model …`` and ``medcurate train …`` (``medcurate evaluate`` lives in medcurate/evaluate/cli.py).

This module is imported whenever one of those commands runs (and for ``--help``), so it
imports only click and medcurate's light modules; torch, transformers, peft and trl are
imported inside the command bodies.
"""
from __future__ import annotations

import click

from medcurate.console import console, store_option
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
    click.option("--chat-template", default=None, metavar="NAME|FILE",
                 help="Chat template instead of the tokenizer's own: a shipped one (`medcurate train templates`) "
                      "or a Jinja file with {% generation %} around assistant turns."),
    store_option,
]


def _stage_command(stage: str, summary: str):
    def command(recipe, model_path, data, adapter, out_dir, overrides, chat_template, store):
        from medcurate.train.runner import run_training

        result = run_training(stage, recipe, model_path, data, out_dir, store=store, adapter=adapter,
                              overrides=list(overrides), chat_template=chat_template)
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


@train.command("templates")
def templates():
    """List the shipped chat templates (for --chat-template) and their aliases."""
    from medcurate.train.chat_templates import ALIASES, shipped_templates

    for name in shipped_templates():
        aliases = sorted(alias for alias, target in ALIASES.items() if target == name)
        click.echo(f"{name:<12} {'aliases: ' + ', '.join(aliases) if aliases else ''}".rstrip())


@train.command("recipes")
def recipes():
    """List the shipped training recipes."""
    import yaml

    from medcurate.resources import data_folder

    for path in sorted(data_folder("training").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        click.echo(f"{path.stem:<22} {data.get('stage', '?'):<7} {data.get('paper', '')}")
