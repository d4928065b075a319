"""Every dashboard form that moves money, posts an order or registers something is carried out
once, whatever is sent again: a reload, a double click, a form posted a second time.

Each such form carries a one-time token issued with the page (:mod:`api.web.once`). The first
post uses it up, atomically and durably, and answers 303 See Other to the page, which shows
the outcome once (a flash message); the same form posted again changes nothing and says what
happened the first time. Through Starlette's test client, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlmodel import Session, SQLModel, create_engine, select

from api.models import ApiHousehold, ApiOrder, DashboardForm
from api.web import once
from api.web.session import TOKEN_COOKIE
from tests.api.conftest import OP, OPERATOR_TOKEN, Api, Member, api, past_slot

__all__ = ["api"]  # the API's fixture, on both backends


class _Forms(HTMLParser):
    """Each form of a page by its action: its hidden fields (the tokens among them)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), {}))
        elif tag == "input" and a.get("type") == "hidden" and self.forms:
            self.forms[-1][1][a["name"]] = a.get("value", "")


def _form(api: Api, token: str, page: str, action: str, index: int = 0) -> dict[str, str]:
    """The hidden fields of the ``index``-th form posting to ``action`` on ``page``, as the
    signed-in holder of ``token`` gets it."""
    api.client.cookies.clear()
    api.client.cookies.set(TOKEN_COOKIE, token)
    shown = api.client.get(page)
    assert shown.status_code == 200, shown.text
    parser = _Forms()
    parser.feed(shown.text)
    # A form posts to its path, with the anchor of the form on the page that answers it.
    found = [fields for where, fields in parser.forms if where.split("#")[0] == action]
    assert len(found) > index, f"no form {action} on {page}"
    return found[index]


def _post(api: Api, action: str, data: dict[str, str]) -> Any:
    return api.client.post(action, data=data, follow_redirects=False)


def _notice(api: Api, answer: Any, page: str) -> str:
    """The page a successful post sent the browser to, and the message it shows."""
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == page
    shown = api.client.get(page)
    assert shown.status_code == 200
    text = shown.text.split('id="notice">', 1)
    assert len(text) == 2, "no notice on the page"
    again = api.client.get(page)  # the message shows once
    assert 'id="notice"' not in again.text
    return text[1].split("</p>", 1)[0]


def _balance(api: Api, household: int) -> int:
    r = api.client.get(f"/households/{household}/balance", headers=OP)
    return int(r.json()["balance_ueur"])


def test_a_top_up_sent_twice_adds_the_money_once(api: Api) -> None:
    member = api.register(prosumer=False)
    before = _balance(api, member.id)
    form = _form(api, OPERATOR_TOKEN, "/ui/operator", "/ui/operator/topup")
    data = {**form, "household": str(member.id), "amount": "2"}
    first = _post(api, "/ui/operator/topup", data)
    assert _notice(api, first, "/ui/operator") == f"€2.00 added to household {member.id}."
    assert _balance(api, member.id) == before + 2_000_000
    for _ in range(2):  # a reload that posts again, a double click
        again = _post(api, "/ui/operator/topup", data)
        assert _notice(api, again, "/ui/operator") == (
            f"This form was already sent, and done then: €2.00 added to household {member.id}."
        )
    assert _balance(api, member.id) == before + 2_000_000
    # The same token with another amount is the same form sent again: nothing more.
    changed = _post(api, "/ui/operator/topup", {**data, "amount": "50"})
    assert changed.status_code == 303
    assert _balance(api, member.id) == before + 2_000_000
    # A fresh page's form is a new top-up.
    fresh = _form(api, OPERATOR_TOKEN, "/ui/operator", "/ui/operator/topup")
    assert fresh["once"] != form["once"]
    _notice(api, _post(api, "/ui/operator/topup", {**data, **fresh}), "/ui/operator")
    assert _balance(api, member.id) == before + 4_000_000


