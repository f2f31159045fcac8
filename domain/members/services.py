"""Use cases for members: registration, credentials, refresh tokens, profile, look-ups.

Each function owns its transaction and raises `DomainError` (changing nothing) for expected
failures. Unique constraints in the database are the last line of defence against races.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, Subquery
from tortoise.transactions import in_transaction

from domain import clock
from domain.errors import Collector, DomainError, ErrorCode
from domain.ledger.book import open_book
from domain.ledger.services import credit_bonus
from domain.ledger.values import Idempotency
from domain.members import passwords
from domain.members.model import (
    MarketingConsent,
    Member,
    MemberFilter,
    MemberStatus,
    Registration,
    check_birthday,
    check_name,
    check_tags,
    new_referral_code,
    normalize_email,
    normalize_tags,
    validate_registration,
)
from domain.members.queries import members_by_ids, members_page
from domain.members.tables import MemberRow, MemberTagRow, RefreshTokenRow
from domain.pagination import Page
from domain.program.services import get_program
from domain.tiers.model import tier_for
from domain.tiers.services import list_tiers


def _unique_violation(exc: IntegrityError) -> DomainError:
    text = str(exc).lower()
    if "external_id" in text:
        return DomainError(ErrorCode.ALREADY_EXISTS, "That external id is taken.", ["externalId"])
    if "referral_code" in text:  # astronomically unlikely; the caller may retry
        return DomainError(ErrorCode.INVALID_STATE, "Please try again.", None)
    return DomainError(ErrorCode.ALREADY_EXISTS, "That e-mail is already registered.", ["email"])


async def register_member(reg: Registration, *, password_required: bool) -> Member:
    reg = replace(
        reg,
        email=normalize_email(reg.email),
        name=reg.name.strip() if reg.name else None,
        external_id=reg.external_id.strip() if reg.external_id else None,
        tags=normalize_tags(reg.tags),
    )
    validate_registration(reg, clock.utcnow().date(), password_required)
    password_hash = await passwords.hash_password(reg.password) if reg.password else None
    async with in_transaction():
        if await MemberRow.exists(email=reg.email):
            raise DomainError(ErrorCode.ALREADY_EXISTS, "That e-mail is already registered.",
                              ["email"])
        if reg.external_id and await MemberRow.exists(external_id=reg.external_id):
            raise DomainError(ErrorCode.ALREADY_EXISTS, "That external id is taken.",
                              ["externalId"])
        referrer_id = None
        if reg.referral_code:
            referrer = await MemberRow.get_or_none(
                referral_code=reg.referral_code.strip().upper(), status=MemberStatus.ACTIVE.value
            )
            if referrer is None:
                raise DomainError(ErrorCode.INVALID_INPUT, "Unknown referral code.",
                                  ["referralCode"])
            referrer_id = referrer.id
        entry = tier_for(0, await list_tiers())
        now = clock.utcnow()
        try:
            row = await MemberRow.create(
                email=reg.email,
                password_hash=password_hash,
                name=reg.name,
                external_id=reg.external_id,
                birthday=reg.birthday,
                birthday_md=reg.birthday.strftime("%m-%d") if reg.birthday else None,
                tags=list(reg.tags),
                referral_code=new_referral_code(),
                referred_by_id=referrer_id,
                consent_email=reg.consent.email,
                consent_sms=reg.consent.sms,
                consent_push=reg.consent.push,
                consent_updated_at=now,
                tier_id=entry.id if entry else None,
            )
            await _write_tags(row.id, reg.tags)
        except IntegrityError as exc:
            raise _unique_violation(exc) from None
        program = await get_program()
        if program.signup_bonus > 0:  # in the same transaction: no member without its bonus
            await credit_bonus(row.id, program.signup_bonus, "sign-up bonus",
                               Idempotency("system", f"signup:{row.id}", {"member": row.id}))
        else:
            await open_book(row.id)  # every member has a balance row from the start
        return row.to_domain()


async def _write_tags(member_id: int, tags: Iterable[str]) -> None:
    await MemberTagRow.filter(member_id=member_id).delete()
    rows = [MemberTagRow(member_id=member_id, tag=t) for t in tags]
    if rows:
        await MemberTagRow.bulk_create(rows)


async def authenticate(email: str, password: str) -> Member:
    """The member with these credentials, or INVALID_CREDENTIALS (the same for every cause)."""
    row = await MemberRow.get_or_none(email=normalize_email(email))
    ok = await passwords.verify_password(row.password_hash if row else None, password)
    if row is None or not ok:
        raise DomainError(ErrorCode.INVALID_CREDENTIALS, "Wrong e-mail or password.")
    if row.status != MemberStatus.ACTIVE.value:
        raise DomainError(ErrorCode.FORBIDDEN, "This account is not active.")
    return row.to_domain()


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_refresh_token(member_id: int, ttl_seconds: int, family: str | None = None) -> str:
    token = secrets.token_urlsafe(32)
    await RefreshTokenRow.create(
        member_id=member_id,
        token_hash=_hash_token(token),
        family=family or secrets.token_hex(16),
        expires_at=clock.utcnow() + timedelta(seconds=ttl_seconds),
    )
    return token


async def rotate_refresh_token(token: str, ttl_seconds: int) -> tuple[Member, str]:
    """Spend a refresh token for a new one in the same family.

    A token presented twice means it leaked: the whole family is revoked, so both the
    thief and the owner must log in again.
    """
    now = clock.utcnow()
    refused = DomainError(ErrorCode.INVALID_CREDENTIALS, "The refresh token is not valid.")
    async with in_transaction():
        row = await RefreshTokenRow.get_or_none(token_hash=_hash_token(token))
        if row is None:
            raise refused
        claimed = await RefreshTokenRow.filter(
            id=row.id, used_at__isnull=True, revoked_at__isnull=True
        ).update(used_at=now)
        if not claimed:
            await RefreshTokenRow.filter(family=row.family, revoked_at__isnull=True).update(
                revoked_at=now
            )
            reused = True
        else:
            reused = False
    if reused:  # committed the revocation above; now refuse
        raise refused
    if row.expires_at <= now:
        raise refused
    member = await MemberRow.get_or_none(id=row.member_id)
    if member is None or member.status != MemberStatus.ACTIVE.value:
        raise refused
    new_token = await create_refresh_token(member.id, ttl_seconds, family=row.family)
    return member.to_domain(), new_token


async def get_member(member_id: int) -> Member | None:
    return (await members_by_ids([member_id])).get(member_id)


async def find_member(*, external_id: str | None = None, email: str | None = None) -> Member | None:
    if external_id is not None:
        row = await MemberRow.get_or_none(external_id=external_id.strip())
    elif email is not None:
        row = await MemberRow.get_or_none(email=normalize_email(email))
    else:
        return None
    return row.to_domain() if row else None


async def get_members_by_ids(ids: Iterable[int]) -> dict[int, Member]:
    return await members_by_ids(ids)


async def update_member(member_id: int, changes: dict[str, Any]) -> Member:
    """Apply profile changes: name, birthday, tags, consent (a MarketingConsent), status."""
    errors = Collector()
    if "name" in changes:
        name = changes["name"]
        changes["name"] = name.strip() if name else None
        check_name(errors, changes["name"])
    if "birthday" in changes:
        check_birthday(errors, changes["birthday"], clock.utcnow().date())
    if "tags" in changes:
        changes["tags"] = normalize_tags(changes["tags"] or ())
        check_tags(errors, changes["tags"])
    errors.check()
    async with in_transaction():
        row = await MemberRow.filter(id=member_id).select_for_update().first()
        if row is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such member.", ["memberId"])
        if row.status == MemberStatus.ERASED.value:
            raise DomainError(ErrorCode.INVALID_STATE, "This member was erased.", ["memberId"])
        if "name" in changes:
            row.name = changes["name"]
        if "birthday" in changes:
            row.birthday = changes["birthday"]
            row.birthday_md = row.birthday.strftime("%m-%d") if row.birthday else None
        if "tags" in changes:
            row.tags = list(changes["tags"])
            await _write_tags(row.id, changes["tags"])
        consent: MarketingConsent | None = changes.get("consent")
        if consent is not None:
            row.consent_email, row.consent_sms, row.consent_push = (
                consent.email, consent.sms, consent.push
            )
            row.consent_updated_at = clock.utcnow()
        if "status" in changes:
            status: MemberStatus = changes["status"]
            if status is MemberStatus.ERASED:
                raise DomainError(ErrorCode.INVALID_INPUT, "Use eraseMember to erase a member.",
                                  ["status"])
            row.status = status.value
            if status is not MemberStatus.ACTIVE:
                await RefreshTokenRow.filter(member_id=row.id, revoked_at__isnull=True).update(
                    revoked_at=clock.utcnow()
                )
        await row.save()
        return row.to_domain()


async def erase_member(member_id: int) -> Member:
    """Forget a member's personal data for good; its id stays so history keeps adding up."""
    async with in_transaction():
        row = await MemberRow.filter(id=member_id).select_for_update().first()
        if row is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such member.", ["memberId"])
        if row.status == MemberStatus.ERASED.value:
            return row.to_domain()
        row.email = f"erased-{row.id}@erased.invalid"
        row.password_hash = None
        row.name = None
        row.external_id = None
        row.birthday = None
        row.birthday_md = None
        row.tags = []
        row.consent_email = row.consent_sms = row.consent_push = False
        row.consent_updated_at = clock.utcnow()
        row.status = MemberStatus.ERASED.value
        await row.save()
        await MemberTagRow.filter(member_id=row.id).delete()
        await RefreshTokenRow.filter(member_id=row.id).delete()
        return row.to_domain()


