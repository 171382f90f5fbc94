"""The dataset card (README.md of a version): an HF-style YAML header plus readable tables."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import yaml

_TASK_CATEGORY = {"instruction": "text-generation", "conversation": "text-generation",
                  "ehr": "text-generation", "preference": "text-generation"}


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (steps use it for their card sections)."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render_card(manifest: dict[str, Any]) -> str:
    counts = manifest["counts"]
    header = {
        "pretty_name": manifest["name"],
        "version": manifest["version"],
        "medcurate_version": manifest["medcurate_version"],
        "row_kind": manifest["kind"],
        "language": ["zh"],
        "license": "other",
        "license_details": manifest.get("license") or "see the sources' licences below",
        "task_categories": [_TASK_CATEGORY.get(manifest["kind"], "text-generation")],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": split, "path": f"data/{split}.parquet"} for split in manifest["splits"]]}],
        "dataset_info": {"splits": [{"name": split, "num_examples": counts["splits"][split]}
                                    for split in manifest["splits"]]},
        "counts": {"inputs_read": counts["inputs_read"], "rows_written": counts["rows_written"],
                   "rejects": counts["rejects"], "filtered": counts["filtered"]},
        "sources": [{"name": s["name"], "file": s["file"], "format": s["format"], "sha256": s["sha256"]}
                    for s in manifest["sources"]],
        "recipe": manifest["recipe"],
    }
    parts = ["---", yaml.safe_dump(header, allow_unicode=True, sort_keys=False).rstrip(), "---", "",
             f"# {manifest['name']}@{manifest['version']}", ""]
    if manifest.get("description"):
        parts += [manifest["description"], ""]
    parts += [f"Row kind: **{manifest['kind']}**. Built by medcurate {manifest['medcurate_version']}; "
              f"load it with `medcurate.store.load(\"{manifest['name']}@{manifest['version']}\")`.", ""]
    parts += ["## Splits", "", markdown_table(["split", "rows"], [[s, counts["splits"][s]] for s in manifest["splits"]]), ""]
    for note in manifest.get("split_notes", []):
        parts.append(f"- {note}")
    parts += ["## Sources", "",
              markdown_table(["name", "file", "format", "encoding", "records read", "rows", "sha256"],
                             [[s["name"], s["file"], s["format"], s.get("encoding") or "utf-8", s["records"], s["rows"],
                               f"`{s['sha256']}`"] for s in manifest["sources"]]), ""]
    parts += ["## Where every record went", "",
              f"{counts['inputs_read']} records read, {counts['rows_written']} rows written.", "",
              markdown_table(["stage", "in", "out", "dropped", "rejected", "merged", "created"],
                             [[s["stage"], s["rows_in"], s["rows_out"], _pairs(s["dropped"]), _pairs(s["rejected"]),
                               s["merged"], s["created"]] for s in counts["stages"]]), ""]
    if counts["rejects"]:
        parts += ["Rejects by reason (details in `rejects.jsonl`):", "",
                  markdown_table(["reason", "rows"], [[r, n] for r, n in counts["rejects"].items()]), ""]
    parts += ["## Quality", "", quality_section(manifest.get("stats", {}).get("quality") or {}), ""]
    for title, body in manifest.get("card_sections", []):
        parts += [f"## {title}", "", body.rstrip(), ""]
    parts += ["## Licence", "", manifest.get("license") or "Follow the licences of the sources listed above.", ""]
    return "\n".join(parts)


def quality_section(quality: dict[str, Any]) -> str:
    """Rows changed / dropped / flagged by each quality step (medcurate/quality), examples as row ids."""
    if not quality:
        return ("No quality step ran (clean_markup, near_dedupe, decontaminate): 0 rows changed, "
                "0 dropped by them.")
    table = []
    for step, info in quality.items():
        examples = info.get("examples_changed") or info.get("examples_dropped") or [
            example for entry in (info.get("evaluation_sets") or {}).values() for example in entry["examples"]]
        table.append([step, info.get("rows_in", 0), info.get("changed", 0), info.get("dropped", 0),
                      info.get("flagged", 0), ", ".join(f"`{e}`" for e in examples[:5]) or "-"])
    parts = [markdown_table(["step", "rows in", "changed", "dropped", "flagged", "example row ids"], table)]
    if "near_dedupe" in quality:
        info = quality["near_dedupe"]
        parts.append(f"near_dedupe: {info['clusters']} near-duplicate clusters (largest {info['largest_cluster']} rows; "
                     f"character {info['ngram']}-grams, Jaccard >= {info['threshold']}).")
    if "decontaminate" in quality:
        info = quality["decontaminate"]
        parts.append(markdown_table(
            ["evaluation set", "evaluation rows", f"training rows sharing a {info['ngram']}-gram", "evaluation rows hit"],
            [[name, entry["evaluation_rows"], entry["training_rows_overlapping"], entry["evaluation_rows_hit"]]
             for name, entry in info["evaluation_sets"].items()]))
    return "\n\n".join(parts)


def _pairs(counter: dict[str, int]) -> str:
    return ", ".join(f"{name} {number}" for name, number in counter.items()) or "0"
