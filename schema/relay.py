"""Relay plumbing: global IDs, keyset cursors and generic connections with `totalCount`.

Cursors are opaque to clients: base64 of a versioned key. Pages hold at most 100 nodes.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Generic, TypeVar

import strawberry
from strawberry import relay

from domain.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page
from schema.errors import BadUserInput
from schema.lookahead import selected_names

NodeT = TypeVar("NodeT")

_CURSOR_PREFIX = "c1:"
#: Keys are database integers: anything outside a signed 64-bit range names nothing.
MAX_KEY = 2**63 - 1


def encode_cursor(key: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{key}".encode()).decode()


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError(raw)
        key = int(raw[len(_CURSOR_PREFIX):])
        if abs(key) > MAX_KEY:
            raise ValueError(key)
        return key
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadUserInput("Invalid cursor: pass an endCursor you received.") from None


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if not 0 <= first <= MAX_PAGE_SIZE:
        raise BadUserInput(f"`first` must be between 0 and {MAX_PAGE_SIZE}.")
    return first


def node_id(global_id: relay.GlobalID | strawberry.ID | str, type_name: str) -> int | None:
    """The integer key behind a global ID of the expected type, or None if it is not one."""
    try:
        gid = global_id if isinstance(global_id, relay.GlobalID) else relay.GlobalID.from_id(
            str(global_id)
        )
    except Exception:
        return None
    if gid.type_name != type_name:
        return None
    try:
        key = int(gid.node_id)
    except ValueError:
        return None
    return key if 0 < key <= MAX_KEY else None


def selects(info: strawberry.Info, name: str) -> bool:
    """Whether the field being resolved selects `name` (directly or through fragments):
    lets a connection skip its COUNT when nobody asked for `totalCount`. Read off the
    syntax tree (`schema.lookahead`), not strawberry's `selected_fields`, which converts
    the whole selection below the field on every call."""
    return name in selected_names(info)


async def batched_page(info: strawberry.Info, pages: Any, counts: Any, parent: int,
                       after: int | None, first: int, extra: Any) -> Page[Any]:
    """A child list's page through the request's DataLoaders (`page_loader`,
    `count_loader` in api.context): a list of parents costs one query, not one per row;
    the COUNT runs only when `totalCount` is selected (otherwise 0, never shown)."""
    items, has_next = await pages.load((parent, after, first, extra))
    total = await counts.load((parent, extra)) if selects(info, "totalCount") else 0
    return Page(items, has_next, total)


def global_id(type_name: str, key: int) -> str:
    return str(relay.GlobalID(type_name, str(key)))


@strawberry.type(description="Where a page stands in the whole list.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo
    total_count: int

    @classmethod
    def build(cls, page: Page, to_node, key, after: int | None) -> Connection:  # type: ignore[no-untyped-def]
        edges = [Edge(cursor=encode_cursor(key(item)), node=to_node(item)) for item in page.items]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total,
        )
