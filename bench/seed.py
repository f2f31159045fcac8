"""The benchmark's data set: a program with tiers, rewards, members with ledgers, tickets.

Small, rule-bearing things go through the domain services one by one (program settings,
tiers, the 200 rewards, the 1,000 tickets and their messages). Members and their ledgers
are too many for one transaction each (200,000 entries would take the better part of an
hour), so they are written in bulk, but built by the domain's own rules: the entry hash
chain (`chain_hash`), earning (`purchase_points` with the tier multiplier of the moment),
lot allocation for debits (`allocate`, soonest-expiring first), tier upgrades
(`tier_for`), coupon and referral codes, idempotency keys with the request hash the API
stores. Rows are exactly what `Book.credit` / `Book.debit`, `record_purchase`,
`redeem_reward` and `register_member` would have written had the members been settled
today; `verify` runs the test suite's invariant checker on a sample (and on the heaviest
and lightest member) to prove it.

Shape: `members` members; member 1 has `heavy_entries` entries, member 2 has 10, the rest
share what is left of `entries` (about 19 each for the standard set). About one entry in
nine is a redemption of an unlimited reward, the rest purchases, plus the sign-up bonus.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tortoise import Tortoise
from tortoise.models import Model

from domain import clock
from domain.ledger.model import (
    GENESIS_HASH,
    EntryFacts,
    EntryKind,
    LotView,
    allocate,
    chain_hash,
    purchase_points,
)
from domain.ledger.tables import (
    AllocationRow,
    BalanceRow,
    IdempotencyRow,
    LedgerEntryRow,
    LotRow,
    PurchaseRow,
)
from domain.ledger.values import Idempotency
from domain.members.model import new_referral_code
from domain.members.tables import MemberRow, MemberTagRow
from domain.program.services import update_program
from domain.rewards.model import Reward, RewardDraft, new_coupon_code
from domain.rewards.services import all_rewards, create_reward
from domain.rewards.tables import RedemptionRow
from domain.tickets.model import TicketCategory, TicketChannel
from domain.tickets.services import add_message, open_ticket
from domain.tiers.model import TicketPriority, Tier, TierDraft, tier_for
from domain.tiers.services import create_tier, list_tiers
from domain.tiers.tables import TierChangeRow

TIERS = [
    TierDraft("Silver", 1, 0, Decimal("1"), ("Member prices",), TicketPriority.NORMAL),
    TierDraft("Gold", 2, 2000, Decimal("1.25"), ("Free shipping",), TicketPriority.HIGH),
    TierDraft("Platinum", 3, 8000, Decimal("1.5"), ("Priority line",), TicketPriority.URGENT),
]
#: The reward the redeemReward workload takes: cheap, unlimited, no per-member limit.
BENCH_REWARD = "Bench espresso"
INTEGRATION_SCOPE = "INTEGRATION:integration"  # what resolvers.ledger.idempotency builds
SIGNUP_BONUS = 100
TAGS = ["newsletter", "vip", "app", "store", "online"]
HISTORY_DAYS = 320  # < expiry and tier window (365): nothing has expired or left the window


@dataclass
class Ids:
    """Explicit primary keys for the bulk rows (a fresh database; sequences fixed after)."""

    next: dict[str, int] = field(default_factory=dict)

    def take(self, table: str) -> int:
        value = self.next.get(table, 1)
        self.next[table] = value + 1
        return value


@dataclass
class Batch:
    rows: dict[type[Model], list[Model]] = field(default_factory=dict)

    def add(self, row: Model) -> None:
        self.rows.setdefault(type(row), []).append(row)

    def size(self) -> int:
        return sum(len(v) for v in self.rows.values())


async def _program_and_catalogue(rewards: int, rng: random.Random) -> tuple[list[Tier], Reward]:
    await update_program({"name": "Loyalgraph Bench", "currency": "USD",
                          "points_per_unit": Decimal("1"), "pending_days": 14,
                          "expiry_days": 365, "tier_window_days": 365,
                          "signup_bonus": SIGNUP_BONUS, "purchase_retro_days": 30})
    have = {t.name for t in await list_tiers()}
    for draft in TIERS:
        if draft.name not in have:
            await create_tier(draft)
    tiers = await list_tiers()
    existing = {r.name: r for r in await all_rewards()}
    if BENCH_REWARD not in existing:
        await create_reward(RewardDraft(BENCH_REWARD, 10, "Benchmark reward.", "drinks",
                                        stock=None, coupon_validity_days=30))
    categories = ["drinks", "vouchers", "experiences", "merch", "food"]
    for i in range(len(existing) + 1, rewards):
        tier_only = i % 10 == 0
        await create_reward(RewardDraft(
            f"Reward {i}", rng.choice([50, 100, 150, 250, 400, 500, 800, 1200, 2500, 5000]),
            f"Catalogue item number {i}.", rng.choice(categories),
            stock=rng.choice([None, None, 100, 1000, 5000]),
            per_member_limit=rng.choice([None, None, 1, 3]),
            min_tier_id=tiers[1].id if tier_only else None, coupon_validity_days=60))
    bench_reward = next(r for r in await all_rewards() if r.name == BENCH_REWARD)
    return tiers, bench_reward


class MemberBuilder:
    """One member's rows, built in time order with the ledger's own rules."""

    def __init__(self, ids: Ids, batch: Batch, tiers: list[Tier], spendable: list[Reward],
                 now: datetime, rng: random.Random) -> None:
        self.ids, self.batch, self.tiers, self.spendable = ids, batch, tiers, spendable
        self.now, self.rng = now, rng

    def build(self, index: int, entry_count: int) -> None:
        rng, now = self.rng, self.now
        member_id = self.ids.take("member")
        joined = now - timedelta(days=HISTORY_DAYS, seconds=rng.randint(0, 86_400))
        entry_tier = tier_for(0, self.tiers)
        assert entry_tier is not None
        tags = rng.sample(TAGS, rng.randint(0, 2))
        member = MemberRow(
            id=member_id, email=f"member{index}@bench.loyalgraph.dev",
            name=f"Member {index}", external_id=f"crm-{index}", status="ACTIVE",
            joined_at=joined, birthday=None, tags=tags, referral_code=new_referral_code(),
            consent_email=rng.random() < 0.5, consent_updated_at=joined,
            tier_id=entry_tier.id)
        for tag in tags:
            self.batch.add(MemberTagRow(id=self.ids.take("member_tag"), member_id=member_id,
                                        tag=tag))
        self.seq, self.last_hash = 0, GENESIS_HASH
        self.balance = dict(available=0, pending=0, lifetime_earned=0, lifetime_spent=0,
                            expired=0, qualifying_points=0)
        self.lots: list[LotRow] = []
        self.open_lots: list[LotRow] = []  # remaining > 0
        self.maturing: list[LotRow] = []  # not yet available at the moment being built
        self.spendable_points = 0  # in lots available at the moment being built
        self.qualifying_dates: list[datetime] = []
        self.member, self.tier = member, entry_tier
        # register_member: the sign-up bonus, at once available, counting toward tiers
        self._credit(EntryKind.BONUS, SIGNUP_BONUS, joined, joined, "sign-up bonus",
                     qualifying=True)
        moments = sorted(joined + timedelta(seconds=rng.randint(60, HISTORY_DAYS * 86_400 - 60))
                         for _ in range(entry_count - 1))
        for n, at in enumerate(moments):
            self._advance(at)
            cheapest = [r for r in self.spendable if r.points_cost <= self.spendable_points]
            if cheapest and rng.random() < 0.11:
                self._redeem(rng.choice(cheapest), at)
            else:
                self._purchase(f"B-{member_id}-{n}", at)
        self.batch.add(member)
        self.batch.add(BalanceRow(
            id=self.ids.take("balance"), member_id=member_id, **self.balance,
            qualifying_until=(min(self.qualifying_dates) + timedelta(days=365)
                              if self.qualifying_dates else None),
            qualifying_window=365,  # the program's tier_window_days
            version=self.seq, last_seq=self.seq, last_hash=self.last_hash))
        self.batch.rows.setdefault(LotRow, []).extend(self.lots)

    def _advance(self, at: datetime) -> None:
        """Lots whose `available_at` has come by `at` become spendable."""
        due = [lot for lot in self.maturing if lot.available_at <= at]
        if due:
            self.maturing = [lot for lot in self.maturing if lot.available_at > at]
            self.spendable_points += sum(lot.remaining for lot in due)

    def _entry(self, kind: EntryKind, points: int, at: datetime, *,
               available_at: datetime | None = None, expires_at: datetime | None = None,
               reason: str | None = None, order_id: str | None = None,
               purchase_id: int | None = None, qualifying: int = 0) -> LedgerEntryRow:
        self.seq += 1
        facts = EntryFacts(self.member.id, self.seq, kind, points, at, available_at,
                           expires_at, reason, order_id)
        digest = chain_hash(self.last_hash, facts)
        row = LedgerEntryRow(
            id=self.ids.take("ledger_entry"), member_id=self.member.id, seq=self.seq,
            kind=kind.value, points=points, qualifying=qualifying, occurred_at=at,
            created_at=at, available_at=available_at, expires_at=expires_at, reason=reason,
            order_id=order_id, purchase_id=purchase_id, prev_hash=self.last_hash, hash=digest)
        self.last_hash = digest
        self.batch.add(row)
        return row

    def _credit(self, kind: EntryKind, points: int, at: datetime, available_at: datetime,
                reason: str, *, order_id: str | None = None, purchase_id: int | None = None,
                qualifying: bool = False) -> LedgerEntryRow:
        expires_at = at + timedelta(days=365)
        entry = self._entry(kind, points, at, available_at=available_at,
                            expires_at=expires_at, reason=reason, order_id=order_id,
                            purchase_id=purchase_id, qualifying=points if qualifying else 0)
        matured = available_at <= self.now  # as settled by `open_book` today
        lot = LotRow(
            id=self.ids.take("lot"), member_id=self.member.id, entry_id=entry.id,
            points=points, remaining=points, available_at=available_at, expires_at=expires_at,
            matured=matured, purchase_id=purchase_id)
        self.lots.append(lot)
        self.open_lots.append(lot)
        if available_at <= at:
            self.spendable_points += points
        else:
            self.maturing.append(lot)
        self.balance["available" if matured else "pending"] += points
        self.balance["lifetime_earned"] += points
        if qualifying:
            self.balance["qualifying_points"] += points
            self.qualifying_dates.append(at)
            self._maybe_upgrade(at)
        return entry

    def _maybe_upgrade(self, at: datetime) -> None:
        target = tier_for(self.balance["qualifying_points"], self.tiers)
        if target is not None and target.rank > self.tier.rank:
            self.batch.add(TierChangeRow(
                id=self.ids.take("tier_change"), member_id=self.member.id,
                from_tier_id=self.tier.id, to_tier_id=target.id,
                qualifying_points=self.balance["qualifying_points"],
                valid_until=at + timedelta(days=365), reason="UPGRADE", changed_at=at))
            self.tier = target
            self.member.tier_id = target.id
            self.member.tier_valid_until = at + timedelta(days=365)

    def _purchase(self, order_id: str, at: datetime) -> None:
        amount = Decimal(self.rng.randint(500, 25_000)) / 100
        points = purchase_points(amount, Decimal(1), Decimal(self.tier.earn_multiplier), [])
        purchase_id = self.ids.take("purchase")
        self.batch.add(PurchaseRow(id=purchase_id, member_id=self.member.id,
                                   order_id=order_id, amount=amount, currency="USD",
                                   occurred_at=at, points_earned=points, created_at=at))
        entry = self._credit(EntryKind.EARN, points, at, at + timedelta(days=14), "purchase",
                             order_id=order_id, purchase_id=purchase_id, qualifying=True)
        request = {"op": "recordPurchase", "member": self.member.id, "order": order_id,
                   "amount": str(amount), "currency": None, "occurredAt": at.isoformat()}
        self.batch.add(IdempotencyRow(
            id=self.ids.take("idempotency_key"), scope=INTEGRATION_SCOPE, key=order_id,
            request_hash=Idempotency(INTEGRATION_SCOPE, order_id, request).request_hash,
            result={"entries": [entry.id], "purchase": purchase_id}, created_at=at))

    def _redeem(self, reward: Reward, at: datetime) -> None:
        views = [LotView(lot.id, lot.remaining, lot.expires_at, True, lot.id)
                 for lot in self.open_lots if lot.available_at <= at]
        drawn, missing = allocate(views, reward.points_cost)
        assert missing == 0
        entry = self._entry(EntryKind.REDEEM, -reward.points_cost, at,
                            reason=f"reward: {reward.name}"[:200])
        by_id = {lot.id: lot for lot in self.open_lots}
        self.spendable_points -= reward.points_cost
        for view, take in drawn:
            lot = by_id[view.id]
            lot.remaining -= take
            if lot.remaining == 0:
                self.open_lots.remove(lot)
            self.batch.add(AllocationRow(id=self.ids.take("allocation"), entry_id=entry.id,
                                         lot_id=lot.id, points=take))
            self.balance["available" if lot.matured else "pending"] -= take
        self.balance["lifetime_spent"] += reward.points_cost
        redemption_id = self.ids.take("redemption")
        used = self.rng.random() < 0.6
        self.batch.add(RedemptionRow(
            id=redemption_id, reward_id=reward.id, member_id=self.member.id,
            code=new_coupon_code(), status="USED" if used else "ISSUED",
            points_spent=reward.points_cost, entry_id=entry.id, created_at=at,
            expires_at=at + timedelta(days=400), used_at=at + timedelta(hours=1) if used else None))


async def _flush(batch: Batch) -> None:
    # Parents before children (foreign keys are on).
    order = [MemberRow, MemberTagRow, TierChangeRow, PurchaseRow, LedgerEntryRow, LotRow,
             AllocationRow, RedemptionRow, IdempotencyRow, BalanceRow]
    for model in order:
        rows = batch.rows.pop(model, [])
        if rows:
            await model.bulk_create(rows, batch_size=2000)
    assert not batch.rows, batch.rows.keys()


async def _fix_sequences() -> None:
    conn = Tortoise.get_connection("postgres")
    for table in ["member", "member_tag", "tier_change", "purchase", "ledger_entry", "lot",
                  "allocation", "redemption", "idempotency_key", "balance"]:
        await conn.execute_script(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)")


@dataclass(frozen=True)
class Shape:
    members: int
    entries: int
    heavy_entries: int
    rewards: int = 200
    tickets: int = 1000


async def seed(shape: Shape, postgres: bool, log: Any = print) -> dict[str, Any]:
    """Fill an empty, migrated database; returns what the workloads need to know."""
    rng = random.Random(20261123)
    now = clock.utcnow()
    tiers, bench_reward = await _program_and_catalogue(shape.rewards, rng)
    spendable = [r for r in await all_rewards() if r.stock is None and r.min_tier_id is None
                 and r.per_member_limit is None and r.points_cost <= 500]
    ids, batch = Ids(), Batch()
    builder = MemberBuilder(ids, batch, tiers, spendable, now, rng)
    light = 10
    rest = max(shape.entries - shape.heavy_entries - light, 0)
    others = max(shape.members - 2, 1)
    per_member = rest / others
    for index in range(1, shape.members + 1):
        if index == 1:
            count = shape.heavy_entries
        elif index == 2:
            count = light
        else:
            low = max(2, int(per_member * 0.4))
            count = max(2, min(int(per_member * 1.6), int(rng.gauss(per_member, per_member / 3))))
            count = rng.randint(low, max(low, int(per_member * 1.6))) if count < low else count
        builder.build(index, max(count, 1))
        if batch.size() > 60_000:
            await _flush(batch)
        if index % 2000 == 0:
            log(f"  seeded {index} members, {ids.next.get('ledger_entry', 1) - 1} entries")
    await _flush(batch)
    if postgres:
        await _fix_sequences()
    entries = ids.next.get("ledger_entry", 1) - 1
    tickets = await _tickets(shape.tickets, shape.members, rng)
    return {"members": shape.members, "entries": entries, "tickets": tickets,
            "heavy_member": 1, "light_member": 2, "bench_reward": bench_reward.id,
            "rewards": len(await all_rewards()), "tiers": [t.name for t in tiers],
            "seeded_at": now.astimezone(UTC).isoformat()}


async def _tickets(count: int, members: int, rng: random.Random) -> int:
    """Tickets through the domain: priority from tier and category, SLA clocks, messages."""
    made = 0
    for i in range(count):
        member_id = rng.randint(1, members)
        ticket, _ = await open_ticket(
            member_id, f"Question {i}", "Where are my points from last week?",
            category=rng.choice(list(TicketCategory)), channel=rng.choice(list(TicketChannel)),
            author_role="MEMBER", author=f"member:{member_id}")
        for n in range(rng.randint(0, 3)):
            await add_message(ticket.id, f"Reply {n}", internal=n == 1, author_role="AGENT",
                              author="agent:bench")
        made += 1
    return made


async def verify(sample: int = 25, members: int = 10_000) -> int:
    """The test suite's ledger invariant on the heavy, the light and a sample of members."""
    from tests.support.ledger_checks import assert_ledger_consistent

    rng = random.Random(7)
    chosen = {1, 2, *(rng.randint(3, members) for _ in range(sample))}
    for member_id in sorted(m for m in chosen if m <= members):
        await assert_ledger_consistent(member_id)
    return len(chosen)
