"""The unit of work shared by every use case that moves points (ledger, rewards, later
partners): run the work in one transaction, save the books it opened, retry once when a
concurrent twin won a unique index, and answer replays of an idempotency key first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError, TransactionManagementError
from tortoise.transactions import in_transaction

from domain import sql
from domain.errors import DomainError, ErrorCode
from domain.ledger.book import Book, lock_balance, open_book
from domain.ledger.tables import IdempotencyRow, LedgerEntryRow, PurchaseRow
from domain.ledger.values import (
    Balance,
    Change,
    Entry,
    Idempotency,
    Outcome,
    Purchase,
    check_key,
)
from domain.members.model import Member, MemberStatus
from domain.members.tables import member_of

Work = Callable[[], Awaitable[tuple[dict[str, Any], list[Book]]]]


async def run_once_idempotent(work: Work) -> tuple[dict[str, Any], list[Book], bool]:
    """Run `work` in a transaction; once more if a concurrent twin won a unique index."""
    for attempt in range(3):
        try:
            async with in_transaction():
                result, books = await work()
                for book in books:  # also on a replay: settling may have moved points
                    await book.save()
            return result, books, bool(result.get("replayed"))
        except (IntegrityError, TransactionManagementError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def replay(idem: Idempotency) -> Outcome | None:
    """A request whose key was already used is answered before anything else is checked:
    with the first result (even if the clock or the program has moved since), or with
    IDEMPOTENCY_CONFLICT. The claim inside the transaction still settles races."""
    check_key(idem.key)
    row = await IdempotencyRow.filter(scope=idem.scope, key=idem.key.strip()).first()
    if row is None or not row.result:
        return None
    if row.request_hash != idem.request_hash:
        raise DomainError(ErrorCode.IDEMPOTENCY_CONFLICT,
                          "This idempotencyKey was used for a different request.",
                          ["idempotencyKey"])
    return await outcome_of(dict(row.result), [], True)


@dataclass
class ActiveMember:
    """What a write needs of the member it acts for (`tier_id` moves when it requalifies);
    `row`: the whole member as read under the balance's lock, when asked for
    (`open_active_book`), for the write's payload to show without reading it again."""

    id: int
    tier_id: int | None
    row: Member | None = None


async def active_member(member_id: int, field: str = "memberId") -> ActiveMember:
    found = await sql.one("SELECT status, tier_id FROM member WHERE id = $1", member_id)
    if found is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such member.", [field])
    return _active(member_id, found, field)


async def open_active_book(member_id: int, now: datetime, *, whole_member: bool = False
                           ) -> tuple[ActiveMember, Book]:
    """`active_member`, then `open_book`: the member is read with its balance row (one
    statement), unless it has none yet; `whole_member`: all of it (`ActiveMember.row`)."""
    locked = await lock_balance(member_id, with_member=True, whole_member=whole_member)
    if locked is None:
        member = await active_member(member_id)
    else:
        member = _active(member_id, locked, "memberId")
        if whole_member:
            member.row = member_of({**locked, "id": member_id})
    return member, await open_book(member_id, now, locked=locked)


def _active(member_id: int, found: dict[str, Any], field: str) -> ActiveMember:
    if found["status"] != MemberStatus.ACTIVE.value:
        raise DomainError(ErrorCode.INVALID_STATE, "The member is not active.", [field])
    return ActiveMember(member_id, found["tier_id"])


async def outcome_of(result: dict[str, Any], books: list[Book], replayed: bool, *,
                     purchase: Purchase | None = None, member: Member | None = None
                     ) -> Outcome:
    """The Outcome of a use case from what it wrote: entries and `purchase` as they are in
    memory (read back only for a replay, which wrote nothing)."""
    written = {e.id: e for b in books for e in b.entries}
    ids = list(result.get("entries", []))
    if all(i in written for i in ids):
        entries = tuple(sorted((written[i] for i in ids), key=lambda e: e.id))
    else:
        entries = tuple(Entry.of(r) for r in
                        await LedgerEntryRow.filter(id__in=ids).order_by("id"))
    changes = tuple(Change(b.member_id, Balance.of(b.row), tuple(b.entries))
                    for b in books if b.changed)
    if purchase is None and result.get("purchase"):
        purchase = Purchase.of(await PurchaseRow.get(id=result["purchase"]))
    return Outcome(entries=entries, changes=changes, replayed=replayed, purchase=purchase,
                   result=result,
                   points_reversed=int(result.get("points_reversed", 0)),
                   shortfall=int(result.get("shortfall", 0)),
                   tier_changes=tuple(c for b in books for c in b.tier_changes),
                   member=member)
