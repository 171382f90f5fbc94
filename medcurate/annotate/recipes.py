"""The recipes ``medcurate annotate export`` runs, as a mapping any Python caller can build and run
(``medcurate.build.build_mapping``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


def export_recipe(workdir: Path, name: str, *, validation: float = 0.0, test: float = 0.0, seed: int = 0,
                  prompt_format: str = "auto", min_votes: int = 2, tie_margin: float = 0.5) -> dict[str, Any]:
    """The recipe ``medcurate annotate export`` runs: pairs grouped by prompt so that the
    answers to one prompt never straddle splits."""
    return {
        "name": name, "kind": "preference",
        "description": "Preference pairs from a cross-annotated, adjudicated Label Studio project",
        "sources": [{"name": "annotations", "path": str(workdir.resolve()), "format": "label_studio_annotations",
                     "options": {"min_votes": min_votes}}],
        "steps": [{"preference_pairs": {"prompt_format": prompt_format, "tie_margin": tie_margin}}],
        "splits": {"seed": seed, "validation": validation, "test": test, "group": "prompt_id"},
    }


def review_export_recipe(workdir: Path, name: str, output: str, *, validation: float = 0.0, test: float = 0.0,
                         seed: int = 0, prompt_format: str = "auto", min_votes: int = 2) -> dict[str, Any]:
    """The recipe ``medcurate annotate export`` runs for a review project: an instruction version,
    or preference pairs (grouped by prompt so one prompt's answers never straddle splits)."""
    source = {"name": "review", "path": str(workdir.resolve()), "format": "label_studio_review",
              "options": {"min_votes": min_votes}}
    if output == "instruction":
        return {"name": name, "kind": "instruction",
                "description": "Generated rows accepted or edited by physicians (cross-reviewed, adjudicated)",
                "sources": [source], "steps": ["review_instructions"],
                "splits": {"seed": seed, "validation": validation, "test": test}}
    return {"name": name, "kind": "preference",
            "description": "Physician-reviewed answers: accepted or edited vs rejected, edits vs the generated answer",
            "sources": [source], "steps": [{"review_preference_pairs": {"prompt_format": prompt_format}}],
            "splits": {"seed": seed, "validation": validation, "test": test, "group": "prompt_id"}}
