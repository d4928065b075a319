"""``GET /health`` (chain, database, backlog) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlmodel import Session

from api.deps import Svc

router = APIRouter(tags=["service"])


def _status(services: Svc) -> dict[str, Any]:
    database: dict[str, Any] = {"ok": True}
    backlog: dict[str, int] = {}
    try:
        with Session(services.engine) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        backlog = services.outbox.backlog()
    except Exception as exc:
        database = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    chain: dict[str, Any] = {
        "ok": services.chain_up,
        "kind": services.chain.kind,
        "chain_id": services.chain_id,
        "contract": services.client.address,
    }
    if services.chain_lock.acquire(timeout=2):
        try:
            chain["block"] = int(services.chain.w3.eth.block_number)
            services.chain_up = True
        except Exception as exc:
            services.mark_down(exc)
        finally:
            services.chain_lock.release()
    chain["ok"] = services.chain_up
    if not services.chain_up:
        chain["error"] = services.last_chain_error
    return {
        "ok": chain["ok"] and database["ok"],
        "chain": chain,
        "database": database,
        "backlog": backlog,
    }


_HEALTHY = {
    "ok": True,
    "chain": {
        "ok": True,
        "kind": "embedded",
        "chain_id": 131277322940537,
        "contract": "0xA128F79bB6cCB8154B0d1d272dBD08715095cA44",
        "block": 14,
    },
    "database": {"ok": True},
    "backlog": {"readings": 0, "orders": 0},
}


@router.get(
    "/health",
    summary="Chain and database status, and the outbox backlog",
    responses={
        200: {
            "description": "Both answer. `chain.chain_id` and `chain.contract` are the chain id "
            "and verifying contract of the EIP-712 domain that meters sign readings in.",
            "content": {"application/json": {"example": _HEALTHY}},
        },
        503: {"description": "The chain or the database does not answer (`error` says why)"},
    },
)
def health(services: Svc) -> JSONResponse:
    """200 when both the chain and the database answer, else 503 (the body says which). The
    backlog counts accepted readings and orders not yet on chain."""
    status = _status(services)
    return JSONResponse(status, 200 if status["ok"] else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(services: Svc) -> Response:
    status = _status(services)
    m = services.metrics
    m.chain_up.set(1 if status["chain"]["ok"] else 0)
    m.database_up.set(1 if status["database"]["ok"] else 0)
    for kind, count in status["backlog"].items():
        m.backlog.labels(kind).set(count)
    if "block" in status["chain"]:
        m.block.set(status["chain"]["block"])
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
