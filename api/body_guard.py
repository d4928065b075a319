"""The request-body guard: a pure ASGI middleware that reads every request's body before the
application does, and refuses the pathological ones cheaply, before anything parses them.

In order, on every route, whoever the caller (authentication comes later, in the routes):

1. **Size.** A body over ``max_body_bytes`` (``VOISIN_MAX_BODY_BYTES``) is answered 413
   ``payload_too_large``: at once when ``Content-Length`` says so, and as soon as the count
   goes over when the body is chunked (the same answer either way). The rest is never read.
2. **Encoding.** A body that will be parsed as JSON must be UTF-8 without NUL bytes, else 422
   ``invalid_input``. Python's ``json.loads`` on bytes guesses UTF-16 or UTF-32 from NUL bytes,
   and the scan below only sees through UTF-8 (where no byte of a multi-byte character is an
   ASCII bracket or quote); RFC 8259 requires UTF-8 between systems anyway.
3. **Depth.** JSON nested deeper than ``max_json_depth`` (``VOISIN_MAX_JSON_DEPTH``) is
   answered 422 ``json_too_deep``, by the scan of :mod:`ledger.jsonscan`, which is no parser
   and does not recurse (the embedded chain's node process guards its JSON-RPC port with it).
   Python's JSON parser recurses once per level, so without this a body of 80,000 ``[``
   crashed the process (see :data:`ledger.jsonscan.RECURSION_LIMIT`).
4. **Duplicate keys.** An object with the same key twice is answered 422 ``duplicate_key``
   naming the key. Python's parser silently keeps the last value, so ``{"amount_ueur": 1,
   "amount_ueur": 999999}`` would be read as 999,999 by the route and as 1 by anything that
   keeps the first. This is the one full parse here, safe because step 3 bounded the depth;
   it also refuses an integer of more than 4,300 digits with a message of its own.

Bodies the application will not parse as JSON (forms) only get step 1: FastAPI reads forms with
its own limits. The body is handed on to the application unchanged, in one message.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.jsonscan import DuplicateKey, json_depth_problem, refuse_duplicate_keys

__all__ = ["BodyGuard"]

#: Content types FastAPI parses as forms, not as JSON.
_FORMS = (b"application/x-www-form-urlencoded", b"multipart/form-data")


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether FastAPI would parse this body as JSON: anything but a form, to be safe (no
    content type, ``application/json``, ``+json`` and even ``text/plain``, which the routes
    then refuse). A form is its media type exactly, parameters aside: FastAPI parses
    ``application/x-www-form-urlencoded+json`` as JSON, so it is checked as JSON."""
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() not in _FORMS
    return True


async def _answer(
    send: Send, status: int, code: str, message: str, extra: dict[str, Any], *, close: bool
) -> None:
    """The error shape of :mod:`api.errors`, sent straight from here."""
    body = json.dumps({"code": code, "message": message, **extra}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        # The body was not read to its end: the connection cannot carry another request.
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyGuard:
    """Read the whole body (at most ``max_body_bytes``), check it, then hand it on unchanged."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_json_depth: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    async def _too_large(self, send: Send) -> None:
        text = f"request bodies are limited to {self.max_body_bytes} bytes"
        await _answer(send, 413, "payload_too_large", text, {}, close=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        for name, value in headers:
            if name == b"content-length" and (
                not value.isdigit() or int(value) > self.max_body_bytes
            ):
                # h11 and httptools refuse a malformed length before this; a test client may not.
                await self._too_large(send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and _is_json(headers):
            refusal = self._check_json(body)
            if refusal is not None:
                status, code, text, extra = refusal
                await _answer(send, status, code, text, extra, close=False)
                return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as usual

        await self.app(scope, replay, send)

    def _check_json(self, body: bytes) -> tuple[int, str, str, dict[str, Any]] | None:
        """(status, code, message, extra fields) of the refusal, or None to hand it on."""
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            where = f"byte {exc.start}"
            return 422, "invalid_input", f"the body must be UTF-8 JSON ({where} is not)", {}
        if b"\x00" in body:
            return 422, "invalid_input", "the body must be JSON text: it holds a NUL byte", {}
        problem = json_depth_problem(body, self.max_json_depth)
        if problem is not None:
            code, text = problem
            return 422, code, text, {"details": {"max_json_depth": self.max_json_depth}}
        try:
            json.loads(body, object_pairs_hook=refuse_duplicate_keys)
        except DuplicateKey as exc:
            text = f"the key {exc.key!r} appears twice in one JSON object; give each key once"
            details = [{"field": exc.key, "problem": "duplicate key"}]
            return 422, "duplicate_key", text, {"details": details}
        except json.JSONDecodeError:
            pass  # not JSON: the application answers that (or ignores a body it does not take)
        except ValueError:
            # Python refuses to read an integer of more than sys.get_int_max_str_digits() digits
            # (4,300 by default: reading one takes quadratic time).
            text = "the body holds an integer too long to read; no field takes more than 19 digits"
            return 422, "invalid_input", text, {}
        return None
