"""Publishing domain events to subscribers, always after the transaction has committed."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from domain.members.events import MemberUpdated

log = logging.getLogger(__name__)


def member_channel(member_id: int) -> str:
    return f"member:{member_id}"


ALL_MEMBERS_CHANNEL = "members:all"


async def publish_member_updated(ctx: Any, event: MemberUpdated) -> None:
    payload = {"type": "MemberUpdated", **dataclasses.asdict(event)}
    broker = ctx.broker
    await broker.publish(member_channel(event.member_id), payload)
    await broker.publish(ALL_MEMBERS_CHANNEL, payload)