def test_a_registration_sent_twice_registers_one_household(api: Api) -> None:
    meter = Account.create().address
    form = _form(api, OPERATOR_TOKEN, "/ui/operator", "/ui/operator/register")
    data = {**form, "meter": meter, "name": "Once", "prosumer": "on"}
    first = _notice(api, _post(api, "/ui/operator/register", data), "/ui/operator")
    assert first.startswith("Household ") and "Its token, shown only now: vsn_" in first
    household = int(first.split()[1])
    token = first.rsplit(" ", 1)[1]
    again = _notice(api, _post(api, "/ui/operator/register", data), "/ui/operator")
    assert again == (
        f"This form was already sent, and done then: Household {household} was registered by "
        "this form; its token was shown only once, then."
    )
    with Session(api.services.engine) as session:
        rows = session.exec(select(ApiHousehold).where(ApiHousehold.name == "Once")).all()
        # The token is never stored, not even in the form's record.
        stored = " ".join(r.outcome or "" for r in session.exec(select(DashboardForm)))
    assert [r.id for r in rows] == [household]
    assert token not in stored
    assert api.client.get(f"/households/{household}/balance", headers={
        "Authorization": f"Bearer {token}"
    }).status_code == 200  # fmt: skip


def test_a_meter_replacement_sent_twice_replaces_the_meter_once(api: Api) -> None:
    member = api.register(prosumer=False)
    new_meter = Account.create().address
    form = _form(api, OPERATOR_TOKEN, "/ui/operator", "/ui/operator/meter")
    data = {**form, "household": str(member.id), "meter": new_meter, "import_Wh": "40"}
    first = _notice(api, _post(api, "/ui/operator/meter", data), "/ui/operator")
    assert (
        first
        == f"Household {member.id} now reads from meter {new_meter}; its readings follow slot 0."
    )
    again = _notice(api, _post(api, "/ui/operator/meter", data), "/ui/operator")
    assert again == f"This form was already sent, and done then: {first}"
    with Session(api.services.engine) as session:
        row = session.get(ApiHousehold, member.id)
    assert row is not None and (row.meter, row.meter_import_Wh) == (new_meter, 40)


@pytest.mark.parametrize("side", ["offer", "bid"])
def test_a_price_sent_twice_posts_one_order(api: Api, side: str) -> None:
    member = api.register(prosumer=True)
    forms = _form(api, member.token, "/ui/household", "/ui/household/price", index=0)
    if side == "bid":
        forms = _form(api, member.token, "/ui/household", "/ui/household/price", index=1)
    assert forms["side"] == side
    data = {**forms, "price": "9.5"}
    word = "Selling" if side == "offer" else "Buying"
    first = _notice(api, _post(api, "/ui/household/price", data), "/ui/household")
    assert first == f"{word} price saved: 9.5 c€/kWh."
    again = _notice(api, _post(api, "/ui/household/price", data), "/ui/household")
    assert again == f"This form was already sent, and done then: {first}"
    with Session(api.services.engine) as session:
        own = session.exec(
            select(ApiOrder).where(
                ApiOrder.household == member.id,
                ApiOrder.side == side,
                ApiOrder.source == "household",
            )
        ).all()
    assert [o.price_limit_ueur_per_kWh for o in own] == [95_000]


def _ready_to_take(api: Api) -> tuple[Member, int, int]:
    seller = api.register(prosumer=True)
    buyer = api.register(prosumer=False, topup_ueur=2_000_000)
    slot = past_slot(5)
    readings = [api.reading(seller, slot, export_Wh=500), api.reading(buyer, slot, import_Wh=300)]
    assert api.client.post("/readings", json={"readings": readings}).status_code == 202
    api.flush()
    offers = api.client.get(
        "/offers", params={"household": seller.id, "status": "open"}, headers=OP
    ).json()["items"]
    return buyer, slot, int(offers[0]["id"])


