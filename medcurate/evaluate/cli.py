"""``medcurate evaluate …``: run, judge, report, and the quick ``loss`` / ``mcq`` checks.

Imported for every ``evaluate`` command (and ``--help``): click and light modules only; torch and
transformers load inside the commands that run a local model.
"""
from __future__ import annotations

import json

import click

from medcurate.console import console, store_option
from medcurate.errors import MedcurateError
from medcurate.train.quiet import silence_torch_warnings


def _print_json(result: dict, out_file: str | None = None) -> None:
    text = json.dumps(result, ensure_ascii=False, indent=2, sort_keys=True)
    click.echo(text)
    if out_file:
        with open(out_file, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


_ALLOW_REMOTE = click.option("--allow-unscreened-text-to-remote-endpoint", "allow_unscreened", is_flag=True,
                             help="Send text of a version that is not de-identified to a non-loopback endpoint.")


@click.group("evaluate")
def evaluate():
    """Evaluate models on held-out versions: generate, score, judge pairwise, report the papers' tables;
    quick loss / mcq checks and reward-model pairwise accuracy."""
    silence_torch_warnings()


def _local_model_options(function):
    function = click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
                            help="Also write the result as JSON here (and its lineage beside it).")(function)
    function = click.option("--limit", type=int, default=None, help="Only the first N rows / questions.")(function)
    function = click.option("--adapter", type=click.Path(exists=True, file_okay=False), default=None,
                            help="A run directory or adapter folder to apply to the model.")(function)
    return click.option("--model", "model_path", required=True, type=click.Path(exists=True, file_okay=False),
                        help="Local HF model folder (the base, when --adapter is given).")(function)


@evaluate.command("run")
@click.option("--model", "model_path", type=click.Path(exists=True, file_okay=False), default=None,
              help="Local HF model folder (the base, when --adapter is given).")
@click.option("--adapter", type=click.Path(exists=True, file_okay=False), default=None,
              help="A training run directory or adapter folder; its run's lineage is recorded.")
@click.option("--endpoint", default=None, help="OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1).")
@click.option("--served-model", default=None, help="The model name the endpoint serves.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True,
              help="Environment variable holding the endpoint's key (read, never recorded).")
@click.option("--data", required=True, metavar="NAME@VERSION", help="The evaluated dataset version.")
@click.option("--split", default="test", show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N rows of the split.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="EVAL_DIR: predictions.jsonl, scores.json, lineage.json (re-run to resume).")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--max-new-tokens", type=int, default=128, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--retries", type=int, default=3, show_default=True, help="Endpoint retries per row before giving up.")
@click.option("--backoff", "backoff_s", type=float, default=1.0, show_default=True,
              help="First retry wait in seconds (doubling).")
@click.option("--tokenize", "tokenization", type=click.Choice(["char", "jieba"]), default="char", show_default=True,
              help="Tokens for BLEU / GLEU / ROUGE.")
@_ALLOW_REMOTE
@store_option
def run_command(model_path, adapter, endpoint, served_model, api_key_env, data, split, limit, out_dir, batch_size,
                max_new_tokens, seed, retries, backoff_s, tokenization, allow_unscreened, store):
    """Answer every row of a split (greedy), write predictions as it goes, score them by row kind and task."""
    import os

    from medcurate.evaluate.report import summary_lines
    from medcurate.evaluate.run import ModelSpec, run_evaluation

    spec = ModelSpec(model=model_path, adapter=adapter, endpoint=endpoint, served_model=served_model,
                     api_key=os.environ.get(api_key_env))
    if endpoint:
        _check_endpoint(endpoint, data, store, allow_unscreened, "evaluate run")
    lineage = run_evaluation(spec, data, out_dir, split=split, limit=limit, store=store, tokenization=tokenization,
                             settings={"batch_size": batch_size, "max_new_tokens": max_new_tokens, "seed": seed,
                                       "retries": retries, "backoff_s": backoff_s})
    console.print(f"{lineage['rows']} rows of {lineage['dataset']} {split} "
                  f"({lineage['resumed_rows']} kept from an earlier run) -> {out_dir}")
    for line in summary_lines(out_dir):
        console.print(line)


def _check_endpoint(endpoint: str, data: str | None, store, allow_unscreened: bool, purpose: str) -> None:
    """The privacy gate (medcurate/privacy.py, where this checkout has it): text of a version that is
    not de-identified goes to loopback endpoints only, unless the user says otherwise."""
    import importlib

    try:
        privacy = importlib.import_module("medcurate.privacy")
    except ModuleNotFoundError:
        return
    if privacy.is_loopback(endpoint):
        return
    from medcurate.store import resolve

    statuses = [privacy.privacy_status(resolve(data, store).manifest)] if data else [privacy.NOT_SCREENED]
    privacy.require_safe_endpoint(endpoint, statuses, allow_unscreened=allow_unscreened, purpose=purpose)


