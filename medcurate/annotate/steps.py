"""Turning a pulled annotation project into a ``preference`` dataset.

Source format ``label_studio_annotations`` (path: an annotation work folder) yields one row
per annotated unit with every judgement resolved (consensus, or the expert's decision).
Step ``preference_pairs`` turns those into prompt / chosen / rejected rows:

* pairwise: the first of safety, professionalism, fluency that is not a tie decides
  (lexicographic, IIMedGPT's SPF order). **Tie rule:** a pair tied on all three criteria is
  dropped (filter ``tie``), never broken by the overall choice or by chance; a pair whose
  deciding criterion is still disputed or lacks votes is dropped as ``unresolved`` (one that
  nobody has annotated yet as ``not_annotated``).
* ranking: every ordered pair of the consensus (or adjudicated) order, one row each.
* binary: every (acceptable, unacceptable) pair of answers to the same prompt; a prompt whose
  answers are all acceptable or all unacceptable gives none (filter ``no_contrast``).
"""
from __future__ import annotations

import hashlib
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medcurate.annotate.configs import SPF_CRITERIA, decision_keys
from medcurate.annotate.project import (
    ANNOTATIONS_FILE,
    DECISIONS_FILE,
    STATE_FILE,
    agreement_report,
    load_state,
    read_jsonl_latest,
    resolve_unit,
    votes_by_unit,
)
from medcurate.annotate.sampling import as_messages
from medcurate.card import markdown_table
from medcurate.errors import MedcurateError
from medcurate.pipeline import Row, SourceSpec, StepContext, register_source_reader, register_step

UNRESOLVED_STATUSES = ("disputed", "too_few_votes", "not_annotated")


def annotation_lineage_inputs(workdir: Path, state: dict[str, Any]) -> list[dict[str, Any]]:
    """The candidates file the project was pushed from (with its own lineage: prompt version,
    sampler model and adapter) and the work folder's files as they were exported."""
    from medcurate.lineage import artifact_link, file_link

    inputs = []
    candidates = Path(state.get("candidates_file") or "")
    if candidates.is_file():
        inputs.append(artifact_link(candidates))
    for name in (STATE_FILE, ANNOTATIONS_FILE, DECISIONS_FILE):
        if (workdir / name).is_file():
            inputs.append(file_link(workdir / name))
    return inputs


