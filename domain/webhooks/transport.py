"""Sending one signed delivery over HTTP (httpx): a POST with a short timeout, no
redirects followed, and at most `MAX_RESPONSE_BODY` characters of the answer kept.

Invariant: `send` never raises for anything the receiver or the network does; every
outcome is an `Answer` the dispatcher records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from domain.webhooks.model import MAX_ERROR, MAX_RESPONSE_BODY


@dataclass(frozen=True)
class Answer:
    """What one attempt got: a status code and (the start of) the body, or an error."""

    status_code: int | None = None
    body: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender(Protocol):
    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> Answer: ...

    async def close(self) -> None: ...


class HttpSender:
    """One connection pool per dispatcher; `timeout` bounds each attempt as a whole."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False,
                                         headers={"user-agent": "Loyalgraph-Webhooks/1"})

    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
        try:
            async with asyncio.timeout(self.timeout):  # the whole attempt, not each phase
                async with self._client.stream("POST", url, content=body,
                                               headers=dict(headers)) as response:
                    kept = bytearray()
                    async for chunk in response.aiter_bytes():
                        kept += chunk
                        if len(kept) >= MAX_RESPONSE_BODY * 4:  # enough for what is kept
                            break
            text = kept.decode("utf-8", errors="replace")[:MAX_RESPONSE_BODY]
            return Answer(status_code=response.status_code, body=text)
        except (TimeoutError, httpx.TimeoutException):
            return Answer(error=f"timed out after {self.timeout:g} s")
        except Exception as exc:  # refused, reset, bad TLS, bad URL: all the receiver's
            return Answer(error=(f"{type(exc).__name__}: {exc}".strip(": "))[:MAX_ERROR])

    async def close(self) -> None:
        await self._client.aclose()
