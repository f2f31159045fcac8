"""The ledger under concurrent requests, through the GraphQL API (the `gql` fixture).

Requests are fired at once with asyncio.gather against the ASGI app. On PostgreSQL the
connection pool lets the transactions really overlap, so the balance row lock
(`SELECT ... FOR UPDATE` in `open_book`) is what keeps them apart; SQLite serialises writers.
After each scenario the ledger is checked straight against the tables
(`assert_ledger_consistent`: balance == entries == lots, sequences 1..N, hash chain).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from typing import Any

import asyncpg
import pytest

from api.settings import Settings
from domain.access import Role
from tests.conftest import GraphQLClient
from tests.support.ledger_checks import assert_ledger_consistent

BOUND = 15.0  # seconds: a deadlock or a stuck request fails the test instead of hanging it

USER_ERRORS = "userErrors { field message code }"

REGISTER = f"""
mutation Register($input: RegisterMemberInput!) {{
  registerMember(input: $input) {{ member {{ id }} {USER_ERRORS} }}
}}"""

PURCHASE = f"""
mutation Purchase($input: RecordPurchaseInput!) {{
  recordPurchase(input: $input) {{
    purchase {{ id orderId pointsEarned }}
    entries {{ id kind points }}
    {USER_ERRORS}
  }}
}}"""

REFUND = f"""
mutation Refund($input: RefundPurchaseInput!) {{
  refundPurchase(input: $input) {{ pointsReversed shortfall {USER_ERRORS} }}
}}"""

TRANSFER = f"""
mutation Transfer($input: TransferPointsInput!) {{
  transferPoints(input: $input) {{
    fromMember {{ id }}
    entries {{ kind points }}
    {USER_ERRORS}
  }}
}}"""

POINTS = """
query Points($id: ID!) {
  member(id: $id) {
    points { available pending lifetimeEarned lifetimeSpent }
    all: ledger(first: 1) { totalCount }
    earn: ledger(first: 1, kind: [EARN]) { totalCount }
    transfers: ledger(first: 100, kind: [TRANSFER_IN, TRANSFER_OUT]) {
      totalCount edges { node { kind points } }
    }
  }
  verifyLedger(memberId: $id) { ok entriesChecked firstBrokenEntryId }
}"""


async def bounded(*calls: Awaitable[Any]) -> list[Any]:
    """All `calls` at once; fails (instead of hanging) if they do not finish within BOUND."""
    return await asyncio.wait_for(asyncio.gather(*calls), BOUND)


def member_key(global_id: str) -> int:
    from schema.relay import node_id

    key = node_id(global_id, "Member")
    assert key is not None, global_id
    return int(key)


async def new_member(gql: GraphQLClient, email: str) -> str:
    body = await gql.as_admin(REGISTER, {"input": {"email": email}})
    payload = body["registerMember"]
    assert payload["userErrors"] == [], payload
    return payload["member"]["id"]  # type: ignore[no-any-return]


class Ledger:
    """The calls each scenario makes, with the caller's token."""

    def __init__(self, gql: GraphQLClient) -> None:
        self.gql = gql
        self.integration = gql.token(Role.INTEGRATION)

    async def purchase(self, member_id: str, order_id: str, amount: str, key: str
                       ) -> dict[str, Any]:
        variables = {"input": {"memberId": member_id, "orderId": order_id, "amount": amount,
                               "idempotencyKey": key}}
        data = await self.gql.ok(PURCHASE, variables, self.integration)
        return data["recordPurchase"]  # type: ignore[no-any-return]

    async def fund(self, member_id: str, points: int, order_id: str) -> None:
        payload = await self.purchase(member_id, order_id, str(points), f"fund-{order_id}")
        assert payload["userErrors"] == [], payload
        assert payload["purchase"]["pointsEarned"] == points

    async def refund(self, order_id: str, amount: str | None, key: str) -> dict[str, Any]:
        variables = {"input": {"orderId": order_id, "amount": amount, "idempotencyKey": key}}
        data = await self.gql.ok(REFUND, variables, self.integration)
        return data["refundPurchase"]  # type: ignore[no-any-return]

    async def transfer(self, from_id: str, to_id: str, points: int, key: str
                       ) -> dict[str, Any]:
        token = self.gql.token(Role.MEMBER, member_id=member_key(from_id))
        variables = {"input": {"toMemberId": to_id, "points": points, "idempotencyKey": key}}
        data = await self.gql.ok(TRANSFER, variables, token)
        return data["transferPoints"]  # type: ignore[no-any-return]

    async def points(self, member_id: str) -> dict[str, Any]:
        data = await self.gql.as_admin(POINTS, {"id": member_id})
        member = data["member"]
        assert data["verifyLedger"]["ok"] is True, data["verifyLedger"]
        assert data["verifyLedger"]["entriesChecked"] == member["all"]["totalCount"]
        return member  # type: ignore[no-any-return]


