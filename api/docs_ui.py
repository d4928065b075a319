"""The API's documentation pages, whole from this server: ``/docs`` (Swagger UI) and ``/redoc``.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank on a machine
without internet access. These pages load the same tools from the ``fastapi-offline`` package
(a pinned dependency in pyproject.toml, which ships Swagger UI's and ReDoc's released bundles),
served under ``/docs/static/``: nothing a page asks for leaves this server.

Each page carries its own Content-Security-Policy, which keeps it so: scripts from this origin
only, plus the one inline script that starts Swagger UI (allowed by its SHA-256, not by
``'unsafe-inline'``); styles from this origin and inline (both tools inject their styles at
run time); ``data:`` images (their icons); requests (the OpenAPI document, "Try it out") to this
origin only; ReDoc's search worker from a ``blob:`` URL; no framing.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from api.errors import not_found

#: Where fastapi-offline keeps Swagger UI's and ReDoc's bundles (package data, installed with it).
ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
#: The URL prefix the bundles are served under.
STATIC_URL = "/docs/static"
#: The files served, with their media types; anything else under STATIC_URL is a 404.
STATIC_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

router = APIRouter(include_in_schema=False)


def check_assets() -> None:
    """Fail at start, naming the fix, if the installed fastapi-offline lacks a bundle."""
    missing = [name for name in STATIC_FILES if not (ASSETS / name).is_file()]
    if missing:
        raise RuntimeError(
            f"the API docs' assets {', '.join(missing)} are missing from {ASSETS}: "
            "reinstall Voisin's dependencies (scripts/install)"
        )


def content_security_policy(html: str) -> str:
    """The policy for one docs page: its inline scripts are allowed by their hashes."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return (
        "default-src 'none'; "
        f"script-src 'self'{hashes}; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; "
        "font-src 'self' data:; "
        "connect-src 'self'; "
        "worker-src 'self' blob:; "
        "base-uri 'none'; "
        "form-action 'self'; "
        "frame-ancestors 'none'"
    )


def _page(html: str) -> HTMLResponse:
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": content_security_policy(html),
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
        },
    )


def _urls(request: Request) -> tuple[FastAPI, str, str]:
    """The app, its OpenAPI document's URL and the assets' prefix, under the app's root path
    (a reverse proxy's prefix)."""
    app: FastAPI = request.app
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return app, f"{root}{app.openapi_url}", f"{root}{STATIC_URL}"


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    app, openapi_url, static = _urls(request)
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{app.title} API - Swagger UI",
        swagger_js_url=f"{static}/swagger-ui-bundle.js",
        swagger_css_url=f"{static}/swagger-ui.css",
        swagger_favicon_url=f"{static}/favicon.png",
        oauth2_redirect_url=None,
        swagger_ui_parameters=app.swagger_ui_parameters,
    )
    return _page(bytes(page.body).decode())


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    app, openapi_url, static = _urls(request)
    page = get_redoc_html(
        openapi_url=openapi_url,
        title=f"{app.title} API - ReDoc",
        redoc_js_url=f"{static}/redoc.standalone.js",
        redoc_favicon_url=f"{static}/favicon.png",
        with_google_fonts=False,
    )
    return _page(bytes(page.body).decode())


@router.get(STATIC_URL + "/{name}")
async def asset(name: str) -> FileResponse:
    if name not in STATIC_FILES:
        raise not_found("not_found", f"no docs asset {name!r}")
    return FileResponse(
        ASSETS / name,
        media_type=STATIC_FILES[name],
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


def install(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` from this server (the app is built with FastAPI's own
    ``docs_url`` and ``redoc_url`` off)."""
    check_assets()
    app.include_router(router)
