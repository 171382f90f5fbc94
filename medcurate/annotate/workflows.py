"""Label Studio workflows end to end: push candidates with cross-annotation, pull annotations
with agreement statistics and an adjudication queue, resolve with the expert's decisions.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcurate.annotate.configs import (
    REVIEW_TEXTS,
    build_result,
    config_mismatch,
    config_sha256,
    criterion_of,
    parse_result,
    project_kind,
    read_annotation_file,
)
from medcurate.annotate.reports import write_report
from medcurate.annotate.server import LabelStudioServer
from medcurate.annotate.units import assign_annotators, plan_units, read_candidates, task_data
from medcurate.annotate.votes import describe_dispute, disputed_units
from medcurate.annotate.workdir import (
    ANNOTATIONS_FILE,
    DECISIONS_FILE,
    STATE_FILE,
    annotator_hash,
    append_jsonl,
    load_state,
    read_jsonl_latest,
    save_state,
)
from medcurate.errors import MedcurateError
from medcurate.readers import file_sha256

IMPORT_BATCH = 200


def check_project_config(server: LabelStudioServer, project_id: int, kind: str) -> None:
    """Refuse a project whose label config is not the one medcurate reads results from."""
    expected = project_kind(kind)
    reason = config_mismatch(expected.label_config(), server.project_config(project_id))
    if reason:
        raise MedcurateError(f"project {project_id} does not use the {kind} config "
                             f"(annotation/{expected.config_file}): {reason}", field="project")


@dataclass
class PushResult:
    project_id: int
    tasks: int
    skipped_near_duplicates: int
    skipped_single_candidate: int
    predictions: int
    load: dict[str, int] = field(default_factory=dict)
    without_account: list[str] = field(default_factory=list)


def push(server: LabelStudioServer, *, workdir: Path, candidates: Path, kind: str, annotators: list[str],
         overlap: int = 2, title: str | None = None, seed: int = 0, project_id: int | None = None,
         judge: Callable[[str, dict[str, Any]], dict[str, Any] | None] | None = None,
         judge_name: str | None = None, skip_near_duplicates: bool = True) -> PushResult:
    """Create (or complete) a project: tasks with their assignment, annotator views, predictions."""
    spec = project_kind(kind)
    items = read_candidates(candidates)
    plan = plan_units(kind, items, seed=seed, skip_near_duplicates=skip_near_duplicates)
    if not plan.units:
        raise MedcurateError("nothing to annotate: every prompt has fewer than two usable candidates",
                             file=str(candidates))
    annotators = [a.strip() for a in annotators if a.strip()]
    assignment = assign_annotators([u["unit_id"] for u in plan.units], annotators, overlap)
    label_config = spec.label_config()
    workdir.mkdir(parents=True, exist_ok=True)
    previous = json.loads((workdir / STATE_FILE).read_text(encoding="utf-8")) if (workdir / STATE_FILE).exists() else None
    if previous and project_id is None:
        project_id = previous["project_id"]
    if project_id is not None:
        check_project_config(server, project_id, kind)
    else:
        instructions = read_annotation_file("guidelines.html")
        project = server.call("create the project", server.sdk.projects.create,
                              title=title or f"medcurate {kind} {candidates.stem}"[:50], label_config=label_config,
                              description=f"medcurate {kind} preference annotation ({spec.doc})",
                              expert_instruction=instructions, show_instruction=True)
        project_id = project.id
    state = {
        "kind": kind, "server_url": server.url, "project_id": project_id, "title": title,
        "config_file": spec.config_file, "config_sha256": config_sha256(label_config),
        "candidates_file": str(candidates.resolve()), "candidates_sha256": file_sha256(candidates), "overlap": overlap, "seed": seed,
        "annotators": annotators, "annotator_ids": {email: annotator_hash(email) for email in annotators},
        "units": {u["unit_id"]: u for u in plan.units}, "assignment": assignment,
        "skipped_near_duplicates": plan.skipped_near_duplicates,
        "skipped_single_candidate": plan.skipped_single_candidate,
        "sampling": items[0].get("sampling"), "judge": judge_name,
        "adjudication": (previous or {}).get("adjudication"),
    }
    save_state(workdir, state)
    without_account = [email for email, user_id in server.accounts(annotators).items() if user_id is None]

    present: set[str | None] = set()
    for page in server.task_pages(project_id):
        present.update((task.data or {}).get("medcurate_unit") for task in page)
    missing = [u for u in plan.units if u["unit_id"] not in present]
    predictions = 0
    for start in range(0, len(missing), IMPORT_BATCH):
        batch = []
        for unit in missing[start:start + IMPORT_BATCH]:
            task: dict[str, Any] = {"data": task_data(kind, unit, assignment[unit["unit_id"]])}
            verdict = judge(kind, unit) if judge else None
            if verdict:
                task["predictions"] = [{"model_version": judge_name or "llm-judge",
                                        "result": build_result(kind, verdict)}]
                predictions += 1
            batch.append(task)
        server.call("import tasks", server.sdk.projects.import_tasks, id=project_id, request=batch,
                    return_task_ids=True)
    _create_annotator_views(server, project_id, annotators, existing=previous is not None)
    load = Counter(email for assigned in assignment.values() for email in assigned)
    return PushResult(project_id, len(plan.units), plan.skipped_near_duplicates, plan.skipped_single_candidate,
                      predictions, dict(load), without_account)


def _create_annotator_views(server: LabelStudioServer, project_id: int, annotators: list[str], existing: bool) -> None:
    """One Data Manager tab per annotator showing only the tasks assigned to them."""
    titles = set()
    if existing:
        titles = {view.data.get("title") if isinstance(view.data, dict) else None
                  for view in server.call("list views", server.sdk.views.list, project=project_id)}
    for email in annotators:
        if email in titles:
            continue
        server.call("create an annotator view", server.sdk.views.create, project=project_id, data={
            "title": email,
            "filters": {"conjunction": "and", "items": [
                {"filter": "filter:tasks:data.assigned_to", "operator": "contains", "type": "String", "value": email}]},
        })


@dataclass
class PullResult:
    new_annotations: int
    report: dict[str, Any]
    queued: int
    expert_project_id: int | None


def pull(server: LabelStudioServer, *, workdir: Path, min_votes: int = 2, expert: str | None = None,
         page_size: int = 100) -> PullResult:
    """Fetch new annotations (resumable), report agreement, queue disagreements for the expert."""
    state = load_state(workdir)
    check_project_config(server, state["project_id"], state["kind"])
    log = workdir / ANNOTATIONS_FILE
    known = read_jsonl_latest(log, key=lambda r: r["annotation_id"])
    seen = {(r["annotation_id"], r["updated_at"]) for r in known.values()}
    users = {user_id: annotator_hash(email) for user_id, email in server.users_by_id().items()}
    new = 0
    for page in server.task_pages(state["project_id"], page_size=page_size):
        fresh = []
        for task in page:
            unit_id = (task.data or {}).get("medcurate_unit")
            unit = state["units"].get(unit_id)
            if unit is None:
                continue
            for annotation in task.annotations or []:
                if annotation.get("was_cancelled") or (annotation["id"], annotation.get("updated_at")) in seen:
                    continue
                judgements, missing = parse_result(state["kind"], unit, annotation.get("result") or [])
                fresh.append({"annotation_id": annotation["id"], "task_id": task.id, "unit_id": unit_id,
                              "annotator": users.get(annotation.get("completed_by"), f"ann-unknown-{annotation.get('completed_by')}"),
                              "judgements": judgements, "missing": missing,
                              "updated_at": annotation.get("updated_at")})
        new += append_jsonl(log, fresh)
    annotations = read_jsonl_latest(log, key=lambda r: r["annotation_id"])
    queued, expert_project = queue_disagreements(server, workdir, state, annotations, min_votes, expert)
    return PullResult(new, write_report(workdir, state, annotations, min_votes), queued, expert_project)


def queue_disagreements(server: LabelStudioServer, workdir: Path, state: dict[str, Any],
                        annotations: dict[Any, dict[str, Any]], min_votes: int,
                        expert: str | None) -> tuple[int, int | None]:
    """Add newly disputed units to the expert's adjudication project (created on first need)."""
    decisions = read_jsonl_latest(workdir / DECISIONS_FILE, key=lambda r: (r["unit_id"], r["key"]))
    disputed = disputed_units(state, annotations, decisions, min_votes)
    adjudication = state.get("adjudication") or {"project_id": None, "queued": {}}
    fresh = {unit_id: keys for unit_id, keys in disputed.items() if unit_id not in adjudication["queued"]}
    if not fresh:
        return 0, adjudication["project_id"]
    kind = state["kind"]
    if adjudication["project_id"] is None:
        instructions = read_annotation_file("adjudication.html") + read_annotation_file("guidelines.html")
        project = server.call("create the adjudication project", server.sdk.projects.create,
                              title=f"adjudication {state['project_id']} ({kind})",
                              label_config=project_kind(kind).label_config(),
                              description=f"expert adjudication of medcurate project {state['project_id']}",
                              expert_instruction=instructions, show_instruction=True)
        adjudication["project_id"] = project.id
        state["adjudication"] = adjudication
        save_state(workdir, state)
    else:
        check_project_config(server, adjudication["project_id"], kind)
    units = list(fresh.items())
    for start in range(0, len(units), IMPORT_BATCH):
        batch = units[start:start + IMPORT_BATCH]
        tasks = [{"data": task_data(kind, state["units"][unit_id], [expert] if expert else [],
                                    note=describe_dispute(keys))} for unit_id, keys in batch]
        server.call("import adjudication tasks", server.sdk.projects.import_tasks,
                    id=adjudication["project_id"], request=tasks, return_task_ids=True)
        for unit_id, keys in batch:
            adjudication["queued"][unit_id] = sorted(keys)
        state["adjudication"] = adjudication
        save_state(workdir, state)
    return len(fresh), adjudication["project_id"]


