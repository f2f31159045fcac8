"""The per-request (or per-WebSocket-operation) context handed to every resolver.

DataLoaders live here and are built fresh for each HTTP request and each subscription
event, so nothing they cache ever outlives the operation that loaded it. The only things
kept longer are process-wide copies of what nearly every request reads and few writes
change, each under a version that every such write bumps through the shared cache (so
every process sees it at once): the rewards catalogue, and the program (its settings, its
tier ladder and its earning campaigns, all under one version: a purchase needs all three,
and reads the version once).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from strawberry.dataloader import DataLoader

from api.auth import TokenService
from api.broker import Broker
from api.cache import Cache
from api.settings import Settings
from api.throttle import Throttle
from domain import clock
from domain.access import Principal
from domain.ledger.campaigns import Campaign, all_campaigns
from domain.ledger.queries import balances, entries_pages, entry_counts, expiring_soon
from domain.ledger.values import Balance
from domain.members.model import Member
from domain.members.services import get_members_by_ids
from domain.partners.model import Partner
from domain.partners.services import partners_by_ids, stale_counts
from domain.program.model import ProgramSettings
from domain.program.services import get_program
from domain.rewards.model import Ineligibility, Reward, Shelf, ineligibility
from domain.rewards.queries import held_units, redemption_counts, redemptions_pages
from domain.rewards.services import all_rewards, rewards_by_ids
from domain.tickets.model import Ticket
from domain.tickets.queries import message_counts, messages_pages, ticket_counts, tickets_pages
from domain.tickets.services import tickets_by_ids
from domain.tiers.model import Tier, tier_for
from domain.tiers.services import list_tiers
from resolvers.events import CATALOGUE_VERSION, PROGRAM_VERSION, invalidate_catalogue


async def _load_members(ids: list[int]) -> list[Member | None]:
    found = await get_members_by_ids(ids)
    return [found.get(i) for i in ids]


async def _load_balances(ids: list[int]) -> list[Balance]:
    found = await balances(ids)
    return [found[i] for i in ids]


async def _load_held(keys: list[tuple[int, tuple[int, ...]]]) -> list[dict[int, int]]:
    """(member, rewards with a limit) -> {reward: units the member holds}; one query per
    set of rewards (a request asks with one set)."""
    by_rewards: dict[tuple[int, ...], list[int]] = {}
    for member_id, reward_ids in keys:
        by_rewards.setdefault(reward_ids, []).append(member_id)
    found = {reward_ids: await held_units(ids, reward_ids)
             for reward_ids, ids in by_rewards.items()}
    return [found[reward_ids][member_id] for member_id, reward_ids in keys]


async def _load_expiring(keys: list[tuple[int, int]]) -> list[int]:
    by_days: dict[int, list[int]] = {}
    for member_id, days in keys:
        by_days.setdefault(days, []).append(member_id)
    totals = {days: await expiring_soon(ids, days) for days, ids in by_days.items()}
    return [totals[days][member_id] for member_id, days in keys]


_MISSING: Any = object()


class LazilyPrimedLoader(DataLoader[Any, Any]):
    """A DataLoader whose `prime_many` only records the values, and makes one a cached
    future when it is loaded: a page of 50 members primes all of them and loads few or none
    again, and a future each cost more than the rest of priming. Semantics as strawberry's:
    a value primed without `force` never replaces one cached already, and clearing a key
    forgets its primed value too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._primed: dict[Any, Any] = {}

    def prime_many(self, data: Any, force: bool = False) -> None:
        if force or not self.cache or (self.batch is not None and not self.batch.dispatched):
            for key in data:  # (a pending batch is updated by strawberry's own priming)
                self._primed.pop(key, None)
            super().prime_many(data, force)
            return
        for key, value in data.items():
            if key not in self._primed and self.cache_map.get(key) is None:
                self._primed[key] = value

    def load(self, key: Any) -> Any:
        if self._primed:
            value = self._primed.pop(key, _MISSING)
            if value is not _MISSING:
                super().prime_many({key: value})
        return super().load(key)

    def clear(self, key: Any) -> None:
        self.clear_many([key])

    def clear_many(self, keys: Any) -> None:
        # a key only primed here is not in strawberry's cache, which refuses to clear it
        super().clear_many([key for key in keys if self._primed.pop(key, _MISSING) is _MISSING
                            or self.cache_map.get(key) is not None])

    def clear_all(self) -> None:
        self._primed.clear()
        super().clear_all()


Pages = dict[int, tuple[list[Any], bool]]
PageKey = tuple[int, int | None, int, Hashable]  # parent id, after, first, filter


