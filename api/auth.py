"""Who is calling: bearer tokens (the operator's, from the settings, and one per household,
stored hashed) and third-party apps' API keys.

A household token is 32 random bytes (URL-safe base64) with a ``vsn_`` prefix, shown once at
registration. Only its SHA-256 is stored: with that much entropy a slow hash adds nothing,
and lookups stay a single indexed query.

An API key (``vak_``, :mod:`api.apikeys_rules`) comes in the ``X-API-Key`` header, never in
``Authorization``: each credential has one place, and one shape. Every API route checks a key
first (:data:`KeyGate`): unknown or revoked, 401; a route its scopes do not cover, 403; then
one request from the key's bucket (429 when empty). A key reading a household's data stands
for that household only if it consents now (:func:`_app_principal`), read on every request,
so a withdrawal or a revocation counts from the next request on. A key never writes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from api import apikeys
from api.apikeys_rules import (
    HOUSEHOLD_READ,
    KEY_HEADER,
    KEY_PREFIX,
    anonymously_limited,
    hash_key,
    is_key,
    parse_id,
    required_scope,
    target_household,
)
from api.errors import ApiError, forbidden, unauthorized
from api.models import ApiHousehold
from api.ratelimit import KeyLimits, RateLimiter, too_many

if TYPE_CHECKING:
    from api.services import Services

_bearer = HTTPBearer(auto_error=False, description="Operator or household bearer token")
_api_key = APIKeyHeader(
    name=KEY_HEADER,
    auto_error=False,
    scheme_name="ApiKey",
    description=(
        f"A third-party app's API key ({KEY_PREFIX}...), issued by the operator: "
        "public:read and household:read (with the household's consent) routes only"
    ),
)


def new_token() -> tuple[str, str]:
    """A new household token and the hash to store."""
    token = "vsn_" + secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the operator, one household, or an app's key (``role`` "app", with
    ``household`` the one consenting household the request reads, if any)."""

    role: str  # "operator", "household" or "app"
    household: int | None = None
    key: int | None = None

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    @property
    def is_app(self) -> bool:
        return self.role == "app"

    def may_see(self, household: int) -> bool:
        return self.is_operator or self.household == household


def principal_of_token(services: Services, token: str) -> Principal:
    """Who holds ``token`` (blocking: a first sight of a household token reads the database)."""
    known, digest = _known(services, token)
    if known is not None:
        return known
    forgets = services.token_forgets
    return _remember(services, digest, _household_of_token(services.engine, digest), forgets)


def _known(services: Services, token: str) -> tuple[Principal | None, str]:
    """The operator, or a household token seen before; else None and the token's digest."""
    # Every operator token compared, so that the time taken says nothing of which matched.
    matches = [hmac.compare_digest(token.encode(), t.encode()) for t in services.operator_tokens]
    if any(matches):
        return Principal("operator"), ""
    digest = hash_token(token)
    if services.shared_database:
        # Another process may have rotated or erased the token: the database says.
        return None, digest
    # Tokens never change once issued (a rotation drops the old one from this cache).
    cached = services.token_cache.get(digest)
    return (None if cached is None else Principal("household", cached)), digest


def _remember(services: Services, digest: str, household: int | None, forgets: int) -> Principal:
    if household is None:
        market = services.token_elsewhere(digest)
        if market is not None:
            raise unauthorized(
                f"the bearer token belongs to market {market!r}, not this one: "
                f"call /markets/{market}/..."
            )
        raise unauthorized("the bearer token is not valid")
    if services.shared_database:
        return Principal("household", household)
    if services.token_forgets != forgets:
        # Tokens were dropped while the database was read (a rotation or an erasure that
        # committed meanwhile): what was read may be one of them, so it is not cached.
        return Principal("household", household)
    if len(services.token_cache) > 100_000:
        services.token_cache.clear()
    services.token_cache[digest] = household
    return Principal("household", household)


def _household_of_token(engine: Engine, digest: str) -> int | None:
    with Session(engine) as session:
        return session.exec(
            select(ApiHousehold.id).where(ApiHousehold.token_hash == digest)
        ).first()


# The dependencies below are async: FastAPI runs a plain def dependency in a worker thread,
# and those hops were a large share of a request's time (scripts/bench_api.py). Only a token's
# first lookup, and a key's every lookup, block, and they go to a worker thread.


def _route_path(request: Request) -> str:
    return str(getattr(request.scope.get("route"), "path", request.url.path))


def _anonymous_limit(request: Request) -> None:
    """The public market reads without a key: one token from the client address's bucket."""
    if not anonymously_limited(request.method, _route_path(request)):
        return
    limiter: RateLimiter = request.app.state.public_limiter
    client = request.client.host if request.client else "unknown"
    wait = limiter.take(f"client:{client}")
    if wait > 0:
        raise too_many(
            f"client {client} without an API key (an app's key has its own, higher limit)",
            wait,
            limiter,
        )


