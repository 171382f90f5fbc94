"""The house rules that keep the code base in one shape: the core build imports no feature,
source parsers sit in ``sources`` modules, every feature is a command group with verbs, and
the short forms earlier issues wrote down still run."""
from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest

from medcurate import cli as cli_module
from medcurate.pipeline import publish_checks, register_source_reader, register_step, source_formats, steps

REPO = Path(__file__).resolve().parents[2]
FEATURES = ("kg", "deid", "ehr", "cmedins", "mixing", "annotate", "train")
# the core: every top-level module, the build engines and the generic steps
CORE_MODULES = sorted(str(path.relative_to(REPO / "medcurate"))
                      for pattern in ("*.py", "engines/*.py", "steps/*.py")
                      for path in (REPO / "medcurate").glob(pattern))


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


# known exception: the privacy gate's stamp check, which the streaming engine and privacy.py read to
# state a version's privacy (a candidate to move into the core); every other feature rule reaches
# the build as a registered publish check
SHARED_LEAVES = {"medcurate.deid.gate"}


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_modules_import_no_feature_package(module):
    path = REPO / "medcurate" / module
    features = {name for name in _imported_modules(path) - SHARED_LEAVES
                if name.split(".")[:2] in (["medcurate", feature] for feature in FEATURES)}
    assert not features, f"medcurate/{module} imports feature code: {sorted(features)}"


def test_every_source_parser_lives_in_a_sources_module():
    """Of the package's formats: the tests register their own (named ``*_for_tests``) beside the test."""
    misplaced = {}
    for name, source_format in source_formats().items():
        function = source_format.parse or source_format.reader
        if not function.__module__.endswith("sources") and not name.endswith("_for_tests"):
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


def test_a_registry_name_means_one_thing():
    def another_dedupe(rows, ctx):
        """Not the core dedupe."""
        return rows

    with pytest.raises(ValueError, match="step 'dedupe' is registered twice: medcurate.steps.core.dedupe and"):
        register_step("dedupe")(another_dedupe)
    assert steps()["dedupe"].function.__module__ == "medcurate.steps.core"

    def another_dataset_reader(spec, ctx):
        """Not the core reader."""
        return []

    with pytest.raises(ValueError, match="source format 'dataset' is registered twice"):
        register_source_reader("dataset")(another_dataset_reader)


def test_one_rule_for_documentation():
    def documented(rows, ctx):
        """Documented here."""
        return rows

    with pytest.raises(ValueError, match="docstring or doc=, not both"):
        register_step("documented_twice_for_tests", doc="and here")(documented)
    shown = {name: info.doc for name, info in source_formats().items()
             if (info.parse or info.reader).__module__.startswith("medcurate.")}
    shown.update({name: info.doc for name, info in steps().items() if info.function.__module__.startswith("medcurate.")})
    assert all(shown.values()), [name for name, doc in shown.items() if not doc]
    assert shown["39health"].startswith("39Health KG disease.csv")
    assert shown["triples_tsv"].startswith("Generic triples (tsv)")


def test_architecture_doc_names_every_module():
    """docs/architecture.md is the map a new contributor reads: every core module and every
    feature package's module is on it."""
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    package = REPO / "medcurate"
    missing = [path.name for path in package.glob("*.py")
               if path.stem not in ("__init__", "__main__") and f"`{path.name}`" not in text]
    for folder in sorted(p for p in package.iterdir() if (p / "__init__.py").exists()):
        if folder.name == "steps":
            continue
        modules = [p.stem for p in folder.iterdir() if p.suffix == ".py" and p.stem != "__init__"]
        modules += [p.name for p in folder.iterdir() if (p / "__init__.py").exists()]
        row = next((line for line in text.splitlines() if line.startswith(f"| `{folder.name}` |")), "")
        missing += [f"{folder.name}/{name}" for name in modules if f"`{name}" not in row]
    assert not missing, f"docs/architecture.md does not mention {missing}"
