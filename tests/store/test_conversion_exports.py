"""One conversion for every consumer (#11): mixed-type columns decoded on read, the system turn and
the history kept in every export format, EHR rows alike in export and training; exports are
all-or-nothing, stream, merge dataset_info.json and take a system prompt."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, run_medcurate

from medcurate.build import build
from medcurate.conversion import EHR_INSTRUCTION
from medcurate.errors import MedcurateError
from medcurate.export import export_version
from medcurate.recipe import recipe_from_dict
from medcurate.store import load, load_rows
from medcurate.train.data import load_training_data

SYSTEM = "你是一名儿科医生。"
MIXED = [
    {"prompt": "孩子发烧39度怎么办？", "chosen": "先物理降温，按体重用退热药。", "rejected": "吃点抗生素就好。"},
    {"prompt": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "孩子咳嗽"},
                {"role": "assistant", "content": "几天了？"}, {"role": "user", "content": "三天，有痰"}],
     "chosen": "多喝温水，痰多或发热请就医。", "rejected": "不用管。"},
    {"prompt": "[这是一个以方括号开头的普通问题]", "chosen": "普通回答。", "rejected": "错误回答。"},
]


def _publish(tmp_path, name, kind, rows, steps=None):
    data = tmp_path / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    recipe = recipe_from_dict({"name": name, "kind": kind, "sources": [{"path": str(data)}], "steps": steps or []})
    return build(recipe, store=tmp_path / "store").version


@pytest.fixture
def mixed(tmp_path):
    return _publish(tmp_path, "prefs", "preference", MIXED)


def test_mixed_prompt_column_is_decoded_by_every_reader(tmp_path, mixed):
    assert mixed.manifest["json_columns"] == ["prompt"]
    rows = load_rows(mixed)["train"]
    assert [r["prompt"] for r in rows] == [m["prompt"] for m in MIXED], "a string that looks like JSON stays a string"
    dataset = load(mixed)["train"]
    assert [r["prompt"] for r in dataset] == [m["prompt"] for m in MIXED]
    _, train, _ = load_training_data(mixed.ref, "dpo", store=tmp_path / "store")
    assert train[1]["prompt"][0] == {"role": "system", "content": SYSTEM}
    assert len(train[1]["prompt"]) == 4


def test_every_export_format_keeps_the_system_turn_and_the_history(tmp_path, mixed):
    store = tmp_path / "store"
    files = {fmt: export_version(mixed.ref, fmt, tmp_path / fmt, store=store) for fmt in ("trl", "alpaca", "sharegpt", "jsonl")}
    trl = [json.loads(line) for line in (tmp_path / "trl" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert trl[0]["prompt"] == [{"role": "user", "content": MIXED[0]["prompt"]}]
    assert trl[1]["prompt"] == MIXED[1]["prompt"]
    assert trl[2]["prompt"] == [{"role": "user", "content": MIXED[2]["prompt"]}]
    alpaca = json.loads(next(p for p in files["alpaca"] if p.name.endswith("_train.json")).read_text(encoding="utf-8"))
    assert alpaca[1]["system"] == SYSTEM and alpaca[1]["history"] == [["孩子咳嗽", "几天了？"]]
    assert alpaca[1]["instruction"] == "三天，有痰"
    assert alpaca[0] | {"history": None} == {"instruction": MIXED[0]["prompt"], "input": "", "system": "",
                                             "chosen": MIXED[0]["chosen"], "rejected": MIXED[0]["rejected"],
                                             "history": None}
    sharegpt = json.loads(next(p for p in files["sharegpt"] if p.name.endswith("_train.json")).read_text(encoding="utf-8"))
    assert sharegpt[1]["system"] == SYSTEM
    assert [t["from"] for t in sharegpt[1]["conversations"]] == ["human", "gpt", "human"]
    plain = [json.loads(line) for line in (tmp_path / "jsonl" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["prompt"] for r in plain] == [m["prompt"] for m in MIXED]


def test_ehr_rows_read_the_same_in_export_and_training(tmp_path):
    version = _publish(tmp_path, "notes", "ehr",
                       [{"department": "内科", "input": "主诉：咳嗽三天。", "diagnosis": "上呼吸道感染"}],
                       steps=[{"deid": {"fields": ["input", "diagnosis"]}}])
    export_version(version.ref, "trl", tmp_path / "trl", store=tmp_path / "store")
    exported = json.loads((tmp_path / "trl" / "train.jsonl").read_text(encoding="utf-8"))
    _, train, _ = load_training_data(version.ref, "sft", store=tmp_path / "store")
    assert exported["prompt"] == train[0]["prompt"]
    assert exported["prompt"][0]["content"].startswith(EHR_INSTRUCTION)


def test_system_prompt_option_for_trl_and_sharegpt(tmp_path, mixed):
    store = tmp_path / "store"
    run_medcurate("datasets", "export", mixed.ref, "--format", "trl", "--out", str(tmp_path / "t"),
                  "--system-prompt", "你是医生。", "--store", str(store), check=True)
    trl = [json.loads(line) for line in (tmp_path / "t" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert trl[0]["prompt"][0] == {"role": "system", "content": "你是医生。"}
    assert trl[1]["prompt"][0] == {"role": "system", "content": SYSTEM}, "the row's own system turn wins"
    export_version(mixed.ref, "sharegpt", tmp_path / "s", store=store, system_prompt="你是医生。")
    sharegpt = json.loads(next((tmp_path / "s").glob("*_train.json")).read_text(encoding="utf-8"))
    assert [r["system"] for r in sharegpt] == ["你是医生。", SYSTEM, "你是医生。"]
    with pytest.raises(MedcurateError, match="system-prompt applies to"):
        export_version(mixed.ref, "jsonl", tmp_path / "j", store=store, system_prompt="x")


def test_dataset_info_is_merged_with_versioned_entry_names(tmp_path, mixed):
    out = tmp_path / "LLaMA-Factory" / "data"
    out.mkdir(parents=True)
    (out / "dataset_info.json").write_text(json.dumps({"identity": {"file_name": "identity.json"}}), encoding="utf-8")
    export_version(mixed.ref, "alpaca", out, store=tmp_path / "store")
    second = _publish(tmp_path, "prefs", "preference", MIXED[:2])
    export_version(second.ref, "alpaca", out, store=tmp_path / "store")
    info = json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))
    assert set(info) == {"identity", f"{mixed.ref}_train", f"{second.ref}_train"}
    assert (out / info[f"{mixed.ref}_train"]["file_name"]).exists()
    assert info[f"{mixed.ref}_train"]["file_name"] != info[f"{second.ref}_train"]["file_name"]
    (out / "dataset_info.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(MedcurateError, match="refusing to overwrite"):
        export_version(mixed.ref, "sharegpt", out, store=tmp_path / "store")
    assert (out / "dataset_info.json").read_text(encoding="utf-8") == "{not json"


def _big_version(tmp_path, rows):
    data = tmp_path / "big.jsonl"
    with open(data, "w", encoding="utf-8") as handle:
        for i in range(rows):
            handle.write(json.dumps({"instruction": f"问题{i}", "query": "", "answer": "答" * 200, "task": "qa"},
                                    ensure_ascii=False) + "\n")
    recipe = recipe_from_dict({"name": "big", "kind": "instruction", "sources": [{"path": str(data)}]})
    return build(recipe, store=tmp_path / "store").version


def test_a_killed_export_leaves_no_file_that_looks_complete(tmp_path):
    version = _big_version(tmp_path, 40_000)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen([sys.executable, "-m", "medcurate", "datasets", "export", version.ref, "--format",
                                "alpaca", "--out", str(out), "--store", str(tmp_path / "store")], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(out.glob(".*.tmp-*")):
        time.sleep(0.02)
    assert process.poll() is None, "export finished before it could be killed; grow the version"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == []
    export_version(version.ref, "alpaca", out, store=tmp_path / "store")
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [], "the next export removes the leftovers"
    assert len(json.loads(next(out.glob("*_train.json")).read_text(encoding="utf-8"))) == 40_000
