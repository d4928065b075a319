"""What the dashboard's forms send, parsed and checked: pure functions, no HTTP.

Every field arrives as text. A parser returns the integer the API works in (micro-euro, Wh,
µ€/kWh) or raises :class:`FieldError` with the key of a message from :mod:`api.web.i18n` and
its values, which the page shows next to the field. Decimal input is parsed with
:class:`decimal.Decimal` and must convert exactly: no float ever touches an amount.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from api.web.texts.refusals import REFUSALS

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)$")
_WHOLE = re.compile(r"^[+-]?\d+$")


@dataclass
class FieldError(Exception):
    """A field's value is refused: ``key`` names the message, ``values`` fill it in."""

    key: str
    values: dict[str, str] = field(default_factory=dict)


def _decimal(raw: str) -> Decimal:
    text = raw.strip().replace("\u202f", "").replace(" ", "")
    if not text:
        raise FieldError("err_required")
    if not _NUMBER.match(text):
        raise FieldError("err_number")
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation as exc:  # the pattern already excludes this
        raise FieldError("err_number") from exc


def _scaled(raw: str, scale: int, decimals: int) -> int:
    """``raw`` times ``scale`` as an exact integer, at most ``decimals`` decimals."""
    value = _decimal(raw)
    if value < 0:
        raise FieldError("err_negative")
    places = value * 10**decimals
    if places != places.to_integral_value():
        raise FieldError("err_decimals", {"n": str(decimals)})
    return int(value * scale)


def price(raw: str, floor: int, ceiling: int, show: dict[str, str]) -> int:
    """A price typed in c€/kWh as µ€/kWh, within ``floor..ceiling`` (µ€/kWh, inclusive).
    ``show`` holds the bounds as the page writes them (``lo``, ``hi``) for the message."""
    value = _scaled(raw, 10_000, 4)
    if not floor <= value <= ceiling:
        raise FieldError("err_band", show)
    return value


def whole(raw: str, maximum: int) -> int:
    """A positive whole number (e.g. Wh), at most ``maximum``."""
    text = raw.strip()
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


def register_Wh(raw: str, maximum: int) -> int:
    """A meter register in Wh: a whole number, zero or more; empty means zero."""
    text = raw.strip()
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


def euros(raw: str, maximum_ueur: int) -> int:
    """An amount of money paid in, typed in euros, as micro-euro: positive, in whole cents
    (the ledger counts micro-euro, but nobody pays a fraction of a cent)."""
    value = _scaled(raw, 1_000_000, 2)
    if value == 0:
        raise FieldError("err_zero")
    if value > maximum_ueur:
        raise FieldError("err_too_big", {"max": f"{maximum_ueur // 1_000_000} €"})
    return value


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