def page_loader(fetch: Callable[[list[int], int | None, int, Any], Awaitable[Pages]]
                ) -> DataLoader[PageKey, tuple[list[Any], bool]]:
    """Keyset pages of a child list for many parents (each member's ledger in a list of
    members): one `fetch` per distinct (after, first, filter), whatever the number of
    parents, so a list never costs a query per row."""
    async def load(keys: list[PageKey]) -> list[tuple[list[Any], bool]]:
        groups: dict[tuple[int | None, int, Hashable], list[int]] = {}
        for parent, after, first, extra in keys:
            groups.setdefault((after, first, extra), []).append(parent)
        pages = {args: await fetch(ids, *args) for args, ids in groups.items()}
        return [pages[(after, first, extra)][p] for p, after, first, extra in keys]

    return DataLoader(load_fn=load)


def count_loader(count: Callable[[list[int], Any], Awaitable[dict[int, int]]]
                 ) -> DataLoader[tuple[int, Hashable], int]:
    """`totalCount` of those lists: one grouped COUNT per distinct filter."""
    async def load(keys: list[tuple[int, Hashable]]) -> list[int]:
        groups: dict[Hashable, list[int]] = {}
        for parent, extra in keys:
            groups.setdefault(extra, []).append(parent)
        counts = {extra: await count(ids, extra) for extra, ids in groups.items()}
        return [counts[extra][p] for p, extra in keys]

    return DataLoader(load_fn=load)


async def _load_rewards(ids: list[int]) -> list[Reward | None]:
    found = await rewards_by_ids(ids)
    return [found.get(i) for i in ids]


async def _load_partners(ids: list[int]) -> list[Partner | None]:
    found = await partners_by_ids(ids)
    return [found.get(i) for i in ids]


async def _load_stale_counts(ids: list[int]) -> list[int]:
    found = await stale_counts(ids)
    return [found[i] for i in ids]


async def _load_tickets(ids: list[int]) -> list[Ticket | None]:
    found = await tickets_by_ids(ids)
    return [found.get(i) for i in ids]


async def once(holder: Any, slot: str, compute: Callable[[], Awaitable[Any]]) -> Any:
    """`compute()`'s value, computed once per `holder` (a request's `Loaders`) however many
    callers ask at the same time: the first computes it in place and the others wait for
    it on a future kept in `holder.slot`.

    In place, not in a task of its own: a task is one more pass of the event loop before
    the first caller goes on, and the parts read this way (the program's version, the
    ladder) are nearly always in this process's memory, so computing them never waits.
    One task less and no suspension per read was -3.8% of a purchase's CPU sent one at a
    time (`bench.ab`). Under load it pays only together with SQLite's
    `StagedTransactionContext`: the task had also been what made a purchase give way to
    other requests before its transaction (README, Performance, the eighth round). A
    failure (or the first caller's cancellation) reaches the callers waiting then, and
    the next caller computes it again."""
    shared: asyncio.Future[Any] | None = getattr(holder, slot)
    if shared is not None:
        return await shared
    shared = asyncio.get_running_loop().create_future()
    setattr(holder, slot, shared)
    try:
        value = await compute()
    except BaseException as exc:
        setattr(holder, slot, None)
        if isinstance(exc, asyncio.CancelledError):
            shared.cancel()
        else:
            shared.set_exception(exc)
            shared.exception()  # retrieved: nobody else may be waiting
        raise
    shared.set_result(value)
    return value