def codes(payloads: list[dict[str, Any]]) -> Counter[str]:
    """How many payloads succeeded ("ok") or failed with each user-error code."""
    out: Counter[str] = Counter()
    for p in payloads:
        errors = p["userErrors"]
        assert len(errors) <= 1, errors
        out[errors[0]["code"] if errors else "ok"] += 1
    return out


async def test_concurrent_purchases_for_one_member_all_land(gql: GraphQLClient) -> None:
    # given one member with nothing
    ledger = Ledger(gql)
    member = await new_member(gql, "busy@example.com")

    # when 50 purchases of 10 for that member arrive at once
    payloads = await bounded(*(ledger.purchase(member, f"order-{i}", "10", f"key-{i}")
                               for i in range(50)))

    # then every one succeeds with its own purchase and one EARN entry of 10
    assert codes(payloads) == {"ok": 50}
    assert sorted(p["purchase"]["orderId"] for p in payloads) == sorted(
        f"order-{i}" for i in range(50))
    assert len({p["purchase"]["id"] for p in payloads}) == 50
    assert all([(e["kind"], e["points"]) for e in p["entries"]] == [("EARN", 10)]
               for p in payloads)
    # and the balance is exactly their sum, with no lost update
    points = await ledger.points(member)
    assert points["points"] == {"available": 500, "pending": 0, "lifetimeEarned": 500,
                                "lifetimeSpent": 0}
    assert points["earn"]["totalCount"] == 50
    assert points["all"]["totalCount"] == 50
    await assert_ledger_consistent(member_key(member))


async def test_concurrent_transfers_never_overdraw(gql: GraphQLClient) -> None:
    # given a sender with 200 points and a recipient with none
    ledger = Ledger(gql)
    sender = await new_member(gql, "sender@example.com")
    recipient = await new_member(gql, "recipient@example.com")
    await ledger.fund(sender, 200, "fund-sender")

    # when the sender fires 50 transfers of 10 at once (500 wanted, 200 there)
    payloads = await bounded(*(ledger.transfer(sender, recipient, 10, f"gift-{i}")
                               for i in range(50)))

    # then exactly 20 go through and 30 are refused for want of points, changing nothing
    assert codes(payloads) == {"ok": 20, "INSUFFICIENT_POINTS": 30}
    for p in payloads:
        if p["userErrors"]:
            assert p["userErrors"][0]["field"] == ["input", "points"], p
            assert (p["fromMember"], p["entries"]) == (None, []), p
        else:
            assert p["fromMember"] == {"id": sender}
            assert [(e["kind"], e["points"]) for e in p["entries"]] == [("TRANSFER_OUT", -10)]
    sent = await ledger.points(sender)
    got = await ledger.points(recipient)
    assert sent["points"] == {"available": 0, "pending": 0, "lifetimeEarned": 200,
                              "lifetimeSpent": 200}
    assert got["points"] == {"available": 200, "pending": 0, "lifetimeEarned": 200,
                             "lifetimeSpent": 0}
    assert sent["transfers"]["totalCount"] == 20
    assert all(e["node"] == {"kind": "TRANSFER_OUT", "points": -10}
               for e in sent["transfers"]["edges"])
    assert got["transfers"]["totalCount"] == 20
    assert all(e["node"] == {"kind": "TRANSFER_IN", "points": 10}
               for e in got["transfers"]["edges"])
    await assert_ledger_consistent(member_key(sender))
    await assert_ledger_consistent(member_key(recipient))


async def test_concurrent_replays_of_one_key_write_once(gql: GraphQLClient) -> None:
    # given a member
    ledger = Ledger(gql)
    member = await new_member(gql, "replayed@example.com")

    # when the same purchase with the same idempotency key arrives 20 times at once
    payloads = await bounded(*(ledger.purchase(member, "order-once", "25", "same-key")
                               for _ in range(20)))

    # then every caller gets the first result: one purchase, one EARN entry
    assert codes(payloads) == {"ok": 20}
    assert len({p["purchase"]["id"] for p in payloads}) == 1
    assert all(p["purchase"] == payloads[0]["purchase"] for p in payloads)
    assert payloads[0]["purchase"]["orderId"] == "order-once"
    assert payloads[0]["purchase"]["pointsEarned"] == 25
    assert all(p["entries"] == payloads[0]["entries"] for p in payloads)
    assert [(e["kind"], e["points"]) for e in payloads[0]["entries"]] == [("EARN", 25)]
    points = await ledger.points(member)
    assert points["points"]["available"] == 25
    assert points["earn"]["totalCount"] == 1
    assert points["all"]["totalCount"] == 1
    await assert_ledger_consistent(member_key(member))


