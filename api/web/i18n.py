"""The dashboard's two languages: texts by key, and numbers written the way each reads them.

French is the default for French browsers (the neighbourhoods this comes from are French),
English otherwise; the choice is kept in a cookie. Amounts stay integers until they are
written: micro-euro become euros (exact, at least two decimals), prices c€/kWh, energy Wh or kWh.
"""

from __future__ import annotations

from api.web.texts import city, common, household, operator, refusals
from ledger import localtime

LANGS = ("en", "fr")

_SOURCES = (common.TEXTS, household.TEXTS, operator.TEXTS, refusals.TEXTS, city.TEXTS)
_TEXT: dict[str, tuple[str, str]] = {}
for _source in _SOURCES:
    for _key, _pair in _source.items():
        if _key in _TEXT:
            raise RuntimeError(f"dashboard text {_key!r} is defined twice")
        _TEXT[_key] = _pair


def french_spaces(text: str) -> str:
    """French typography: a no-break space before ``:`` and a narrow no-break space before
    ``; ! ?``, so that a line never starts with the mark."""
    return (
        text.replace(" :", "\u00a0:")
        .replace(" ;", "\u202f;")
        .replace(" !", "\u202f!")
        .replace(" ?", "\u202f?")
    )


_FRENCH = {key: french_spaces(pair[1]) for key, pair in _TEXT.items()}
_ENGLISH = {key: pair[0] for key, pair in _TEXT.items()}


def text(lang: str) -> dict[str, str]:
    """Every text in ``lang`` (``en`` or ``fr``), by key."""
    return dict(_FRENCH if lang == "fr" else _ENGLISH)


def pick_lang(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's choice, else French when the browser prefers it, else English."""
    if cookie in LANGS:
        return cookie
    first = (accept_language or "").split(",")[0].strip().lower()
    return "fr" if first.startswith("fr") else "en"


def _group(digits: str, sep: str) -> str:
    out: list[str] = []
    while len(digits) > 3:
        out.insert(0, digits[-3:])
        digits = digits[:-3]
    out.insert(0, digits)
    return sep.join(out)


def integer(value: int, lang: str) -> str:
    """An integer with thousands separators (a narrow no-break space in French)."""
    sign = "-" if value < 0 else ""
    return sign + _group(str(abs(value)), "\u202f" if lang == "fr" else ",")


def euros(ueur: int, lang: str) -> str:
    """Micro-euro as euros, exact: two decimals, and more where the amount has a fraction of a
    cent (``€0.003``, ``€1.234567``), so that rows always add up to their totals as shown."""
    sign = "-" if ueur < 0 else ""
    whole, frac = divmod(abs(ueur), 1_000_000)
    digits = f"{frac:06d}".rstrip("0").ljust(2, "0")
    if lang == "fr":
        return f"{sign}{integer(whole, lang)},{digits}\u00a0€"
    return f"{sign}€{integer(whole, lang)}.{digits}"


def cents_per_kWh(price_ueur_per_kWh: int, lang: str) -> str:
    """A price in micro-euro per kWh as c€/kWh, with only the decimals it needs (up to 4)."""
    whole, frac = divmod(price_ueur_per_kWh, 10_000)
    digits = f"{frac:04d}".rstrip("0")
    if not digits:
        return str(whole)
    return f"{whole}{',' if lang == 'fr' else '.'}{digits}"


def slot_time(slot: int, tz: str) -> str:
    """The slot's local start as HH:MM."""
    return localtime.slot_time(slot, tz)


def slot_label(slot: int, tz: str) -> str:
    """The slot's local date and span, e.g. ``2026-11-26 14:15-14:30 CET``."""
    return localtime.slot_span_label(slot, tz)
