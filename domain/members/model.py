"""Members: identity, profile and consent rules, pure and fast to test.

Invariant: a stored e-mail is trimmed, lower case and valid; tags are unique, bounded in
count and length; a birthday is never in the future.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum

from domain.errors import Collector

MAX_TAGS = 20
MAX_TAG_LENGTH = 40
MAX_NAME_LENGTH = 100
MAX_EXTERNAL_ID_LENGTH = 100
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I look-alikes
REFERRAL_LENGTH = 8

_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_TAG = re.compile(r"^[\w][\w .:/-]*$", re.UNICODE)


class MemberStatus(str, Enum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    ERASED = "ERASED"


@dataclass(frozen=True)
class MarketingConsent:
    email: bool = False
    sms: bool = False
    push: bool = False


@dataclass(frozen=True)
class Member:
    id: int
    email: str
    name: str | None
    external_id: str | None
    status: MemberStatus
    joined_at: datetime
    birthday: date | None
    tags: tuple[str, ...]
    referral_code: str
    referred_by_id: int | None
    consent: MarketingConsent
    consent_updated_at: datetime | None
    tier_id: int | None
    tier_valid_until: datetime | None = None
    has_password: bool = False


@dataclass(frozen=True)
class MemberFilter:
    tier_id: int | None = None
    status: MemberStatus | None = None
    tag: str | None = None
    search: str | None = None


@dataclass(frozen=True)
class Registration:
    email: str
    password: str | None = None
    name: str | None = None
    birthday: date | None = None
    external_id: str | None = None
    referral_code: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    consent: MarketingConsent = field(default_factory=MarketingConsent)


def normalize_email(raw: str) -> str:
    return raw.strip().lower()


def normalize_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Trimmed, lower-cased, de-duplicated, in first-seen order."""
    seen: dict[str, None] = {}
    for t in tags:
        seen.setdefault(t.strip().lower(), None)
    return tuple(seen)


def new_referral_code() -> str:
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(REFERRAL_LENGTH))


def check_email(errors: Collector, email: str) -> None:
    if len(email) > 254 or not _EMAIL.match(email):
        errors.add("Enter a valid e-mail address.", "email")


def check_name(errors: Collector, name: str | None) -> None:
    if name is not None and not 1 <= len(name.strip()) <= MAX_NAME_LENGTH:
        errors.add(f"Name must be 1 to {MAX_NAME_LENGTH} characters.", "name")


def check_birthday(errors: Collector, birthday: date | None, today: date) -> None:
    if birthday is None:
        return
    if birthday > today:
        errors.add("Birthday cannot be in the future.", "birthday")
    elif birthday.year < 1900:
        errors.add("Birthday must be after 1900.", "birthday")


def check_tags(errors: Collector, tags: tuple[str, ...]) -> None:
    if len(tags) > MAX_TAGS:
        errors.add(f"At most {MAX_TAGS} tags.", "tags")
    for t in tags:
        if not 1 <= len(t) <= MAX_TAG_LENGTH or not _TAG.match(t):
            errors.add(
                f"Tags are 1 to {MAX_TAG_LENGTH} letters, digits, spaces or . : / - _", "tags"
            )
            break


def check_password(errors: Collector, password: str | None, required: bool) -> None:
    if password is None:
        if required:
            errors.add("A password is required.", "password")
        return
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        errors.add(
            f"Password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.",
            "password",
        )


def check_external_id(errors: Collector, external_id: str | None) -> None:
    if external_id is not None and not 1 <= len(external_id.strip()) <= MAX_EXTERNAL_ID_LENGTH:
        errors.add(f"External id must be 1 to {MAX_EXTERNAL_ID_LENGTH} characters.", "externalId")


def validate_registration(r: Registration, today: date, password_required: bool) -> None:
    errors = Collector()
    check_email(errors, r.email)
    check_password(errors, r.password, password_required)
    check_name(errors, r.name)
    check_birthday(errors, r.birthday, today)
    check_external_id(errors, r.external_id)
    check_tags(errors, r.tags)
    errors.check()
