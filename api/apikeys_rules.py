"""The public API's rules, pure: what a key looks like, which scope each route needs, which
browser origins a key may be called from, and the bodies the key and consent routes take and
answer.

Nothing here reads the database or knows a request: :mod:`api.apikeys` applies these rules at
the edges (the key's lookup, consents, CORS), and :mod:`api.auth` to each request.

- **Keys** are ``vak_`` and 32 random bytes (URL-safe base64). The prefix tells a key from a
  household's token (``vsn_``) and from the operator's at a glance, in a log line or a header
  put in the wrong place. Only the key's SHA-256 is stored (as for household tokens, with
  that much entropy a slow hash adds nothing).
- **Scopes**: ``public:read`` reads what anyone may read without a token (tariffs, slot
  outcomes, health, metrics, the public live feed), under the key's own rate limit instead
  of the anonymous one; ``household:read`` reads a household's balance, statement, trades,
  offers and bids, only for households that granted the key their consent. A key never
  writes.
- **Versions**: every route is served under ``/v1`` and at its unversioned path; the scope
  rules are written against the unversioned path, so both answer alike.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from api.schemas import SAFE_TEXT_PATTERN, plain_text

#: What every key starts with.
KEY_PREFIX: Final = "vak_"
#: The characters of a key after its prefix that listings show (never enough to use it).
SHOWN_CHARS: Final = 6
#: The path prefix of the current version of the API.
VERSION_PREFIX: Final = "/v1"
#: The header a key is sent in.
KEY_HEADER: Final = "X-API-Key"

PUBLIC_READ: Final = "public:read"
HOUSEHOLD_READ: Final = "household:read"
Scope = Literal["public:read", "household:read"]
SCOPES: Final = (PUBLIC_READ, HOUSEHOLD_READ)

#: (method, unversioned path) of the routes anyone may read without a token.
PUBLIC_ROUTES: Final = frozenset(
    {
        ("GET", "/market/tariffs"),
        ("GET", "/market/slots/{slot}"),
        ("GET", "/forecast"),
        ("GET", "/health"),
        ("GET", "/metrics"),
        ("GET", "/feed"),
    }
)
#: The public reads that are rate limited per client address when called without a key
#: (/health and /metrics are for the operator's monitoring, which polls them).
ANONYMOUS_LIMITED: Final = frozenset(
    {("GET", "/market/tariffs"), ("GET", "/market/slots/{slot}"), ("GET", "/forecast")}
)
#: (method, unversioned path) of a household's reads: with ``household:read``, for the
#: household named in the path or in ``?household=``, if it consented.
HOUSEHOLD_ROUTES: Final = frozenset(
    {
        ("GET", "/households/{household}/balance"),
        ("GET", "/households/{household}/statement"),
        ("GET", "/households/{household}/forecast"),
        ("GET", "/trades"),
        ("GET", "/offers"),
        ("GET", "/bids"),
    }
)

#: Most origins a key may list.
MAX_ORIGINS: Final = 20
#: Bounds of a key's own rate limit.
MAX_KEY_RATE_PER_S: Final = 10_000
MAX_KEY_BURST: Final = 100_000
#: Largest key id a path takes (an INTEGER on SQLite, a BIGINT on PostgreSQL: the smaller).
MAX_KEY_ID: Final = 2**31 - 1


# ───────────────────────────── Keys ─────────────────────────────


def new_key() -> tuple[str, str, str]:
    """A new key, the part of it that listings show, and the hash to store."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, shown_part(key), hash_key(key)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def shown_part(key: str) -> str:
    return key[: len(KEY_PREFIX) + SHOWN_CHARS]


def is_key(text: str) -> bool:
    """Whether ``text`` is shaped like a key (its prefix): not whether it is a live one."""
    return text.startswith(KEY_PREFIX)


def unversioned(path: str) -> str:
    """A route's path without the version prefix: ``/v1/trades`` -> ``/trades``."""
    if path == VERSION_PREFIX or path.startswith(VERSION_PREFIX + "/"):
        return path[len(VERSION_PREFIX) :] or "/"
    return path


def required_scope(method: str, path: str) -> Scope | None:
    """The scope a key needs for ``method path`` (versioned or not); None: no key may call it
    (a write, the operator's routes, the key and consent routes)."""
    route = (method.upper(), unversioned(path))
    if route in PUBLIC_ROUTES:
        return PUBLIC_READ
    if route in HOUSEHOLD_ROUTES:
        return HOUSEHOLD_READ
    return None


def anonymously_limited(method: str, path: str) -> bool:
    return (method.upper(), unversioned(path)) in ANONYMOUS_LIMITED


def target_household(path_params: dict[str, str], query: list[tuple[str, str]]) -> str | None:
    """The household a request reads: its ``{household}`` path parameter, else its
    ``?household=`` (as sent: the route's validation checks it is a number)."""
    if "household" in path_params:
        return str(path_params["household"])
    given = [value for name, value in query if name == "household"]
    return given[0] if len(given) == 1 else None


