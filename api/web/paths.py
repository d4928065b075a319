"""Where the dashboard is mounted: its paths under the market's prefix.

A market served alone answers at the server's root; in a city (:mod:`api.city_app`) each
market's app is mounted at ``/markets/<name>``, which Starlette passes to it as the ASGI
``root_path``. Every link, form, redirect and cookie of the dashboard goes through
:func:`at`, so that a market's pages and sign-in stay under its own prefix.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection


def root(request: HTTPConnection) -> str:
    """The market's prefix (``""`` at the server's root, else ``/markets/<name>``)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def at(request: HTTPConnection, path: str) -> str:
    """``path`` (absolute within the market, e.g. ``/ui/operator``) under the market's prefix."""
    return root(request) + path