async def test_concurrent_duplicates_of_one_order_write_once(gql: GraphQLClient) -> None:
    # given a member
    ledger = Ledger(gql)
    member = await new_member(gql, "duplicated@example.com")

    # when one order id arrives 20 times at once, each under its own idempotency key
    payloads = await bounded(*(ledger.purchase(member, "order-dup", "25", f"key-{i}")
                               for i in range(20)))

    # then one is recorded and the 19 others are ALREADY_EXISTS on orderId
    assert codes(payloads) == {"ok": 1, "ALREADY_EXISTS": 19}
    for p in payloads:
        if p["userErrors"]:
            assert p["userErrors"][0]["field"] == ["input", "orderId"], p
            assert (p["purchase"], p["entries"]) == (None, []), p
    points = await ledger.points(member)
    assert points["points"]["available"] == 25
    assert points["earn"]["totalCount"] == 1
    assert points["all"]["totalCount"] == 1
    await assert_ledger_consistent(member_key(member))


async def test_concurrent_twins_across_members_are_settled_by_unique_indexes(
        gql: GraphQLClient) -> None:
    # Here the twins lock different balance rows, so nothing serialises them but the unique
    # indexes on (caller, idempotency key) and on order id: the loser rolls back and retries.
    ledger = Ledger(gql)
    members = [await new_member(gql, f"twin-{i}@example.com") for i in range(10)]

    # when one idempotency key is used at once for ten different purchases (one per member)
    same_key = await bounded(*(ledger.purchase(m, f"keyed-{i}", "10", "shared-key")
                               for i, m in enumerate(members)))
    # and one order id is recorded at once for ten members, under keys of their own
    same_order = await bounded(*(ledger.purchase(m, "shared-order", "20", f"own-key-{i}")
                                 for i, m in enumerate(members)))

    # then one of each wins, and the others are told why, with nothing written for them
    assert codes(same_key) == {"ok": 1, "IDEMPOTENCY_CONFLICT": 9}
    assert codes(same_order) == {"ok": 1, "ALREADY_EXISTS": 9}
    key_winner = next(i for i, p in enumerate(same_key) if not p["userErrors"])
    order_winner = next(i for i, p in enumerate(same_order) if not p["userErrors"])
    for i, p in enumerate(same_key):
        if i != key_winner:
            assert p["userErrors"][0]["field"] == ["input", "idempotencyKey"], p
    for i, p in enumerate(same_order):
        if i != order_winner:
            assert p["userErrors"][0]["field"] == ["input", "orderId"], p
    for i, m in enumerate(members):
        expected = 10 * (i == key_winner) + 20 * (i == order_winner)
        points = await ledger.points(m)
        assert points["points"]["available"] == expected, (i, points)
        assert points["earn"]["totalCount"] == (i == key_winner) + (i == order_winner)
        await assert_ledger_consistent(member_key(m))


async def test_concurrent_refunds_of_one_order_never_take_back_twice(
        gql: GraphQLClient) -> None:
    # given a purchase of 100 that earned 100 points
    ledger = Ledger(gql)
    member = await new_member(gql, "refunds@example.com")
    await ledger.fund(member, 100, "order-refunded")

    # when four partial refunds of 30 arrive at once, then three whole-order refunds at once
    partial = await bounded(*(ledger.refund("order-refunded", "30", f"part-{i}")
                              for i in range(4)))
    whole = await bounded(*(ledger.refund("order-refunded", None, f"rest-{i}")
                            for i in range(3)))

    # then three partials fit (90 of 100) and the fourth is refused, being more than is left
    assert codes(partial) == {"ok": 3, "INVALID_INPUT": 1}
    assert sorted((p["pointsReversed"], p["shortfall"]) for p in partial) == [
        (0, 0), (30, 0), (30, 0), (30, 0)]
    # and the rest (10) is refunded once; the order is then fully refunded
    assert codes(whole) == {"ok": 1, "INVALID_STATE": 2}
    assert sorted(p["pointsReversed"] for p in whole) == [0, 0, 10]
    points = await ledger.points(member)
    assert points["points"] == {"available": 0, "pending": 0, "lifetimeEarned": 0,
                                "lifetimeSpent": 0}
    assert points["all"]["totalCount"] == 1 + 3 + 1  # the EARN and four CLAWBACKs
    await assert_ledger_consistent(member_key(member))


