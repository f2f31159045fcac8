"""`node(id:)`: any object by global id, with the same visibility as its direct field."""

from __future__ import annotations

import inspect

import strawberry
from strawberry import relay

from schema.relay import node_id


@strawberry.type
class NodeQueries:
    @strawberry.field(description="Any object by its global id; null if it does not exist "
                                  "or you may not see it.")
    async def node(self, info: strawberry.Info, id: strawberry.ID) -> relay.Node | None:
        # Parsed here, not by strawberry: a malformed id is "nothing to see", not an error.
        try:
            gid = relay.GlobalID.from_id(id)
            node_type = gid.resolve_type(info)
        except Exception:  # an id of a type we do not have: nothing to see
            return None
        if not (isinstance(node_type, type) and issubclass(node_type, relay.Node)):
            return None
        if node_id(id, gid.type_name) is None:  # not one of our keys: nothing to see
            return None
        result = node_type.resolve_nodes(info=info, node_ids=[gid.node_id], required=False)
        if inspect.isawaitable(result):
            result = await result
        return next(iter(result), None)
