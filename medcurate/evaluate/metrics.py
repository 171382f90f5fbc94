"""Scores, each beside the parser that reads the model's text for it.

cmedins    the task's own parser (medcurate/cmedins/formats.py) turns the answer back into the gold
           structure; items (events, entities, triples, terms, report sections, the diagnosis, the
           department) are compared as sets: micro precision / recall / F1 per task, and accuracy =
           the whole parsed answer equals gold (CDN: normalisation accuracy). A malformed answer
           parses to nothing: it is wrong and counted as ``malformed``, never a crash.
diagnosis  EHR pairs (ClinicalGPT table 6). Match rule: the predicted text is normalised like the
           pair's own diagnosis (medcurate/ehr/records.py ``normalise_diagnosis``: a leading
           ``诊断：`` label, numbering, uncertainty markers and punctuation removed, split into items);
           correct when its first item equals, after whitespace removal, the pair's primary diagnosis
           or any item of the ``diagnoses`` list the pair carries.
text       BLEU-1..4 (sacrebleu, cumulative n-gram orders, exponential smoothing), GLEU (nltk
           ``corpus_gleu``, n = 1..4), ROUGE-1/2/L F (rouge-chinese, averaged over pairs, an empty
           answer scores 0), all over the same tokens: Chinese characters by default (``char``: each
           CJK character a token, runs of Latin letters / digits one token) or jieba words (``jieba``).
           Answer length in characters, and IvyGPT's similarity: a 64-dimension word2vec (gensim,
           fixed seed, one worker) trained on the jieba tokens of the evaluated references and
           answers, cosine of the mean word vectors.
mcq        letter extraction from a generated answer (``答案：C``, or the first standalone A-E);
           an answer with no letter is wrong and counted as ``unextractable``; and, for local
           models, the option with the highest log-likelihood.
"""
from __future__ import annotations

import re
import statistics
import zlib
from collections import Counter
from typing import Any

from medcurate.evaluate.items import LETTERS

