"""The KG source formats on small files written here (GB18030 39Health, xywy JSON lines and CSV,
CMeKG, generic triples), including malformed records rejected with file:line."""
from __future__ import annotations

import json
from pathlib import Path

from medcurate.build import build
from medcurate.recipe import recipe_from_dict
from medcurate.store import load_rows

REPO = Path(__file__).resolve().parents[2]

HEALTH39_HEADER = "name,alias,part,age,infection,insurance,department,checklist,symptom,complication,treatment,drug,period,rate,money,,,,,\n"
HEALTH39_ROWS = [
    '乙肝,"乙型肝炎，乙型病毒性肝炎,HBV感染",肝,所有人群,有传染性,非医保疾病,传染科 肝病,乙肝两对半 凝血酶原时间 [详细],'
    '转氨酶增高 肝肿大 肝肿大 乏... [详细],肝硬化 腹膜炎 [详细],药物治疗、饮食疗法 [详细],恩替卡韦分散片 盐酸地尔硫䓬片 注射用盐酸精氨... [详细],3-6月,0.00%,约3000元,,,,,\n',
    ' 乙肝,,肝,,,,传染科,,肝肿大 [详细],,,,,,,,,,,\n',
    '肝硬化,,肝,,,,消化内科,,腹水 [详细],乙型病毒性肝炎 [详细],,,,,,,,,,\n',
    '空病,,,,,,,,,,,,,,,,,,,\n',
    '获得性免疫缺...,,,,,,,,发热 [详细],,,,,,,,,,,\n',
    '坏行,只有三列,肝\n',
]


def kg_build(tmp_path: Path, store: Path, sources: list[dict], **params):
    recipe = recipe_from_dict({"name": "kgtest", "kind": "instruction", "seed": 0, "sources": sources,
                               "steps": [{"kg_qa": params}], "splits": {"seed": 0, "validation": 0, "test": 0}},
                              base_dir=tmp_path, origin="test")
    result = build(recipe, store=store)
    rows = load_rows(result.version, store)["train"]
    rejects = [json.loads(line) for line in (result.version.path / "rejects.jsonl").read_text().splitlines() if line]
    return result.manifest, rows, rejects


def triples_of(rows: list[dict]) -> set[tuple[str, str, str]]:
    return {tuple(t) for row in rows for t in row["triples"]}


def test_39health_gb18030_cells_aliases_truncations_and_bad_line(tmp_path, store):
    path = tmp_path / "disease.csv"
    path.write_bytes((HEALTH39_HEADER + "".join(HEALTH39_ROWS)).encode("gb18030"))
    manifest, rows, rejects = kg_build(tmp_path, store, [{"name": "h39", "path": "disease.csv", "format": "39health"}],
                                       two_hop=False)
    triples = triples_of(rows)
    assert ("乙肝", "common_drug", "盐酸地尔硫䓬片") in triples  # needs GB18030, not GBK
    assert ("乙肝", "cure_way", "饮食疗法") in triples
    # the department path 传染科 > 肝病 is one department, not two
    assert ("乙肝", "belongs_to_department", "传染科") in triples
    assert ("乙肝", "belongs_to_department", "肝病") not in triples
    assert {("乙肝", "alias", a) for a in ("乙型肝炎", "乙型病毒性肝炎", "HBV感染")} <= triples
    # the complication named by an alias of 乙肝 is merged into the canonical disease
    assert ("肝硬化", "acompany_with", "乙肝") in triples
    assert not any(t[2].endswith("...") or "[详细]" in t[2] for t in triples)
    assert manifest["stats"]["kg_sources"]["h39"]["truncated_item"] == 2
    assert manifest["stats"]["kg_sources"]["h39"]["repeated_item"] == 1
    # " 乙肝" is the same disease: its triples are duplicates, not a second node
    assert manifest["counts"]["filtered"]["duplicate_triple"] == 3
    assert manifest["counts"]["filtered"]["no_triples"] == 1
    assert manifest["counts"]["filtered"]["truncated_name"] == 1
    assert [(r["file"], r["line"], r["reason"]) for r in rejects] == [("disease.csv", 7, "wrong field count: expected 20, got 3")]


