"""Exports other tools read as documented, validate's file:line:field report, and the splits' guarantees."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
from conftest import REPO, run_medcurate
from datasets import load_dataset

from medcurate.build import build
from medcurate.export import export_version
from medcurate.recipe import SplitConfig, load_recipe, recipe_from_dict
from medcurate.splits import assign_splits
from medcurate.validate import validate_file

EXAMPLE = REPO / "examples" / "recipes" / "consultation_qa.yaml"

# The keys LLaMA-Factory's data/README documents for a dataset_info.json entry.
LLAMAFACTORY_KEYS = {"hf_hub_url", "ms_hub_url", "script_url", "cloud_file_name", "file_name", "file_sha1", "subset",
                     "split", "folder", "num_samples", "ranking", "formatting", "columns", "tags"}
LLAMAFACTORY_COLUMNS = {"prompt", "query", "response", "history", "messages", "system", "tools", "images", "videos",
                        "audios", "chosen", "rejected", "kto_tag"}
LLAMAFACTORY_TAGS = {"role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag",
                     "system_tag"}


def _publish(tmp_path, kind: str, rows: list[dict]):
    data = tmp_path / f"{kind}.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    recipe = recipe_from_dict({"name": f"demo-{kind}", "kind": kind, "sources": [{"name": kind, "path": str(data)}]})
    return build(recipe, store=tmp_path / "store").version


DIALOGUE = [{"messages": [{"role": "system", "content": "你是一名全科医生。"},
                          {"role": "user", "content": "我头痛两天了。"},
                          {"role": "assistant", "content": "有没有发热或呕吐？"},
                          {"role": "user", "content": "没有，就是睡不好。"},
                          {"role": "assistant", "content": "可能是紧张性头痛，注意休息。"}], "department": "神经内科"}]
PREFERENCE = [{"prompt": [{"role": "user", "content": "孩子发烧39度怎么办？"}],
               "chosen": "先物理降温并按体重用退热药，持续高热请就医。", "rejected": "吃点抗生素就好。",
               "ratings": {"safety": "A", "professionalism": "A", "fluency": "tie"}}]


def test_trl_export_loads_into_the_columns_trl_expects(tmp_path):
    instruction = build(load_recipe(EXAMPLE), store=tmp_path / "store").version
    dialogue = _publish(tmp_path, "conversation", DIALOGUE)
    preference = _publish(tmp_path, "preference", PREFERENCE)
    expectations = {instruction.ref: {"prompt", "completion"}, dialogue.ref: {"messages"},
                    preference.ref: {"prompt", "chosen", "rejected"}}
    for ref, columns in expectations.items():
        out = tmp_path / "trl" / ref.replace("@", "_")
        result = run_medcurate("datasets", "export", ref, "--format", "trl", "--out", str(out),
                               "--store", str(tmp_path / "store"), check=True)
        files = {f.stem: str(f) for f in out.glob("*.jsonl")}
        loaded = load_dataset("json", data_files=files)
        assert set(loaded["train"].column_names) == columns, result.stdout
        first = loaded["train"][0]
        for column in columns:
            assert all(set(m) == {"role", "content"} for m in first[column])
    loaded = load_dataset("json", data_files=str(tmp_path / "trl" / dialogue.ref.replace("@", "_") / "train.jsonl"))
    assert [m["role"] for m in loaded["train"][0]["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    loaded = load_dataset("json", data_files=str(tmp_path / "trl" / preference.ref.replace("@", "_") / "train.jsonl"))
    assert loaded["train"][0]["chosen"] == [{"role": "assistant", "content": PREFERENCE[0]["chosen"]}]


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt"])
def test_llamafactory_exports_follow_the_documented_dataset_info_schema(tmp_path, fmt):
    versions = [build(load_recipe(EXAMPLE), store=tmp_path / "store").version,
                _publish(tmp_path, "conversation", DIALOGUE), _publish(tmp_path, "preference", PREFERENCE)]
    for version in versions:
        out = tmp_path / fmt / version.name
        export_version(version.ref, fmt, out, store=tmp_path / "store")
        info = json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))
        assert set(info) == {f"{version.name}_{split}" for split in version.manifest["splits"]}
        for entry in info.values():
            assert set(entry) <= LLAMAFACTORY_KEYS
            assert entry["formatting"] == fmt
            assert entry["ranking"] is (version.manifest["kind"] == "preference")
            assert set(entry["columns"]) <= LLAMAFACTORY_COLUMNS
            assert set(entry.get("tags", {})) <= LLAMAFACTORY_TAGS
            records = json.loads((out / entry["file_name"]).read_text(encoding="utf-8"))
            for record in records:
                assert set(entry["columns"].values()) <= set(record), "every declared column exists"
            report = validate_file(out / entry["file_name"], kind=fmt)
            assert report.problems == []
    history = json.loads((tmp_path / "alpaca" / "demo-conversation" / "demo-conversation_train.json").read_text()) \
        if fmt == "alpaca" else None
    if history:
        assert history[0]["history"] == [["我头痛两天了。", "有没有发热或呕吐？"]]
        assert history[0]["system"] == "你是一名全科医生。"


def test_validate_reports_every_problem_as_file_line_field(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([
        {"instruction": "头痛怎么办", "input": "", "output": "多休息"},
        {"instruction": "", "input": "", "output": "空"},
        {"instruction": "发热", "input": 3, "output": ""},
    ], ensure_ascii=False, indent=2), encoding="utf-8")
    result = run_medcurate("datasets", "validate", str(bad), "--kind", "alpaca")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"{bad}:7:instruction: missing or empty", f"{bad}:12:input: must be a string",
                                          f"{bad}:12:output: missing or empty"]
    sharegpt = tmp_path / "s.jsonl"
    sharegpt.write_text(json.dumps({"conversations": [{"from": "gpt", "value": "你好"}]}, ensure_ascii=False) + "\n")
    problems = validate_file(sharegpt, kind="auto").problems
    assert problems == [f"{sharegpt}:1:conversations[0].from: expected human or observation at position 0, got 'gpt'",
                        f"{sharegpt}:1:conversations: must end on a gpt turn (even number of turns)"]


def test_diff_names_changed_sources_and_rows(tmp_path):
    data = tmp_path / "a.jsonl"
    row = {"instruction": "问", "query": "", "answer": "答一", "task": "qa"}
    data.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    recipe = {"name": "d", "kind": "instruction", "sources": [{"name": "a", "path": str(data)}]}
    first = build(recipe_from_dict(recipe), store=tmp_path / "s").version
    data.write_text(json.dumps(row, ensure_ascii=False) + "\n" + json.dumps(dict(row, answer="答二"), ensure_ascii=False)
                    + "\n", encoding="utf-8")
    second = build(recipe_from_dict(recipe), store=tmp_path / "s").version
    assert second.ref != first.ref
    text = run_medcurate("datasets", "diff", first.ref, "d@latest", "--store", str(tmp_path / "s"), check=True).stdout
    assert "source a: content changed" in text
    assert "split train: 1 -> 2 rows (+1 added, -0 removed, 1 kept)" in text


def _rows(n_patients=300):
    rows = []
    for patient in range(n_patients):
        department = ["心内科", "儿科", "骨科", "皮肤科"][patient % 7 % 4]
        for visit in range(1 + patient % 3):
            rows.append({"id": f"{patient}-{visit}", "patient": f"p{patient}", "department": department})
    return rows


def test_splits_are_seeded_stratified_and_keep_patients_together():
    rows = _rows()
    config = SplitConfig(seed=7, validation=60, test=60, stratify="department", group="patient", max_fraction=0.2)
    splits, notes = assign_splits(rows, config)
    again, _ = assign_splits(list(rows), config)
    assert {k: [r["id"] for r in v] for k, v in splits.items()} == {k: [r["id"] for r in v] for k, v in again.items()}
    assert sum(len(v) for v in splits.values()) == len(rows) and notes == []
    patients = {split: {r["patient"] for r in part} for split, part in splits.items()}
    assert not (patients["train"] & patients["test"]) and not (patients["train"] & patients["validation"])
    assert not (patients["validation"] & patients["test"])
    overall = Counter(r["department"] for r in rows)
    for split in ("validation", "test"):
        assert 55 <= len(splits[split]) <= 70
        shares = Counter(r["department"] for r in splits[split])
        for department, count in overall.items():
            assert abs(shares[department] / len(splits[split]) - count / len(rows)) < 0.08
    other, _ = assign_splits(rows, SplitConfig(seed=8, validation=60, test=60, stratify="department", group="patient"))
    assert {r["id"] for r in other["test"]} != {r["id"] for r in splits["test"]}


def test_fixed_sizes_scale_down_for_small_inputs_and_say_so():
    splits, notes = assign_splits(_rows(20), SplitConfig(seed=1, validation=2000, test=2000, max_fraction=0.1))
    assert len(splits["test"]) == len(splits["validation"]) == 3
    assert notes == ["test: asked for 2000 rows, scaled down to 3 (10% of 39)",
                     "validation: asked for 2000 rows, scaled down to 3 (10% of 39)"]


def test_non_editable_install_ships_data_folders(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), str(REPO)], check=True, capture_output=True, cwd=tmp_path)
    code = ("import medcurate, medcurate.resources as r; print(medcurate.__file__);"
            "print(*[r.data_folder(f) for f in r.DATA_FOLDERS], sep='\\n')")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, check=True)
    lines = result.stdout.split()
    assert lines[0].startswith(str(target))
    for folder in lines[1:]:
        assert folder.startswith(str(target)) and "_data" in folder
    assert (target / "medcurate" / "_data" / "templates").is_dir()
