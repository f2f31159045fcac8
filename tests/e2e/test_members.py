"""Members over the GraphQL API: sign-up, login, tokens, profile changes, look-ups, node.

Every refused operation is followed by a read that shows nothing changed.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from conftest import TEST_SECRET, error_codes

from domain.access import Role
from tests.e2e.helpers import (
    ERASE,
    ISSUE_TOKEN,
    MEMBER_BY,
    MEMBERS,
    PASSWORD,
    REFRESH,
    REGISTER,
    UPDATE,
    VIEWER,
    admin_member,
    all_members,
    claims_of,
    create_tier,
    gid,
    key_of,
    login,
    me,
    member_emails,
    problems,
    register,
    register_refused,
    seconds_from_now,
    top_level,
)

REFERRAL_CODE = re.compile(r"^[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{8}$")
NO_CONSENT = {"email": False, "sms": False, "push": False}


def tomorrow() -> str:
    return (datetime.now(UTC).date() + timedelta(days=1)).isoformat()


def member_token(gql: Any, member_gid: str) -> str:
    return gql.token(Role.MEMBER, member_id=key_of(member_gid))  # type: ignore[no-any-return]


def partner_token(gql: Any) -> str:
    return gql.token(Role.PARTNER, partner_code="ACME")  # type: ignore[no-any-return]


async def total(gql: Any) -> int:
    return (await all_members(gql))["totalCount"]  # type: ignore[no-any-return]


# --- registerMember -------------------------------------------------------------------------


async def test_self_signup_returns_the_member_and_a_working_token(gql: Any) -> None:
    # given an anonymous visitor
    # when it signs up with a messy e-mail, a profile and consent
    payload = await register(
        gql, "  Alice.Smith@Example.COM ", name="  Alice Smith ", birthday="1990-04-01",
        tags=["VIP", " vip ", "Newsletter"], marketingConsent={"email": True, "push": True},
    )

    # then the member is stored normalised
    m = payload["member"]
    assert m["email"] == "alice.smith@example.com"
    assert m["name"] == "Alice Smith"
    assert m["externalId"] is None
    assert m["status"] == "ACTIVE"
    assert m["birthday"] == "1990-04-01"
    assert m["tags"] == ["vip", "newsletter"]
    assert REFERRAL_CODE.match(m["referralCode"]), m["referralCode"]
    assert m["marketingConsent"] == {"email": True, "sms": False, "push": True}
    assert abs(seconds_from_now(m["joinedAt"])) < 60
    # and the access token is a MEMBER token for it that the API accepts
    token = payload["accessToken"]
    claims = claims_of(token, TEST_SECRET)
    assert (claims["role"], claims["mid"]) == ("MEMBER", key_of(m["id"]))
    assert await me(gql, token) == m
    viewer = (await gql.ok(VIEWER, token=token))["viewer"]
    assert viewer == {"role": "MEMBER", "subject": f"member:{key_of(m['id'])}",
                      "partnerCode": None, "member": {"id": m["id"], "email": m["email"]}}
    # and what was returned is what was stored
    assert await admin_member(gql, m["id"]) == m


async def test_sign_up_without_consent_stores_no_consent(gql: Any) -> None:
    # when a member signs up without saying anything about marketing
    m = (await register(gql, "quiet@example.com"))["member"]
    # then it has agreed to nothing, no tags, no name, no birthday
    stored = await admin_member(gql, m["id"])
    assert stored is not None
    assert stored["marketingConsent"] == NO_CONSENT
    assert (stored["tags"], stored["name"], stored["birthday"]) == ([], None, None)


async def test_duplicate_email_in_any_case_is_refused(gql: Any) -> None:
    # given a member
    first = (await register(gql, "dup@example.com"))["member"]
    # when someone signs up with the same e-mail in another case, padded
    payload = await register_refused(gql, email="  DUP@Example.Com ")
    # then ALREADY_EXISTS on input.email, and still one member
    assert problems(payload) == [("ALREADY_EXISTS", ["input", "email"])]
    assert await member_emails(gql) == ["dup@example.com"]
    assert (await all_members(gql))["edges"][0]["node"]["id"] == first["id"]


FUTURE = "future"
INVALID_CASES = [
    pytest.param({"email": "not-an-email"}, "email", id="email-without-at"),
    pytest.param({"email": "two@@example.com"}, "email", id="email-double-at"),
    pytest.param({"name": "x" * 101}, "name", id="name-101-chars"),
    pytest.param({"name": "   "}, "name", id="name-blank"),
    pytest.param({"birthday": FUTURE}, "birthday", id="birthday-tomorrow"),
    pytest.param({"birthday": "1899-12-31"}, "birthday", id="birthday-before-1900"),
    pytest.param({"tags": [f"t{i}" for i in range(21)]}, "tags", id="21-tags"),
    pytest.param({"tags": ["ok", "bad<tag>"]}, "tags", id="tag-bad-chars"),
    pytest.param({"tags": ["x" * 41]}, "tags", id="tag-41-chars"),
    pytest.param({"password": "seven77"}, "password", id="password-7-chars"),
    pytest.param({"password": None}, "password", id="password-missing"),
]


@pytest.mark.parametrize(("override", "field"), INVALID_CASES)
async def test_invalid_sign_up_is_refused_on_its_field(gql: Any, override: dict[str, Any],
                                                       field: str) -> None:
    # given a sign-up with one bad value
    fields = {"email": "new@example.com", "name": "New", **override}
    if fields.get("birthday") == FUTURE:
        fields["birthday"] = tomorrow()
    # when it is submitted
    payload = await register_refused(gql, **fields)
    # then exactly that field is reported and no member exists
    assert problems(payload) == [("INVALID_INPUT", ["input", field])]
    assert await total(gql) == 0


async def test_several_invalid_fields_are_reported_together(gql: Any) -> None:
    # when every field is wrong at once
    payload = await register_refused(
        gql, email="nope", password="short", name="x" * 101, birthday=tomorrow(),
        tags=[f"t{i}" for i in range(21)],
    )
    # then each is reported, in input order, in one round trip
    assert problems(payload) == [
        ("INVALID_INPUT", ["input", "email"]),
        ("INVALID_INPUT", ["input", "password"]),
        ("INVALID_INPUT", ["input", "name"]),
        ("INVALID_INPUT", ["input", "birthday"]),
        ("INVALID_INPUT", ["input", "tags"]),
    ]
    assert await total(gql) == 0


async def test_values_at_the_limits_are_accepted(gql: Any) -> None:
    # when every value sits exactly on its limit
    today = datetime.now(UTC).date().isoformat()
    tags = [f"tag-{i}" for i in range(20)]
    payload = await register(gql, "limits@example.com", password="eight888", name="y" * 100,
                             birthday=today, tags=tags)
    # then the member is created with them
    m = payload["member"]
    assert (m["name"], m["birthday"], m["tags"]) == ("y" * 100, today, tags)
    assert (await login(gql, "limits@example.com", "eight888"))["userErrors"] == []


async def test_anonymous_sign_up_with_external_id_is_forbidden(gql: Any) -> None:
    # when an anonymous caller tries to claim a brand id
    payload = await register_refused(gql, email="ext@example.com", externalId="crm-1")
    # then FORBIDDEN on input.externalId, and nothing was created
    assert problems(payload) == [("FORBIDDEN", ["input", "externalId"])]
    assert await total(gql) == 0


@pytest.mark.parametrize("role", [Role.INTEGRATION, Role.ADMIN])
async def test_back_end_registers_with_external_id_and_no_password(gql: Any, role: Role) -> None:
    # when the brand's back end (or an admin) registers a member on its behalf
    payload = await register(gql, "Crm.Member@Example.com", token=gql.token(role),
                             password=None, externalId=" crm-42 ", name="Crm Member")
    # then the member carries the external id and gets a working member token
    m = payload["member"]
    assert (m["email"], m["externalId"], m["status"]) == ("crm.member@example.com", "crm-42",
                                                          "ACTIVE")
    assert (await me(gql, payload["accessToken"]))["id"] == m["id"]  # type: ignore[index]
    found = (await gql.as_admin(MEMBER_BY, {"externalId": "crm-42"}))["member"]
    assert found == m
    # and, having no password, it cannot log in with one
    refused = await login(gql, "crm.member@example.com", PASSWORD)
    assert problems(refused) == [("INVALID_CREDENTIALS", None)]


async def test_duplicate_external_id_is_refused(gql: Any) -> None:
    # given a member with an external id
    integration = gql.token(Role.INTEGRATION)
    await register(gql, "one@example.com", token=integration, password=None, externalId="crm-7")
    # when another member is registered with the same external id
    payload = await register_refused(gql, token=integration, email="two@example.com",
                                     externalId="crm-7")
    # then ALREADY_EXISTS on input.externalId and still one member
    assert problems(payload) == [("ALREADY_EXISTS", ["input", "externalId"])]
    assert await member_emails(gql) == ["one@example.com"]


async def test_referral_code_of_an_existing_member_is_accepted(gql: Any) -> None:
    # given a member and its referral code
    referrer = (await register(gql, "referrer@example.com"))["member"]
    # when a friend signs up with it
    friend = (await register(gql, "friend@example.com",
                             referralCode=referrer["referralCode"]))["member"]
    # then the friend is a member with a code of its own
    assert friend["status"] == "ACTIVE"
    assert REFERRAL_CODE.match(friend["referralCode"])
    assert friend["referralCode"] != referrer["referralCode"]
    assert await member_emails(gql) == ["referrer@example.com", "friend@example.com"]


async def test_unknown_referral_code_is_refused(gql: Any) -> None:
    # given one member
    await register(gql, "referrer@example.com")
    # when a friend signs up with a code nobody has
    payload = await register_refused(gql, email="friend@example.com", referralCode="ZZZZZZZZ")
    # then INVALID_INPUT on input.referralCode, and the friend was not created
    assert problems(payload) == [("INVALID_INPUT", ["input", "referralCode"])]
    assert await member_emails(gql) == ["referrer@example.com"]


@pytest.mark.parametrize("role", [Role.MEMBER, Role.AGENT, Role.PARTNER])
async def test_member_agent_and_partner_may_not_register(gql: Any, role: Role) -> None:
    # given a caller of a role that may not register members
    existing = (await register(gql, "existing@example.com"))["member"]
    token = {Role.MEMBER: member_token(gql, existing["id"]),
             Role.AGENT: gql.token(Role.AGENT),
             Role.PARTNER: partner_token(gql)}[role]
    # when it calls registerMember
    body = await gql.raw(REGISTER, {"input": {"email": "x@example.com", "password": PASSWORD}},
                         token)
    # then a top-level FORBIDDEN, no data, and no member was created
    assert top_level(body) == [("FORBIDDEN", ("registerMember",))]
    assert body["data"] is None
    assert await member_emails(gql) == ["existing@example.com"]


# --- login ----------------------------------------------------------------------------------


async def test_login_with_the_right_password_returns_tokens(gql: Any) -> None:
    # given a member
    m = (await register(gql, "login@example.com"))["member"]
    # when it logs in (e-mail in another case)
    payload = await login(gql, " LOGIN@example.com ")
    # then it gets an access token, a refresh token and the access token's expiry
    assert payload["userErrors"] == []
    assert payload["member"] == {"id": m["id"], "email": "login@example.com", "status": "ACTIVE"}
    assert isinstance(payload["refreshToken"], str) and len(payload["refreshToken"]) >= 32
    claims = claims_of(payload["accessToken"], TEST_SECRET)
    assert (claims["role"], claims["mid"]) == ("MEMBER", key_of(m["id"]))
    assert abs(seconds_from_now(payload["expiresAt"]) - 900) < 30
    assert datetime.fromisoformat(payload["expiresAt"]).timestamp() == claims["exp"]
    assert (await me(gql, payload["accessToken"]))["email"] == "login@example.com"  # type: ignore[index]


async def test_wrong_password_and_unknown_email_are_indistinguishable(gql: Any) -> None:
    # given a member
    await register(gql, "known@example.com")
    # when one login has the wrong password and another an unknown e-mail
    wrong = await login(gql, "known@example.com", "wrong password")
    unknown = await login(gql, "nobody@example.com", PASSWORD)
    # then both are the same INVALID_CREDENTIALS, with no tokens
    assert wrong == unknown
    assert problems(wrong) == [("INVALID_CREDENTIALS", None)]
    assert wrong["accessToken"] is wrong["refreshToken"] is wrong["expiresAt"] is None
    assert wrong["member"] is None


async def test_three_failures_lock_out_even_the_right_password(gql: Any) -> None:
    # given a member and another one
    await register(gql, "victim@example.com")
    await register(gql, "bystander@example.com")
    # when three wrong passwords are tried (login_max_failures=3)
    for attempt in ("guess1", "guess2", "Guess3"):
        assert problems(await login(gql, "victim@example.com", attempt)) == [
            ("INVALID_CREDENTIALS", None)]
    # then even the right password is refused, whatever the e-mail's case
    locked = await login(gql, "victim@example.com")
    assert problems(locked) == [("LIMIT_REACHED", None)]
    assert locked["accessToken"] is None
    assert problems(await login(gql, " VICTIM@example.com")) == [("LIMIT_REACHED", None)]
    # and other members are not affected
    assert (await login(gql, "bystander@example.com"))["userErrors"] == []


async def test_a_successful_login_resets_the_failure_count(gql: Any) -> None:
    # given a member that failed twice, then logged in
    await register(gql, "forgetful@example.com")
    for _ in range(2):
        await login(gql, "forgetful@example.com", "nope-nope")
    assert (await login(gql, "forgetful@example.com"))["userErrors"] == []
    # when it fails twice more
    for _ in range(2):
        await login(gql, "forgetful@example.com", "nope-nope")
    # then it may still log in
    assert (await login(gql, "forgetful@example.com"))["userErrors"] == []


async def test_suspended_member_cannot_log_in(gql: Any) -> None:
    # given a suspended member
    m = (await register(gql, "suspended@example.com"))["member"]
    await suspend(gql, m["id"])
    # when it logs in with the right password
    payload = await login(gql, "suspended@example.com")
    # then FORBIDDEN, no tokens
    assert problems(payload) == [("FORBIDDEN", None)]
    assert payload["accessToken"] is None and payload["member"] is None


# --- refreshToken ---------------------------------------------------------------------------


async def refresh(gql: Any, token: str) -> dict[str, Any]:
    return (await gql.ok(REFRESH, {"input": {"refreshToken": token}}))["refreshToken"]  # type: ignore[no-any-return]


async def test_refresh_token_rotates(gql: Any) -> None:
    # given a logged-in member
    m = (await register(gql, "rotate@example.com"))["member"]
    first = await login(gql, "rotate@example.com")
    # when it spends its refresh token
    second = await refresh(gql, first["refreshToken"])
    # then it gets a new pair for the same member
    assert second["userErrors"] == []
    assert second["member"] == {"id": m["id"], "email": "rotate@example.com"}
    assert second["refreshToken"] != first["refreshToken"]
    assert abs(seconds_from_now(second["expiresAt"]) - 900) < 30
    assert (await me(gql, second["accessToken"]))["id"] == m["id"]  # type: ignore[index]
    # and the new refresh token rotates in turn
    third = await refresh(gql, second["refreshToken"])
    assert third["userErrors"] == []
    assert third["refreshToken"] not in (first["refreshToken"], second["refreshToken"])


async def test_reusing_a_refresh_token_revokes_its_family(gql: Any) -> None:
    # given a member that rotated its refresh token once
    await register(gql, "family@example.com")
    first = await login(gql, "family@example.com")
    second = await refresh(gql, first["refreshToken"])
    other_login = await login(gql, "family@example.com")
    # when the spent token is presented again
    replay = await refresh(gql, first["refreshToken"])
    # then it is refused
    assert problems(replay) == [("INVALID_CREDENTIALS", None)]
    assert replay["accessToken"] is replay["refreshToken"] is replay["member"] is None
    # and so is the newer token of the same family
    assert problems(await refresh(gql, second["refreshToken"])) == [("INVALID_CREDENTIALS", None)]
    # while a separate login's family still works
    assert (await refresh(gql, other_login["refreshToken"]))["userErrors"] == []


@pytest.mark.parametrize("token", ["garbage", "", "x" * 500])
async def test_garbage_refresh_token_is_refused(gql: Any, token: str) -> None:
    payload = await refresh(gql, token)
    assert problems(payload) == [("INVALID_CREDENTIALS", None)]
    assert payload["accessToken"] is None


# --- issueMemberToken -----------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.INTEGRATION, Role.ADMIN])
async def test_back_end_issues_a_member_token(gql: Any, role: Role) -> None:
    # given a member
    m = (await register(gql, "issued@example.com"))["member"]
    # when the back end asks for a token for it
    data = await gql.ok(ISSUE_TOKEN, {"input": {"memberId": m["id"]}}, gql.token(role))
    payload = data["issueMemberToken"]
    # then it gets a member token (member_token_ttl: one hour) that acts as that member
    assert payload["userErrors"] == []
    assert payload["member"] == {"id": m["id"], "email": "issued@example.com"}
    assert abs(seconds_from_now(payload["expiresAt"]) - 3600) < 30
    claims = claims_of(payload["accessToken"], TEST_SECRET)
    assert (claims["role"], claims["mid"]) == ("MEMBER", key_of(m["id"]))
    assert (await me(gql, payload["accessToken"]))["id"] == m["id"]  # type: ignore[index]


@pytest.mark.parametrize("role", [Role.MEMBER, Role.AGENT, Role.PARTNER, None])
async def test_others_may_not_issue_member_tokens(gql: Any, role: Role | None) -> None:
    m = (await register(gql, "target@example.com"))["member"]
    token = {Role.MEMBER: member_token(gql, m["id"]), Role.AGENT: gql.token(Role.AGENT),
             Role.PARTNER: partner_token(gql), None: None}[role]
    body = await gql.raw(ISSUE_TOKEN, {"input": {"memberId": m["id"]}}, token)
    expected = "UNAUTHENTICATED" if role is None else "FORBIDDEN"
    assert top_level(body) == [(expected, ("issueMemberToken",))]
    assert body["data"] is None


@pytest.mark.parametrize("member_id", [gid("Member", 999), gid("Tier", 1), "nonsense"])
async def test_issue_member_token_for_an_unknown_member_is_not_found(gql: Any,
                                                                     member_id: str) -> None:
    data = await gql.ok(ISSUE_TOKEN, {"input": {"memberId": member_id}},
                        gql.token(Role.INTEGRATION))
    payload = data["issueMemberToken"]
    assert problems(payload) == [("NOT_FOUND", ["input", "memberId"])]
    assert payload["accessToken"] is payload["member"] is payload["expiresAt"] is None


async def test_issue_member_token_for_a_suspended_member_is_not_found(gql: Any) -> None:
    m = (await register(gql, "asleep@example.com"))["member"]
    await suspend(gql, m["id"])
    data = await gql.ok(ISSUE_TOKEN, {"input": {"memberId": m["id"]}}, gql.token(Role.ADMIN))
    assert problems(data["issueMemberToken"]) == [("NOT_FOUND", ["input", "memberId"])]


# --- updateMember / eraseMember -------------------------------------------------------------


async def update(gql: Any, token: str | None, **fields: Any) -> dict[str, Any]:
    return (await gql.ok(UPDATE, {"input": fields}, token))["updateMember"]  # type: ignore[no-any-return]


async def suspend(gql: Any, member_id: str) -> None:
    payload = await update(gql, gql.token(Role.ADMIN), memberId=member_id, status="SUSPENDED")
    assert payload["userErrors"] == [], payload
    assert payload["member"]["status"] == "SUSPENDED"


async def test_member_updates_its_own_profile(gql: Any) -> None:
    # given a member
    signup = await register(gql, "self@example.com", name="Old Name",
                            marketingConsent={"sms": True})
    token = signup["accessToken"]
    # when it changes its name, birthday, tags and consent (no memberId: itself)
    payload = await update(gql, token, name="  New Name ", birthday="1985-12-24",
                           tags=["Gold", " gold", "Early-Bird", "VIP"],
                           marketingConsent={"email": True, "push": True})
    # then exactly those values are stored, tags lower case and de-duplicated
    assert payload["userErrors"] == []
    m = payload["member"]
    assert (m["name"], m["birthday"], m["tags"]) == ("New Name", "1985-12-24",
                                                     ["gold", "early-bird", "vip"])
    assert m["marketingConsent"] == {"email": True, "sms": False, "push": True}
    assert (m["email"], m["status"]) == ("self@example.com", "ACTIVE")
    assert await me(gql, token) == m
    # and a later change of one field leaves the others alone
    payload = await update(gql, token, memberId=m["id"], tags=[])
    assert await me(gql, token) == {**m, "tags": []}
    # and null clears a nullable field
    payload = await update(gql, token, name=None, birthday=None)
    assert payload["userErrors"] == []
    assert await me(gql, token) == {**m, "tags": [], "name": None, "birthday": None}


async def test_member_may_not_update_another_member(gql: Any) -> None:
    # given two members
    mallory = await register(gql, "mallory@example.com", name="Mallory")
    victim = (await register(gql, "victim@example.com", name="Victim", tags=["a"]))["member"]
    # when one tries to change the other's profile
    payload = await update(gql, mallory["accessToken"], memberId=victim["id"], name="Owned",
                           tags=["owned"])
    # then FORBIDDEN on input.memberId, and the other is unchanged
    assert problems(payload) == [("FORBIDDEN", ["input", "memberId"])]
    assert payload["member"] is None
    assert await admin_member(gql, victim["id"]) == victim
    assert (await me(gql, mallory["accessToken"]))["name"] == "Mallory"  # type: ignore[index]


async def test_invalid_profile_change_changes_nothing(gql: Any) -> None:
    signup = await register(gql, "steady@example.com", name="Steady", tags=["keep"])
    payload = await update(gql, signup["accessToken"], name="z" * 101, tags=["bad<tag>"],
                           birthday=tomorrow())
    assert problems(payload) == [("INVALID_INPUT", ["input", "name"]),
                                 ("INVALID_INPUT", ["input", "birthday"]),
                                 ("INVALID_INPUT", ["input", "tags"])]
    assert await me(gql, signup["accessToken"]) == signup["member"]


async def test_agent_updates_any_member(gql: Any) -> None:
    # given a member
    m = (await register(gql, "helped@example.com", name="Helped"))["member"]
    # when an agent fixes its profile
    payload = await update(gql, gql.token(Role.AGENT), memberId=m["id"], name="Helped Twice",
                           tags=["Support"])
    # then the change is stored
    assert payload["userErrors"] == []
    assert await admin_member(gql, m["id"]) == {**m, "name": "Helped Twice", "tags": ["support"]}


async def test_staff_must_name_the_member(gql: Any) -> None:
    m = (await register(gql, "unnamed@example.com", name="Unnamed"))["member"]
    payload = await update(gql, gql.token(Role.AGENT), name="Who?")
    assert problems(payload) == [("INVALID_INPUT", ["input", "memberId"])]
    assert await admin_member(gql, m["id"]) == m


@pytest.mark.parametrize("role", [Role.INTEGRATION, Role.PARTNER, None])
async def test_others_may_not_update_members(gql: Any, role: Role | None) -> None:
    m = (await register(gql, "guarded@example.com", name="Guarded"))["member"]
    token = partner_token(gql) if role is Role.PARTNER else gql.token(role) if role else None
    body = await gql.raw(UPDATE, {"input": {"memberId": m["id"], "name": "Hacked"}}, token)
    expected = "UNAUTHENTICATED" if role is None else "FORBIDDEN"
    assert top_level(body) == [(expected, ("updateMember",))]
    assert body["data"] is None
    assert await admin_member(gql, m["id"]) == m


@pytest.mark.parametrize("role", [Role.AGENT, Role.MEMBER])
async def test_only_admin_changes_a_status(gql: Any, role: Role) -> None:
    # given a member
    signup = await register(gql, "status@example.com", name="Status")
    m = signup["member"]
    token = signup["accessToken"] if role is Role.MEMBER else gql.token(role)
    # when an agent (or the member itself) tries to suspend it, along with a name change
    payload = await update(gql, token, memberId=m["id"], status="SUSPENDED", name="Changed")
    # then FORBIDDEN on input.status, and nothing changed, not even the name
    assert problems(payload) == [("FORBIDDEN", ["input", "status"])]
    assert payload["member"] is None
    assert await admin_member(gql, m["id"]) == m


async def test_admin_may_not_set_erased_through_update(gql: Any) -> None:
    m = (await register(gql, "noterase@example.com"))["member"]
    payload = await update(gql, gql.token(Role.ADMIN), memberId=m["id"], status="ERASED")
    assert problems(payload) == [("INVALID_INPUT", ["input", "status"])]
    assert await admin_member(gql, m["id"]) == m


async def test_suspension_revokes_every_credential_until_reactivated(gql: Any) -> None:
    # given a logged-in member
    signup = await register(gql, "paused@example.com")
    m = signup["member"]
    session = await login(gql, "paused@example.com")
    assert await me(gql, signup["accessToken"]) is not None
    # when an admin suspends it
    await suspend(gql, m["id"])
    # then its existing access tokens are refused at the top level
    for token in (signup["accessToken"], session["accessToken"]):
        body = await gql.raw("{ me { id } }", token=token)
        assert top_level(body) == [("UNAUTHENTICATED", None)]
        assert body["data"] is None
    # and its refresh token and password no longer work
    assert problems(await refresh(gql, session["refreshToken"])) == [
        ("INVALID_CREDENTIALS", None)]
    assert problems(await login(gql, "paused@example.com")) == [("FORBIDDEN", None)]
    # and staff see it suspended
    assert (await admin_member(gql, m["id"]))["status"] == "SUSPENDED"  # type: ignore[index]
    # when it is reactivated, the old access token and the password work again
    payload = await update(gql, gql.token(Role.ADMIN), memberId=m["id"], status="ACTIVE")
    assert payload["member"]["status"] == "ACTIVE"
    assert (await me(gql, signup["accessToken"]))["id"] == m["id"]  # type: ignore[index]
    assert (await login(gql, "paused@example.com"))["userErrors"] == []
    # but the refresh token revoked by the suspension stays dead
    assert problems(await refresh(gql, session["refreshToken"])) == [
        ("INVALID_CREDENTIALS", None)]


async def test_erase_member_wipes_personal_data(gql: Any) -> None:
    # given a member with a full profile, registered by the back end
    payload = await register(gql, "forget.me@example.com", token=gql.token(Role.INTEGRATION),
                             externalId="crm-99", name="Forget Me", birthday="1970-01-01",
                             tags=["vip"], marketingConsent={"email": True, "sms": True})
    m, token = payload["member"], payload["accessToken"]
    session = await login(gql, "forget.me@example.com")
    # when an admin erases it
    data = await gql.as_admin(ERASE, {"input": {"memberId": m["id"]}})
    erased = data["eraseMember"]["member"]
    # then only the id, joining date and referral code remain
    assert data["eraseMember"]["userErrors"] == []
    expected = {**m, "email": f"erased-{key_of(m['id'])}@erased.invalid", "name": None,
                "externalId": None, "birthday": None, "tags": [], "status": "ERASED",
                "marketingConsent": NO_CONSENT}
    assert erased == expected
    assert await admin_member(gql, m["id"]) == expected
    # and it can no longer be found by its old e-mail, external id or tag
    for selector in ({"email": "forget.me@example.com"}, {"externalId": "crm-99"}):
        assert (await gql.as_admin(MEMBER_BY, selector))["member"] is None
    assert await member_emails(gql, tag="vip") == []
    # and its tokens and credentials are dead
    body = await gql.raw("{ me { id } }", token=token)
    assert top_level(body) == [("UNAUTHENTICATED", None)] and body["data"] is None
    assert problems(await refresh(gql, session["refreshToken"])) == [
        ("INVALID_CREDENTIALS", None)]
    assert problems(await login(gql, "forget.me@example.com")) == [
        ("INVALID_CREDENTIALS", None)]
    # and its profile cannot be changed any more
    refused = await update(gql, gql.token(Role.ADMIN), memberId=m["id"], name="Back")
    assert problems(refused) == [("INVALID_STATE", ["input", "memberId"])]
    assert await admin_member(gql, m["id"]) == expected
    # and the e-mail is free for a new sign-up
    again = (await register(gql, "forget.me@example.com"))["member"]
    assert again["id"] != m["id"]


@pytest.mark.parametrize("role", [Role.AGENT, Role.INTEGRATION, Role.MEMBER])
async def test_only_admin_erases(gql: Any, role: Role) -> None:
    signup = await register(gql, "keep@example.com", name="Keep")
    m = signup["member"]
    token = signup["accessToken"] if role is Role.MEMBER else gql.token(role)
    body = await gql.raw(ERASE, {"input": {"memberId": m["id"]}}, token)
    assert top_level(body) == [("FORBIDDEN", ("eraseMember",))]
    assert body["data"] is None
    assert await admin_member(gql, m["id"]) == m


@pytest.mark.parametrize("member_id", [gid("Member", 404), "garbage", gid("Tier", 1)])
async def test_erase_or_update_an_unknown_member_is_not_found(gql: Any, member_id: str) -> None:
    m = (await register(gql, "bystander@example.com"))["member"]
    data = await gql.as_admin(ERASE, {"input": {"memberId": member_id}})
    assert problems(data["eraseMember"]) == [("NOT_FOUND", ["input", "memberId"])]
    assert data["eraseMember"]["member"] is None
    payload = await update(gql, gql.token(Role.AGENT), memberId=member_id, name="Nobody")
    assert problems(payload) == [("NOT_FOUND", ["input", "memberId"])]
    assert payload["member"] is None
    assert await admin_member(gql, m["id"]) == m


# --- queries: me, viewer, member ------------------------------------------------------------


async def test_me_is_null_for_everyone_but_members(gql: Any) -> None:
    await register(gql, "someone@example.com")
    for token in (None, gql.token(Role.ADMIN), gql.token(Role.AGENT),
                  gql.token(Role.INTEGRATION), partner_token(gql)):
        assert await gql.ok("{ me { id } }", token=token) == {"me": None}


async def test_viewer_shows_role_and_subject(gql: Any) -> None:
    m = (await register(gql, "viewer@example.com"))["member"]
    key = key_of(m["id"])
    cases = [
        (None, {"role": None, "subject": None, "partnerCode": None, "member": None}),
        (gql.token(Role.ADMIN), {"role": "ADMIN", "subject": "admin", "partnerCode": None,
                                 "member": None}),
        (gql.token(Role.AGENT, subject="agent:jo"), {"role": "AGENT", "subject": "agent:jo",
                                                    "partnerCode": None, "member": None}),
        (gql.token(Role.INTEGRATION), {"role": "INTEGRATION", "subject": "integration",
                                       "partnerCode": None, "member": None}),
        (partner_token(gql), {"role": "PARTNER", "subject": "partner", "partnerCode": "ACME",
                              "member": None}),
        (gql.token(Role.MEMBER, member_id=key),
         {"role": "MEMBER", "subject": f"member:{key}", "partnerCode": None,
          "member": {"id": m["id"], "email": "viewer@example.com"}}),
    ]
    for token, expected in cases:
        assert (await gql.ok(VIEWER, token=token))["viewer"] == expected


async def two_crm_members(gql: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    integration = gql.token(Role.INTEGRATION)
    one = (await register(gql, "one@example.com", token=integration, externalId="crm-1",
                          name="One"))["member"]
    two = (await register(gql, "two@example.com", token=integration, externalId="crm-2",
                          name="Two"))["member"]
    return one, two


@pytest.mark.parametrize("role", [Role.AGENT, Role.ADMIN, Role.INTEGRATION])
async def test_staff_and_integration_look_members_up(gql: Any, role: Role) -> None:
    one, two = await two_crm_members(gql)
    token = gql.token(role)
    for selector, expected in [
        ({"id": two["id"]}, two),
        ({"externalId": "crm-1"}, one),
        ({"externalId": " crm-2 "}, two),
        ({"email": "  TWO@example.COM"}, two),
        ({"id": gid("Member", 999)}, None),
        ({"externalId": "crm-999"}, None),
        ({"email": "nobody@example.com"}, None),
        ({"id": "garbage"}, None),
        ({"id": gid("Tier", 1)}, None),
    ]:
        assert (await gql.ok(MEMBER_BY, selector, token))["member"] == expected, selector


async def test_a_member_looks_up_itself_only(gql: Any) -> None:
    one, two = await two_crm_members(gql)
    token = member_token(gql, one["id"])
    for selector in ({"id": one["id"]}, {"email": "one@example.com"}, {"externalId": "crm-1"}):
        assert (await gql.ok(MEMBER_BY, selector, token))["member"] == one, selector
    for selector in ({"id": two["id"]}, {"email": "two@example.com"}, {"externalId": "crm-2"}):
        assert (await gql.ok(MEMBER_BY, selector, token))["member"] is None, selector


@pytest.mark.parametrize("role", [Role.PARTNER, None])
async def test_partner_and_anonymous_may_not_look_members_up(gql: Any, role: Role | None
                                                             ) -> None:
    one, _ = await two_crm_members(gql)
    token = partner_token(gql) if role else None
    body = await gql.raw(MEMBER_BY, {"id": one["id"]}, token)
    expected = "FORBIDDEN" if role else "UNAUTHENTICATED"
    assert top_level(body) == [(expected, ("member",))]
    assert body["data"] == {"member": None}


@pytest.mark.parametrize("selector", [
    {"id": gid("Member", 1), "email": "one@example.com"},
    {"externalId": "crm-1", "email": "one@example.com"},
    {"id": gid("Member", 1), "externalId": "crm-1", "email": "one@example.com"},
    {},
])
async def test_member_takes_exactly_one_selector(gql: Any, selector: dict[str, str]) -> None:
    await two_crm_members(gql)
    body = await gql.raw(MEMBER_BY, selector, gql.token(Role.ADMIN))
    assert top_level(body) == [("BAD_USER_INPUT", ("member",))]
    assert body["data"] == {"member": None}


# --- members --------------------------------------------------------------------------------


async def test_members_filters(gql: Any) -> None:
    # given a member who joined before there were tiers, then a ladder, then more members
    early = (await register(gql, "early@example.com", name="Early Bird"))["member"]
    bronze = await create_tier(gql, "Bronze", 1, 0)
    gold = await create_tier(gql, "Gold", 2, 1000)
    integration = gql.token(Role.INTEGRATION)
    await register(gql, "jane@example.com", name="Jane Smith", tags=["VIP", "north"])
    await register(gql, "john@shop.test", token=integration, password=None,
                   externalId="SMITH-77", tags=["north"])
    suspended = (await register(gql, "sam@example.com", name="Sam", tags=["vip"]))["member"]
    await suspend(gql, suspended["id"])
    everyone = ["early@example.com", "jane@example.com", "john@shop.test", "sam@example.com"]

    # then every filter selects exactly the members it names, in joining order
    assert await member_emails(gql) == everyone
    assert await member_emails(gql, tier=bronze) == everyone  # the entry tier
    assert await member_emails(gql, tier=gold) == []
    assert await member_emails(gql, status="SUSPENDED") == ["sam@example.com"]
    assert await member_emails(gql, status="ACTIVE") == everyone[:3]
    assert await member_emails(gql, status="ERASED") == []
    assert await member_emails(gql, tag="vip") == ["jane@example.com", "sam@example.com"]
    assert await member_emails(gql, tag=" VIP ") == ["jane@example.com", "sam@example.com"]
    assert await member_emails(gql, tag="north") == ["jane@example.com", "john@shop.test"]
    assert await member_emails(gql, tag="nobody") == []
    assert await member_emails(gql, search="smith") == ["jane@example.com", "john@shop.test"]
    assert await member_emails(gql, search="SHOP.TEST") == ["john@shop.test"]
    assert await member_emails(gql, search="early bird") == ["early@example.com"]
    assert await member_emails(gql, search="   ") == everyone
    assert await member_emails(gql, tag="vip", status="ACTIVE") == ["jane@example.com"]
    assert await member_emails(gql, tag="north", search="smith-77",
                               tier=bronze) == ["john@shop.test"]
    connection = await all_members(gql, tag="vip")
    assert connection["totalCount"] == 2
    assert connection["pageInfo"]["hasNextPage"] is False
    assert connection["edges"][1]["node"]["id"] == suspended["id"]
    # and the member who joined before the ladder existed shows the entry tier
    tier_of = "query($id: ID) { member(id: $id) { tier { id name } } }"
    assert (await gql.as_admin(tier_of, {"id": early["id"]}))["member"] == {
        "tier": {"id": bronze, "name": "Bronze"}}


@pytest.mark.parametrize("tier", ["member-id", "garbage"])
async def test_members_filter_tier_must_be_a_tier_id(gql: Any, tier: str) -> None:
    m = (await register(gql, "member@example.com"))["member"]
    tier_id = m["id"] if tier == "member-id" else tier
    body = await gql.raw(MEMBERS, {"filter": {"tier": tier_id}}, gql.token(Role.ADMIN))
    assert top_level(body) == [("BAD_USER_INPUT", ("members",))]
    assert body["data"] is None


async def test_members_keyset_pagination(gql: Any) -> None:
    # given five members
    emails = [f"m{i}@example.com" for i in range(5)]
    for email in emails:
        await register(gql, email, tags=["page"] if email != "m2@example.com" else [])
    admin = gql.token(Role.ADMIN)

    # when an admin walks the list two at a time
    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    after = None
    while True:
        data = await gql.ok(MEMBERS, {"first": 2, "after": after}, admin)
        page = data["members"]
        pages.append(page)
        seen += [e["node"]["email"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    # then it sees everyone once, in joining order, with the total on every page
    assert seen == emails
    assert [len(p["edges"]) for p in pages] == [2, 2, 1]
    assert [p["totalCount"] for p in pages] == [5, 5, 5]
    assert [p["pageInfo"]["hasNextPage"] for p in pages] == [True, True, False]
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False, True, True]
    for p in pages:
        assert p["pageInfo"]["startCursor"] == p["edges"][0]["cursor"]
        assert p["pageInfo"]["endCursor"] == p["edges"][-1]["cursor"]

    # and a filtered walk counts only the filtered members on every page
    first = (await gql.ok(MEMBERS, {"first": 3, "filter": {"tag": "page"}}, admin))["members"]
    assert [e["node"]["email"] for e in first["edges"]] == ["m0@example.com", "m1@example.com",
                                                            "m3@example.com"]
    assert (first["totalCount"], first["pageInfo"]["hasNextPage"]) == (4, True)
    rest = (await gql.ok(MEMBERS, {"first": 3, "after": first["pageInfo"]["endCursor"],
                                   "filter": {"tag": "page"}}, admin))["members"]
    assert [e["node"]["email"] for e in rest["edges"]] == ["m4@example.com"]
    assert (rest["totalCount"], rest["pageInfo"]["hasNextPage"]) == (4, False)

    # and the default page size is 20, first: 0 is an empty page
    assert len((await gql.ok(MEMBERS, {}, admin))["members"]["edges"]) == 5
    empty = (await gql.ok(MEMBERS, {"first": 0}, admin))["members"]
    assert (empty["edges"], empty["totalCount"], empty["pageInfo"]["endCursor"]) == ([], 5, None)
    # and the last cursor leads to an empty last page
    end = (await gql.ok(MEMBERS, {"after": pages[-1]["pageInfo"]["endCursor"]}, admin))
    assert end["members"]["edges"] == []
    assert end["members"]["pageInfo"]["hasNextPage"] is False


async def test_members_default_page_is_20_and_100_is_allowed(gql: Any) -> None:
    integration = gql.token(Role.INTEGRATION)
    for i in range(21):
        await register(gql, f"bulk{i:02d}@example.com", token=integration, password=None)
    admin = gql.token(Role.ADMIN)
    default = (await gql.ok(MEMBERS, {}, admin))["members"]
    assert (len(default["edges"]), default["pageInfo"]["hasNextPage"]) == (20, True)
    hundred = (await gql.ok(MEMBERS, {"first": 100}, admin))["members"]
    assert (len(hundred["edges"]), hundred["pageInfo"]["hasNextPage"]) == (21, False)


@pytest.mark.parametrize("variables", [
    {"first": 101}, {"first": -1}, {"after": "garbage"}, {"after": "Zm9vOjE="},
    {"after": ""},
], ids=["first-101", "first-negative", "after-garbage", "after-foreign-base64", "after-empty"])
async def test_members_rejects_bad_page_arguments(gql: Any, variables: dict[str, Any]) -> None:
    await register(gql, "only@example.com")
    body = await gql.raw(MEMBERS, variables, gql.token(Role.ADMIN))
    assert top_level(body) == [("BAD_USER_INPUT", ("members",))]
    assert body["data"] is None


@pytest.mark.parametrize("role", [Role.MEMBER, Role.PARTNER, None])
async def test_members_is_for_staff_and_integration_only(gql: Any, role: Role | None) -> None:
    signup = await register(gql, "curious@example.com")
    token = {Role.MEMBER: signup["accessToken"], Role.PARTNER: partner_token(gql),
             None: None}[role]
    body = await gql.raw(MEMBERS, {}, token)
    assert error_codes(body) == ["UNAUTHENTICATED" if role is None else "FORBIDDEN"]
    assert top_level(body)[0][1] == ("members",)
    assert body["data"] is None


# --- node -----------------------------------------------------------------------------------

NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Member { email }
    ... on Tier { name rank }
  }
}"""


