"""Annotation projects end to end: push candidates to Label Studio with cross-annotation,
pull annotations with agreement statistics and an adjudication queue, merge the expert's
decisions.

Everything medcurate knows about a project lives in one work folder::

    WORKDIR/project.json        kind, server URL (never the token), project ids, units, assignment
    WORKDIR/annotations.jsonl   one line per pulled annotation (append-only; last line per id wins)
    WORKDIR/decisions.jsonl     the expert's decisions on disputed judgements
    WORKDIR/report.json/.md     agreement per criterion, coverage, missing criteria

A *unit* is what one Label Studio task shows: a pair of answers (pairwise), k answers
(ranking) or one answer (binary). Annotator e-mails are hashed before anything is written
except the assignment list in project.json.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcurate.annotate.agreement import agreement_summary
from medcurate.annotate.configs import (
    SPF_CRITERIA,
    build_result,
    config_mismatch,
    config_sha256,
    criterion_of,
    decision_keys,
    judgement_keys,
    parse_result,
    project_kind,
    read_annotation_file,
)
from medcurate.annotate.server import LabelStudioServer
from medcurate.card import markdown_table
from medcurate.errors import MedcurateError
from medcurate.readers import file_sha256

STATE_FILE = "project.json"
ANNOTATIONS_FILE = "annotations.jsonl"
DECISIONS_FILE = "decisions.jsonl"
IMPORT_BATCH = 200


def annotator_hash(email: str) -> str:
    """A stable pseudonym for an annotator: the same person gets the same id in every project."""
    return "ann-" + hashlib.sha256(f"medcurate-annotator:{email.strip().lower()}".encode()).hexdigest()[:12]


# ---------------------------------------------------------------- candidates -> units

def read_candidates(path: Path) -> list[dict[str, Any]]:
    """The JSONL written by ``medcurate annotate sample`` (one prompt with its candidates a line)."""
    if not path.exists():
        raise MedcurateError("candidates file not found", file=str(path))
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MedcurateError(f"invalid JSON: {exc.msg}", file=str(path), line=number) from None
        for key in ("item_id", "prompt", "candidates"):
            if key not in item:
                raise MedcurateError("missing field", file=str(path), line=number, field=key)
        if not isinstance(item["candidates"], list) or any(
                not isinstance(c, dict) or not isinstance(c.get("text"), str) or "id" not in c
                for c in item["candidates"]):
            raise MedcurateError("candidates must be a list of {id, text}", file=str(path), line=number,
                                 field="candidates")
        items.append(item)
    if not items:
        raise MedcurateError("candidates file holds no items", file=str(path))
    return items


@dataclass
class UnitPlan:
    units: list[dict[str, Any]]
    skipped_near_duplicates: int = 0
    skipped_single_candidate: int = 0


def plan_units(kind: str, items: list[dict[str, Any]], seed: int = 0, skip_near_duplicates: bool = True) -> UnitPlan:
    """The tasks to annotate. Pairwise: every candidate pair of a prompt (near-duplicates skipped,
    A/B sides shuffled by seed against position bias); ranking: all candidates of a prompt;
    binary: each candidate alone."""
    rng = random.Random(seed)
    plan = UnitPlan(units=[])
    for item in items:
        base = {"item_id": str(item["item_id"]), "prompt": item["prompt"]}
        candidates = [{"id": str(c["id"]), "text": c["text"]} for c in item["candidates"]]
        if kind == "binary":
            plan.units.extend({**base, "unit_id": f"{item['item_id']}:{c['id']}", "candidate": c} for c in candidates)
            continue
        if len(candidates) < 2:
            plan.skipped_single_candidate += 1
            continue
        if kind == "ranking":
            shown = candidates[:]
            rng.shuffle(shown)
            plan.units.append({**base, "unit_id": str(item["item_id"]), "candidates": shown})
            continue
        near = {frozenset(map(str, pair[:2])) for pair in item.get("near_duplicates") or []}
        for first, second in itertools.combinations(candidates, 2):
            if skip_near_duplicates and frozenset((first["id"], second["id"])) in near:
                plan.skipped_near_duplicates += 1
                continue
            a, b = (first, second) if rng.random() < 0.5 else (second, first)
            plan.units.append({**base, "unit_id": f"{item['item_id']}:{first['id']}-{second['id']}", "a": a, "b": b})
    return plan


def assign_annotators(unit_ids: list[str], annotators: list[str], overlap: int) -> dict[str, list[str]]:
    """Round-robin cross-annotation: unit i goes to annotators i, i+1, …, i+overlap-1 (mod n),
    so every unit gets ``overlap`` different people and the load differs by at most one."""
    if overlap < 2:
        raise MedcurateError("overlap must be at least 2 (every item is cross-annotated)", field="overlap")
    if len(annotators) < overlap:
        raise MedcurateError(f"overlap {overlap} needs at least {overlap} annotators, got {len(annotators)}",
                             field="annotators")
    count = len(annotators)
    return {unit_id: [annotators[(index + offset) % count] for offset in range(overlap)]
            for index, unit_id in enumerate(unit_ids)}


def render_prompt(prompt: str | list[dict[str, str]]) -> str:
    """The dialogue as the annotator reads it (multi-turn history with speaker labels)."""
    if isinstance(prompt, str):
        return prompt
    speaker = {"system": "系统 System", "user": "患者 User", "assistant": "医生 Assistant"}
    return "\n\n".join(f"{speaker.get(m['role'], m['role'])}: {m['content']}" for m in prompt)


def task_data(kind: str, unit: dict[str, Any], assigned: list[str], note: str = "") -> dict[str, Any]:
    data: dict[str, Any] = {"prompt": render_prompt(unit["prompt"]), "note": note,
                            "medcurate_unit": unit["unit_id"], "assigned_to": ", ".join(assigned)}
    if kind == "pairwise":
        data.update(answer_a=unit["a"]["text"], answer_b=unit["b"]["text"])
    elif kind == "ranking":
        data["answers"] = [{"id": c["id"], "title": f"回答 Answer {n}", "body": c["text"]}
                           for n, c in enumerate(unit["candidates"], start=1)]
    else:
        data["answer"] = unit["candidate"]["text"]
    return data


# ---------------------------------------------------------------- state

def load_state(workdir: Path) -> dict[str, Any]:
    path = workdir / STATE_FILE
    if not path.exists():
        raise MedcurateError("no annotation project here (run `medcurate annotate push` first)", file=str(path))
    return json.loads(path.read_text(encoding="utf-8"))


def save_state(workdir: Path, state: dict[str, Any]) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    temporary = workdir / (STATE_FILE + ".tmp")
    temporary.write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")
    temporary.replace(workdir / STATE_FILE)


def read_jsonl_latest(path: Path, key: Callable[[dict[str, Any]], Any]) -> dict[Any, dict[str, Any]]:
    """Records of an append-only log, the last one per key (a re-pulled, edited annotation wins)."""
    latest: dict[Any, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                latest[key(record)] = record
    return latest


def append_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    written = 0
    with path.open("a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            written += 1
        handle.flush()
    return written


def check_project_config(server: LabelStudioServer, project_id: int, kind: str) -> None:
    """Refuse a project whose label config is not the one medcurate reads results from."""
    expected = project_kind(kind)
    reason = config_mismatch(expected.label_config(), server.project_config(project_id))
    if reason:
        raise MedcurateError(f"project {project_id} does not use the {kind} config "
                             f"(annotation/{expected.config_file}): {reason}", field="project")


# ---------------------------------------------------------------- push

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

    present = set()
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


# ---------------------------------------------------------------- pull

@dataclass
class Resolution:
    """The outcome of one judgement across annotators (and the expert)."""

    value: str | None
    status: str                     # consensus | adjudicated | disputed | too_few_votes | not_annotated
    votes: dict[str, int]
    agreement: float | None         # share of annotator votes equal to the final value


def resolve_judgement(votes: list[str], decision: str | None, min_votes: int = 2) -> Resolution:
    counts = Counter(votes)
    tally = dict(sorted(counts.items()))
    if decision is not None:
        share = counts[decision] / len(votes) if votes else None
        return Resolution(decision, "adjudicated", tally, share)
    if not votes:
        return Resolution(None, "not_annotated", tally, None)
    if len(votes) < min_votes:
        return Resolution(None, "too_few_votes", tally, None)
    if len(counts) == 1:
        return Resolution(votes[0], "consensus", tally, 1.0)
    return Resolution(None, "disputed", tally, None)


def votes_by_unit(annotations: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in annotations:
        grouped[record["unit_id"]].append(record)
    return grouped


def resolve_unit(kind: str, unit: dict[str, Any], annotations: list[dict[str, Any]],
                 decisions: dict[str, str], min_votes: int = 2) -> dict[str, Resolution]:
    """Every judgement key of a unit resolved from its annotations and the expert's decisions."""
    resolved = {}
    for key in judgement_keys(kind, unit):
        votes = [a["judgements"][key] for a in annotations if key in a["judgements"]]
        resolved[key] = resolve_judgement(votes, decisions.get(key), min_votes)
    return resolved


