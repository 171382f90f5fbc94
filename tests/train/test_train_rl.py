"""The RL stage on tiny local models: a reward model trained to prefer answers full of one character,
a policy from an SFT adapter, RLOO with a KL penalty toward that adapter."""
from __future__ import annotations

import json
import random

import pytest

pytest.importorskip("trl")

from medcurate.errors import MedcurateError  # noqa: E402
from tests.train.train_helpers import FAST, build_version, losses  # noqa: E402

pytestmark = pytest.mark.slow

QUESTIONS = ["头疼怎么办", "咳嗽吃什么药", "发烧多少度要就医", "失眠怎么调理", "胃痛怎么办", "高血压注意什么",
             "腰痛怎么缓解", "过敏怎么办"]
FILLER = "的了是在有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行"


def _rl_overrides(steps: int) -> list[str]:
    return [*FAST, "per_device_train_batch_size=16", "num_generations=8", "max_completion_length=4",
            f"max_steps={steps}", "learning_rate=5e-2", "lr_scheduler_type=constant", "warmup_steps=0",
            "beta=0.01", "temperature=1.0", "logging_steps=1", "gradient_checkpointing=false"]


@pytest.fixture(scope="module")
def rl_world(tmp_path_factory):
    """Prompts, preference pairs whose chosen answer is all 好, a tiny model, an SFT run and a reward run."""
    from medcurate.train.runner import run_training
    from medcurate.train.tiny import build_tiny_model

    rng = random.Random(0)
    folder = tmp_path_factory.mktemp("rl")
    store = folder / "store"
    prompts = build_version(folder, store, "rl-prompts", "instruction",
                     [{"instruction": q, "query": "", "answer": "建议就医。", "task": "qa"} for q in QUESTIONS])
    pairs = [{"prompt": q, "chosen": "好" * rng.randint(2, 6),
              "rejected": "".join(rng.choice(FILLER) for _ in range(rng.randint(2, 6)))}
             for q in QUESTIONS for _ in range(4)]
    prefs = build_version(folder, store, "rl-prefs", "preference", pairs)
    texts = QUESTIONS + [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs] + ["建议就医。"]
    model = build_tiny_model(texts, folder / "tiny", vocab_size=400)
    sft = run_training("sft", "clinicalgpt-sft", model, prompts, folder / "sft", store=store,
                       overrides=[*FAST, "per_device_train_batch_size=8", "max_steps=2"])
    reward = run_training("reward", "clinicalgpt-reward", model, prefs, folder / "rm", store=store,
                          overrides=[*FAST, "per_device_train_batch_size=16", "num_train_epochs=15",
                                     "learning_rate=5e-3", "lr_scheduler_type=constant", "warmup_steps=0",
                                     "max_length=32"])
    return {"store": store, "prompts": prompts, "prefs": prefs, "model": model, "sft": sft.run_dir,
            "reward": reward.run_dir, "root": folder}


