"""``medcurate annotate``: sample candidates, push a Label Studio project, pull agreement and the
adjudication queue, resolve the expert's decisions, export a preference dataset.

Server URL and token come from --url/--token or MEDCURATE_LABEL_STUDIO_URL /
MEDCURATE_LABEL_STUDIO_TOKEN (LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY also work); the token
is never printed or written to the work folder.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import click

from medcurate.console import console, run_recipe_mapping, store_option


def say(message: str) -> None:
    """A status line on stderr, never wrapped or read as markup (paths and JSON stay intact)."""
    console.print(message, soft_wrap=True, markup=False, highlight=False)


def server_options(function):
    function = click.option("--token", default=None, help="API token (default $MEDCURATE_LABEL_STUDIO_TOKEN).")(function)
    function = click.option("--url", default=None, help="Label Studio URL (default $MEDCURATE_LABEL_STUDIO_URL).")(function)
    return function


def workdir_option(function):
    return click.option("--workdir", required=True, type=click.Path(file_okay=False),
                        help="The project's work folder (state, pulled annotations, report).")(function)


def _server(url, token):
    from medcurate.annotate.server import LabelStudioServer, connection_settings

    return LabelStudioServer(*connection_settings(url, token))


@click.group("annotate")
def annotate():
    """Preference annotation in Label Studio: SPF pairs, rankings, acceptable/unacceptable."""


@annotate.command("sample")
@click.option("--prompts", required=True, help="Published prompts, NAME@VERSION (instruction, conversation or preference).")
@click.option("--k", "k", default=2, show_default=True, type=click.IntRange(2, 16), help="Answers per prompt.")
@click.option("--model", required=True, help="A local model folder, or the model name at --base-url.")
@click.option("--adapter", default=None, type=click.Path(exists=True, file_okay=False),
              help="A run directory or its adapter folder (local models).")
@click.option("--base-url", default=None, help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, help="Env var holding the endpoint's key.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Candidates JSONL to write.")
@click.option("--split", default=None, help="Only this split of the prompts.")
@click.option("--limit", default=None, type=int, help="At most this many prompts.")
@click.option("--temperature", default=0.8, show_default=True, type=float)
@click.option("--top-p", default=0.95, show_default=True, type=float)
@click.option("--max-new-tokens", default=256, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--near-duplicate", default=0.9, show_default=True, type=float,
              help="Character-bigram Jaccard similarity at which two answers are flagged as near-duplicates.")
@click.option("--allow-unscreened-text-to-remote-endpoint", "allow_unscreened", is_flag=True,
              help="Send prompts of a version that is not de-identified to a --base-url off this machine.")
@store_option
def sample_command(prompts, k, model, adapter, base_url, api_key_env, out, split, limit, temperature, top_p,
                   max_new_tokens, seed, near_duplicate, allow_unscreened, store):
    """Sample K answers per prompt from a local model or an OpenAI-compatible endpoint."""
    from medcurate.annotate.sampling import (
        SamplingSettings,
        load_prompts,
        local_generator,
        make_items,
        openai_generator,
        write_candidates_lineage,
        write_items,
    )
    from medcurate.lineage import resolve_adapter

    settings = SamplingSettings(backend="openai" if base_url else "local", model=model, k=k,
                                temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
                                adapter=str(resolve_adapter(adapter).adapter_dir) if adapter else None,
                                base_url=base_url)
    items = load_prompts(prompts, store, split, limit)
    from medcurate.privacy import require_safe_endpoint

    statuses = [item["prompt_source"]["privacy"] for item in items]
    require_safe_endpoint(base_url, statuses, allow_unscreened=allow_unscreened, purpose=prompts)
    generate = (openai_generator(settings, os.environ.get(api_key_env), privacy=statuses,
                                 allow_unscreened=allow_unscreened) if base_url else local_generator(settings))
    sampled = list(make_items(items, generate, settings, near_duplicate))
    written = write_items(Path(out), sampled)
    write_candidates_lineage(Path(out), sampled, settings, store)
    flagged = sum(len(item["near_duplicates"]) for item in sampled)
    say(f"{written} prompts x {k} answers from {settings.backend} model; "
                  f"{flagged} near-duplicate pair(s) flagged -> {out}")


@annotate.command("push")
@click.option("--candidates", default=None, type=click.Path(dir_okay=False), help="JSONL from `annotate sample`.")
@click.option("--rows", "rows_ref", default=None,
              help="Review: generated rows of a published version, NAME@VERSION (instead of --candidates).")
@click.option("--kind", type=click.Choice(["pairwise", "ranking", "binary", "rating", "review"]), default="pairwise",
              show_default=True, help="rating: one answer scored 1-5 on IvyGPT's four dimensions; "
                                      "review: physicians accept / edit / reject each generated answer.")
@click.option("--annotators", required=True, help="Comma-separated annotator e-mails (their Label Studio accounts).")
@click.option("--overlap", default=2, show_default=True, type=int, help="Annotators per item (at least 2).")
@click.option("--title", default=None)
@click.option("--project-id", default=None, type=int, help="Complete an existing project (its config is checked).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the A/B side shuffle.")
@click.option("--keep-near-duplicates", is_flag=True, help="Also compare answers flagged as near-duplicates.")
@click.option("--judge-url", default=None, help="OpenAI-compatible endpoint of an LLM judge for pre-annotations.")
@click.option("--judge-model", default=None, help="The judge's model name.")
@click.option("--judge-key-env", default="OPENAI_API_KEY", show_default=True)
@click.option("--allow-unscreened-text-to-remote-endpoint", "allow_unscreened", is_flag=True,
              help="Send candidates from a version that is not de-identified to a --judge-url off this machine.")
@workdir_option
@server_options
@store_option
def push_command(candidates, rows_ref, kind, annotators, overlap, title, project_id, seed, keep_near_duplicates,
                 judge_url, judge_model, judge_key_env, allow_unscreened, workdir, url, token, store):
    """Create a Label Studio project from CANDIDATES with cross-annotation assigned by medcurate."""
    from medcurate.annotate.workflows import push
    from medcurate.errors import MedcurateError

    if (candidates is None) == (rows_ref is None):
        raise MedcurateError("give exactly one of --candidates and --rows")
    if rows_ref is not None:
        if kind != "review":
            raise MedcurateError("--rows is for --kind review (other kinds compare sampled answers: --candidates)")
        from medcurate.annotate.review import review_items, write_review_candidates

        candidates = str(write_review_candidates(Path(workdir), review_items(rows_ref, store)))
    if kind == "review" and judge_url:
        raise MedcurateError("the LLM judge pre-annotates preference kinds, not review")
    judge = None
    if judge_url:
        from medcurate.annotate.judge import candidate_privacy, openai_judge
        from medcurate.privacy import require_safe_endpoint

        statuses = candidate_privacy(Path(candidates))
        require_safe_endpoint(judge_url, statuses, allow_unscreened=allow_unscreened, purpose=Path(candidates).name)
        judge = openai_judge(judge_url, judge_model or "judge", os.environ.get(judge_key_env), privacy=statuses,
                             allow_unscreened=allow_unscreened)
    result = push(_server(url, token), workdir=Path(workdir), candidates=Path(candidates), kind=kind,
                  annotators=annotators.split(","), overlap=overlap, title=title, seed=seed, project_id=project_id,
                  judge=judge, judge_name=f"judge:{judge_model}" if judge_url else None,
                  skip_near_duplicates=not keep_near_duplicates)
    say(f"project {result.project_id}: {result.tasks} tasks, overlap {overlap}; "
                  f"{result.skipped_near_duplicates} near-duplicate pair(s) skipped; "
                  f"{result.predictions} judge prediction(s); load per annotator: "
                  + ", ".join(f"{email}={n}" for email, n in sorted(result.load.items())))
    if result.without_account:
        say("no Label Studio account yet for " + ", ".join(result.without_account)
            + ": they sign up with the organisation's invite link using exactly this e-mail")
    click.echo(result.project_id)


@annotate.command("pull")
@click.option("--expert", default=None, help="E-mail of the expert who adjudicates (shown as the assignee).")
@click.option("--min-votes", default=2, show_default=True, type=int, help="Votes a judgement needs to count as agreed.")
@workdir_option
@server_options
def pull_command(expert, min_votes, workdir, url, token):
    """Fetch annotations (resumable), write the agreement report, queue disagreements for the expert."""
    from medcurate.annotate.workflows import pull

    result = pull(_server(url, token), workdir=Path(workdir), min_votes=min_votes, expert=expert)
    report = result.report
    say(f"{result.new_annotations} new annotation(s); {report['annotations']} in all; "
                  f"{report['units_complete']}/{report['units']} units fully cross-annotated")
    for criterion, stats in report["agreement"].items():
        say(f"  {criterion:<16} items={stats['items']:<5} raw={stats['raw_agreement']} "
                      f"cohen={stats['cohen_kappa']} fleiss={stats['fleiss_kappa']} alpha={stats['krippendorff_alpha']}")
    if report["missing_criteria"]:
        say(f"annotations missing a criterion: {json.dumps(report['missing_criteria'])}")
    say(f"{result.queued} unit(s) newly queued for adjudication"
                  + (f" in project {result.expert_project_id}" if result.expert_project_id else "")
                  + f"; report: {Path(workdir) / 'report.md'}")


@annotate.command("resolve")
@click.option("--min-votes", default=2, show_default=True, type=int)
@workdir_option
@server_options
def resolve_command(min_votes, workdir, url, token):
    """Merge the expert's decisions from the adjudication project."""
    from medcurate.annotate.workflows import resolve

    result = resolve(_server(url, token), workdir=Path(workdir), min_votes=min_votes)
    say(f"{result.decided} decision(s) merged; {result.open_units} unit(s) still open"
                  + (f"; expert left unanswered: {json.dumps(result.unanswered)}" if result.unanswered else ""))


