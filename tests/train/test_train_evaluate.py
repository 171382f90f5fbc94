"""medcurate evaluate: answer-token loss, preference accuracy and multiple-choice accuracy on real inputs."""
from __future__ import annotations

import pytest

pytest.importorskip("trl", reason="the train extra is not installed")

import json

from medcurate.errors import MedcurateError
from medcurate.train.evaluate import answer_mask, evaluate_mcq, evaluate_split, load_model_for_eval, mcq_files
from medcurate.train.runner import run_training
from tests.conftest import run_medcurate, shared_path
from tests.train.conftest import CONVERSATIONS
from tests.train.train_helpers import repeated_batch


def test_answer_mask_selects_each_assistant_turn(train_world):
    _, tokenizer = load_model_for_eval(train_world["model"])
    ids, mask = answer_mask(tokenizer, CONVERSATIONS[0])
    answers = [m["content"] for m in CONVERSATIONS[0] if m["role"] == "assistant"]
    assert tokenizer.decode([t for t, keep in zip(ids, mask, strict=True) if keep]) == "".join(a + "<|im_end|>" for a in answers)


def test_trained_adapter_lowers_the_answer_loss(train_world, tmp_path):
    ref = train_world["refs"]["instruction"]
    run = run_training("sft", "clinicalgpt-sft", train_world["model"], ref, tmp_path / "run",
                       store=train_world["store"], overrides=repeated_batch(4, steps=8, lr=1e-2))
    base = evaluate_split(*load_model_for_eval(train_world["model"]), ref, "train", store=train_world["store"])
    tuned = evaluate_split(*load_model_for_eval(train_world["model"], run.run_dir), ref, "train",
                           store=train_world["store"])
    assert base["rows"] == tuned["rows"] == 4 and base["answer_tokens"] == tuned["answer_tokens"] > 0
    assert tuned["loss"] < base["loss"]

    preference = evaluate_split(*load_model_for_eval(train_world["model"]), train_world["refs"]["preference"],
                                "train", store=train_world["store"])
    assert 0.0 <= preference["preference_accuracy"] <= 1.0 and preference["rows"] == 4


def test_mcq_accuracy_on_a_written_csv_and_bad_csv_errors(train_world, tmp_path):
    good = tmp_path / "clinical.csv"
    good.write_text(",Question,A,B,C,D,Answer\n1,高血压首选检查是,血压测量,CT,MRI,胃镜,A\n"
                    "2,感冒常见症状是,咳嗽,骨折,脱发,失明,A\n", encoding="utf-8")
    result = evaluate_mcq(*load_model_for_eval(train_world["model"]), mcq_files(good))
    assert result["questions"] == 2 and result["accuracy"] in (0.0, 0.5, 1.0)
    bad = tmp_path / "bad.csv"
    bad.write_text(",Question,A,B,C,D,Answer\n1,问题,甲,乙,丙,丁,E\n", encoding="utf-8")
    with pytest.raises(MedcurateError) as error:
        evaluate_mcq(*load_model_for_eval(train_world["model"]), mcq_files(bad))
    assert error.value.line == 2 and error.value.field == "Answer"


def test_mcq_on_cmmlu_medical_from_the_command_line(train_world, tmp_path):
    folder = shared_path("data", "cmmlu-medical", "test")
    out = tmp_path / "mcq.json"
    run_medcurate("evaluate", "mcq", "--model", str(train_world["model"]), "--csv", str(folder / "anatomy.csv"),
                  "--limit", "5", "--out", str(out), check=True)
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["questions"] == 5 and result["subjects"]["anatomy"]["questions"] == 5