def test_reward_rises_with_bounded_kl(rl_world):
    from medcurate.train.rl import run_rl

    result = run_rl("clinicalgpt-rl", rl_world["model"], rl_world["sft"], rl_world["reward"], rl_world["prompts"],
                    rl_world["root"] / "rl", store=rl_world["store"], overrides=_rl_overrides(24))
    rewards = losses(result.run_dir, "reward")
    kls = losses(result.run_dir, "kl")
    lengths = losses(result.run_dir, "completions/mean_length")
    assert len(rewards) == 24 and len(kls) == 24 and len(lengths) == 24
    assert all("reward_std" in json.loads(line) for line in
               (result.run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if '"reward"' in line)
    assert kls[0] == pytest.approx(0.0, abs=1e-4)          # the policy starts as the SFT reference
    assert kls[1] != 0 and sum(kls[1:]) / len(kls[1:]) > 0  # it moves away from the reference after an update
    assert max(abs(k) for k in kls) < 5.0                   # and the penalty keeps it near
    assert sum(rewards[-6:]) / 6 > sum(rewards[:6]) / 6 + 0.5
    lineage = json.loads((result.run_dir / "lineage.json").read_text(encoding="utf-8"))
    assert lineage["stage"] == "rl" and lineage["reference"] == "sft_adapter_frozen_copy"
    assert lineage["dataset"]["ref"] == rl_world["prompts"]
    assert lineage["reward_run"]["dataset"]["ref"] == rl_world["prefs"]
    assert lineage["sft_run"]["dataset"]["ref"] == rl_world["prompts"]
    assert all(len(digest) == 64 for digest in lineage["reward_run"]["adapter_sha256"].values())
    assert "adapter_config.json" in lineage["reward_run"]["adapter_sha256"]
    assert (result.output_dir / "adapter_config.json").is_file()
    assert not (result.output_dir / "ref").exists()


def test_reward_run_must_be_a_reward_model(rl_world):
    from medcurate.train.rl import run_rl

    with pytest.raises(MedcurateError, match="must be a reward model.*sft run"):
        run_rl("clinicalgpt-rl", rl_world["model"], rl_world["sft"], rl_world["sft"], rl_world["prompts"],
               rl_world["root"] / "rl-bad-rm", store=rl_world["store"], overrides=_rl_overrides(1))
    assert not (rl_world["root"] / "rl-bad-rm").exists()


def test_adapter_from_another_base_is_refused(rl_world, tmp_path):
    from medcurate.train.rl import run_rl
    from medcurate.train.tiny import build_tiny_model

    other = build_tiny_model(QUESTIONS, tmp_path / "other", vocab_size=300, hidden_size=32)
    with pytest.raises(MedcurateError, match="another base model"):
        run_rl("clinicalgpt-rl", other, rl_world["sft"], rl_world["reward"], rl_world["prompts"],
               tmp_path / "rl", store=rl_world["store"], overrides=_rl_overrides(1))


def test_prompt_version_of_the_wrong_kind_is_refused(rl_world, tmp_path):
    from medcurate.train.data import check_kind

    check_kind("rl", "preference", "x@1")
    with pytest.raises(MedcurateError, match="needs prompts"):
        check_kind("rl", "ranking", "x@1")


def test_cli_refuses_before_training(rl_world, tmp_path):
    from conftest import run_medcurate

    result = run_medcurate("train", "rl", "--recipe", "ivygpt-rl", "--model", str(rl_world["model"]),
                           "--adapter", str(rl_world["reward"]), "--reward", str(rl_world["reward"]),
                           "--data", rl_world["prompts"], "--out", str(tmp_path / "run"),
                           "--store", str(rl_world["store"]))
    assert result.returncode == 2
    assert "reward-model adapter" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_prompts_from_a_conversation_end_before_the_last_answer():
    from medcurate.train.data import to_prompt_row

    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]
    assert to_prompt_row({"messages": messages}, "conversation")["prompt"] == messages[:3]
    row = {"prompt": [{"role": "user", "content": "q"}], "chosen": "x", "rejected": "y"}
    assert to_prompt_row(row, "preference")["prompt"] == [{"role": "user", "content": "q"}]
    assert to_prompt_row({"prompt": "q", "chosen": "x", "rejected": "y"}, "preference", "sys")["prompt"] == [
        {"role": "system", "content": "sys"}, {"role": "user", "content": "q"}]



def test_qlora_policy_runs_on_the_ivygpt_recipe(rl_world):
    pytest.importorskip("bitsandbytes")
    from medcurate.train.rl import run_rl

    result = run_rl("ivygpt-rl", rl_world["model"], rl_world["sft"], rl_world["reward"], rl_world["prompts"],
                    rl_world["root"] / "rl-qlora", store=rl_world["store"], overrides=_rl_overrides(2))
    assert result.lineage["base_model"]["loaded_in_4bit"] is True
    assert len(losses(result.run_dir, "kl")) == 2
    assert (result.output_dir / "adapter_model.safetensors").is_file()