def parse_id(text: str | None, top: int = MAX_KEY_ID) -> int | None:
    """A decimal id from 1 to ``top``, or None."""
    if text is None or not re.fullmatch(r"[0-9]{1,19}", text):
        return None
    value = int(text)
    return value if 1 <= value <= top else None


# ───────────────────────────── Origins (CORS) ─────────────────────────────


def origin(text: str) -> str:
    """``text`` as a browser sends it in ``Origin``: ``scheme://host[:port]`` with a lower-case
    scheme and host, http or https, nothing after; else ``ValueError`` saying why."""
    if text != text.strip() or not text:
        raise ValueError("an origin has no spaces: scheme://host[:port]")
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"{text!r}: an origin is http:// or https://, then the host")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise ValueError(f"{text!r}: an origin names a host, and no user or password")
    if parts.path or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError(f"{text!r}: an origin has no path, query or fragment (no trailing /)")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535") from exc
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")


def split_words(text: str) -> tuple[str, ...]:
    """A space-separated column (scopes, origins) as a tuple."""
    return tuple(text.split())


# ───────────────────────────── Bodies ─────────────────────────────

_ORIGIN_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+$"
Origin = Annotated[
    str,
    StringConstraints(min_length=8, max_length=200),
    AfterValidator(origin),
    Field(json_schema_extra={"pattern": _ORIGIN_PATTERN}),
]
KeyName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=80),
    AfterValidator(plain_text),
    Field(json_schema_extra={"pattern": SAFE_TEXT_PATTERN}),
]
_KEY_EXAMPLE = "vak_Zr8mQ2xV0cN4bT7yH1kL5pW9sD3fG6jA2eU8iO0rY4q"


class ApiKeyIn(BaseModel):
    """A key to issue: what the app is called, what it may read, and from which browser
    origins (none: the app calls from a server, never from a page)."""

    name: KeyName = Field(description="The app's name, as households see it on their page.")
    scopes: list[Scope] = Field(min_length=1, max_length=len(SCOPES))
    origins: list[Origin] = Field(
        default_factory=list,
        max_length=MAX_ORIGINS,
        description="Browser origins (scheme://host[:port]) answered with CORS headers.",
    )
    rate_per_s: int | None = Field(
        default=None,
        ge=1,
        le=MAX_KEY_RATE_PER_S,
        strict=True,
        description="Requests per second after the burst; default VOISIN_API_KEY_RATE_PER_S.",
    )
    burst: int | None = Field(
        default=None,
        ge=1,
        le=MAX_KEY_BURST,
        strict=True,
        description="Requests the key may make at once; default VOISIN_API_KEY_BURST.",
    )

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "Quartier Solaire",
                    "scopes": ["public:read", "household:read"],
                    "origins": ["https://app.quartier-solaire.example"],
                    "rate_per_s": 20,
                    "burst": 200,
                }
            ]
        },
    )

    def unique_scopes(self) -> tuple[str, ...]:
        return tuple(s for s in SCOPES if s in self.scopes)

    def unique_origins(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.origins))


class ApiKeyOut(BaseModel):
    """A key as listed: never its secret."""

    id: int
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    scopes: list[str]
    origins: list[str]
    rate_per_s: int | None
    burst: int | None
    created_at: datetime
    revoked_at: datetime | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "name": "Quartier Solaire",
                    "prefix": _KEY_EXAMPLE[:10],
                    "scopes": ["public:read", "household:read"],
                    "origins": ["https://app.quartier-solaire.example"],
                    "rate_per_s": 20,
                    "burst": 200,
                    "created_at": "2026-12-06T10:00:00Z",
                    "revoked_at": None,
                }
            ]
        }
    )


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key. Shown once, stored hashed: keep it now.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "name": "Quartier Solaire",
                    "prefix": _KEY_EXAMPLE[:10],
                    "scopes": ["public:read", "household:read"],
                    "origins": ["https://app.quartier-solaire.example"],
                    "rate_per_s": 20,
                    "burst": 200,
                    "created_at": "2026-12-06T10:00:00Z",
                    "revoked_at": None,
                    "key": _KEY_EXAMPLE,
                }
            ]
        }
    )


class ApiKeysOut(BaseModel):
    items: list[ApiKeyOut]
    total: int


class ConsentOut(BaseModel):
    """One grant of ``household:read`` to a key, and its withdrawal once withdrawn."""

    key_id: int
    key_name: str
    household: int
    granted_at: datetime
    withdrawn_at: datetime | None = Field(description="None while the consent holds.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key_id": 1,
                    "key_name": "Quartier Solaire",
                    "household": 1,
                    "granted_at": "2026-12-06T10:05:00Z",
                    "withdrawn_at": None,
                }
            ]
        }
    )


class ConsentsOut(BaseModel):
    """A household's consents, the withdrawn ones included (newest first)."""

    items: list[ConsentOut]
