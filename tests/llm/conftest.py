"""Endpoints for the LLM tests: a scripted OpenAI-compatible server of our own (deterministic
answers to medcurate's templates, plus faults on demand: HTTP 500, garbage bodies, bounded hangs,
empty choices) and a real ``transformers serve`` with a tiny local model (slow; stopped by pid)."""
from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, served, transformers_cli

REPO = Path(__file__).resolve().parents[2]
HANG_SECONDS = 3.0


def _field(prompt: str, label: str) -> str:
    """The text after ``label:`` on its line of the prompt (the prompts the steps write always have it)."""
    match = re.search(rf"{label}: (.*)", prompt)
    assert match, f"the prompt has no {label} line"
    return match.group(1).strip()


def scripted_answer(prompt: str, seed: int) -> str:
    """What a well-behaved model would say to each medcurate template, decided by the prompt."""
    if '"decision"' in prompt:
        record = prompt.split("Record (JSON):", 1)[1]
        if "酒精" in record:
            return '{"decision": "drop", "reason": "unsafe", "note": "不安全"}'
        if "天气" in record:
            return '```json\n{"decision": "drop", "reason": "off_topic", "note": "非医学"}\n```'
        if "。。" in record:
            fixed = json.loads(record[record.index("{"):record.index("}", record.index("{")) + 1])
            fixed = {key: value.replace("。。", "。") for key, value in fixed.items() if "。。" in value}
            return json.dumps({"decision": "fix", "reason": "grammar", "note": "标点", "fixed": fixed},
                              ensure_ascii=False)
        return '{"decision": "keep", "reason": "other", "note": ""}'
    if '"qa"' in prompt:
        section = _field(prompt, "Section")
        body = prompt.split(f"Section: {section}", 1)[1].split("只输出 JSON")[0].strip()
        first = re.split(r"[。\n]", body)[0]
        return json.dumps({"qa": [{"question": f"关于{section}，说明书怎么说？", "answer": first + "。"},
                                  {"question": f"{section}的要点是什么？", "answer": body[:40]}]}, ensure_ascii=False)
    if '"dialogue"' in prompt:
        complaint = _field(prompt, "Chief complaint")
        return json.dumps({"dialogue": [
            {"role": "patient", "content": f"医生您好，我{complaint}。"},
            {"role": "doctor", "content": "这种情况持续多久了？还有别的不舒服吗？"},
            {"role": "patient", "content": "没有别的症状。"},
            {"role": "doctor", "content": f"建议先到{'医院'}做相关检查，注意休息。"}]}, ensure_ascii=False)
    if '"distractors"' in prompt:
        answer = _field(prompt, "Correct answer")
        if "二甲双胍" in answer and seed % 2 == 1:      # first try repeats the answer and itself
            return json.dumps({"distractors": ["二甲双胍。", "格列本脲", "格列本脲", "阿卡波糖"]}, ensure_ascii=False)
        if "3天" in answer:                                # never enough distinct distractors
            return json.dumps({"distractors": ["3 天", "三天", "3天。"]}, ensure_ascii=False)
        return json.dumps({"distractors": [f"{answer}甲", f"{answer}乙", f"{answer}丙", f"{answer}丁"]},
                          ensure_ascii=False)
    return f"回答{seed}：请注意休息。"


class ScriptedEndpoint:
    """An OpenAI-compatible chat endpoint on 127.0.0.1. ``faults`` is consumed one per request
    (``500``, ``garbage``, ``hang``, ``empty``, ``not_json``, ``ok``); ``hang_after`` makes
    every request after that many hang (a build to kill halfway)."""

    def __init__(self):
        self.faults: list[str] = []
        self.hang_after: int | None = None
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with endpoint.lock:
                    endpoint.requests.append(body)
                    number = len(endpoint.requests)
                    fault = endpoint.faults.pop(0) if endpoint.faults else "ok"
                    if endpoint.hang_after is not None and number > endpoint.hang_after:
                        fault = "hang"
                if fault == "hang":
                    time.sleep(HANG_SECONDS)
                    fault = "500"
                if fault == "500":
                    self._send(500, b'{"error": {"message": "boom"}}')
                    return
                if fault == "garbage":
                    self._send(200, b"<html>not json at all")
                    return
                content = scripted_answer(body["messages"][-1]["content"], int(body.get("seed", 0)))
                if fault == "not_json":
                    content = "I cannot answer in JSON, sorry."
                choices = [] if fault == "empty" else [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}]
                payload = {"id": "chatcmpl-scripted", "object": "chat.completion", "created": 0,
                           "model": body["model"], "choices": choices,
                           "usage": {"prompt_tokens": len(body["messages"][-1]["content"]),
                                     "completion_tokens": len(content), "total_tokens": 0}}
                self._send(200, json.dumps(payload, ensure_ascii=False).encode("utf-8"))

            def _send(self, status: int, data: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.faults, self.hang_after, self.requests = [], None, []


@pytest.fixture(scope="session")
def scripted_server():
    endpoint = ScriptedEndpoint()
    yield endpoint
    endpoint.server.shutdown()


@pytest.fixture
def scripted(scripted_server):
    scripted_server.reset()
    yield scripted_server
    scripted_server.reset()


TINY_TEXTS = ["医生您好，我最近头疼，应该怎么办？建议多休息，必要时就医。",
              '{"qa": [{"question": "适应症是什么？", "answer": "用于高血压。"}]}',
              '{"decision": "keep", "reason": "other"}', '{"distractors": ["甲", "乙", "丙"]}'] * 30


@pytest.fixture(scope="session")
def transformers_endpoint(tmp_path_factory):
    """(base_url, model) of a real ``transformers serve`` with a tiny local Llama on 127.0.0.1."""
    binary = transformers_cli()
    from medcurate.train.tiny import build_tiny_model

    folder = tmp_path_factory.mktemp("tiny-serve")
    model = build_tiny_model(TINY_TEXTS, folder / "model")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    try:
        with served([str(binary), "serve", str(model), "--host", "127.0.0.1", "--port", str(port)], url,
                    folder / "serve.log", name="transformers serve", timeout=240, env=env):
            yield f"{url}/v1", str(model)
    finally:
        shutil.rmtree(folder / "model", ignore_errors=True)
