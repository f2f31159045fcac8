"""Program settings and the tier ladder over GraphQL: defaults, validation, roles, ordering.

Every refused operation is shown to have changed nothing by reading the state again.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from strawberry import relay

from domain.access import Role
from tests.conftest import GraphQLClient, error_codes

PROGRAM_FIELDS = ("name currency pointsPerUnit pendingDays expiryDays tierWindowDays "
                  "signupBonus birthdayBonus updatedAt")
PROGRAM = f"{{ program {{ {PROGRAM_FIELDS} }} }}"
UPDATE_PROGRAM = f"""
mutation($input: UpdateProgramInput!) {{
  updateProgram(input: $input) {{
    program {{ {PROGRAM_FIELDS} }}
    userErrors {{ field message code }}
  }}
}}"""

TIER_FIELDS = "id name rank threshold earnMultiplier benefits supportPriority"
TIERS = f"{{ tiers {{ {TIER_FIELDS} }} }}"
CREATE_TIER = f"""
mutation($input: CreateTierInput!) {{
  createTier(input: $input) {{ tier {{ {TIER_FIELDS} }} userErrors {{ field message code }} }}
}}"""
UPDATE_TIER = f"""
mutation($input: UpdateTierInput!) {{
  updateTier(input: $input) {{ tier {{ {TIER_FIELDS} }} userErrors {{ field message code }} }}
}}"""
REGISTER = """
mutation($input: RegisterMemberInput!) {
  registerMember(input: $input) {
    member {
      id
      tier { name }
      tierProgress { current { name } next { name threshold } qualifyingPoints pointsToNext
                     validUntil }
    }
    userErrors { field code }
  }
}"""



LADDER = [
    {"name": "Silver", "rank": 1, "threshold": 0},
    {"name": "Gold", "rank": 2, "threshold": 1000, "earnMultiplier": "1.25",
     "benefits": ["Free shipping"], "supportPriority": "HIGH"},
    {"name": "Platinum", "rank": 3, "threshold": 5000, "earnMultiplier": "1.5",
     "supportPriority": "URGENT"},
]


def problems(payload: dict[str, Any]) -> list[tuple[list[str] | None, str]]:
    """A payload's userErrors as (field, code) pairs."""
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


async def read_program(gql: GraphQLClient) -> dict[str, Any]:
    return (await gql.ok(PROGRAM))["program"]  # type: ignore[no-any-return]


async def read_tiers(gql: GraphQLClient) -> list[dict[str, Any]]:
    return (await gql.ok(TIERS))["tiers"]  # type: ignore[no-any-return]


async def create_tier(gql: GraphQLClient, **fields: Any) -> dict[str, Any]:
    payload = (await gql.as_admin(CREATE_TIER, {"input": fields}))["createTier"]
    assert payload["userErrors"] == []
    return payload["tier"]  # type: ignore[no-any-return]


async def create_ladder(gql: GraphQLClient) -> dict[str, dict[str, Any]]:
    return {t["name"]: await create_tier(gql, **t) for t in LADDER}


