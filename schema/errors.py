"""Errors as the API shows them: `UserError` for expected failures inside payloads, and
top-level errors (`ApiError` and subclasses) that carry `extensions.code`.

Invariant: every top-level error a client sees has one of the contract's codes; anything
unexpected is masked as INTERNAL_SERVER_ERROR by the schema (see api/graphql.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import strawberry

from domain.errors import DomainError, ErrorCode, ValidationErrors

ErrorCodeEnum = strawberry.enum(ErrorCode, name="ErrorCode",
                                description="Why a mutation refused its input.")


@strawberry.type(description="An expected failure: nothing was changed.")
class UserError:
    field: list[str] | None = strawberry.field(
        description="Path to the input field at fault, e.g. [\"input\", \"email\"]."
    )
    message: str
    code: ErrorCodeEnum  # type: ignore[valid-type]


def user_errors(exc: DomainError) -> list[UserError]:
    errors: Sequence[DomainError] = exc.errors if isinstance(exc, ValidationErrors) else [exc]
    return [
        UserError(field=["input", *e.field] if e.field else None, message=e.message, code=e.code)
        for e in errors
    ]


def user_error(code: ErrorCode, message: str, *field: str) -> list[UserError]:
    return user_errors(DomainError(code, message, field))


class ApiError(Exception):
    """A top-level error with a stable `extensions.code`."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code

    @property
    def extensions(self) -> dict[str, str]:
        return {"code": self.code}


class Unauthenticated(ApiError):
    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "Authentication required.") -> None:
        super().__init__(message)


class Forbidden(ApiError):
    code = "FORBIDDEN"

    def __init__(self, message: str = "You are not allowed to do this.") -> None:
        super().__init__(message)


class BadUserInput(ApiError):
    code = "BAD_USER_INPUT"
