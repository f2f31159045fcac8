"""Inputs at the edges of what the database can hold never end in an internal error."""

from __future__ import annotations

import base64

from domain.access import Role
from tests.conftest import GraphQLClient, error_codes


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_lookups_longer_than_any_column_are_bad_input_not_internal(
        gql: GraphQLClient) -> None:
    admin = gql.token(Role.ADMIN)
    # a coupon code far longer than any code, and a tag filter longer than any tag
    body = await gql.raw('mutation($c: String!) { useRedemption(input: {code: $c}) '
                         '{ userErrors { code } } }', {"c": "X" * 5000}, admin)
    assert (body["data"], error_codes(body)) == (None, ["BAD_USER_INPUT"])
    assert "X" * 100 not in str(body)
    body = await gql.raw('query($t: String) { members(filter: {tag: $t}) { totalCount } }',
                         {"t": "z" * 200}, admin)
    assert (body["data"], error_codes(body)) == (None, ["BAD_USER_INPUT"])


async def test_ids_and_cursors_beyond_64_bits_name_nothing(gql: GraphQLClient) -> None:
    admin = gql.token(Role.ADMIN)
    huge = "9" * 30
    for type_name in ("LedgerEntry", "Member", "Ticket", "Reward", "Redemption", "Survey"):
        body = await gql.raw("query($id: ID!) { node(id: $id) { id } }",
                             {"id": b64(f"{type_name}:{huge}")}, admin)
        assert body == {"data": {"node": None}}, type_name
    body = await gql.raw("query($a: String) { members(after: $a) { totalCount } }",
                         {"a": b64(f"c1:{huge}")}, admin)
    assert (body["data"], error_codes(body)) == (None, ["BAD_USER_INPUT"])
