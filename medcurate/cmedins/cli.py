"""``medcurate cmedins build``: a CMedINS-style instruction dataset from task files in one shot
(``medcurate cmedins --cdee …``, as issue #5 writes it, is short for ``medcurate cmedins build --cdee …``);
``medcurate cmedins tasks`` lists the task forms and their instruction templates."""
from __future__ import annotations

import click

from medcurate.console import VerbGroup, console, run_recipe_mapping, store_option


@click.group("cmedins", cls=VerbGroup, shorthand="build")
def cmedins():
    """CMedINS instruction data (IIMedGPT): task files and EHR pairs -> instruction rows in six task forms.

    `medcurate cmedins --cdee FILE … --name NAME` is short for `medcurate cmedins build …`."""


@cmedins.command("build")
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
def build_command(cdee, cmeee, imcs, cdn, cmeie, ehr, name, seed, max_per_task, validation, test, store):
    """Build CMedINS instruction rows from any subset of the task files and an EHR pairs version."""
    from medcurate.cmedins.recipes import cmedins_recipe

    files = {"cdee": cdee, "cmeee": cmeee, "imcs": imcs, "cdn": cdn, "cmeie": cmeie}
    run_recipe_mapping(cmedins_recipe(files, ehr, name, seed, max_per_task, validation, test),
                       origin="medcurate cmedins", store=store)


@cmedins.command("tasks")
def tasks_command():
    """The task forms and how many paraphrased instruction templates each has (templates/cmedins/)."""
    from medcurate.cmedins.formats import TASKS
    from medcurate.cmedins.steps import load_templates

    for task in TASKS:
        console.print(f"{task}: {len(load_templates(task))} templates")
