"""Two prices set at once from the dashboard (two tabs, two quick changes): the one posted last
is the household's price, and only it stays live."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from api.models import ApiOrder
from api.routes import dashboard_household
from tests.api.conftest import Api, embedded_api
from tests.web.test_form_once import _form

__all__ = ["embedded_api"]


def _live(api: Api, household: int) -> list[tuple[int, int]]:
    with Session(api.services.engine) as session:
        rows = session.exec(
            select(ApiOrder).where(
                ApiOrder.household == household,
                ApiOrder.side == "offer",
                ApiOrder.source == "household",
            )
        ).all()
    return [
        (o.id or 0, o.price_limit_ueur_per_kWh)
        for o in rows
        if o.status in ("queued", "open") and not o.cancel_requested
    ]


def test_a_price_set_while_another_is_being_set_leaves_only_the_last_posted_live(
    embedded_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = embedded_api
    member = api.register(prosumer=True)
    first = _form(api, member.token, "/ui/household", "/ui/household/price")
    second = _form(api, member.token, "/ui/household", "/ui/household/price")
    assert (
        api.client.post(
            "/ui/household/price", data={**first, "price": "7"}, follow_redirects=False
        ).status_code
        == 303
    )
    api.flush()
    [(older, _)] = _live(api, member.id)
    third = _form(api, member.token, "/ui/household", "/ui/household/price")

    # The second tab's change runs whole while the first tab's is between reading the
    # household's orders and posting its own.
    real_post = dashboard_household.orders.post_offer
    answers: list[Any] = []

    def post_after_the_other_tab(*args: Any, **kwargs: Any) -> Any:
        if not answers:
            answers.append(
                api.client.post(
                    "/ui/household/price",
                    data={**third, "price": "9"},
                    follow_redirects=False,
                )
            )
        return real_post(*args, **kwargs)

    monkeypatch.setattr(dashboard_household.orders, "post_offer", post_after_the_other_tab)
    last = api.client.post(
        "/ui/household/price", data={**second, "price": "8"}, follow_redirects=False
    )
    assert answers[0].status_code == 303, answers[0].text
    assert last.status_code == 303, last.text
    live = _live(api, member.id)
    assert [price for _, price in live] == [80_000]  # the last posted, and only it
    assert older not in {i for i, _ in live}
    api.flush()
    assert [price for _, price in _live(api, member.id)] == [80_000]
