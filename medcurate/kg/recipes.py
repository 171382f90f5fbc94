"""The recipe ``medcurate kg qa`` runs, as a mapping any Python caller can build and run
(``medcurate.build.build_mapping``)."""
from __future__ import annotations

from pathlib import Path

from medcurate.errors import MedcurateError

# FORMAT in FORMAT:PATH -> the registered source format (triples picks csv/tsv/jsonl by extension).
SOURCE_FORMATS = ("39health", "xywy", "xywy_csv", "cmekg", "triples", "triples_tsv", "triples_jsonl")


def source_entry(argument: str, position: int) -> dict:
    """``FORMAT:PATH`` -> a recipe source entry."""
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
    """``FORMAT:PATH`` sources -> the recipe mapping: read the triples, render QA pairs through templates."""
    params: dict = {"lang": lang, "cap": cap, "per_triple": per_triple, "two_hop": two_hop}
    if max_per_entity is not None:
        params["max_per_entity"] = max_per_entity
    if templates:
        params["templates"] = [str(Path(folder).resolve()) for folder in templates]
    return {"name": name, "kind": "instruction", "seed": seed,
            "description": "Question / answer pairs rendered from knowledge-graph triples (ClinicalGPT cMedQA-KG).",
            "sources": [source_entry(item, i) for i, item in enumerate(sources)], "steps": [{"kg_qa": params}],
            "splits": {"seed": seed, "validation": validation, "test": test}}