def test_xywy_json_lines_sample(tmp_path, store):
    sample = REPO / "examples" / "data" / "kg_xywy_sample.jsonl"
    manifest, rows, rejects = kg_build(tmp_path, store, [{"name": "xywy", "path": str(sample), "format": "xywy"}],
                                       per_triple=True, two_hop=False)
    triples = triples_of(rows)
    assert ("感冒", "has_symptom", "流鼻涕") in triples
    assert ("感冒灵颗粒", "drug_producer", "华润三九") in triples
    assert ("感冒", "belongs_to_department", "呼吸内科") in triples
    assert ("高血压", "acompany_with", "高血压") not in triples
    assert manifest["counts"]["filtered"]["self_loop"] == 1
    assert manifest["counts"]["filtered"]["no_template"] == 2  # category triples
    assert manifest["stats"]["kg"]["triples_without_template"] == {"category": 2}
    assert {(r["line"], r["reason"].split(":")[0]) for r in rejects} == {(6, "malformed JSON"), (7, "missing field")}
    cold = next(row for row in rows if row["triples"] == [["感冒", "has_symptom", "发热"]])
    assert cold["department"] == "呼吸内科" and cold["task"] == "kg_qa" and cold["query"] == ""


def test_xywy_csv_export_with_chinese_headers(tmp_path, store):
    header = "疾病名称,疾病描述,疾病种类,科室,病因,症状,检查,并发症,花费,疗程,疗法,治愈率,易感人群,感染概率,感染途径,预防措施,推荐药物,常用药物,具体药物,可以吃,不可以吃,推荐吃,是否纳入医保\n"
    record = ('百日咳,"百日咳是……\n多行描述","疾病百科,儿科","儿科,小儿内科",病因,"阵发性痉挛性咳嗽,闫鹏辉,鸡鸣样吸气吼声",'
              '"血常规,胸部X线",肺炎,花费,疗程,"药物治疗,支持性治疗",治愈率,儿童,概率,途径,预防,"红霉素片","红霉素片,阿奇霉素片",'
              '"某药厂红霉素片(红霉素片),另一药厂(红霉素片)",鸡蛋,"辣椒,生姜",鸡蛋羹,否\n')
    (tmp_path / "medical_data.csv").write_text(header + record, encoding="utf-8")
    manifest, rows, _ = kg_build(tmp_path, store, [{"name": "x", "path": "medical_data.csv", "format": "xywy_csv"}],
                                 two_hop=False)
    triples = triples_of(rows)
    assert {("百日咳", "common_drug", "阿奇霉素片"), ("百日咳", "need_check", "胸部X线"), ("百日咳", "not_eat", "生姜"),
            ("红霉素片", "drug_producer", "某药厂"), ("红霉素片", "drug_producer", "另一药厂")} <= triples
    # generic treatment categories are no answer: skipped and counted
    assert not any(t[1] == "cure_way" for t in triples) and manifest["counts"]["filtered"]["generic_treatment"] == 2
    assert rows[0]["department"] == "小儿内科"


def test_cmekg_and_generic_triples(tmp_path, store):
    (tmp_path / "cmekg.json").write_text(json.dumps([
        {"text": "t", "spo_list": [["阿司匹林", "适应症", "心绞痛"], ["阿司匹林", "贮藏", "密封"]]},
        {"text": "t", "spo_list": [["x", "检查"]]},
        {"text": "t", "spo_list": []}], ensure_ascii=False), encoding="utf-8")
    (tmp_path / "kg.tsv").write_text("head\trelation\ttail\n心绞痛\t临床表现\t胸痛\n心绞痛\t\t胸闷\n", encoding="utf-8")
    (tmp_path / "kg.jsonl").write_text('{"subject": "心绞痛", "predicate": "need_check", "object": "心电图"}\n',
                                       encoding="utf-8")
    manifest, rows, rejects = kg_build(tmp_path, store, [
        {"name": "c", "path": "cmekg.json", "format": "cmekg"}, {"name": "t", "path": "kg.tsv", "format": "triples_tsv"},
        {"name": "j", "path": "kg.jsonl", "format": "triples_jsonl"}], two_hop=False)
    assert triples_of(rows) == {("阿司匹林", "indication", "心绞痛"), ("心绞痛", "has_symptom", "胸痛"),
                                ("心绞痛", "need_check", "心电图")}
    assert manifest["stats"]["kg"]["triples_without_template"] == {"storage": 1}
    assert manifest["counts"]["filtered"]["no_triples"] == 1
    assert sorted((r["file"], r["line"], r.get("field")) for r in rejects) == [
        ("cmekg.json", 1, "spo_list[0]"), ("kg.tsv", 3, "relation")]
