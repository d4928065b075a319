"""What the dashboard's forms send, parsed and checked: pure functions, no HTTP.

Every field arrives as text. A parser returns the integer the API works in (micro-euro, Wh,
µ€/kWh) or raises :class:`FieldError` with the key of a message from :mod:`api.web.i18n` and
its values, which the page shows next to the field. A number is read as the page's language
writes it, digit by digit into an integer: no float ever touches an amount, and a digit too
many is refused, never rounded away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from api.web import i18n
from api.web.texts.refusals import REFUSALS

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
#: A number once its grouping is removed: digits, a point, digits (no exponent, no hex).
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_WHOLE = re.compile(r"^[+-]?\d+$")
#: An English number grouped by commas: 1,000 or 12,500.75.
_EN_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")
#: What people type between groups of digits: spaces (a French page writes U+202F itself).
_SPACES = dict.fromkeys(map(ord, " \u00a0\u202f\u2009"), None)


@dataclass
class FieldError(Exception):
    """A field's value is refused: ``key`` names the message, ``values`` fill it in."""

    key: str
    values: dict[str, str] = field(default_factory=dict)


def _plain(raw: str, lang: str) -> str:
    """``raw`` without its digit grouping and with ``.`` as its decimal point, as a reader of
    ``lang`` writes numbers: in English a comma groups thousands (``1,000.50``), in French it
    marks the decimals (``1 000,50``; a point does too). A number both ways (``1.000,50``) is
    refused rather than guessed."""
    text = raw.strip().translate(_SPACES)
    if "," not in text:
        return text
    if lang == "en":
        if not _EN_GROUPED.match(text):
            raise FieldError("err_comma")
        return text.replace(",", "")
    return text.replace(",", ".")


def _scaled(raw: str, scale: int, decimals: int, lang: str) -> int:
    """``raw`` times ``scale`` as an exact integer, at most ``decimals`` decimals (digit by
    digit: no rounding, however many digits)."""
    text = _plain(raw, lang)
    if not text:
        raise FieldError("err_required")
    if not _NUMBER.match(text):
        raise FieldError("err_number")
    whole_part, _, fraction = text.lstrip("+-").partition(".")
    fraction = fraction.rstrip("0")
    if len(fraction) > decimals:
        raise FieldError("err_decimals", {"n": str(decimals)})
    step = int(10**decimals)
    units = int(whole_part or "0") * step + int(fraction.ljust(decimals, "0") or "0")
    if text.startswith("-") and units:
        raise FieldError("err_negative")
    assert scale % step == 0
    return units * (scale // step)


def price(raw: str, floor: int, ceiling: int, show: dict[str, str], lang: str) -> int:
    """A price typed in c€/kWh as µ€/kWh, within ``floor..ceiling`` (µ€/kWh, inclusive).
    ``show`` holds the bounds as the page writes them (``lo``, ``hi``) for the message;
    ``lang`` the page's language (how it writes decimals)."""
    value = _scaled(raw, 10_000, 4, lang)
    if not floor <= value <= ceiling:
        raise FieldError("err_band", show)
    return value


def _whole_text(raw: str, lang: str) -> str:
    try:
        return _plain(raw, lang)
    except FieldError:
        raise FieldError("err_whole") from None


def whole(raw: str, maximum: int, lang: str) -> int:
    """A positive whole number (e.g. Wh), at most ``maximum``; grouped as ``lang`` groups."""
    text = _whole_text(raw, lang)
    if not text:
        raise FieldError("err_required")
    if not _WHOLE.match(text):
        raise FieldError("err_whole")
    value = int(text)
    if value < 0:
        raise FieldError("err_negative")
    if value == 0:
        raise FieldError("err_zero")
    if value > maximum:
        raise FieldError("err_too_big", {"max": str(maximum)})
    return value


def register_Wh(raw: str, maximum: int, lang: str) -> int:
    """A meter register in Wh: a whole number, zero or more; empty means zero."""
    text = _whole_text(raw, lang)
    if not text:
        return 0
    if not _WHOLE.match(text):
        raise FieldError("err_whole")
    value = int(text)
    if value < 0:
        raise FieldError("err_negative")
    if value > maximum:
        raise FieldError("err_too_big", {"max": str(maximum)})
    return value


def euros(raw: str, maximum_ueur: int, lang: str) -> int:
    """An amount of money paid in, typed in euros, as micro-euro: positive, in whole cents
    (the ledger counts micro-euro, but nobody pays a fraction of a cent)."""
    value = _scaled(raw, 1_000_000, 2, lang)
    if value == 0:
        raise FieldError("err_zero")
    if value > maximum_ueur:
        raise FieldError("err_too_big", {"max": i18n.euros(maximum_ueur, lang)})
    return value


def checkbox(raw: str) -> bool:
    """A checkbox: ticked (a browser sends ``on``, or the box's own value) or not (nothing)."""
    if raw not in ("", "on", "true", "1"):
        raise FieldError("err_choice")
    return bool(raw)


def address(raw: str) -> str:
    text = raw.strip()
    if not text:
        raise FieldError("err_required")
    if not _ADDRESS.match(text):
        raise FieldError("err_address")
    return text


def month(raw: str) -> tuple[int, int]:
    """``YYYY-MM`` as (year, month)."""
    found = _MONTH.match(raw.strip())
    if not found:
        raise FieldError("err_month")
    year, number = int(found[1]), int(found[2])
    if not (1970 <= year <= 2999 and 1 <= number <= 12):
        raise FieldError("err_month")
    return year, number


def choice(raw: str, allowed: set[int]) -> int:
    """One of ``allowed`` (e.g. a slot offered in a select)."""
    text = raw.strip()
    if not text:
        raise FieldError("err_required")
    if not _WHOLE.match(text) or int(text) not in allowed:
        raise FieldError("err_choice")
    return int(text)


def refused(code: str) -> FieldError:
    """The ledger's or the API's refusal ``code`` as a form error, in the reader's language
    (``api/web/texts/refusals.py``); a code without a text is named, never shown in English."""
    if code in REFUSALS and code != "other":
        return FieldError(f"refusal_{code}")
    return FieldError("refusal_other", {"code": code})
