"""The Voisin API: ``create_app(settings)`` builds the FastAPI application.

The lifespan opens the chain (deploying the contract on first start, reusing it afterwards),
the database and the key vault, and runs the outbox loop in the background. ``voisin serve``
runs it with uvicorn. Every request first gets its id (:class:`RequestId`: the client's
``X-Request-ID`` if well-formed, else a new one, returned in the response and carried by every
log line of the request), then goes through :class:`api.body_guard.BodyGuard`, which refuses
oversized, deeply nested and duplicate-key bodies before anything parses them.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import Depends, FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import docs_ui, errors
from api.apikeys import KeyCors
from api.body_guard import BodyGuard
from api.deps import problems
from api.logs import REQUEST_ID, REQUEST_ID_HEADER, accept_request_id
from api.routes import apikeys as apikey_routes
from api.routes import audit, health, households, market, orders, readings, topups, trades
from api.schemas import INT64_MAX
from api.services import REQUEST_THREADS, CityPart, Services
from api.settings import Settings
from ledger.jsonscan import pin_recursion_limit

DESCRIPTION = """
Voisin is a peer-to-peer neighbourhood energy trading ledger. Meters post EIP-712 signed
readings; households post offers and bids or take offers; the grid operator registers
households, tops up balances and settles slots. Energy is in Wh, money in micro-euro (ueur),
prices in ueur per kWh, and slots are `unix_seconds // 900`.

Authentication: `Authorization: Bearer <token>`. The operator's token comes from
`VOISIN_OPERATOR_TOKEN`; a household's token is returned once by `POST /households`.
`POST /readings` needs no token: the meter's signature is the credential.

Versions: every route is served under `/v1`, where it is documented; the same route at its
path from before versions (`/households`, `/offers`, ...) answers the same and is documented
as deprecated. Third-party apps: an API key the operator issues (`POST /v1/api-keys`, shown
once, `vak_...`) goes in the `X-API-Key` header, never in `Authorization`. `public:read` reads
what needs no token (tariffs, slot outcomes, the forecast, health, metrics) under the key's own
rate limit; `household:read` reads a household's balance, statement, forecast, trades, offers
and bids, naming the household, once it consents
(`POST /v1/households/{id}/consents/{key_id}`, with its token, or from its page). Keys never
write. Browser pages may call with a key from the origins the operator registered for it (CORS).

Every error is JSON: `{"code": "...", "message": "..."}`, with `details` where there is more
to say (for `invalid_input`, each field and its problem).

Signing readings: a meter signs each reading as EIP-712 typed data
`Reading(address meter,uint32 slot,uint64 importWh,uint64 exportWh)` in the domain
`EIP712Domain(name="Voisin", version="1", chainId, verifyingContract)`. This deployment's
`chainId` and `verifyingContract` are in `GET /health` (no token): `chain.chain_id` and
`chain.contract`. Read them there rather than configuring them by hand: a reading signed for
another chain or contract is refused as `bad_signature`.

Request bodies are UTF-8 JSON of at most `VOISIN_MAX_BODY_BYTES` bytes (default 1,000,000;
beyond: 413 `payload_too_large`, chunked or not), nested at most `VOISIN_MAX_JSON_DEPTH`
levels (default 32; beyond: 422 `json_too_deep`), with each key once per object (else 422
`duplicate_key`). Every integer is bounded by what both the contract and the databases hold,
so none is above 2^63 - 1.

The documentation pages `/docs` (Swagger UI) and `/redoc` (ReDoc) are served whole by this
server, their scripts included: they work with no internet access.
"""


_BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})


def _integral_bounds(node: Any) -> None:
    """Give the OpenAPI document's numeric bounds back as the integers they are.

    FastAPI's OpenAPI models hold bounds as floats, and 2^63 - 1 (the BIGINT bound of every
    energy, price and register field) has no float: it would be documented as 2^63, which the
    databases cannot hold. No bound in the API is 2^63 itself, so that float can only be it.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _BOUNDS and isinstance(value, float) and value.is_integer():
                node[key] = INT64_MAX if value == float(INT64_MAX) else int(value)
            else:
                _integral_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _integral_bounds(value)


