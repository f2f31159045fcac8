"""What the operation selects below the current field, read from the query's syntax tree, so a
resolver can load once, for a whole page, what the fields below it will ask for.

Over-approximates on purpose: fields under `@skip`/`@include` count as selected, and a
fragment counts whatever its type condition (loading a little more is the only cost).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode


def _fields(selection_set: SelectionSetNode | None, fragments: dict[str, Any],
            seen: frozenset[str] = frozenset()) -> Iterator[FieldNode]:
    """The field nodes of a selection set, through inline fragments and fragment spreads."""
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                yield from _fields(fragment.selection_set, fragments, seen | {name})


def selected_names(info: strawberry.Info, *path: str) -> frozenset[str]:
    """Names of the fields selected at `path` below the current field, e.g.
    `selected_names(info, "edges", "node")` on a connection."""
    raw = info._raw_info
    nodes: list[FieldNode] = list(raw.field_nodes)
    for step in path:
        nodes = [f for node in nodes for f in _fields(node.selection_set, raw.fragments)
                 if f.name.value == step]
    return frozenset(f.name.value for node in nodes
                     for f in _fields(node.selection_set, raw.fragments))
