"""Recipes, sources, splits and step parameters are typed and checked when the recipe loads (#11)."""
from __future__ import annotations

import json

import pytest

from medcurate.build import build
from medcurate.errors import MedcurateError
from medcurate.pipeline import get_step
from medcurate.recipe import load_recipe, recipe_from_dict
from tests.conftest import run_medcurate


def _recipe(tmp_path, body: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(body, encoding="utf-8")
    return path


BASE = "name: x\nkind: instruction\nsources: [{path: missing.jsonl}]\n"


@pytest.mark.parametrize("extra, field", [
    ("seed: abc\n", "recipe.yaml:seed:"),
    ("splits: {max_fraction: lots}\n", "recipe.yaml:splits.max_fraction:"),
    ("steps: [{filter_length: {field: answer, min: ten}}]\n", "recipe.yaml:steps[0].filter_length.min:"),
    ("steps: [{sample: {n: -5}}]\n", "recipe.yaml:steps[0].sample.n:"),
    ("steps: [{dedupe: {fields: 5}}]\n", "recipe.yaml:steps[0].dedupe.fields:"),
    ("steps: [{rename: {columns: [a, b]}}]\n", "recipe.yaml:steps[0].rename.columns:"),
    ("steps: [{set_fields: {values: 3}}]\n", "recipe.yaml:steps[0].set_fields.values:"),
    ("steps: [{filter_length: {feild: answer, min: 2}}]\n", "recipe.yaml:steps[0].filter_length.feild: unknown key"),
    ("steps: [{sample: {}}]\n", "recipe.yaml:steps[0].sample.n: missing required key"),
    ("splits: {validation: 0.6, test: 0.6}\n", "recipe.yaml:splits: "),
    ("splits: {validation: 2.5}\n", "recipe.yaml:splits.validation:"),
])
def test_bad_values_are_one_line_errors_before_any_source_is_read(tmp_path, extra, field):
    # the source file does not exist: the recipe error must come first, from the load
    with pytest.raises(MedcurateError) as caught:
        load_recipe(_recipe(tmp_path, BASE + extra))
    assert field in str(caught.value) and "\n" not in str(caught.value)
    result = run_medcurate("build", str(tmp_path / "recipe.yaml"), "--store", str(tmp_path / "s"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and field in result.stderr


def test_source_options_are_typed_per_format(tmp_path):
    with pytest.raises(MedcurateError, match=r"sources\[0\]\.options\.fields: Input should be a valid dictionary"):
        load_recipe(_recipe(tmp_path, "name: x\nkind: instruction\n"
                                      "sources: [{path: a.jsonl, options: {fields: [instruction, answer]}}]\n"))
    with pytest.raises(MedcurateError, match=r"sources\[0\]\.options\.fieldz: unknown key"):
        load_recipe(_recipe(tmp_path, "name: x\nkind: instruction\nsources: [{path: a.jsonl, options: {fieldz: {}}}]\n"))
    with pytest.raises(MedcurateError, match=r"sources\[0\]\.options\.delimiter"):
        load_recipe(_recipe(tmp_path, "name: x\nkind: instruction\nsources: [{path: a.csv, options: {delimiter: ';;'}}]\n"))
    ehr = load_recipe(_recipe(tmp_path, "name: x\nkind: ehr\nsources: [{path: a.jsonl, format: ehr, "
                                        "options: {department: 内科, fields: {diagnosis: 出院诊断}}}]\n"))
    assert ehr.sources[0].options == {"department": "内科", "fields": {"diagnosis": "出院诊断"}}


def test_every_registered_step_has_a_parameter_model():
    info = get_step("filter_length")
    assert set(info.params.model_fields) == {"field", "min", "max"}
    assert info.params.model_fields["field"].is_required()


def _rows(tmp_path, count: int):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"instruction": "问", "query": "", "answer": f"答{i}", "task": "qa",
                                        "department": "内科" if i % 2 else "外科"}, ensure_ascii=False) + "\n"
                            for i in range(count)), encoding="utf-8")
    return data


def test_a_string_where_a_list_is_expected_is_one_item_not_characters(tmp_path):
    recipe = recipe_from_dict({"name": "x", "kind": "instruction", "sources": [{"path": str(_rows(tmp_path, 14))}],
                               "steps": [{"dedupe": {"fields": "answer"}}]})
    assert recipe.steps[0].params == {"fields": ["answer"]}
    result = build(recipe, store=tmp_path / "s")
    assert result.manifest["counts"]["rows_written"] == 14
    assert result.manifest["counts"]["filtered"] == {}


def test_stratify_or_group_on_a_missing_column_is_an_error(tmp_path):
    data = _rows(tmp_path, 10)
    for key in ("stratify", "group"):
        recipe = recipe_from_dict({"name": "x", "kind": "instruction", "sources": [{"path": str(data)}],
                                   "splits": {"test": 0.2, key: "departmnet"}}, origin="r.yaml")
        with pytest.raises(MedcurateError, match=rf"r.yaml:splits.{key}: no row has a value in column 'departmnet'"):
            build(recipe, store=tmp_path / "s")


def test_good_recipe_keeps_the_function_defaults(tmp_path):
    recipe = recipe_from_dict({"name": "x", "kind": "instruction", "sources": [{"path": str(_rows(tmp_path, 6))}],
                               "steps": ["to_messages", {"filter_length": {"field": "answer", "min": "2"}}],
                               "splits": {"validation": 0.3, "test": 0.3}})
    assert recipe.steps[0].params == {} and recipe.steps[1].params == {"field": "answer", "min": 2}
    assert recipe.splits.seed == 0
    assert build(recipe, store=tmp_path / "s").manifest["counts"]["rows_written"] == 6