def agreement_report(state: dict[str, Any], annotations: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """Agreement per criterion, coverage against the assignment, missing criteria, consistency."""
    kind = state["kind"]
    by_unit = votes_by_unit(annotations.values())
    items_by_criterion: dict[str, list[list[tuple[str, str]]]] = defaultdict(list)
    missing = Counter()
    overall_mismatch = 0
    for unit_id, unit in state["units"].items():
        records = by_unit.get(unit_id, [])
        for record in records:
            missing.update(criterion_of(key) for key in record["missing"])
            if kind == "pairwise" and "overall" in record["judgements"]:
                implied = spf_winner(record["judgements"])
                if implied is not None and implied != record["judgements"]["overall"]:
                    overall_mismatch += 1
        for key in judgement_keys(kind, unit):
            item = [(r["annotator"], r["judgements"][key]) for r in records if key in r["judgements"]]
            items_by_criterion[criterion_of(key)].append(item)
    assigned_ids = {unit_id: {state["annotator_ids"][e] for e in emails} for unit_id, emails in state["assignment"].items()}
    complete = sum(1 for unit_id in state["units"]
                   if len({r["annotator"] for r in by_unit.get(unit_id, [])}) >= state["overlap"])
    unassigned = sum(1 for records in by_unit.values() for r in records
                     if r["annotator"] not in assigned_ids.get(r["unit_id"], set()))
    report = {
        "kind": kind,
        "project_id": state["project_id"],
        "units": len(state["units"]),
        "units_complete": complete,
        "units_pending": len(state["units"]) - complete,
        "annotations": len(annotations),
        "annotators": len({r["annotator"] for r in annotations.values()}),
        "annotations_by_unassigned_annotator": unassigned,
        "missing_criteria": dict(sorted(missing.items())),
        "agreement": {criterion: agreement_summary(items) for criterion, items in items_by_criterion.items()},
    }
    if kind == "pairwise":
        report["overall_differs_from_spf_order"] = overall_mismatch
    return report


def spf_winner(judgements: dict[str, str]) -> str | None:
    """The lexicographic SPF outcome of one set of judgements: first non-tie criterion decides;
    'tie' when all three tie; None when a criterion needed for the decision is missing."""
    for criterion in SPF_CRITERIA:
        value = judgements.get(criterion)
        if value is None:
            return None
        if value != "tie":
            return value
    return "tie"


def report_markdown(report: dict[str, Any]) -> str:
    rows = []
    for criterion, stats in report["agreement"].items():
        rows.append([criterion, stats["items"], stats["annotators"], _fmt(stats["raw_agreement"]),
                     _fmt(stats["cohen_kappa"]), _fmt(stats["fleiss_kappa"]), _fmt(stats["krippendorff_alpha"])])
    lines = [f"# Annotation agreement: project {report['project_id']} ({report['kind']})", "",
             f"- units: {report['units']} ({report['units_complete']} fully cross-annotated, "
             f"{report['units_pending']} pending)",
             f"- annotations: {report['annotations']} by {report['annotators']} annotators "
             f"({report['annotations_by_unassigned_annotator']} by someone not assigned to the unit)",
             f"- annotations missing a criterion: {json.dumps(report['missing_criteria'])}"]
    if "overall_differs_from_spf_order" in report:
        lines.append(f"- overall choice differs from the safety > professionalism > fluency order: "
                     f"{report['overall_differs_from_spf_order']}")
    if "adjudication" in report:
        lines.append(f"- adjudication: {json.dumps(report['adjudication'])}")
    lines += ["", markdown_table(["criterion", "items", "annotators", "raw agreement", "Cohen's kappa",
                                  "Fleiss' kappa", "Krippendorff's alpha"], rows), ""]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


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


def write_report(workdir: Path, state: dict[str, Any], annotations: dict[Any, dict[str, Any]],
                 min_votes: int) -> dict[str, Any]:
    """report.json / report.md from the annotations and decisions as they are now (pull and resolve)."""
    report = agreement_report(state, annotations)
    report["adjudication"] = adjudication_status(workdir, state, annotations, min_votes)
    (workdir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    (workdir / "report.md").write_text(report_markdown(report), encoding="utf-8")
    return report


def disputed_units(state: dict[str, Any], annotations: dict[Any, dict[str, Any]], decisions: dict[tuple, dict],
                   min_votes: int) -> dict[str, dict[str, Resolution]]:
    """Units whose cross-annotation is complete but whose deciding judgements do not agree
    (or lack votes because annotators skipped a criterion), minus those the expert decided."""
    by_unit = votes_by_unit(annotations.values())
    disputed = {}
    for unit_id, unit in state["units"].items():
        records = by_unit.get(unit_id, [])
        if len({r["annotator"] for r in records}) < state["overlap"]:
            continue
        decided = {key: d["value"] for (u, key), d in decisions.items() if u == unit_id}
        resolved = resolve_unit(state["kind"], unit, records, decided, min_votes)
        open_keys = unsettled_judgements(state["kind"], unit, resolved)
        if open_keys:
            disputed[unit_id] = open_keys
    return disputed


def unsettled_judgements(kind: str, unit: dict[str, Any], resolved: dict[str, Resolution]) -> dict[str, Resolution]:
    """The deciding judgements the expert must settle. Pairwise SPF is lexicographic: once a
    criterion is resolved to a winner, the later criteria cannot change the pair, so a unit with
    safety agreed on ``A`` is settled however professionalism and fluency were voted; an open
    criterion after resolved ties is asked together with the open ones after it."""
    is_open = {key: r.status in ("disputed", "too_few_votes") for key, r in resolved.items()}
    if kind != "pairwise":
        return {key: resolved[key] for key in decision_keys(kind, unit) if is_open.get(key)}
    for position, criterion in enumerate(SPF_CRITERIA):
        if is_open.get(criterion):
            return {key: resolved[key] for key in SPF_CRITERIA[position:] if is_open.get(key)}
        if resolved[criterion].value != "tie":
            return {}
    return {}


def describe_dispute(open_keys: dict[str, Resolution]) -> str:
    """The note on an adjudication task: annotators who differ are a dispute; a judgement that
    lacks votes (someone skipped it) is named as such, not as a dispute."""
    lines = []
    for status, heading in (("disputed", "分歧 / Disputed"), ("too_few_votes", "票数不足 / Too few votes")):
        parts = []
        for key, resolution in open_keys.items():
            if resolution.status != status:
                continue
            votes = ", ".join(f"{value}: {count}" for value, count in resolution.votes.items()) or "no votes"
            parts.append(f"{key.replace('order:', 'order of ').replace('|', ' vs ')} ({votes})")
        if parts:
            lines.append(f"{heading}: " + "; ".join(parts))
    return " | ".join(lines)


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


def adjudication_status(workdir: Path, state: dict[str, Any], annotations: dict[Any, dict[str, Any]],
                        min_votes: int) -> dict[str, int]:
    decisions = read_jsonl_latest(workdir / DECISIONS_FILE, key=lambda r: (r["unit_id"], r["key"]))
    queued = (state.get("adjudication") or {}).get("queued") or {}
    return {"queued_units": len(queued), "decided_judgements": len(decisions),
            "open_units": len(disputed_units(state, annotations, decisions, min_votes))}


# ---------------------------------------------------------------- resolve

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
    decided, unanswered = [], Counter()
    for page in server.task_pages(project_id):
        for task in page:
            unit_id = (task.data or {}).get("medcurate_unit")
            if unit_id not in adjudication["queued"]:
                continue
            unit = state["units"][unit_id]
            annotations = sorted((a for a in task.annotations or [] if not a.get("was_cancelled")),
                                 key=lambda a: a.get("updated_at") or "")
            if not annotations:
                continue
            latest = annotations[-1]
            judgements, _ = parse_result(state["kind"], unit, latest.get("result") or [])
            for key in adjudication["queued"][unit_id]:
                if key not in judgements:
                    unanswered[criterion_of(key)] += 1
                    continue
                previous = existing.get((unit_id, key))
                if previous and previous["value"] == judgements[key] and previous["annotation_id"] == latest["id"]:
                    continue
                decided.append({"unit_id": unit_id, "key": key, "value": judgements[key],
                                "expert": users.get(latest.get("completed_by"), "ann-unknown"),
                                "annotation_id": latest["id"], "updated_at": latest.get("updated_at")})
    append_jsonl(workdir / DECISIONS_FILE, decided)
    pulled = read_jsonl_latest(workdir / ANNOTATIONS_FILE, key=lambda r: r["annotation_id"])
    report = write_report(workdir, state, pulled, min_votes)
    return ResolveResult(len(decided), dict(unanswered), report["adjudication"]["open_units"])
