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
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session, select

from api.errors import forbidden, unauthorized
from api.models import ApiHousehold
from api.ratelimit import too_many

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


def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized()
    token = credentials.credentials
    services = request.app.state.services
    if hmac.compare_digest(token.encode(), services.operator_token.encode()):
        return Principal("operator")
    digest = hash_token(token)
    # Tokens never change once issued, so a hit can be remembered (bounded).
    cached = services.token_cache.get(digest)
    if cached is not None:
        return Principal("household", cached)
    with Session(services.engine) as session:
        household = session.exec(
            select(ApiHousehold).where(ApiHousehold.token_hash == digest)
        ).first()
    if household is None:
        raise unauthorized("the bearer token is not valid")
    if len(services.token_cache) > 100_000:
        services.token_cache.clear()
    services.token_cache[digest] = household.id
    return Principal("household", household.id)


def _operator(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    if not principal.is_operator:
        raise forbidden("only the grid operator may do this")
    return principal


def _household(request: Request, principal: Annotated[Principal, Depends(_principal)]) -> Principal:
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
