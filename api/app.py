"""The Voisin API: ``create_app(settings)`` builds the FastAPI application.

The lifespan opens the chain (deploying the contract on first start, reusing it afterwards),
the database and the key vault, and runs the outbox loop in the background. ``voisin serve``
runs it with uvicorn.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from api import errors
from api.routes import health, households, market, orders, readings, topups, trades
from api.services import Services
from api.settings import Settings

#: Largest request body accepted (a batch of 1,000 readings is about 330 kB).
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

    @app.middleware("http")
    async def limits_and_metrics(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return JSONResponse(
                {
                    "code": "payload_too_large",
                    "message": f"request bodies are limited to {MAX_BODY_BYTES} bytes",
                },
                413,
            )
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        services: Services | None = getattr(request.app.state, "services", None)
        if services is not None:
            services.metrics.requests.labels(request.method, path, str(response.status_code)).inc()
            services.metrics.latency.labels(path).observe(time.perf_counter() - start)
        return response

    for module in (households, topups, readings, orders, trades, market, health):
        app.include_router(module.router)
    return app
