"""The README's main job works on a fresh clone: every demo recipe builds from files inside the repository."""
from __future__ import annotations

import re

import yaml
from conftest import REPO

DEMO = REPO / "examples" / "demo.sh"


def test_demo_recipes_read_only_bundled_samples():
    names = re.search(r"for recipe in ([a-z_ ]+); do", DEMO.read_text()).group(1).split()
    assert len(names) >= 5
    for name in names:
        path = REPO / "examples" / "recipes" / f"{name}.yaml"
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
        for source in recipe["sources"]:
            if source.get("format") in ("dataset", "mix_part"):
                continue
            resolved = (path.parent / source["path"]).resolve()
            assert resolved.is_relative_to(REPO) and resolved.exists(), \
                f"{name}.yaml source {source['path']} is not a file bundled in the repository"
