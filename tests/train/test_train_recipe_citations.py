"""Every value of a shipped training recipe cites the paper section it comes from or says it is
medcurate's own, and the values the papers state are the ones the recipes carry."""
from __future__ import annotations

import pytest

from medcurate.resources import data_folder
from medcurate.yamlio import parse_yaml

DESCRIPTIVE = {"name", "paper", "stage", "description", "cite"}
SOURCES = ("medcurate", "ClinicalGPT", "IvyGPT", "IIMedGPT", "MedGo", "QLoRA paper")
RECIPES = sorted(data_folder("training").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_value_is_cited_or_marked_medcurates_own(path):
    recipe = parse_yaml(path.read_text(encoding="utf-8"), origin=str(path))
    cites = recipe.get("cite") or {}
    uncited = sorted(set(recipe) - DESCRIPTIVE - set(cites))
    assert not uncited, f"{path.name}: no citation for {uncited}"
    stale = sorted(set(cites) - set(recipe))
    assert not stale, f"{path.name}: citations for keys the recipe lacks: {stale}"
    for key, text in cites.items():
        assert isinstance(text, str) and text.startswith(SOURCES), f"{path.name}: {key}: {text!r}"


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_shipped_recipes_resolve(path):
    pytest.importorskip("trl")
    from medcurate.train.recipe import resolve_recipe

    recipe = parse_yaml(path.read_text(encoding="utf-8"))
    resolve_recipe(recipe, recipe["stage"], origin=str(path))


def _recipe(name: str) -> dict:
    return parse_yaml((data_folder("training") / f"{name}.yaml").read_text(encoding="utf-8"))


def test_values_the_papers_state():
    assert _recipe("iimedgpt-sft")["max_length"] == 4096          # IIMedGPT §4.1
    assert _recipe("iimedgpt-sft")["lora"]["dropout"] == 0.1      # IIMedGPT §4.1
    clinical = _recipe("clinicalgpt-rl")                           # ClinicalGPT §3
    assert (clinical["learning_rate"], clinical["max_steps"]) == (1e-5, 4000)
    assert clinical["lora"] == {"r": 8, "alpha": 32, "dropout": 0.1, "target_modules": "all-linear"}
    ivy = _recipe("ivygpt-rl")                                     # IvyGPT §4
    assert (ivy["learning_rate"], ivy["per_device_train_batch_size"], ivy["num_train_epochs"]) == (5e-5, 8, 2)
    assert ivy["method"] == "qlora"
    assert _recipe("medgo-dpo")["cite"]["beta"].startswith("medcurate")
