"""Each metric against values computed by hand on small fixed inputs."""
from __future__ import annotations

import pytest

from medcurate.evaluate import metrics
from medcurate.evaluate.judge import combine, parse_judge_verdict, summarise


def _cmedins(task, gold, prediction, group=None):
    return {"scorer": "cmedins", "group": group or task, "prediction": prediction, "reference": "",
            "gold": {"task": task, "gold": gold}}


def test_prf_by_hand():
    assert metrics.prf(2, 3, 4) == pytest.approx({"precision": 2 / 3, "recall": 0.5, "f1": 4 / 7})
    assert metrics.prf(0, 0, 3) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_cmedins_micro_scores_and_malformed_answers():
    records = [
        # ner: gold {疾病: 肺炎, 哮喘}, answer {疾病: 肺炎, 感冒} -> tp 1 of 2 predicted, 2 gold
        _cmedins("ner", {"entities": {"dis": ["肺炎", "哮喘"]}}, "疾病：肺炎；感冒"),
        # ner: all right -> tp 1, predicted 1, gold 1; exact
        _cmedins("ner", {"entities": {"sym": ["发热"]}}, "临床表现：发热"),
        # cdee: a line without '：' cannot be read -> malformed, wrong, 0 predicted
        _cmedins("cdee", {"events": [{"core_name": "咳嗽", "tendency": "", "character": [], "anatomy_list": []}]},
                 "咳嗽了好几天"),
        # cdn: normalisation accuracy is exact set match
        _cmedins("cdn", {"terms": ["2型糖尿病"]}, "标准术语：2型糖尿病"),
        _cmedins("cdn", {"terms": ["高血压"]}, "标准术语：原发性高血压"),
    ]
    scores = metrics.score_cmedins(records)
    ner = scores["ner"]
    assert (ner["rows"], ner["malformed"]) == (2, 0)
    assert ner["precision"] == pytest.approx(2 / 3) and ner["recall"] == pytest.approx(2 / 3)
    assert ner["f1"] == pytest.approx(2 / 3) and ner["accuracy"] == 0.5
    cdee = scores["cdee"]
    assert cdee == {"rows": 1, "precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 0.0, "malformed": 1}
    assert scores["cdn"]["accuracy"] == 0.5 and scores["cdn"]["f1"] == pytest.approx(0.5)


def test_cmedins_empty_answer_right_when_gold_is_empty():
    scores = metrics.score_cmedins([_cmedins("cmeie", {"triples": []}, "无")])
    assert scores["cmeie"]["accuracy"] == 1.0 and scores["cmeie"]["malformed"] == 0


def test_diagnosis_match_rule_and_per_department_accuracy():
    def record(department, prediction, reference, diagnoses):
        return {"scorer": "diagnosis", "group": department, "prediction": prediction, "reference": reference,
                "gold": {"diagnoses": diagnoses}}

    records = [
        record("呼吸内科", "诊断：社区获得性肺炎\n建议抗感染治疗", "社区获得性肺炎", ["社区获得性肺炎"]),
        record("呼吸内科", "1.慢性阻塞性肺疾病 2.肺炎", "肺炎", ["肺炎", "慢性阻塞性肺疾病"]),  # any listed item
        record("呼吸内科", "感冒", "肺炎", ["肺炎"]),
        record("消化内科", "诊断：胃 溃疡？", "胃溃疡", ["胃溃疡"]),  # spaces and uncertainty marker removed
        record("消化内科", "", "胃炎", ["胃炎"]),  # an empty answer is wrong
    ]
    scores = metrics.score_diagnosis(records)
    assert scores["departments"]["呼吸内科"] == {"rows": 3, "correct": 2, "accuracy": pytest.approx(2 / 3)}
    assert scores["departments"]["消化内科"] == {"rows": 2, "correct": 1, "accuracy": 0.5}
    assert scores["overall"] == {"rows": 5, "correct": 3, "accuracy": 0.6}
    assert scores["department_average"] == pytest.approx((2 / 3 + 0.5) / 2)


def test_tokenisation_char_and_jieba():
    assert metrics.tokenize("高血压 BP 140/90") == ["高", "血", "压", "BP", "140", "/", "90"]
    assert "高血压" in metrics.tokenize("我有高血压", "jieba")


def test_bleu_gleu_rouge_by_hand():
    hyp, ref = [metrics.tokenize("高血压病")], [metrics.tokenize("高血压症")]
    # unigrams 3/4 match, bigrams 2/3, trigrams 1/2, 4-grams 0/1; equal lengths (no brevity penalty)
    bleu = metrics.bleu_scores(hyp, ref)
    assert bleu["bleu-1"] == pytest.approx(75.0)
    assert bleu["bleu-2"] == pytest.approx(100 * (3 / 4 * 2 / 3) ** 0.5)
    assert bleu["bleu-3"] == pytest.approx(100 * (3 / 4 * 2 / 3 * 1 / 2) ** (1 / 3))
    # GLEU: matching 1..4-grams (3 + 2 + 1 + 0) over max(hyp, ref) n-gram totals (10) = 0.6
    assert metrics.gleu_score(hyp, ref) == pytest.approx(60.0)
    rouge = metrics.rouge_scores(hyp, ref)
    assert rouge["rouge-1"] == pytest.approx(75.0, abs=1e-4)
    assert rouge["rouge-2"] == pytest.approx(100 * 2 / 3, abs=1e-4)
    assert rouge["rouge-l"] == pytest.approx(75.0, abs=1e-4)


def test_rouge_empty_answer_scores_zero_and_is_counted():
    rouge = metrics.rouge_scores([[], ["高"]], [["高"], ["高"]])
    assert rouge["rouge-1"] == pytest.approx(50.0, abs=1e-4)


def test_length_stats_and_word2vec_similarity():
    assert metrics.length_stats(["ab", "abcd", "abcdef"]) == {"mean": 4.0, "median": 4, "min": 2, "max": 6}
    assert metrics.cosine([1.0, 0.0], [0.0, 2.0]) == 0.0
    assert metrics.cosine([1.0, 1.0], [2.0, 2.0]) == pytest.approx(1.0)
    texts = ["多喝水注意休息", "建议到医院检查血常规"]
    same = metrics.word2vec_similarity(texts, texts)
    assert same["mean"] == pytest.approx(1.0, abs=1e-5) and same["dimensions"] == 64
    different = metrics.word2vec_similarity(texts, list(reversed(texts)))
    assert different["mean"] < 0.99
    assert metrics.word2vec_similarity(texts, list(reversed(texts))) == different  # fixed seed, one worker


@pytest.mark.parametrize(("text", "options", "letter"), [
    ("答案：C", 4, "C"), ("正确答案是 (B)", 4, "B"), ("我选D。", 4, "D"), ("E", 5, "E"), ("E", 4, None),
    ("Because of ABC", 4, None), ("不知道", 4, None), ("", 4, None),
])
def test_extract_letter(text, options, letter):
    assert metrics.extract_letter(text, options) == letter


def test_mcq_accuracy_per_subject_both_ways():
    def record(subject, prediction, answer, likelihoods=None):
        result = {"scorer": "mcq", "group": subject, "prediction": prediction, "reference": answer,
                  "gold": {"options": ["甲", "乙", "丙", "丁"], "answer": answer}}
        if likelihoods:
            result["option_log_likelihoods"] = likelihoods
        return result

    scores = metrics.score_mcq([
        record("anatomy", "答案：A", "A", [-1.0, -2.0, -3.0, -4.0]),
        record("anatomy", "不会", "B", [-1.0, -2.0, -3.0, -4.0]),
        record("virology", "B", "B", [-5.0, -1.0, -3.0, -4.0]),
    ])
    assert scores["subjects"]["anatomy"] == {"rows": 2, "accuracy_extracted": 0.5, "unextractable": 1,
                                             "accuracy_loglik": 0.5}
    assert scores["subjects"]["virology"]["accuracy_loglik"] == 1.0
    assert scores["overall"]["accuracy_extracted"] == pytest.approx(2 / 3)
    assert scores["overall"]["unextractable"] == 1
    assert scores["subject_average"]["accuracy_loglik"] == pytest.approx(0.75)


def test_unknown_scorer_is_an_error():
    from medcurate.errors import MedcurateError

    with pytest.raises(MedcurateError, match="no scorer for ranking"):
        metrics.score_records([{"scorer": "ranking"}])


@pytest.mark.parametrize(("reply", "verdict"), [
    ("Win", "win"), ("Tie.", "tie"), ("结果：Lose", "lose"), ("answer1 is better: WIN", "win"),
    ("Output as: Win, Lose, Tie.", None), ("两个回答都不错", None), ("Winner", None), ("", None),
])
def test_judge_verdicts(reply, verdict):
    assert parse_judge_verdict(reply) == verdict


def test_order_flips_are_ties_and_consistency_is_counted():
    assert combine("win", "lose") == ("win", True)
    assert combine("tie", "tie") == ("tie", True)
    assert combine("win", "win") == ("tie", False)  # the judge preferred the first position both times
    assert combine(None, "win") == ("unparsable", None)
    judgements = [{"outcome": o, "consistent": c, "verdict_a_first": a, "verdict_b_first": b}
                  for o, c, a, b in [("win", True, "win", "lose"), ("tie", False, "win", "win"),
                                     ("lose", True, "lose", "win"), ("unparsable", None, None, "win")]]
    summary = summarise(judgements, {"only_in_a": 0, "only_in_b": 1})
    assert summary["counts"] == {"win": 1, "tie": 1, "lose": 1, "unparsable": 1}
    assert summary["position_consistency"] == pytest.approx(2 / 3)
    assert summary["unparsable_replies"] == 1 and summary["order_flips"] == 1
