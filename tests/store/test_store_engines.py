"""Every engine publishes the same version: streamed in batches of any size, held in memory,
spread over worker processes or run on Ray Data; and a streaming build holds a bounded number of rows."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import REPO, run_medcurate

from medcurate.build import build
from medcurate.deid.engine import SECRET_ENV
from medcurate.errors import ConservationError
from medcurate.pipeline import ROW_LOCAL, RecordError, register_source, register_step
from medcurate.recipe import load_recipe, recipe_from_dict
from medcurate.store import list_datasets, load_rows, verify

RECIPES = REPO / "examples" / "recipes"
# In the order examples/demo.sh builds them: later recipes read versions the earlier ones publish.
LOCAL_RECIPES = ["consultation_qa", "kg_qa", "ehr_pairs", "cmedins", "mix"]


def _files(version) -> dict[str, bytes]:
    """Every file of a version folder but lineage.json, which names the local store's paths (each
    build here has its own store) and is not part of the version's content."""
    return {path.relative_to(version.path).as_posix(): path.read_bytes()
            for path in sorted(version.path.rglob("*")) if path.is_file() and path.name != "lineage.json"}


def _build_all(store: Path, **options) -> dict[str, tuple[str, dict[str, bytes]]]:
    published = {}
    for name in LOCAL_RECIPES:
        version = build(load_recipe(RECIPES / f"{name}.yaml"), store=store, **options).version
        published[name] = (version.version, _files(version))
    return published


