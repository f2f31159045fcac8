"""Subscription fan-out: one execution of a subscription's selection per event, not one per
subscriber.

graphql-core runs the operation's selection set once for every event of every
subscription (``Executor.execute_operation`` on a per-event executor). With 1,000
subscribers of one member's `pointsChanged` that is 1,000 identical executions per event,
which (with the garbage they leave) were most of the server's time of a fan-out. Here, a
resolver marks an event object as shared (``share(event)``) when it hands the same object
to every subscriber; the first subscriber to execute a given operation on it runs it, and
every other subscriber with the same operation, variables and principal gets that result.

Invariants:

* Only events passed to ``share`` are memoised; any other root value executes as before.
* The result is reused only for the same parsed operation (the same document object: the
  parser cache hands the same one for the same text), the same variable values, and the
  same principal (role, subject, member, partner). A shared event's fields must therefore
  resolve from the event, the principal and the data, never from anything else of a
  connection's context (its request, its connection parameters).
* A result with errors is never reused: each subscriber then executes on its own, so
  error handling (logging, masking, request ids) stays per subscriber.
* Results are read-only once shared (the transport serialises them, nothing mutates them).
* Memory is bounded: the most recent ``MAX_EVENTS`` shared events, each held for at most
  ``HOLD_SECONDS``. A subscriber that reaches an event after that simply executes it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from graphql import ExecutionResult
from graphql.pyutils import Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

__all__ = ["SharedEventExecutionContext", "share"]

MAX_EVENTS = 256
HOLD_SECONDS = 10.0


class _Shared:
    __slots__ = ("at", "event", "results")

    def __init__(self, event: object) -> None:
        self.event = event  # held: keeps id(event) from being reused while registered
        self.at = time.monotonic()
        # key -> (operation node, result or task); the node is held for the same reason
        self.results: dict[tuple[Any, ...], tuple[object, Any]] = {}


_shared: dict[int, _Shared] = {}


def share(event: Any) -> Any:
    """Mark ``event`` as handed unchanged to every subscriber; returns it."""
    if id(event) not in _shared:
        now = time.monotonic()
        while _shared and (len(_shared) >= MAX_EVENTS or
                           now - next(iter(_shared.values())).at > HOLD_SECONDS):
            _shared.pop(next(iter(_shared)))
        _shared[id(event)] = _Shared(event)
    return event


def _variables_key(executor: Any) -> bytes | None:
    """The operation's variable inputs as a canonical key (None: not JSON, not shared)."""
    sources = executor.variable_values.sources
    try:
        return orjson.dumps({name: source.value for name, source in sources.items()
                             if source.value is not Undefined}, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None


def _principal_key(context: Any) -> tuple[Any, ...] | None:
    principal = getattr(context, "principal", None)
    if principal is None:
        return None
    return (principal.role, principal.subject, principal.member_id, principal.partner_code)


class SharedEventExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor, executing a shared event once per operation and principal."""

    def execute_operation(self, serially: bool | None = None) -> Any:
        entry = _shared.get(id(self.root_value)) if self.root_value is not None else None
        if entry is None or entry.event is not self.root_value:
            return super().execute_operation(serially)
        principal = _principal_key(self.context_value)
        variables = _variables_key(self)
        if principal is None or variables is None:
            return super().execute_operation(serially)
        key = (id(self.operation), variables, principal)
        held = entry.results.get(key)
        if held is not None and held[0] is self.operation:
            result = held[1]
            if isinstance(result, asyncio.Future):
                return self._await_shared(result, serially)
            return result
        result = super().execute_operation(serially)
        if self.is_awaitable(result):
            task = asyncio.ensure_future(result)
            entry.results[key] = (self.operation, task)
            task.add_done_callback(lambda t: _forget_failed(entry, key, t))
            return asyncio.shield(task)  # this subscriber's own result, errors and all
        if isinstance(result, ExecutionResult) and not result.errors:
            entry.results[key] = (self.operation, result)
        return result

    async def _await_shared(self, task: asyncio.Future[Any], serially: bool | None) -> Any:
        # Shielded: a subscriber that leaves must not cancel the execution others wait on.
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():  # the execution itself, not this subscriber, was cancelled
                return await self._execute_own(serially)
            raise
        except Exception:
            return await self._execute_own(serially)
        if result.errors:
            return await self._execute_own(serially)
        return result

    async def _execute_own(self, serially: bool | None) -> Any:
        result = super().execute_operation(serially)
        if self.is_awaitable(result):
            return await result
        return result


def _forget_failed(entry: _Shared, key: tuple[Any, ...], task: asyncio.Future[Any]) -> None:
    """An execution that raised, was cancelled or has errors is not kept for reuse."""
    if task.cancelled() or task.exception() is not None or task.result().errors:
        held = entry.results.get(key)
        if held is not None and held[1] is task:
            del entry.results[key]
