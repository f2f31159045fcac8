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
from domain.access import Principal
from domain.ledger.queries import balances, expiring_soon
from domain.ledger.values import Balance
from domain.members.model import Member
from domain.members.services import get_members_by_ids
from domain.tiers.model import Tier
from domain.tiers.services import list_tiers


async def _load_members(ids: list[int]) -> list[Member | None]:
    found = await get_members_by_ids(ids)
    return [found.get(i) for i in ids]


async def _load_balances(ids: list[int]) -> list[Balance]:
    found = await balances(ids)
    return [found[i] for i in ids]


async def _load_expiring(keys: list[tuple[int, int]]) -> list[int]:
    by_days: dict[int, list[int]] = {}
    for member_id, days in keys:
        by_days.setdefault(days, []).append(member_id)
    totals = {days: await expiring_soon(ids, days) for days, ids in by_days.items()}
    return [totals[days][member_id] for member_id, days in keys]


class Loaders:
    def __init__(self) -> None:
        self.member: DataLoader[int, Member | None] = DataLoader(load_fn=_load_members)
        self.balance: DataLoader[int, Balance] = DataLoader(load_fn=_load_balances)
        self.expiring: DataLoader[tuple[int, int], int] = DataLoader(load_fn=_load_expiring)
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


@dataclass
class Context:
    services: Services
    principal: Principal
    request: Any = None
    response: Any = None
    loaders: Loaders = field(default_factory=Loaders)
    auth_error: str | None = None
    connection_params: dict[str, Any] | None = None

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

    def reset_loaders(self) -> None:
        """Forget everything loaded so far: called before each subscription event."""
        self.loaders = Loaders()
