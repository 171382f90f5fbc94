"""The clinical review's KG defects, each on a small 39Health-shaped sample (GB18030 CSV): shifted
records, unsupported drug -> disease questions, generic treatments, truncated items, negations,
doubled category words, co-occurrence wording and department paths."""
from __future__ import annotations

from tests.kg.test_kg_readers import HEALTH39_HEADER, kg_build

RECORDS = [
    # a complete record: department path, a check ending in 检查, truncations that resolve or not
    '肺炎,,肺,所有人群,无传染性,医保疾病,内科 呼吸内科,胸部CT检查 血常规 痰培养... [详细],发热 咳嗽 咳痰 [详细],'
    '呼吸衰竭 [详细],药物治疗、抗感染治疗、手术治疗 [详细],阿莫西林胶囊 头孢克肟... 左氧氟... [详细],7-14天,90%,约2000元,,,,,\n',
    '支气管炎,,肺,所有人群,无传染性,医保疾病,内科 呼吸内科,痰培养 [详细],咳嗽 [详细],肺炎 [详细],对症治疗 [详细],'
    '头孢克肟胶囊 阿莫西林胶囊 [详细],7天,90%,约500元,,,,,\n',
    # only one record links 氨溴索口服液 to 咳痰: "X 是哪种疾病的常用药" is not supported
    '咳痰,,肺,所有人群,无传染性,医保疾病,呼吸内科,血常规 [详细],咳嗽 [详细],,无需治疗 [详细],氨溴索口服液 [详细],3天,99%,约100元,,,,,\n',
    # shifted columns: the name is a duration, a price sits in the checklist (39Health line 10246)
    '6-12个月,,,无特定人群,无传染性,,内科  内分泌科,15000——20000元）,甘油三酯,急性胰腺炎 心肌梗死,奥利司他片 蜂胶片,'
    '肝脾肿大 紧张,药物治疗 支持性治疗,55%-75%,根据不同医院，收费标准不一致,,,,,\n',
    # a shifted record whose name is a treatment and whose department cell holds a population
    '终身治疗,,,性传播，血液传播,母婴传播,,无特殊人群,国家免费治疗,CT检查,0,胸腺肽肠溶片,恶心与呕吐,药物治疗,0.00%,败血症,,,,,\n',
    # the same drug stated for 肺炎 by a second record: drug -> disease is supported twice
    '肺炎,,肺,,,,呼吸内科,,,,,阿莫西林胶囊 [详细],,,,,,,,\n',
]


def _build(tmp_path, store, **params):
    path = tmp_path / "disease.csv"
    path.write_bytes((HEALTH39_HEADER + "".join(RECORDS)).encode("gb18030"))
    return kg_build(tmp_path, store, [{"name": "h39", "path": "disease.csv", "format": "39health"}], **params)


def test_shifted_records_are_rejected_with_the_reason(tmp_path, store):
    manifest, rows, rejects = _build(tmp_path, store)
    assert sorted((r["line"], r["reason"]) for r in rejects) == [
        (5, "shifted columns: name holds a duration"), (6, "shifted columns: name holds a treatment or examination")]
    assert not any(name in row["instruction"] + row["answer"] for row in rows for name in ("6-12个月", "终身治疗", "元"))


def test_review_defects_are_gone_from_the_rows(tmp_path, store):
    manifest, rows, _ = _build(tmp_path, store, cap=None)
    text = "\n".join(row["instruction"] + row["answer"] for row in rows)
    assert "检查等检查" not in text and "…" not in text and "..." not in text
    assert "会引起" not in text and "并发症" not in text  # 39Health's column is co-occurrence
    answers = {row["template_id"].split(".")[1]: [] for row in rows}
    for row in rows:
        answers[row["template_id"].split(".")[1]].append(row)
    # department path -> one department
    assert {tuple(t[2] for t in row["triples"]) for row in answers["belongs_to_department"]} == {("呼吸内科",)}
    # generic treatments skipped and counted; the specific one kept; a negation is a statement
    cure = {row["subject"]: row["answer"] for row in answers["cure_way"]}
    assert "抗感染治疗" in cure["肺炎"] and "药物治疗" not in cure["肺炎"] and "手术治疗" not in cure["肺炎"]
    assert cure["咳痰"] == "咳痰无需治疗。"
    assert manifest["counts"]["filtered"]["generic_treatment"] == 3
    # truncated items: 头孢克肟... completes to the only known name, 痰培养... is complete, 左氧氟... is dropped
    drugs = {t[2] for row in answers["common_drug"] for t in row["triples"] if t[0] == "肺炎"}
    assert drugs == {"阿莫西林胶囊", "头孢克肟胶囊"}
    checks = {t[2] for row in answers["need_check"] for t in row["triples"] if t[0] == "肺炎"}
    assert checks == {"胸部CT检查", "血常规", "痰培养"}
    assert manifest["counts"]["filtered"]["truncated_item"] == 1
    # drug -> disease: asked only where two records state it
    two_hop = [row for row in rows if row["template_id"] == "zh.two_hop.drug_disease_symptom"]
    assert [row["subject"] for row in two_hop] == []  # 阿莫西林胶囊 treats two diseases, 氨溴索 has one record
    assert manifest["stats"]["kg"]["two_hop_unsupported"] >= 1


def test_doubled_category_word_is_written_once(tmp_path, store):
    from medcurate.kg.render import undouble

    assert undouble("诊断肺炎需要进行如胸部CT检查等检查。") == "诊断肺炎需要进行如胸部CT检查等。"
    assert undouble("可能出现如全身症状等症状。") == "可能出现如全身症状等。"
    assert undouble("需要进行血常规等检查。") == "需要进行血常规等检查。"


def test_a_short_form_listed_beside_its_long_form_is_left_out():
    from medcurate.kg.render import without_synonym_duplicates

    assert without_synonym_duplicates(["颈部MRI", "MRI", "核磁共振成像(MRI)"]) == ["颈部MRI", "核磁共振成像(MRI)"]
    assert without_synonym_duplicates(["CT", "B超"]) == ["CT", "B超"]
