"""The PointsChanged message every write publishes (resolvers.events.publish_points_changed)
is built by hand: it must stay what `dataclasses.asdict(PointsChanged)` gives (but the
balance's `last_seq`, which messages never carried: workers of the previous release read
them), and reach the member's channel and the all-members channel, each once, in that
order."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from domain.ledger.events import PointsChanged
from domain.ledger.model import EntryKind
from domain.ledger.values import Balance, Change, Entry
from resolvers.events import ALL_POINTS_CHANNEL, points_channel, publish_points_changed


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    async def publish(self, channel: str, message: Any) -> None:
        self.sent.append((channel, json.loads(json.dumps(message))))

    async def publish_all(self, channels: Any, message: Any) -> None:
        for channel in channels:
            await self.publish(channel, message)


async def test_the_message_is_the_event_as_asdict_gives_it() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    entries = tuple(Entry(i, 7, i, EntryKind.EARN, 10 * i, at, at, at, None, None, "o", "h")
                    for i in (3, 4))
    balance = Balance(7, 70, 5, 90, 15, 0, 75, 12, last_seq=4)
    broker = Recorder()
    await publish_points_changed(SimpleNamespace(broker=broker), [Change(7, balance, entries)])
    event = {"type": "PointsChanged", **asdict(PointsChanged(7, 12, (3, 4), balance))}
    del event["balance"]["last_seq"]
    expected = json.loads(json.dumps(event))
    assert broker.sent == [(points_channel(7), expected), (ALL_POINTS_CHANNEL, expected)]
