"""A store with evaluation versions of every row kind, built from the shipped samples through the real
build, and one tiny local model (random weights) to evaluate."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO

QA = [("高血压吃什么药？", "可在医生指导下服用氨氯地平。"), ("感冒发烧怎么办？", "多喝水，体温超过38.5度可服用布洛芬。"),
      ("糖尿病饮食注意什么？", "控制碳水化合物摄入，少吃甜食。"), ("失眠怎么办？", "规律作息，睡前避免咖啡和浓茶。")]
ALL_TEST = {"seed": 0, "test": 1000000, "max_fraction": 1.0}


def build_rows(folder: Path, store: Path, name: str, kind: str, rows: list[dict], splits: dict | None = None,
               steps: list | None = None) -> str:
    from medcurate.build import build
    from medcurate.recipe import recipe_from_dict

    source = folder / f"{name}.jsonl"
    source.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    recipe = recipe_from_dict({"name": name, "kind": kind, "sources": [{"name": name, "path": source.name,
                                                                          "format": "jsonl"}],
                               "steps": steps or [], "splits": splits if splits is not None else ALL_TEST},
                              base_dir=folder, origin=f"{name} test recipe")
    return build(recipe, store=store).version.ref


def build_example(recipe_name: str, store: Path) -> str:
    from medcurate.build import build
    from medcurate.recipe import load_recipe

    return build(load_recipe(REPO / "examples" / "recipes" / recipe_name), store=store).version.ref


@pytest.fixture(scope="session")
def eval_world(tmp_path_factory):
    from medcurate.train.tiny import build_tiny_model_from_dataset

    folder = tmp_path_factory.mktemp("eval-data")
    store = folder / "store"
    refs = {
        "mcq": build_example("eval_cmmlu.yaml", store),
        "qa_sets": build_example("eval_sets.yaml", store),
        "dialogue": build_example("eval_meddialog.yaml", store),
        "qa": build_rows(folder, store, "qa", "instruction",
                         [{"instruction": "回答问题", "query": q, "answer": a, "task": "qa"} for q, a in QA]),
        "ehr": build_rows(folder, store, "notes", "ehr",
                          [{"department": "内科", "input": "主诉：咳嗽三天。现病史：发热。", "diagnosis": "上呼吸道感染"},
                           {"department": "内科", "input": "主诉：胸痛一小时。", "diagnosis": "急性冠脉综合征"},
                           {"department": "外科", "input": "主诉：右下腹痛一天。", "diagnosis": "急性阑尾炎"}],
                          steps=[{"deid": {"fields": ["input", "diagnosis"]}}]),
        "no_test": build_rows(folder, store, "trainonly", "instruction",
                              [{"instruction": "回答问题", "query": q, "answer": a, "task": "qa"} for q, a in QA],
                              splits={}),
        "preference": build_rows(folder, store, "prefs", "preference",
                                 [{"prompt": "失眠怎么办？", "chosen": "规律作息。", "rejected": "喝酒。"}]),
    }
    model = build_tiny_model_from_dataset(refs["qa_sets"], folder / "tiny", store=store)
    return {"store": store, "refs": refs, "model": model, "root": folder}
