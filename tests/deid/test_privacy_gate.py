"""Each bypass of the privacy gate the issue lists, refused: threshold, a string `fields`, a rename or
an extra column after the gate, the raw record number as patient key, a duplicate YAML key, and an
unscreened version sent to a non-loopback endpoint (http://0.0.0.0:PORT/v1, which Python's ipaddress
does not count as loopback; the test server listens on 127.0.0.1, so a broken gate only reaches it)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from medcurate.build import build
from medcurate.errors import MedcurateError
from medcurate.pipeline import ROW_LOCAL, register_step, steps
from medcurate.privacy import ALLOW_FLAG, is_loopback, privacy_status, require_safe_endpoint
from medcurate.recipe import load_recipe, recipe_from_dict
from medcurate.store import load_rows
from tests.annotate.conftest import LocalChatCompletionsHandler, openai_endpoint  # noqa: F401 (fixture)
from tests.conftest import REPO, run_medcurate

SAMPLE = REPO / "examples" / "data" / "ehr_sample.jsonl"


def _patient_name(line: str) -> str:
    match = re.match(r"患者(\w{2,3}?)，", json.loads(line)["现病史"])
    assert match, "every sample note starts with the patient's name"
    return match.group(1)


NAMES = {_patient_name(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()}
RAW_KEYS = {json.loads(line)["患者ID"] for line in SAMPLE.read_text(encoding="utf-8").splitlines()}
MAPPING = {"diagnosis": "出院诊断", "patient_id": "患者ID"}

if "copy_text_for_tests" not in steps():
    @register_step("copy_text_for_tests")
    def copy_text_for_tests(rows, ctx, source: str, target: str):
        """An extra column written after the deid step (stands in for any step that adds text)."""
        for row in rows:
            row[target] = row.get(source)
        return rows


def ehr_recipe(steps_list, name="gate"):
    return recipe_from_dict({"name": name, "kind": "ehr",
                             "sources": [{"name": "ward", "path": str(SAMPLE), "format": "ehr",
                                          "options": {"fields": MAPPING}}],
                             "steps": steps_list}, base_dir=REPO)


def published(result, store) -> str:
    return json.dumps([row for rows in load_rows(result.version.ref, store=store).values() for row in rows],
                      ensure_ascii=False)


def test_real_deid_step_publishes_pseudonymised_keys_and_a_privacy_status(store):
    result = build(ehr_recipe([{"deid": {"fields": "present_illness"}}, "ehr_pairs"]), store=store)
    text = published(result, store)
    assert not [name for name in NAMES if name in text]
    assert not [key for key in RAW_KEYS if f'"{key}"' in text]
    rows = [row for rows in load_rows(result.version.ref, store=store).values() for row in rows]
    assert all(re.fullmatch(r"pt-[0-9a-f]{16}", row["patient_id"]) for row in rows)
    privacy = result.manifest["privacy"]
    assert privacy["status"] == "deidentified" and privacy["policy"] == "mask" and privacy["threshold"] == 0.5
    assert "present_illness" in privacy["columns"]["scanned"] and privacy["columns"]["pseudonymised"] == ["patient_id"]
    for artifact in ("README.md", "manifest.json", "rejects.jsonl"):
        written = (result.version.path / artifact).read_text(encoding="utf-8")
        assert not [name for name in NAMES if name in written] and not [key for key in RAW_KEYS if key in written]


def test_string_fields_is_one_column_name_never_its_characters(store):
    with pytest.raises(MedcurateError, match=r"steps\.deid\.fields.*no row has column 'query'"):
        build(ehr_recipe([{"deid": {"fields": "query"}}, "ehr_pairs"]), store=store)


@pytest.mark.parametrize("threshold, message", [(5, r"steps\.deid\.threshold.*between 0 and 1"),
                                                (0.9, r"steps\.deid\.threshold.*threshold 0\.9, above the default")])
def test_threshold_above_the_default_is_refused(store, threshold, message):
    with pytest.raises(MedcurateError, match=message):
        build(ehr_recipe([{"deid": {"threshold": threshold}}, "ehr_pairs"]), store=store)


def test_rename_after_the_gate_is_refused(store):
    with pytest.raises(MedcurateError, match=r"steps\.deid\.fields.*field complaint was not covered"):
        build(ehr_recipe(["deid", "ehr_pairs", {"rename": {"columns": {"chief_complaint": "complaint"}}}]), store=store)


def test_extra_text_column_after_the_deid_step_is_refused(store):
    with pytest.raises(MedcurateError, match=r"field raw_copy was not covered"):
        build(ehr_recipe(["deid", {"copy_text_for_tests": {"source": "present_illness", "target": "raw_copy"}},
                          "ehr_pairs"]), store=store)


def test_passthrough_column_is_refused_for_ehr(store):
    with pytest.raises(MedcurateError, match=r"steps\.deid\.passthrough"):
        build(ehr_recipe([{"deid": {"passthrough": ["department"]}}, "ehr_pairs"]), store=store)


def test_raw_record_number_as_patient_key_is_refused(store):
    from medcurate.deid.gate import mark_deidentified, text_columns

    if "stamp_keeping_raw_key_for_tests" not in steps():
        @register_step("stamp_keeping_raw_key_for_tests")
        def stamp(rows, ctx):
            for row in rows:
                mark_deidentified(row, text_columns(row), "test")
            return rows
    with pytest.raises(MedcurateError, match="patient_id is a raw record number"):
        build(ehr_recipe(["stamp_keeping_raw_key_for_tests", "ehr_pairs"]), store=store)


def test_recipe_with_two_steps_blocks_is_refused(tmp_path):
    recipe = tmp_path / "twice.yaml"
    recipe.write_text(f"name: twice\nkind: ehr\nsources:\n  - {{name: ward, path: {SAMPLE}, format: ehr}}\n"
                      "steps:\n  - deid: {}\n  - ehr_pairs: {}\nsteps:\n  - ehr_pairs: {}\n", encoding="utf-8")
    with pytest.raises(MedcurateError, match="steps"):
        load_recipe(recipe)


@pytest.mark.parametrize("url, loopback", [
    ("http://127.0.0.1:8000/v1", True), ("http://127.8.9.10/v1", True), ("http://[::1]:8000/v1", True),
    ("http://localhost:8000/v1", True), ("http://0.0.0.0:8000/v1", False), ("http://10.0.0.5/v1", False),
    ("https://api.example.com/v1", False), ("http://[::]:80/v1", False), ("http://127.0.0.1.example.com/v1", False),
])
def test_loopback(url, loopback):
    assert is_loopback(url) is loopback


def test_unscreened_text_to_a_remote_endpoint_is_refused_unless_the_flag_is_passed():
    with pytest.raises(MedcurateError, match=re.escape(ALLOW_FLAG)):
        require_safe_endpoint("http://0.0.0.0:9/v1", ["not screened"], allow_unscreened=False, purpose="x")
    require_safe_endpoint("http://0.0.0.0:9/v1", ["not screened"], allow_unscreened=True, purpose="x")
    require_safe_endpoint("http://0.0.0.0:9/v1", ["deidentified"], allow_unscreened=False, purpose="x")
    require_safe_endpoint("http://127.0.0.1:9/v1", ["not screened"], allow_unscreened=False, purpose="x")


def _prompts(tmp_path: Path, store: Path, with_deid: bool) -> str:
    source = tmp_path / "prompts.jsonl"
    source.write_text(json.dumps({"instruction": "请回答", "query": "患者李春梅，女，51岁，于2023-04-11入院，怎么办？",
                                  "answer": "就医。", "task": "qa"}, ensure_ascii=False) + "\n", encoding="utf-8")
    recipe = recipe_from_dict({"name": "prompts-deid" if with_deid else "prompts-raw", "kind": "instruction",
                               "sources": [{"name": "p", "path": str(source), "format": "jsonl"}],
                               "steps": ["deid"] if with_deid else []}, base_dir=tmp_path, origin="test")
    result = build(recipe, store=store)
    assert privacy_status(result.manifest) == ("deidentified" if with_deid else "not screened")
    return result.version.ref


def test_annotate_sample_refuses_before_any_connection(tmp_path, store, openai_endpoint):  # noqa: F811
    remote = openai_endpoint.replace("127.0.0.1", "0.0.0.0")
    raw = _prompts(tmp_path, store, with_deid=False)
    out = tmp_path / "c.jsonl"
    LocalChatCompletionsHandler.requests.clear()
    args = ("annotate", "sample", "--prompts", raw, "--model", "m", "--out", str(out), "--store", str(store))
    refused = run_medcurate(*args, "--base-url", remote)
    assert refused.returncode != 0 and ALLOW_FLAG in refused.stderr and "Traceback" not in refused.stderr
    assert LocalChatCompletionsHandler.requests == [] and not out.exists()
    assert "李春梅" not in refused.stderr + refused.stdout
    allowed = run_medcurate(*args, "--base-url", remote, ALLOW_FLAG)
    assert allowed.returncode == 0, allowed.stderr
    assert LocalChatCompletionsHandler.requests  # the flag lets it through (to this machine only)
    LocalChatCompletionsHandler.requests.clear()
    screened = _prompts(tmp_path, store, with_deid=True)
    passed = run_medcurate("annotate", "sample", "--prompts", screened, "--model", "m", "--out", str(out),
                           "--store", str(store), "--base-url", remote)
    assert passed.returncode == 0, passed.stderr
    assert all("李春梅" not in json.dumps(r, ensure_ascii=False) for r in LocalChatCompletionsHandler.requests)
    local = run_medcurate(*args, "--base-url", openai_endpoint)
    assert local.returncode == 0, local.stderr


def test_judge_refuses_unscreened_candidates_before_any_connection(tmp_path, openai_endpoint):  # noqa: F811
    candidates = tmp_path / "c.jsonl"
    candidates.write_text(json.dumps({"item_id": "1", "prompt": "患者李春梅", "prompt_source": {"dataset": "x@1"},
                                      "candidates": [{"id": "c0", "text": "a"}, {"id": "c1", "text": "b"}],
                                      "near_duplicates": []}, ensure_ascii=False) + "\n", encoding="utf-8")
    LocalChatCompletionsHandler.requests.clear()
    result = run_medcurate("annotate", "push", "--candidates", str(candidates), "--annotators", "a@example.org",
                           "--workdir", str(tmp_path / "w"), "--judge-url", openai_endpoint.replace("127.0.0.1", "0.0.0.0"),
                           "--url", "http://127.0.0.1:9", "--token", "unused")
    assert result.returncode != 0 and ALLOW_FLAG in result.stderr and "Traceback" not in result.stderr
    assert LocalChatCompletionsHandler.requests == []


@pytest.mark.parametrize("params, field", [({"policy": "blur"}, "steps.deid.policy"),
                                           ({"policy": {"NAME": "mask"}}, "steps.deid.policy.NAME"),
                                           ({"threshold": -0.1}, "steps.deid.threshold"),
                                           ({"threshold": "high"}, "steps.deid.threshold"),
                                           ({"policy": "surrogate", "secret_env": "NO_SUCH_SECRET_VAR"},
                                            "steps.deid.secret_env"),
                                           ({"fields": ["no_such_column"]}, "steps.deid.fields"),
                                           ({"passthrough": {"a": 1}}, "steps.deid.passthrough")])
def test_bad_deid_parameters_are_one_line_errors_naming_the_recipe_field(store, params, field):
    with pytest.raises(MedcurateError) as raised:
        build(ehr_recipe([{"deid": params}, "ehr_pairs"]), store=store)
    message = str(raised.value)
    # parameters checked when the recipe loads are named with the step's position: steps[0].deid.threshold
    assert field in re.sub(r"steps\[\d+\]", "steps", message) and "\n" not in message
    assert not [name for name in NAMES if name in message]


def test_mapping_that_names_a_missing_column_is_one_line_error(store):
    recipe = recipe_from_dict({"name": "gate", "kind": "ehr",
                               "sources": [{"name": "ward", "path": str(SAMPLE), "format": "ehr",
                                            "options": {"fields": {"diagnosis": "出院诊断X"}}}],
                               "steps": ["deid", "ehr_pairs"]}, base_dir=REPO)
    with pytest.raises(MedcurateError, match=r"options\.fields\.diagnosis.*'出院诊断X'"):
        build(recipe, store=store)


def test_a_stamp_over_raw_text_is_caught_by_the_publish_time_scan(store):
    from medcurate.deid.gate import mark_deidentified, text_columns

    if "stamp_without_masking_for_tests" not in steps():
        @register_step("stamp_without_masking_for_tests")
        def stamp(rows, ctx):
            for row in rows:
                row["patient_id"] = "pt-0000000000000000"
                mark_deidentified(row, text_columns(row), "mask", pseudonymised=["patient_id"])
            return rows
    with pytest.raises(MedcurateError, match=r"still holds a (PERSON|DATE)") as raised:
        build(ehr_recipe(["stamp_without_masking_for_tests", "ehr_pairs"]), store=store)
    assert not [name for name in NAMES if name in str(raised.value)]


def test_the_library_functions_refuse_too():
    from medcurate.annotate.judge import openai_judge
    from medcurate.annotate.sampling import SamplingSettings, openai_generator

    remote = SamplingSettings(backend="openai", model="m", base_url="http://0.0.0.0:9/v1")
    with pytest.raises(MedcurateError, match=re.escape(ALLOW_FLAG)):
        openai_generator(remote, None)
    with pytest.raises(MedcurateError, match=re.escape(ALLOW_FLAG)):
        openai_judge("http://0.0.0.0:9/v1", "m", None)
    assert openai_judge("http://0.0.0.0:9/v1", "m", None, privacy=["deidentified"])
    assert openai_generator(remote, None, privacy=["not screened"], allow_unscreened=True)


def test_pseudonyms_in_a_version_need_the_secret(tmp_path, monkeypatch):
    """Without the user's secret the pseudonym key would be random per run and the version would
    differ on every build: the step refuses, naming the recipe field."""
    monkeypatch.delenv("MEDCURATE_DEID_SECRET", raising=False)
    source = tmp_path / "notes.jsonl"
    source.write_text(json.dumps({"patient_id": "A-12-3456", "department": "内科", "input": "咳嗽三天",
                                  "diagnosis": "上呼吸道感染"}, ensure_ascii=False) + "\n", encoding="utf-8")
    recipe = recipe_from_dict({"name": "notes", "kind": "ehr", "sources": [{"name": "n", "path": source.name}],
                               "steps": [{"deid": {}}]}, base_dir=tmp_path, origin="r.yaml")
    with pytest.raises(MedcurateError, match=r"needs the user's secret.*MEDCURATE_DEID_SECRET") as info:
        build(recipe, store=tmp_path / "store")
    assert info.value.field == "steps.deid.secret_env"
    assert "A-12-3456" not in str(info.value)


def test_deid_runs_batch_by_batch_in_worker_processes_with_the_whole_step_checks(store, tmp_path):
    """deid is row-local: batches of 4 in two worker processes publish the version a single pass
    does; its whole-step checks still see every batch (a required column only some rows have is
    fine, one no row has refuses the build)."""
    assert steps()["deid"].kind == ROW_LOCAL
    recipe = ehr_recipe([{"deid": {"fields": ["present_illness", "patient_id"]}}, "ehr_pairs"])
    single = build(recipe, store=store, engine="memory")
    parallel = build(recipe, store=tmp_path / "parallel", batch_size=4, workers=2)
    assert parallel.version.version == single.version.version
    assert parallel.manifest["stats"]["deid"] == single.manifest["stats"]["deid"]
    deid_stage = next(stage for stage in single.manifest["counts"]["stages"] if stage["stage"] == "deid")
    assert single.manifest["stats"]["deid"]["rows"] == deid_stage["rows_in"] > 60
    assert "PERSON" in single.manifest["stats"]["deid"]["identifiers_by_type"]
    late = tmp_path / "late.jsonl"   # only the last note has a past history, so only the last batch has the column
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    late.write_text("".join(json.dumps(dict(record, 既往史="高血压病史10年" if index == len(records) - 1 else ""),
                                       ensure_ascii=False) + "\n" for index, record in enumerate(records)), encoding="utf-8")
    only_last = recipe_from_dict({"name": "late", "kind": "ehr", "steps": [{"deid": {"fields": "past_history"}}, "ehr_pairs"],
                                  "sources": [{"name": "ward", "path": str(late), "format": "ehr",
                                               "options": {"fields": MAPPING}}]})
    assert build(only_last, store=tmp_path / "late", batch_size=4, workers=2).manifest["counts"]["rows_written"] > 0
    with pytest.raises(MedcurateError, match=r"steps\.deid\.fields.*no row has column 'query'"):
        build(ehr_recipe([{"deid": {"fields": "query"}}, "ehr_pairs"]), store=tmp_path / "none", batch_size=4, workers=2)
