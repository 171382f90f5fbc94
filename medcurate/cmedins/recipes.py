"""The recipe ``medcurate cmedins`` runs, as a mapping any Python caller can build and run
(``medcurate.build.build_mapping``)."""
from __future__ import annotations

from medcurate.errors import MedcurateError

# (command option, source format, file format) of each task file.
TASK_OPTIONS = (("cdee", "cdee", "json"), ("cmeee", "cmeee", "json"), ("imcs", "imcs_mrg", "jsonl"),
                ("cdn", "cdn", "json"), ("cmeie", "cmeie", "jsonl"))


def cmedins_recipe(files: dict[str, str | None], ehr: str | None, name: str, seed: int = 0,
                   max_per_task: int | None = None, validation: float = 0.0, test: float = 0.0) -> dict:
    """Any subset of the task files (keyed by option name) and an EHR pairs version -> the recipe mapping."""
    if not any(files.values()) and not ehr:
        raise MedcurateError("give at least one of --cdee --cmeee --imcs --cdn --cmeie --ehr")
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