@dataclass
class ResolveResult:
    decided: int
    unanswered: dict[str, int]
    open_units: int


def resolve(server: LabelStudioServer, *, workdir: Path, min_votes: int = 2) -> ResolveResult:
    """Merge the expert's annotations: each disputed judgement takes the expert's value."""
    state = load_state(workdir)
    adjudication = state.get("adjudication") or {}
    if not adjudication.get("project_id"):
        raise MedcurateError("no adjudication project yet: `medcurate annotate pull` creates it when "
                             "annotators disagree", file=str(workdir / STATE_FILE))
    project_id = adjudication["project_id"]
    check_project_config(server, project_id, state["kind"])
    users = {user_id: annotator_hash(email) for user_id, email in server.users_by_id().items()}
    existing = read_jsonl_latest(workdir / DECISIONS_FILE, key=lambda r: (r["unit_id"], r["key"]))
    decided: list[dict[str, Any]] = []
    unanswered: Counter[str] = Counter()
    for page in server.task_pages(project_id):
        for task in page:
            unit_id = (task.data or {}).get("medcurate_unit")
            if unit_id not in adjudication["queued"]:
                continue
            unit = state["units"][unit_id]
            expert_annotations = sorted((a for a in task.annotations or [] if not a.get("was_cancelled")),
                                        key=lambda a: a.get("updated_at") or "")
            if not expert_annotations:
                continue
            latest = expert_annotations[-1]
            judgements, _ = parse_result(state["kind"], unit, latest.get("result") or [])
            for key in adjudication["queued"][unit_id]:
                if key not in judgements:
                    unanswered[criterion_of(key)] += 1
                    continue
                previous = existing.get((unit_id, key))
                if previous and previous["value"] == judgements[key] and previous["annotation_id"] == latest["id"]:
                    continue
                decision = {"unit_id": unit_id, "key": key, "value": judgements[key],
                            "expert": users.get(latest.get("completed_by"), "ann-unknown"),
                            "annotation_id": latest["id"], "updated_at": latest.get("updated_at")}
                texts = {name: judgements[name] for name in REVIEW_TEXTS if judgements.get(name)}
                if texts:
                    decision["texts"] = texts          # a review expert's own edit and reason
                decided.append(decision)
    append_jsonl(workdir / DECISIONS_FILE, decided)
    pulled = read_jsonl_latest(workdir / ANNOTATIONS_FILE, key=lambda r: r["annotation_id"])
    report = write_report(workdir, state, pulled, min_votes)
    return ResolveResult(len(decided), dict(unanswered), report["adjudication"]["open_units"])
