"""The ``kg_qa`` step: triple rows -> one knowledge graph -> templated question/answer rows.

Every input triple is accounted for: removed by the graph (``empty_entity``, ``self_loop``,
``duplicate_triple``), dropped as ``no_template`` when its relation has no template for its
subject (also counted per relation in the card), or consumed into QA rows (``merged``), after
which the QA rows are ``created``.
"""
from __future__ import annotations

from collections import Counter

from medcurate.card import markdown_table
from medcurate.errors import MedcurateError
from medcurate.kg import sources  # noqa: F401  (registers the KG source formats)
from medcurate.kg.graph import build_graph, graph_stats
from medcurate.kg.render import filled, index_edges, render, rows_per_template
from medcurate.kg.templates import load_templates
from medcurate.pipeline import Row, StepContext, register_step
from medcurate.quality.text import has_cjk

# Treatment "answers" that only name a category: not useful as an answer, skipped and counted.
GENERIC_TREATMENTS = frozenset({"药物治疗", "支持性治疗", "支持治疗", "手术治疗", "对症治疗", "对症支持治疗", "一般治疗",
                                "综合治疗", "中医治疗", "西医治疗", "中西医结合治疗", "康复治疗", "病因治疗", "其他治疗",
                                "非手术治疗", "保守治疗", "治疗"})
TRUNCATION = "…"


def _resolve_truncated(rows: list[Row], ctx: StepContext) -> list[Row]:
    """Items cut with ``…`` by the scrape: kept as their stem when the stem is a complete name stated
    elsewhere in the graph, or completed when exactly one known name starts with it; dropped as
    ``truncated_item`` otherwise."""
    known = {str(row.get(end) or "") for row in rows for end in ("head", "tail")} - {""}
    known = {name for name in known if not name.endswith(TRUNCATION)}
    by_prefix: dict[str, list[str]] = {}
    for name in known:
        for length in range(2, len(name)):
            by_prefix.setdefault(name[:length], []).append(name)
    kept: list[Row] = []
    for row in rows:
        tail = str(row.get("tail") or "")
        if tail.endswith(TRUNCATION):
            stem = tail[: -len(TRUNCATION)].strip()
            completions = by_prefix.get(stem, [])
            if stem in known:
                row["tail"] = stem
            elif len(completions) == 1:
                row["tail"] = completions[0]
            else:
                ctx.drop(row, "truncated_item")
                continue
        kept.append(row)
    return kept


def _skip_generic_treatments(rows: list[Row], ctx: StepContext) -> list[Row]:
    kept = []
    for row in rows:
        if row.get("relation") == "cure_way" and str(row.get("tail") or "").strip() in GENERIC_TREATMENTS:
            ctx.drop(row, "generic_treatment")
        else:
            kept.append(row)
    return kept


def _refuse_english_over_chinese_graph(graph) -> None:
    names = list(graph.nodes)
    chinese = sum(1 for name in names if has_cjk(str(name)))
    if names and chinese * 2 > len(names):
        raise MedcurateError(f"lang en over a Chinese-only graph: {chinese} of {len(names)} entity names are Chinese, "
                             "so every English row would mix languages; use lang zh, or a source that carries "
                             "English names", field="steps.kg_qa.lang")


def fill_qa_rows(rows: list[Row], ctx: StepContext) -> list[Row]:
    """The row-local phase of ``kg_qa`` (run in batches, in parallel): the planned QA rows' question
    and answer texts filled in from their templates."""
    return [filled(row) for row in rows]


@register_step("kg_qa", reads=("head", "relation", "tail", "head_type", "tail_type", "department"),
               writes=("instruction", "query", "answer", "task", "template_id", "department", "triples"),
               complete=fill_qa_rows)