async def node(gql: Any, node_id: str, token: str | None) -> dict[str, Any] | None:
    return (await gql.ok(NODE, {"id": node_id}, token))["node"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("role", [Role.AGENT, Role.ADMIN, Role.INTEGRATION])
async def test_node_resolves_members_for_staff(gql: Any, role: Role) -> None:
    m = (await register(gql, "node@example.com"))["member"]
    assert await node(gql, m["id"], gql.token(role)) == {
        "__typename": "Member", "id": m["id"], "email": "node@example.com"}


async def test_node_shows_a_member_only_itself(gql: Any) -> None:
    me_ = await register(gql, "me@example.com")
    other = (await register(gql, "other@example.com"))["member"]
    token = me_["accessToken"]
    assert await node(gql, me_["member"]["id"], token) == {
        "__typename": "Member", "id": me_["member"]["id"], "email": "me@example.com"}
    assert await node(gql, other["id"], token) is None
    assert await node(gql, other["id"], partner_token(gql)) is None
    assert await node(gql, other["id"], None) is None


async def test_node_resolves_tiers_for_anyone(gql: Any) -> None:
    signup = await register(gql, "tiers@example.com")
    silver = await create_tier(gql, "Silver", 3, 500)
    expected = {"__typename": "Tier", "id": silver, "name": "Silver", "rank": 3}
    for token in (None, signup["accessToken"], partner_token(gql), gql.token(Role.AGENT)):
        assert await node(gql, silver, token) == expected


@pytest.mark.parametrize("node_id", [
    "garbage", "", "!!!", gid("Member", 999), gid("Member", "abc"), gid("Member", -1),
    gid("Tier", 999), gid("Nope", 1), gid("Member", ""), "TWVtYmVy",
])
async def test_node_with_a_nonsense_or_unknown_id_is_null(gql: Any, node_id: str) -> None:
    await register(gql, "exists@example.com")
    body = await gql.raw(NODE, {"id": node_id}, gql.token(Role.ADMIN))
    assert body == {"data": {"node": None}}


async def test_joined_at_is_stable_and_birthday_is_a_date(gql: Any) -> None:
    m = (await register(gql, "dates@example.com", birthday="2000-02-29"))["member"]
    stored = await admin_member(gql, m["id"])
    assert stored is not None
    assert stored["joinedAt"] == m["joinedAt"]
    assert date.fromisoformat(stored["birthday"]) == date(2000, 2, 29)
