"""End to end: the example recipe, the one-shot command, and the real KGs in ../shared."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from medcurate.build import build
from medcurate.kg.recipes import kg_qa_recipe
from medcurate.recipe import load_recipe, recipe_from_dict
from medcurate.store import load_rows
from tests.conftest import run_medcurate, shared_path

REPO = Path(__file__).resolve().parents[2]


def test_example_recipe_builds_and_balances(store):
    result = build(load_recipe(REPO / "examples" / "recipes" / "kg_qa.yaml"), store=store)
    rows = load_rows(result.version, store)["train"]
    assert len(rows) == result.manifest["stats"]["kg"]["qa_rows"] > 20
    assert all(row["task"] == "kg_qa" and row["instruction"] and row["answer"] and row["triples"] for row in rows)
    card = (result.version.path / "README.md").read_text(encoding="utf-8")
    assert "Relations without a template: category, storage." in card
    assert "KG QA rows per template" in card


def test_one_shot_command_publishes_and_reports_missing_templates(tmp_path, store):
    (tmp_path / "storage.yaml").write_text(
        "lang: zh\ntemplates:\n  - {id: my.storage, relation: storage, question: '{subject}如何贮藏？', answer: '{objects}。'}\n",
        encoding="utf-8")
    result = run_medcurate("kg", "qa", "xywy:examples/data/kg_xywy_sample.jsonl", "triples:examples/data/kg_triples_sample.csv",
                           "--lang", "zh", "--name", "kgcli", "--store", str(store), "--per-triple",
                           "--max-per-entity", "3", "--seed", "7", "--templates", str(tmp_path), cwd=REPO, check=True)
    assert "no template: category (2 triples)" in result.stderr and "no template: storage" not in result.stderr
    rows = load_rows("kgcli@latest", store)["train"]
    assert rows and all(row["template_id"].startswith(("zh.", "my.")) for row in rows)
    assert max(Counter(row["subject"] for row in rows).values()) <= 3
    manifest = json.loads(next((store / "kgcli").glob("*/manifest.json")).read_text())
    assert manifest["recipe"]["steps"] == [{"kg_qa": {"lang": "zh", "cap": 10, "per_triple": True, "two_hop": True,
                                                      "max_per_entity": 3, "templates": [str(tmp_path)]}}]


def test_english_questions_over_a_chinese_only_graph_are_refused(store):
    result = run_medcurate("kg", "qa", "xywy:examples/data/kg_xywy_sample.jsonl", "--lang", "en", "--name", "kgen",
                           "--store", str(store), cwd=REPO)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "lang en over a Chinese-only graph" in result.stderr and "use lang zh" in result.stderr
    assert not (store / "kgen").exists()


def test_one_shot_command_refuses_an_unknown_format(store):
    result = run_medcurate("kg", "qa", "neo4j:x.csv", "--name", "bad", "--store", str(store), cwd=REPO)
    assert result.returncode != 0 and "FORMAT:PATH" in (result.stderr + result.stdout)
    assert "Traceback" not in result.stderr


def test_real_kgs_counts_match_the_graph(store):
    sources = [f"39health:{shared_path('data', '39health-kg', 'data', 'disease.csv')}",
               f"xywy_csv:{shared_path('data', 'xywy-medical-kg', 'notebook_tutorials', 'medical_data.csv')}",
               f"cmekg:{shared_path('data', 'cmekg-tools-sample', 'train_example.json')}"]
    per_triple = build(recipe_from_dict(kg_qa_recipe(sources, "real1", cap=None, per_triple=True, two_hop=False),
                                        base_dir=REPO, origin="test"), store=store)
    grouped = build(recipe_from_dict(kg_qa_recipe(sources, "real2", two_hop=False), base_dir=REPO, origin="test"),
                    store=store)
    stats = per_triple.manifest["stats"]["kg"]
    # one department per disease and no generic treatment categories: fewer, better edges than the raw cells
    assert stats["nodes"] > 25000 and stats["edges"] > 130000
    assert per_triple.manifest["counts"]["filtered"]["generic_treatment"] > 1000
    assert per_triple.manifest["counts"]["rejects"]["shifted columns"] >= 4
    for relation, edges in stats["edges_by_relation"].items():
        assert edges == stats["triples_covered"].get(relation, 0) + stats["triples_without_template"].get(relation, 0)
    triple_rows = load_rows(per_triple.version, store)["train"]
    assert Counter(row["relation"] for row in triple_rows) == Counter(stats["triples_covered"])
    groups = Counter(relation for relation, _ in {(row["relation"], row["subject"]) for row in triple_rows})
    assert Counter(row["relation"] for row in load_rows(grouped.version, store)["train"]) == groups
    assert "storage" not in stats["triples_covered"] and stats["triples_without_template"]["storage"] == 2
    counts = grouped.manifest["counts"]
    assert counts["filtered"]["no_template"] == sum(stats["triples_without_template"].values())
