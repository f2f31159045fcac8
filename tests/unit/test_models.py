"""Pure rules, no database: member, tier and program validation, settings, tokens."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import jwt
import pytest

from api.auth import AuthError, TokenService
from api.settings import DEV_JWT_SECRET, Settings, SettingsError, redact_url
from domain.access import ANONYMOUS, Principal, Role
from domain.errors import DomainError, ErrorCode, ValidationErrors
from domain.members.model import (
    Registration,
    normalize_email,
    normalize_tags,
    validate_registration,
)
from domain.program.model import DEFAULTS, ProgramSettings, validate_program
from domain.tiers.model import (
    TicketPriority,
    Tier,
    TierDraft,
    check_ladder,
    progress,
    tier_for,
    validate_draft,
)

TODAY = date(2024, 6, 15)
SECRET = "unit-test-secret-long-enough-even-for-hs512-0123456789abcdefghijkl"


def fields_of(exc: DomainError) -> list[list[str] | None]:
    errors = exc.errors if isinstance(exc, ValidationErrors) else [exc]
    return [e.field for e in errors]


# --- members --------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "normal"), [
    ("  Ada@Example.COM ", "ada@example.com"),
    ("ada@example.com", "ada@example.com"),
    ("\tGRACE@NAVY.MIL\n", "grace@navy.mil"),
])
def test_normalize_email_trims_and_lowers(raw: str, normal: str) -> None:
    assert normalize_email(raw) == normal


def test_normalize_tags_trims_lowers_and_dedupes_in_first_seen_order() -> None:
    assert normalize_tags([" VIP", "app", "vip ", "Store", "APP"]) == ("vip", "app", "store")
    assert normalize_tags([]) == ()


def test_a_valid_registration_passes() -> None:
    reg = Registration(email="ada@example.com", password="correct horse", name="Ada",
                       birthday=date(1990, 1, 1), external_id="crm-1", tags=("vip", "app"))
    validate_registration(reg, TODAY, password_required=True)
    validate_registration(Registration(email="b@example.org"), TODAY, password_required=False)


@pytest.mark.parametrize(("changes", "field"), [
    ({"email": "not-an-email"}, "email"),
    ({"email": "a@b"}, "email"),
    ({"email": "a b@example.com"}, "email"),
    ({"email": "x" * 250 + "@example.com"}, "email"),
    ({"password": "short"}, "password"),
    ({"password": "x" * 129}, "password"),
    ({"password": None}, "password"),
    ({"name": "  "}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"birthday": date(2024, 6, 16)}, "birthday"),
    ({"birthday": date(1899, 12, 31)}, "birthday"),
    ({"external_id": ""}, "externalId"),
    ({"external_id": "x" * 101}, "externalId"),
    ({"tags": tuple(f"t{i}" for i in range(21))}, "tags"),
    ({"tags": ("x" * 41,)}, "tags"),
    ({"tags": ("#hash",)}, "tags"),
    ({"tags": ("",)}, "tags"),
])
def test_each_invalid_registration_field_is_named(changes: dict[str, object],
                                                  field: str) -> None:
    reg = replace(Registration(email="ada@example.com", password="correct horse"), **changes)
    with pytest.raises(ValidationErrors) as caught:
        validate_registration(reg, TODAY, password_required=True)
    assert fields_of(caught.value) == [[field]]
    assert caught.value.code is ErrorCode.INVALID_INPUT


def test_a_password_is_optional_on_behalf_of_a_member() -> None:
    validate_registration(Registration(email="ada@example.com"), TODAY, password_required=False)


def test_every_invalid_registration_field_is_reported_at_once() -> None:
    reg = Registration(email="nope", password="short", name="", birthday=date(2030, 1, 1),
                       external_id="", tags=("#",))
    with pytest.raises(ValidationErrors) as caught:
        validate_registration(reg, TODAY, password_required=True)
    assert fields_of(caught.value) == [["email"], ["password"], ["name"], ["birthday"],
                                       ["externalId"], ["tags"]]


def test_a_birthday_today_is_fine() -> None:
    validate_registration(Registration(email="a@example.com", birthday=TODAY), TODAY, False)


# --- tiers ----------------------------------------------------------------------------------

SILVER = Tier(1, "Silver", 1, 0, Decimal(1))
GOLD = Tier(2, "Gold", 2, 1000, Decimal("1.25"), support_priority=TicketPriority.HIGH)
PLATINUM = Tier(3, "Platinum", 3, 5000, Decimal("1.5"), support_priority=TicketPriority.URGENT)
LADDER = [PLATINUM, SILVER, GOLD]  # deliberately not in rank order


@pytest.mark.parametrize(("points", "expected"), [
    (0, SILVER), (999, SILVER), (1000, GOLD), (4999, GOLD), (5000, PLATINUM),
    (10 ** 9, PLATINUM),
])
def test_tier_for_is_the_highest_tier_reached(points: int, expected: Tier) -> None:
    assert tier_for(points, LADDER) == expected


def test_tier_for_without_a_reachable_tier_is_none() -> None:
    assert tier_for(0, []) is None
    assert tier_for(999, [GOLD, PLATINUM]) is None


@pytest.mark.parametrize(("points", "current", "nxt", "to_next"), [
    (0, SILVER, GOLD, 1000),
    (400, SILVER, GOLD, 600),
    (1000, GOLD, PLATINUM, 4000),
    (4999, GOLD, PLATINUM, 1),
    (5000, PLATINUM, None, None),
    (7000, PLATINUM, None, None),
])
def test_progress_from_qualifying_points(points: int, current: Tier, nxt: Tier | None,
                                         to_next: int | None) -> None:
    p = progress(points, LADDER)
    assert (p.current, p.next, p.qualifying_points, p.points_to_next, p.valid_until) == (
        current, nxt, points, to_next, None)


def test_progress_of_a_held_tier_counts_from_that_tier() -> None:
    # a member holding Gold with no qualifying points left: Platinum is next, all of it to go
    p = progress(0, LADDER, current=GOLD)
    assert (p.current, p.next, p.points_to_next) == (GOLD, PLATINUM, 5000)

    # a member holding Platinum has nothing next
    assert progress(10, LADDER, current=PLATINUM).next is None


def test_progress_without_tiers() -> None:
    p = progress(0, [])
    assert (p.current, p.next, p.qualifying_points, p.points_to_next) == (None, None, 0, None)


def test_progress_never_needs_negative_points() -> None:
    # held below what its points would reach (e.g. before re-evaluation)
    assert progress(6000, LADDER, current=GOLD).points_to_next == 0


@pytest.mark.parametrize(("draft", "code", "field"), [
    (TierDraft("gold", 9, 9000), ErrorCode.ALREADY_EXISTS, "name"),
    (TierDraft(" GOLD ", 9, 9000), ErrorCode.ALREADY_EXISTS, "name"),
    (TierDraft("Diamond", 2, 9000), ErrorCode.ALREADY_EXISTS, "rank"),
    (TierDraft("Diamond", 4, 5000), ErrorCode.INVALID_INPUT, "threshold"),
    (TierDraft("Diamond", 4, 100), ErrorCode.INVALID_INPUT, "threshold"),
    (TierDraft("Bronze", 0, 1), ErrorCode.INVALID_INPUT, "threshold"),
    (TierDraft("Half", 5, 1000), ErrorCode.INVALID_INPUT, "threshold"),
])
def test_check_ladder_refuses_a_clash(draft: TierDraft, code: ErrorCode, field: str) -> None:
    with pytest.raises(DomainError) as caught:
        check_ladder(draft, LADDER)
    assert (caught.value.code, caught.value.field) == (code, [field])


def test_check_ladder_accepts_a_fitting_tier() -> None:
    check_ladder(TierDraft("Diamond", 4, 20000), LADDER)
    check_ladder(TierDraft("Bronze", 0, 0), [GOLD, PLATINUM])
    check_ladder(TierDraft("Entry", 1, 0), [])
    # a tier compared with the rest of the ladder without itself (an update)
    check_ladder(TierDraft("GOLD", 2, 2000), [SILVER, PLATINUM])


def test_a_valid_draft_passes() -> None:
    validate_draft(TierDraft("Gold", 2, 1000, Decimal("1.25"), ("Free shipping",),
                             TicketPriority.HIGH))
    validate_draft(TierDraft("x" * 50, 1000, 1_000_000_000, Decimal(100)))


@pytest.mark.parametrize(("changes", "field"), [
    ({"name": ""}, "name"),
    ({"name": "x" * 51}, "name"),
    ({"rank": -1}, "rank"),
    ({"rank": 1001}, "rank"),
    ({"threshold": -1}, "threshold"),
    ({"threshold": 1_000_000_001}, "threshold"),
    ({"earn_multiplier": Decimal(0)}, "earnMultiplier"),
    ({"earn_multiplier": Decimal("100.01")}, "earnMultiplier"),
    ({"earn_multiplier": Decimal("1.001")}, "earnMultiplier"),
    ({"earn_multiplier": Decimal("NaN")}, "earnMultiplier"),
    ({"earn_multiplier": Decimal("Infinity")}, "earnMultiplier"),
    ({"benefits": tuple(f"b{i}" for i in range(21))}, "benefits"),
    ({"benefits": (" ",)}, "benefits"),
    ({"benefits": ("x" * 201,)}, "benefits"),
])
def test_each_invalid_draft_field_is_named(changes: dict[str, object], field: str) -> None:
    draft = replace(TierDraft("Gold", 2, 1000), **changes)
    with pytest.raises(ValidationErrors) as caught:
        validate_draft(draft)
    assert fields_of(caught.value) == [[field]]


# --- program --------------------------------------------------------------------------------


def test_the_defaults_are_valid() -> None:
    validate_program(DEFAULTS)
    assert ProgramSettings("Loyalgraph Rewards", "USD", Decimal(1), 0, 365, 365, 0, 0) == DEFAULTS


@pytest.mark.parametrize("changes", [
    {"expiry_days": None},
    {"pending_days": 365, "expiry_days": None},
    {"pending_days": 30, "expiry_days": 31},
    {"points_per_unit": Decimal("0.0001")},
    {"points_per_unit": Decimal(10000)},
    {"name": "x" * 100},
    {"signup_bonus": 1_000_000, "birthday_bonus": 1_000_000},
])
def test_valid_program_settings_pass(changes: dict[str, object]) -> None:
    validate_program(DEFAULTS.changed(**changes))


@pytest.mark.parametrize(("changes", "field"), [
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"currency": "usd"}, "currency"),
    ({"currency": "USD1"}, "currency"),
    ({"points_per_unit": Decimal(0)}, "pointsPerUnit"),
    ({"points_per_unit": Decimal("10000.0001")}, "pointsPerUnit"),
    ({"points_per_unit": Decimal("0.00001")}, "pointsPerUnit"),
    ({"points_per_unit": Decimal("NaN")}, "pointsPerUnit"),
    ({"points_per_unit": Decimal("-Infinity")}, "pointsPerUnit"),
    ({"pending_days": -1}, "pendingDays"),
    ({"pending_days": 366, "expiry_days": None}, "pendingDays"),
    ({"expiry_days": 0}, "expiryDays"),
    ({"expiry_days": 3651}, "expiryDays"),
    ({"pending_days": 10, "expiry_days": 10}, "expiryDays"),
    ({"tier_window_days": 0}, "tierWindowDays"),
    ({"tier_window_days": 3651}, "tierWindowDays"),
    ({"signup_bonus": -1}, "signupBonus"),
    ({"birthday_bonus": 1_000_001}, "birthdayBonus"),
])
def test_each_invalid_program_field_is_named_once(changes: dict[str, object],
                                                  field: str) -> None:
    with pytest.raises(ValidationErrors) as caught:
        validate_program(DEFAULTS.changed(**changes))
    assert fields_of(caught.value) == [[field]]


# --- settings -------------------------------------------------------------------------------


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """from_env creates the SQLite file's directory: keep that out of the checkout."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_from_env_defaults(in_tmp: Path) -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.env, settings.database_url, settings.redis_url, settings.jwt_secret) == (
        "development", "sqlite://./data/loyalgraph.sqlite3", None, DEV_JWT_SECRET)
    assert (settings.introspection, settings.graphiql, settings.is_sqlite) == (True, True, True)
    assert (in_tmp / "data").is_dir()


