"""The business of Loyalgraph, one package per bounded context.

Nothing here imports strawberry, starlette, jwt or aiocache: the domain knows neither who
calls it nor how the result is shown. Services raise `DomainError` for expected failures.
"""
