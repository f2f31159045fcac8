"""Thin glue between the GraphQL shape and the domain: check who may act, turn input into
a command, call one domain service, map its result or its `DomainError` to a payload."""
