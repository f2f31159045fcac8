"""api.graphql.ValidationsByDocument: a document is validated once while it stays cached, by
identity (the parser cache hands out the same document for the same text), never confused
with another document, and the store keeps at most `maxsize` results."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import parse, specified_rules

import api.graphql as graphql_module
from api.graphql import ValidationsByDocument, build_schema
from api.settings import Settings

RULES = tuple(specified_rules)


@pytest.fixture
def validated(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    original = graphql_module.validate_document

    def counting(schema: Any, document: Any, rules: Any) -> Any:
        calls.append(document)
        return original(schema, document, rules)

    monkeypatch.setattr(graphql_module, "validate_document", counting)
    return calls


def test_a_document_is_validated_once_and_others_on_their_own(validated: list[Any]) -> None:
    schema = build_schema(Settings())._schema
    store = ValidationsByDocument(maxsize=2)
    good, bad = parse("{ __typename }"), parse("{ nothing }")
    assert store.validate(schema, good, RULES) == []
    assert store.validate(schema, good, RULES) == []
    assert validated == [good]
    errors = store.validate(schema, bad, RULES)
    assert [e.message for e in errors] == ["Cannot query field 'nothing' on type 'Query'."]
    # an equal text parsed again is another document: validated on its own
    again = parse("{ nothing }")
    assert [e.message for e in store.validate(schema, again, RULES)] == [
        "Cannot query field 'nothing' on type 'Query'."]
    assert validated == [good, bad, again]
    # maxsize 2: `good` (least recently used) went; validating it again runs the rules
    store.validate(schema, good, RULES)
    assert validated == [good, bad, again, good]
