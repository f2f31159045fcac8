"""Logging set-up and the request id that ties a client's error to the operator's log line."""

from __future__ import annotations

import contextvars
import logging
import re
import secrets

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


_CLIENT_ID = re.compile(r"[A-Za-z0-9-]{8,64}")


def new_request_id(supplied: str | None = None) -> str:
    """The client's X-Request-ID if it is a plain token, else a fresh random one."""
    if supplied and _CLIENT_ID.fullmatch(supplied):
        return supplied
    return secrets.token_hex(8)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Tortoise logs SQL with parameter values at DEBUG: never let it leak secrets by default.
    logging.getLogger("tortoise").setLevel(max(logging.WARNING, logging.getLevelName(level)))
