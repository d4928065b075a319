"""Bearer tokens: the operator's (from the settings) and one per household (stored hashed).

A household token is 32 random bytes (URL-safe base64) with a ``vsn_`` prefix, shown once at
registration. Only its SHA-256 is stored: with that much entropy a slow hash adds nothing,
and lookups stay a single indexed query.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from api.errors import forbidden, unauthorized
from api.models import ApiHousehold
from api.ratelimit import too_many

if TYPE_CHECKING:
    from api.services import Services

_bearer = HTTPBearer(auto_error=False, description="Operator or household bearer token")


def new_token() -> tuple[str, str]:
    """A new household token and the hash to store."""
    token = "vsn_" + secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the operator, or one household."""

    role: str  # "operator" or "household"
    household: int | None = None

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    def may_see(self, household: int) -> bool:
        return self.is_operator or self.household == household


def principal_of_token(services: Services, token: str) -> Principal:
    """Who holds ``token`` (blocking: a first sight of a household token reads the database)."""
    known, digest = _known(services, token)
    if known is not None:
        return known
    return _remember(services, digest, _household_of_token(services.engine, digest))


def _known(services: Services, token: str) -> tuple[Principal | None, str]:
    """The operator, or a household token seen before; else None and the token's digest."""
    if hmac.compare_digest(token.encode(), services.operator_token.encode()):
        return Principal("operator"), ""
    digest = hash_token(token)
    # Tokens never change once issued (a rotation drops the old one from this cache).
    cached = services.token_cache.get(digest)
    return (None if cached is None else Principal("household", cached)), digest


def _remember(services: Services, digest: str, household: int | None) -> Principal:
    if household is None:
        raise unauthorized("the bearer token is not valid")
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
# first lookup blocks, and it goes to a worker thread.


async def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized()
    if len(request.headers.getlist("authorization")) > 1:
        # Which one would count is up to each proxy and framework on the way: refuse both.
        raise unauthorized("send one Authorization header, not several")
    services = request.app.state.services
    known, digest = _known(services, credentials.credentials)
    if known is not None:
        return known
    household = await run_in_threadpool(_household_of_token, services.engine, digest)
    return _remember(services, digest, household)


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
    limiter = request.app.state.services.token_limiter
    wait = limiter.take(f"household:{principal.household}")
    if wait > 0:
        raise too_many(f"household {principal.household}'s token", wait, limiter)
    return principal


Caller = Annotated[Principal, Depends(_principal)]
Operator = Annotated[Principal, Depends(_operator)]
HouseholdCaller = Annotated[Principal, Depends(_household)]