class Loaders:
    """The request's DataLoaders, each built on first use: most operations touch two or
    three of them, and every subscription event gets a fresh set."""

    def __init__(self) -> None:
        self._program_version: asyncio.Future[Any] | None = None
        self._tiers: asyncio.Future[tuple[Tier, ...]] | None = None

    @cached_property
    def reward(self) -> DataLoader[int, Reward | None]:
        return DataLoader(load_fn=_load_rewards)

    @cached_property
    def held(self) -> DataLoader[tuple[int, tuple[int, ...]], dict[int, int]]:
        return DataLoader(load_fn=_load_held)

    @cached_property
    def member(self) -> DataLoader[int, Member | None]:
        return LazilyPrimedLoader(load_fn=_load_members)

    @cached_property
    def balance(self) -> DataLoader[int, Balance]:
        return DataLoader(load_fn=_load_balances)

    @cached_property
    def expiring(self) -> DataLoader[tuple[int, int], int]:
        return DataLoader(load_fn=_load_expiring)

    @cached_property
    def ticket(self) -> DataLoader[int, Ticket | None]:
        return DataLoader(load_fn=_load_tickets)

    @cached_property
    def partner(self) -> DataLoader[int, Partner | None]:
        return DataLoader(load_fn=_load_partners)

    @cached_property
    def stale_exchanges(self) -> DataLoader[int, int]:
        return DataLoader(load_fn=_load_stale_counts)

    # member.ledger / member.tickets / member.redemptions / ticket.messages in lists

    @cached_property
    def ledger_page(self) -> DataLoader[PageKey, tuple[list[Any], bool]]:
        return page_loader(lambda ids, after, first, kinds: entries_pages(ids, after, first,
                                                                          kinds))

    @cached_property
    def ledger_count(self) -> DataLoader[tuple[int, Hashable], int]:
        return count_loader(lambda ids, kinds: entry_counts(ids, kinds))

    @cached_property
    def tickets_page(self) -> DataLoader[PageKey, tuple[list[Any], bool]]:
        return page_loader(lambda ids, after, first, status: tickets_pages(ids, status, after,
                                                                           first))

    @cached_property
    def tickets_count(self) -> DataLoader[tuple[int, Hashable], int]:
        return count_loader(lambda ids, status: ticket_counts(ids, status))

    @cached_property
    def redemptions_page(self) -> DataLoader[PageKey, tuple[list[Any], bool]]:
        return page_loader(lambda ids, after, first, status: redemptions_pages(ids, status,
                                                                               after, first))

    @cached_property
    def redemptions_count(self) -> DataLoader[tuple[int, Hashable], int]:
        return count_loader(lambda ids, status: redemption_counts(ids, status))

    @cached_property
    def messages_page(self) -> DataLoader[PageKey, tuple[list[Any], bool]]:
        return page_loader(lambda ids, after, first, internal: messages_pages(
            ids, after, first, include_internal=internal))

    @cached_property
    def messages_count(self) -> DataLoader[tuple[int, Hashable], int]:
        return count_loader(lambda ids, internal: message_counts(ids, include_internal=internal))


class LedgerKept:
    """What this process last read or built of a member that can change only together with
    its ledger, kept while the member's newest entry is the same one (`Balance.last_seq`,
    read by the same request), so nothing ever needs invalidating, in any process:
    - its newest ledger page (no cursor, no filter) as `MemberType.ledger` built it: entries
      are never changed once written (the hash chain);
    - the units of each reward it holds (`Context.eligible`): a redemption is issued or
      cancelled only together with a REDEEM or REDEMPTION_REFUND entry, in the same
      transaction (rewards cost at least 1 point).
    A home screen shows both on every visit; their statements, rows and nodes were ~40% of
    its CPU (README, Performance). A page is kept only when its newest entry *is*
    `last_seq`, so a page read after a write that the balance read before it missed is
    shown but not kept. What is kept is shared by later requests and never changed.
    Bounded in weight (a page's nodes, a holding's rewards; each ~1.5 KB at most; setting
    LEDGER_KEPT, 0 keeps nothing), least recently used first out."""

    MAX_ITEMS = 8_192

    def __init__(self, max_weight: int = 20_000) -> None:
        """`max_weight` (setting LEDGER_KEPT): 0 keeps nothing."""
        self.max_weight = max_weight
        #: (member, what) -> (last_seq, the value, its weight)
        self._kept: OrderedDict[tuple[int, Hashable], tuple[int, Any, int]] = OrderedDict()
        self._weight = 0

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, balance: Balance, what: Hashable) -> Any:
        """The value kept for `what` of `balance`'s member, or None."""
        key = (balance.member_id, what)
        found = self._kept.get(key)
        if found is None or found[0] != balance.last_seq:
            return None
        self._kept.move_to_end(key)
        return found[1]

    def put(self, balance: Balance, what: Hashable, value: Any, weight: int) -> None:
        if weight > self.max_weight:  # (nothing at all with LEDGER_KEPT=0)
            return
        key = (balance.member_id, what)
        old = self._kept.pop(key, None)
        if old is not None:
            self._weight -= old[2]
        self._kept[key] = (balance.last_seq, value, weight)
        self._weight += weight
        while self._weight > self.max_weight or len(self._kept) > self.MAX_ITEMS:
            self._weight -= self._kept.popitem(last=False)[1][2]


