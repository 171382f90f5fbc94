"""Tiny datasets built through the real store and one tiny model, shared by the training tests."""
from __future__ import annotations

import pytest

from tests.train.train_helpers import build_version

QA = [("高血压吃什么药？", "可在医生指导下服用氨氯地平。"), ("感冒发烧怎么办？", "多喝水，体温超过38.5度可服用布洛芬。"),
      ("糖尿病饮食注意什么？", "控制碳水化合物摄入，少吃甜食。"), ("失眠怎么办？", "规律作息，睡前避免咖啡和浓茶。")]
CONVERSATIONS = [
    [{"role": "system", "content": "你是一名医生。"}, {"role": "user", "content": "我头疼两天了"},
     {"role": "assistant", "content": "有没有发烧？"}, {"role": "user", "content": "没有发烧"},
     {"role": "assistant", "content": "建议多休息，观察一下。"}],
    [{"role": "user", "content": "孩子咳嗽怎么办"}, {"role": "assistant", "content": "多喝温水，必要时就医。"}],
]
PREFERENCES = [
    {"prompt": "高血压吃什么药？", "chosen": "请在医生指导下用药，例如氨氯地平。", "rejected": "随便吃点就行。"},
    {"prompt": "感冒发烧怎么办？", "chosen": "多喝水，体温超过38.5度可服用布洛芬。", "rejected": "不用管。"},
    {"prompt": [{"role": "user", "content": "我失眠"}, {"role": "assistant", "content": "多久了？"},
                {"role": "user", "content": "一个月"}],
     "chosen": "建议规律作息，必要时到睡眠科就诊。", "rejected": "喝酒助眠。"},
    {"prompt": "糖尿病饮食注意什么？", "chosen": "控制碳水化合物摄入，少吃甜食。", "rejected": "想吃什么吃什么。"},
]


@pytest.fixture(scope="session")
def train_world(tmp_path_factory):
    """A store with instruction, conversation, preference and ehr versions, and a tiny model built on them."""
    from medcurate.train.tiny import build_tiny_model_from_dataset

    folder = tmp_path_factory.mktemp("train-data")
    store = folder / "store"
    refs = {
        "instruction": build_version(folder, store, "qa", "instruction",
                              [{"instruction": "回答问题", "query": q, "answer": a, "task": "qa"} for q, a in QA]),
        "conversation": build_version(folder, store, "dialogue", "conversation", [{"messages": m} for m in CONVERSATIONS]),
        "preference": build_version(folder, store, "prefs", "preference", PREFERENCES),
        "ehr": build_version(folder, store, "notes", "ehr",
                      [{"department": "内科", "input": "主诉：咳嗽三天。现病史：发热。", "diagnosis": "上呼吸道感染"},
                       {"department": "内科", "input": "主诉：胸痛一小时。", "diagnosis": "急性冠脉综合征"}],
                      steps=[{"deid": {"fields": ["input", "diagnosis"]}}]),
    }
    model = build_tiny_model_from_dataset(refs["instruction"], folder / "tiny", store=store)
    return {"store": store, "refs": refs, "model": model, "root": folder}
