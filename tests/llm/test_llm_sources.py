"""Drug-label (说明书) and guideline readers on the samples in examples/data."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from medcurate.llm.sources import guideline_chunks, parse_label_text, split_long
from medcurate.pipeline import CardContributions, Reject, SourceSpec, StepContext, get_source_format

DATA = Path(__file__).resolve().parents[2] / "examples" / "data"


def read(fmt: str, path: Path, tmp_path, **options):
    rejects: list[Reject] = []
    ctx = StepContext(f"source:{fmt}", base_dir=DATA, store=tmp_path, seed=0, rejects=rejects,
                      card=CardContributions())
    spec = SourceSpec(name=fmt, path=str(path), format=fmt, options=options)
    reader = get_source_format(fmt).reader
    assert reader is not None, f"{fmt} is read whole, not record by record"
    rows = list(reader(spec, ctx))
    return rows, rejects, ctx


def test_drug_label_text_sections(tmp_path):
    rows, rejects, ctx = read("drug_label", DATA / "drug_labels.txt", tmp_path)
    assert rejects == [] and ctx.ledger.rows_in == len(rows)
    by_document = Counter(row["document_id"] for row in rows)
    assert by_document == {"drug_label:1": 8, "drug_label:2": 6}
    titles = {row["document_id"]: row["title"] for row in rows}
    assert titles == {"drug_label:1": "阿莫西林胶囊", "drug_label:2": "布洛芬缓释胶囊"}
    sections = {row["chunk_id"]: row for row in rows}
    assert sections["drug_label:2:适应症"]["text"].startswith("用于缓解轻至中度疼痛")     # 适应证 normalised
    assert sections["drug_label:1:不良反应"]["text"].splitlines()[1].startswith("2. 皮疹")
    assert sections["drug_label:2:禁忌"]["source"]["line"] == 20
    assert sections["drug_label:1:适应症"]["source"]["sha256"]


def test_drug_label_json_lines_nested_or_flat(tmp_path):
    rows, rejects, _ = read("drug_label", DATA / "drug_labels.jsonl", tmp_path)
    assert rejects == []
    assert [row["chunk_id"] for row in rows if row["document_id"] == "drug_label:amlodipine"] == [
        "drug_label:amlodipine:适应症", "drug_label:amlodipine:禁忌", "drug_label:amlodipine:用法用量"]
    assert {row["title"] for row in rows} == {"盐酸二甲双胍片", "苯磺酸氨氯地平片"}


def test_bad_label_records_are_rejected_not_lost(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text('{"name": "x", "sections": {"适应症": "头痛"}}\n[1, 2]\nnot json\n{"name": "y"}\n',
                    encoding="utf-8")
    rows, rejects, ctx = read("drug_label", path, tmp_path)
    assert len(rows) == 1 and [r.line for r in rejects] == [2, 3, 4]
    assert ctx.ledger.rows_in == 4
    text = tmp_path / "labels.txt"
    text.write_text("只有标题没有章节\n===\n【适应症】\n", encoding="utf-8")
    rows, rejects, _ = read("drug_label", text, tmp_path)
    assert rows == [] and [r.reason for r in rejects] == ["no 【section】 found", "empty section"]


def test_guideline_chunked_by_heading_with_ids(tmp_path):
    rows, rejects, _ = read("guideline", DATA / "guideline_hypertension.md", tmp_path, max_chars=600)
    assert rejects == []
    assert [row["chunk_id"] for row in rows] == [f"guideline:c00{n}" for n in range(1, 6)]
    assert rows[1]["section"] == "基层高血压诊疗要点（示例） > 二、生活方式干预 > （一）限制钠盐"
    assert rows[0]["title"] == "基层高血压诊疗要点（示例）" and rows[0]["text"].startswith("在未使用降压药物")


def test_chinese_headings_and_long_passages():
    text = "第一章 总则\n第一节 范围\n本指南适用于成人。\n1.1 定义\n高血压是常见病。\n一、诊断\n" + "血压升高。" * 30
    chunks = guideline_chunks(text, max_chars=60)
    assert [c[0] for c in chunks[:2]] == ["第一章 总则 > 第一节 范围", "第一章 总则 > 第一节 范围 > 1.1 定义"]
    assert [c[3] for c in chunks[2:]] == ["c003.1", "c003.2", "c003.3"]
    assert all(len(part) <= 60 for part in split_long("血压升高。" * 30, 60))


def test_label_title_falls_back_to_first_line():
    title, sections = parse_label_text([(1, "某药说明书"), (2, "【适应症】发热")])
    assert title == "某药说明书" and sections == [("适应症", 2, "发热")]