@pytest.fixture(scope="module")
def small_row_groups():
    """Row groups and schema chunks of a few rows, so the small samples span several; a deid
    secret, so patient pseudonyms are stable (without one they are random on every run)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_ENV, "engines-test-secret")
        patch.setattr("medcurate.store.ROW_GROUP_ROWS", 16)
        patch.setattr("medcurate.store.SCHEMA_CHUNK_ROWS", 8)
        yield


@pytest.fixture(scope="module")
def in_memory(tmp_path_factory, small_row_groups):
    return _build_all(tmp_path_factory.mktemp("memory"), engine="memory")


@pytest.mark.parametrize("options", [{"batch_size": 1}, {"batch_size": 7}, {}, {"batch_size": 5, "workers": 2}],
                         ids=["batch1", "batch7", "default", "workers2"])
def test_streaming_builds_of_every_example_recipe_equal_the_in_memory_build(tmp_path, small_row_groups, in_memory,
                                                                          options):
    streamed = _build_all(tmp_path / "store", **options)
    for name in LOCAL_RECIPES:
        assert streamed[name][0] == in_memory[name][0], f"{name}: version id differs"
        assert streamed[name][1] == in_memory[name][1], f"{name}: files differ"
    for name in list_datasets(tmp_path / "store"):
        assert verify(f"{name}@latest", tmp_path / "store") == []


def _generated(tmp_path: Path, rows: int) -> Path:
    data = tmp_path / "rows.jsonl"
    with open(data, "w", encoding="utf-8") as handle:
        for index in range(rows):
            pair = index // 2  # every record comes twice
            handle.write(json.dumps({"instruction": f" 问题{pair} ", "query": "", "task": "qa",
                                     "answer": f"回答{pair % 991}。" * (1 + pair % 3),
                                     "department": ["心内科", "儿科", "骨科"][pair % 3]}, ensure_ascii=False) + "\n")
    return data


def _bench_recipe(data: Path) -> dict:
    return {"name": "gen", "kind": "instruction", "seed": 3, "sources": [{"name": "rows", "path": str(data)}],
            "steps": [{"strip_text": {"fields": ["instruction", "answer"]}},
                      {"require": {"fields": ["instruction", "answer"]}},
                      {"filter_length": {"field": "answer", "min": 4}},
                      {"dedupe": {"fields": ["instruction", "answer"]}},
                      {"sample": {"n": 5000}}],
            "splits": {"seed": 1, "validation": 300, "test": 0.05, "stratify": "department"}}


def test_streaming_build_holds_a_bounded_number_of_rows(tmp_path, monkeypatch):
    """Counts the rows alive in batches and row groups (not time): with batches of 64 rows and
    row groups of 256, a 60,000-row build never holds more than a few hundred rows at once."""
    import medcurate.engines.local as local
    import medcurate.store as store_module

    monkeypatch.setattr(store_module, "ROW_GROUP_ROWS", 256)
    monkeypatch.setattr(store_module, "SCHEMA_CHUNK_ROWS", 256)
    monkeypatch.setattr("medcurate.engines.spill.CHUNK_RECORDS", 1000)  # digests and split keys go to disk
    monkeypatch.setattr("medcurate.steps.core._BoundedDedupe.ONLINE_DIGESTS", 2000)  # dedupe spills past 2,000
    peak = {"batch": 0, "buffered": 0}
    original_run_segment = local.run_segment

    def counting_run_segment(rows, steps, settings):
        peak["batch"] = max(peak["batch"], len(rows))
        return original_run_segment(rows, steps, settings)

    original_write = store_module.SplitFileWriter.write

    def counting_write(self, table):
        original_write(self, table)
        peak["buffered"] = max(peak["buffered"], self.buffered)

    monkeypatch.setattr(local, "run_segment", counting_run_segment)
    monkeypatch.setattr(store_module.SplitFileWriter, "write", counting_write)
    data = _generated(tmp_path, 60_000)
    streamed = build(recipe_from_dict(_bench_recipe(data)), store=tmp_path / "a", batch_size=64)
    assert peak["batch"] == 64 and peak["buffered"] < 256
    counts = streamed.manifest["counts"]
    assert counts["inputs_read"] == 60_000 and counts["rows_written"] == 5000
    assert counts["filtered"] == {"duplicate": 30_000, "sampled_out": 25_000}
    assert sorted(counts["splits"]) == ["test", "train", "validation"] and counts["splits"]["validation"] == 300
    held = build(recipe_from_dict(_bench_recipe(data)), store=tmp_path / "b", engine="memory")
    assert held.version.version == streamed.version.version
    assert _files(held.version) == _files(streamed.version)


@pytest.mark.slow
def test_ray_engine_publishes_the_local_version(tmp_path, monkeypatch):
    """A local Ray with two CPUs (started once): example recipes, whose de-identification and
    CMedINS and KG rendering run as Ray batch maps, then dedupe and stratified group splits whose
    decisions come from Ray's groupby (first digests, each stratum's smallest keys, rows per
    stratum under a threshold); each publishes the local engine's version."""
    pytest.importorskip("ray")
    import ray
    import ray.data

    grouped_by: list[object] = []
    original_groupby = ray.data.Dataset.groupby

    def spy(self, key, *args, **kwargs):
        grouped_by.append(key)
        return original_groupby(self, key, *args, **kwargs)

    monkeypatch.setattr(ray.data.Dataset, "groupby", spy)
    from medcurate.engines.ray import RayExecutor

    mapped: set[tuple[str, str]] = set()
    original_map = RayExecutor.map

    def map_spy(self, steps, settings, batches):
        mapped.update((step.name, step.phase) for step in steps)
        return original_map(self, steps, settings, batches)

    monkeypatch.setattr(RayExecutor, "map", map_spy)
    monkeypatch.setenv(SECRET_ENV, "engines-test-secret")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for name in ["consultation_qa", "kg_qa", "ehr_pairs", "cmedins"]:
            local_version = build(load_recipe(RECIPES / f"{name}.yaml"), store=tmp_path / "local").version
            on_ray = build(load_recipe(RECIPES / f"{name}.yaml"), store=tmp_path / "ray", engine="ray",
                           batch_size=3).version
            assert on_ray.version == local_version.version, name
            assert _files(on_ray) == _files(local_version), name
        # the heavy per-row work runs in Ray's workers: de-identification, CMedINS and KG rendering
        assert {("deid", "step"), ("cmedins", "prepare"), ("kg_qa", "complete")} <= mapped, mapped
        monkeypatch.setattr("medcurate.engines.spill.CHUNK_RECORDS", 500)
        monkeypatch.setattr("medcurate.engines.ray.WINDOW_ROWS", 1_000)   # several windows, run in the background
        monkeypatch.setattr("medcurate.engines.ray.BLOCK_ROWS", 1_000)    # keys over several blocks
        monkeypatch.setattr("medcurate.engines.ray.DRIVER_RECORDS", 500)  # split keys grouped by Ray
        monkeypatch.setattr("medcurate.steps.core._BoundedDedupe.ONLINE_DIGESTS", 300)  # digests grouped by Ray
        data = _repeating(tmp_path, 6_000, 1_500)
        grouped = dict(_bench_recipe(data), name="grouped", steps=[{"dedupe": {"fields": ["instruction", "answer"]}}],
                       splits={"seed": 5, "validation": 0.1, "test": 100, "stratify": "department", "group": "answer"})
        local = build(recipe_from_dict(grouped), store=tmp_path / "local", batch_size=256)
        spread = build(recipe_from_dict(grouped), store=tmp_path / "ray", engine="ray", batch_size=256)
        assert spread.version.version == local.version.version
        assert _files(spread.version) == _files(local.version)
        assert spread.manifest["counts"]["filtered"]["duplicate"] > 0
        assert ["high", "low"] in grouped_by and grouped_by.count("stratum") >= 3, grouped_by
    finally:
        ray.shutdown()