@evaluate.command("judge")
@click.option("--a", "run_a", required=True, type=click.Path(exists=True, file_okay=False), help="EVAL_DIR of run A.")
@click.option("--b", "run_b", required=True, type=click.Path(exists=True, file_okay=False), help="EVAL_DIR of run B.")
@click.option("--endpoint", required=True, help="The judge's OpenAI-compatible base URL.")
@click.option("--served-model", required=True, help="The judge model's name at the endpoint.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True)
@click.option("--prompt", default="iimedgpt", show_default=True, help="iimedgpt, clinicalgpt or a prompt file.")
@click.option("--limit", type=int, default=None, help="Only the first N shared rows.")
@click.option("--max-new-tokens", type=int, default=256, show_default=True, help="Longest judge reply.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for judgements.jsonl and judge.json (re-run to resume).")
@_ALLOW_REMOTE
@store_option
def judge_command(run_a, run_b, endpoint, served_model, api_key_env, prompt, limit, max_new_tokens, out_dir,
                  allow_unscreened, store):
    """A vs B, each pair judged in both orders; order-flipping verdicts are ties; win/tie/lose table."""
    import os

    from medcurate.annotate.judge import reply_client
    from medcurate.evaluate.judge import judge_runs

    _check_endpoint(endpoint, _evaluated_version(run_a), store, allow_unscreened, "evaluate judge")
    ask = reply_client(endpoint, served_model, os.environ.get(api_key_env), max_tokens=max_new_tokens)
    summary = judge_runs(run_a, run_b, ask, prompt, out_dir, {"endpoint": endpoint, "served_model": served_model},
                         limit=limit)
    counts = summary["counts"]
    consistency = summary["position_consistency"]
    console.print(f"{summary['pairs']} pairs: win {counts['win']}, tie {counts['tie']}, lose {counts['lose']}, "
                  f"unparsable {counts['unparsable']}; position consistency "
                  f"{'n/a' if consistency is None else f'{consistency:.1%}'} -> {out_dir}")


def _evaluated_version(run_dir: str) -> str | None:
    """The version an evaluation folder answered (its lineage.json), when it is still in the store."""
    from pathlib import Path

    lineage = Path(run_dir) / "lineage.json"
    return json.loads(lineage.read_text(encoding="utf-8")).get("dataset") if lineage.is_file() else None


@evaluate.command("report")
@click.argument("eval_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for report.md and charts (default: the first EVAL_DIR).")
@click.option("--font", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A CJK font file for chart labels (without one, labels fall back to what matplotlib can draw).")
def report_command(eval_dirs, out_dir, font):
    """report.md in the papers' table layouts, PNG charts, and a comparison across runs (and judge folders)."""
    from medcurate.evaluate.report import write_report

    path = write_report(list(eval_dirs), out_dir, font=font)
    console.print(f"report written to {path}")


def _report(result: dict, out_file: str | None, inputs: list[dict]) -> None:
    """Print the result; with --out also write it (folders created) and its lineage record."""
    import json
    from pathlib import Path

    text = json.dumps(result, ensure_ascii=False, indent=2, sort_keys=True)
    click.echo(text)
    if out_file:
        from medcurate.lineage import record, write_lineage

        out = Path(out_file)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        write_lineage(out, record("evaluation", inputs, model_evaluated=result["model"]["path"],
                                  adapter=result["model"]["adapter"], metric=result.get("metric")))


@evaluate.command("loss")
@_local_model_options
@click.option("--data", required=True, metavar="NAME@VERSION", help="Dataset version from the store.")
@click.option("--split", default=None, help="Split to score [default: validation, else test].")
@store_option
def evaluate_loss(model_path, adapter, limit, out_file, data, split, store):
    """Answer-token loss and perplexity (preference rows: how often chosen beats rejected)."""
    from medcurate.lineage import version_link
    from medcurate.train.evaluate import evaluate_split, load_model_for_eval, model_evaluated, model_links, pick_split

    version, split = pick_split(data, split, store)
    model_, tokenizer = load_model_for_eval(model_path, adapter)
    result = evaluate_split(model_, tokenizer, version.ref, split, store=store, limit=limit)
    result.update(metric="loss", model=model_evaluated(model_path, adapter))
    _report(result, out_file, [*model_links(model_path, adapter), version_link(version, store)])


@evaluate.command("mcq")
@_local_model_options
@click.option("--csv", "csv_path", required=True, type=click.Path(exists=True),
              help="A CMMLU-style CSV file or a folder of them (e.g. cmmlu-medical/test).")
def evaluate_mcq_command(model_path, adapter, limit, out_file, csv_path):
    """Multiple-choice accuracy: the most likely answer letter after the chat prompt (--limit: questions in all)."""
    from medcurate.lineage import file_link
    from medcurate.train.evaluate import evaluate_mcq, load_model_for_eval, mcq_files, model_evaluated, model_links

    files = mcq_files(csv_path)
    model_, tokenizer = load_model_for_eval(model_path, adapter)
    result = evaluate_mcq(model_, tokenizer, files, limit=limit)
    result.update(metric="mcq", model=model_evaluated(model_path, adapter))
    _report(result, out_file, [*model_links(model_path, adapter), *(file_link(path) for path in files)])


@evaluate.command("reward")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, file_okay=False),
              help="A reward run directory, its adapter folder, or a merged reward model folder.")
@click.option("--data", required=True, metavar="NAME@VERSION", help="Preference dataset version from the store.")
@click.option("--split", default=None, help="Split to score [default: validation, else test].")
@click.option("--limit", type=int, default=None, help="Only the first N pairs.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the result as JSON here (and its lineage beside it).")
@store_option
def evaluate_reward_command(model_path, data, split, limit, out_file, store):
    """A reward model's pairwise accuracy (chosen scores higher) and reward margin distribution."""
    from medcurate.lineage import resolve_adapter, version_link
    from medcurate.train.data import check_kind
    from medcurate.train.evaluate import evaluate_reward, load_reward_model, model_evaluated, pick_split

    version, split = pick_split(data, split, store)
    check_kind("reward", version.manifest["kind"], version.ref)
    model_, tokenizer = load_reward_model(model_path)
    result = evaluate_reward(model_, tokenizer, version, split, store=store, limit=limit)
    try:
        adapter = resolve_adapter(model_path)
        described = model_evaluated(model_path, adapter.adapter_dir)
        links = [adapter.link()]
    except MedcurateError:
        from medcurate.lineage import model_link

        described = model_evaluated(model_path)
        links = [model_link(model_path)]
    result.update(metric="reward", model=described)
    _report(result, out_file, [*links, version_link(version, store)])
