"""``evaluate report``: the papers' result tables from one or more evaluation (and judge) folders.

Tables (one row per run, so several folders make the comparison):
  CMedINS / CBLUE per task (MedGo)          P / R / F1 / accuracy / malformed per task
  diagnosis by department (ClinicalGPT t.6) one column per department, then the department average
  exam accuracy by subject (ClinicalGPT t.4) one column per subject, then the average; log-likelihood
                                            and letter-extraction rows, unextractable answers counted
  conversation (ClinicalGPT t.2)             BLEU-1..4, GLEU, ROUGE-1/2/L
  answers (IvyGPT t.1, fig. 2b/3a)           word2vec similarity, answer and reference lengths
  pairwise (ClinicalGPT t.7, IIMedGPT)       win / tie / lose with counts, unparsable, position consistency
Charts: accuracy by department (grouped bars per run) and win/tie/lose bars. Chart text is Chinese;
without a CJK font (``--font``) the department labels become D1, D2 … and report.md gives the key.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medcurate.errors import MedcurateError
from medcurate.evaluate.judge import JUDGE_FILE, OUTCOMES
from medcurate.evaluate.run import LINEAGE_FILE, SCORES_FILE


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _load(folder: Path) -> tuple[str, dict[str, Any]]:
    if (folder / JUDGE_FILE).is_file():
        return "judge", json.loads((folder / JUDGE_FILE).read_text(encoding="utf-8"))
    if (folder / SCORES_FILE).is_file():
        scores = json.loads((folder / SCORES_FILE).read_text(encoding="utf-8"))
        lineage = json.loads((folder / LINEAGE_FILE).read_text(encoding="utf-8"))
        return "eval", {"scores": scores, "lineage": lineage}
    raise MedcurateError("neither an evaluation (scores.json) nor a judge folder (judge.json); "
                         "finish `evaluate run` first", file=str(folder))


def _model_label(lineage: dict[str, Any]) -> str:
    model = lineage.get("model") or {}
    if model.get("endpoint"):
        return f"{Path(str(model.get('served_model'))).name} @ endpoint"
    name = Path(model.get("base_model") or "?").name
    return f"{name} + {Path(model['adapter']).name}" if model.get("adapter") else name


def cmedins_section(runs: list[tuple[str, dict]]) -> list[str]:
    lines = ["## CMedINS / CBLUE tasks (MedGo CBLUE table layout)", "",
             "Micro precision / recall / F1 over the task's items (events, entities, triples, terms, sections) "
             "read back with the task's own parser; accuracy = the whole answer right (CDN: normalisation "
             "accuracy); malformed answers count as wrong.", ""]
    rows = []
    for label, run in runs:
        for task, s in run["scores"].get("cmedins", {}).items():
            rows.append([label, task, s["rows"], _pct(s["precision"]), _pct(s["recall"]), _pct(s["f1"]),
                         _pct(s["accuracy"]), s["malformed"]])
    return lines + [markdown_table(["run", "task", "rows", "P", "R", "F1", "accuracy", "malformed"], rows), ""]


def diagnosis_section(runs: list[tuple[str, dict]], chart: str | None) -> list[str]:
    departments = sorted({d for _, run in runs for d in run["scores"].get("diagnosis", {}).get("departments", {})})
    header = ["run", *departments, "Average", "overall (rows)"]
    rows = []
    for label, run in runs:
        scores = run["scores"].get("diagnosis")
        if not scores:
            continue
        cells = [_pct(scores["departments"][d]["accuracy"]) if d in scores["departments"] else "–" for d in departments]
        overall = scores["overall"]
        rows.append([label, *cells, _pct(scores["department_average"]),
                     f"{_pct(overall['accuracy'])} ({overall['correct']}/{overall['rows']})"])
    lines = ["## Diagnosis accuracy by department (ClinicalGPT table 6 layout)", "",
             "Accuracy (%) per department; Average = mean of the departments; overall = all rows. Match rule: "
             "the answer's first diagnosis, normalised like the pair's own, equals the primary diagnosis or an "
             "item of the pair's diagnosis list.", "", markdown_table(header, rows), ""]
    if chart:
        lines += [f"![accuracy by department]({chart})", ""]
    return lines


def mcq_section(runs: list[tuple[str, dict]]) -> list[str]:
    subjects = sorted({s for _, run in runs for s in run["scores"].get("mcq", {}).get("subjects", {})})
    rows = []
    for label, run in runs:
        scores = run["scores"].get("mcq")
        if not scores:
            continue
        per = scores["subjects"]
        for method, key in (("log-likelihood", "accuracy_loglik"), ("letter extracted", "accuracy_extracted")):
            if key not in scores["overall"]:
                continue
            cells = [_pct(per[s].get(key)) if s in per else "–" for s in subjects]
            rows.append([label, method, *cells, _pct(scores["subject_average"].get(key)), _pct(scores["overall"][key]),
                         scores["overall"]["unextractable"] if key == "accuracy_extracted" else ""])
    return ["## Exam accuracy by subject (ClinicalGPT table 4 layout)", "",
            "Accuracy (%) per subject; Average = mean of the subjects; unextractable = generated answers with no "
            "option letter (counted wrong).", "",
            markdown_table(["run", "scored by", *subjects, "Average", "all rows", "unextractable"], rows), ""]


def text_section(runs: list[tuple[str, dict]]) -> list[str]:
    rows, answer_rows = [], []
    for label, run in runs:
        s = run["scores"].get("text")
        if not s:
            continue
        rows.append([label, s["rows"], s["tokenization"], *(_num(s[f"bleu-{n}"]) for n in range(1, 5)), _num(s["gleu"]),
                     _num(s["rouge-1"]), _num(s["rouge-2"]), _num(s["rouge-l"])])
        answer, reference = s["answer_length"], s["reference_length"]
        answer_rows.append([label, f"{s['word2vec_similarity']['mean']:.3f}", f"{answer['mean']:.1f}",
                            f"{answer['median']:.0f}", f"{answer['min']}–{answer['max']}", f"{reference['mean']:.1f}"])
    return ["## Conversation / free-text answers (ClinicalGPT table 2 layout)", "",
            "BLEU-1..4 (sacrebleu, cumulative), GLEU (nltk), ROUGE-1/2/L F (rouge-chinese), 0-100, over the "
            "tokenisation shown.", "",
            markdown_table(["run", "rows", "tokens", "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "GLEU", "ROUGE-1",
                            "ROUGE-2", "ROUGE-L"], rows), "",
            "## Answer similarity and length (IvyGPT table 1, fig. 2b/3a)", "",
            "Cosine of mean 64-dimension word2vec vectors (trained on this evaluation's jieba tokens) between "
            "answer and reference; lengths in characters.", "",
            markdown_table(["run", "similarity", "answer mean", "answer median", "answer range", "reference mean"],
                           answer_rows), ""]


def judge_section(judges: list[tuple[str, dict]], chart: str | None) -> list[str]:
    rows = []
    for _, s in judges:
        counts, rates = s["counts"], s["rates"]
        label_a = _model_label({"model": s["a"]["model"]}) + f" ({Path(s['a']['folder']).name})"
        label_b = _model_label({"model": s["b"]["model"]}) + f" ({Path(s['b']['folder']).name})"
        rows.append([f"{label_a} vs {label_b}", s["prompt"]["name"], s["pairs"],
                     *(f"{counts[o]} ({_pct(rates[o])}%)" for o in OUTCOMES),
                     _pct(s["position_consistency"]), s["unparsable_replies"],
                     f"{s['unpaired']['only_in_a']}/{s['unpaired']['only_in_b']}"])
    lines = ["## Pairwise judgement (ClinicalGPT table 7, IIMedGPT layout)", "",
             "Each pair judged in both orders; a verdict that flips with the order is a tie; unparsable = no "
             "verdict could be read in at least one order. The iimedgpt prompt leaves safety out (as the paper did).",
             "", markdown_table(["A vs B", "prompt", "pairs", "Win", "Tie", "Lose", "Unparsable",
                                 "position consistency %", "unparsable replies", "unpaired A/B"], rows), ""]
    if chart:
        lines += [f"![win tie lose]({chart})", ""]
    return lines


def _font(font: str | None):
    if not font:
        return None
    from matplotlib.font_manager import FontProperties

    return FontProperties(fname=font)


def department_chart(runs: list[tuple[str, dict]], path: Path, font) -> dict[str, str]:
    """Grouped bars of accuracy by department; returns the label key used when no font was given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    departments = sorted({d for _, run in runs for d in run["scores"]["diagnosis"]["departments"]})
    key = {d: (d if font else f"D{i}") for i, d in enumerate(departments, start=1)}
    figure, axes = plt.subplots(figsize=(max(4, 1.2 * len(departments) * max(1, len(runs))), 3.5))
    width = 0.8 / len(runs)
    for index, (_, run) in enumerate(runs):
        per = run["scores"]["diagnosis"]["departments"]
        values = [100 * per[d]["accuracy"] if d in per else 0.0 for d in departments]
        axes.bar([i + index * width for i in range(len(departments))], values, width, label=f"run {index + 1}")
    axes.set_xticks([i + 0.4 - width / 2 for i in range(len(departments))])
    axes.set_xticklabels([key[d] for d in departments], fontproperties=font)
    axes.set_ylabel("accuracy (%)")
    axes.set_ylim(0, 100)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return {} if font else {v: k for k, v in key.items()}


