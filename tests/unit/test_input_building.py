"""The hot writes' inputs, built from a plan (resolvers.inputs.built_directly), come out
exactly as Strawberry's own field-by-field conversion builds them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from strawberry.relay.types import InvalidGlobalIDError
from strawberry.types.arguments import convert_argument

from api.graphql import build_schema
from api.settings import Settings
from schema.ledger import RecordPurchaseInput
from schema.relay import global_id
from schema.rewards import RedeemRewardInput

SCHEMA = build_schema(Settings())


def _convert(cls: type, value: dict[str, Any]) -> Any:
    return convert_argument(value, cls, SCHEMA.schema_converter.scalar_registry,
                            SCHEMA.config, None, path=("input",))


def _both(cls: type, value: dict[str, Any]) -> tuple[Any, Any]:
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    hook = definition.from_input
    assert hook is not None  # installed by the resolvers' modules
    definition.from_input = None
    try:
        plain = _convert(cls, value)
    finally:
        definition.from_input = hook
    return plain, _convert(cls, value)


def test_the_hot_inputs_are_built_directly() -> None:
    for cls in (RecordPurchaseInput, RedeemRewardInput):
        assert cls.__strawberry_definition__.from_input is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", [
    {"memberId": global_id("Member", 7), "orderId": "o-1", "amount": Decimal("12.50"),
     "currency": None, "occurredAt": None, "idempotencyKey": "k"},
    {"memberId": global_id("Member", 7), "orderId": "o-1", "amount": Decimal("1"),
     "currency": "EUR", "occurredAt": datetime(2024, 5, 1, tzinfo=UTC),
     "idempotencyKey": "k"},
    {"memberId": global_id("Member", 7), "orderId": "o-1", "amount": Decimal("1"),
     "idempotencyKey": "k"},  # optional fields absent altogether
])
def test_purchase_input_is_what_strawberry_builds(value: dict[str, Any]) -> None:
    plain, direct = _both(RecordPurchaseInput, value)
    assert type(direct) is RecordPurchaseInput and direct == plain
    assert type(direct.member_id) is type(plain.member_id)


@pytest.mark.parametrize("value", [
    {"rewardId": global_id("Reward", 3), "memberId": None, "idempotencyKey": "k"},
    {"rewardId": global_id("Reward", 3), "memberId": global_id("Member", 9),
     "idempotencyKey": "k"},
    {"rewardId": global_id("Reward", 3), "idempotencyKey": "k"},
])
def test_redeem_input_is_what_strawberry_builds(value: dict[str, Any]) -> None:
    plain, direct = _both(RedeemRewardInput, value)
    assert type(direct) is RedeemRewardInput and direct == plain


def test_a_bad_global_id_fails_as_strawberry_fails() -> None:
    value = {"rewardId": "not-a-global-id", "memberId": None, "idempotencyKey": "k"}
    definition = RedeemRewardInput.__strawberry_definition__  # type: ignore[attr-defined]
    hook, definition.from_input = definition.from_input, None
    try:
        with pytest.raises(InvalidGlobalIDError) as plain:
            _convert(RedeemRewardInput, value)
    finally:
        definition.from_input = hook
    with pytest.raises(InvalidGlobalIDError) as direct:
        _convert(RedeemRewardInput, value)
    assert str(direct.value) == str(plain.value)