def _filtered(f: MemberFilter, entry_tier_id: int | None) -> Any:
    qs = MemberRow.all()
    if f.status is not None:
        qs = qs.filter(status=f.status.value)
    if f.tier_id is not None:
        if f.tier_id == entry_tier_id:  # members not yet placed sit on the entry tier
            qs = qs.filter(Q(tier_id=f.tier_id) | Q(tier_id__isnull=True))
        else:
            qs = qs.filter(tier_id=f.tier_id)
    if f.tag:
        tagged = MemberTagRow.filter(tag=f.tag.strip().lower()).values("member_id")
        qs = qs.filter(id__in=Subquery(tagged))
    if f.search and f.search.strip():
        term = f.search.strip()
        qs = qs.filter(
            Q(email__icontains=term) | Q(name__icontains=term) | Q(external_id__icontains=term)
        )
    return qs


async def list_members(f: MemberFilter, after_id: int | None, first: int) -> Page[Member]:
    """Members in joining order (by id), keyset-paginated after `after_id`."""
    if f == MemberFilter():  # the staff page: plain SQL (domain.members.queries)
        return await members_page(after_id, first)
    entry = tier_for(0, await list_tiers()) if f.tier_id is not None else None
    qs = _filtered(f, entry.id if entry else None)
    total = await qs.count()
    page_qs = qs.filter(id__gt=after_id) if after_id is not None else qs
    rows = await page_qs.order_by("id").limit(first + 1)
    return Page(items=[r.to_domain() for r in rows[:first]], has_next=len(rows) > first,
                total=total)

