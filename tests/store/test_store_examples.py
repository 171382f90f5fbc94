"""The README's main job works on a fresh clone: every demo recipe builds from files inside the repository."""
from __future__ import annotations

import re

from conftest import REPO

DEMO = REPO / "examples" / "demo.sh"


def test_demo_recipes_read_only_bundled_samples():
    names = re.search(r"for recipe in ([a-z_ ]+); do", DEMO.read_text()).group(1).split()
    assert names
    for name in names:
        recipe = (REPO / "examples" / "recipes" / f"{name}.yaml").read_text(encoding="utf-8")
        assert "shared/" not in recipe, f"{name}.yaml reads ../shared, which a user's clone does not have"