@dataclass
class Services:
    """Process-wide collaborators, built once in the lifespan."""

    settings: Settings
    tokens: TokenService
    cache: Cache
    broker: Broker
    login_throttle: Throttle
    coupon_throttle: Throttle
    #: The catalogue as last decoded by this process: (version, when, rewards).
    decoded_catalogue: tuple[Any, float, tuple[Reward, ...]] | None = None
    #: The program as last read by this process, per part ("tiers", "settings",
    #: "campaigns"): (version, when, value).
    decoded_program: dict[str, tuple[Any, float, Any]] = field(default_factory=dict)
    #: The `Shelf` of the last decoded catalogue and ladder: (catalogue, ladder, shelf).
    shelf: tuple[tuple[Reward, ...], tuple[Tier, ...], Shelf] | None = None
    #: The rewards of the last decoded catalogue with a per-member limit:
    #: (catalogue, their ids in order, the same as a set).
    limited: tuple[tuple[Reward, ...], tuple[int, ...], frozenset[int]] | None = None
    #: What recent subscription events read, shared by their subscribers (resolvers.ledger).
    event_rows: dict[Any, Any] = field(default_factory=dict)
    #: Members' newest ledger pages and holdings, while their ledgers stay as they are.
    ledger_kept: LedgerKept = field(default_factory=LedgerKept)


