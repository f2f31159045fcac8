"""Persistence of members, their tags (for filtering) and refresh tokens.

Invariants enforced by the database: e-mail, external id and referral code are unique;
a tag appears once per member; a refresh token hash is unique.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from tortoise import fields
from tortoise.models import Model

from domain import sql
from domain.members.model import MarketingConsent, Member, MemberStatus


class MemberRow(Model):
    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=254, unique=True)
    password_hash = fields.CharField(max_length=255, null=True)
    name = fields.CharField(max_length=100, null=True)
    external_id = fields.CharField(max_length=100, null=True, unique=True)
    status = fields.CharField(max_length=10, default=MemberStatus.ACTIVE.value, db_index=True)
    joined_at = fields.DatetimeField(auto_now_add=True)
    birthday = fields.DateField(null=True)
    birthday_md = fields.CharField(max_length=5, null=True, db_index=True)  # "MM-DD", for jobs
    tags: list[str] = fields.JSONField(default=list)  # type: ignore[assignment]
    referral_code = fields.CharField(max_length=16, unique=True)
    referred_by: fields.ForeignKeyNullableRelation[MemberRow] = fields.ForeignKeyField(
        "models.MemberRow", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    consent_email = fields.BooleanField(default=False)
    consent_sms = fields.BooleanField(default=False)
    consent_push = fields.BooleanField(default=False)
    consent_updated_at = fields.DatetimeField(null=True)
    tier: fields.ForeignKeyNullableRelation[Model] = fields.ForeignKeyField(
        "models.TierRow", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    tier_valid_until = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    referred_by_id: int | None
    tier_id: int | None

    class Meta:
        table = "member"
        indexes = (("status", "tier_valid_until"),)  # the ledger job's lapsed tier holds

    def to_domain(self) -> Member:
        return member_of({column: getattr(self, column) for column in MEMBER_COLUMNS})


MEMBER_COLUMNS = ("id", "email", "password_hash", "name", "external_id", "status", "joined_at",
                  "birthday", "tags", "referral_code", "referred_by_id", "consent_email",
                  "consent_sms", "consent_push", "consent_updated_at", "tier_id",
                  "tier_valid_until")


_STATUSES: dict[Any, MemberStatus] = {**{s.value: s for s in MemberStatus},
                                      **{s: s for s in MemberStatus}}
#: the eight consents there are (frozen values, so shared): cheaper than building one per row
_CONSENTS = {(e, s, p): MarketingConsent(e, s, p)
             for e in (False, True) for s in (False, True) for p in (False, True)}


@lru_cache(maxsize=1024)
def _tags(raw: str | bytes) -> tuple[str, ...]:
    """The tags column's JSON text as a tuple (members share a handful of tag sets)."""
    return tuple(sql.decoded(raw) or ())


def member_of(row: Mapping[str, Any]) -> Member:
    """A member from a model's attributes or from a plain row of `member` (MEMBER_COLUMNS;
    domain.members.queries), whichever the driver typed its values as. A page of members
    goes through here once per row, hence the shared statuses, consents and tag tuples."""
    tags = row["tags"]
    return Member(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        external_id=row["external_id"],
        status=_STATUSES[row["status"]],
        joined_at=sql.dt(row["joined_at"]),  # type: ignore[arg-type]
        birthday=sql.day(row["birthday"]),
        tags=_tags(tags) if isinstance(tags, (str, bytes)) else tuple(tags or ()),
        referral_code=row["referral_code"],
        referred_by_id=row["referred_by_id"],
        consent=_CONSENTS[bool(row["consent_email"]), bool(row["consent_sms"]),
                          bool(row["consent_push"])],
        consent_updated_at=sql.dt(row["consent_updated_at"]),
        tier_id=row["tier_id"],
        tier_valid_until=sql.dt(row["tier_valid_until"]),
        has_password=row["password_hash"] is not None,
    )


class MemberTagRow(Model):
    id = fields.IntField(primary_key=True)
    member: fields.ForeignKeyRelation[MemberRow] = fields.ForeignKeyField(
        "models.MemberRow", related_name="tag_rows", on_delete=fields.CASCADE
    )
    tag = fields.CharField(max_length=40, db_index=True)

    class Meta:
        table = "member_tag"
        unique_together = (("member", "tag"),)


class RefreshTokenRow(Model):
    # One refresh token (only its SHA-256 is stored). A family is the chain of rotations
    # that started at one login; reuse of a spent token revokes the whole family.

    id = fields.IntField(primary_key=True)
    member: fields.ForeignKeyRelation[MemberRow] = fields.ForeignKeyField(
        "models.MemberRow", related_name="refresh_tokens", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    family = fields.CharField(max_length=32, db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    member_id: int

    class Meta:
        table = "refresh_token"
