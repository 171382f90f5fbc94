"""The issue's done-when check: recipes built on the real files in ../shared/data show none of the
clinical review's listed defects in their output: `检查等检查`, `。。`, `发生状态：无` (affirmed
events), markup leftovers; plus the quality counts in the cards."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from medcurate.build import build
from medcurate.kg.recipes import kg_qa_recipe
from medcurate.recipe import recipe_from_dict
from medcurate.store import load_rows
from tests.conftest import shared_path

REPO = Path(__file__).resolve().parents[2]
MARKUP = re.compile(r"&(nbsp|lt|gt|amp|quot);|<br\s*/?>|</?p>|targetUrl=|open_in_new|查看全部|\(/druglink|^#{1,6}\s|\s##+\s",
                    re.M)
DEFECTS = {"检查等检查": re.compile("检查等检查"), "。。": re.compile("。。"), "发生状态：无": re.compile("发生状态：无"),
           "markup": MARKUP}


def _texts(rows: list[dict]) -> list[str]:
    texts = []
    for row in rows:
        texts += [row[k] for k in ("instruction", "query", "answer") if isinstance(row.get(k), str)]
        texts += [m["content"] for m in row.get("messages") or []]
    return texts


def _count_defects(texts: list[str]) -> dict[str, int]:
    return {name: sum(1 for text in texts if pattern.search(text)) for name, pattern in DEFECTS.items()}


def _all_rows(result, store) -> list[dict]:
    return [row for rows in load_rows(result.version, store).values() for row in rows]


@pytest.mark.slow
def test_real_sources_build_without_the_review_defects(store):
    data = shared_path("data")
    kg = kg_qa_recipe([f"39health:{data / '39health-kg' / 'data' / 'disease.csv'}",
                       f"xywy_csv:{data / 'xywy-medical-kg' / 'notebook_tutorials' / 'medical_data.csv'}"], "real-kg")
    kg["steps"].append({"clean_markup": {}})
    kg_result = build(recipe_from_dict(kg, base_dir=REPO, origin="test"), store=store)

    cmedins = {"name": "real-cmedins", "kind": "instruction", "seed": 0, "sources": [
        {"name": "cdee", "path": str(data / "cblue-chip-cdee" / "CHIP-CDEE_train.json"), "format": "cdee"},
        {"name": "cmeie", "path": str(data / "cblue-cmeie" / "CMeIE_dev.json"), "format": "cmeie"},
        {"name": "imcs", "path": str(data / "promptcblue-toy" / "toy_examples" / "train.json"), "format": "imcs_mrg"},
        {"name": "cdn", "path": str(data / "cblue-chip-cdn" / "CHIP-CDN_train.json"), "format": "cdn"}],
        "steps": [{"cmedins": {"max_per_task": 1500}}, {"clean_markup": {"fields": ["query"]}}]}
    cmedins_result = build(recipe_from_dict(cmedins, base_dir=REPO), store=store)

    dialogue = {"name": "real-dialogue", "kind": "conversation", "seed": 0, "sources": [
        {"name": "toyhom", "path": str(next((data / "toyhom-chinese-medical-dialogue").glob("*.csv"))), "format": "toyhom"},
        {"name": "zhongjing", "path": str(data / "cmtmedqa-zhongjing" / "CMtMedQA_test.json"), "format": "cmtmedqa"}],
        "steps": [{"clean_markup": {}}, {"drop_garbled": {}}, {"near_dedupe": {"threshold": 0.8}},
                  {"decontaminate": {"against": {"cmb_clin": {"path": str(data / "cmb-clin" / "CMB-test-qa.json")},
                                                 "cmmlu": {"path": str(data / "cmmlu-medical" / "test")}}}}]}
    dialogue_result = build(recipe_from_dict(dialogue, base_dir=REPO), store=store)

    for result in (kg_result, cmedins_result, dialogue_result):
        texts = _texts(_all_rows(result, store))
        assert texts and _count_defects(texts) == dict.fromkeys(DEFECTS, 0), result.version.ref
        assert "## Quality" in (result.version.path / "README.md").read_text(encoding="utf-8")
    quality = dialogue_result.manifest["stats"]["quality"]
    assert quality["clean_markup"]["changed"] > 50  # toyhom's 。。 and ASCII commas, at least
    assert set(quality["decontaminate"]["evaluation_sets"]) == {"cmb_clin", "cmmlu"}
    assert quality["drop_garbled"]["dropped"] > 100  # Toyhom answers that lost their commas
    cdee = [row for row in _all_rows(cmedins_result, store) if row["task"] == "cdee"]
    assert sum(row["answer"].count("发生状态：肯定") for row in cdee) > 1000