@dataclass
class Context:
    services: Services
    principal: Principal
    request: Any = None
    response: Any = None
    loaders: Loaders = field(default_factory=Loaders)
    auth_error: str | None = None
    connection_params: dict[str, Any] | None = None
    _catalogue: tuple[Reward, ...] | None = None  # as this process's memo holds it

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def tokens(self) -> TokenService:
        return self.services.tokens

    @property
    def broker(self) -> Broker:
        return self.services.broker

    async def tiers(self) -> list[Tier]:
        return list(await self._ladder())

    async def _ladder(self) -> tuple[Tier, ...]:
        """The tier ladder as this process's copy holds it (the same tuple while the
        program's version holds); one read per operation, however many resolvers ask at
        the same time."""
        return await once(self.loaders, "_tiers",  # type: ignore[no-any-return]
                          lambda: self._of_program("tiers", _tuple_of(list_tiers)))

    async def program(self) -> ProgramSettings:
        """The program's settings (see `_of_program`)."""
        return await self._of_program("settings", get_program)  # type: ignore[no-any-return]

    async def campaigns(self) -> tuple[Campaign, ...]:
        """Every earning campaign, oldest first (see `_of_program`)."""
        return await self._of_program("campaigns", _tuple_of(all_campaigns))  # type: ignore[no-any-return]

    async def _of_program(self, part: str, load: Callable[[], Awaitable[Any]]) -> Any:
        """A part of the program, from this process's copy while the program's version is
        current: nearly every request shows a tier and every purchase needs the settings
        and the campaigns, and they change only through updateProgram, createTier,
        updateTier and createCampaign, which bump the version (shared through the cache,
        so every process sees it; read once per operation). Parts are immutable values."""
        version = await once(self.loaders, "_program_version",
                             lambda: self.services.cache.get(PROGRAM_VERSION)) or 0
        memo = self.services.decoded_program.get(part)
        if memo is not None and memo[0] == version and \
                time.monotonic() - memo[1] < CATALOGUE_MEMO_SECONDS:
            return memo[2]
        value = await load()
        self.services.decoded_program[part] = (version, time.monotonic(), value)
        return value

    async def catalogue(self) -> tuple[Reward, ...]:
        """The whole rewards catalogue, from the shared cache when it is there.

        Cached under a version number that every write bumps (`invalidate_catalogue`), so a
        reader that raced a writer stores its stale copy under a version nobody reads again:
        an edit made through one process is seen at once through every other (with Redis).
        """
        if self._catalogue is None:
            cache = self.services.cache
            version = await cache.get(CATALOGUE_VERSION) or 0
            # The decoded copy of this version, if this process made one lately: decoding
            # 200 rewards from JSON on every request cost more than the rest of a home
            # screen. Same version, same content (every write bumps it); the age limit
            # only bounds what a version counter reset (a Redis restart) could leave.
            memo = self.services.decoded_catalogue
            if memo is not None and memo[0] == version and \
                    time.monotonic() - memo[1] < CATALOGUE_MEMO_SECONDS:
                self._catalogue = memo[2]
                return self._catalogue
            key = f"rewards:catalogue:{version}"
            cached = await cache.get(key)
            if cached is None:
                rewards = await all_rewards()
                await cache.set(key, [r.to_json() for r in rewards], ttl=CATALOGUE_TTL)
            else:
                rewards = [Reward.from_json(d) for d in cached]
            self._catalogue = tuple(rewards)
            self.services.decoded_catalogue = (version, time.monotonic(), self._catalogue)
        return self._catalogue

    async def invalidate_catalogue(self) -> None:
        await invalidate_catalogue(self.services.cache)
        self._catalogue = None

    async def eligibility(self, reward: Reward) -> Ineligibility | bool | None:
        """Why the viewing member cannot redeem `reward` (None: it can); False when the
        viewer is not a member."""
        return (await self.eligibilities([reward]))[0]

    async def eligible(self) -> list[Reward]:
        """The rewards the viewing member can redeem now (`eligibleOnly`), cheapest first:
        those of the catalogue for which `eligibility` is None, read off this process's
        `Shelf` for the current catalogue and ladder (built again when either changes, or
        when a reward's dates open or close one)."""
        member_id = self.principal.member_id
        if member_id is None:
            return []
        member = await self.loaders.member.load(member_id)
        if member is None:
            return []
        catalogue, ladder = await self.catalogue(), await self._ladder()
        now = clock.utcnow()
        shelf = self.services.shelf
        if shelf is None or shelf[0] is not catalogue or shelf[1] is not ladder \
                or not shelf[2].holds_at(now):
            shelf = (catalogue, ladder, Shelf(catalogue, {t.id: t.rank for t in ladder}, now))
            self.services.shelf = shelf
        rank = _rank_of(member, ladder)
        balance = await self.loaders.balance.load(member_id)
        taken = await self.held(balance, self._limited(catalogue)[0]) \
            if shelf[2].limits_within(rank, balance.available) else None
        return shelf[2].eligible(rank, balance.available, taken)

    def _limited(self, catalogue: tuple[Reward, ...]) -> tuple[tuple[int, ...], frozenset[int]]:
        """The ids of `catalogue`'s rewards with a per-member limit (kept per catalogue)."""
        limited = self.services.limited
        if limited is None or limited[0] is not catalogue:
            ids = tuple(sorted(r.id for r in catalogue if r.per_member_limit is not None))
            limited = self.services.limited = (catalogue, ids, frozenset(ids))
        return limited[1], limited[2]

    async def held(self, balance: Balance, reward_ids: tuple[int, ...]) -> dict[int, int]:
        """reward -> the units `balance`'s member holds, of `reward_ids` (the rewards with a
        per-member limit: the only units anyone asks for); this process's copy while its
        ledger is the same (`LedgerKept`), else read (through the request's loader)."""
        if not reward_ids:
            return {}
        kept = self.services.ledger_kept
        what = ("held", reward_ids)
        taken = kept.get(balance, what)
        if taken is None:
            taken = await self.loaders.held.load((balance.member_id, reward_ids))
            kept.put(balance, what, taken, len(taken) + 1)
        return taken  # type: ignore[no-any-return]

    async def eligibilities(self, rewards: Sequence[Reward]) -> list[Ineligibility | bool | None]:
        """`eligibility` of many rewards at once: the member, its balance, its tiers and
        the units it holds (needed only for rewards with a per-member limit) are loaded
        once, whatever the number of rewards."""
        member_id = self.principal.member_id
        if member_id is None:
            return [False] * len(rewards)
        member = await self.loaders.member.load(member_id)
        if member is None:
            return [False] * len(rewards)
        tiers = await self.tiers()
        ranks = {t.id: t.rank for t in tiers}
        rank = _rank_of(member, tiers)
        balance = await self.loaders.balance.load(member_id)
        limited = {r.id for r in rewards if r.per_member_limit is not None}
        taken: dict[int, int] = {}
        if limited:
            # the catalogue's set when it has them all (as usual): one copy kept per member
            ids, known = self._limited(await self.catalogue())
            if not limited <= known:
                ids = tuple(sorted(known | limited))
            taken = await self.held(balance, ids)
        now = clock.utcnow()
        return [ineligibility(
            reward, now, tier_rank=rank,
            min_tier_rank=ranks.get(reward.min_tier_id) if reward.min_tier_id else None,
            taken=taken.get(reward.id, 0), available_points=balance.available)
            for reward in rewards]

    def reset_loaders(self) -> None:
        """Forget everything loaded so far: called before each subscription event."""
        self.loaders = Loaders()
        self._catalogue = None


def _rank_of(member: Member, tiers: Sequence[Tier]) -> int:
    """The member's rank on the ladder (the entry tier's when it has none yet; -1 with no
    ladder), as `ineligibility` compares it."""
    entry = tier_for(0, tiers)
    for t in tiers:
        if t.id == member.tier_id:
            return t.rank
    return entry.rank if entry else -1


def _tuple_of(load: Callable[[], Awaitable[list[Any]]]) -> Callable[[], Awaitable[tuple[Any, ...]]]:
    async def loaded() -> tuple[Any, ...]:
        return tuple(await load())

    return loaded


CATALOGUE_TTL = 600.0
CATALOGUE_MEMO_SECONDS = 30.0
