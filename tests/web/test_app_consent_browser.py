"""In headless Chromium: a household allows an app (an API key with household:read) to read
its data from its page, and withdraws it; the key's reads follow at once, the history is
kept, and a form sent again acts no more."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import OP, Server, axe_violations, sign_in

pytestmark = pytest.mark.browser


def _key(server: Server, name: str, scopes: list[str]) -> dict[str, Any]:
    r = server.http.post("/v1/api-keys", json={"name": name, "scopes": scopes}, headers=OP)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def test_a_household_allows_an_app_then_withdraws_it_from_its_page(
    server: Server, page: Any
) -> None:
    member = server.register(prosumer=False, name="Consenting", topup_ueur=3_000_000)
    app = _key(server, "Compteur Malin", ["public:read", "household:read"])
    public_only = _key(server, "Carte des tarifs", ["public:read"])
    balance = f"/v1/households/{member.id}/balance"
    as_app = {"X-API-Key": app["key"]}
    assert server.http.get(balance, headers=as_app).status_code == 403

    posts: list[Any] = []
    page.on(
        "request",
        lambda r: posts.append(r) if r.method == "POST" and r.url.endswith("/consent") else None,
    )
    sign_in(page, server.url, member.token)
    section = page.locator("#apps")
    expect(section.get_by_role("heading", name="Apps")).to_be_visible()
    row = section.locator(f"#app-{app['id']}")
    expect(row).to_contain_text("Compteur Malin")
    expect(row).to_contain_text("Not allowed")
    # An app that reads only public data asks for no consent: it is not listed.
    expect(section.locator(f"#app-{public_only['id']}")).to_have_count(0)
    assert axe_violations(page) == []

    section.get_by_role("button", name="Allow Compteur Malin").click()
    expect(page.locator("#notice")).to_have_text(
        "Compteur Malin may now read your balance, bill, trades and prices."
    )
    expect(row).to_have_attribute("data-granted", "yes")
    expect(row).to_contain_text("Allowed since")
    r = server.http.get(balance, headers=as_app)
    assert r.status_code == 200 and r.json()["balance_ueur"] == 3_000_000

    # The same form sent again (a browser resubmitting it) grants nothing more.
    (sent,) = posts
    again = page.request.post(
        server.url + "/ui/household/consent",
        data=sent.post_data,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        max_redirects=0,
    )
    assert again.status == 303 and again.headers["location"] == "/ui/household"
    page.goto(server.url + "/ui/household")
    expect(page.locator("#notice")).to_contain_text("This form was already sent, and done then")
    consents = f"/v1/households/{member.id}/consents"
    assert len(server.http.get(consents, headers=member.auth).json()["items"]) == 1

    section.get_by_role("button", name="Withdraw Compteur Malin").click()
    expect(page.locator("#notice")).to_have_text("Compteur Malin can no longer read your data.")
    expect(row).to_have_attribute("data-granted", "no")
    expect(row).to_contain_text("Not allowed")
    # At once: the app's next read is refused.
    r = server.http.get(balance, headers=as_app)
    assert r.status_code == 403 and r.json()["code"] == "consent_required"
    (history,) = server.http.get(consents, headers=member.auth).json()["items"]
    assert history["key_id"] == app["id"] and history["withdrawn_at"] is not None

    # In French too.
    page.goto(server.url + "/ui/lang/fr")
    page.goto(server.url + "/ui/household")
    expect(section.get_by_role("heading", name="Applications")).to_be_visible()
    expect(row).to_contain_text("Non autorisée")
    section.get_by_role("button", name="Autoriser Compteur Malin").click()
    expect(page.locator("#notice")).to_have_text(
        "Compteur Malin peut désormais lire votre solde, votre facture, vos échanges et vos prix."
    )
    assert server.http.get(balance, headers=as_app).status_code == 200


def test_a_revoked_app_leaves_the_page_and_a_stale_form_changes_nothing(
    server: Server, page: Any
) -> None:
    member = server.register(prosumer=False, name="Stale form")
    app = _key(server, "Ancienne appli", ["household:read"])
    sign_in(page, server.url, member.token)
    row = page.locator(f"#app-{app['id']}")
    expect(row).to_contain_text("Ancienne appli")
    # The operator revokes the key while the page is open; the household then clicks.
    assert server.http.delete(f"/v1/api-keys/{app['id']}", headers=OP).status_code == 200
    row.get_by_role("button", name="Allow Ancienne appli").click()
    expect(page.locator("#consent-error")).to_have_text("Choose one of the listed values.")
    expect(page.locator(f"#app-{app['id']}")).to_have_count(0)
    consents = f"/v1/households/{member.id}/consents"
    assert server.http.get(consents, headers=member.auth).json()["items"] == []
