"""Events of the members context, published after commit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MemberUpdated:
    member_id: int
    fields: tuple[str, ...]