def ladder_view(tiers: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    return [(t["name"], t["rank"], t["threshold"]) for t in tiers]


async def register(gql: GraphQLClient, email: str) -> dict[str, Any]:
    payload = (await gql.ok(REGISTER, {"input": {"email": email,
                                                   "password": "correct horse"}}))
    assert payload["registerMember"]["userErrors"] == []
    return payload["registerMember"]["member"]  # type: ignore[no-any-return]


def member_key(gid: str) -> int:
    return int(relay.GlobalID.from_id(gid).node_id)


# --- program --------------------------------------------------------------------------------


async def test_program_is_readable_anonymously_with_the_migration_defaults(
        gql: GraphQLClient) -> None:
    # given a freshly migrated database, when anyone reads the program
    program = await read_program(gql)

    # then it holds the first release's defaults
    assert Decimal(program.pop("pointsPerUnit")) == Decimal(1)
    assert program.pop("updatedAt") is not None
    assert program == {"name": "Loyalgraph Rewards", "currency": "USD", "pendingDays": 0,
                       "expiryDays": 365, "tierWindowDays": 365, "signupBonus": 0,
                       "birthdayBonus": 0}


async def test_admin_update_changes_only_the_given_fields(gql: GraphQLClient) -> None:
    # given the default program
    before = await read_program(gql)

    # when ADMIN changes some fields (currency given in lower case)
    payload = (await gql.as_admin(UPDATE_PROGRAM, {"input": {
        "name": "Acme Points", "currency": "eur", "pointsPerUnit": "2.5", "pendingDays": 14,
        "signupBonus": 100,
    }}))["updateProgram"]

    # then the payload and a later read show exactly those changes
    assert payload["userErrors"] == []
    after = await read_program(gql)
    assert payload["program"] == after
    assert Decimal(after.pop("pointsPerUnit")) == Decimal("2.5")
    assert after.pop("updatedAt") is not None
    assert after == {"name": "Acme Points", "currency": "EUR", "pendingDays": 14,
                     "expiryDays": before["expiryDays"],
                     "tierWindowDays": before["tierWindowDays"], "signupBonus": 100,
                     "birthdayBonus": before["birthdayBonus"]}


async def test_expiry_days_null_means_points_never_expire(gql: GraphQLClient) -> None:
    # given the default program (points expire after 365 days)
    # when ADMIN sets expiryDays to null
    payload = (await gql.as_admin(UPDATE_PROGRAM, {"input": {"expiryDays": None}}))[
        "updateProgram"]

    # then points never expire, and nothing else changed
    assert payload["userErrors"] == []
    assert payload["program"]["expiryDays"] is None
    program = await read_program(gql)
    assert program["expiryDays"] is None
    assert program["name"] == "Loyalgraph Rewards"

    # and when ADMIN sets a pending period, no expiry means no conflict with it
    payload = (await gql.as_admin(UPDATE_PROGRAM, {"input": {"pendingDays": 365}}))[
        "updateProgram"]
    assert payload["userErrors"] == []
    assert (payload["program"]["pendingDays"], payload["program"]["expiryDays"]) == (365, None)


@pytest.mark.parametrize(("changes", "field"), [
    ({"currency": "usd1"}, "currency"),
    ({"pointsPerUnit": "0"}, "pointsPerUnit"),
    ({"pointsPerUnit": "1.23456"}, "pointsPerUnit"),
    ({"pointsPerUnit": "NaN"}, "pointsPerUnit"),
    ({"pointsPerUnit": "Infinity"}, "pointsPerUnit"),
    ({"pendingDays": -1}, "pendingDays"),
    ({"expiryDays": 0}, "expiryDays"),
    ({"pendingDays": 30, "expiryDays": 30}, "expiryDays"),
    ({"tierWindowDays": 0}, "tierWindowDays"),
    ({"signupBonus": -1}, "signupBonus"),
    ({"birthdayBonus": -1}, "birthdayBonus"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
])
async def test_an_invalid_value_is_refused_and_changes_nothing(
        gql: GraphQLClient, changes: dict[str, Any], field: str) -> None:
    # given the program as it is
    before = await read_program(gql)

    # when ADMIN sends an invalid value
    payload = (await gql.as_admin(UPDATE_PROGRAM, {"input": changes}))["updateProgram"]

    # then it is refused naming the field, and the program is unchanged
    assert payload["program"] is None
    assert problems(payload) == [(["input", field], "INVALID_INPUT")]
    assert payload["userErrors"][0]["message"]
    assert await read_program(gql) == before


async def test_expiry_must_stay_after_the_stored_pending_period(gql: GraphQLClient) -> None:
    # given a program whose points stay pending for 10 days
    await gql.as_admin(UPDATE_PROGRAM, {"input": {"pendingDays": 10}})
    before = await read_program(gql)

    # when ADMIN sets an expiry at or before the pending period
    payload = (await gql.as_admin(UPDATE_PROGRAM, {"input": {"expiryDays": 10}}))[
        "updateProgram"]

    # then it is refused and the program is unchanged
    assert problems(payload) == [(["input", "expiryDays"], "INVALID_INPUT")]
    assert await read_program(gql) == before


async def test_several_invalid_fields_are_reported_together(gql: GraphQLClient) -> None:
    # given the program as it is
    before = await read_program(gql)

    # when ADMIN sends two invalid values at once
    payload = (await gql.as_admin(UPDATE_PROGRAM, {"input": {
        "currency": "dollars", "tierWindowDays": 0}}))["updateProgram"]

    # then both are named and nothing changed
    assert sorted(problems(payload)) == [(["input", "currency"], "INVALID_INPUT"),
                                         (["input", "tierWindowDays"], "INVALID_INPUT")]
    assert await read_program(gql) == before


@pytest.mark.parametrize("field", ["name", "currency", "pointsPerUnit", "pendingDays",
                                   "tierWindowDays", "signupBonus", "birthdayBonus"])
async def test_null_for_a_non_nullable_field_is_refused(gql: GraphQLClient, field: str) -> None:
    # given the program as it is
    before = await read_program(gql)

    # when ADMIN sends null for a field that must have a value
    payload = (await gql.as_admin(UPDATE_PROGRAM, {"input": {field: None}}))["updateProgram"]

    # then it is refused naming that field, and nothing changed
    assert payload["program"] is None
    assert problems(payload) == [(["input", field], "INVALID_INPUT")]
    assert await read_program(gql) == before


@pytest.mark.parametrize("role", [Role.AGENT, Role.INTEGRATION, Role.MEMBER, Role.PARTNER])
async def test_only_admin_may_update_the_program(gql: GraphQLClient, role: Role) -> None:
    # given a caller that is not ADMIN
    before = await read_program(gql)
    member_id = member_key((await register(gql, "caller@example.com"))["id"])
    token = gql.token(role, member_id=member_id if role is Role.MEMBER else None,
                      partner_code="acme" if role is Role.PARTNER else None)

    # when it tries to change the program
    body = await gql.raw(UPDATE_PROGRAM, {"input": {"name": "Hijacked"}}, token)

    # then it gets a top-level FORBIDDEN and nothing changed
    assert body["data"] is None
    assert error_codes(body) == ["FORBIDDEN"]
    assert await read_program(gql) == before


async def test_anonymous_update_of_the_program_is_unauthenticated(gql: GraphQLClient) -> None:
    # given no token
    before = await read_program(gql)

    # when an anonymous caller tries to change the program
    body = await gql.raw(UPDATE_PROGRAM, {"input": {"name": "Hijacked"}})

    # then it gets UNAUTHENTICATED and nothing changed
    assert body["data"] is None
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert await read_program(gql) == before


# --- tiers ----------------------------------------------------------------------------------


async def test_admin_creates_tiers_and_tiers_lists_them_by_rank(gql: GraphQLClient) -> None:
    # given no tiers
    assert await read_tiers(gql) == []

    # when ADMIN creates them out of rank order
    gold = await create_tier(gql, **LADDER[1])
    await create_tier(gql, **LADDER[2])
    silver = await create_tier(gql, **LADDER[0])

    # then each tier comes back as given, with defaults for what was not given
    assert Decimal(gold.pop("earnMultiplier")) == Decimal("1.25")
    assert gold.pop("id")
    assert gold == {"name": "Gold", "rank": 2, "threshold": 1000,
                    "benefits": ["Free shipping"], "supportPriority": "HIGH"}
    assert Decimal(silver.pop("earnMultiplier")) == Decimal(1)
    assert (silver["benefits"], silver["supportPriority"]) == ([], "NORMAL")

    # and anyone reads the ladder lowest rank first
    tiers = await read_tiers(gql)
    assert ladder_view(tiers) == [("Silver", 1, 0), ("Gold", 2, 1000), ("Platinum", 3, 5000)]
    assert [Decimal(t["earnMultiplier"]) for t in tiers] == [Decimal(1), Decimal("1.25"),
                                                             Decimal("1.5")]
    assert [t["supportPriority"] for t in tiers] == ["NORMAL", "HIGH", "URGENT"]


@pytest.mark.parametrize("role", [None, Role.AGENT, Role.INTEGRATION])
async def test_only_admin_may_create_or_update_tiers(gql: GraphQLClient,
                                                     role: Role | None) -> None:
    # given a ladder and a caller that is not ADMIN
    tiers = await create_ladder(gql)
    before = await read_tiers(gql)
    token = gql.token(role) if role else None

    # when it tries to create or change a tier
    created = await gql.raw(CREATE_TIER, {"input": {"name": "Diamond", "rank": 4,
                                                    "threshold": 10000}}, token)
    updated = await gql.raw(UPDATE_TIER, {"input": {"tierId": tiers["Gold"]["id"],
                                                    "threshold": 1500}}, token)

    # then both are refused at the top level and the ladder is unchanged
    code = "UNAUTHENTICATED" if role is None else "FORBIDDEN"
    assert (created["data"], error_codes(created)) == (None, [code])
    assert (updated["data"], error_codes(updated)) == (None, [code])
    assert await read_tiers(gql) == before


@pytest.mark.parametrize(("fields", "field"), [
    ({"name": "gold "}, "name"),
    ({"name": "GOLD"}, "name"),
    ({"rank": 2}, "rank"),
])
async def test_a_duplicate_name_or_rank_already_exists(
        gql: GraphQLClient, fields: dict[str, Any], field: str) -> None:
    # given a ladder with Gold at rank 2
    await create_ladder(gql)
    before = await read_tiers(gql)

    # when ADMIN creates a tier clashing with it
    tier = {"name": "Diamond", "rank": 4, "threshold": 10000, **fields}
    payload = (await gql.as_admin(CREATE_TIER, {"input": tier}))["createTier"]

    # then it already exists and the ladder is unchanged
    assert payload["tier"] is None
    assert problems(payload) == [(["input", field], "ALREADY_EXISTS")]
    assert await read_tiers(gql) == before


@pytest.mark.parametrize(("fields", "field"), [
    ({"threshold": -1}, "threshold"),
    ({"earnMultiplier": "0"}, "earnMultiplier"),
    ({"earnMultiplier": "-1"}, "earnMultiplier"),
    ({"earnMultiplier": "1.234"}, "earnMultiplier"),
    ({"earnMultiplier": "NaN"}, "earnMultiplier"),
    ({"earnMultiplier": "sNaN"}, "earnMultiplier"),
    ({"name": ""}, "name"),
    ({"rank": -1}, "rank"),
    ({"benefits": [" "]}, "benefits"),
])
async def test_an_invalid_tier_is_refused(gql: GraphQLClient, fields: dict[str, Any],
                                          field: str) -> None:
    # given no tiers
    # when ADMIN creates a tier with an invalid value
    tier = {"name": "Silver", "rank": 1, "threshold": 0, **fields}
    payload = (await gql.as_admin(CREATE_TIER, {"input": tier}))["createTier"]

    # then it is refused naming the field, and no tier exists
    assert payload["tier"] is None
    assert problems(payload) == [(["input", field], "INVALID_INPUT")]
    assert await read_tiers(gql) == []


@pytest.mark.parametrize(("rank", "threshold"), [
    (4, 5000),   # above Platinum but not more points
    (4, 4000),   # above Platinum with fewer points
    (0, 500),    # below Silver with more points
    (5, 1000),   # same threshold as Gold
])
async def test_thresholds_must_rise_with_rank(gql: GraphQLClient, rank: int,
                                              threshold: int) -> None:
    # given Silver 0 < Gold 1000 < Platinum 5000
    await create_ladder(gql)
    before = await read_tiers(gql)

    # when ADMIN adds a tier whose threshold breaks the ladder
    payload = (await gql.as_admin(CREATE_TIER, {"input": {
        "name": "Odd", "rank": rank, "threshold": threshold}}))["createTier"]

    # then it is refused and the ladder is unchanged
    assert payload["tier"] is None
    assert problems(payload) == [(["input", "threshold"], "INVALID_INPUT")]
    assert await read_tiers(gql) == before


async def test_a_tier_fitting_between_two_others_is_accepted(gql: GraphQLClient) -> None:
    # given Bronze (rank 10, 0) and Gold (rank 30, 1000)
    await create_tier(gql, name="Bronze", rank=10, threshold=0)
    await create_tier(gql, name="Gold", rank=30, threshold=1000)

    # when ADMIN adds a tier between them in rank and in threshold
    await create_tier(gql, name="Silver", rank=20, threshold=500)

    # then the ladder holds it in the middle
    assert ladder_view(await read_tiers(gql)) == [("Bronze", 10, 0), ("Silver", 20, 500),
                                                  ("Gold", 30, 1000)]


async def test_admin_updates_only_the_given_tier_fields(gql: GraphQLClient) -> None:
    # given a ladder
    tiers = await create_ladder(gql)
    gold = tiers["Gold"]

    # when ADMIN changes Gold's threshold, benefits and support priority
    payload = (await gql.as_admin(UPDATE_TIER, {"input": {
        "tierId": gold["id"], "threshold": 2000, "benefits": ["Lounge", "Gift"],
        "supportPriority": "URGENT"}}))["updateTier"]

    # then only those change, in the payload and in the ladder
    assert payload["userErrors"] == []
    expected = {**gold, "threshold": 2000, "benefits": ["Lounge", "Gift"],
                "supportPriority": "URGENT"}
    assert payload["tier"] == expected
    assert [t for t in await read_tiers(gql) if t["id"] == gold["id"]] == [expected]


async def test_an_update_breaking_the_ladder_changes_nothing(gql: GraphQLClient) -> None:
    # given Silver 0 < Gold 1000 < Platinum 5000
    tiers = await create_ladder(gql)
    before = await read_tiers(gql)

    # when ADMIN moves Gold's threshold above Platinum's, or gives it Silver's name or rank
    over = (await gql.as_admin(UPDATE_TIER, {"input": {
        "tierId": tiers["Gold"]["id"], "threshold": 6000}}))["updateTier"]
    name = (await gql.as_admin(UPDATE_TIER, {"input": {
        "tierId": tiers["Gold"]["id"], "name": "silver"}}))["updateTier"]
    rank = (await gql.as_admin(UPDATE_TIER, {"input": {
        "tierId": tiers["Gold"]["id"], "rank": 1}}))["updateTier"]
    null = (await gql.as_admin(UPDATE_TIER, {"input": {
        "tierId": tiers["Gold"]["id"], "threshold": None}}))["updateTier"]

    # then each is refused and the ladder is unchanged
    assert problems(over) == [(["input", "threshold"], "INVALID_INPUT")]
    assert problems(name) == [(["input", "name"], "ALREADY_EXISTS")]
    assert problems(rank) == [(["input", "rank"], "ALREADY_EXISTS")]
    assert problems(null) == [(["input", "threshold"], "INVALID_INPUT")]
    assert [p["tier"] for p in (over, name, rank, null)] == [None] * 4
    assert await read_tiers(gql) == before


async def test_renaming_a_tier_in_another_case_is_allowed(gql: GraphQLClient) -> None:
    # given a ladder
    tiers = await create_ladder(gql)

    # when ADMIN renames Gold to GOLD (its own name, other case)
    payload = (await gql.as_admin(UPDATE_TIER, {"input": {
        "tierId": tiers["Gold"]["id"], "name": "GOLD"}}))["updateTier"]

    # then it is accepted
    assert payload["userErrors"] == []
    assert payload["tier"]["name"] == "GOLD"


@pytest.mark.parametrize("tier_id", [str(relay.GlobalID("Tier", "99999")),
                                     str(relay.GlobalID("Member", "1"))])
async def test_update_of_an_unknown_tier_is_not_found(gql: GraphQLClient, tier_id: str) -> None:
    # given a ladder
    await create_ladder(gql)
    before = await read_tiers(gql)

    # when ADMIN updates a tier that does not exist
    payload = (await gql.as_admin(UPDATE_TIER, {"input": {"tierId": tier_id,
                                                          "threshold": 1}}))["updateTier"]

    # then it is not found and nothing changed
    assert payload["tier"] is None
    assert problems(payload) == [(["input", "tierId"], "NOT_FOUND")]
    assert await read_tiers(gql) == before


async def test_a_malformed_tier_id_is_bad_user_input(gql: GraphQLClient) -> None:
    # given a ladder
    await create_ladder(gql)
    before = await read_tiers(gql)

    # when ADMIN updates a tier by an id that is not a global id at all
    body = await gql.raw(UPDATE_TIER, {"input": {"tierId": "not-a-global-id", "threshold": 1}},
                         gql.token(Role.ADMIN))

    # then the request is blamed (not masked as a server fault) and nothing changed
    assert body["data"] is None
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert await read_tiers(gql) == before


async def test_support_priority_round_trips(gql: GraphQLClient) -> None:
    # given a tier created with each priority
    created = [await create_tier(gql, name=p.title(), rank=i, threshold=i * 100,
                                 supportPriority=p)
               for i, p in enumerate(["LOW", "NORMAL", "HIGH", "URGENT"])]

    # when they are read back, directly and by node id
    tiers = await read_tiers(gql)
    node = (await gql.ok("query($id: ID!) { node(id: $id) { ... on Tier { supportPriority } } }",
                         {"id": created[0]["id"]}))["node"]

    # then each holds its priority
    assert [t["supportPriority"] for t in tiers] == ["LOW", "NORMAL", "HIGH", "URGENT"]
    assert node == {"supportPriority": "LOW"}

    # and when ADMIN changes one, the change is read back
    await gql.as_admin(UPDATE_TIER, {"input": {"tierId": created[0]["id"],
                                               "supportPriority": "HIGH"}})
    assert [t["supportPriority"] for t in await read_tiers(gql)] == ["HIGH", "NORMAL", "HIGH",
                                                                     "URGENT"]


async def test_a_new_member_sits_on_the_entry_tier(gql: GraphQLClient) -> None:
    # given Silver 0 < Gold 1000 < Platinum 5000
    await create_ladder(gql)

    # when a member signs up
    member = await register(gql, "new@example.com")

    # then it is on the entry tier, with the next tier's whole threshold to go
    assert member["tier"] == {"name": "Silver"}
    assert member["tierProgress"] == {
        "current": {"name": "Silver"}, "next": {"name": "Gold", "threshold": 1000},
        "qualifyingPoints": 0, "pointsToNext": 1000, "validUntil": None}


async def test_a_member_from_before_the_ladder_sits_on_the_entry_tier(
        gql: GraphQLClient) -> None:
    # given a member who joined when there were no tiers
    member = await register(gql, "early@example.com")
    assert member["tier"] is None
    assert member["tierProgress"] == {"current": None, "next": None, "qualifyingPoints": 0,
                                      "pointsToNext": None, "validUntil": None}

    # when ADMIN builds the ladder and the member looks itself up
    await create_ladder(gql)
    token = gql.token(Role.MEMBER, member_id=member_key(member["id"]))
    me = (await gql.ok("{ me { tier { name } tierProgress { current { name } "
                       "next { name } qualifyingPoints pointsToNext } } }", token=token))["me"]

    # then it is on the entry tier
    assert me == {"tier": {"name": "Silver"},
                  "tierProgress": {"current": {"name": "Silver"}, "next": {"name": "Gold"},
                                   "qualifyingPoints": 0, "pointsToNext": 1000}}