@annotate.command("export")
@click.option("--name", required=True, help="Dataset name for the preference version.")
@click.option("--as", "output", type=click.Choice(["instruction", "preference"]), default=None,
              help="Review projects: accepted + edited rows as an instruction version (default) or "
                   "accepted-vs-rejected preference pairs. Other kinds always give preference pairs.")
@click.option("--validation", default=0.0, show_default=True, type=float)
@click.option("--test", default=0.0, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--prompt-format", type=click.Choice(["auto", "text", "messages"]), default="auto", show_default=True)
@click.option("--min-votes", default=2, show_default=True, type=int)
@click.option("--tie-margin", default=0.5, show_default=True, type=float,
              help="rating projects: two answers whose mean scores differ by no more than this make no pair.")
@workdir_option
@store_option
def export_command(name, output, validation, test, seed, prompt_format, min_votes, tie_margin, workdir, store):
    """Publish a `preference` dataset version (DPO / reward-model pairs) from a pulled project, or
    for a review project an instruction version (or preference pairs with --as preference)."""
    from medcurate.annotate.recipes import export_recipe, review_export_recipe
    from medcurate.annotate.workdir import load_state
    from medcurate.errors import MedcurateError

    if load_state(Path(workdir))["kind"] == "review":
        data = review_export_recipe(Path(workdir), name, output or "instruction", validation=validation, test=test,
                                    seed=seed, prompt_format=prompt_format, min_votes=min_votes)
    elif output == "instruction":
        raise MedcurateError("--as instruction is for review projects (push --kind review)")
    else:
        data = export_recipe(Path(workdir), name, validation=validation, test=test, seed=seed,
                             prompt_format=prompt_format, min_votes=min_votes, tie_margin=tie_margin)
    run_recipe_mapping(data, origin="medcurate annotate export", store=store)
