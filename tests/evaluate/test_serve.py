"""A real OpenAI-compatible endpoint: ``transformers serve`` on 127.0.0.1 with the tiny local model,
for ``evaluate run --endpoint`` and ``evaluate judge``; and a scripted judge for the verdict rules."""
from __future__ import annotations

import http.server
import json
import os
import threading
from pathlib import Path

import pytest

from tests.conftest import free_port, run_medcurate, served, transformers_cli


@pytest.fixture(scope="session")
def served_tiny(eval_world, tmp_path_factory):
    """(base URL, served model name) of `transformers serve` running the tiny model; stopped by its pid."""
    binary = transformers_cli()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with served([str(binary), "serve", str(eval_world["model"]), "--host", "127.0.0.1", "--port", str(port)], url,
                tmp_path_factory.mktemp("serve") / "serve.log", name="transformers serve", timeout=240, env=env):
        yield f"{url}/v1", str(eval_world["model"])


def _local_run(eval_world, out: Path, ref_key: str = "qa") -> None:
    run_medcurate("evaluate", "run", "--model", str(eval_world["model"]), "--data", eval_world["refs"][ref_key],
                  "--store", str(eval_world["store"]), "--out", str(out), "--max-new-tokens", "4", check=True)


@pytest.mark.slow
def test_run_and_judge_through_transformers_serve(eval_world, served_tiny, tmp_path):
    url, served = served_tiny
    store, ref = str(eval_world["store"]), eval_world["refs"]["qa"]
    run_medcurate("evaluate", "run", "--endpoint", url, "--served-model", served, "--data", ref, "--store", store,
                  "--out", str(tmp_path / "endpoint"), "--max-new-tokens", "8", check=True)
    lineage = json.loads((tmp_path / "endpoint" / "lineage.json").read_text())
    assert lineage["model"] == {"endpoint": url, "served_model": served} and lineage["rows"] == 4
    assert json.loads((tmp_path / "endpoint" / "scores.json").read_text())["text"]["rows"] == 4
    _local_run(eval_world, tmp_path / "local")
    result = run_medcurate("evaluate", "judge", "--a", str(tmp_path / "local"), "--b", str(tmp_path / "endpoint"),
                           "--endpoint", url, "--served-model", served, "--prompt", "iimedgpt", "--limit", "2",
                           "--max-new-tokens", "8", "--out", str(tmp_path / "judge"), check=True)
    summary = json.loads((tmp_path / "judge" / "judge.json").read_text())
    assert summary["pairs"] == 2 and sum(summary["counts"].values()) == 2
    assert summary["prompt"]["name"] == "iimedgpt"
    judgements = [json.loads(line) for line in (tmp_path / "judge" / "judgements.jsonl").read_text().splitlines()]
    assert all(len(j["replies"]) == 2 for j in judgements)  # both orders asked
    assert "pairs:" in " ".join((result.stdout + result.stderr).split())
    run_medcurate("evaluate", "report", str(tmp_path / "local"), str(tmp_path / "endpoint"), str(tmp_path / "judge"),
                  "--out", str(tmp_path / "report"), check=True)
    report = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "| A vs B | prompt | pairs | Win | Tie | Lose | Unparsable |" in report
    assert (tmp_path / "report" / "win_tie_lose.png").is_file()


class ScriptedJudge:
    """An OpenAI-compatible judge that always prefers whichever answer is longer, except that it
    always says Win for the first position when the question mentions 失眠, and replies with no
    verdict for 感冒 (so order flips and unparsable replies happen on known rows)."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                prompt = request["messages"][0]["content"]
                first = prompt.split("Answer1:")[1].split("Answer2:")[0]
                second = prompt.split("Answer2:")[1].split("Evaluation Criteria")[0]
                if "失眠" in prompt:
                    verdict = "Win"
                elif "感冒" in prompt:
                    verdict = "两个回答各有优点"
                else:
                    verdict = "Win" if len(first) > len(second) else "Lose" if len(first) < len(second) else "Tie"
                body = json.dumps({"id": "j", "object": "chat.completion", "created": 0, "model": "judge",
                                   "choices": [{"index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": verdict}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


def _fake_run(folder: Path, ref: str, answers: dict[str, str]) -> None:
    folder.mkdir()
    (folder / "lineage.json").write_text(json.dumps({"dataset": ref, "split": "test", "model": {
        "endpoint": "http://127.0.0.1:1/v1", "served_model": folder.name}}))
    (folder / "predictions.jsonl").write_text("".join(json.dumps(
        {"id": question, "scorer": "text", "group": "qa", "prediction": answer, "reference": "",
         "prompt": [{"role": "user", "content": question}]}, ensure_ascii=False) + "\n"
        for question, answer in answers.items()), encoding="utf-8")


def test_judge_counts_flips_as_ties_and_shows_unparsable(tmp_path):
    judge = ScriptedJudge()
    questions = ["高血压吃什么药？", "糖尿病饮食注意什么？", "失眠怎么办？", "感冒发烧怎么办？"]
    _fake_run(tmp_path / "a", "qa@1", dict(zip(questions, ["很长很长的回答", "短", "回答", "回答"], strict=True)))
    _fake_run(tmp_path / "b", "qa@1", {**dict(zip(questions, ["短", "很长很长的回答", "回答", "回答"], strict=True)),
                                       "只在B里": "x"})
    try:
        run_medcurate("evaluate", "judge", "--a", str(tmp_path / "a"), "--b", str(tmp_path / "b"), "--endpoint",
                      judge.url, "--served-model", "judge", "--prompt", "iimedgpt", "--out", str(tmp_path / "j"),
                      check=True)
    finally:
        judge.server.shutdown()
    summary = json.loads((tmp_path / "j" / "judge.json").read_text())
    assert summary["counts"] == {"win": 1, "tie": 1, "lose": 1, "unparsable": 1}
    assert summary["position_consistency"] == pytest.approx(2 / 3)
    assert summary["unparsable_replies"] == 2 and summary["unpaired"] == {"only_in_a": 0, "only_in_b": 1}
    outcomes = {j["id"]: j["outcome"] for j in map(json.loads, (tmp_path / "j" / "judgements.jsonl").open())}
    assert outcomes == {"高血压吃什么药？": "win", "糖尿病饮食注意什么？": "lose", "失眠怎么办？": "tie",
                        "感冒发烧怎么办？": "unparsable"}


def test_judge_refuses_runs_on_different_versions(tmp_path):
    _fake_run(tmp_path / "a", "qa@1", {"q": "x"})
    _fake_run(tmp_path / "b", "qa@2", {"q": "y"})
    result = run_medcurate("evaluate", "judge", "--a", str(tmp_path / "a"), "--b", str(tmp_path / "b"), "--endpoint",
                           "http://127.0.0.1:9/v1", "--served-model", "j", "--out", str(tmp_path / "j"))
    assert result.returncode == 2 and "different versions or splits" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
