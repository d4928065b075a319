"""Who is signed in to the dashboard, and the anti-forgery token its forms carry.

The sign-in cookie holds the bearer token itself (``HttpOnly``, ``SameSite=Strict``, ``Secure``
over HTTPS): the API's workers stay stateless and a token is checked exactly as
:mod:`api.auth` checks a bearer header. The API's own routes never read the cookie, so it
cannot be used against them. Every form also carries an HMAC of the token, which a page on
another site cannot compute, and a POST without it is refused.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from api.auth import Principal, principal_of_token
from api.errors import ApiError

TOKEN_COOKIE = "voisin_token"
LANG_COOKIE = "voisin_lang"


def principal_for(request: Request, token: str) -> Principal | None:
    """The operator or household that ``token`` belongs to, or None if it is not valid."""
    if not token or len(token) > 512:
        return None
    try:
        return principal_of_token(request.app.state.services, token)
    except ApiError:
        return None


def signed_in(request: Request) -> tuple[Principal, str] | None:
    token = request.cookies.get(TOKEN_COOKIE, "")
    who = principal_for(request, token)
    return None if who is None else (who, token)


def signed_in_to(request: Request, to: str, cookie: str, token: str, path: str) -> Response:
    """303 to ``to``, holding ``token`` in the sign-in ``cookie`` for the pages under ``path``
    (``HttpOnly``, ``SameSite=Strict``, ``Secure`` over HTTPS)."""
    response = RedirectResponse(to, 303)
    response.set_cookie(
        cookie,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=path,
    )
    return response


def sent_from_here(request: Request) -> bool:
    """Whether a browser sent this POST from one of this site's own pages.

    For the sign-in and sign-out forms, which no signed-in token protects (a page elsewhere
    could otherwise sign a visitor in as someone else, or out). A browser says where a form
    came from in ``Sec-Fetch-Site`` (``same-origin``; ``none`` when the person did it
    directly); one too old for that sends ``Origin``, which must be this site's. A request
    with neither does not come from a browser's form on another site, and is let through.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin == f"{request.url.scheme}://{host}"


def form_token(token: str) -> str:
    """The anti-forgery value of the forms shown to the holder of ``token``."""
    return hmac.new(token.encode(), b"voisin-dashboard-form", hashlib.sha256).hexdigest()


def form_token_ok(token: str, sent: str) -> bool:
    return hmac.compare_digest(form_token(token), sent)
