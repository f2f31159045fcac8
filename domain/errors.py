"""Expected failures of use cases, as data the API layer turns into `userErrors`.

Invariant: a service that raises `DomainError` has changed nothing (it raises before its
transaction commits, so the transaction rolls back).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum


class ErrorCode(str, Enum):
    INVALID_INPUT = "INVALID_INPUT"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    LIMIT_REACHED = "LIMIT_REACHED"
    TIER_REQUIRED = "TIER_REQUIRED"
    NOT_AVAILABLE = "NOT_AVAILABLE"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    INVALID_STATE = "INVALID_STATE"


class DomainError(Exception):
    """One expected failure: a code, a message for humans, the input field it concerns."""

    def __init__(self, code: ErrorCode, message: str, field: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = list(field) if field else None


class ValidationErrors(DomainError):
    """Several invalid fields at once, so a form can show them all in one round trip."""

    def __init__(self, errors: Sequence[DomainError]) -> None:
        super().__init__(errors[0].code, errors[0].message, errors[0].field)
        self.errors = list(errors)


def invalid(message: str, *field: str) -> DomainError:
    return DomainError(ErrorCode.INVALID_INPUT, message, field)


class Collector:
    """Gathers validation failures and raises them together."""

    def __init__(self) -> None:
        self.errors: list[DomainError] = []

    def add(self, message: str, *field: str) -> None:
        self.errors.append(invalid(message, *field))

    def check(self) -> None:
        if self.errors:
            raise ValidationErrors(self.errors)