def test_from_env_reads_every_kind_of_value(in_tmp: Path) -> None:
    settings = Settings.from_env({
        "LOYALTY_ENV": " Production ", "JWT_SECRET": SECRET,
        "DATABASE_URL": "postgresql://u:p@db.internal:5432/loyalty",
        "REDIS_URL": "redis://cache:6379/1", "ACCESS_TOKEN_TTL": "600", "LOG_LEVEL": "debug",
        "WS_ALLOWED_ORIGINS": "https://a.example, ,https://b.example",
        "GRAPHIQL": "yes", "MAX_ALIASES": "5", "LEDGER_KEPT": "0",
    })
    assert settings.is_production
    assert settings.database_url == "postgres://u:p@db.internal:5432/loyalty"
    assert (settings.redis_url, settings.access_token_ttl, settings.log_level) == (
        "redis://cache:6379/1", 600, "DEBUG")
    assert settings.ws_allowed_origins == ("https://a.example", "https://b.example")
    assert (settings.introspection, settings.graphiql, settings.max_aliases) == (False, True, 5)
    assert settings.ledger_kept == 0


def test_production_without_jwt_secret_is_refused(in_tmp: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"LOYALTY_ENV": "production"})
    assert str(caught.value) == "JWT_SECRET must be set when LOYALTY_ENV=production"


