"""Counting the SQL statements a piece of code sends, on either backend.

Tortoise logs every statement it executes at DEBUG on the `tortoise.db_client` logger,
from the same client methods on SQLite (aiosqlite) and PostgreSQL (asyncpg), inside and
outside transactions. A handler on that logger is therefore a backend-independent
counter that needs no monkey-patching. (BEGIN/COMMIT are not logged, and not counted.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

_NOT_SQL = ("Created connection", "Closed connection", "Created connection pool",
            "Closed connection pool")


class StatementCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = str(record.args[0]) if record.args else str(record.msg)
        if not text.startswith(_NOT_SQL):
            self.statements.append(text)

    @property
    def count(self) -> int:
        return len(self.statements)

    def reset(self) -> None:
        self.statements.clear()


@contextmanager
def count_statements() -> Iterator[StatementCounter]:
    logger = logging.getLogger("tortoise.db_client")
    counter = StatementCounter()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # count them; do not print them
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)
        logger.propagate = propagate