# cmedins -----------------------------------------------------------------------------------


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((key, _freeze(item)) for key, item in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


def cmedins_units(task: str, parsed: dict[str, Any]) -> Counter:
    """The countable items of one parsed answer (a multiset, so repeated items count)."""
    if task == "cdee":
        return Counter(_freeze(event) for event in parsed.get("events", []))
    if task == "ner":
        return Counter((code, name) for code, names in parsed.get("entities", {}).items() for name in names)
    if task == "cmeie":
        return Counter(tuple(triple) for triple in parsed.get("triples", []))
    if task == "cdn":
        return Counter(parsed.get("terms", []))
    if task == "report":
        return Counter(parsed.get("sections", {}).items())
    if task == "diagnosis":
        primary = parsed.get("primary", "")
        return Counter([("primary", primary)] if primary else []) + Counter(("other", o) for o in parsed.get("others", []))
    if task == "triage":
        department = parsed.get("department", "")
        return Counter([department] if department else [])
    raise ValueError(f"no scorer for CMedINS task {task!r}")


def parse_cmedins(task: str, text: str) -> dict[str, Any] | None:
    """The task's parser on a model's text; None when the text is malformed for the format."""
    from medcurate.cmedins.formats import parse

    try:
        return parse(task, text)
    except (ValueError, KeyError, TypeError):
        return None


def _normalised_gold(task: str, gold: dict[str, Any]) -> dict[str, Any]:
    """Gold read back through render + parse, so both sides have the parser's shape."""
    from medcurate.cmedins.formats import parse, render

    return parse(task, render(task, gold))


def prf(true_positive: int, predicted: int, gold: int) -> dict[str, float]:
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def score_cmedins(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per task: micro P/R/F1 over items, exact accuracy, malformed count."""
    by_task: dict[str, dict[str, Any]] = {}
    for record in records:
        task = record["gold"]["task"]
        totals = by_task.setdefault(task, {"rows": 0, "tp": 0, "predicted": 0, "gold": 0, "exact": 0, "malformed": 0})
        gold = _normalised_gold(task, record["gold"]["gold"])
        parsed = parse_cmedins(task, record["prediction"])
        totals["rows"] += 1
        if parsed is None:
            totals["malformed"] += 1
            parsed = {}
        gold_units, predicted_units = cmedins_units(task, gold), cmedins_units(task, parsed)
        totals["tp"] += sum((gold_units & predicted_units).values())
        totals["predicted"] += sum(predicted_units.values())
        totals["gold"] += sum(gold_units.values())
        totals["exact"] += gold_units == predicted_units and parsed != {}
    result = {}
    for task, totals in sorted(by_task.items()):
        scores = prf(totals["tp"], totals["predicted"], totals["gold"])
        result[task] = {"rows": totals["rows"], **scores, "accuracy": totals["exact"] / totals["rows"],
                        "malformed": totals["malformed"]}
    return result


# diagnosis ---------------------------------------------------------------------------------
_SPACE = re.compile(r"\s+")
_DIAGNOSIS_LABEL = re.compile(r"^\s*(?:初步诊断|主要诊断|诊断)\s*(?:为|是)?\s*[：:]\s*")


def _plain(text: str) -> str:
    return _SPACE.sub("", text)


def predicted_primary_diagnosis(text: str) -> str:
    from medcurate.ehr.records import normalise_diagnosis

    first_line = next((line for line in text.strip().splitlines() if line.strip()), "")
    return _plain(normalise_diagnosis(_DIAGNOSIS_LABEL.sub("", first_line)).primary)


def diagnosis_correct(prediction: str, reference: str, diagnoses: list[str]) -> bool:
    predicted = predicted_primary_diagnosis(prediction)
    return bool(predicted) and predicted in {_plain(d) for d in [reference, *diagnoses] if d}


def score_diagnosis(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy per department and overall (rows are counted where they are, never dropped)."""
    per_department: dict[str, list[int]] = {}
    for record in records:
        correct = diagnosis_correct(record["prediction"], record["reference"], record["gold"].get("diagnoses", []))
        counts = per_department.setdefault(record["group"], [0, 0])
        counts[0] += correct
        counts[1] += 1
    departments = {name: {"rows": total, "correct": right, "accuracy": right / total}
                   for name, (right, total) in sorted(per_department.items())}
    right = sum(d["correct"] for d in departments.values())
    total = sum(d["rows"] for d in departments.values())
    accuracies = [d["accuracy"] for d in departments.values()]
    return {"departments": departments, "overall": {"rows": total, "correct": right, "accuracy": right / total},
            "department_average": sum(accuracies) / len(accuracies)}


# text --------------------------------------------------------------------------------------
_CHAR_TOKENS = re.compile(r"[A-Za-z]+|\d+(?:\.\d+)?|[^\sA-Za-z\d]")
TOKENIZATIONS = ("char", "jieba")


def tokenize(text: str, how: str = "char") -> list[str]:
    """Tokens for the overlap metrics: CJK characters (Latin words, numbers kept whole) or jieba words."""
    if how == "char":
        return _CHAR_TOKENS.findall(text)
    if how == "jieba":
        import jieba

        return [token for token in jieba.lcut(text) if token.strip()]
    raise ValueError(f"unknown tokenization {how!r}; expected one of {', '.join(TOKENIZATIONS)}")


def bleu_scores(hypotheses: list[list[str]], references: list[list[str]]) -> dict[str, float]:
    """Corpus BLEU-1..4 (cumulative) on pre-tokenised text, 0-100 like the papers' tables."""
    from sacrebleu.metrics import BLEU

    hyps = [" ".join(tokens) for tokens in hypotheses]
    refs = [[" ".join(tokens) for tokens in references]]
    return {f"bleu-{n}": BLEU(max_ngram_order=n, tokenize="none", effective_order=True).corpus_score(hyps, refs).score
            for n in range(1, 5)}


def gleu_score(hypotheses: list[list[str]], references: list[list[str]]) -> float:
    from nltk.translate.gleu_score import corpus_gleu

    return 100 * corpus_gleu([[ref] for ref in references], hypotheses, min_len=1, max_len=4)


def rouge_scores(hypotheses: list[list[str]], references: list[list[str]]) -> dict[str, float]:
    """ROUGE-1/2/L F averaged over pairs; a pair with an empty side scores 0 (rouge-chinese refuses it)."""
    from rouge_chinese import Rouge

    rouge = Rouge()
    totals = {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    for hyp, ref in zip(hypotheses, references, strict=True):
        if not hyp or not ref:
            continue
        scores = rouge.get_scores(" ".join(hyp), " ".join(ref))[0]
        for name in totals:
            totals[name] += scores[name]["f"]
    return {name: 100 * value / max(len(hypotheses), 1) for name, value in totals.items()}


def length_stats(texts: list[str]) -> dict[str, float]:
    lengths = [len(text) for text in texts]
    return {"mean": statistics.fmean(lengths), "median": statistics.median(lengths), "min": min(lengths),
            "max": max(lengths)}


def _stable_hash(text: str) -> int:
    """gensim seeds each word vector with hash(word); Python's str hash changes per process."""
    return zlib.crc32(text.encode("utf-8"))


def cosine(a, b) -> float:
    import numpy as np

    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm else 0.0


def word2vec_similarity(predictions: list[str], references: list[str], dimensions: int = 64,
                        seed: int = 0) -> dict[str, float]:
    """IvyGPT's answer/reference similarity: a word2vec trained on this evaluation's jieba tokens."""
    import numpy as np
    from gensim.models import Word2Vec

    predicted = [tokenize(text, "jieba") for text in predictions]
    referenced = [tokenize(text, "jieba") for text in references]
    sentences = [tokens for tokens in predicted + referenced if tokens]
    model = Word2Vec(sentences, vector_size=dimensions, min_count=1, window=5, seed=seed, workers=1, epochs=20,
                     hashfxn=_stable_hash)

    def mean_vector(tokens: list[str]):
        return np.mean([model.wv[t] for t in tokens], axis=0) if tokens else np.zeros(dimensions)

    similarities = [cosine(mean_vector(p), mean_vector(r)) for p, r in zip(predicted, referenced, strict=True)]
    return {"mean": statistics.fmean(similarities), "median": statistics.median(similarities),
            "dimensions": dimensions}


def score_text(records: list[dict[str, Any]], tokenization: str = "char") -> dict[str, Any]:
    predictions = [r["prediction"] for r in records]
    references = [r["reference"] for r in records]
    hyps = [tokenize(text, tokenization) for text in predictions]
    refs = [tokenize(text, tokenization) for text in references]
    return {"rows": len(records), "tokenization": tokenization, **bleu_scores(hyps, refs),
            "gleu": gleu_score(hyps, refs), **rouge_scores(hyps, refs),
            "answer_length": length_stats(predictions), "reference_length": length_stats(references),
            "word2vec_similarity": word2vec_similarity(predictions, references)}


# mcq ---------------------------------------------------------------------------------------
_ANSWER_LETTER = re.compile(r"(?:答案|选项|正确答案|answer)\s*(?:是|为|应为|:|：)?\s*[（(]?\s*([A-E])(?![A-Za-z])", re.I)
_LONE_LETTER = re.compile(r"(?<![A-Za-z])([A-E])(?![A-Za-z])")


def extract_letter(text: str, options: int = 5) -> str | None:
    """The answer letter in a generated answer, or None when there is none to read."""
    allowed = LETTERS[:options]
    for pattern in (_ANSWER_LETTER, _LONE_LETTER):
        for match in pattern.finditer(text or ""):
            letter = match.group(1).upper()
            if letter in allowed:
                return letter
    return None


def score_mcq(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy per subject, by letter extraction and (when recorded) by highest option log-likelihood."""
    subjects: dict[str, dict[str, int]] = {}
    for record in records:
        counts = subjects.setdefault(record["group"], {"rows": 0, "extracted_correct": 0, "unextractable": 0,
                                                       "loglik_rows": 0, "loglik_correct": 0})
        counts["rows"] += 1
        letter = extract_letter(record["prediction"], len(record["gold"]["options"]))
        counts["unextractable"] += letter is None
        counts["extracted_correct"] += letter == record["gold"]["answer"]
        likelihoods = record.get("option_log_likelihoods")
        if likelihoods:
            best = max(range(len(likelihoods)), key=likelihoods.__getitem__)
            counts["loglik_rows"] += 1
            counts["loglik_correct"] += LETTERS[best] == record["gold"]["answer"]

    def summary(counts: dict[str, int]) -> dict[str, Any]:
        result: dict[str, Any] = {"rows": counts["rows"], "accuracy_extracted": counts["extracted_correct"] / counts["rows"],
                                  "unextractable": counts["unextractable"]}
        if counts["loglik_rows"]:
            result["accuracy_loglik"] = counts["loglik_correct"] / counts["loglik_rows"]
        return result

    total: Counter[str] = Counter()
    for counts in subjects.values():
        total.update(counts)
    per_subject = {name: summary(counts) for name, counts in sorted(subjects.items())}
    averages = {key: statistics.fmean(s[key] for s in per_subject.values())
                for key in ("accuracy_extracted", "accuracy_loglik") if all(key in s for s in per_subject.values())}
    return {"subjects": per_subject, "overall": summary(dict(total)), "subject_average": averages}


def score_records(records: list[dict[str, Any]], tokenization: str = "char") -> dict[str, Any]:
    """Every scorer over the records that belong to it; an unknown scorer is an error, not a skip."""
    from medcurate.errors import MedcurateError

    by_scorer: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_scorer.setdefault(record["scorer"], []).append(record)
    unknown = set(by_scorer) - {"cmedins", "diagnosis", "text", "mcq"}
    if unknown:
        raise MedcurateError(f"no scorer for {', '.join(sorted(unknown))}", field="scorer")
    scores: dict[str, Any] = {"rows": len(records)}
    if "cmedins" in by_scorer:
        scores["cmedins"] = score_cmedins(by_scorer["cmedins"])
    if "diagnosis" in by_scorer:
        scores["diagnosis"] = score_diagnosis(by_scorer["diagnosis"])
    if "text" in by_scorer:
        scores["text"] = score_text(by_scorer["text"], tokenization)
    if "mcq" in by_scorer:
        scores["mcq"] = score_mcq(by_scorer["mcq"])
    return scores
