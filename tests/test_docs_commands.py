"""The docs cannot drift: every fenced ``medcurate …`` line in docs/*.md runs, in order, against a
fresh demo store, from a working folder where ``examples/`` is the repository's.

``export NAME=VALUE`` lines of a run block set the environment of the commands after them (the
tests' own MEDCURATE_DEID_SECRET is cleared, so a doc that builds EHR versions must say how).
Skipped, with the reason: a line that reads ``../shared`` (real data, not the demo store), and a
block right after an HTML comment ``<!-- docs-test: skip: REASON -->`` (a server, or a file that
stands for the user's own). training.md comes before annotation.md, whose sampling uses its models.
"""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, run_medcurate

DOCS = REPO / "docs"
# docs whose commands build what later docs use run first; the rest follow alphabetically
FIRST = ("ehr-cmedins.md", "kg.md", "deid.md", "training.md", "annotation.md")
SKIP_MARK = re.compile(r"<!--\s*docs-test:\s*skip:?\s*(.*?)\s*-->")


@dataclass
class DocCommand:
    doc: str
    line: int
    argv: list[str]
    skip: str | None

    @property
    def where(self) -> str:
        return f"docs/{self.doc}:{self.line}"


def doc_order() -> list[Path]:
    docs = sorted(DOCS.glob("*.md"))
    return sorted(docs, key=lambda p: (FIRST.index(p.name) if p.name in FIRST else len(FIRST), p.name))


def commands_of(path: Path) -> list[DocCommand]:
    found: list[DocCommand] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    in_block, block_skip, previous = False, None, ""
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(lines, start=1):
        text = raw.rstrip()
        if text.lstrip().startswith("```"):
            if not in_block:
                mark = SKIP_MARK.search(previous)
                block_skip = (mark.group(1) or "marked in the doc") if mark else None
            in_block = not in_block
            previous = text
            continue
        if text.strip():
            previous = text
        if not in_block:
            continue
        if pending is not None:
            start, joined = pending
            joined += " " + text.strip()
        elif text.strip().startswith(("medcurate ", "export ")):
            start, joined = number, text.strip()
        else:
            continue
        if joined.endswith("\\"):
            pending = (start, joined[:-1].rstrip())
            continue
        pending = None
        skip = block_skip or ("reads ../shared (real data, not the demo store)" if "../shared" in joined else None)
        found.append(DocCommand(path.name, start, shlex.split(joined, comments=True), skip))
    return found


def all_commands() -> list[DocCommand]:
    return [command for path in doc_order() for command in commands_of(path)]


def test_the_docs_commands_are_found_and_name_things_the_examples_build():
    commands = all_commands()
    run = [c for c in commands if not c.skip]
    assert len(run) >= 20, [c.where for c in run]
    text = " ".join(" ".join(c.argv) for c in run)
    for never_built in ("qa-demo@", "prefs@", "cmedins@latest", "runs/sft/merged", "[--store"):
        assert never_built not in text
    assert all(c.argv[0] in ("medcurate", "export") for c in commands)


@pytest.mark.slow
@pytest.mark.timeout(2400)    # some thirty CLI processes, each importing torch, on a shared CPU
def test_every_docs_command_runs_in_order_on_a_demo_store(tmp_path):
    pytest.importorskip("trl", reason="the train extra is not installed")
    (tmp_path / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    env = {"MEDCURATE_STORE": str(tmp_path / "datasets"), "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", "")}
    env["MEDCURATE_DEID_SECRET"] = ""
    for command in all_commands():
        if command.skip:
            continue
        if command.argv[0] == "export":
            env.update(assignment.split("=", 1) for assignment in command.argv[1:])
            continue
        result = run_medcurate(*command.argv[1:], cwd=tmp_path, env=env)
        assert result.returncode == 0, (f"{command.where}: {shlex.join(command.argv)} exited {result.returncode}:\n"
                                        f"{result.stderr[-3000:]}")
        assert "Traceback" not in result.stderr, command.where