def _repeating(tmp_path: Path, rows: int, period: int) -> Path:
    """Rows whose content comes back every ``period`` rows, so a duplicate's first occurrence
    can lie thousands of rows (many batches) earlier."""
    data = tmp_path / "repeating.jsonl"
    with open(data, "w", encoding="utf-8") as handle:
        for index in range(rows):
            key = index % period if index % 7 else index
            handle.write(json.dumps({"instruction": f"问题{key}", "query": "", "task": "qa", "answer": f"回答{key}。",
                                     "department": ["心内科", "儿科"][key % 2]}, ensure_ascii=False) + "\n")
    return data


def test_dedupe_that_outgrows_memory_goes_on_from_disk_with_the_same_result(tmp_path, monkeypatch):
    """Dedupe decides each batch from an in-memory digest table while it fits; a tiny table makes
    it move to disk midway, with duplicates whose first row was decided in memory."""
    data = _repeating(tmp_path, 12_000, 2_500)
    recipe = dict(_bench_recipe(data), steps=[{"dedupe": {"fields": ["instruction", "answer"]}}])
    in_memory_table = build(recipe_from_dict(recipe), store=tmp_path / "a", batch_size=100)
    monkeypatch.setattr("medcurate.steps.core._BoundedDedupe.ONLINE_DIGESTS", 700)
    monkeypatch.setattr("medcurate.engines.spill.CHUNK_RECORDS", 500)
    spilled = build(recipe_from_dict(recipe), store=tmp_path / "b", batch_size=100)
    held = build(recipe_from_dict(recipe), store=tmp_path / "c", engine="memory")
    assert in_memory_table.version.version == spilled.version.version == held.version.version
    assert _files(spilled.version) == _files(held.version)
    unique = 2_500 + sum(1 for index in range(2_500, 12_000) if index % 7 == 0)
    assert spilled.manifest["counts"]["rows_written"] == unique
    assert spilled.manifest["counts"]["filtered"] == {"duplicate": 12_000 - unique}


def test_digest_table_agrees_with_a_set_when_slots_collide():
    """Digests that share their high bits land on neighbouring slots: every batch's new ones
    must be exactly those a Python set has not seen, also across the table's growth."""
    import numpy as np

    from medcurate.engines.spill import DigestTable

    random = np.random.default_rng(7)
    pool_high = random.integers(0, 64, size=3_000, dtype=np.uint64)
    pool_low = random.integers(0, 2**63, size=3_000, dtype=np.uint64)
    table, seen = DigestTable(limit=10**6, capacity=16), set()
    for _ in range(40):
        picked = random.integers(0, 3_000, size=200)
        high, low = pool_high[picked], pool_low[picked]
        expected, batch = [], set()
        for pair in zip(high.tolist(), low.tolist(), strict=True):
            expected.append(pair not in seen and pair not in batch)
            batch.add(pair)
        seen |= batch
        new = table.add_new(high, low)
        assert new is not None and new.tolist() == expected
    assert table.count == len(seen)
    assert table.contains(pool_high, pool_low).tolist() == [pair in seen for pair in zip(pool_high.tolist(),
                                                                                           pool_low.tolist(), strict=True)]
    assert DigestTable(limit=10).add_new(pool_high[:50], pool_low[:50]) is None


def _every_column_recipe(tmp_path: Path, name: str, rows: list[dict]) -> dict:
    """A recipe reading ``rows`` from a JSONL file, keeping every column they have."""
    data = tmp_path / f"{name}.jsonl"
    data.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return {"name": name, "kind": "instruction",
            "sources": [{"name": "rows", "path": str(data), "options": {"keep_unmapped": True}}]}


