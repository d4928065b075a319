"""The web dashboard's entry: ``/`` (sign in), sign out, the language switch, the static
files and the live stamp the pages poll. The household and operator pages are in
:mod:`api.routes.dashboard_household` and :mod:`api.routes.dashboard_operator`.

Every dashboard path but ``/`` is under ``/ui/``, out of the API's way, and out of its OpenAPI
schema.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from api.deps import Svc
from api.errors import not_found
from api.web import audit, i18n
from api.web.paths import at
from api.web.render import STATIC, page
from api.web.session import (
    LANG_COOKIE,
    TOKEN_COOKIE,
    principal_for,
    sent_from_here,
    signed_in,
    signed_in_to,
)

router = APIRouter(include_in_schema=False)

#: The only files under /ui/static/ (nothing else on disk is reachable).
STATIC_FILES = {"app.css": "text/css", "app.js": "text/javascript", "icon.svg": "image/svg+xml"}


def home_of(is_operator: bool) -> str:
    return "/ui/operator" if is_operator else "/ui/household"


@router.get("/")
def index(request: Request) -> Response:
    who = signed_in(request)
    if who is not None:
        return RedirectResponse(at(request, home_of(who[0].is_operator)), 303)
    return page(request, "signin.html", {})


@router.post("/ui/signin")
def signin(request: Request, token: Annotated[str, Form()] = "") -> Response:
    token = token.strip()
    if not sent_from_here(request):
        errors = {"token": "err_cross_site"}
        return page(
            request, "signin.html", {"errors": errors, "here": at(request, "/")}, status=403
        )
    if not token:
        errors = {"token": "err_token_empty"}
        return page(
            request, "signin.html", {"errors": errors, "here": at(request, "/")}, status=422
        )
    who = principal_for(request, token)
    if who is None:
        errors = {"token": "err_token_wrong"}
        return page(
            request, "signin.html", {"errors": errors, "here": at(request, "/")}, status=401
        )
    # The market's own cookie: in a city, each market's sign-in stays under its prefix.
    home = at(request, home_of(who.is_operator))
    return signed_in_to(request, home, TOKEN_COOKIE, token, at(request, "/"))


@router.post("/ui/signout")
def signout(request: Request) -> Response:
    response = RedirectResponse(at(request, "/"), 303)
    if sent_from_here(request):  # another site's form changes nothing
        response.delete_cookie(TOKEN_COOKIE, path=at(request, "/"))
    return response


@router.get("/ui/lang/{lang}")
def switch_language(
    request: Request,
    lang: str,
    to: Annotated[str, Query(max_length=200, pattern=r"^/[A-Za-z0-9/_-]*$")] = "",
) -> Response:
    """Set the language and go back to ``to`` (a local path only: never an open redirect)."""
    if lang not in i18n.LANGS:
        raise not_found("unknown_language", f"language {lang!r} is not offered; use en or fr")
    home = at(request, "/")
    response = RedirectResponse(to if to and not to.startswith("//") else home, 303)
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
    return response


@router.get("/ui/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC_FILES:
        raise not_found("not_found", f"no static file {name!r}")
    return FileResponse(
        STATIC / name,
        media_type=STATIC_FILES[name],
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/ui/live")
def live(request: Request, services: Svc) -> Response:
    """A short value that changes whenever the signed-in page may show something new."""
    who = signed_in(request)
    if who is None:
        return JSONResponse({"code": "unauthorized", "message": "sign in again"}, 401)
    stamp = audit.live_stamp(services.engine, services.client.address, who[0].is_operator)
    return JSONResponse({"stamp": stamp}, headers={"Cache-Control": "no-store"})
