"""What the operator types in the dashboard's forms, read as the page's language writes numbers
and checkboxes: a top-up of "1,000" on an English page is a thousand euros, never one."""

from __future__ import annotations

import pytest
from eth_account import Account
from sqlmodel import Session, select

from api.models import ApiHousehold
from api.web.render import LANG_COOKIE
from tests.api.conftest import OPERATOR_TOKEN, Api, embedded_api
from tests.web.test_form_once import _balance, _form, _post

__all__ = ["embedded_api"]


def _top_up(api: Api, household: int, amount: str, lang: str) -> int:
    """The operator's top-up form sent with ``amount`` from a page in ``lang``: its status."""
    form = _form(api, OPERATOR_TOKEN, "/ui/operator", "/ui/operator/topup")
    api.client.cookies.set(LANG_COOKIE, lang)
    data = {**form, "household": str(household), "amount": amount}
    return int(_post(api, "/ui/operator/topup", data).status_code)


@pytest.mark.parametrize(
    ("amount", "lang", "added"),
    [
        ("1,000", "en", 1_000_000_000),
        ("1\u00a0000,50", "fr", 1_000_500_000),
        ("1,5", "en", 0),  # a comma groups thousands in English: refused, not guessed
        ("1.000,50", "fr", 0),
        ("1.000000000000000000000000000009", "en", 0),
    ],
)
def test_a_top_up_is_read_as_the_page_writes_numbers(
    embedded_api: Api, amount: str, lang: str, added: int
) -> None:
    api = embedded_api
    member = api.register(prosumer=False)
    before = _balance(api, member.id)
    status = _top_up(api, member.id, amount, lang)
    assert status == (303 if added else 422)
    assert _balance(api, member.id) - before == added


def test_a_prosumer_box_sent_with_another_value_is_refused(embedded_api: Api) -> None:
    api = embedded_api
    for value, status in (("off", 422), ("0", 422), ("on", 303)):
        form = _form(api, OPERATOR_TOKEN, "/ui/operator", "/ui/operator/register")
        name = f"Box {value}"
        data = {**form, "meter": Account.create().address, "name": name, "prosumer": value}
        assert _post(api, "/ui/operator/register", data).status_code == status, value
        api.flush()
        with Session(api.services.engine) as session:
            row = session.exec(select(ApiHousehold).where(ApiHousehold.name == name)).first()
        assert (row is not None and row.prosumer) if status == 303 else row is None
