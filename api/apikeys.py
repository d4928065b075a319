"""The public API's keys and consents in the database, and CORS by each key's origins.

The rules (key format, scopes per route, origins, bodies) are pure, in
:mod:`api.apikeys_rules`; this module applies them to the tables ``api_key`` and
``api_consent`` (:mod:`api.models`) and to requests from browsers.

- A key is looked up on every request that carries it (one indexed query, no cache), so a
  revocation takes effect on the next request, in every worker.
- A consent is a row per grant, closed by its withdrawal (``withdrawn_at``); grants and
  withdrawals stay, as the household's history. A key's revocation withdraws its consents
  at the same moment. Whether a key may read a household is read on every request, so a
  withdrawal takes effect on the next one.
- CORS (:class:`KeyCors`): a preflight from an origin that a live key lists is answered
  with that origin; an answer to a request that carries a live key gets the CORS headers if
  the request's ``Origin`` is one of that key's. Any other origin gets no CORS headers, so a
  browser keeps the answer from its page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import anyio.to_thread
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.apikeys_rules import (
    HOUSEHOLD_READ,
    KEY_HEADER,
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    ApiKeysOut,
    ConsentOut,
    ConsentsOut,
    new_key,
    split_words,
)
from api.errors import ApiError, not_found
from api.models import ApiConsent, ApiHousehold, ApiKey
from api.privacy import hold_household
from api.sqlite_pragmas import begin_writing


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite gives its times back without their zone; they were written in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key as a request sees it."""

    id: int
    name: str
    scopes: tuple[str, ...]
    origins: tuple[str, ...]
    rate_per_s: int | None
    burst: int | None
    revoked: bool


def _record(row: ApiKey) -> KeyRecord:
    return KeyRecord(
        id=row.id or 0,
        name=row.name,
        scopes=split_words(row.scopes),
        origins=split_words(row.origins),
        rate_per_s=row.rate_per_s,
        burst=row.burst,
        revoked=row.revoked_at is not None,
    )


def _out(row: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id or 0,
        name=row.name,
        prefix=row.prefix,
        scopes=list(split_words(row.scopes)),
        origins=list(split_words(row.origins)),
        rate_per_s=row.rate_per_s,
        burst=row.burst,
        created_at=_utc(row.created_at) or row.created_at,
        revoked_at=_utc(row.revoked_at),
    )


# ───────────────────────────── Keys (the operator's) ─────────────────────────────


def issue(engine: Engine, body: ApiKeyIn) -> ApiKeyCreated:
    """A new key: stored hashed, answered once."""
    key, prefix, digest = new_key()
    row = ApiKey(
        name=body.name,
        prefix=prefix,
        secret_hash=digest,
        scopes=" ".join(body.unique_scopes()),
        origins=" ".join(body.unique_origins()),
        rate_per_s=body.rate_per_s,
        burst=body.burst,
    )
    with Session(engine) as session:
        session.add(row)
        session.commit()
        session.refresh(row)
        return ApiKeyCreated(**_out(row).model_dump(), key=key)


def listing(engine: Engine) -> ApiKeysOut:
    with Session(engine) as session:
        rows = session.exec(select(ApiKey).order_by(col(ApiKey.id))).all()
    return ApiKeysOut(items=[_out(r) for r in rows], total=len(rows))


def revoke(engine: Engine, key_id: int) -> ApiKeyOut:
    """Revoke a key (again: no change) and withdraw its consents, in one transaction."""
    with Session(engine) as session, session.begin():
        row = session.get(ApiKey, key_id)
        if row is None:
            raise not_found("unknown_api_key", f"API key {key_id} does not exist")
        if row.revoked_at is None:
            now = _now()
            row.revoked_at = now
            session.add(row)
            session.execute(
                update(ApiConsent)
                .where(
                    col(ApiConsent.key_id) == key_id,
                    col(ApiConsent.withdrawn_at).is_(None),
                )
                .values(withdrawn_at=now)
            )
        session.flush()
        return _out(row)


def find(engine: Engine, digest: str) -> KeyRecord | None:
    """The key whose hash is ``digest``, revoked or not; None if there is none."""
    with Session(engine) as session:
        row = session.exec(select(ApiKey).where(ApiKey.secret_hash == digest)).first()
    return None if row is None else _record(row)


def live_origins(engine: Engine) -> frozenset[str]:
    """Every origin a live key lists."""
    with Session(engine) as session:
        rows = session.exec(
            select(ApiKey.origins).where(col(ApiKey.revoked_at).is_(None), ApiKey.origins != "")
        ).all()
    return frozenset(o for text in rows for o in split_words(text))


# ───────────────────────────── Consents (the household's) ─────────────────────────────


def consented(engine: Engine, key_id: int, household: int) -> bool:
    """Whether ``household``'s consent to ``key_id`` holds now."""
    with Session(engine) as session:
        found = session.exec(
            select(ApiConsent.id).where(
                ApiConsent.key_id == key_id,
                ApiConsent.household == household,
                col(ApiConsent.withdrawn_at).is_(None),
            )
        ).first()
    return found is not None


def _consent_out(row: ApiConsent, name: str) -> ConsentOut:
    return ConsentOut(
        key_id=row.key_id,
        key_name=name,
        household=row.household,
        granted_at=_utc(row.granted_at) or row.granted_at,
        withdrawn_at=_utc(row.withdrawn_at),
    )


