"""The house rules that keep the code base in one shape: the core build imports no feature,
source parsers sit in ``sources`` modules, every feature is a command group with verbs, and
the short forms earlier issues wrote down still run."""
from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest

from medcurate import cli as cli_module
from medcurate.pipeline import publish_checks, source_formats

REPO = Path(__file__).resolve().parents[2]
FEATURES = ("kg", "deid", "ehr", "cmedins", "mixing", "annotate", "train")
CORE_MODULES = ("build.py", "pipeline.py", "store.py", "recipe.py", "splits.py", "readers.py", "export.py",
                "card.py", "schemas.py", "commands.py", "sources.py")


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_modules_import_no_feature_package(module):
    path = REPO / "medcurate" / module
    if not path.exists():
        pytest.skip(f"{module} is not in this checkout")
    features = {name for name in _imported_modules(path)
                if name.split(".")[:2] in (["medcurate", feature] for feature in FEATURES)}
    assert not features, f"medcurate/{module} imports feature code: {sorted(features)}"


def test_every_source_parser_lives_in_a_sources_module():
    misplaced = {}
    for name, source_format in source_formats().items():
        function = source_format.parse or source_format.reader
        if not function.__module__.endswith("sources"):
            misplaced[name] = function.__module__
    assert not misplaced


def test_the_ehr_privacy_gate_is_a_registered_publish_check():
    assert publish_checks("ehr"), "the EHR kind must register the deid gate as a publish check"
    assert publish_checks("instruction") == []


def test_every_feature_command_is_a_group_with_verbs():
    core_commands = {"build", "steps", "lineage"}   # lineage PATH_OR_REF: the interface issue #17 names
    for name in cli_module.LAZY_COMMANDS:
        command = cli_module.LazyGroup().get_command(None, name)
        if name in core_commands or command is None:
            continue
        assert isinstance(command, click.Group) and command.commands, f"medcurate {name} has no verbs"


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out + captured.err


def test_a_misspelled_verb_is_named_not_read_as_a_file(capsys):
    code, output = _run(["deid", "chek", "out.jsonl", "--field", "text"], capsys)
    assert code == 2 and "no verb 'chek' (did you mean 'check'?)" in output


def test_written_short_forms_run_their_verb(tmp_path, capsys):
    records = tmp_path / "notes.jsonl"
    records.write_text('{"id": 1, "text": "患者张三，电话13812345678。"}\n', encoding="utf-8")
    out, spans, report = tmp_path / "out.jsonl", tmp_path / "spans.jsonl", tmp_path / "report.json"
    cli_module.main(["deid", str(records), "--field", "text", "--out", str(out), "--spans", str(spans),
                     "--report", str(report)])
    assert "13812345678" not in out.read_text(encoding="utf-8")
    code, output = _run(["cmedins", "--name", "nothing"], capsys)
    assert code == 2 and "give at least one of --cdee" in output
