"""SFT throughput of ``medcurate train sft`` vs plain TRL ``SFTTrainer`` on the same rows.

Measures tokens/s and peak memory (RSS; on CUDA also peak allocated GPU memory) for LoRA
vs QLoRA, with and without packing. Every configuration runs in its own process so its
peak memory is its own.

    # CPU, tiny model (hidden 64, 2 layers) built from the benchmark corpus
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/train_throughput.py --size tiny

    # GPU, a ~0.5B Qwen2-shaped model from a config with random weights
    HF_HUB_OFFLINE=1 python benchmarks/train_throughput.py --size 0.5b --steps 30 --batch 8 --max-length 1024

Synthetic instruction rows of varied length are written as JSONL and built into a dataset
version through the real store, so both sides train on exactly the same rows.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

CONFIGS = ("medcurate-lora", "medcurate-lora-packing", "medcurate-qlora", "medcurate-qlora-packing",
           "trl-lora", "trl-lora-packing")
# Qwen2.5-0.5B's shape (494M parameters with tied embeddings)
QWEN2_05B: dict[str, Any] = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                 num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                                 rope_theta=1000000.0, tie_word_embeddings=True)
PHRASES = ["患者主诉头痛三天", "伴有发热和咳嗽", "血压160/95 mmHg", "建议低盐饮食并规律服药", "既往有糖尿病史",
           "查体：心肺未见异常", "可在医生指导下服用布洛芬", "如症状加重请及时就医", "实验室检查提示白细胞升高",
           "考虑上呼吸道感染", "注意休息，多饮水", "需要复查血常规"]


def synthetic_rows(count: int, seed: int = 0) -> list[dict]:
    """Instruction rows whose answers vary from short to long, like real medical QA."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        query = "，".join(rng.choice(PHRASES) for _ in range(rng.randint(1, 4)))
        answer = "。".join(rng.choice(PHRASES) for _ in range(rng.randint(2, 40)))
        rows.append({"instruction": "请回答患者的问题", "query": f"{query}（{index}）", "answer": answer, "task": "qa"})
    return rows


