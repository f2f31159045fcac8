"""The floor: a bare strawberry app with one resolver, on the same stack as Loyalgraph
(Starlette routing, strawberry's ASGI view, uvicorn with the same options). Whatever our
app does beyond this is what the ratios in the report measure.

It has strawberry's parser and validation caches, as Loyalgraph has: without them a bare
app parses and validates every request in full and runs at about a third of this speed,
which would make a floor anyone can step over, not a floor.

`uvicorn bench.floor:app`, or `python -m bench.floor --port P` (what the benchmark runs).
"""

from __future__ import annotations

import argparse

import strawberry
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


schema = strawberry.Schema(query=Query, extensions=[lambda: ParserCache(maxsize=512),
                                                   lambda: ValidationCache(maxsize=512)])
graphql_app: GraphQL[None, None] = GraphQL(schema, graphql_ide=None, allow_queries_via_get=False)
app = Starlette(routes=[Route("/graphql", graphql_app, methods=["GET", "POST"])])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    # The options app.py's `serve` passes to uvicorn.run.
    uvicorn.run("bench.floor:app", host=args.host, port=args.port, workers=1,
                log_level=args.log_level, proxy_headers=True, server_header=False,
                ws_per_message_deflate=False)


if __name__ == "__main__":
    main()
