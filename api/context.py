"""The per-request (or per-WebSocket-operation) context handed to every resolver.

DataLoaders live here and are built fresh for each HTTP request and each subscription
event, so nothing cached ever outlives the operation that loaded it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader

from api.auth import TokenService
from api.broker import Broker
from api.cache import Cache
from api.settings import Settings
from api.throttle import Throttle
from domain import clock
from domain.access import Principal
from domain.ledger.queries import balances, expiring_soon
from domain.ledger.values import Balance
from domain.members.model import Member
from domain.members.services import get_members_by_ids
from domain.partners.model import Partner
from domain.partners.services import partners_by_ids
from domain.rewards.model import Ineligibility, Reward, ineligibility
from domain.rewards.services import all_rewards, rewards_by_ids, taken_counts
from domain.tickets.model import Ticket
from domain.tickets.services import tickets_by_ids
from domain.tiers.model import Tier, tier_for
from domain.tiers.services import list_tiers
from resolvers.events import CATALOGUE_VERSION, invalidate_catalogue


async def _load_members(ids: list[int]) -> list[Member | None]:
    found = await get_members_by_ids(ids)
    return [found.get(i) for i in ids]


async def _load_balances(ids: list[int]) -> list[Balance]:
    found = await balances(ids)
    return [found[i] for i in ids]


async def _load_taken(keys: list[tuple[int, int]]) -> list[int]:
    """(member, reward) -> units the member holds; one query per member in the batch."""
    by_member: dict[int, list[int]] = {}
    for member_id, reward_id in keys:
        by_member.setdefault(member_id, []).append(reward_id)
    counts = {m: await taken_counts(m, ids) for m, ids in by_member.items()}
    return [counts[m][r] for m, r in keys]


async def _load_expiring(keys: list[tuple[int, int]]) -> list[int]:
    by_days: dict[int, list[int]] = {}
    for member_id, days in keys:
        by_days.setdefault(days, []).append(member_id)
    totals = {days: await expiring_soon(ids, days) for days, ids in by_days.items()}
    return [totals[days][member_id] for member_id, days in keys]


async def _load_rewards(ids: list[int]) -> list[Reward | None]:
    found = await rewards_by_ids(ids)
    return [found.get(i) for i in ids]


async def _load_partners(ids: list[int]) -> list[Partner | None]:
    found = await partners_by_ids(ids)
    return [found.get(i) for i in ids]


async def _load_tickets(ids: list[int]) -> list[Ticket | None]:
    found = await tickets_by_ids(ids)
    return [found.get(i) for i in ids]


class Loaders:
    def __init__(self) -> None:
        self.reward: DataLoader[int, Reward | None] = DataLoader(load_fn=_load_rewards)
        self.taken: DataLoader[tuple[int, int], int] = DataLoader(load_fn=_load_taken)
        self.member: DataLoader[int, Member | None] = DataLoader(load_fn=_load_members)
        self.balance: DataLoader[int, Balance] = DataLoader(load_fn=_load_balances)
        self.expiring: DataLoader[tuple[int, int], int] = DataLoader(load_fn=_load_expiring)
        self.ticket: DataLoader[int, Ticket | None] = DataLoader(load_fn=_load_tickets)
        self.partner: DataLoader[int, Partner | None] = DataLoader(load_fn=_load_partners)
        self._tiers: list[Tier] | None = None

    async def tiers(self) -> list[Tier]:
        if self._tiers is None:
            self._tiers = await list_tiers()
        return self._tiers


@dataclass
class Services:
    """Process-wide collaborators, built once in the lifespan."""

    settings: Settings
    tokens: TokenService
    cache: Cache
    broker: Broker
    login_throttle: Throttle
    coupon_throttle: Throttle


@dataclass
class Context:
    services: Services
    principal: Principal
    request: Any = None
    response: Any = None
    loaders: Loaders = field(default_factory=Loaders)
    auth_error: str | None = None
    connection_params: dict[str, Any] | None = None
    _catalogue: list[Reward] | None = None

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
        return await self.loaders.tiers()

    async def catalogue(self) -> list[Reward]:
        """The whole rewards catalogue, from the shared cache when it is there.

        Cached under a version number that every write bumps (`invalidate_catalogue`), so a
        reader that raced a writer stores its stale copy under a version nobody reads again:
        an edit made through one process is seen at once through every other (with Redis).
        """
        if self._catalogue is None:
            cache = self.services.cache
            version = await cache.get(CATALOGUE_VERSION) or 0
            key = f"rewards:catalogue:{version}"
            cached = await cache.get(key)
            if cached is None:
                rewards = await all_rewards()
                await cache.set(key, [r.to_json() for r in rewards], ttl=CATALOGUE_TTL)
            else:
                rewards = [Reward.from_json(d) for d in cached]
            self._catalogue = rewards
        return self._catalogue

    async def invalidate_catalogue(self) -> None:
        await invalidate_catalogue(self.services.cache)
        self._catalogue = None

    async def eligibility(self, reward: Reward) -> Ineligibility | bool | None:
        """Why the viewing member cannot redeem `reward` (None: it can); False when the
        viewer is not a member."""
        member_id = self.principal.member_id
        if member_id is None:
            return False
        member = await self.loaders.member.load(member_id)
        if member is None:
            return False
        tiers = await self.tiers()
        ranks = {t.id: t.rank for t in tiers}
        entry = tier_for(0, tiers)
        rank = ranks.get(member.tier_id or -1, entry.rank if entry else -1)
        balance = await self.loaders.balance.load(member_id)
        return ineligibility(
            reward, clock.utcnow(), tier_rank=rank,
            min_tier_rank=ranks.get(reward.min_tier_id) if reward.min_tier_id else None,
            taken=await self.loaders.taken.load((member_id, reward.id)),
            available_points=balance.available)

    def reset_loaders(self) -> None:
        """Forget everything loaded so far: called before each subscription event."""
        self.loaders = Loaders()
        self._catalogue = None


CATALOGUE_TTL = 600.0
