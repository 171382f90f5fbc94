"""`medcurate annotate sample`: k answers per prompt from an OpenAI-compatible endpoint (a local
stdlib server) and from a tiny local transformers model with a LoRA adapter."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from medcurate.build import build
from medcurate.recipe import recipe_from_dict
from tests.annotate.conftest import LocalChatCompletionsHandler
from tests.conftest import REPO, run_medcurate

PROMPT_ROWS = [
    {"instruction": "请回答患者的问题", "query": "发烧两天，咳嗽，需要去医院吗？", "answer": "建议就医。", "task": "qa"},
    {"instruction": "请回答患者的问题", "query": "复读：头晕乏力怎么办？", "answer": "注意休息。", "task": "qa"},
    {"instruction": "请回答患者的问题", "query": "孩子不爱吃饭怎么办？", "answer": "调整饮食。", "task": "qa"},
]


def publish_prompts(tmp_path: Path, store: Path) -> str:
    source = tmp_path / "prompts.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in PROMPT_ROWS), encoding="utf-8")
    recipe = recipe_from_dict({"name": "annotate-prompts", "kind": "instruction",
                               "sources": [{"name": "prompts", "path": str(source), "format": "jsonl"}]},
                              base_dir=tmp_path, origin="test")
    return build(recipe, store=store).version.ref


def read_items(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_sample_from_openai_compatible_endpoint(tmp_path, store, openai_endpoint):
    ref = publish_prompts(tmp_path, store)
    out = tmp_path / "candidates.jsonl"
    LocalChatCompletionsHandler.requests.clear()
    result = run_medcurate("annotate", "sample", "--prompts", ref, "--k", "2", "--model", "chat-model",
                           "--base-url", openai_endpoint, "--out", str(out), "--store", str(store),
                           "--temperature", "0.7", "--max-new-tokens", "64", "--seed", "5")
    assert result.returncode == 0, result.stderr
    items = read_items(out)
    assert len(items) == 3 and all(len(item["candidates"]) == 2 for item in items)
    assert items[0]["sampling"] == {"backend": "openai", "model": "chat-model", "k": 2, "temperature": 0.7,
                                    "top_p": 0.95, "max_new_tokens": 64, "seed": 5, "adapter": None,
                                    "base_url": openai_endpoint}
    assert items[0]["prompt_source"]["dataset"] == ref and items[0]["prompt"].endswith("需要去医院吗？")
    assert {r["seed"] for r in LocalChatCompletionsHandler.requests} == {5, 6}
    assert all(r["temperature"] == 0.7 and r["max_tokens"] == 64 for r in LocalChatCompletionsHandler.requests)
    flagged = {item["prompt"].split("\n")[1][:2]: item["near_duplicates"] for item in items}
    assert flagged["复读"] == [["c0", "c1", 1.0]]
    assert flagged["发烧"] == [] and flagged["孩子"] == []
    assert "1 near-duplicate pair(s) flagged" in result.stderr


def test_sample_from_tiny_local_model_with_lora_adapter(tmp_path, store):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from medcurate.train.tiny import build_tiny_model

    ref = publish_prompts(tmp_path, store)
    model_dir = build_tiny_model([r["query"] + r["answer"] for r in PROMPT_ROWS] * 20, tmp_path / "tiny", vocab_size=400)
    adapter = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir),
                             LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    adapter.save_pretrained(tmp_path / "adapter")
    out = tmp_path / "local.jsonl"
    result = run_medcurate("annotate", "sample", "--prompts", ref, "--k", "3", "--model", str(model_dir),
                           "--adapter", str(tmp_path / "adapter"), "--out", str(out), "--store", str(store),
                           "--limit", "2", "--max-new-tokens", "12", "--near-duplicate", "1.01")
    assert result.returncode == 0, result.stderr
    items = read_items(out)
    assert len(items) == 2 and all(len(item["candidates"]) == 3 for item in items)
    assert items[0]["sampling"]["backend"] == "local" and items[0]["sampling"]["adapter"] == str(tmp_path / "adapter")
    assert all(item["near_duplicates"] == [] for item in items)
    texts = [c["text"] for item in items for c in item["candidates"]]
    assert len(set(texts)) > 1                                  # sampled, not greedy copies

    missing = run_medcurate("annotate", "sample", "--prompts", ref, "--model", str(tmp_path / "nope"),
                            "--out", str(out), "--store", str(store))
    assert missing.returncode == 2 and "model folder not found" in missing.stderr


def test_curation_side_never_imports_torch():
    code = ("import sys; import medcurate.annotate.cli, medcurate.annotate.workflows, medcurate.annotate.steps, "
            "medcurate.annotate.sampling, medcurate.annotate.judge; from medcurate.pipeline import steps; steps(); "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    output = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "False False"
