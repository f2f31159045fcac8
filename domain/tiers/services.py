"""Use cases for the tier ladder."""

from __future__ import annotations

import dataclasses
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from domain.errors import DomainError, ErrorCode
from domain.tiers.model import Tier, TierDraft, check_ladder, validate_draft
from domain.tiers.tables import TierRow


async def list_tiers() -> list[Tier]:
    return [row.to_domain() for row in await TierRow.all().order_by("rank")]


async def get_tiers_by_ids(ids: list[int]) -> dict[int, Tier]:
    return {row.id: row.to_domain() for row in await TierRow.filter(id__in=ids)}


def _values(d: TierDraft) -> dict[str, Any]:
    values = dataclasses.asdict(d)
    values["name"] = d.name.strip()
    values["benefits"] = [b.strip() for b in d.benefits]
    values["support_priority"] = d.support_priority.value
    return values


async def create_tier(draft: TierDraft) -> Tier:
    validate_draft(draft)
    async with in_transaction():
        others = [row.to_domain() for row in await TierRow.all().select_for_update()]
        check_ladder(draft, others)
        try:
            row = await TierRow.create(**_values(draft))
        except IntegrityError:
            raise DomainError(ErrorCode.ALREADY_EXISTS, "A tier with that name or rank exists.",
                              ["name"]) from None
        return row.to_domain()


async def update_tier(tier_id: int, changes: dict[str, Any]) -> Tier:
    async with in_transaction():
        rows = await TierRow.all().select_for_update()
        row = next((r for r in rows if r.id == tier_id), None)
        if row is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such tier.", ["tierId"])
        current = row.to_domain()
        draft = TierDraft(
            name=changes.get("name", current.name),
            rank=changes.get("rank", current.rank),
            threshold=changes.get("threshold", current.threshold),
            earn_multiplier=changes.get("earn_multiplier", current.earn_multiplier),
            benefits=tuple(changes.get("benefits", current.benefits)),
            support_priority=changes.get("support_priority", current.support_priority),
        )
        validate_draft(draft)
        check_ladder(draft, [r.to_domain() for r in rows if r.id != tier_id])
        row.update_from_dict(_values(draft))
        try:
            await row.save()
        except IntegrityError:
            raise DomainError(ErrorCode.ALREADY_EXISTS, "A tier with that name or rank exists.",
                              ["name"]) from None
        return row.to_domain()