def test_a_take_sent_twice_buys_once(api: Api) -> None:
    buyer, slot, offer = _ready_to_take(api)
    form = _form(api, buyer.token, "/ui/household", "/ui/household/take")
    data = {**form, "slot": str(slot), "max_Wh": "100"}
    assert data["offer"] == str(offer)
    first = _notice(api, _post(api, "/ui/household/take", data), "/ui/household")
    assert first.startswith("Bought 100 Wh at ")
    again = _notice(api, _post(api, "/ui/household/take", data), "/ui/household")
    assert again == f"This form was already sent, and done then: {first}"
    trades = api.client.get("/trades", headers=buyer.auth).json()["items"]
    assert [(t["slot"], t["energy_Wh"]) for t in trades] == [(slot, 100)]


def test_a_refused_form_says_so_again_and_a_fresh_form_may_try_again(api: Api) -> None:
    member, other = api.register(prosumer=False), api.register(prosumer=False)
    form = _form(api, OPERATOR_TOKEN, "/ui/operator", "/ui/operator/meter")
    taken = {**form, "household": str(member.id), "meter": other.meter.address}
    first = _post(api, "/ui/operator/meter", taken)
    assert first.status_code == 422
    refusal = "This meter is already registered to a household."
    assert refusal in first.text
    again = _post(api, "/ui/operator/meter", taken)
    assert _notice(api, again, "/ui/operator") == (
        f"This form was already sent, and refused then: {refusal}"
    )
    fresh = _form(api, OPERATOR_TOKEN, "/ui/operator", "/ui/operator/meter")
    new_meter = Account.create().address
    done = _post(api, "/ui/operator/meter", {**taken, **fresh, "meter": new_meter})
    assert new_meter in _notice(api, done, "/ui/operator")


def test_a_form_without_a_valid_one_time_token_changes_nothing(api: Api) -> None:
    member = api.register(prosumer=False)
    before = (_balance(api, member.id), api.snapshot())
    form = _form(api, OPERATOR_TOKEN, "/ui/operator", "/ui/operator/topup")
    data = {**form, "household": str(member.id), "amount": "1"}
    register_form = _form(api, OPERATOR_TOKEN, "/ui/operator", "/ui/operator/register")
    forged = data["once"][:-4] + ("0000" if not data["once"].endswith("0000") else "1111")
    cases = {
        "missing": {k: v for k, v in data.items() if k != "once"},
        "forged": {**data, "once": forged},
        "another form's": {**data, "once": register_form["once"]},
        "expired": {**data, "once": once.issue(OPERATOR_TOKEN, "topup", "", now=0)},
        "another signer's": {**data, "once": once.issue("someone-else", "topup", "")},
        # A city's operator token is the same in every market: a form of one is not another's.
        "another market's": {**data, "once": once.issue(OPERATOR_TOKEN, "topup", "/markets/a")},
    }
    for name, sent in cases.items():
        refused = _post(api, "/ui/operator/topup", sent)
        assert refused.status_code == 422, name
        assert "The form expired; please send it again." in refused.text, name
    assert (_balance(api, member.id), api.snapshot()) == before


# ───────────────────────────── Using a token up, atomically ─────────────────────────────


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    url = (
        f"sqlite:///{tmp_path / 'forms.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = create_engine(url)
    SQLModel.metadata.create_all(engine, tables=[DashboardForm.__table__])  # type: ignore[attr-defined]
    yield engine
    engine.dispose()


def test_of_many_posts_of_one_token_at_once_exactly_one_acts(engine: Any) -> None:
    token = once.issue(OPERATOR_TOKEN, "topup", "")
    start = threading.Barrier(8)
    claims: list[once.Used | None] = []

    def claim() -> None:
        start.wait()
        claims.append(once.claim(engine, "operator", "topup", token))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for c in claims if c is None) == 1
    assert all(c is not None and c.state == "sent" for c in claims if c is not None)
    once.record(engine, token, once.Outcome("topped_up", {"amount_ueur": 5, "household": 1}))
    used = once.used(engine, token)
    assert used is not None and used.state == "done" and used.outcome is not None
    assert used.outcome.key == "topped_up"
