"""The store defends itself (#11): every read checks the data against the manifest, refs stay
inside the store, damage to one version touches only that version, a full disk leaves nothing."""
from __future__ import annotations

import errno
import json
import os

import pytest
from conftest import run_medcurate

import medcurate.export
from medcurate.build import build
from medcurate.errors import MedcurateError
from medcurate.export import export_version
from medcurate.recipe import recipe_from_dict
from medcurate.store import VERSION_LOG, list_datasets, load, load_rows, resolve, verify_cache_path
from medcurate.train.data import load_training_data

ROWS = [{"instruction": "回答问题", "query": f"问题{i}", "answer": f"回答{i}", "task": "qa"} for i in range(6)]


def _publish(tmp_path, name="qa", rows=ROWS):
    data = tmp_path / f"{name}-{len(rows)}.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return build(recipe_from_dict({"name": name, "kind": "instruction", "sources": [{"path": str(data)}]}),
                 store=tmp_path / "store").version


def _tamper(path):
    """Same size, different bytes (and a new mtime): what an edit in place looks like."""
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))


def test_every_read_refuses_a_tampered_parquet_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDCURATE_CACHE", str(tmp_path / "cache"))
    version = _publish(tmp_path)
    store = tmp_path / "store"
    before = sorted(p.name for p in store.iterdir())
    assert len(load_rows(version)["train"]) == 6
    assert str((version.path / "data" / "train.parquet").resolve()) in json.loads(verify_cache_path().read_text()), \
        "the check is remembered by size and mtime"
    assert sorted(p.name for p in store.iterdir()) == before, "a read leaves the store untouched"
    _tamper(version.path / "data" / "train.parquet")
    reads = [lambda: load_rows(version.ref, store), lambda: load(version.ref, store),
             lambda: export_version(version.ref, "trl", tmp_path / "out", store=store),
             lambda: load_training_data(version.ref, "sft", store=store),
             lambda: build(recipe_from_dict({"name": "copy", "kind": "instruction",
                                             "sources": [{"path": version.ref, "format": "dataset"}]}), store=store)]
    for read in reads:
        with pytest.raises(MedcurateError, match="sha256 differs from the manifest"):
            read()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    result = run_medcurate("datasets", "export", version.ref, "--format", "jsonl", "--out", str(tmp_path / "o2"),
                           "--store", str(store))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "sha256 differs" in result.stderr


@pytest.mark.parametrize("ref", ["../qa", "/etc/passwd", "qa/../../x", "..", "qa@../../x", "qa@/abs"])
def test_a_ref_cannot_leave_the_store(tmp_path, ref):
    _publish(tmp_path)
    with pytest.raises(MedcurateError):
        resolve(ref, tmp_path / "store")


def test_names_are_checked_when_the_recipe_loads(tmp_path):
    for name in ("../evil", "a/b", ".."):
        with pytest.raises(MedcurateError, match="recipe.yaml:name:"):
            recipe_from_dict({"name": name, "kind": "instruction", "sources": [{"path": "missing.jsonl"}]},
                             origin="recipe.yaml")
        with pytest.raises(MedcurateError, match=r"recipe.yaml:sources\[0\].path:"):
            recipe_from_dict({"name": "ok", "kind": "instruction", "sources": [{"path": name, "format": "dataset"}]},
                             origin="recipe.yaml")


def test_a_damaged_manifest_affects_only_its_version(tmp_path):
    good = _publish(tmp_path, "good")
    bad = _publish(tmp_path, "bad")
    (bad.path / "manifest.json").write_text("{torn", encoding="utf-8")
    result = run_medcurate("datasets", "list", "--store", str(tmp_path / "store"), check=True)
    assert f"{good.ref}  instruction" in result.stdout
    assert f"{bad.ref}  DAMAGED" in result.stdout
    with pytest.raises(MedcurateError, match="manifest.json is not valid JSON"):
        load_rows(bad.ref, tmp_path / "store")
    assert len(load_rows(good.ref, tmp_path / "store")["train"]) == 6


def test_a_torn_log_line_is_skipped_and_not_appended_to(tmp_path):
    first = _publish(tmp_path)
    log = tmp_path / "store" / "qa" / VERSION_LOG
    with open(log, "a", encoding="utf-8") as handle:
        handle.write('{"version": "0123')
    assert [e["version"] for e in list_datasets(tmp_path / "store")["qa"]] == [first.version]
    second = _publish(tmp_path, rows=ROWS[:3])
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines[1] == '{"version": "0123'
    assert json.loads(lines[2])["version"] == second.version
    assert resolve("qa@latest", tmp_path / "store").version == second.version


def _disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_during_build_publishes_nothing(tmp_path, monkeypatch):
    first = _publish(tmp_path)
    log = tmp_path / "store" / "qa" / VERSION_LOG
    before = log.read_bytes()
    monkeypatch.setattr(os, "fsync", _disk_full)
    with pytest.raises(MedcurateError, match="disk full while publishing qa; nothing was published") as caught:
        _publish(tmp_path, rows=ROWS[:4])
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in (tmp_path / "store" / "qa").iterdir()) == sorted([first.version, VERSION_LOG])
    assert log.read_bytes() == before


def test_disk_full_during_export_leaves_nothing(tmp_path, monkeypatch):
    version = _publish(tmp_path)
    out = tmp_path / "out"
    real = medcurate.export._write_json_array

    def fill_the_disk(handle, rows):
        real(handle, rows)
        _disk_full()

    monkeypatch.setattr(medcurate.export, "_write_json_array", fill_the_disk)
    with pytest.raises(MedcurateError, match="disk full while writing; nothing was written") as caught:
        export_version(version.ref, "alpaca", out, store=tmp_path / "store")
    assert "\n" not in str(caught.value)
    assert list(out.iterdir()) == []
