"""The dataset card (README.md of a version): a YAML header the Hugging Face Hub accepts plus
readable tables, and the charts steps put in it.

The header uses the Hub's own keys (``license``/``license_name``/``license_link``,
``size_categories``, ``configs``, ``dataset_info`` with ``features`` and ``splits`` carrying
``num_bytes``), so ``huggingface_hub.DatasetCard`` reads it and ``datasets.load_dataset`` on
the version folder loads it without warnings; medcurate's own facts (version, counts,
sources, recipe) sit under the single ``medcurate`` key.

Charts are SVG with ``svg.fonttype: none``: text stays text, so Chinese department names
render with whatever CJK font the reader's browser has. A PNG is written beside it; with a
CJK font file (``MEDCURATE_CHART_FONT``) it carries the names too, without one the
categories are keyed (D1, D2 …) and the card's table gives the names.
"""
from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

_TASK_CATEGORY = {"instruction": "text-generation", "conversation": "text-generation",
                  "ehr": "text-generation", "preference": "text-generation"}
CHART_FONT_ENV = "MEDCURATE_CHART_FONT"
LICENSE_FILE = "LICENSE.md"
# Licence ids the Hub knows, as a recipe's ``license`` may name them.
HUB_LICENSES = {"apache-2.0", "mit", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0",
                "cc-by-nc-nd-4.0", "cc0-1.0", "odc-by", "odbl", "openrail", "gpl-3.0", "bsd-3-clause"}
_SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                    (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))


def size_category(rows: int) -> str:
    return next((label for bound, label in _SIZE_CATEGORIES if rows < bound), "1B<n<10B")


def license_fields(license_text: str, name: str) -> dict[str, str]:
    """``license`` as the Hub wants it: a known id as is, anything else as ``other`` with a
    slug name and a link to the licence file published in the version."""
    normalised = license_text.strip().lower()
    if normalised in HUB_LICENSES:
        return {"license": normalised}
    slug = re.sub(r"[^a-z0-9]+", "-", normalised).strip("-") or f"{name.lower()}-license"
    return {"license": "other", "license_name": slug[:64].strip("-"), "license_link": LICENSE_FILE}


def license_text(manifest: dict[str, Any]) -> str:
    """The licence file of a version: the recipe's licence and the sources it was built from."""
    lines = [f"# Licence of {manifest['name']}", "", manifest.get("license") or
             "No licence was given in the recipe: follow the licences of the sources below.", "", "## Sources", ""]
    lines += [f"- {s['name']} ({s.get('file', '')}), sha256 `{s.get('sha256')}`" for s in manifest.get("sources", [])]
    return "\n".join(lines) + "\n"


def arrow_features(schema) -> list[dict[str, Any]]:
    """An Arrow schema in the ``dataset_info.features`` form ``datasets`` reads from a card."""
    return [{"name": field.name, **_feature_type(field.type)} for field in schema]


def _feature_type(arrow_type) -> dict[str, Any]:
    import pyarrow as pa

    if pa.types.is_struct(arrow_type):
        return {"struct": [{"name": arrow_type.field(i).name, **_feature_type(arrow_type.field(i).type)}
                           for i in range(arrow_type.num_fields)]}
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        inner = _feature_type(arrow_type.value_type)
        return {"list": inner.get("struct", inner.get("dtype", inner))}
    names = {pa.float64(): "float64", pa.float32(): "float32", pa.bool_(): "bool"}
    return {"dtype": names.get(arrow_type, str(arrow_type))}


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (steps use it for their card sections)."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render_card(manifest: dict[str, Any]) -> str:
    counts = manifest["counts"]
    split_bytes = manifest.get("split_bytes") or {}
    dataset_info: dict[str, Any] = {"config_name": "default"}
    if manifest.get("features"):
        dataset_info["features"] = manifest["features"]
    dataset_info["splits"] = [{"name": split, "num_bytes": int(split_bytes.get(split, 0)),
                               "num_examples": counts["splits"][split]} for split in manifest["splits"]]
    dataset_info["dataset_size"] = sum(int(split_bytes.get(split, 0)) for split in manifest["splits"])
    header = {
        "pretty_name": manifest["name"],
        "language": ["zh"],
        **license_fields(manifest.get("license") or "", manifest["name"]),
        "size_categories": [size_category(counts["rows_written"])],
        "task_categories": [_TASK_CATEGORY.get(manifest["kind"], "text-generation")],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": split, "path": f"data/{split}.parquet"} for split in manifest["splits"]]}],
        "dataset_info": dataset_info,
        "medcurate": {
            "version": manifest["version"],
            "medcurate_version": manifest["medcurate_version"],
            "row_kind": manifest["kind"],
            "counts": {"inputs_read": counts["inputs_read"], "rows_written": counts["rows_written"],
                       "rejects": counts["rejects"], "filtered": counts["filtered"]},
            "sources": [{"name": s["name"], "file": s["file"], "format": s["format"], "sha256": s["sha256"]}
                        for s in manifest["sources"]],
            "recipe": manifest["recipe"],
        },
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
    parts += ["## Licence", "", manifest.get("license") or "Follow the licences of the sources listed above.",
              "", f"See [{LICENSE_FILE}]({LICENSE_FILE}).", ""]
    return "\n".join(parts)


def stacked_bar_chart(categories: Sequence[str], series: Sequence[tuple[str, Sequence[int]]], *, title: str,
                      ylabel: str, font_path: str | Path | None = None,
                      keys: Sequence[str] | None = None) -> tuple[bytes, bytes, bool]:
    """A stacked bar chart as (svg, png, png_has_names). Series labels may be Chinese.

    The SVG keeps its text as text (any browser renders the names with its own CJK font). The
    PNG needs glyphs: with ``font_path`` (or ``MEDCURATE_CHART_FONT``) pointing at a CJK font
    file it shows the names, without one it keys the series (``keys``, default D1, D2 …) and
    says so in the return.
    Both are byte-stable for the same input (no dates, fixed hash salt)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager, pyplot

    font_path = font_path or os.environ.get(CHART_FONT_ENV)
    family: list[str] = ["DejaVu Sans"]
    if font_path and Path(font_path).is_file():
        font_manager.fontManager.addfont(str(font_path))
        family = [font_manager.FontProperties(fname=str(font_path)).get_name(), "DejaVu Sans"]
    png_has_names = len(family) > 1
    keys = keys or [f"D{index + 1}" for index in range(len(series))]
    keyed = [(label if png_has_names else key, values) for key, (label, values) in zip(keys, series, strict=True)]
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "medcurate", "font.family": "sans-serif",
                                "font.sans-serif": [*family, "Noto Sans CJK SC", "Source Han Sans SC",
                                                    "Microsoft YaHei", "PingFang SC"]}):
        svg = _draw(categories, series, title, ylabel, "svg", pyplot)
    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": family}):
        png = _draw(categories, keyed, title, ylabel, "png", pyplot)
    return svg, png, png_has_names


def _draw(categories, series, title: str, ylabel: str, fmt: str, pyplot) -> bytes:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    bottoms = [0] * len(categories)
    colours = pyplot.get_cmap("tab20")
    for index, (label, values) in enumerate(series):
        axes.bar(list(categories), list(values), bottom=bottoms, label=label, color=colours(index % 20))
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(fontsize=7, ncol=2, loc="upper right")
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        figure.tight_layout()
        metadata = {"Date": None, "Creator": None} if fmt == "svg" else {"Software": None}
        figure.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


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