@pytest.mark.parametrize("secret", [DEV_JWT_SECRET, "x" * 31])
def test_production_with_a_weak_jwt_secret_is_refused(in_tmp: Path, secret: str) -> None:
    with pytest.raises(SettingsError, match=r"^JWT_SECRET must be at least 32 characters"):
        Settings.from_env({"LOYALTY_ENV": "production", "JWT_SECRET": secret})


@pytest.mark.parametrize(("variable", "value"), [
    ("LOYALTY_ENV", "staging"),
    ("ACCESS_TOKEN_TTL", "ten"),
    ("ACCESS_TOKEN_TTL", "5"),
    ("REFRESH_TOKEN_TTL", "1.5"),
    ("MEMBER_TOKEN_TTL", "99999999"),
    ("DB_POOL_MAX", "0"),
    ("LOG_LEVEL", "loud"),
    ("GRAPHIQL", "maybe"),
    ("GRAPHQL_INTROSPECTION", "2"),
    ("MAX_QUERY_DEPTH", "1"),
    ("MAX_ALIASES", "-3"),
    ("MAX_TOKENS", "99"),
    ("PASSWORD_MEMORY_KIB", "8"),
    ("DATABASE_URL", "mysql://x"),
    ("DATABASE_URL", "sqlite://"),
    ("DATABASE_URL", "postgres://host-without-db"),
    ("REDIS_URL", "http://cache:6379"),
    ("REDIS_URL", "redis://"),
])
def test_each_bad_variable_is_one_line_naming_it(in_tmp: Path, variable: str,
                                                 value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert message.startswith(variable)
    assert "\n" not in message


def test_a_pool_minimum_above_the_maximum_is_refused(in_tmp: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"DB_POOL_MIN": "20", "DB_POOL_MAX": "10"})
    assert str(caught.value) == "DB_POOL_MIN must not exceed DB_POOL_MAX"