def test_columns_that_change_type_after_their_chunk_was_spilled(tmp_path, monkeypatch):
    """A list column of ints that later holds a float, a struct that later gains a key and an
    int column that later becomes JSON: their spilled chunks are rebuilt from the kept values."""
    monkeypatch.setattr("medcurate.store.SCHEMA_CHUNK_ROWS", 8)
    rows = [{"instruction": f"问题{i}", "query": "", "answer": f"回答{i}", "task": "qa",
             "doses": [i, i + 1] if i < 30 else [0.5], "vitals": {"hr": i} if i < 30 else {"hr": i, "bp": "120/80"},
             "late": [i] if i < 30 else "文字", "mixed": [1, 2.5] if i % 2 else None}
            for i in range(40)]
    recipe = _every_column_recipe(tmp_path, "changing", rows)
    streamed = build(recipe_from_dict(recipe), store=tmp_path / "a", batch_size=3)
    held = build(recipe_from_dict(recipe), store=tmp_path / "b", engine="memory")
    assert _files(streamed.version) == _files(held.version) and streamed.manifest["json_columns"] == ["late"]
    stored = load_rows(streamed.version.ref, store=tmp_path / "a")["train"]
    assert [row["doses"] for row in stored] == [[float(i), float(i + 1)] for i in range(30)] + [[0.5]] * 10
    assert [row["vitals"] for row in stored] == [{"hr": i, "bp": None} for i in range(30)] + [
        {"hr": i, "bp": "120/80"} for i in range(30, 40)]
    assert [row["late"] for row in stored] == [row["late"] for row in rows]
    assert [row["mixed"] for row in stored] == [row["mixed"] for row in rows]


def test_group_splits_spilled_to_disk_equal_the_in_memory_ones(tmp_path, monkeypatch):
    monkeypatch.setattr("medcurate.engines.spill.CHUNK_RECORDS", 500)
    data = _generated(tmp_path, 6_000)
    recipe = dict(_bench_recipe(data), steps=[], splits={"seed": 5, "validation": 0.1, "test": 200,
                                                          "stratify": "department", "group": "answer"})
    streamed = build(recipe_from_dict(recipe), store=tmp_path / "a", batch_size=50)
    held = build(recipe_from_dict(recipe), store=tmp_path / "b", engine="memory")
    assert streamed.version.version == held.version.version and _files(streamed.version) == _files(held.version)
    rows = load_rows(streamed.version.ref, store=tmp_path / "a")
    splits_of_answer: dict[str, set[str]] = {}
    for split, part in rows.items():
        for row in part:
            splits_of_answer.setdefault(row["answer"], set()).add(split)
    assert all(len(splits) == 1 for splits in splits_of_answer.values())
    assert 200 <= len(rows["test"]) < 260 and 600 <= len(rows["validation"]) < 660


def test_build_command_takes_engine_workers_and_batch_size(tmp_path):
    recipe = str(RECIPES / "consultation_qa.yaml")
    run_medcurate("build", recipe, "--store", str(tmp_path / "a"), "--workers", "2", "--batch-size", "3", check=True)
    run_medcurate("build", recipe, "--store", str(tmp_path / "b"), "--engine", "memory", check=True)
    first, second = list_datasets(tmp_path / "a")["consultation-qa"], list_datasets(tmp_path / "b")["consultation-qa"]
    assert first[-1]["version"] == second[-1]["version"]
    refused = run_medcurate("build", recipe, "--store", str(tmp_path / "c"), "--engine", "spark")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr


def test_a_column_whose_type_changes_late_is_stored_as_json(tmp_path, monkeypatch):
    monkeypatch.setattr("medcurate.store.SCHEMA_CHUNK_ROWS", 8)
    rows = [{"instruction": f"问题{i}", "query": "", "answer": f"回答{i}", "task": "qa", "extra": i if i < 30 else {"n": i}}
            for i in range(40)]
    recipe = _every_column_recipe(tmp_path, "mixed", rows)
    streamed = build(recipe_from_dict(recipe), store=tmp_path / "a", batch_size=3)
    held = build(recipe_from_dict(recipe), store=tmp_path / "b", engine="memory")
    assert streamed.manifest["json_columns"] == ["extra"] and _files(streamed.version) == _files(held.version)
    stored = load_rows(streamed.version.ref, store=tmp_path / "a")["train"]
    assert [row["extra"] for row in stored] == [row["extra"] for row in rows], "load_rows decodes the JSON column"


def _answer_lengths_card(stats, card, field):
    card.stats["answer_lengths"] = stats["answer_lengths"]
    card.add_section("Answer lengths", f"{stats['answer_lengths']['rows']} rows, {stats['answer_lengths']['chars']} characters")