def _with_integral_bounds(generate: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    done: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not done:
            schema = generate()  # FastAPI keeps it: fixing it in place fixes it for good
            _integral_bounds(schema)
            done.append(schema)
        return done[0]

    return openapi


class Metrics:
    """Pure ASGI middleware: count requests and latency per route, and note when the last
    request came (the outbox paces itself by it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        app = scope.get("app")
        services = getattr(getattr(app, "state", None), "services", None)
        if services is not None:
            services.last_request = time.monotonic()

        async def watched_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, watched_send)
        finally:
            if services is not None:
                path = getattr(scope.get("route"), "path", "unmatched")
                services.metrics.requests.labels(scope["method"], path, str(status)).inc()
                services.metrics.latency.labels(path).observe(time.perf_counter() - start)


class RequestId:
    """Pure ASGI middleware: give every HTTP request an id, in :data:`api.logs.REQUEST_ID` for
    the log lines written while it is served, and in the response's ``X-Request-ID``.

    The id is the client's ``X-Request-ID`` when :func:`api.logs.accept_request_id` takes it
    (so a proxy's or a gateway's id follows the request through), else a new one."""

    _HEADER = REQUEST_ID_HEADER.lower().encode("latin-1")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next(
            (value.decode("latin-1") for name, value in scope["headers"] if name == self._HEADER),
            None,
        )
        request_id = accept_request_id(given)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        token = REQUEST_ID.set(request_id)
        await self.app(scope, receive, send_with_id)
        # Not reset when the app raised: the server's log of the exception, written next in
        # this request's own task (whose context ends with it), carries the id too.
        REQUEST_ID.reset(token)


class _Voisin(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Request ids go outside Starlette's outermost middleware (the one that answers 500
        # to an unexpected exception), so that a 500 carries its id too.
        return RequestId(super().build_middleware_stack())


def create_app(
    settings: Settings | None = None,
    *,
    background: bool = True,
    city: Callable[[], CityPart] | None = None,
) -> FastAPI:
    """The API of one market: alone at the server's root, or, with ``city`` (what the city
    shares with it, asked for when the app starts), one market of a city
    (:func:`api.city_app.create_city_app` mounts it at ``/markets/<name>``)."""
    settings = settings or Settings()
    pin_recursion_limit()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "services", None) is not None:
            # Already running (a test client entered the app twice): share it.
            yield
            return
        services = Services(settings, city() if city is not None else None)
        pin_recursion_limit()
        app.state.services = services
        anyio.to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
        # Everything loaded so far (web3, the chain client, SQLAlchemy, the app) lives as long
        # as the server: keep it out of the collector's full passes, which otherwise walk
        # millions of such objects and stall every request for a quarter of a second
        # (measured with scripts/bench_api.py's paced clients).
        gc.collect()
        gc.freeze()
        if background:
            services.start()
        try:
            yield
        finally:
            services.close()
            app.state.services = None

    app = _Voisin(
        title="Voisin",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(errors.reject_unknown_query)],
        # The body guard answers these on every route, before the route runs.
        responses=problems(413),
        # /docs and /redoc come from api.docs_ui, with their assets served here (not a CDN).
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    docs_ui.install(app)
    app.openapi = _with_integral_bounds(app.openapi)  # type: ignore[method-assign]

    # The last added runs first: the metrics see every answer, the guard's refusals included.
    # RequestId runs before them all (see _Voisin).
    app.add_middleware(
        BodyGuard,
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
    )
    app.add_middleware(Metrics)
    # Outermost of these: a preflight is answered before anything else runs.
    app.add_middleware(KeyCors)
    # Also at /v1 (below), where they are documented; here deprecated, unchanged.
    from api.routes import feed, forecast, privacy, webhooks

    # Every route at /v1 (behind the key gate, with the key and consent routes only /v1 has)
    # and at its unversioned path (deprecated).
    current = (
        households, topups, readings, orders, trades, market, forecast, audit, health, webhooks,
        privacy,
    )  # fmt: skip
    for module in current:
        app.include_router(module.router, **apikey_routes.UNVERSIONED)
    apikey_routes.include(app, settings, current)
    # The live feed: streams, outside the OpenAPI schema (docs/feed.md), at both paths too.
    app.include_router(feed.router)
    app.include_router(feed.router, **apikey_routes.V1)
    # The web dashboard: `/` and `/ui/...`, outside the OpenAPI schema.
    from api.routes import dashboard, dashboard_household, dashboard_operator

    for module in (dashboard, dashboard_household, dashboard_operator):
        app.include_router(module.router)
    return app
