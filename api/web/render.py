"""Rendering a dashboard page: the Jinja2 environment and what every page's template gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.web import flash, i18n, once
from api.web.forms import FieldError
from api.web.paths import root
from api.web.session import LANG_COOKIE, form_token
from ledger import localtime

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")


def lang_of(request: Request) -> str:
    return i18n.pick_lang(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def zone_of(request: Request) -> str:
    """The neighbourhood's time zone (``VOISIN_TIMEZONE``), in which pages show times."""
    services = getattr(request.app.state, "services", None)
    # A market's page, or the city's page (whose app holds the city's zone itself).
    zone: str = services.settings.timezone if services is not None else request.app.state.timezone
    return zone


def message(lang: str, error: FieldError) -> str:
    """The text of a field error in ``lang``."""
    return i18n.text(lang)[error.key].format(**error.values)


def page(
    request: Request, name: str, context: dict[str, Any], token: str = "", status: int = 200
) -> HTMLResponse:
    lang = lang_of(request)
    tz = zone_of(request)
    base = {
        "lang": lang,
        "t": i18n.text(lang),
        "form_token": form_token(token) if token else "",
        # A fresh one-time token per form shown (api/web/once.py).
        "once": (lambda form: once.issue(token, form, root(request)))
        if token
        else (lambda form: ""),
        "money": lambda ueur: i18n.euros(ueur, lang),
        "price": lambda p: i18n.cents_per_kWh(p, lang),
        "num": lambda n: i18n.integer(n, lang),
        "slot_time": lambda slot: i18n.slot_time(slot, tz),
        "slot_label": lambda slot: i18n.slot_label(slot, tz),
        "slot_iso": lambda slot: localtime.slot_iso(slot, tz),
        "tz": tz,
        "here": request.url.path,
        # The market's prefix, before every dashboard path (api/web/paths.py).
        "root": root(request),
        "errors": {},
        "values": {},
        "notice": None,
    }
    merged = {**base, **context}
    waiting = flash.taken(request, token) if token else None
    if waiting is not None and merged["notice"] is None:
        merged["notice"] = waiting.text(lang)
    response = templates.TemplateResponse(request, name, merged, status_code=status)
    if token:
        flash.cleared(request, response)  # shown once, on this page
    # Pages hold personal figures: never cached, never framed by another site.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    )
    return response
