"""Time the annotation loop against a running Label Studio: push N pairwise units, post two
annotators' annotations through the API, pull (agreement + adjudication queue), export.

    python benchmarks/annotate_roundtrip.py --url http://127.0.0.1:8080 --token TOKEN --units 300

Prints one JSON object of timings (seconds) and rates. The annotation posts are the
harness standing in for people (admin posts with ``completed_by``), timed separately.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medcurate.annotate.configs import build_result  # noqa: E402
from medcurate.annotate.recipes import export_recipe  # noqa: E402
from medcurate.annotate.server import LabelStudioServer  # noqa: E402
from medcurate.annotate.workdir import load_state  # noqa: E402
from medcurate.annotate.workflows import pull, push  # noqa: E402
from medcurate.build import build  # noqa: E402
from medcurate.recipe import recipe_from_dict  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--units", type=int, default=300)
    args = parser.parse_args()
    server = LabelStudioServer(args.url, args.token)
    rng = random.Random(0)
    work = Path(tempfile.mkdtemp(prefix="annotate-bench-"))
    candidates = work / "candidates.jsonl"
    with candidates.open("w", encoding="utf-8") as handle:
        for n in range(args.units):
            handle.write(json.dumps({"item_id": f"q{n}", "prompt": f"问题{n}：头疼发热三天，需要做什么检查？",
                                     "candidates": [{"id": "c0", "text": f"回答{n}：建议查血常规。" * 5},
                                                    {"id": "c1", "text": f"回答{n}：多喝水休息。" * 5}]},
                                    ensure_ascii=False) + "\n")
    annotators = ["bench-a@medcurate.test", "bench-b@medcurate.test"]
    timings = {}
    start = time.perf_counter()
    result = push(server, workdir=work / "wd", candidates=candidates, kind="pairwise", annotators=annotators)
    timings["push_s"] = time.perf_counter() - start

    known = server.accounts(annotators)
    user_ids = [known[email] or server.sdk.users.create(username=email.split("@")[0], email=email).id
                for email in annotators]
    tasks = {t.data["medcurate_unit"]: t.id for page in server.task_pages(result.project_id) for t in page}
    start = time.perf_counter()
    for unit_id in load_state(work / "wd")["units"]:
        base = {c: rng.choice(["A", "B", "tie"]) for c in ("safety", "professionalism", "fluency", "overall")}
        for user_id in user_ids:
            votes = dict(base)
            if rng.random() < 0.2:
                votes["safety"] = rng.choice(["A", "B", "tie"])
            server.call("annotate", server.sdk.annotations.create, id=tasks[unit_id],
                        result=build_result("pairwise", votes), completed_by=user_id)
    timings["post_annotations_s"] = time.perf_counter() - start

    start = time.perf_counter()
    pulled = pull(server, workdir=work / "wd")
    timings["pull_s"] = time.perf_counter() - start
    start = time.perf_counter()
    again = pull(server, workdir=work / "wd")
    timings["pull_again_s"] = time.perf_counter() - start
    start = time.perf_counter()
    recipe = recipe_from_dict(export_recipe(work / "wd", "bench-prefs"), base_dir=work, origin="bench")
    exported = build(recipe, store=work / "store")
    timings["export_s"] = time.perf_counter() - start
    print(json.dumps({
        "units": args.units, "annotations": pulled.report["annotations"], "queued": pulled.queued,
        "new_on_second_pull": again.new_annotations, "pairs": exported.manifest["counts"]["rows_written"],
        "safety_kappa": pulled.report["agreement"]["safety"]["cohen_kappa"],
        **{key: round(value, 2) for key, value in timings.items()},
        "pull_annotations_per_s": round(pulled.report["annotations"] / timings["pull_s"], 1),
    }, indent=1))


if __name__ == "__main__":
    main()