@register_step("count_chars_for_tests", kind=ROW_LOCAL, summary=_answer_lengths_card)
def count_chars_for_tests(rows, ctx, field):
    ctx.card.stats["answer_lengths"] = {"rows": len(rows), "chars": sum(len(row[field]) for row in rows)}
    return rows


def test_row_local_card_stats_add_up_over_batches(tmp_path):
    data = _generated(tmp_path, 500)
    recipe = dict(_bench_recipe(data), steps=[{"count_chars_for_tests": {"field": "answer"}}], splits={})
    expected = sum(len(json.loads(line)["answer"]) for line in data.read_text(encoding="utf-8").splitlines())
    streamed = build(recipe_from_dict(recipe), store=tmp_path / "a", batch_size=7, workers=2)
    assert streamed.manifest["stats"]["answer_lengths"] == {"rows": 500, "chars": expected}
    assert streamed.manifest["card_sections"] == [["Answer lengths", f"500 rows, {expected} characters"]]
    held = build(recipe_from_dict(recipe), store=tmp_path / "b", engine="memory")
    assert held.version.version == streamed.version.version


def _tag_process(rows, ctx, marker):
    """A prepare phase: drops rows without an answer, tags the rest with the process it ran in."""
    kept = []
    for row in rows:
        if not row.get("answer"):
            ctx.drop(row, "no_answer")
            continue
        kept.append(dict(row, **{marker: os.getpid()}))
    return kept


def _split_answer(rows, ctx):
    """A complete phase: one row per sentence of the answer, and a reject for a row without one."""
    made = []
    for row in rows:
        sentences = [part for part in row["answer"].split("。") if part]
        if not sentences:
            ctx.reject(row, "no sentence", "answer")
            continue
        ctx.merged(1)
        ctx.created(len(sentences))
        made.extend(dict(row, answer=f"{part}。", completed_in=os.getpid()) for part in sentences)
    return made


@register_step("first_per_department_for_tests", prepare=_tag_process, complete=_split_answer)
def first_per_department_for_tests(rows, ctx, marker="prepared_in"):
    """The whole pass between the phases: the first row of each department."""
    seen: set[str] = set()
    kept = []
    for row in rows:
        if row["department"] in seen:
            ctx.drop(row, "not_first")
            continue
        seen.add(row["department"])
        kept.append(row)
    return kept


def _phase_recipe(tmp_path: Path) -> dict:
    data = tmp_path / "phases.jsonl"
    rows = [{"instruction": f"问题{index}", "query": "", "task": "qa", "department": f"科{index % 5}",
             "answer": "" if index % 7 == 3 else "。" if index == 4 else "第一句。第二句。" if index % 2 else "一句。"}
            for index in range(40)]
    data.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return {"name": "phases", "kind": "instruction", "sources": [{"name": "rows", "path": str(data)}],
            "steps": [{"first_per_department_for_tests": {"marker": "prepared_in"}}], "splits": {}}


def test_phases_of_a_whole_pass_step_run_in_the_workers_and_count_in_its_stage(tmp_path):
    """prepare and complete run in the worker processes; the stage's ledger reads as one step's:
    rows in = rows read, rows out = rows published, and every phase's drops, rejects and merges."""
    recipe = _phase_recipe(tmp_path)
    spread = build(recipe_from_dict(recipe), store=tmp_path / "a", batch_size=3, workers=2)
    stage = next(s for s in spread.manifest["counts"]["stages"] if s["stage"] == "first_per_department_for_tests")
    # 40 rows: 6 without an answer (index 3, 10, 17, 24, 31, 38), then the first of each of 5 departments
    # (index 0, 1, 2, 4, 8); index 4 has no sentence, 1 gives two rows
    assert stage == {"stage": "first_per_department_for_tests", "rows_in": 40, "rows_out": 5, "created": 5,
                     "merged": 4, "dropped": {"no_answer": 6, "not_first": 29}, "rejected": {"no sentence": 1}}
    published = load_rows(spread.version.ref, store=tmp_path / "a")["train"]
    assert len(published) == 5
    assert all(row["prepared_in"] != os.getpid() and row["completed_in"] != os.getpid() for row in published)
    rejects = [json.loads(line) for line in (spread.version.path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["step"], r["line"], r["field"]) for r in rejects] == [("first_per_department_for_tests", 5, "answer")]
    held = build(recipe_from_dict(recipe), store=tmp_path / "b", engine="memory")
    assert held.manifest["counts"] == spread.manifest["counts"]
    here = [dict(row, prepared_in=0, completed_in=0) for row in load_rows(held.version.ref, store=tmp_path / "b")["train"]]
    assert here == [dict(row, prepared_in=0, completed_in=0) for row in published]