async def _app_key(
    request: Request, key: Annotated[str | None, Security(_api_key)]
) -> apikeys.KeyRecord | None:
    """The request's live API key, checked against the route (None: no key sent)."""
    if key is None and KEY_HEADER not in request.headers:
        _anonymous_limit(request)
        return None
    # Sent empty is sent: refused below like any value that is not a key.
    key = key or ""
    if len(request.headers.getlist(KEY_HEADER)) > 1:
        raise unauthorized(f"send one {KEY_HEADER} header, not several")
    if "authorization" in request.headers:
        raise unauthorized(
            f"send either an API key ({KEY_HEADER}) or a bearer token (Authorization), not both"
        )
    if not is_key(key):
        raise unauthorized(
            f"{KEY_HEADER} takes an API key, which starts with {KEY_PREFIX}; a household's "
            "or the operator's token goes in Authorization: Bearer"
        )
    services = request.app.state.services
    record = await run_in_threadpool(apikeys.find, services.engine, hash_key(key))
    if record is None:
        raise unauthorized("the API key is not valid")
    if record.revoked:
        raise unauthorized(f"API key {record.id} ({record.name}) was revoked by the operator")
    path = _route_path(request)
    scope = required_scope(request.method, path)
    if scope is None:
        raise ApiError(
            403,
            "key_out_of_scope",
            f"an API key cannot call {request.method} {path}: keys only read (public:read: "
            "tariffs, slot outcomes, the neighbourhood's forecast, health, metrics; "
            "household:read: a consenting household's balance, statement, forecast, trades, "
            "offers and bids)",
        )
    if scope not in record.scopes:
        raise ApiError(
            403,
            "key_out_of_scope",
            f"API key {record.id} ({record.name}) does not have the {scope} scope, which "
            f"{request.method} {path} needs; it has: {', '.join(record.scopes)}",
        )
    limits: KeyLimits = request.app.state.key_limits
    limits.take(record.id, record.rate_per_s, record.burst)
    # For KeyCors (api/apikeys.py): the answer gets CORS headers for this key's origins.
    request.state.voisin_api_key = record
    return record


async def _app_principal(request: Request, record: apikeys.KeyRecord) -> Principal:
    """The key as a caller of a household's read: standing for the household the request
    names, if that household consents to the key now."""
    named = target_household(dict(request.path_params), request.query_params.multi_items())
    if named is None:
        raise ApiError(
            403,
            "consent_required",
            f"an API key reads one household's data at a time: name the household "
            f"(?household=<id>), one that granted API key {record.id} {HOUSEHOLD_READ}",
        )
    household = parse_id(named)
    if household is None:
        # Not as the consent is checked: refused here, since the route's own parsing is
        # looser ("+1", "1.0" and " 1" are 1 to it) and would read a household unchecked.
        raise ApiError(
            422,
            "invalid_input",
            f"household: {named!r} is not a household id (digits only, from 1)",
            details=[{"field": "household", "problem": "not a household id"}],
        )
    services = request.app.state.services
    if not await run_in_threadpool(apikeys.consented, services.engine, record.id, household):
        raise ApiError(
            403,
            "consent_required",
            f"household {household} has not granted API key {record.id} ({record.name}) "
            f"{HOUSEHOLD_READ} (it grants it on its page, or with POST "
            f"/v1/households/{household}/consents/{record.id})",
        )
    return Principal("app", household, record.id)


async def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    app_key: Annotated[apikeys.KeyRecord | None, Depends(_app_key)],
) -> Principal:
    if app_key is not None:
        return await _app_principal(request, app_key)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized()
    if len(request.headers.getlist("authorization")) > 1:
        # Which one would count is up to each proxy and framework on the way: refuse both.
        raise unauthorized("send one Authorization header, not several")
    services = request.app.state.services
    known, digest = _known(services, credentials.credentials)
    if known is not None:
        return known
    if is_key(credentials.credentials):
        raise unauthorized(
            f"an API key goes in the {KEY_HEADER} header, not in Authorization: Bearer"
        )
    forgets = services.token_forgets
    household = await run_in_threadpool(_household_of_token, services.engine, digest)
    return _remember(services, digest, household, forgets)


async def _operator(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    if not principal.is_operator:
        raise forbidden("only the grid operator may do this")
    return principal


async def _household(
    request: Request, principal: Annotated[Principal, Depends(_principal)]
) -> Principal:
    """A household's write: one token from its bucket (api/ratelimit.py), or 429."""
    if principal.is_operator:
        raise forbidden("only a household may do this (the operator does not trade)")
    if principal.is_app:
        raise forbidden("only a household may do this, with its own token (API keys only read)")
    limiter = request.app.state.services.token_limiter
    wait = limiter.take(f"household:{principal.household}")
    if wait > 0:
        raise too_many(f"household {principal.household}'s token", wait, limiter)
    return principal


#: Every API route depends on it (api/app.py): a key sent is checked, anywhere.
KeyGate = Depends(_app_key)
Caller = Annotated[Principal, Depends(_principal)]
Operator = Annotated[Principal, Depends(_operator)]
HouseholdCaller = Annotated[Principal, Depends(_household)]