def judge_chart(judges: list[tuple[str, dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 0.8 + 0.6 * len(judges)))
    colours = {"win": "#4c9f38", "tie": "#bbbbbb", "lose": "#c0392b", "unparsable": "#555555"}
    for row, (_, summary) in enumerate(judges):
        left = 0.0
        for outcome in OUTCOMES:
            value = 100 * summary["rates"][outcome]
            axes.barh(row, value, left=left, color=colours[outcome], label=outcome if row == 0 else None)
            left += value
    axes.set_yticks(range(len(judges)))
    axes.set_yticklabels([f"pair {i + 1}" for i in range(len(judges))])
    axes.set_xlim(0, 100)
    axes.set_xlabel("% of pairs")
    axes.legend(ncol=4, fontsize="small", loc="lower center", bbox_to_anchor=(0.5, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_report(folders: list[str | Path], out: str | Path | None = None, font: str | None = None) -> Path:
    """report.md and PNG charts for evaluation and judge folders (several runs: one row each)."""
    loaded = [(Path(f), *_load(Path(f))) for f in folders]
    runs = [(f"{_model_label(data['lineage'])} ({folder.name})", data) for folder, what, data in loaded if what == "eval"]
    judges = [(folder.name, data) for folder, what, data in loaded if what == "judge"]
    out_dir = Path(out) if out else Path(folders[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    properties = _font(font)
    lines = ["# Evaluation report", "", "| run | model | dataset | split | rows |", "| --- | --- | --- | --- | --- |"]
    for index, (label, data) in enumerate(runs, start=1):
        lineage = data["lineage"]
        training = (lineage["model"].get("adapter_training") or {}).get("dataset") or {}
        trained = f"; adapter trained on {training.get('ref')}" if training.get("ref") else ""
        lines.append(f"| {index} | {label}{trained} | {lineage['dataset']} | {lineage['split']} | {lineage['rows']} |")
    lines.append("")
    if any("cmedins" in data["scores"] for _, data in runs):
        lines += cmedins_section(runs)
    diagnosed = [(label, data) for label, data in runs if "diagnosis" in data["scores"]]
    if diagnosed:
        key = department_chart(diagnosed, out_dir / "diagnosis_by_department.png", properties)
        lines += diagnosis_section(diagnosed, "diagnosis_by_department.png")
        if key:
            lines += ["Chart key: " + ", ".join(f"{code} = {name}" for code, name in key.items()), ""]
    if any("mcq" in data["scores"] for _, data in runs):
        lines += mcq_section(runs)
    if any("text" in data["scores"] for _, data in runs):
        lines += text_section(runs)
    if judges:
        judge_chart(judges, out_dir / "win_tie_lose.png")
        lines += judge_section(judges, "win_tie_lose.png")
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def summary_lines(folder: str | Path) -> list[str]:
    """A few lines for the terminal after ``evaluate run``."""
    scores = json.loads((Path(folder) / SCORES_FILE).read_text(encoding="utf-8"))
    lines = []
    for task, s in scores.get("cmedins", {}).items():
        lines.append(f"cmedins {task}: F1 {_pct(s['f1'])} accuracy {_pct(s['accuracy'])} malformed {s['malformed']}/{s['rows']}")
    if "diagnosis" in scores:
        d = scores["diagnosis"]
        lines.append(f"diagnosis: overall {_pct(d['overall']['accuracy'])} over {len(d['departments'])} departments")
    if "mcq" in scores:
        overall = scores["mcq"]["overall"]
        loglik = f", log-likelihood {_pct(overall['accuracy_loglik'])}" if "accuracy_loglik" in overall else ""
        lines.append(f"mcq: extracted {_pct(overall['accuracy_extracted'])} (unextractable {overall['unextractable']})"
                     f"{loglik}")
    if "text" in scores:
        t = scores["text"]
        lines.append(f"text: BLEU-4 {_num(t['bleu-4'])} GLEU {_num(t['gleu'])} ROUGE-L {_num(t['rouge-l'])}")
    return lines
