"""``/v1/api-keys`` (operator): issue, list and revoke third-party apps' keys; and how the API's
routes are served: at ``/v1`` and, deprecated, at their paths from before versions.

A key's secret is in the answer to its creation only; the database keeps its SHA-256
(:mod:`api.apikeys`). A revoked key stops working at its next request, and its households'
consents are withdrawn with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path
from fastapi.routing import APIRoute

from api import apikeys
from api.apikeys_rules import (
    MAX_KEY_ID,
    VERSION_PREFIX,
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    ApiKeysOut,
)
from api.auth import KeyGate, Operator
from api.deps import Svc, problems
from api.ratelimit import KeyLimits, RateLimiter
from api.settings import Settings

router = APIRouter(prefix="/api-keys", tags=["api keys"])
KeyPath = Annotated[int, Path(ge=1, le=MAX_KEY_ID, description="The API key's id")]


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyCreated,
    responses=problems(401, 403, 422),
    summary="Issue an API key to a third-party app (operator)",
)
def create_api_key(body: ApiKeyIn, _: Operator, services: Svc) -> ApiKeyCreated:
    """The key (``vak_...``) is in this answer only: it is stored hashed. Its scopes say what
    it reads (``public:read``, ``household:read``), its origins which browser pages may call
    the API with it (CORS), and ``rate_per_s`` and ``burst`` its own limit."""
    return apikeys.issue(services.engine, body)


@router.get(
    "",
    response_model=ApiKeysOut,
    responses=problems(401, 403),
    summary="Every API key, revoked ones included, without their secrets (operator)",
)
def list_api_keys(_: Operator, services: Svc) -> ApiKeysOut:
    return apikeys.listing(services.engine)


@router.delete(
    "/{key_id}",
    response_model=ApiKeyOut,
    responses=problems(401, 403, 404, 422),
    summary="Revoke an API key (operator)",
)
def revoke_api_key(key_id: KeyPath, _: Operator, services: Svc) -> ApiKeyOut:
    """The key stops working at once (401 from the next request on), and the consents
    households gave it are withdrawn. Revoking a revoked key changes nothing."""
    return apikeys.revoke(services.engine, key_id)


# ───────────────────────────── Versions ─────────────────────────────

#: What every API route answers beyond its own statuses: a key refused (401, 403) or over
#: its limit (429).
_KEY_PROBLEMS = problems(401, 403, 429)


def _operation_id(route: APIRoute) -> str:
    """A /v1 operation's id is its function's name (``balance``, ``post_offer``): what the
    generated client calls it."""
    return route.name


#: The options of a router served at /v1 (``app.include_router(module.router, **V1)``): behind
#: the key gate, with the key's refusals documented, and its function names as operation ids.
V1: dict[str, Any] = {
    "prefix": VERSION_PREFIX,
    "dependencies": [KeyGate],
    "responses": _KEY_PROBLEMS,
    "generate_unique_id_function": _operation_id,
}


def include(app: FastAPI, settings: Settings, current: Iterable[ModuleType]) -> None:
    """Serve the ``current`` routers at ``/v1`` too, with the key and consent routes (which
    only /v1 has), every one behind the key gate; and set up the per-key limits."""
    from api.routes import consents

    for module in (*current, consents):
        app.include_router(module.router, **V1)
    app.include_router(router, **V1)
    app.openapi = _key_optional(app.openapi)  # type: ignore[method-assign]
    app.state.key_limits = KeyLimits(settings.api_key_rate_per_s, settings.api_key_burst)
    app.state.public_limiter = RateLimiter(
        "public", settings.public_rate_per_s, settings.public_burst
    )


def _key_optional(generate: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document, saying that a route whose only scheme is the key also answers
    without one (an empty alternative, ``{}``): the public reads and ``POST /readings`` take a
    key and need none. Where a bearer token is the other scheme, either one does."""

    def openapi() -> dict[str, Any]:
        document = generate()
        for item in document.get("paths", {}).values():
            for operation in item.values():
                if operation.get("security") == [{"ApiKey": []}]:
                    operation["security"] = [{}, {"ApiKey": []}]
        return document

    return openapi


#: The options of the routers at their paths from before /v1: the same routes and the same
#: checks (a key is checked there too), documented as deprecated.
UNVERSIONED: dict[str, Any] = {
    "deprecated": True,
    "dependencies": [KeyGate],
    "responses": _KEY_PROBLEMS,
}
