"""The Voisin API: ``create_app(settings)`` builds the FastAPI application.

The lifespan opens the chain (deploying the contract on first start, reusing it afterwards),
the database and the key vault, and runs the outbox loop in the background. ``voisin serve``
runs it with uvicorn.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.routes import audit, health, households, market, orders, readings, topups, trades
from api.services import REQUEST_THREADS, Services
from api.settings import Settings

#: Largest request body accepted (a batch of 1,000 readings is about 283 kB of JSON, measured).
MAX_BODY_BYTES = 1_000_000

DESCRIPTION = """
Voisin is a peer-to-peer neighbourhood energy trading ledger. Meters post EIP-712 signed
readings; households post offers and bids or take offers; the grid operator registers
households, tops up balances and settles slots. Energy is in Wh, money in micro-euro (ueur),
prices in ueur per kWh, and slots are `unix_seconds // 900`.

Authentication: `Authorization: Bearer <token>`. The operator's token comes from
`VOISIN_OPERATOR_TOKEN`; a household's token is returned once by `POST /households`.
`POST /readings` needs no token: the meter's signature is the credential.

Every error is JSON: `{"code": "...", "message": "..."}`.
"""


class _TooLarge(Exception):
    pass


class LimitsAndMetrics:
    """Pure ASGI middleware: refuse bodies over :data:`MAX_BODY_BYTES` (by header, and while
    streaming when there is none) with 413, and count requests and latency per route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            await _too_large(send)
            return
        seen = 0
        status = 500
        started = False
        app = scope.get("app")
        services = getattr(getattr(app, "state", None), "services", None)
        if services is not None:
            services.last_request = time.monotonic()

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY_BYTES:
                    raise _TooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, counted_receive, watched_send)
        except _TooLarge:
            if started:
                raise
            status = 413
            await _too_large(send)
        if services is not None:
            path = getattr(scope.get("route"), "path", "unmatched")
            services.metrics.requests.labels(scope["method"], path, str(status)).inc()
            services.metrics.latency.labels(path).observe(time.perf_counter() - start)


async def _too_large(send: Send) -> None:
    response = JSONResponse(
        {
            "code": "payload_too_large",
            "message": f"request bodies are limited to {MAX_BODY_BYTES} bytes",
        },
        413,
    )
    await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def create_app(settings: Settings | None = None, *, background: bool = True) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "services", None) is not None:
            # Already running (a test client entered the app twice): share it.
            yield
            return
        services = Services(settings)
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

    app = FastAPI(
        title="Voisin",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(errors.reject_unknown_query)],
    )
    errors.install(app)

    app.add_middleware(LimitsAndMetrics)
    for module in (households, topups, readings, orders, trades, market, audit, health):
        app.include_router(module.router)
    # The web dashboard: `/` and `/ui/...`, outside the OpenAPI schema.
    from api.routes import dashboard, dashboard_household, dashboard_operator

    for module in (dashboard, dashboard_household, dashboard_operator):
        app.include_router(module.router)
    return app
