"""Read-side queries of redemptions that the API batches per request (DataLoaders)."""

from __future__ import annotations

from collections.abc import Iterable

from domain.rewards.model import RedemptionStatus
from domain.rewards.tables import RedemptionRow


async def held_units(member_ids: Iterable[int]) -> dict[int, dict[int, int]]:
    """Per member, per reward: the units it holds (every status but CANCELLED), in one
    query for all the members. A member holds few redemptions, so this reads less than
    naming the rewards (a catalogue-wide IN list cost more to build than to run)."""
    ids = list(member_ids)
    rows = await RedemptionRow.filter(member_id__in=ids).exclude(
        status=RedemptionStatus.CANCELLED.value).values_list("member_id", "reward_id")
    held: dict[int, dict[int, int]] = {i: {} for i in ids}
    for member_id, reward_id in rows:
        per_member = held[member_id]  # type: ignore[index]
        per_member[reward_id] = per_member.get(reward_id, 0) + 1  # type: ignore[index]
    return held
