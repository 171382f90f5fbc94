"""One YAML dialect for every recipe medcurate reads (build recipes and training recipes).

Why a dialect of our own rather than ``yaml.safe_load``:
- only true/false are booleans (``save_strategy: no`` stays the string "no"), and ``1e-4`` is a
  float (PyYAML's YAML 1.1 reads both otherwise);
- a duplicate key is an error: with two ``steps:`` blocks PyYAML keeps the last one silently,
  which once dropped a ``deid`` step from a recipe;
- alias expansion is bounded: a few hundred bytes of nested aliases ("billion laughs") would
  otherwise expand to hundreds of megabytes in a manifest.
"""
from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from medcurate.errors import MedcurateError

MAX_EXPANDED_NODES = 100_000
"""Upper bound on the nodes a document may expand to once aliases are followed."""


class RecipeLoader(yaml.SafeLoader):
    """Safe loader with YAML 1.2-style booleans and floats, duplicate keys refused."""

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            self.flatten_mapping(node)
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
                try:
                    hash(key)
                except TypeError:
                    continue
                if key in seen:
                    raise ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"duplicate key {key!r} (first at line {seen[key].line + 1})", key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


RecipeLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
RecipeLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                   list("tTfF"))
RecipeLoader.add_implicit_resolver("tag:yaml.org,2002:float",
                                   re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
                                   list("-+0123456789."))


def _expanded_size(node: Node, memo: dict[int, int], limit: int) -> int:
    """Nodes the document has once every alias is expanded (aliases share node objects)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # guards recursive aliases
    if isinstance(node, ScalarNode):
        size = 1
    elif isinstance(node, SequenceNode):
        size = 1 + sum(_expanded_size(child, memo, limit) for child in node.value)
    elif isinstance(node, MappingNode):
        size = 1 + sum(_expanded_size(k, memo, limit) + _expanded_size(v, memo, limit) for k, v in node.value)
    else:
        size = 1
    memo[key] = min(size, limit + 1)
    return memo[key]


def parse_yaml(text: str, *, origin: str | None = None) -> Any:
    """Parse one YAML document in medcurate's dialect; errors name the origin and line."""
    loader = RecipeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES:
            raise MedcurateError(f"YAML expands to more than {MAX_EXPANDED_NODES} nodes through aliases",
                                 file=origin)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise MedcurateError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", file=origin,
                             line=(mark.line + 1) if mark else None) from None
    finally:
        loader.dispose()
