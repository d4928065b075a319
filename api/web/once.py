"""One-time form tokens: a dashboard form that moves money, posts an order or registers
something is carried out once, however often it is sent.

Every such form carries a token issued with the page (:func:`issue`),
``<form>.<issued_s>.<random>.<mac>``: the form it is for, when it was issued, 16 random bytes,
and an HMAC of those and of the market the page is of (its path prefix in a city) under the
signed-in bearer token. Nobody without that token can make one (it also guards against forgery
from another site), one form's token does not work in another, nor in another market of the
city (whose operator token is the same in each, and each market keeps its own used tokens), and
it expires :data:`TTL_S` after it was issued. Issuing stores nothing: the pages refresh
themselves while something changes, and a read should not write.

Using a token is what is stored, durably and atomically: the first post inserts its row
(:class:`api.models.DashboardForm`, keyed by the token's SHA-256) and commits it **before**
the action starts (:func:`claim`). A second post of the same token (a reload that posts again,
a double click, the form sent once more) finds the row, in that order or because its own insert
fails on the key, and acts no more: it shows what came of the first (:func:`record` keeps it),
or that the first is still under way or was interrupted. So of any number of posts of one
token, exactly one acts, on SQLite and PostgreSQL alike, across restarts.

What a post did is an :class:`Outcome`: a message key of :mod:`api.web.i18n` and the raw
values it needs (integers stay integers until written in the reader's language). A new
household's bearer token is never in a stored outcome: it is shown once, from the flash
(:mod:`api.web.flash`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from api.models import DashboardForm
from api.web import i18n

#: How long a page's forms can be sent (seconds): a form left open overnight is refused as
#: expired (the page shows it again, with a fresh token), never carried out late.
TTL_S = 12 * 3600
#: Used tokens are kept this long (seconds), beyond which they expired anyway.
KEEP_S = 2 * TTL_S
#: The forms that take a token.
FORMS = frozenset({"topup", "register", "meter", "offer", "bid", "take", "settle", "consent"})

SENT, DONE, REFUSED = "sent", "done", "refused"


def _mac(bearer: str, market: str, form: str, issued_s: int, nonce: str) -> str:
    message = f"voisin-dashboard-once|{market}|{form}|{issued_s}|{nonce}".encode()
    return hmac.new(bearer.encode(), message, hashlib.sha256).hexdigest()


def issue(bearer: str, form: str, market: str, *, now: float | None = None) -> str:
    """A new one-time token for ``form`` of ``market`` (the page's path prefix, empty for a
    market served alone), shown to the holder of the bearer token."""
    assert form in FORMS, form
    issued_s = int(time.time() if now is None else now)
    nonce = secrets.token_urlsafe(16)
    return f"{form}.{issued_s}.{nonce}.{_mac(bearer, market, form, issued_s, nonce)}"


def valid(bearer: str, form: str, token: str, market: str, *, now: float | None = None) -> bool:
    """Whether ``token`` was issued for ``form`` of ``market`` to the holder of ``bearer``,
    and is not expired (used or not: :func:`used` says)."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != form or not parts[1].isdigit():
        return False
    issued_s = int(parts[1])
    age = (time.time() if now is None else now) - issued_s
    if not -60 <= age <= TTL_S:  # a minute of clock skew between workers
        return False
    return hmac.compare_digest(_mac(bearer, market, form, issued_s, parts[2]), parts[3])


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a form did: the key of its message and the raw values the message shows."""

    key: str
    values: dict[str, int | str] = field(default_factory=dict)

    def text(self, lang: str) -> str:
        """The message in ``lang``."""
        t = i18n.text(lang)
        shown = _SHOWN.get(self.key, _as_is)(self.values, lang)
        return t[self.key].format(**shown)

    def as_json(self) -> str:
        return json.dumps({"key": self.key, "values": self.values}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        data = json.loads(text)
        return cls(str(data["key"]), dict(data["values"]))


def _as_is(values: dict[str, int | str], _: str) -> dict[str, str]:
    return {k: str(v) for k, v in values.items()}


def _money(values: dict[str, int | str], lang: str) -> dict[str, str]:
    return {"a": i18n.euros(int(values["amount_ueur"]), lang), "id": str(values["household"])}


def _took(values: dict[str, int | str], lang: str) -> dict[str, str]:
    return {
        "e": i18n.integer(int(values["energy_Wh"]), lang),
        "p": i18n.cents_per_kWh(int(values["price_ueur_per_kWh"]), lang),
        "c": i18n.euros(int(values["paid_ueur"]), lang),
    }


def _price(values: dict[str, int | str], lang: str) -> dict[str, str]:
    return {"p": i18n.cents_per_kWh(int(values["price_ueur_per_kWh"]), lang)}


def _settled(values: dict[str, int | str], lang: str) -> dict[str, str]:
    return {
        "slot": str(values["slot"]),
        "e": i18n.integer(int(values["matched_Wh"]), lang),
        "n": str(values["fills"]),
    }


def _first(values: dict[str, int | str], lang: str) -> dict[str, str]:
    """A message about a form sent again quotes what happened the first time."""
    return {"first": Outcome.from_json(str(values["first"])).text(lang)}


#: How each message writes its raw values in the reader's language (else as they are).
_SHOWN: dict[str, Callable[[dict[str, int | str], str], dict[str, str]]] = {
    "topped_up": _money,
    "took": _took,
    "saved_sell": _price,
    "saved_buy": _price,
    "op_settled": _settled,
    "already_done": _first,
    "already_refused": _first,
}


@dataclass(frozen=True, slots=True)
class Used:
    """A token already used: ``sent`` (its action under way, or interrupted), ``done`` or
    ``refused``, with what came of it."""

    state: str
    outcome: Outcome | None

    def again(self) -> Outcome:
        """The message for the same form sent again."""
        if self.outcome is None or self.state == SENT:
            return Outcome("already_sent")
        key = "already_done" if self.state == DONE else "already_refused"
        return Outcome(key, {"first": self.outcome.as_json()})


def _used(row: DashboardForm | None) -> Used | None:
    if row is None:
        return None
    return Used(row.state, Outcome.from_json(row.outcome) if row.outcome else None)


def used(engine: Engine, token: str) -> Used | None:
    """How ``token`` was used, or None if it never was."""
    with Session(engine) as session:
        return _used(session.get(DashboardForm, _hash(token)))


def claim(engine: Engine, scope: str, form: str, token: str) -> Used | None:
    """Use ``token`` up, durably, before its form's action: None if this call did (the
    action may go ahead), else how it was used before (the action must not)."""
    now = int(time.time())
    try:
        with Session(engine) as session, session.begin():
            session.add(DashboardForm(token_hash=_hash(token), scope=scope, form=form, used_s=now))
    except IntegrityError:
        found = used(engine, token)
        assert found is not None, "a token's row is never deleted while it can be sent"
        return found
    with Session(engine) as session, session.begin():
        # Tokens used long ago expired long ago: keep the table to the last day's forms.
        session.execute(delete(DashboardForm).where(col(DashboardForm.used_s) < now - KEEP_S))
    return None


def record(engine: Engine, token: str, outcome: Outcome, *, refused: bool = False) -> None:
    """Keep what came of ``token``'s action (after :func:`claim` let it go ahead)."""
    with Session(engine) as session, session.begin():
        row = session.get(DashboardForm, _hash(token))
        assert row is not None
        row.state = REFUSED if refused else DONE
        row.outcome = outcome.as_json()
        session.add(row)
