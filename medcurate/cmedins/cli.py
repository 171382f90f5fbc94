"""``medcurate cmedins``: build a CMedINS-style instruction dataset from task files in one shot."""
from __future__ import annotations

from pathlib import Path

import click

from medcurate.console import RichProgress, print_build_summary, store_option

TASK_OPTIONS = (("cdee", "cdee", "json"), ("cmeee", "cmeee", "json"), ("imcs", "imcs_mrg", "jsonl"),
                ("cdn", "cdn", "json"), ("cmeie", "cmeie", "jsonl"))


def cmedins_recipe(files: dict[str, str | None], ehr: str | None, name: str, seed: int = 0,
                   max_per_task: int | None = None, validation: float = 0.0, test: float = 0.0) -> dict:
    """The recipe mapping the one-shot command runs (also usable from Python)."""
    sources = [{"name": option, "path": str(path), "format": fmt}
               for option, fmt, _ in TASK_OPTIONS if (path := files.get(option))]
    if ehr:
        sources.append({"name": "ehr", "path": ehr, "format": "dataset"})
    params: dict = {}
    if max_per_task is not None:
        params["max_per_task"] = max_per_task
    return {"name": name, "kind": "instruction", "seed": seed,
            "description": "CMedINS-style instruction / query / answer rows in six task forms (IIMedGPT).",
            "sources": sources, "steps": [{"cmedins": params}],
            "splits": {"seed": seed, "validation": validation, "test": test, "stratify": "task"}}


@click.command("cmedins")
@click.option("--cdee", type=click.Path(dir_okay=False), help="CHIP-CDEE JSON file (clinical finding events).")
@click.option("--cmeee", type=click.Path(dir_okay=False), help="CMeEE JSON file (medical NER).")
@click.option("--imcs", type=click.Path(dir_okay=False), help="PromptCBLUE JSONL with IMCS-V2-MRG examples (reports).")
@click.option("--cdn", type=click.Path(dir_okay=False), help="CHIP-CDN JSON file (term normalisation).")
@click.option("--cmeie", type=click.Path(dir_okay=False), help="CMeIE JSONL file (relation triples).")
@click.option("--ehr", "ehr", metavar="NAME@VERSION", help="A published EHR pairs version (diagnosis + triage).")
@click.option("--name", required=True, help="Name of the dataset to publish.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for template choice and sampling.")
@click.option("--max-per-task", type=int, default=None, help="Keep at most this many rows per task (seeded).")
@click.option("--validation", default=0.0, show_default=True, type=float, help="Held-out fraction or row count.")
@click.option("--test", default=0.0, show_default=True, type=float, help="Held-out fraction or row count.")
@store_option
def cmedins(cdee, cmeee, imcs, cdn, cmeie, ehr, name, seed, max_per_task, validation, test, store):
    """Build CMedINS instruction rows from any subset of the task files and an EHR pairs version."""
    from medcurate.build import build
    from medcurate.errors import MedcurateError
    from medcurate.recipe import recipe_from_dict

    files = {"cdee": cdee, "cmeee": cmeee, "imcs": imcs, "cdn": cdn, "cmeie": cmeie}
    if not any(files.values()) and not ehr:
        raise MedcurateError("give at least one of --cdee --cmeee --imcs --cdn --cmeie --ehr")
    recipe = recipe_from_dict(cmedins_recipe(files, ehr, name, seed, max_per_task, validation, test),
                              base_dir=Path.cwd(), origin="medcurate cmedins")
    result = build(recipe, store=store, progress=RichProgress)
    print_build_summary(result.manifest, str(result.version.path))
