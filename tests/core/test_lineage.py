"""Lineage of dataset versions: sources by path and sha256, input versions by the id read (never
@latest), and `medcurate lineage` naming the broken link when a file changed or a version is gone."""
from __future__ import annotations

import json
import shutil

import pytest

from medcurate.build import build
from medcurate.errors import MedcurateError
from medcurate.lineage import lineage_path, resolve_adapter, trace
from medcurate.recipe import recipe_from_dict
from tests.conftest import run_medcurate


def _two_versions(tmp_path):
    store = tmp_path / "store"
    source = tmp_path / "qa.jsonl"
    source.write_text(json.dumps({"instruction": "头疼怎么办", "answer": "多休息"}, ensure_ascii=False) + "\n",
                      encoding="utf-8")
    first = build(recipe_from_dict({"name": "qa", "kind": "instruction",
                                    "sources": [{"name": "qa", "path": "qa.jsonl", "format": "jsonl"}]},
                                   base_dir=tmp_path, origin="qa"), store=store).version
    second = build(recipe_from_dict({"name": "qa-again", "kind": "instruction",
                                     "sources": [{"name": "qa", "path": "qa@latest", "format": "dataset"}]},
                                    base_dir=tmp_path, origin="qa-again"), store=store).version
    return store, source, first, second


def test_a_version_built_from_a_version_records_the_id_read(tmp_path):
    store, source, first, second = _two_versions(tmp_path)
    entry = second.manifest["sources"][0]
    assert entry["version"] == entry["file"] == first.ref and "@latest" not in json.dumps(entry)
    lineage = json.loads((second.path / "lineage.json").read_text(encoding="utf-8"))
    assert lineage["inputs"][0]["ref"] == first.ref and lineage["inputs"][0]["type"] == "version"
    tree = trace(second.ref, store)
    assert [node.label for node in tree.source_files()] == [str(source.resolve())]
    assert tree.problems() == []
    shown = run_medcurate("lineage", second.ref, "--store", str(store), check=True)
    assert str(source.resolve()) in shown.stdout and first.ref in shown.stdout


def test_a_changed_source_file_is_named_as_the_broken_link(tmp_path):
    store, source, _, second = _two_versions(tmp_path)
    source.write_text(source.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    broken = run_medcurate("lineage", second.ref, "--store", str(store))
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert f"{source.resolve()}: file changed since (sha256 differs)" in broken.stderr
    as_json = json.loads(run_medcurate("lineage", second.ref, "--store", str(store), "--json").stdout)
    assert as_json["problems"] == [f"{source.resolve()}: file changed since (sha256 differs)"]


def test_a_deleted_input_version_is_named_as_the_broken_link(tmp_path):
    store, _, first, second = _two_versions(tmp_path)
    shutil.rmtree(first.path)
    assert trace(second.ref, store).problems() == [f"{first.ref}: version deleted (not found in the store)"]


def test_adapter_resolution_one_meaning_and_one_line_error(tmp_path):
    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    (run / "lineage.json").write_text("{}", encoding="utf-8")
    assert resolve_adapter(run).adapter_dir == resolve_adapter(run / "adapter").adapter_dir == (run / "adapter").resolve()
    assert resolve_adapter(run / "adapter").run_dir == run.resolve()
    with pytest.raises(MedcurateError, match="no adapter here: give a run directory"):
        resolve_adapter(tmp_path)
    assert lineage_path(tmp_path / "c.jsonl").name == "c.jsonl.lineage.json"
