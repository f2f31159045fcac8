"""The member reads of every request, in plain SQL (domain.sql): the token check and `me`
read a member by id, the staff page reads a page of members in joining order."""

from __future__ import annotations

from collections.abc import Iterable

from domain import sql
from domain.members.model import Member
from domain.members.tables import MEMBER_COLUMNS, member_of
from domain.pagination import Page

_SELECT = f"SELECT {', '.join(MEMBER_COLUMNS)} FROM member"  # noqa: S608


async def members_by_ids(ids: Iterable[int]) -> dict[int, Member]:
    keys = list(dict.fromkeys(ids))
    if not keys:
        return {}
    rows = await sql.rows(f"{_SELECT} WHERE id IN ({sql.params(len(keys))})", *keys)
    return {row["id"]: member_of(row) for row in rows}


async def members_page(after_id: int | None, first: int) -> Page[Member]:
    """All members in joining order (by id), keyset-paginated after `after_id`."""
    total = await sql.one("SELECT COUNT(*) AS n FROM member")
    rows = await sql.rows(f"{_SELECT} WHERE id > $1 ORDER BY id LIMIT $2",
                          after_id if after_id is not None else 0, first + 1)
    return Page(items=[member_of(r) for r in rows[:first]], has_next=len(rows) > first,
                total=int(total["n"]) if total else 0)
