"""Persistence of members, their tags (for filtering) and refresh tokens.

Invariants enforced by the database: e-mail, external id and referral code are unique;
a tag appears once per member; a refresh token hash is unique.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

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

    def to_domain(self) -> Member:
        return Member(
            id=self.id,
            email=self.email,
            name=self.name,
            external_id=self.external_id,
            status=MemberStatus(self.status),
            joined_at=self.joined_at,
            birthday=self.birthday,
            tags=tuple(self.tags or ()),
            referral_code=self.referral_code,
            referred_by_id=self.referred_by_id,
            consent=MarketingConsent(self.consent_email, self.consent_sms, self.consent_push),
            consent_updated_at=self.consent_updated_at,
            tier_id=self.tier_id,
            tier_valid_until=self.tier_valid_until,
            has_password=self.password_hash is not None,
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