@pytest.mark.parametrize(("env", "secret"), [
    ({"DATABASE_URL": "mysql://admin:s3cret@db/loyalty"}, "s3cret"),
    ({"DATABASE_URL": "postgres://admin:s3cret@db"}, "s3cret"),
    ({"REDIS_URL": "http://user:s3cret@cache"}, "s3cret"),
])
def test_errors_never_show_a_password(in_tmp: Path, env: dict[str, str], secret: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert secret not in str(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.parametrize(("url", "redacted"), [
    ("postgres://u:s3cret@h:5432/db", "postgres://u:***@h:5432/db"),
    ("rediss://default:s3cret@cache:6380/0", "rediss://default:***@cache:6380/0"),
    ("postgres://u@h/db", "postgres://u@h/db"),
    ("sqlite://./data/x.sqlite3", "sqlite://./data/x.sqlite3"),
    ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
])
def test_redact_url_hides_only_the_password(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


# --- tokens ---------------------------------------------------------------------------------

SETTINGS = Settings(jwt_secret=SECRET)


@pytest.mark.parametrize(("role", "kw", "principal"), [
    (Role.ADMIN, {}, Principal(Role.ADMIN, "admin")),
    (Role.AGENT, {"subject": "alice"}, Principal(Role.AGENT, "alice")),
    (Role.INTEGRATION, {}, Principal(Role.INTEGRATION, "integration")),
    (Role.MEMBER, {"member_id": 7}, Principal(Role.MEMBER, "member:7", member_id=7)),
    (Role.PARTNER, {"partner_code": "air"}, Principal(Role.PARTNER, "partner",
                                                      partner_code="air")),
])
def test_issue_and_decode_round_trip(role: Role, kw: dict[str, object],
                                     principal: Principal) -> None:
    tokens = TokenService(SETTINGS)
    issued = tokens.issue(role, **kw)  # type: ignore[arg-type]
    decoded = tokens.decode(issued.token)
    assert replace(decoded, expires_at=None) == principal
    assert decoded.expires_at == issued.expires_at.timestamp()
    assert 0 < decoded.expires_at - time.time() <= SETTINGS.access_token_ttl


def test_a_member_id_on_a_non_member_token_is_ignored() -> None:
    tokens = TokenService(SETTINGS)
    decoded = tokens.decode(tokens.issue(Role.ADMIN, member_id=7).token)
    assert (decoded.role, decoded.member_id) == (Role.ADMIN, None)


@pytest.mark.parametrize(("role", "kw"), [(Role.MEMBER, {}), (Role.PARTNER, {})])
def test_issue_refuses_a_token_missing_its_subject(role: Role, kw: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="needs"):
        TokenService(SETTINGS).issue(role, **kw)  # type: ignore[arg-type]


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    # These tokens are built at collection time, so they must outlive the whole suite.
    base: dict[str, object] = {"iss": "loyalgraph", "iat": now, "exp": now + 86400,
                               "sub": "admin", "role": "ADMIN"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(("token", "message"), [
    (jwt.encode(claims(), key="", algorithm="none"), "The token is not valid."),
    (jwt.encode(claims(), "another-secret-that-is-long-enough-012345", algorithm="HS256"),
     "The token is not valid."),
    (jwt.encode(claims(), SECRET, algorithm="HS512"), "The token is not valid."),
    (jwt.encode(claims(iat=int(time.time()) - 120, exp=int(time.time()) - 60), SECRET,
                algorithm="HS256"), "The token has expired."),
    (jwt.encode(claims(iss="someone-else"), SECRET, algorithm="HS256"),
     "The token is not valid."),
    (jwt.encode(claims(exp=None), SECRET, algorithm="HS256"), "The token is not valid."),
    (jwt.encode(claims(role="ROOT"), SECRET, algorithm="HS256"), "The token is not valid."),
    (jwt.encode(claims(role=None), SECRET, algorithm="HS256"), "The token is not valid."),
    (jwt.encode(claims(role="MEMBER"), SECRET, algorithm="HS256"), "The token is not valid."),
    (jwt.encode(claims(role="MEMBER", mid="7"), SECRET, algorithm="HS256"),
     "The token is not valid."),
    (jwt.encode(claims(role="MEMBER", mid=True), SECRET, algorithm="HS256"),
     "The token is not valid."),
    (jwt.encode(claims(role="PARTNER"), SECRET, algorithm="HS256"), "The token is not valid."),
    ("not.a.jwt", "The token is not valid."),
    ("", "The token is not valid."),
])
def test_decode_rejects_what_we_did_not_sign(token: str, message: str) -> None:
    with pytest.raises(AuthError) as caught:
        TokenService(SETTINGS).decode(token)
    assert str(caught.value) == message


def test_a_tampered_token_is_rejected() -> None:
    tokens = TokenService(SETTINGS)
    header, _payload, signature = tokens.issue(Role.AGENT).token.split(".")
    forged = jwt.encode(claims(role="ADMIN"), "x" * 40, algorithm="HS256").split(".")[1]
    with pytest.raises(AuthError):
        tokens.decode(f"{header}.{forged}.{signature}")


async def active(member_id: int) -> bool:
    return member_id == 7


async def test_authenticate_turns_a_header_into_a_principal() -> None:
    tokens = TokenService(SETTINGS)
    assert await tokens.authenticate(None, active) == ANONYMOUS
    assert await tokens.authenticate("   ", active) == ANONYMOUS
    member = await tokens.authenticate(f"bearer {tokens.issue(Role.MEMBER, member_id=7).token}",
                                       active)
    assert (member.role, member.member_id) == (Role.MEMBER, 7)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Token abc"])
async def test_authenticate_refuses_another_scheme(header: str) -> None:
    with pytest.raises(AuthError, match="Bearer"):
        await TokenService(SETTINGS).authenticate(header, active)


async def test_authenticate_refuses_an_inactive_member() -> None:
    tokens = TokenService(SETTINGS)
    with pytest.raises(AuthError, match="not active"):
        await tokens.authenticate(f"Bearer {tokens.issue(Role.MEMBER, member_id=8).token}",
                                  active)
