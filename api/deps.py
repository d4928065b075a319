"""Shared request dependencies: the running services and the error responses to document."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from api.schemas import PROBLEM_EXAMPLES, Problem
from api.services import Services


async def _services(request: Request) -> Services:
    # async: FastAPI runs a plain def dependency in a worker thread, a hop per request.
    services: Services = request.app.state.services
    return services


Svc = Annotated[Services, Depends(_services)]


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    text = {
        401: "Missing or invalid bearer token",
        403: "Wrong role, or another household's resource",
        404: "Unknown id",
        409: "Conflict with what is already recorded",
        413: "The body is larger than VOISIN_MAX_BODY_BYTES (with Content-Length or chunked)",
        422: "Invalid input",
        429: "Rate limit reached: retry after the Retry-After header's seconds",
        503: "The chain or the database is unreachable",
    }
    return {
        s: {
            "model": Problem,
            "description": text[s],
            "content": {"application/json": {"example": PROBLEM_EXAMPLES[s]}},
        }
        for s in statuses
    }
