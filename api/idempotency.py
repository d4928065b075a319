"""The ``Idempotency-Key`` header: what makes a money or registering request safe to send again.

A client that lost an answer (a timeout, a dropped connection, a server killed midway) sends the
same request again with the same key. The API then answers what it answered the first time,
with the same status and JSON, and applies nothing twice (:mod:`api.intents` keeps the answer
with the request's intent). The same key with another request is refused (409
``idempotency_key_reused``).

- **Scope**: a key belongs to its caller: the operator, or one household (whichever of its
  tokens it holds now, so that a token rotation does not make a lost request new again). Two
  households may use the same key without meeting.
- **Fingerprint**: the operation (method and path) and the validated body, as canonical JSON.
  Whitespace, key order and omitted defaults do not make a request different; another value
  does.
- **Retention**: :data:`KEY_RETENTION` after the request finished, its intent (and so its key
  and answer) is deleted; a key seen again after that is a new request. A request not finished
  (in flight, or interrupted by a crash) is never forgotten.
- **Not kept**: a request refused by validation before anything was recorded (4xx with nothing
  done) keeps no answer: the same key may be sent again, corrected or later, as Stripe does.

Without the header a request is carried out as before (validated first, recorded as an intent,
then done), but a retry is a new request.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Protocol

from fastapi import Depends, Header, Request
from pydantic import BaseModel

from api.errors import ApiError

#: The header's name, as clients send it.
HEADER = "Idempotency-Key"
#: Longest key accepted: a UUID is 36 characters; 255 leaves room for a client's own scheme.
MAX_KEY_LENGTH = 255
#: Printable ASCII without spaces: a key is an opaque identifier, safe to log and compare.
KEY_PATTERN = r"^[!-~]+$"
#: How long a finished request's key and answer are kept. A week covers an operator's script
#: retried the next day or after a weekend; a retry later than this is a new request.
KEY_RETENTION = timedelta(days=7)

DESCRIPTION = (
    "A client-chosen key (1 to 255 printable ASCII characters, e.g. a UUID) that makes this "
    "request safe to send again: the same key with the same request answers the first answer "
    "again (same status and JSON) and applies nothing twice, even if the first is still in "
    "flight or was interrupted by a crash (it is completed first). The same key with another "
    "request is refused with 409 `idempotency_key_reused`. Keys are scoped to the caller (the "
    "operator or one household) and kept for 7 days after the request finished. A request "
    "refused by validation keeps no answer."
)


def _one_key(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=MAX_KEY_LENGTH,
            pattern=KEY_PATTERN,
            description=DESCRIPTION,
            examples=["0b6f5a4e-3c1d-4f6a-9a51-2f4a7d0c9e21"],
        ),
    ] = None,
) -> str | None:
    """The request's key; two or more ``Idempotency-Key`` headers are refused, as two
    ``Authorization`` headers are: which one counts would be up to each proxy on the way, and a
    retry read under another key would be applied again."""
    if len(request.headers.getlist(HEADER)) > 1:
        raise ApiError(
            422,
            "invalid_input",
            f"send one {HEADER} header, not several: nothing was done",
        )
    return key


#: The header as a route parameter: one definition, documented the same on every route.
IdempotencyKey = Annotated[str | None, Depends(_one_key)]


class Caller(Protocol):
    """Who asks (:class:`api.auth.Principal`; named structurally, as the services this module
    serves are what :mod:`api.auth` reads its callers from)."""

    @property
    def is_operator(self) -> bool: ...

    @property
    def household(self) -> int | None: ...


def scope_of(caller: Caller) -> str:
    """The namespace of ``caller``'s keys."""
    return "operator" if caller.is_operator else f"household:{caller.household}"


def fingerprint(operation: str, body: BaseModel | None) -> str:
    """SHA-256 of the operation (``"POST /topups"``) and the validated body, canonical JSON."""
    document: dict[str, Any] = {
        "operation": operation,
        "body": None if body is None else body.model_dump(mode="json"),
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Ask:
    """One request for an action: its kind, its caller's scope, its key (if any) and its
    fingerprint."""

    kind: str
    scope: str
    key: str | None
    fingerprint: str

    @classmethod
    def of(
        cls,
        kind: str,
        caller: Caller,
        key: str | None,
        operation: str,
        body: BaseModel | None = None,
    ) -> Ask:
        return cls(kind, scope_of(caller), key, fingerprint(operation, body))
