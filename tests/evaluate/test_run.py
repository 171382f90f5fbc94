"""``evaluate run``: local batched generation on every row kind, resume after an interruption, an
endpoint that fails part-way (one-line error, finished rows kept, resumed later), and the report."""
from __future__ import annotations

import http.server
import json
import threading

import pytest

from medcurate.errors import MedcurateError
from medcurate.evaluate.run import ModelSpec, adapter_training, read_predictions, run_evaluation
from tests.conftest import run_medcurate


def test_local_run_scores_every_kind_and_records_lineage(eval_world, tmp_path):
    store, refs = eval_world["store"], eval_world["refs"]
    spec = ModelSpec(model=str(eval_world["model"]))
    settings = {"max_new_tokens": 6, "batch_size": 4}
    lineage = run_evaluation(spec, refs["qa_sets"], tmp_path / "sets", store=store, settings=settings)
    scores = json.loads((tmp_path / "sets" / "scores.json").read_text())
    assert lineage["rows"] == 12 and lineage["status"] == "finished" and lineage["dataset"] == refs["qa_sets"]
    assert lineage["generation"]["do_sample"] is False and lineage["generation"]["seed"] == 0
    assert lineage["model"]["base_model"] == str(eval_world["model"].resolve())
    assert scores["mcq"]["overall"]["rows"] == 4 and scores["text"]["rows"] == 8
    assert "accuracy_loglik" in scores["mcq"]["overall"]  # local models also score options by likelihood
    records = read_predictions(tmp_path / "sets" / "predictions.jsonl")
    assert all(len(r["option_log_likelihoods"]) == len(r["gold"]["options"]) for r in records if r["scorer"] == "mcq")
    run_evaluation(spec, refs["ehr"], tmp_path / "ehr", store=store, settings=settings)
    diagnosis = json.loads((tmp_path / "ehr" / "scores.json").read_text())["diagnosis"]
    assert set(diagnosis["departments"]) == {"内科", "外科"} and diagnosis["overall"]["rows"] == 3


def test_batched_option_likelihoods_equal_one_at_a_time(eval_world):
    from medcurate.evaluate.items import load_items
    from medcurate.evaluate.local import LocalGenerator
    from medcurate.evaluate.run import DEFAULT_SETTINGS

    _, items = load_items(eval_world["refs"]["mcq"], store=eval_world["store"], limit=3)
    generator = LocalGenerator(str(eval_world["model"]), None, DEFAULT_SETTINGS)
    batched = generator.option_log_likelihoods(items)
    single = [generator.option_log_likelihoods([item])[0] for item in items]
    flat = [value for row in single for value in row]
    assert [value for row in batched for value in row] == pytest.approx(flat, abs=1e-3)
    assert generator.generate(items[:2]) == [generator.generate([item])[0] for item in items[:2]]


def test_interrupted_run_resumes_without_redoing_finished_rows(eval_world, tmp_path):
    store, ref = eval_world["store"], eval_world["refs"]["mcq"]
    spec = ModelSpec(model=str(eval_world["model"]))
    settings = {"max_new_tokens": 4, "batch_size": 3}
    out = tmp_path / "run"
    run_evaluation(spec, ref, out, store=store, settings=settings)
    full = (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    # a kill after two rows, in the middle of writing the third
    (out / "predictions.jsonl").write_text("\n".join(full[:2]) + "\n" + full[2][:25], encoding="utf-8")
    (out / "scores.json").unlink()
    lineage = run_evaluation(spec, ref, out, store=store, settings=settings)
    assert lineage["resumed_rows"] == 2 and lineage["timing"]["rows"] == 5
    again = (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert again[:2] == full[:2] and len(again) == len(full)
    before = {r["id"]: r for r in map(json.loads, full)}
    for record in map(json.loads, again[2:]):  # greedy: the redone rows give the same answers
        assert record["prediction"] == before[record["id"]]["prediction"]
        assert record["option_log_likelihoods"] == pytest.approx(before[record["id"]]["option_log_likelihoods"],
                                                                 abs=1e-3)
    with pytest.raises(MedcurateError, match="another model, version or split"):
        run_evaluation(spec, eval_world["refs"]["qa"], out, store=store, settings=settings)


class FlakyChat:
    """An OpenAI-compatible /v1/chat/completions that answers ``good`` requests, then fails (500) or
    sends garbage (a reply without choices), then answers again once ``healed``."""

    def __init__(self, good: int, failure: str = "500"):
        self.good, self.failure, self.requests, self.healed = good, failure, 0, False
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                json.loads(self.rfile.read(length))
                owner.requests += 1
                if owner.requests > owner.good and not owner.healed:
                    if owner.failure == "500":
                        self.send_response(500)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                       "choices": []}).encode()
                else:
                    body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                       "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                           "role": "assistant", "content": "答案：A"}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


