"""Dataset cards the Hub accepts and charts whose text stays text (#11)."""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import matplotlib
import pyarrow.parquet as pq
from conftest import REPO
from datasets import Features, load_dataset
from huggingface_hub import DatasetCard

from medcurate.build import build
from medcurate.card import LICENSE_FILE, arrow_features, size_category, stacked_bar_chart
from medcurate.recipe import load_recipe, recipe_from_dict

EXAMPLE = REPO / "examples" / "recipes" / "consultation_qa.yaml"
MIXED = [{"prompt": "孩子发烧怎么办？", "chosen": "物理降温。", "rejected": "不用管。", "ratings": {"safety": "A"}, "score": 0.5,
          "flag": True, "tags": ["儿科"]},
         {"prompt": [{"role": "user", "content": "咳嗽"}, {"role": "assistant", "content": "几天了？"},
                     {"role": "user", "content": "三天"}], "chosen": "多喝水。", "rejected": "吃抗生素。",
          "ratings": {"safety": "B"}, "score": 1.5, "flag": False, "tags": []}]
DIALOGUE = [{"messages": [{"role": "user", "content": "头痛"}, {"role": "assistant", "content": "多休息。"}]}]


def _publish(tmp_path, name, kind, rows, license_text=None):
    data = tmp_path / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    recipe = {"name": name, "kind": kind, "sources": [{"path": str(data)}]}
    if license_text:
        recipe["license"] = license_text
    return build(recipe_from_dict(recipe), store=tmp_path / "store").version


def _versions(tmp_path):
    return [build(load_recipe(EXAMPLE), store=tmp_path / "store").version,
            _publish(tmp_path, "prefs", "preference", MIXED, "CC-BY-NC-4.0"),
            _publish(tmp_path, "dialogue", "conversation", DIALOGUE, "仅供研究使用")]


def test_the_hub_card_parser_reads_the_card(tmp_path):
    example, prefs, dialogue = _versions(tmp_path)
    card = DatasetCard.load(example.path / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "other" and data["license_link"] == LICENSE_FILE
    assert data["license_name"] == "cc0-written-for-medcurate-s-examples"
    assert (example.path / LICENSE_FILE).read_text(encoding="utf-8").startswith("# Licence of consultation-qa")
    assert data["size_categories"] == ["n<1K"]
    assert data["medcurate"]["version"] == example.version
    assert not {"version", "counts", "sources", "recipe", "license_details", "row_kind"} & set(data)
    assert DatasetCard.load(prefs.path / "README.md").data.to_dict()["license"] == "cc-by-nc-4.0"
    assert DatasetCard.load(dialogue.path / "README.md").data.to_dict()["license_name"] == "dialogue-license"
    assert size_category(999) == "n<1K" and size_category(1000) == "1K<n<10K" and size_category(250_000) == "100K<n<1M"


def test_load_dataset_on_a_version_folder_gives_no_warning(tmp_path, caplog):
    for version in _versions(tmp_path):
        with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
            warnings.simplefilter("always")
            caplog.clear()
            loaded = load_dataset(str(version.path))
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
        assert [str(w.message) for w in caught if "datasets" in (w.filename or "")] == []
        assert set(loaded) == set(version.manifest["splits"])
        for split, dataset in loaded.items():
            assert dataset.num_rows == version.manifest["counts"]["splits"][split]


def test_card_features_are_what_datasets_reads(tmp_path):
    for version in _versions(tmp_path):
        schema = pq.read_schema(version.path / "data" / "train.parquet")
        assert arrow_features(schema) == Features.from_arrow_schema(schema)._to_yaml_list()
        assert version.manifest["features"] == arrow_features(schema)


def test_charts_keep_chinese_names_as_text_in_svg_and_fall_back_to_keys_in_png():
    series = [("心血管内科", [3, 1]), ("儿科", [2, 5])]
    svg, png, named = stacked_bar_chart(["qa", "ner"], series, title="rows", ylabel="rows")
    text = svg.decode("utf-8")
    assert "心血管内科" in text and "儿科" in text, "department names are text in the SVG"
    assert "D1" not in text
    assert png.startswith(b"\x89PNG") and named is False
    again = stacked_bar_chart(["qa", "ner"], series, title="rows", ylabel="rows")
    assert again[0] == svg and again[1] == png, "charts are byte-stable"
    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    assert stacked_bar_chart(["qa", "ner"], series, title="rows", ylabel="rows", font_path=font)[2] is True


def test_cmedins_chart_names_departments_in_its_svg():
    from medcurate.cmedins.steps import task_department_chart

    rows = [{"task": "triage", "department": department} for department in ("内科", "外科", "儿科") for _ in range(3)]
    svg, _, _ = task_department_chart(rows)
    assert all(name in svg.decode("utf-8") for name in ("内科", "外科", "儿科"))