def _known_household(session: Session, household: int) -> None:
    if session.get(ApiHousehold, household) is None:
        raise not_found("unknown_household", f"household {household} is not registered")


def grant(engine: Engine, household: int, key_id: int) -> tuple[ConsentOut, bool]:
    """``household`` lets ``key_id`` read its data: the consent, and whether it is new (a
    consent that holds already is answered as it is)."""
    with Session(engine) as session, session.begin():
        begin_writing(session)
        hold_household(session, household)  # not erased since the request was checked
        key = session.get(ApiKey, key_id)
        if key is None or key.revoked_at is not None:
            state = "does not exist" if key is None else "was revoked"
            raise not_found("unknown_api_key", f"API key {key_id} {state}")
        if HOUSEHOLD_READ not in split_words(key.scopes):
            raise ApiError(
                409,
                "scope_not_granted",
                f"API key {key_id} ({key.name}) does not have the {HOUSEHOLD_READ} scope: it "
                "reads no household's data, so there is nothing to consent to",
            )
        open_ = session.exec(
            select(ApiConsent).where(
                ApiConsent.key_id == key_id,
                ApiConsent.household == household,
                col(ApiConsent.withdrawn_at).is_(None),
            )
        ).first()
        if open_ is not None:
            return _consent_out(open_, key.name), False
        row = ApiConsent(key_id=key_id, household=household)
        session.add(row)
        session.flush()
        return _consent_out(row, key.name), True


def withdraw(engine: Engine, household: int, key_id: int) -> ConsentOut:
    """Close ``household``'s consent to ``key_id`` now."""
    with Session(engine) as session, session.begin():
        _known_household(session, household)
        rows = session.exec(
            select(ApiConsent).where(
                ApiConsent.key_id == key_id,
                ApiConsent.household == household,
                col(ApiConsent.withdrawn_at).is_(None),
            )
        ).all()
        if not rows:
            raise not_found(
                "no_consent",
                f"household {household} has no consent to withdraw for API key {key_id}",
            )
        now = _now()
        for row in rows:
            row.withdrawn_at = now
            session.add(row)
        key = session.get(ApiKey, key_id)
        session.flush()
        return _consent_out(rows[0], key.name if key else "")


def consents(engine: Engine, household: int) -> ConsentsOut:
    """Every grant of ``household``, withdrawn or not, newest first."""
    with Session(engine) as session:
        _known_household(session, household)
        rows = session.exec(
            select(ApiConsent, ApiKey.name)
            .join(ApiKey, col(ApiKey.id) == ApiConsent.key_id)
            .where(ApiConsent.household == household)
            .order_by(col(ApiConsent.id).desc())
        ).all()
    return ConsentsOut(items=[_consent_out(row, name) for row, name in rows])


@dataclass(frozen=True, slots=True)
class App:
    """A live key that may read households' data, as a household's page lists it."""

    id: int
    name: str
    prefix: str
    granted: bool
    granted_at: datetime | None


def apps_for(engine: Engine, household: int) -> list[App]:
    """The live ``household:read`` keys, and whether ``household`` consents to each."""
    with Session(engine) as session:
        keys = session.exec(
            select(ApiKey).where(col(ApiKey.revoked_at).is_(None)).order_by(col(ApiKey.id))
        ).all()
        open_ = {
            row.key_id: row.granted_at
            for row in session.exec(
                select(ApiConsent).where(
                    ApiConsent.household == household, col(ApiConsent.withdrawn_at).is_(None)
                )
            ).all()
        }
    return [
        App(k.id or 0, k.name, k.prefix, (k.id or 0) in open_, _utc(open_.get(k.id or 0)))
        for k in keys
        if HOUSEHOLD_READ in split_words(k.scopes)
    ]


# ───────────────────────────── CORS ─────────────────────────────

#: Where :func:`api.auth` leaves the request's live key for :class:`KeyCors`.
STATE_KEY: Final = "voisin_api_key"
#: What a browser may send and read across origins: keys only read.
ALLOWED_METHODS: Final = "GET"
ALLOWED_HEADERS: Final = f"{KEY_HEADER}, X-Request-ID"
EXPOSED_HEADERS: Final = "Retry-After, X-Request-ID"
#: How long a browser may keep a preflight's answer (seconds).
PREFLIGHT_MAX_AGE_S: Final = 600


class KeyCors:
    """Pure ASGI middleware: CORS headers for the origins of the keys, and no others."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(scope, origin, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer = MutableHeaders(scope=message)
                answer.add_vary_header("Origin")
                key = state.get(STATE_KEY)
                if isinstance(key, KeyRecord) and origin in key.origins:
                    answer["Access-Control-Allow-Origin"] = origin
                    answer["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope: Scope, origin: str, send: Send) -> None:
        services = getattr(getattr(scope.get("app"), "state", None), "services", None)
        allowed = False
        if services is not None:
            origins = await anyio.to_thread.run_sync(live_origins, services.engine)
            allowed = origin in origins
        if allowed:
            status, body = 204, b""
            headers = [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
                (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_S).encode()),
                (b"vary", b"Origin"),
            ]
        else:
            status = 403
            body = json.dumps(
                {
                    "code": "origin_not_allowed",
                    "message": (
                        f"no API key lists the origin {origin!r}: the operator registers an "
                        "app's origins with its key"
                    ),
                }
            ).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"vary", b"Origin"),
            ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
