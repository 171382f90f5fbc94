"""The store's promises: reproducible content-addressed versions, atomic publishing, conservation."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, run_medcurate

from medcurate.build import build
from medcurate.errors import ConservationError
from medcurate.pipeline import register_step
from medcurate.recipe import load_recipe, recipe_from_dict
from medcurate.store import list_datasets, load, resolve, verify

EXAMPLE = REPO / "examples" / "recipes" / "consultation_qa.yaml"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_recipe_twice_gives_same_version_and_identical_files(tmp_path):
    first = build(load_recipe(EXAMPLE), store=tmp_path / "a")
    second = build(load_recipe(EXAMPLE), store=tmp_path / "b")
    assert first.version.version == second.version.version
    assert _files(first.version.path) == _files(second.version.path)
    assert (first.version.path / "data" / "train.parquet").read_bytes() == (second.version.path / "data" / "train.parquet").read_bytes()


def test_changed_input_changes_version(tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text('{"instruction": "问", "answer": "答案一", "task": "qa", "query": ""}\n', encoding="utf-8")
    recipe = {"name": "tiny", "kind": "instruction", "sources": [{"name": "qa", "path": str(data)}]}
    one = build(recipe_from_dict(recipe), store=tmp_path / "s").version
    data.write_text('{"instruction": "问", "answer": "答案二", "task": "qa", "query": ""}\n', encoding="utf-8")
    two = build(recipe_from_dict(recipe), store=tmp_path / "s").version
    assert one.version != two.version
    assert resolve("tiny@latest", tmp_path / "s").version == two.version
    assert resolve(f"tiny@{one.version[:6]}", tmp_path / "s").version == one.version


def test_manifest_counts_add_up_and_name_every_reject(tmp_path):
    result = build(load_recipe(EXAMPLE), store=tmp_path)
    counts = result.manifest["counts"]
    assert counts["inputs_read"] == 20
    assert counts["rejects"] == {"malformed JSON": 1}
    assert counts["filtered"] == {"duplicate": 1, "too_short:answer": 1}
    assert counts["rows_written"] == 17 == sum(counts["splits"].values())
    rejects = [json.loads(line) for line in (result.version.path / "rejects.jsonl").read_text().splitlines()]
    assert rejects == [{"file": "consultations.jsonl", "line": 14, "reason": rejects[0]["reason"],
                        "source": "consultations", "step": "source:consultations"}]
    assert verify(result.version, tmp_path) == []


def test_tampered_manifest_count_is_detected(tmp_path):
    version = build(load_recipe(EXAMPLE), store=tmp_path).version
    manifest_path = version.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["counts"]["splits"]["train"] += 1
    manifest["counts"]["rows_written"] += 1
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    problems = verify(version, tmp_path)
    assert any("train.parquet" in p and "rows" in p for p in problems)
    assert any("does not hash to the version id" in p for p in problems)
    shown = run_medcurate("datasets", "show", version.ref, "--store", str(tmp_path))
    assert shown.returncode == 1 and "PROBLEMS" in shown.stdout


def test_a_step_that_loses_rows_fails_the_build(tmp_path):
    @register_step("test_lose_one_row")
    def lose_one(rows, ctx):
        return rows[1:]

    recipe = load_recipe(EXAMPLE)
    raw = dict(recipe.raw)
    raw["steps"] = list(raw["steps"]) + ["test_lose_one_row"]
    with pytest.raises(ConservationError, match="test_lose_one_row.*lost 1 row"):
        build(recipe_from_dict(raw, base_dir=recipe.base_dir), store=tmp_path)
    assert list_datasets(tmp_path) == {}


def _big_recipe(tmp_path: Path, rows: int) -> Path:
    data = tmp_path / "big.jsonl"
    with open(data, "w", encoding="utf-8") as handle:
        for index in range(rows):
            handle.write(json.dumps({"instruction": f"问题{index}：最近头晕怎么办？", "query": "",
                                     "answer": f"回答{index}：建议测量血压并到医院就诊。" * 3, "task": "qa",
                                     "department": ["内科", "外科", "儿科"][index % 3]}, ensure_ascii=False) + "\n")
    recipe = tmp_path / "big.yaml"
    recipe.write_text("name: big\nkind: instruction\nsources:\n  - {name: big, path: big.jsonl}\n"
                      "steps:\n  - dedupe: {fields: [instruction]}\n"
                      "splits: {seed: 1, validation: 0.1, test: 0.1, stratify: department}\n", encoding="utf-8")
    return recipe


def test_sigkill_at_any_moment_never_leaves_a_partial_version(tmp_path):
    recipe = _big_recipe(tmp_path, 60_000)
    store = tmp_path / "store"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "medcurate", "build", str(recipe), "--store", str(store)], env=env,
                   check=True, capture_output=True)
    full_duration = time.monotonic() - started
    killed = 0
    for fraction in (0.2, 0.4, 0.6, 0.8):
        shutil_store = tmp_path / f"store-{fraction}"
        process = subprocess.Popen([sys.executable, "-m", "medcurate", "build", str(recipe), "--store", str(shutil_store)],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(full_duration * fraction)
        process.send_signal(signal.SIGKILL)
        if process.wait() == -signal.SIGKILL:
            killed += 1
        folder = shutil_store / "big"
        versions = [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_dir()] if folder.exists() else []
        for version_dir in versions:
            assert verify(f"big@{version_dir.name}", shutil_store) == [], "a killed build left a broken version"
        listed = list_datasets(shutil_store)
        assert all(v["version"] in {p.name for p in versions} for v in listed.get("big", []))
    assert killed >= 2, "the build finished before it could be killed; make the input larger"
    rebuilt = run_medcurate("build", str(recipe), "--store", str(tmp_path / "store-0.2"), check=True)
    assert rebuilt.stdout.strip().startswith("big@")
    assert not list((tmp_path / "store-0.2" / "big").glob(".tmp-*")), "stale temporary folders are cleaned up"


def test_load_returns_datasetdict_with_all_splits(tmp_path):
    version = build(load_recipe(EXAMPLE), store=tmp_path).version
    loaded = load("consultation-qa@latest", store=tmp_path)
    assert set(loaded) == {"train", "validation", "test"}
    assert loaded["train"].num_rows == version.manifest["counts"]["splits"]["train"]
    row = loaded["train"][0]
    assert set(row["source"]) == {"name", "file", "line", "sha256"} and len(row["id"]) == 16
    assert {"instruction", "query", "answer", "task", "department"} <= set(loaded["train"].column_names)


def test_card_has_hf_yaml_header_with_counts_and_sources(tmp_path):
    import yaml

    version = build(load_recipe(EXAMPLE), store=tmp_path).version
    text = (version.path / "README.md").read_text(encoding="utf-8")
    header = yaml.safe_load(text.split("---")[1])
    own = header["medcurate"]
    assert own["version"] == version.version
    assert {s["name"] for s in own["sources"]} == {"consultations", "dialogue-gbk"}
    assert all(len(s["sha256"]) == 64 for s in own["sources"])
    assert header["dataset_info"]["splits"][0]["num_examples"] == version.manifest["counts"]["splits"]["train"]
    assert own["recipe"]["name"] == "consultation-qa"
    assert "medcurate_version" in own and "license_details" not in header


def test_curation_never_imports_torch(tmp_path):
    code = ("import sys; from medcurate.cli import main\n"
            "try:\n    main(['build', sys.argv[1], '--store', sys.argv[2]])\nexcept SystemExit:\n    pass\n"
            "from medcurate.pipeline import steps; steps()\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nprint('ok')")
    result = subprocess.run([sys.executable, "-c", code, str(EXAMPLE), str(tmp_path)], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.stdout.strip().endswith("ok"), result.stderr
