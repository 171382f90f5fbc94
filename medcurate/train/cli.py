"""``medcurate model …``, ``medcurate train …`` and ``medcurate evaluate``.

This module is imported whenever one of those commands runs (and for ``--help``), so it
imports only click and medcurate's light modules; torch, transformers, peft and trl are
imported inside the command bodies.
"""
from __future__ import annotations

import click

from medcurate.console import console, store_option


@click.group("model")
def model():
    """Build local models for demos and tests."""


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