def prepare(workdir: Path, size: str, rows: int) -> dict:
    """The dataset version and the model folder both sides train on."""
    from medcurate.build import build
    from medcurate.recipe import recipe_from_dict
    from medcurate.train.tiny import build_tiny_model_from_dataset, train_tokenizer

    store = workdir / "store"
    source = workdir / "bench.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in synthetic_rows(rows)),
                      encoding="utf-8")
    recipe = recipe_from_dict({"name": "bench-sft", "kind": "instruction",
                               "sources": [{"name": "bench", "path": source.name, "format": "jsonl"}]},
                              base_dir=workdir, origin="benchmark")
    ref = build(recipe, store=store).version.ref
    model_dir = workdir / f"model-{size}"
    if size == "tiny":
        build_tiny_model_from_dataset(ref, model_dir, store=store)
    else:
        import torch
        from transformers import Qwen2Config, Qwen2ForCausalLM

        from medcurate.train.tiny import corpus_texts

        tokenizer = train_tokenizer(corpus_texts(ref, store), vocab_size=8000)
        config = Qwen2Config(**QWEN2_05B, bos_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(config)
        model = model.bfloat16()
        model.save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
    return {"store": str(store), "ref": ref, "model": str(model_dir)}


def common_overrides(args) -> list[str]:
    return [f"per_device_train_batch_size={args.batch}", "gradient_accumulation_steps=1", "batch_size=null",
            f"max_steps={args.steps}", f"max_length={args.max_length}", "learning_rate=1e-4", "validation=0",
            "keep_best=false", "save_strategy=no", "logging_steps=1",
            f"activation_checkpointing={'true' if args.checkpointing else 'false'}", "lora.r=8", "lora.alpha=16",
            "lora.dropout=0.05"]


def worker(config: str, setup: dict, args) -> dict:
    """Run one configuration in this process and report tokens/s and peak memory."""
    import torch

    packing = config.endswith("-packing")
    run_dir = Path(args.workdir) / f"run-{config}-{os.getpid()}"
    if config.startswith("medcurate"):
        from medcurate.train.runner import prepare_run

        recipe = "ivygpt-qlora-sft" if "qlora" in config else "clinicalgpt-sft"
        overrides = [*common_overrides(args), f"packing={'true' if packing else 'false'}"]
        run = prepare_run("sft", recipe, setup["model"], setup["ref"], run_dir, store=setup["store"],
                          overrides=overrides)
        trainer = run.trainer
    else:
        from peft import LoraConfig
        from transformers import AutoTokenizer
        from trl import SFTConfig, SFTTrainer

        from medcurate.train.data import load_training_data

        _, train_data, _ = load_training_data(setup["ref"], "sft", setup["store"])
        cuda = torch.cuda.is_available()
        trainer = SFTTrainer(
            model=setup["model"], train_dataset=train_data,
            processing_class=AutoTokenizer.from_pretrained(setup["model"]),
            args=SFTConfig(output_dir=str(run_dir), per_device_train_batch_size=args.batch,
                           max_steps=args.steps, max_length=args.max_length, learning_rate=1e-4, packing=packing,
                           logging_steps=1, save_strategy="no", report_to="none", bf16=cuda, use_cpu=not cuda,
                           activation_checkpointing=args.checkpointing, disable_tqdm=True,
                           model_init_kwargs={"dtype": torch.bfloat16 if cuda else torch.float32}),
            peft_config=LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules="all-linear",
                                   task_type="CAUSAL_LM"))
    step_ends: list[float] = []
    trainer.add_callback(_step_clock(step_ends))
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    # steady state: from the end of the warm-up steps to the end of the last step
    warmup = min(args.warmup_steps, len(step_ends) - 1)
    seconds = step_ends[-1] - step_ends[warmup - 1] if warmup else step_ends[-1] - step_ends[0]
    tokens_at = {entry["step"]: entry["num_tokens"] for entry in trainer.state.log_history
                 if "num_tokens" in entry and "step" in entry}
    tokens = tokens_at[len(step_ends)] - tokens_at.get(warmup, 0)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    result = {"config": config, "steps": trainer.state.global_step, "timed_steps": len(step_ends) - warmup,
              "tokens": int(tokens), "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1),
              "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
              "first_loss": round(losses[0], 4) if losses else None, "last_loss": round(losses[-1], 4) if losses else None,
              "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
              "threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        result["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def _step_clock(step_ends: list[float]):
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            step_ends.append(time.perf_counter())

    return StepClock()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "0.5b"), default="tiny")
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--warmup-steps", type=int, default=3, help="Steps left out of the timing.")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP/torch intra-op threads per worker (default 1 for tiny: on a 2-vCPU machine two "
                             "threads stalled runs at random, up to 6x slower; unset for 0.5b).")
    parser.add_argument("--repeat", type=int, default=1, help="Runs per configuration; the median tokens/s is kept.")
    parser.add_argument("--checkpointing", action="store_true", help="Turn activation checkpointing on.")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"Comma-separated subset of {', '.join(CONFIGS)}.")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--json-out", default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        setup = json.loads((Path(args.workdir) / "setup.json").read_text())
        print("RESULT " + json.dumps(worker(args.worker, setup, args)), flush=True)
        return

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="medcurate-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    setup = prepare(workdir, args.size, args.rows)
    (workdir / "setup.json").write_text(json.dumps(setup))
    print(f"setup ({args.size} model, {args.rows} rows) took {time.perf_counter() - started:.1f} s", flush=True)
    results = []
    for config in args.configs.split(","):
        command = [sys.executable, __file__, "--worker", config, "--workdir", str(workdir), "--size", args.size,
                   "--steps", str(args.steps), "--batch", str(args.batch), "--max-length", str(args.max_length),
                   "--warmup-steps", str(args.warmup_steps)]
        if args.checkpointing:
            command.append("--checkpointing")
        threads = args.threads if args.threads is not None else (1 if args.size == "tiny" else None)
        env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
        runs = []
        for _ in range(args.repeat):
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
            if line is None:
                runs = [{"config": config, "error": (done.stderr.strip().splitlines() or ["?"])[-1]}]
                break
            runs.append(json.loads(line[len("RESULT "):]))
            print(json.dumps(runs[-1]), flush=True)
        if "error" in runs[0]:
            results.append(runs[0])
            print(json.dumps(runs[0]), flush=True)
            continue
        median = sorted(runs, key=lambda r: r["tokens_per_s"])[len(runs) // 2]
        results.append({**median, "tokens_per_s_all": [r["tokens_per_s"] for r in runs],
                        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs)})
    header = ("| config | timed steps | tokens | seconds | tokens/s (median) | tokens/s (all runs) | peak RSS MiB "
              "| peak GPU MiB | loss first -> last |")
    print("\n" + header + "\n|" + "---|" * 9)
    for r in results:
        if "error" in r:
            print(f"| {r['config']} | error: {r['error']} |")
            continue
        print(f"| {r['config']} | {r['timed_steps']} | {r['tokens']} | {r['seconds']} | {r['tokens_per_s']} | "
              f"{', '.join(str(v) for v in r['tokens_per_s_all'])} | {r['peak_rss_mib']} | {r.get('peak_gpu_mib', '-')} | {r['first_loss']} -> {r['last_loss']} |")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"size": args.size, "args": vars(args), "results": results},
                                                  indent=2) + "\n")


if __name__ == "__main__":
    main()