def test_a_step_run_whole_equals_its_phases_in_a_build(tmp_path):
    """StepInfo.run (prepare, whole pass, complete on one list) gives the rows the build publishes."""
    from medcurate.pipeline import CardContributions, StepContext, get_step

    recipe = _phase_recipe(tmp_path)
    version = build(recipe_from_dict(recipe), store=tmp_path / "a", batch_size=4).version
    rows = [json.loads(line) for line in Path(recipe["sources"][0]["path"]).read_text(encoding="utf-8").splitlines()]
    ctx = StepContext("first_per_department_for_tests", base_dir=tmp_path, store=tmp_path, seed=0, rejects=[],
                      card=CardContributions())
    made = get_step("first_per_department_for_tests").run(rows, ctx, {"marker": "prepared_in"})
    published = load_rows(version.ref, store=tmp_path / "a")["train"]
    assert [(row["instruction"], row["answer"]) for row in made] == [(row["instruction"], row["answer"]) for row in published]
    assert ctx.ledger.merged == 4 and ctx.ledger.dropped == {"no_answer": 6, "not_first": 29}


@register_source("pid_lines_for_tests", file_format="jsonl")
def pid_lines_for_tests(record, spec, ctx):
    """Tags each row with the process that parsed it; ``skip`` records are dropped, ``bad`` ones
    refused, ``twice`` ones give two rows, ``silent`` ones give nothing without saying why."""
    kind = record.get("kind")
    if kind == "skip":
        ctx.drop(None, "skipped")
        return
    if kind == "bad":
        raise RecordError("bad record: refused", field="kind")
    if kind == "silent":
        return
    for copy in range(2 if kind == "twice" else 1):
        yield {"instruction": f"问题{record['n']}-{copy}", "query": "", "answer": "回答。", "task": "qa",
               "parsed_in": os.getpid(), "record": ctx.record}


def _pid_recipe(tmp_path: Path, records: list[str]) -> dict:
    data = tmp_path / "records.jsonl"
    data.write_text("".join(line + "\n" for line in records), encoding="utf-8")
    return {"name": "parsed", "kind": "instruction", "splits": {},
            "sources": [{"name": "lines", "path": str(data), "format": "pid_lines_for_tests"}]}


def test_record_files_are_parsed_in_the_workers_with_every_record_accounted(tmp_path):
    """The parse of a record file runs in the worker processes, batch by batch; its stage counts
    and rejects are those of one pass over the file, in line order, and ``ctx.record`` numbers
    the records across batches."""
    kinds = ["plain", "skip", "twice", "bad", "plain", "{not json", "twice", "plain"]
    records = [line if line.startswith("{not") else json.dumps({"n": n, "kind": line}) for n, line in enumerate(kinds)]
    recipe = _pid_recipe(tmp_path, records)
    spread = build(recipe_from_dict(recipe), store=tmp_path / "a", batch_size=2, workers=2)
    stage = spread.manifest["counts"]["stages"][0]
    assert stage == {"stage": "source:lines", "rows_in": 8, "rows_out": 7, "created": 2, "merged": 0,
                     "dropped": {"skipped": 1}, "rejected": {"bad record": 1, "malformed JSON": 1}}
    assert spread.manifest["sources"][0]["records"] == 8 and spread.manifest["sources"][0]["rows"] == 7
    rows = load_rows(spread.version.ref, store=tmp_path / "a")["train"]
    assert sorted(row["record"] for row in rows) == [1, 3, 3, 5, 7, 7, 8]
    assert all(row["parsed_in"] != os.getpid() for row in rows)
    rejects = [json.loads(line) for line in (spread.version.path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r.get("field")) for r in rejects] == [(4, "kind"), (6, None)]
    held = build(recipe_from_dict(recipe), store=tmp_path / "b", engine="memory")
    assert held.manifest["counts"] == spread.manifest["counts"]


def test_a_record_lost_in_a_worker_fails_the_build_naming_its_line(tmp_path):
    recipe = _pid_recipe(tmp_path, [json.dumps({"n": n, "kind": "silent" if n == 5 else "plain"}) for n in range(9)])
    with pytest.raises(ConservationError, match=r"records\.jsonl:6: .*returned no row") as raised:
        build(recipe_from_dict(recipe), store=tmp_path, batch_size=2, workers=2)
    assert raised.value.line == 6
    assert list_datasets(tmp_path) == {}