async def test_transfers_both_ways_at_once_do_not_deadlock(gql: GraphQLClient) -> None:
    # given two members with 100 points each
    ledger = Ledger(gql)
    a = await new_member(gql, "alice@example.com")
    b = await new_member(gql, "bob@example.com")
    await ledger.fund(a, 100, "fund-a")
    await ledger.fund(b, 100, "fund-b")

    # when each sends the other 20 transfers of 3 at once, interleaved
    calls = []
    for i in range(20):
        calls.append(ledger.transfer(a, b, 3, f"a-to-b-{i}"))
        calls.append(ledger.transfer(b, a, 5, f"b-to-a-{i}"))
    payloads = await bounded(*calls)  # a lock-order deadlock fails or times out here

    # then all 40 succeed (neither can run dry: 100 - 20*3 >= 0) and the totals add up
    assert codes(payloads) == {"ok": 40}
    pa, pb = (await ledger.points(a))["points"], (await ledger.points(b))["points"]
    assert pa["available"] == 100 - 20 * 3 + 20 * 5 == 140
    assert pb["available"] == 100 - 20 * 5 + 20 * 3 == 60
    assert pa["available"] + pb["available"] == 200
    assert (pa["pending"], pb["pending"]) == (0, 0)
    await assert_ledger_consistent(member_key(a))
    await assert_ledger_consistent(member_key(b))


async def test_a_debit_waits_for_the_balance_row_lock(gql: GraphQLClient, settings: Settings,
                                                     stack: str) -> None:
    if stack != "postgres":
        pytest.skip("row locks are a PostgreSQL matter: SQLite serialises whole writers")
    # given a sender with 50 points and a recipient
    ledger = Ledger(gql)
    sender = await new_member(gql, "locked@example.com")
    recipient = await new_member(gql, "waiting@example.com")
    await ledger.fund(sender, 50, "fund-locked")

    # and another session holding the sender's balance row lock
    url = settings.database_url.replace("postgres://", "postgresql://", 1)
    conn = await asyncpg.connect(url)
    task: asyncio.Task[dict[str, Any]] | None = None
    try:
        tx = conn.transaction()
        await tx.start()
        locked = await conn.fetchrow(
            "SELECT member_id, available FROM balance WHERE member_id = $1 FOR UPDATE",
            member_key(sender))
        assert locked is not None and locked["available"] == 50

        # when the sender transfers meanwhile
        task = asyncio.create_task(ledger.transfer(sender, recipient, 30, "while-locked"))
        done, _ = await asyncio.wait({task}, timeout=0.5)

        # then the request does not complete: its book's opening read of the balance row
        # (FOR UPDATE, before anything is read or written) waits for our lock
        assert not done, task.result()
        for _ in range(100):  # (on a loaded machine it may reach the lock only later)
            # pg_stat_activity is read once per transaction and kept: read it afresh, or
            # a later poll shows the query the request was running at the first one
            await conn.execute("SELECT pg_stat_clear_snapshot()")
            blocked = await conn.fetch(
                "SELECT query FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                conn.get_server_pid())
            if blocked or task.done():
                break
            await asyncio.sleep(0.1)
        assert len(blocked) == 1, blocked
        waiting = " ".join(blocked[0]["query"].upper().replace('"', "").split())
        assert waiting.startswith("SELECT") and "FROM BALANCE" in waiting, waiting
        assert waiting.endswith("FOR UPDATE"), waiting

        # and once the lock is released (nothing changed under it) it completes
        await tx.rollback()
        payload = await asyncio.wait_for(task, 10)
    finally:
        if task is not None and not task.done():  # an assertion failed: leave nothing behind
            task.cancel()
        await conn.close()  # also ends the transaction if it is still open
    assert payload["userErrors"] == [], payload
    assert [(e["kind"], e["points"]) for e in payload["entries"]] == [("TRANSFER_OUT", -30)]
    assert (await ledger.points(sender))["points"]["available"] == 20
    assert (await ledger.points(recipient))["points"]["available"] == 30
    await assert_ledger_consistent(member_key(sender))
    await assert_ledger_consistent(member_key(recipient))
