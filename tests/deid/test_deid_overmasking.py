"""Over-masking on real identifier-free clinical text (CMeEE dev, CHIP-CDEE train): vital signs,
doses, lab values, durations, years alone and ages up to 89 never change."""
from __future__ import annotations

import json
import re

from conftest import shared_path

from medcurate.deid.engine import Deidentifier

# Clinical quantities that are never identifiers, each a shape the de-identifier must leave alone.
KEPT_SHAPES = {
    "vital sign": re.compile(r"(?:T|P|R|BP|体温|脉搏|呼吸|血压)\s?[:：]?\s?\d{1,3}(?:\.\d)?(?:/\d{2,3})?\s?(?:℃|次/分|mmHg)"),
    "dose": re.compile(r"(?<![\d.\-/])\d+(?:\.\d+)?\s?(?:mg|g|ml|mL|μg|ug|IU|U|片|粒|支)(?:/(?:d|次|日|kg))?\s?(?:bid|tid|qd|qid|qn)?"),
    "lab value": re.compile(r"\d+(?:\.\d+)?\s?(?:×|\*|x)\s?10\^?\d+/L|\d+(?:\.\d+)?\s?(?:mmol/L|g/L|U/L|μmol/L|%)"),
    "duration": re.compile(r"(?<![\d.年月\-/])\d{1,3}(?:\+|余)?\s?(?:天|周|个月|年|小时)(?:余|前|后|内)?(?![\d月日])"),
    "year alone": re.compile(r"(?<![\d.\-/])(?:19|20)\d{2}\s?年(?!\s?\d{1,2}\s?月|[一二三四五六七八九十]+月)"),
    "age up to 89": re.compile(r"(?<!\d)(?:[1-8]?\d)\s?(?:岁|周岁)"),
}


def _texts() -> list[str]:
    texts = [record["text"] for record in json.loads(shared_path("data", "cblue-cmeee", "CMeEE_dev.json").read_text("utf-8"))]
    texts += [record["text"] for record in
              json.loads(shared_path("data", "cblue-chip-cdee", "CHIP-CDEE_train.json").read_text("utf-8"))]
    return texts


def test_clinical_quantities_in_real_text_are_never_masked():
    deidentifier = Deidentifier("mask")
    checked = 0
    touched: list[str] = []
    for text in _texts():
        spans = deidentifier.scan(text)
        covered = bytearray(len(text))
        for span in spans:
            covered[span.start:span.end] = b"\x01" * (span.end - span.start)
        for shape, pattern in KEPT_SHAPES.items():
            for match in pattern.finditer(text):
                checked += 1
                if any(covered[match.start():match.end()]):
                    touched.append(f"{shape}: {match.group()}")
    assert checked > 2000
    assert touched == []
