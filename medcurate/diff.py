"""Comparing two dataset versions: what changed in sources, recipe, counts and rows."""
from __future__ import annotations

import pyarrow.parquet as pq

from medcurate.schemas import canonical_json
from medcurate.store import resolve


def _flatten(value, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        flat: dict[str, str] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: canonical_json(value)}


def _ids(path) -> set[str]:
    return set(pq.read_table(path, columns=["id"]).column("id").to_pylist()) if path.exists() else set()


def diff_versions(first: str, second: str, store=None) -> str:
    a, b = resolve(first, store), resolve(second, store)
    ma, mb = a.manifest, b.manifest
    lines = [f"--- {a.ref}", f"+++ {b.ref}"]
    sources_a = {s["name"]: s for s in ma["sources"]}
    sources_b = {s["name"]: s for s in mb["sources"]}
    for name in sorted(set(sources_a) | set(sources_b)):
        sa, sb = sources_a.get(name), sources_b.get(name)
        if sa is None and sb is not None:
            lines.append(f"source {name}: added ({sb['file']}, sha256 {sb['sha256'][:12]})")
        elif sb is None:
            lines.append(f"source {name}: removed")
        elif sa is not None and sa["sha256"] != sb["sha256"]:
            lines.append(f"source {name}: content changed {sa['sha256'][:12]} -> {sb['sha256'][:12]}")
    recipe_a, recipe_b = _flatten(ma["recipe"]), _flatten(mb["recipe"])
    for key in sorted(set(recipe_a) | set(recipe_b)):
        if recipe_a.get(key) != recipe_b.get(key):
            lines.append(f"recipe {key}: {recipe_a.get(key, '(absent)')} -> {recipe_b.get(key, '(absent)')}")
    for key in ("inputs_read", "rows_written"):
        if ma["counts"][key] != mb["counts"][key]:
            lines.append(f"{key}: {ma['counts'][key]} -> {mb['counts'][key]}")
    for kind in ("rejects", "filtered"):
        ca, cb = ma["counts"][kind], mb["counts"][kind]
        for reason in sorted(set(ca) | set(cb)):
            if ca.get(reason, 0) != cb.get(reason, 0):
                lines.append(f"{kind} {reason}: {ca.get(reason, 0)} -> {cb.get(reason, 0)}")
    for split in sorted(set(ma["splits"]) | set(mb["splits"])):
        ids_a = _ids(a.path / "data" / f"{split}.parquet")
        ids_b = _ids(b.path / "data" / f"{split}.parquet")
        lines.append(f"split {split}: {len(ids_a)} -> {len(ids_b)} rows "
                     f"(+{len(ids_b - ids_a)} added, -{len(ids_a - ids_b)} removed, {len(ids_a & ids_b)} kept)")
    if a.version == b.version:
        lines.append("identical versions")
    return "\n".join(lines)
