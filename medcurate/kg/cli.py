"""``medcurate kg``: knowledge-graph triples -> QA pairs in one shot."""
from __future__ import annotations

import click

from medcurate.console import console, run_recipe_mapping, store_option


@click.group("kg")
def kg():
    """Knowledge graphs (39Health, xywy, CMeKG, generic triples) -> QA pairs through templates."""


@kg.command("qa")
@click.argument("sources", nargs=-1, required=True, metavar="FORMAT:PATH...")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("--name", required=True, help="Name of the dataset to publish.")
@click.option("--max-per-entity", type=int, default=None, help="At most this many QA rows per subject (seeded).")
@click.option("--per-triple", is_flag=True, help="One QA per triple instead of one per (subject, relation).")
@click.option("--cap", type=int, default=10, show_default=True, help="Most objects listed in one answer (seeded sample).")
@click.option("--no-two-hop", is_flag=True, help="Leave out the two-hop questions.")
@click.option("--templates", "templates", multiple=True, type=click.Path(file_okay=False),
              help="A folder of extra *.yaml templates (repeatable).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--validation", default=0.0, show_default=True, type=float, help="Held-out fraction or row count.")
@click.option("--test", default=0.0, show_default=True, type=float, help="Held-out fraction or row count.")
@store_option
def qa(sources, lang, name, max_per_entity, per_triple, cap, no_two_hop, templates, seed, validation, test, store):
    """Build QA pairs from SOURCES (e.g. 39health:disease.csv xywy:medical.json triples:kg.csv) and publish them."""
    from medcurate.kg.recipes import kg_qa_recipe

    mapping = kg_qa_recipe(list(sources), name, lang, seed, cap, per_triple, not no_two_hop, max_per_entity,
                           list(templates), validation, test)
    result = run_recipe_mapping(mapping, origin="medcurate kg qa", store=store)
    stats = result.manifest.get("stats", {}).get("kg", {})
    if stats:
        console.print(f"graph: {stats['nodes']} nodes, {stats['edges']} edges, {stats['qa_rows']} QA rows")
        for relation, number in stats["triples_without_template"].items():
            console.print(f"no template: {relation} ({number} triples)")
