"""``evaluate judge``: pairwise judging of two evaluation runs' answers to the same rows.

Each pair is judged in both orders (A as Answer1, then B as Answer1). The verdicts are read from A's
side; when the two orders agree that is the outcome, when they disagree (the judge preferred a
position, not an answer) the outcome is a tie, and the pair counts against position consistency.
A reply naming no verdict (or several) is ``unparsable``: the pair is shown as such, never guessed.
The prompts are data (templates/judge/); the client is the annotation judge's (annotate/judge.py).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError
from medcurate.evaluate.run import LINEAGE_FILE, PREDICTIONS_FILE, read_predictions

JUDGEMENTS_FILE = "judgements.jsonl"
JUDGE_FILE = "judge.json"
SHIPPED_PROMPTS = ("iimedgpt", "clinicalgpt")
OUTCOMES = ("win", "tie", "lose", "unparsable")
# English words only: the prompts ask for Win / Lose / Tie, and single Chinese characters (胜, 平)
# occur inside ordinary words too often to be read as verdicts.
_VERDICT = re.compile(r"(?<![A-Za-z])(win|lose|tie)(?![A-Za-z])", re.I)
_FLIP = {"win": "lose", "lose": "win", "tie": "tie"}


def load_prompt(name_or_file: str) -> tuple[str, str]:
    """(name, text) of a shipped prompt or a user's file; it must carry the three placeholders."""
    from medcurate.resources import data_file

    path = data_file("templates", f"judge/{name_or_file}.txt") if name_or_file in SHIPPED_PROMPTS else Path(name_or_file)
    if not path.is_file():
        raise MedcurateError(f"no judge prompt {name_or_file!r}: use {', '.join(SHIPPED_PROMPTS)} or a file",
                             field="prompt")
    text = path.read_text(encoding="utf-8")
    missing = [p for p in ("{question}", "{answer1}", "{answer2}") if p not in text]
    if missing:
        raise MedcurateError(f"judge prompt lacks {', '.join(missing)}", file=str(path))
    return (name_or_file if name_or_file in SHIPPED_PROMPTS else path.name), text


def fill_prompt(template: str, question: str, answer1: str, answer2: str) -> str:
    return template.replace("{question}", question).replace("{answer1}", answer1).replace("{answer2}", answer2)


def parse_judge_verdict(reply: str) -> str | None:
    """win / lose / tie for Answer1, or None when the reply names no verdict or more than one."""
    found = {match.group(1).lower() for match in _VERDICT.finditer(reply or "")}
    return found.pop() if len(found) == 1 else None


def combine(first: str | None, second: str | None) -> tuple[str, bool | None]:
    """(outcome for A, position-consistent?) from A-first and B-first verdicts (the second read from B's side)."""
    if first is None or second is None:
        return "unparsable", None
    flipped = _FLIP[second]
    return (first, True) if first == flipped else ("tie", False)


def question_text(messages: list[dict[str, str]]) -> str:
    from medcurate.annotate.units import render_prompt

    if len(messages) == 1:
        return messages[0]["content"]
    return render_prompt(messages)


def _load_run(folder: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    folder = Path(folder)
    lineage_path = folder / LINEAGE_FILE
    if not lineage_path.is_file():
        raise MedcurateError("not an evaluation folder (no lineage.json)", file=str(folder))
    lineage = json.loads(lineage_path.read_text(encoding="utf-8"))
    return lineage, {r["id"]: r for r in read_predictions(folder / PREDICTIONS_FILE)}


def summarise(judgements: list[dict[str, Any]], unpaired: dict[str, int]) -> dict[str, Any]:
    counts = Counter(j["outcome"] for j in judgements)
    judged = len(judgements)
    both_parsed = [j for j in judgements if j["consistent"] is not None]
    consistent = sum(1 for j in both_parsed if j["consistent"])
    return {"pairs": judged, "counts": {o: counts.get(o, 0) for o in OUTCOMES},
            "rates": {o: counts.get(o, 0) / judged if judged else 0.0 for o in OUTCOMES},
            "position_consistency": consistent / len(both_parsed) if both_parsed else None,
            "order_flips": len(both_parsed) - consistent,
            "unparsable_replies": sum((j["verdict_a_first"] is None) + (j["verdict_b_first"] is None)
                                      for j in judgements),
            "unpaired": unpaired}


def judge_runs(run_a: str | Path, run_b: str | Path, ask: Callable[[str], str], prompt: str, out: str | Path,
               judge_model: dict[str, Any] | None = None, limit: int | None = None, progress=None) -> dict[str, Any]:
    """Judge every row both runs answered (both orders), write judgements.jsonl as it goes and judge.json."""
    prompt_name, template = load_prompt(prompt)
    lineage_a, predictions_a = _load_run(run_a)
    lineage_b, predictions_b = _load_run(run_b)
    if (lineage_a.get("dataset"), lineage_a.get("split")) != (lineage_b.get("dataset"), lineage_b.get("split")):
        raise MedcurateError("the two runs evaluated different versions or splits; judge answers to the same rows",
                             field="b")
    shared = [row_id for row_id in predictions_a if row_id in predictions_b][:limit]
    unpaired = {"only_in_a": len(set(predictions_a) - set(predictions_b)),
                "only_in_b": len(set(predictions_b) - set(predictions_a))}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / JUDGEMENTS_FILE
    done = {j["id"]: j for j in read_predictions(path)}
    with open(path, "a", encoding="utf-8") as handle:
        for row_id in shared:
            if row_id in done:
                continue
            a, b = predictions_a[row_id], predictions_b[row_id]
            question = question_text(a["prompt"])
            reply_first = ask(fill_prompt(template, question, a["prediction"], b["prediction"]))
            reply_second = ask(fill_prompt(template, question, b["prediction"], a["prediction"]))
            first, second = parse_judge_verdict(reply_first), parse_judge_verdict(reply_second)
            outcome, consistent = combine(first, second)
            judgement = {"id": row_id, "group": a.get("group"), "verdict_a_first": first, "verdict_b_first": second,
                         "outcome": outcome, "consistent": consistent,
                         "replies": [reply_first, reply_second]}
            handle.write(json.dumps(judgement, ensure_ascii=False) + "\n")
            handle.flush()
            done[row_id] = judgement
            if progress:
                progress(1)
    judgements = [done[row_id] for row_id in shared]
    summary = {"a": {"folder": str(Path(run_a).resolve()), "model": lineage_a.get("model")},
               "b": {"folder": str(Path(run_b).resolve()), "model": lineage_b.get("model")},
               "dataset": lineage_a.get("dataset"), "split": lineage_a.get("split"),
               "prompt": {"name": prompt_name, "sha256": hashlib.sha256(template.encode("utf-8")).hexdigest()},
               "judge": judge_model or {},
               "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
               **summarise(judgements, unpaired)}
    (out / JUDGE_FILE).write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return summary
