"""``medcurate kg``: knowledge-graph triples -> QA pairs in one shot."""
from __future__ import annotations

from pathlib import Path

import click

from medcurate.console import RichProgress, console, print_build_summary, store_option

# FORMAT in FORMAT:PATH -> the registered source format (triples picks csv/tsv/jsonl by extension).
SOURCE_FORMATS = ("39health", "xywy", "xywy_csv", "cmekg", "triples", "triples_tsv", "triples_jsonl")


def source_entry(argument: str, position: int) -> dict:
    """``FORMAT:PATH`` -> a recipe source entry."""
    from medcurate.errors import MedcurateError

    fmt, colon, path = argument.partition(":")
    if not colon or not path or fmt not in SOURCE_FORMATS:
        raise MedcurateError(f"source must be FORMAT:PATH with FORMAT one of {', '.join(SOURCE_FORMATS)}",
                             field=f"SOURCE {position + 1}")
    if fmt == "triples":
        suffix = Path(path).suffix.lower()
        fmt = {".tsv": "triples_tsv", ".jsonl": "triples_jsonl", ".json": "triples_jsonl"}.get(suffix, "triples")
    return {"name": f"{fmt}_{position + 1}", "path": path, "format": fmt}


def kg_qa_recipe(sources: list[str], name: str, lang: str = "zh", seed: int = 0, cap: int | None = 10,
                 per_triple: bool = False, two_hop: bool = True, max_per_entity: int | None = None,
                 templates: list[str] | None = None, validation: float = 0.0, test: float = 0.0) -> dict:
    """The recipe mapping ``medcurate kg qa`` runs (also usable from Python)."""
    params: dict = {"lang": lang, "cap": cap, "per_triple": per_triple, "two_hop": two_hop}
    if max_per_entity is not None:
        params["max_per_entity"] = max_per_entity
    if templates:
        params["templates"] = [str(Path(folder).resolve()) for folder in templates]
    return {"name": name, "kind": "instruction", "seed": seed,
            "description": "Question / answer pairs rendered from knowledge-graph triples (ClinicalGPT cMedQA-KG).",
            "sources": [source_entry(item, i) for i, item in enumerate(sources)], "steps": [{"kg_qa": params}],
            "splits": {"seed": seed, "validation": validation, "test": test}}


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
    from medcurate.build import build
    from medcurate.recipe import recipe_from_dict

    mapping = kg_qa_recipe(list(sources), name, lang, seed, cap, per_triple, not no_two_hop, max_per_entity,
                           list(templates), validation, test)
    recipe = recipe_from_dict(mapping, base_dir=Path.cwd(), origin="medcurate kg qa")
    result = build(recipe, store=store, progress=RichProgress)
    print_build_summary(result.manifest, str(result.version.path))
    stats = result.manifest.get("stats", {}).get("kg", {})
    if stats:
        console.print(f"graph: {stats['nodes']} nodes, {stats['edges']} edges, {stats['qa_rows']} QA rows")
        for relation, number in stats["triples_without_template"].items():
            console.print(f"no template: {relation} ({number} triples)")
