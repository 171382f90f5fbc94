"""The quality steps on small real-shaped samples: scraped consultation answers with markup,
near-duplicate questions, and a training set that copies an evaluation question."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcurate.build import build
from medcurate.quality.near_dedupe import near_duplicate_clusters
from medcurate.quality.text import clean_text, normalise_width
from medcurate.recipe import recipe_from_dict
from medcurate.store import load_rows
from tests.conftest import run_medcurate

REPO = Path(__file__).resolve().parents[2]

SCRAPED = [
    # HTML entities and tags, a druglink and the site's "open_in_new" icon text (Huatuo/39 scrapes)
    ("胃痛吃什么药？", "&lt;p&gt;可以服用奥美拉唑(/druglink/3321)，每日一次。&lt;/p&gt; open_in_new"),
    # markdown heading, targetUrl leftovers, 查看全部 and doubled punctuation
    ("高血压要注意什么？", "### 建议\n低盐饮食，规律服药。。targetUrl=https://m.example.com/a?id=1 查看全部"),
    # a repeated sentence and ASCII punctuation inside Chinese sentences
    ("发烧怎么办?", "多喝水,注意休息.多喝水,注意休息.体温超过38.5℃可以用退烧药。"),
    # full-width letters and digits
    ("血压多少算高？", "收缩压≥１４０ｍｍＨｇ或舒张压≥９０ｍｍＨｇ即为高血压，应到心内科就诊。"),
]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def _recipe(data: Path, steps: list, name: str = "q") -> dict:
    return {"name": name, "kind": "instruction", "seed": 1,
            "sources": [{"name": "qa", "path": str(data), "format": "jsonl",
                         "options": {"defaults": {"query": "", "task": "consultation_qa"}}}],
            "steps": steps}


def test_clean_text_keeps_chinese_punctuation_chinese():
    assert clean_text("头痛，发热。。建议就医") == "头痛，发热。建议就医"
    assert normalise_width("头痛,发热;咳嗽?") == "头痛，发热；咳嗽？"
    assert normalise_width("ＡＢＣ１２３（正常）") == "ABC123（正常）"
    assert normalise_width("血压 120/80, 3.5 mg") == "血压 120/80, 3.5 mg"  # ASCII contexts untouched
    assert clean_text("注意休息。注意休息。多喝水。") == "注意休息。多喝水。"
    assert clean_text("是的。是的。好的。是的。") == "是的。好的。是的。"  # short ones only when adjacent
    # CMeIE's scraped BMJ sentences and Toyhom's trailing commas
    assert clean_text("类癌综合征@### 罕见 查看全部   ### 喘息") == "类癌综合征@罕见 喘息"
    assert clean_text("浅表性胃炎，。。。。。。,根据你的叙述") == "浅表性胃炎。根据你的叙述"


def test_clean_markup_step_counts_changed_rows_and_leaves_no_leftovers(tmp_path):
    data = _write(tmp_path / "qa.jsonl", [{"instruction": q, "answer": a} for q, a in SCRAPED]
                  + [{"instruction": "咳嗽一周了怎么办？", "answer": "建议到呼吸科就诊，查血常规和胸片。"}])
    result = build(recipe_from_dict(_recipe(data, [{"clean_markup": {}}])), store=tmp_path / "s")
    rows = [row for split in load_rows(result.version, tmp_path / "s").values() for row in split]
    text = "\n".join(row["instruction"] + row["answer"] for row in rows)
    for leftover in ("&lt;", "<p>", "druglink", "open_in_new", "targetUrl", "查看全部", "###", "。。", "ｍｍ", ",注意"):
        assert leftover not in text
    assert "可以服用奥美拉唑，每日一次。" in text and "多喝水，注意休息。体温" in text
    quality = result.manifest["stats"]["quality"]["clean_markup"]
    assert quality["rows_in"] == 5 and quality["changed"] == 4 and quality["dropped"] == 0
    assert all(":" in example and "奥美拉唑" not in example for example in quality["examples_changed"])
    card = (result.version.path / "README.md").read_text(encoding="utf-8")
    assert "## Quality" in card and "| clean_markup | 5 | 4 | 0 | 0 |" in card


def test_clean_markup_leaves_span_annotated_rows_alone(tmp_path):
    from medcurate.pipeline import CardContributions, StepContext
    from medcurate.quality.steps import clean_markup

    ctx = StepContext("clean_markup", base_dir=tmp_path, store=tmp_path, seed=0, rejects=[], card=CardContributions())
    rows = [{"query": "咳嗽,发热。。", "spans": [{"start": 3, "end": 4}]}, {"answer": "ＣＴ检查。。"}]
    cleaned = clean_markup(rows, ctx)
    assert cleaned[0]["query"] == "咳嗽,发热。。" and cleaned[1]["answer"] == "CT检查。"
    info = ctx.card.stats["quality"]["clean_markup"]
    assert info["skipped_spans"] == 1 and info["changed"] == 1 and info["examples_changed"][0].startswith("sha1:")


def test_near_dedupe_keeps_the_same_row_whatever_the_order(tmp_path):
    base = "我今年45岁，最近一个月经常头晕，早上起床时明显，量血压150/95mmHg，请问需要吃降压药吗？"
    answer = "建议连续监测血压一周，如持续升高请到心内科就诊。"
    rows = [{"instruction": base, "answer": answer},
            {"instruction": base, "answer": answer.replace("。", "！")},  # punctuation-only variant
            {"instruction": base + "谢谢医生", "answer": answer},  # longest of the cluster
            {"instruction": "孩子三岁，咳嗽有痰三天，不发烧，能吃止咳糖浆吗？", "answer": "三岁儿童咳嗽有痰不建议用强力镇咳药。"}]
    texts = [r["instruction"] + r["answer"] for r in rows]
    forward = near_duplicate_clusters(texts, threshold=0.7, ngram=5)
    backward = near_duplicate_clusters(texts[::-1], threshold=0.7, ngram=5)
    assert sorted(texts[i] for i in forward.kept) == sorted(texts[::-1][i] for i in backward.kept)
    assert len(forward.kept) == 2 and texts[2] in [texts[i] for i in forward.kept]  # the longest is kept

    result = build(recipe_from_dict(_recipe(_write(tmp_path / "qa.jsonl", rows), [{"near_dedupe": {"threshold": 0.7}}])),
                   store=tmp_path / "s")
    assert result.manifest["counts"]["filtered"] == {"near_duplicate": 2}
    stats = result.manifest["stats"]["quality"]["near_dedupe"]
    assert stats["clusters"] == 1 and stats["largest_cluster"] == 3
    assert "near-duplicate clusters" in (result.version.path / "README.md").read_text(encoding="utf-8")


def _contaminated(tmp_path: Path) -> tuple[Path, Path]:
    evaluation = tmp_path / "cmmlu_clinical_knowledge.csv"
    evaluation.write_text("Question,A,B,C,D,Answer\n"
                          "患者男性，56岁，突发胸骨后压榨性疼痛2小时，伴大汗，最可能的诊断是,心绞痛,急性心肌梗死,主动脉夹层,肺栓塞,B\n",
                          encoding="utf-8")
    data = _write(tmp_path / "qa.jsonl", [
        {"instruction": "患者男性，56岁，突发胸骨后压榨性疼痛2小时，伴大汗，最可能的诊断是什么？", "answer": "急性心肌梗死。"},
        {"instruction": "胸痛应该挂什么科？", "answer": "胸痛可先到急诊或心内科就诊。"}])
    return evaluation, data


@pytest.mark.parametrize("action", ["drop", "flag"])
def test_decontaminate_against_a_named_evaluation_file(tmp_path, action):
    evaluation, data = _contaminated(tmp_path)
    steps = [{"decontaminate": {"against": {"cmmlu": {"path": str(evaluation)}}, "action": action}}]
    result = build(recipe_from_dict(_recipe(data, steps)), store=tmp_path / "s")
    info = result.manifest["stats"]["quality"]["decontaminate"]
    assert info["evaluation_sets"]["cmmlu"]["training_rows_overlapping"] == 1
    assert info["evaluation_sets"]["cmmlu"]["evaluation_rows_hit"] == 1
    rows = [row for split in load_rows(result.version, tmp_path / "s").values() for row in split]
    if action == "drop":
        assert result.manifest["counts"]["filtered"] == {"contaminated:cmmlu": 1} and len(rows) == 1
    else:
        assert sorted(len(row["contaminated_by"]) for row in rows) == [0, 1]


def test_decontaminate_with_a_longer_ngram_finds_nothing_short(tmp_path):
    evaluation, data = _contaminated(tmp_path)
    steps = [{"decontaminate": {"against": {"cmmlu": {"path": str(evaluation)}}, "ngram": 40}}]
    result = build(recipe_from_dict(_recipe(data, steps)), store=tmp_path / "s")
    assert result.manifest["counts"]["filtered"] == {}


def test_datasets_overlap_command_reports_without_building(tmp_path):
    evaluation, data = _contaminated(tmp_path)
    store = tmp_path / "s"
    build(recipe_from_dict(_recipe(data, [], name="train-set")), store=store)
    eval_rows = _write(tmp_path / "eval.jsonl", [{"instruction": "患者男性，56岁，突发胸骨后压榨性疼痛2小时，伴大汗，最可能的诊断是",
                                                  "answer": "B"}])
    build(recipe_from_dict(_recipe(eval_rows, [], name="eval-set")), store=store)
    before = sorted(p.name for p in store.iterdir())
    result = run_medcurate("datasets", "overlap", "train-set", "eval-set@latest", "--store", str(store), "--json",
                           cwd=REPO, check=True)
    report = json.loads(result.stdout)
    assert sum(pair["first_rows_overlapping"] for pair in report["splits"]) == 1
    assert sorted(p.name for p in store.iterdir()) == before
    text = run_medcurate("datasets", "overlap", "train-set", "eval-set", "--store", str(store), cwd=REPO, check=True)
    assert "1 rows of the first overlap" in text.stdout


def test_overlap_ignores_templates_system_prompts_and_deid_placeholders():
    from medcurate.quality.overlap import all_texts, build_index

    template = "请从下面的病历文本中抽取临床发现事件，每个事件一行，写出主体词和发生状态。"
    train = {"instruction": template, "template_id": "cdee-1", "query": "咳嗽三天", "answer": "主体词：咳嗽",
             "messages": [{"role": "system", "content": "你是一名专业、耐心的医生助手，请认真回答。"},
                          {"role": "user", "content": template + "\n咳嗽三天"}]}
    assert all_texts(train) == ["咳嗽三天", "主体词：咳嗽"]
    evaluation = build_index("val", [{"instruction": template, "query": "头痛", "answer": "主体词：头痛"},
                                     {"messages": [{"role": "system", "content": "你是一名专业、耐心的医生助手，请认真回答。"},
                                                   {"role": "user", "content": "现病史：患者[PERSON]，男，48岁，反复胸闷胸痛两年，于[DATE]入院"}]}])
    assert evaluation.hits(all_texts(train)) == set()
    assert evaluation.hits(["现病史：患者[NAME]，男，48岁，反复胸闷胸痛两年，于[TIME]入院"]) == {1}  # the content still matches
    assert evaluation.hits(["现病史：患者[NAME]，女，35岁，于[TIME]出院"]) == set()


def test_drop_garbled_removes_answers_that_lost_their_commas(tmp_path):
    from medcurate.quality.text import longest_clause

    garbled = "感冒初期如果是有咳发怕风怕冷等许多症多考虑是咽喉炎症上呼吸道感风寒咳嗽等病因而致使的。"
    fine = "高血压患者首先要注意控制食盐摄入量，每天不超过六克，多吃新鲜的蔬菜水果，注意增强体育锻炼。"
    assert longest_clause(garbled) > 40 and longest_clause(fine) < 20
    data = _write(tmp_path / "qa.jsonl", [{"instruction": "感冒怎么办？", "answer": garbled},
                                          {"instruction": "高血压吃什么？", "answer": fine}])
    result = build(recipe_from_dict(_recipe(data, [{"drop_garbled": {}}])), store=tmp_path / "s")
    assert result.manifest["counts"]["filtered"] == {"garbled_text": 1}
    assert result.manifest["stats"]["quality"]["drop_garbled"]["examples_dropped"] == ["qa:1"]


def test_near_dedupe_streamed_in_batches_finds_the_clusters_of_the_whole_pass(tmp_path, monkeypatch):
    """The streaming build runs near_dedupe per group of rows that share an LSH bucket, its keys
    spilled to disk; clusters, dropped rows, card and version equal the whole-pass step's."""
    import random

    monkeypatch.setattr("medcurate.engines.spill.CHUNK_RECORDS", 500)
    pick = random.Random(3)
    advice = ["高血压患者应当低盐饮食，规律服用降压药物，并定期监测血压变化情况。",
              "糖尿病患者需要控制饮食，适量运动，按时使用胰岛素或口服降糖药物。",
              "感冒多由病毒引起，注意休息，多饮水，必要时对症治疗，一般一周左右可自愈。"]
    characters = "头痛发热咳嗽胸闷心悸乏力恶心呕吐腹泻便秘失眠口渴多尿水肿皮疹关节疼痛视物模糊耳鸣眩晕"
    rows = []
    for index in range(1_200):
        text = advice[index % 3]
        if index % 4 == 0:
            text += f"（编号{index}）"
        elif index % 4 == 1:
            text = text[:-4] + f"祝早日康复{index % 7}"
        else:
            text = f"患者自述{index}：" + "".join(pick.choice(characters) for _ in range(40))
        rows.append({"instruction": f"问题{index % 11}", "answer": text})
    recipe = _recipe(_write(tmp_path / "qa.jsonl", rows), [{"near_dedupe": {"threshold": 0.7}}])
    streamed = build(recipe_from_dict(recipe), store=tmp_path / "a", batch_size=97)
    whole = build(recipe_from_dict(recipe), store=tmp_path / "b", engine="memory")
    assert streamed.version.version == whole.version.version
    stats = streamed.manifest["stats"]["quality"]["near_dedupe"]
    assert stats == whole.manifest["stats"]["quality"]["near_dedupe"]
    assert stats["dropped"] > 300 and stats["largest_cluster"] > 10 and len(stats["examples_dropped"]) == 5
    assert streamed.manifest["counts"]["filtered"] == {"near_duplicate": stats["dropped"]}
