"""Keyset pages of many parents in one statement, for DataLoaders (a list of members, each
with its ledger; a list of tickets, each with its messages).

One keyset scan per parent (`WHERE parent = ? [AND key < ?] ORDER BY key LIMIT n + 1`),
glued with UNION ALL: each scan uses the (parent, key) index, so the cost follows the page
size and the number of parents, never the length of anyone's history, and the number of
statements stays one however many parents a page lists. Plain SQL because the ORM has no
UNION; rows go through the model (`_init_from_db`), so values are typed as usual, unless
the caller asks for plain columns (a hot path that maps them itself).
Only the model's own table and column names are spliced into the text; every value is a
parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from tortoise.functions import Count
from tortoise.models import Model

M = TypeVar("M", bound=Model)


async def pages_per_parent(model: type[M], parent: str, parents: Sequence[int], key: str, *,
                           after: int | None, first: int, newest_first: bool,
                           where: Mapping[str, Sequence[Any]] | None = None,
                           columns: Sequence[str] | None = None
                           ) -> dict[int, tuple[list[Any], bool]]:
    """Per parent id: up to `first` rows after the cursor `after`, and whether more follow.
    `where` adds `column IN (values)` conditions. The rows are model instances, or with
    `columns` (which must include `parent` and `key`) plain dicts of those columns, as the
    driver gives them (domain.sql), for hot paths that skip the model."""
    ids = list(dict.fromkeys(parents))
    if not ids:
        return {}
    meta = model._meta
    db = meta.db
    sqlite = db.capabilities.dialect == "sqlite"
    selected = ", ".join(f'"{c}"' for c in (columns or meta.db_fields))
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return "?" if sqlite else f"${len(params)}"

    direction, before = ("DESC", "<") if newest_first else ("ASC", ">")
    parts = []
    for n, parent_id in enumerate(ids):
        cond = f'"{parent}" = {param(parent_id)}'
        if after is not None:
            cond += f' AND "{key}" {before} {param(after)}'
        for column, values in (where or {}).items():
            cond += f' AND "{column}" IN ({", ".join(param(v) for v in values)})'
        parts.append(f'SELECT * FROM (SELECT {selected} FROM "{meta.db_table}" '  # noqa: S608
                     f'WHERE {cond} ORDER BY "{key}" {direction} LIMIT {param(first + 1)}) '
                     f"AS p{n}")
    _, rows = await db.execute_query(" UNION ALL ".join(parts), params)
    found: dict[int, list[Any]] = {i: [] for i in ids}
    if columns:
        for row in rows:
            found[row[parent]].append(dict(row))
    else:
        for row in rows:
            instance = model._init_from_db(**dict(row))
            found[getattr(instance, parent)].append(instance)
    pages = {}
    for parent_id, items in found.items():
        if columns:
            items.sort(key=lambda r: r[key], reverse=newest_first)
        else:
            items.sort(key=lambda r: getattr(r, key), reverse=newest_first)
        pages[parent_id] = (items[:first], len(items) > first)
    return pages


async def counts_per_parent(model: type[Model], parent: str, parents: Sequence[int], *,
                            where: Mapping[str, Sequence[Any]] | None = None) -> dict[int, int]:
    """Per parent id: how many rows it has (matching `where`), in one grouped query."""
    ids = list(dict.fromkeys(parents))
    qs = model.filter(**{f"{parent}__in": ids})
    for column, values in (where or {}).items():
        qs = qs.filter(**{f"{column}__in": list(values)})
    rows = await qs.group_by(parent).annotate(n=Count("id")).values_list(parent, "n")
    counts = dict.fromkeys(ids, 0)
    counts.update({p: n for p, n in rows})  # type: ignore[misc]
    return counts
