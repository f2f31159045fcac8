"""Public ids: the opaque global ids the API hands out, for text the domain writes itself
(webhook payloads, settlement exports) that clients must match against API results."""

from __future__ import annotations

import base64


def public_id(type_name: str, key: int) -> str:
    """The same string as the GraphQL `id` of that object (a relay global id)."""
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()
