"""The message a page shows once, after a form's post redirected to it (post/redirect/get).

A successful post answers 303 See Other to its page and sets a short-lived cookie with what
it did (an :class:`api.web.once.Outcome`); the page shows it and clears it, so reloading the
page shows the page, and sends nothing again. The cookie is signed with the signed-in bearer
token (nobody else can plant a message), ``HttpOnly``, ``SameSite=Strict``, ``Secure`` over
HTTPS, and limited to ``/ui/``. It is the only place a new household's token passes through
on its way to the screen: it is never stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from api.web.once import Outcome
from api.web.paths import at

FLASH_COOKIE = "voisin_flash"
#: Long enough for the redirect to be followed, short enough to leave nothing behind.
MAX_AGE_S = 120


def _mac(bearer: str, payload: str) -> str:
    return hmac.new(
        bearer.encode(), b"voisin-flash|" + payload.encode(), hashlib.sha256
    ).hexdigest()


def redirect(request: Request, to: str, bearer: str, outcome: Outcome) -> Response:
    """303 See Other to ``to``, which then shows ``outcome`` once."""
    payload = base64.urlsafe_b64encode(outcome.as_json().encode()).decode().rstrip("=")
    response = RedirectResponse(at(request, to), 303)
    response.set_cookie(
        FLASH_COOKIE,
        f"{payload}.{_mac(bearer, payload)}",
        max_age=MAX_AGE_S,
        path=at(request, "/ui/"),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def taken(request: Request, bearer: str) -> Outcome | None:
    """The message waiting for this page, if one was left for the holder of ``bearer``."""
    value = request.cookies.get(FLASH_COOKIE, "")
    payload, _, mac = value.partition(".")
    if not payload or not hmac.compare_digest(_mac(bearer, payload), mac):
        return None
    try:
        text = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
        return Outcome.from_json(text)
    except (ValueError, KeyError, TypeError):
        return None


def cleared(request: Request, response: Response) -> Response:
    """``response``, clearing the message if the request carried one (it is shown once)."""
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path=at(request, "/ui/"))
    return response
