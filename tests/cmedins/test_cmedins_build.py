"""CMedINS builds: real CBLUE / IMCS files, malformed records to rejects, the one-shot command, the card."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from medcurate.build import build
from medcurate.cmedins.formats import parse
from medcurate.deid.engine import Deidentifier
from medcurate.deid.gate import mark_deidentified, text_columns
from medcurate.pipeline import get_step
from medcurate.recipe import recipe_from_dict
from medcurate.store import load_rows, resolve
from tests.conftest import run_medcurate, shared_path

REPO = Path(__file__).resolve().parents[2]


def instruction_recipe(sources, steps=None, name="cmedins-test"):
    return recipe_from_dict({"name": name, "kind": "instruction", "sources": sources,
                             "steps": steps or ["cmedins"]}, base_dir=REPO)


def write_array(path: Path, records: list) -> None:
    """A JSON array with one record per line: record k (from 0) starts on line k + 2."""
    path.write_text("[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n]\n", encoding="utf-8")


def read_rejects(version):
    return [json.loads(line) for line in (version.path / "rejects.jsonl").read_text().splitlines() if line]


def test_malformed_records_are_rejected_with_file_line_and_reason(tmp_path, store):
    cmeee = tmp_path / "cmeee.json"
    write_array(cmeee, [
        {"text": "患者发热咳嗽", "entities": [{"start_idx": 2, "end_idx": 3, "type": "sym", "entity": "发热"}]},
        {"text": "患者发热", "entities": [{"end_idx": 3, "type": "sym", "entity": "发热"}]},
        {"text": "患者发热", "entities": [{"start_idx": 2, "end_idx": 9, "type": "sym", "entity": "发热"}]},
        {"text": "患者发热", "entities": [{"start_idx": 2, "end_idx": 3, "type": "symptom", "entity": "发热"}]},
        {"text": "患者发热", "entities": [{"start_idx": 1, "end_idx": 2, "type": "sym", "entity": "发热"}]},
        {"text": "患者发热"},
    ])
    cdee = tmp_path / "cdee.json"
    write_array(cdee, [
        {"id": 1, "text": "无腹痛", "event": [{"core_name": "腹痛", "tendency": "否定", "character": [], "anatomy_list": []}]},
        {"id": 2, "text": "腹痛", "event": [{"core_name": "腹痛", "tendency": "严重", "character": [], "anatomy_list": []}]},
        {"id": 3, "text": "未标注", "event": []},
    ])
    result = build(instruction_recipe([{"name": "cmeee", "path": str(cmeee), "format": "cmeee"},
                                       {"name": "cdee", "path": str(cdee), "format": "cdee"}]), store=store)
    counts = result.manifest["counts"]
    assert counts["rejects"] == {"bad event": 1, "missing spans": 2, "offset outside text": 1,
                                 "span mismatch": 1, "unknown entity type": 1}
    assert counts["filtered"] == {"no_events": 1}
    assert counts["inputs_read"] == 9 == counts["rows_written"] + sum(counts["rejects"].values()) + 1
    rejects = {(r["file"], r["line"]): r["reason"] for r in read_rejects(result.version)}
    assert rejects[("cmeee.json", 3)] == "missing spans: start_idx/end_idx"
    assert rejects[("cmeee.json", 4)].startswith("offset outside text: [2, 9]")
    assert rejects[("cmeee.json", 5)].startswith("unknown entity type")
    assert rejects[("cmeee.json", 6)].startswith("span mismatch")
    assert rejects[("cmeee.json", 7)] == "missing spans: no entities list"
    assert rejects[("cdee.json", 3)] == "bad event: unknown tendency"
    assert all("发热" not in reason for reason in rejects.values())


def test_real_task_files_round_trip_and_template_variety(store):
    data = shared_path("data")
    sources = [{"name": "cdee", "path": str(data / "cblue-chip-cdee" / "CHIP-CDEE_train.json"), "format": "cdee"},
               {"name": "cmeee", "path": str(data / "cblue-cmeee" / "CMeEE_dev.json"), "format": "cmeee"},
               {"name": "imcs", "path": str(data / "promptcblue-toy" / "toy_examples" / "train.json"), "format": "imcs_mrg"},
               {"name": "cdn", "path": str(data / "cblue-chip-cdn" / "CHIP-CDN_train.json"), "format": "cdn"},
               {"name": "cmeie", "path": str(data / "cblue-cmeie" / "CMeIE_dev.json"), "format": "cmeie"}]
    result = build(instruction_recipe(sources), store=store)
    counts = result.manifest["counts"]
    assert counts["inputs_read"] == 1587 + 5000 + 80 + 6000 + 2900
    assert counts["filtered"]["other_task"] == 75
    assert counts["rows_written"] + sum(counts["rejects"].values()) + sum(counts["filtered"].values()) == counts["inputs_read"]
    rows = load_rows(result.version.ref, store=store)["train"]
    tasks = {row["task"] for row in rows}
    assert tasks == {"cdee", "ner", "report", "cdn", "cmeie"}
    for row in rows:
        assert parse(row["task"], row["answer"]) == json.loads(row["gold"])
    assert len({row["template_id"] for row in rows if row["task"] == "ner"}) >= 3
    # the review's defects: affirmed events are not written 无, CMeIE answers match the instruction
    for row in (r for r in rows if r["task"] == "cdee"):
        gold = json.loads(row["gold"])["events"]
        assert row["answer"].count("发生状态：肯定") == sum(1 for e in gold if e["tendency"] == "")
        assert "发生状态：无" not in row["answer"]
    cmeie = [r for r in rows if r["task"] == "cmeie"]
    assert all(r["answer"].startswith("（") and "可用的关系类型：" in r["instruction"] for r in cmeie)
    # no task makes up more than 40% of the build by default (CDN was 65%)
    shares = result.manifest["stats"]["cmedins"]["tasks"]
    assert max(shares.values()) <= 0.4 * sum(shares.values()) + 1
    assert counts["rejects"].get("unrenderable", 0) == 0
    report = next(row for row in rows if row["task"] == "report")
    assert report["query"].startswith("患者：") and report["answer"].startswith("主诉：")
    card = (result.version.path / "README.md").read_text(encoding="utf-8")
    assert "## Task x department" in card and "| D1 | (unknown) |" in card
    png = (result.version.path / "figures" / "task_department.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def ehr_version(store):
    stamp = "gate_stamp_for_cmedins_tests"
    from medcurate.pipeline import register_step, steps

    if stamp not in steps():
        @register_step(stamp)
        def _stamp(rows, ctx):
            for row in rows:
                row["patient_id"] = "pt-" + hashlib.sha256(str(row.get("patient_id")).encode()).hexdigest()[:16]
                for name in text_columns(row):  # the EHR publish check scans the text again
                    if name != "patient_id":
                        row[name] = Deidentifier("mask").deidentify(row[name]).text
                mark_deidentified(row, text_columns(row), "test", pseudonymised=["patient_id"])
            return rows
    recipe = recipe_from_dict({"name": "ehr-demo", "kind": "ehr",
                               "sources": [{"name": "ward", "path": "examples/data/ehr_sample.jsonl", "format": "ehr",
                                            "options": {"fields": {"diagnosis": "出院诊断"}}}],
                               "steps": [stamp, "ehr_pairs"]}, base_dir=REPO)
    return build(recipe, store=store).version


def test_one_shot_command_with_ehr_gives_diagnosis_and_triage_and_a_stable_chart(tmp_path, store):
    ehr = ehr_version(store)
    cdn = tmp_path / "cdn.json"
    cdn.write_text(json.dumps([{"text": "高血压冠心病", "normalized_result": "高血压##冠状动脉粥样硬化性心脏病"},
                               {"text": "咳嗽"}], ensure_ascii=False), encoding="utf-8")
    outputs = []
    for name in ("cmedins-a", "cmedins-b"):
        result = run_medcurate("cmedins", "--cdn", str(cdn), "--ehr", ehr.ref, "--name", name, "--store", str(store))
        assert result.returncode == 0, result.stderr
        outputs.append(resolve(f"{name}@latest", store=store))
    version = outputs[0]
    rows = load_rows(version.ref, store=store)["train"]
    by_task = {task: [row for row in rows if row["task"] == task] for task in ("diagnosis", "triage", "cdn")}
    assert len(by_task["diagnosis"]) == len(by_task["triage"]) == 73 and len(by_task["cdn"]) == 1
    diagnosis = by_task["diagnosis"][0]
    assert diagnosis["query"].startswith("主诉：") and diagnosis["answer"].startswith("诊断：")
    assert diagnosis["department"] and parse("diagnosis", diagnosis["answer"]) == json.loads(diagnosis["gold"])
    assert by_task["triage"][0]["answer"] == f"科室：{by_task['triage'][0]['department']}"
    manifest = version.manifest
    assert manifest["counts"]["rejects"] == {"missing field": 1}
    assert manifest["stats"]["cmedins"]["task_department"]["triage"]["心内科"] > 0
    chart = [(v.path / "figures" / "task_department.png").read_bytes() for v in outputs]
    assert chart[0] == chart[1]


def test_one_shot_command_needs_an_input(store):
    result = run_medcurate("cmedins", "--name", "empty", "--store", str(store))
    assert result.returncode == 2 and "give at least one of --cdee" in result.stderr
    assert "Traceback" not in result.stderr


def test_dialogues_with_departments_give_triage_rows(store):
    path = shared_path("data", "cmtmedqa-zhongjing", "CMtMedQA_test.json")
    result = build(instruction_recipe([{"name": "zhongjing", "path": str(path), "format": "cmtmedqa"}]), store=store)
    counts = result.manifest["counts"]
    assert counts["filtered"] == {"no_department": 145}  # 144 safety records + one dialogue with cate1 "nan"
    assert counts["rows_written"] == 999
    assert get_step("cmedins").doc.startswith("Rows from the task source formats")


def test_malformed_imcs_reports_are_rejected(tmp_path, store):
    good_input = "帮助患者自动总结问诊的诊疗报告：\n问诊对话历史：\n患者：咳嗽三天\n医生：发烧吗\n患者：不发烧\n说明：诊疗报告分为六个章节。\n答："
    sections = "主诉：咳嗽3天。\n现病史：咳嗽。\n辅助检查：暂无。\n既往史：无。\n诊断：上呼吸道感染。\n建议：多饮水。"
    records = [
        {"input": good_input, "target": "上述问诊对话的诊疗报告如下：\n" + sections, "task_dataset": "IMCS-V2-MRG"},
        {"input": good_input, "target": sections.replace("\n建议：多饮水。", ""), "task_dataset": "IMCS-V2-MRG"},
        {"input": "没有对话", "target": sections, "task_dataset": "IMCS-V2-MRG"},
        {"input": "其他任务", "target": "x", "task_dataset": "CMeEE-V2"},
        # 辅助检查 present but empty: a valid report (no examination was done)
        {"input": good_input, "target": sections.replace("辅助检查：暂无。", "辅助检查："), "task_dataset": "IMCS-V2-MRG"},
    ]
    path = tmp_path / "imcs.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in records), encoding="utf-8")
    result = build(instruction_recipe([{"name": "imcs", "path": str(path), "format": "imcs_mrg"}]), store=store)
    rejects = {r["line"]: r["reason"] for r in read_rejects(result.version)}
    assert rejects == {2: "missing report section: 建议", 3: "missing dialogue: no 问诊对话历史 block"}
    assert result.manifest["counts"]["filtered"] == {"other_task": 1}
    rows = load_rows(result.version.ref, store=store)["train"]
    assert len(rows) == 2
    empty_exam = next(r for r in rows if r["source"]["line"] == 5)
    assert "辅助检查：无" in empty_exam["answer"] and parse("report", empty_exam["answer"]) == json.loads(empty_exam["gold"])
    row = next(r for r in rows if r["source"]["line"] == 1)
    assert row["query"] == "患者：咳嗽三天\n医生：发烧吗\n患者：不发烧"
    assert json.loads(row["gold"])["sections"]["既往史"] == "无。"


def test_per_task_caps_streamed_in_batches_equal_the_whole_pass(tmp_path):
    """In a streaming build the caps are drawn after a first pass that keeps a few bytes per task
    row; the rows, drops, card and version equal the whole-pass step's (the in-memory engine)."""
    sources = [{"name": "cdee", "path": "examples/data/cdee_sample.json", "format": "cdee"},
               {"name": "cmeee", "path": "examples/data/cmeee_sample.json", "format": "cmeee"},
               {"name": "cdn", "path": "examples/data/cdn_sample.json", "format": "cdn"},
               {"name": "cmeie", "path": "examples/data/cmeie_sample.jsonl", "format": "cmeie"},
               {"name": "zhongjing", "path": "examples/data/cmtmedqa_sample.json", "format": "cmtmedqa"}]
    recipe = instruction_recipe(sources, [{"cmedins": {"max_per_task": {"cdn": 2, "ner": 2}, "max_task_share": 0.3}}])
    streamed = build(recipe, store=tmp_path / "a", batch_size=3)
    whole = build(recipe, store=tmp_path / "b", engine="memory")
    assert streamed.version.version == whole.version.version
    assert streamed.manifest["stats"]["cmedins"] == whole.manifest["stats"]["cmedins"]
    filtered = streamed.manifest["counts"]["filtered"]
    assert filtered.get("max_per_task:cdn", 0) > 0 and filtered.get("max_per_task:ner", 0) > 0
    assert streamed.manifest["counts"] == whole.manifest["counts"]