@pytest.mark.parametrize("failure", ["500", "garbage"])
def test_failing_endpoint_one_line_error_keeps_finished_rows_then_resumes(eval_world, tmp_path, failure):
    chat = FlakyChat(good=2, failure=failure)
    out = tmp_path / "endpoint"
    args = ["evaluate", "run", "--endpoint", chat.url, "--served-model", "m", "--data", eval_world["refs"]["mcq"],
            "--store", str(eval_world["store"]), "--out", str(out), "--retries", "2", "--backoff", "0.01"]
    try:
        result = run_medcurate(*args)
        assert result.returncode == 2
        error = result.stderr.strip()
        assert "\n" not in error and "Traceback" not in error
        assert error.startswith("medcurate: error: endpoint:") and "failed after 3 attempts" in error
        assert len(read_predictions(out / "predictions.jsonl")) == 2
        chat.healed = True
        result = run_medcurate(*args, check=True)
        assert "(2 kept from an earlier run)" in " ".join((result.stdout + result.stderr).split())
        scores = json.loads((out / "scores.json").read_text())
        assert scores["mcq"]["overall"]["rows"] == 7 and "accuracy_loglik" not in scores["mcq"]["overall"]
    finally:
        chat.server.shutdown()


def test_run_cli_refuses_bad_input_in_one_line(eval_world, tmp_path):
    store = str(eval_world["store"])
    for args, message in [
        (["--model", str(eval_world["model"]), "--data", eval_world["refs"]["no_test"]], "has no 'test' split"),
        (["--model", str(eval_world["model"]), "--data", eval_world["refs"]["preference"]], "preference rows"),
        (["--served-model", "m", "--data", eval_world["refs"]["qa"]], "give either --model"),
        (["--endpoint", "http://127.0.0.1:9/v1", "--data", eval_world["refs"]["qa"]], "--endpoint needs --served-model"),
    ]:
        result = run_medcurate("evaluate", "run", *args, "--store", store, "--out", str(tmp_path / "x"))
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_adapter_training_dataset_comes_from_the_run_lineage(tmp_path):
    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    (run / "lineage.json").write_text(json.dumps({"stage": "sft", "status": "finished", "dataset": {
        "ref": "qa@abc", "name": "qa", "version": "abc"}, "base_model": {"path": "/m"}}))
    assert adapter_training(str(run / "adapter"))["dataset"]["ref"] == "qa@abc"
    assert adapter_training(str(run))["stage"] == "sft"
    assert adapter_training(str(tmp_path)) is None


def test_report_tables_and_charts(eval_world, tmp_path):
    from medcurate.evaluate.report import write_report

    store, refs = eval_world["store"], eval_world["refs"]
    spec = ModelSpec(model=str(eval_world["model"]))
    for name in ("ehr", "mcq", "dialogue"):
        run_evaluation(spec, refs[name], tmp_path / name, store=store, settings={"max_new_tokens": 4})
    run_evaluation(spec, refs["ehr"], tmp_path / "ehr2", store=store, settings={"max_new_tokens": 2})
    report = write_report([tmp_path / n for n in ("ehr", "ehr2", "mcq", "dialogue")], tmp_path / "report")
    text = report.read_text(encoding="utf-8")
    assert "## Diagnosis accuracy by department (ClinicalGPT table 6 layout)" in text
    assert "| run | 内科 | 外科 | Average | overall (rows) |" in text
    diagnosis_rows = [line for line in text.splitlines() if line.startswith("| tiny (ehr")]
    assert len(diagnosis_rows) == 2  # two runs side by side in the table 6 layout
    assert "| run | scored by | anatomy | clinical_knowledge | Average | all rows | unextractable |" in text
    assert "BLEU-4" in text and "GLEU" in text and "ROUGE-L" in text and "similarity" in text
    assert "Chart key: D1 = 内科, D2 = 外科" in text
    assert (tmp_path / "report" / "diagnosis_by_department.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(MedcurateError, match="neither an evaluation"):
        write_report([tmp_path])