def kg_qa(rows: list[Row], ctx: StepContext, lang: str = "zh", cap: int | None = 10, per_triple: bool = False,
          two_hop: bool = True, max_per_entity: int | None = None, templates: list[str] | str | None = None,
          two_hop_min_support: int = 2) -> list[Row]:
    """Knowledge-graph triples -> QA rows through templates/kg/*.yaml (ClinicalGPT cMedQA-KG).

    One QA per (subject, relation) listing its objects (at most ``cap``, seeded sample), or one per
    triple with ``per_triple``; two-hop questions where the middle entity is unique; ``max_per_entity``
    caps the rows per subject; ``templates`` adds folders of user templates. Generic treatment categories
    (药物治疗, 手术治疗 …) are dropped as ``generic_treatment``; truncated items are kept only when they
    resolve to a known name; drug -> disease two-hop questions need ``two_hop_min_support`` sources;
    ``lang: en`` over a graph whose names are Chinese is refused.

    The graph makes every choice in this whole pass; the texts are filled in by the row-local
    phase ``fill_qa_rows``."""
    extra = [templates] if isinstance(templates, str) else list(templates or [])
    template_set = load_templates(lang, [ctx.resolve_path(folder) for folder in extra])
    rows = _skip_generic_treatments(_resolve_truncated(rows, ctx), ctx)
    built = build_graph(rows)
    graph = built.graph
    if lang == "en":
        _refuse_english_over_chinese_graph(graph)
    for position, reason in sorted(built.removed.items()):
        ctx.drop(rows[position], reason)
    covered: Counter = Counter()
    skipped: Counter = Counter()
    kept = 0
    for (head, _tail, relation), position in built.edge_rows.items():
        if template_set.for_subject(relation, graph.nodes[head]["type"]):
            covered[relation] += 1
            kept += 1
        else:
            skipped[relation] += 1
            ctx.drop(rows[position], "no_template")
    result = render(graph, template_set, lang=lang, seed=ctx.seed, cap=cap, per_triple=per_triple, two_hop=two_hop,
                    max_per_entity=max_per_entity, index=index_edges(graph), two_hop_min_support=int(two_hop_min_support),
                    fill_texts=False)
    ctx.merged(kept)
    ctx.created(len(result.rows))
    _card(ctx, graph, built, covered, skipped, result, lang)
    return result.rows


def _card(ctx: StepContext, graph, built, covered: Counter, skipped: Counter, result, lang: str) -> None:
    stats = graph_stats(graph)
    removed = Counter(built.removed.values())
    per_template = rows_per_template(result.rows)
    ctx.card.stats["kg"] = {
        **stats, "lang": lang, "aliases_merged": built.aliases_merged, "triples_removed": dict(removed),
        "triples_covered": dict(covered.most_common()), "triples_without_template": dict(skipped.most_common()),
        "relations_without_template": sorted(skipped), "rows_per_template": per_template,
        "qa_rows": len(result.rows), "capped_lists": result.capped_lists, "objects_left_out": result.objects_left_out,
        "capped_by_max_per_entity": result.capped_by_max_per_entity, "two_hop_ambiguous": result.two_hop_ambiguous,
        "two_hop_unsupported": result.two_hop_unsupported, "synonyms_left_out": result.synonyms_left_out,
        "treatment_negations_left_out": result.treatment_negations_left_out,
    }
    degree = stats["degree"]
    ctx.card.add_section("Knowledge graph", "\n\n".join([
        f"{stats['nodes']} nodes, {stats['edges']} edges; degree min {degree['min']}, median {degree['median']}, "
        f"max {degree['max']}, mean {degree['mean']}; {built.aliases_merged} alias mentions merged.",
        markdown_table(["node type", "nodes"], list(stats["nodes_by_type"].items())),
        markdown_table(["edge type", "edges"], list(stats["edges_by_type"].items())),
        markdown_table(["removed triples", "count"], sorted(removed.items())) if removed else "No triple removed."]))
    relations = sorted(set(covered) | set(skipped), key=lambda r: (-(covered[r] + skipped[r]), r))
    coverage = markdown_table(["relation", "triples covered", "triples without template"],
                              [[r, covered[r], skipped[r]] for r in relations])
    missing = ", ".join(sorted(skipped)) or "none"
    ctx.card.add_section("KG template coverage", f"{coverage}\n\nRelations without a template: {missing}.")
    ctx.card.add_section("KG QA rows per template", markdown_table(["template", "rows"], list(per_template.items())))
