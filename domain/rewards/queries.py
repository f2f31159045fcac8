"""Read-side queries of redemptions that the API batches per request (DataLoaders)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from domain.keyset import counts_per_parent, pages_per_parent
from domain.rewards.model import Redemption, RedemptionStatus
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


async def redemptions_pages(member_ids: Sequence[int], status: RedemptionStatus | None,
                            after_id: int | None, first: int
                            ) -> dict[int, tuple[list[Redemption], bool]]:
    """Per member: its redemptions (of `status`), newest first, as `redemptions_page`."""
    where = {"status": [status.value]} if status is not None else None
    pages = await pages_per_parent(RedemptionRow, "member_id", member_ids, "id",
                                   after=after_id, first=first, newest_first=True, where=where)
    return {m: ([r.to_domain() for r in rows], more) for m, (rows, more) in pages.items()}


async def redemption_counts(member_ids: Sequence[int], status: RedemptionStatus | None
                            ) -> dict[int, int]:
    where = {"status": [status.value]} if status is not None else None
    return await counts_per_parent(RedemptionRow, "member_id", member_ids, where=where)
