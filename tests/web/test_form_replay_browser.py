"""In headless Chromium: a top-up from the operator's page moves the money once, however the
page is reloaded and the form sent again (post/redirect/get and the form's one-time token)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import OP, OPERATOR_TOKEN, Server, sign_in

pytestmark = pytest.mark.browser


def _balance(server: Server, household: int) -> int:
    r = server.http.get(f"/households/{household}/balance", headers=OP)
    return int(r.json()["balance_ueur"])


def test_reloading_after_a_top_up_and_sending_the_form_again_adds_the_money_once(
    server: Server, page: Any
) -> None:
    member = server.register(prosumer=False, name="Reloaded", topup_ueur=15_500_000)
    sign_in(page, server.url, OPERATOR_TOKEN)
    posts: list[Any] = []
    page.on(
        "request",
        lambda r: posts.append(r) if r.method == "POST" and r.url.endswith("/topup") else None,
    )
    page.locator("#topup").get_by_label("Household", exact=True).select_option(str(member.id))
    page.get_by_label("Amount (€)").fill("2")
    page.get_by_role("button", name="Top up").click()
    expect(page.locator("#notice")).to_have_text(f"€2.00 added to household {member.id}.")
    assert _balance(server, member.id) == 17_500_000

    # A reload shows the page again (a GET): no notice, and no second top-up.
    page.reload()
    expect(page.locator("#topup-title")).to_be_visible()
    assert _balance(server, member.id) == 17_500_000
    expect(page.locator("#notice")).to_have_count(0)
    expect(page).to_have_url(server.url + "/ui/operator")

    # The very same form sent again (as a browser resubmitting it would): nothing more moves,
    # and the page says what happened the first time.
    (sent,) = posts
    again = page.request.post(
        server.url + "/ui/operator/topup",
        data=sent.post_data,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        max_redirects=0,
    )
    assert again.status == 303 and again.headers["location"] == "/ui/operator"
    page.goto(server.url + "/ui/operator")
    expect(page.locator("#notice")).to_have_text(
        f"This form was already sent, and done then: €2.00 added to household {member.id}."
    )
    assert _balance(server, member.id) == 17_500_000
    expect(
        page.locator("#households-table tbody tr", has_text="Reloaded").locator("td[data-ueur]")
    ).to_have_attribute("data-ueur", "17500000")