def sampled_from(state: dict[str, Any], inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """What the preference pairs' answers came from, for the manifest: prompt versions, the
    candidates file's sha256, the sampler's model and adapter (no paths beyond those)."""
    from medcurate.lineage import read_lineage

    sampling = state.get("sampling") or {}
    candidates = next((link for link in inputs if link["type"] == "artifact"), None)
    lineage = read_lineage(candidates["path"]) if candidates else None
    return {"candidates_sha256": state.get("candidates_sha256") or (candidates or {}).get("sha256"),
            "prompt_versions": (lineage or {}).get("prompt_versions", []),
            "sampler": (lineage or {}).get("sampler") or {"model": sampling.get("model"),
                                                          "adapter": sampling.get("adapter")}}


@register_source_reader("label_studio_annotations",
                        doc="Annotated units of a `medcurate annotate` work folder (path: the folder), "
                            "judgements resolved by consensus or expert decision.")
def read_annotation_project(spec: SourceSpec, ctx: StepContext) -> Iterable[Row]:
    workdir = ctx.resolve_path(spec.path)
    state = load_state(workdir)
    annotations = read_jsonl_latest(workdir / ANNOTATIONS_FILE, key=lambda r: r["annotation_id"])
    decisions = read_jsonl_latest(workdir / DECISIONS_FILE, key=lambda r: (r["unit_id"], r["key"]))
    min_votes = int(spec.options.get("min_votes", 2))
    digest = hashlib.sha256()
    for name in (STATE_FILE, ANNOTATIONS_FILE, DECISIONS_FILE):
        if (workdir / name).exists():
            digest.update((workdir / name).read_bytes())
    spec.sha256 = digest.hexdigest()
    spec.lineage_inputs = annotation_lineage_inputs(workdir, state)
    report = agreement_report(state, annotations)
    ctx.card.stats["annotation"] = {key: report[key] for key in (
        "kind", "units", "units_complete", "annotations", "annotators", "missing_criteria", "agreement")}
    ctx.card.stats["annotation"]["sampled_from"] = sampled_from(state, spec.lineage_inputs)
    ctx.card.add_section("Annotation agreement", markdown_table(
        ["criterion", "items", "raw agreement", "Cohen's kappa", "Fleiss' kappa", "Krippendorff's alpha"],
        [[name, s["items"], s["raw_agreement"], s["cohen_kappa"], s["fleiss_kappa"], s["krippendorff_alpha"]]
         for name, s in report["agreement"].items()]))
    by_unit = votes_by_unit(annotations.values())
    decided: dict[str, dict[str, str]] = defaultdict(dict)
    for (unit_id, key), record in decisions.items():
        decided[unit_id][key] = record["value"]
    for line, (unit_id, unit) in enumerate(state["units"].items(), start=1):
        ctx.ledger.rows_in += 1
        records = by_unit.get(unit_id, [])
        resolved = resolve_unit(state["kind"], unit, records, decided.get(unit_id, {}), min_votes)
        yield {
            "unit_id": unit_id, "unit_kind": state["kind"], "prompt_id": unit["item_id"], "prompt": unit["prompt"],
            "unit": unit,
            "resolved": {key: {"value": r.value, "status": r.status, "agreement": r.agreement}
                         for key, r in resolved.items()},
            "annotators": sorted({r["annotator"] for r in records}),
            "source": {"name": spec.name, "file": ANNOTATIONS_FILE, "line": line, "sha256": spec.sha256},
        }


@register_step("preference_pairs", reads=("unit_kind", "unit", "resolved", "prompt"),
               writes=("prompt", "chosen", "rejected", "ratings", "agreement", "annotators"))
def preference_pairs(rows: list[Row], ctx: StepContext, prompt_format: str = "auto") -> list[Row]:
    """Annotated units -> prompt/chosen/rejected rows (pairwise SPF order, ranking pairs, binary
    contrasts); ties dropped as ``tie``, undecided units as ``unresolved``. ``prompt_format``:
    auto (messages when any prompt has history), text or messages."""
    if prompt_format not in ("auto", "text", "messages"):
        raise MedcurateError("prompt_format must be auto, text or messages", field="steps.preference_pairs.prompt_format")
    by_kind: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_kind[row["unit_kind"]].append(row)
    made: list[Row] = []
    consumed_before = _consumed(ctx)
    made += _pairwise_rows(by_kind.pop("pairwise", []), ctx)
    made += _ranking_rows(by_kind.pop("ranking", []), ctx)
    made += _binary_rows(by_kind.pop("binary", []), ctx)
    for kind, leftovers in by_kind.items():
        for row in leftovers:
            ctx.reject(row, f"unknown unit kind: {kind}", "unit_kind")
    consumed = len(rows) - (_consumed(ctx) - consumed_before)
    ctx.merged(consumed)
    ctx.created(len(made))
    use_messages = prompt_format == "messages" or (prompt_format == "auto" and any(_has_history(r["prompt"]) for r in made))
    for row in made:
        row["prompt"] = as_messages(row["prompt"]) if use_messages else _as_text(row["prompt"])
    ctx.card.stats["preference_pairs"] = {"pairs": len(made), "prompt_format": "messages" if use_messages else "text",
                                          "dropped": dict(ctx.ledger.dropped)}
    return made


def _consumed(ctx: StepContext) -> int:
    return sum(ctx.ledger.dropped.values()) + sum(ctx.ledger.rejected.values())


def _base(row: Row) -> Row:
    return {"prompt": row["prompt"], "prompt_id": row["prompt_id"], "unit_id": row["unit_id"],
            "annotators": row["annotators"], "source": {**row["source"]}}


def _not_annotated(row: Row) -> bool:
    return all(r["status"] == "not_annotated" for r in row["resolved"].values())


def _drop_undecided(row: Row, ctx: StepContext) -> None:
    """Units nobody annotated yet are told apart from units whose annotators left them open."""
    ctx.drop(row, "not_annotated" if _not_annotated(row) else "unresolved")


def _pairwise_rows(rows: list[Row], ctx: StepContext) -> list[Row]:
    made = []
    for row in rows:
        resolved = row["resolved"]
        winner, decided_by = None, None
        for criterion in SPF_CRITERIA:
            value = resolved[criterion]["value"]
            if value is None:
                break
            if value != "tie":
                winner, decided_by = value, criterion
                break
        else:
            ctx.drop(row, "tie")
            continue
        if winner is None:
            _drop_undecided(row, ctx)
            continue
        unit = row["unit"]
        chosen, rejected = (unit["a"], unit["b"]) if winner == "A" else (unit["b"], unit["a"])
        relative = {winner: "chosen", "tie": "tie", ("B" if winner == "A" else "A"): "rejected"}
        ratings = {name: relative.get(resolved[name]["value"]) for name in (*SPF_CRITERIA, "overall")}
        made.append({**_base(row), "chosen": chosen["text"], "rejected": rejected["text"],
                     "chosen_id": chosen["id"], "rejected_id": rejected["id"], "decided_by": decided_by,
                     "ratings": ratings,
                     "agreement": {name: resolved[name]["agreement"] for name in (*SPF_CRITERIA, "overall")},
                     "adjudicated": any(resolved[name]["status"] == "adjudicated" for name in SPF_CRITERIA)})
    return made


def _ranking_rows(rows: list[Row], ctx: StepContext) -> list[Row]:
    made = []
    for row in rows:
        unit = row["unit"]
        texts = {c["id"]: c["text"] for c in unit["candidates"]}
        keys = decision_keys("ranking", unit)
        if any(row["resolved"][key]["status"] in UNRESOLVED_STATUSES for key in keys):
            _drop_undecided(row, ctx)
            continue
        wins = Counter(row["resolved"][key]["value"] for key in keys)
        for key in keys:
            first, second = key.split(":", 1)[1].split("|")
            better = row["resolved"][key]["value"]
            worse = second if better == first else first
            made.append({**_base(row), "chosen": texts[better], "rejected": texts[worse],
                         "chosen_id": better, "rejected_id": worse,
                         "ratings": {"chosen_wins": wins[better], "rejected_wins": wins[worse]},
                         "agreement": {"order": row["resolved"][key]["agreement"]},
                         "adjudicated": row["resolved"][key]["status"] == "adjudicated"})
    return made


def _binary_rows(rows: list[Row], ctx: StepContext) -> list[Row]:
    made = []
    by_prompt: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if row["resolved"]["acceptability"]["status"] in UNRESOLVED_STATUSES:
            _drop_undecided(row, ctx)
        else:
            by_prompt[row["prompt_id"]].append(row)
    for group in by_prompt.values():
        good = [r for r in group if r["resolved"]["acceptability"]["value"] == "acceptable"]
        bad = [r for r in group if r["resolved"]["acceptability"]["value"] == "unacceptable"]
        if not good or not bad:
            for row in group:
                ctx.drop(row, "no_contrast")
            continue
        for accepted, refused in itertools.product(good, bad):
            base = _base(accepted)
            base["unit_id"] = f"{accepted['unit_id']}>{refused['unit_id']}"
            base["annotators"] = sorted(set(accepted["annotators"]) | set(refused["annotators"]))
            made.append({**base, "chosen": accepted["unit"]["candidate"]["text"],
                         "rejected": refused["unit"]["candidate"]["text"],
                         "chosen_id": accepted["unit"]["candidate"]["id"],
                         "rejected_id": refused["unit"]["candidate"]["id"],
                         "ratings": {"chosen": "acceptable", "rejected": "unacceptable"},
                         "agreement": {"chosen": accepted["resolved"]["acceptability"]["agreement"],
                                       "rejected": refused["resolved"]["acceptability"]["agreement"]},
                         "adjudicated": "adjudicated" in (accepted["resolved"]["acceptability"]["status"],
                                                          refused["resolved"]["acceptability"]["status"])})
    return made


def _has_history(prompt: Any) -> bool:
    return isinstance(prompt, list) and (len(prompt) > 1 or any(m.get("role") == "system" for m in prompt))


def _as_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m["content"] for m in prompt if m.get("role") == "user")


def export_recipe(workdir: Path, name: str, *, validation: float = 0.0, test: float = 0.0, seed: int = 0,
                  prompt_format: str = "auto", min_votes: int = 2) -> dict[str, Any]:
    """The recipe ``medcurate annotate export`` runs: pairs grouped by prompt so that the
    answers to one prompt never straddle splits."""
    return {
        "name": name, "kind": "preference",
        "description": "Preference pairs from a cross-annotated, adjudicated Label Studio project",
        "sources": [{"name": "annotations", "path": str(workdir.resolve()), "format": "label_studio_annotations",
                     "options": {"min_votes": min_votes}}],
        "steps": [{"preference_pairs": {"prompt_format": prompt_format}}],
        "splits": {"seed": seed, "validation": validation, "test": test, "group": "prompt_id"},
    }
