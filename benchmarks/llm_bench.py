"""Throughput of the LLM engine against a local OpenAI-compatible endpoint.

    python benchmarks/llm_bench.py --requests 48 --rows 48 --max-tokens 16

Starts ``transformers serve`` with a freshly built tiny Llama on a free 127.0.0.1 port (or uses
``--base-url``/``--model``), then for 1, 4 and 16 concurrent requests: raw chat completions
(requests/s, no cache) and a recipe build of ``llm_consultation`` over ``--rows`` chief
complaints into a fresh store (rows/s), then the same build again from the cache alone (the
endpoint address pointed at a closed port). The same is repeated against medcurate's scripted
test endpoint (valid JSON at once), which shows the engine's own overhead. Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medcurate.build import build  # noqa: E402
from medcurate.llm.engine import ChatRequest, EndpointSettings, LLMEngine  # noqa: E402
from medcurate.llm.steps import RUN_STATS  # noqa: E402
from medcurate.recipe import recipe_from_dict  # noqa: E402
from tests.llm.conftest import TINY_TEXTS, ScriptedEndpoint, free_port  # noqa: E402

COMPLAINTS = ["反复咳嗽", "右下腹疼痛", "头晕乏力", "胸闷气短", "腹泻", "皮疹瘙痒", "失眠", "腰痛"]


def start_serve(work: Path) -> tuple[subprocess.Popen, str, str]:
    from medcurate.train.tiny import build_tiny_model

    model = build_tiny_model(TINY_TEXTS, work / "model")
    port = free_port()
    process = subprocess.Popen([str(Path(sys.executable).parent / "transformers"), "serve", str(model), "--host",
                                "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                break
        except OSError:
            time.sleep(0.5)
    return process, f"http://127.0.0.1:{port}/v1", str(model)


def raw_requests(base_url: str, model: str, count: int, concurrency: int, max_tokens: int) -> dict:
    engine = LLMEngine(EndpointSettings(base_url, model, concurrency=concurrency, timeout=300, attempts=1))
    requests = [ChatRequest([{"role": "user", "content": f"问题{n}：{COMPLAINTS[n % len(COMPLAINTS)]}怎么办？"}],
                            {"max_tokens": max_tokens, "seed": n}) for n in range(count)]
    started = time.perf_counter()
    results = engine.complete_many(requests)
    seconds = time.perf_counter() - started
    return {"requests": count, "ok": sum(r.ok for r in results), "seconds": round(seconds, 3),
            "requests_per_s": round(count / seconds, 2)}


def recipe(base_url: str, model: str, rows_file: Path, concurrency: int, max_tokens: int) -> dict:
    return {"name": f"bench-consultation-c{concurrency}", "kind": "conversation",
            "sources": [{"name": "complaints", "path": str(rows_file), "format": "jsonl"}],
            "steps": [{"llm_consultation": {"endpoint": {"base_url_env": "BENCH_LLM_URL", "model": model,
                                                         "concurrency": concurrency, "timeout": 300, "attempts": 1},
                                            "max_tokens": max_tokens}}]}


def recipe_build(base_url: str, model: str, rows_file: Path, rows: int, concurrency: int, max_tokens: int,
                 store: Path) -> dict:
    os.environ["BENCH_LLM_URL"] = base_url
    data = recipe(base_url, model, rows_file, concurrency, max_tokens)
    started = time.perf_counter()
    first = build(recipe_from_dict(data, origin="bench"), store=store)
    seconds = time.perf_counter() - started
    calls = RUN_STATS["llm_consultation"].live_calls
    os.environ["BENCH_LLM_URL"] = f"http://127.0.0.1:{free_port()}/v1"
    started = time.perf_counter()
    again = build(recipe_from_dict(data, origin="bench"), store=store)
    cached = time.perf_counter() - started
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds, 2),
            "live_calls": calls, "rows_written": first.manifest["counts"]["rows_written"],
            "rejects": first.manifest["counts"]["rejects"],
            "cached_rebuild_seconds": round(cached, 3),
            "cached_rebuild_live_calls": RUN_STATS["llm_consultation"].live_calls,
            "same_version": again.version.version == first.version.version}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--base-url")
    parser.add_argument("--model")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="llm-bench-"))
    rows_file = work / "complaints.jsonl"
    rows_file.write_text("".join(json.dumps({"chief_complaint": f"{COMPLAINTS[n % len(COMPLAINTS)]}{n}天"},
                                            ensure_ascii=False) + "\n" for n in range(args.rows)), encoding="utf-8")
    process = None
    if args.base_url:
        base_url, model = args.base_url, args.model
    else:
        started = time.perf_counter()
        process, base_url, model = start_serve(work)
        print(f"transformers serve ready in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    scripted = ScriptedEndpoint()
    report: dict = {"max_tokens": args.max_tokens, "transformers_serve": {}, "scripted": {}}
    try:
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            for name, url, model_name in (("transformers_serve", base_url, model),
                                          ("scripted", scripted.url, "scripted")):
                report[name][concurrency] = {
                    "raw": raw_requests(url, model_name, args.requests, concurrency, args.max_tokens),
                    "recipe": recipe_build(url, model_name, rows_file, args.rows, concurrency, args.max_tokens,
                                           work / f"store-{name}-{concurrency}")}
                print(json.dumps({name: {concurrency: report[name][concurrency]}}, ensure_ascii=False),
                      file=sys.stderr)
    finally:
        scripted.server.shutdown()
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
