"""Exceptions of the forecasts, rooted at :class:`ForecastError` (a :class:`LedgerError`).

Every message says what was wrong and what is allowed. :class:`ForecastError` is also a
``ValueError`` (bad values: empty or short history, NaN, a horizon out of range), and
:class:`ForecastTypeError` also a ``TypeError`` (a value of the wrong type), so that callers
that only know the builtins still catch them.
"""

from __future__ import annotations

from ledger.errors import LedgerError


class ForecastError(LedgerError, ValueError):
    """A forecast was asked for with input it cannot use (history, horizon, issue slot)."""


class ForecastTypeError(ForecastError, TypeError):
    """A forecast input has the wrong type (not an array of numbers, not an integer)."""
