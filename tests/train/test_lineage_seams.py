"""The seams between training stages: lineage through merge, one --adapter, the DPO reference,
reward-model evaluation, and the evaluate command's edges."""
from __future__ import annotations

import pytest

pytest.importorskip("trl", reason="the train extra is not installed")

import json

from medcurate.lineage import trace
from medcurate.train.runner import merge_adapter, prepare_run, run_training
from tests.conftest import run_medcurate
from tests.train.train_helpers import FAST, repeated_batch


@pytest.fixture(scope="module")
def sft_run(train_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft") / "run"
    return run_training("sft", "clinicalgpt-sft", train_world["model"], train_world["refs"]["instruction"], out,
                        store=train_world["store"], overrides=repeated_batch(4, steps=4, lr=1e-2))


def _logits(model, tokenizer):
    import torch

    with torch.no_grad():
        return model(**tokenizer("高血压吃什么药？", return_tensors="pt")).logits


def test_merge_carries_the_run_forward_and_dpo_from_it_traces_to_the_sources(train_world, sft_run, tmp_path):
    merged = merge_adapter(sft_run.output_dir, tmp_path / "merged")          # the adapter folder: same meaning
    lineage = json.loads((merged / "lineage.json").read_text(encoding="utf-8"))
    assert lineage["artifact"] == "merged_model" and lineage["run_id"] == sft_run.lineage["run_id"]
    assert lineage["inputs"][0]["type"] == "run" and lineage["inputs"][0]["path"] == str(sft_run.run_dir.resolve())

    dpo = prepare_run("dpo", "medgo-dpo", merged, train_world["refs"]["preference"], tmp_path / "dpo",
                      store=train_world["store"], overrides=FAST)
    assert dpo.lineage["base_model"]["merged_from"] == str(sft_run.run_dir.resolve())
    assert dpo.lineage["dpo_reference"]["kind"] == "sft_policy"
    assert dpo.lineage["base_model"]["weights_sha256"] != json.loads(
        (sft_run.run_dir / "lineage.json").read_text(encoding="utf-8"))["base_model"]["weights_sha256"]
    files = {node.label for node in trace(str(tmp_path / "dpo"), train_world["store"]).source_files()}
    root = train_world["root"].resolve()
    assert {str(root / "qa.jsonl"), str(root / "prefs.jsonl")} <= files


def test_dpo_from_an_sft_adapter_compares_with_the_sft_policy(train_world, sft_run, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run = prepare_run("dpo", "medgo-dpo", train_world["model"], train_world["refs"]["preference"], tmp_path / "dpo",
                      store=train_world["store"], adapter=sft_run.run_dir, overrides=FAST)   # a run directory
    reference = run.lineage["dpo_reference"]
    assert reference["kind"] == "sft_policy" and reference["adapter_run"] == str(sft_run.run_dir.resolve())
    assert run.lineage["inputs"][-1]["type"] == "run"
    model = run.trainer.model
    model.eval()
    sft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(train_world["model"]), str(sft_run.output_dir))
    base = AutoModelForCausalLM.from_pretrained(train_world["model"])
    model.set_adapter("ref")
    as_reference = _logits(model, run.tokenizer)
    assert torch.allclose(as_reference, _logits(sft.eval(), run.tokenizer), atol=1e-5)
    assert not torch.allclose(as_reference, _logits(base.eval(), run.tokenizer), atol=1e-3)


def test_adapter_neither_run_nor_adapter_is_one_line(train_world, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (["train", "sft", "--recipe", "clinicalgpt-sft", "--model", str(train_world["model"]),
                  "--data", train_world["refs"]["instruction"], "--out", str(tmp_path / "r")],
                 ["annotate", "sample", "--prompts", train_world["refs"]["instruction"], "--model",
                  str(train_world["model"]), "--out", str(tmp_path / "c.jsonl")]):
        result = run_medcurate(*args, "--adapter", str(empty), "--store", str(train_world["store"]))
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1] == (
            f"medcurate: error: {empty}:adapter: no adapter here: give a run directory (with adapter/) or an "
            "adapter folder (with adapter_config.json)")


def test_reward_model_is_evaluated_pairwise_and_refused_by_loss(train_world, tmp_path):
    store, prefs = str(train_world["store"]), train_world["refs"]["preference"]
    reward = run_training("reward", "clinicalgpt-reward", train_world["model"], prefs, tmp_path / "rm",
                          store=train_world["store"], overrides=repeated_batch(4, steps=6, lr=1e-2))
    out = tmp_path / "not" / "yet" / "reward.json"
    run_medcurate("evaluate", "reward", "--model", str(reward.run_dir), "--data", prefs, "--split", "train",
                  "--store", store, "--out", str(out), check=True)
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["pairs"] == 4 and result["metric"] == "reward"
    assert result["pairwise_accuracy"] >= 0.75                        # trained on these very pairs
    margin = result["margin"]
    assert margin["min"] <= margin["median"] <= margin["max"] and sum(b["pairs"] for b in margin["histogram"]) == 4
    assert result["model"]["run"]["run_id"] == reward.lineage["run_id"]
    assert (out.parent / "reward.json.lineage.json").is_file()
    refused = run_medcurate("evaluate", "loss", "--model", str(train_world["model"]), "--adapter",
                            str(reward.run_dir), "--data", prefs, "--split", "train", "--store", store)
    assert refused.returncode == 2 and "this is a reward model" in refused.stderr
    assert "evaluate reward" in refused.stderr and "Traceback" not in refused.stderr


def test_evaluate_loss_names_the_model_and_checks_the_split_before_loading(train_world, sft_run, tmp_path):
    store, ref = str(train_world["store"]), train_world["refs"]["instruction"]
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    no_split = run_medcurate("evaluate", "loss", "--model", str(not_a_model), "--data", ref, "--store", store)
    assert no_split.returncode == 2 and "has neither a validation nor a test split" in no_split.stderr
    out = tmp_path / "new" / "folder" / "loss.json"
    done = run_medcurate("evaluate", "loss", "--model", str(train_world["model"]), "--adapter",
                         str(sft_run.output_dir), "--data", ref, "--split", "train", "--store", store,
                         "--out", str(out), check=True)
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["model"]["path"] == str(train_world["model"].resolve())
    assert result["model"]["run"]["run_id"] == sft_run.lineage["run_id"]
    assert "Traceback" not in done.stderr
    assert "kernels-community" not in done.stderr and "FutureWarning" not in done.stderr
    tree = trace(str(out), store)
    assert tree.kind == "evaluation" and not tree.problems()


def test_mcq_limit_counts_questions_over_all_files(train_world, tmp_path):
    from medcurate.train.evaluate import evaluate_mcq, load_model_for_eval, mcq_files

    for name in ("a", "b"):
        (tmp_path / f"{name}.csv").write_text(",Question,A,B,C,D,Answer\n" + "".join(
            f"{n},问题{n},甲,乙,丙,丁,A\n" for n in range(3)), encoding="utf-8")
    result = evaluate_mcq(*load_model_for_eval(train_world["model"]), mcq_files(tmp_path), limit=4)
    assert result["questions"] == 4
    assert {name: s["questions"] for name, s in result["subjects"].items()} == {"a": 3, "b": 1}


def test_the_internal_hold_out_is_saved(train_world, tmp_path):
    result = run_training("sft", "clinicalgpt-sft", train_world["model"], train_world["refs"]["instruction"],
                          tmp_path / "run", store=train_world["store"],
                          overrides=[*FAST, "validation=0.25", "max_steps=1"])
    held_out = result.lineage["eval_data"]
    assert held_out["source"] == "held_out_of_train" and held_out["rows"] == 1
    lines = (result.run_dir / held_out["file"]).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and "completion" in json.loads(lines[0])
