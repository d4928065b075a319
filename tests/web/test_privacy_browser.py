"""In headless Chromium: the household page's data section. Its export links download the
household's data as JSON and as a zip of CSVs; its erasure goes through a confirmation step
(nothing happens until the box is ticked), then signs the household out for good, with its
balance refunded through the operator and the audit still passing."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import OP, Server, axe_violations, past_slot, sign_in

pytestmark = pytest.mark.browser


def test_the_page_downloads_the_households_data_as_json_and_as_csv(
    server: Server, page: Any
) -> None:
    seller = server.register(prosumer=True, name="Exportée")
    buyer = server.register(prosumer=False, name="Voisine", topup_ueur=2_000_000)
    server.simulate([past_slot(40)], {seller.id: (0, 500), buyer.id: (400, 0)})
    sign_in(page, server.url, seller.token)
    section = page.locator("#privacy")
    expect(section.get_by_role("heading", name="Your data")).to_be_visible()

    with page.expect_download() as got:
        section.get_by_role("link", name="Download my data (JSON)").click()
    download = got.value
    assert download.suggested_filename == f"voisin-household-{seller.id}.json"
    body = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    assert body["household"] == seller.id
    assert body["data"]["household"][0]["name"] == "Exportée"
    assert len(body["data"]["signed_readings"]) == 1 and body["data"]["trades"]
    assert "Voisine" not in json.dumps(body)

    with page.expect_download() as got:
        section.get_by_role("link", name="Download my data (CSV, zip)").click()
    download = got.value
    assert download.suggested_filename == f"voisin-household-{seller.id}.zip"
    with zipfile.ZipFile(download.path()) as archive:
        names = archive.namelist()
        trades = archive.read(f"voisin-{seller.id}/trades.csv").decode()
    assert f"voisin-{seller.id}/signed_readings.csv" in names
    assert trades.splitlines()[0].startswith("slot,slot_start_utc,slot_start_local,direction")
    assert len(trades.splitlines()) == 1 + len(body["data"]["trades"])


def test_erasure_asks_for_confirmation_then_signs_the_household_out_for_good(
    server: Server, page: Any
) -> None:
    seller = server.register(prosumer=True, name="Partante")
    buyer = server.register(prosumer=False, name="Reste", topup_ueur=2_000_000)
    server.simulate([past_slot(36)], {seller.id: (0, 500), buyer.id: (400, 0)})
    balance = server.http.get(f"/households/{seller.id}/balance", headers=OP).json()
    earned = balance["balance_ueur"]
    assert earned > 0
    sign_in(page, server.url, seller.token)
    page.locator("#privacy").get_by_role("link", name="Erase my data…").click()
    expect(page).to_have_url(server.url + "/ui/household/erasure#privacy")
    form = page.locator("#erasure-form")
    expect(form.get_by_role("heading", name="Erase your personal data?")).to_be_visible()
    expect(page.locator("#erasure-balance")).to_have_attribute("data-ueur", str(earned))
    assert axe_violations(page) == []

    # Without the box ticked: refused, nothing done.
    form.get_by_role("button", name="Erase my data for good").click()
    expect(page.locator("#erasure-error")).to_have_text("Tick the box to confirm the erasure.")
    expect(page.get_by_label(
        "I understand that my data will be erased and that I will be signed out."
    )).to_have_attribute("aria-invalid", "true")  # fmt: skip
    assert server.http.get(f"/households/{seller.id}/balance", headers=seller.auth).is_success

    # "Keep my data" goes back to the page.
    page.get_by_role("link", name="Keep my data").click()
    expect(page.locator("#erasure-form")).to_have_count(0)
    expect(page.locator("#erase-start")).to_be_visible()

    page.locator("#erase-start").click()
    page.get_by_label(
        "I understand that my data will be erased and that I will be signed out."
    ).check()
    page.get_by_role("button", name="Erase my data for good").click()
    expect(page.locator("#notice")).to_contain_text(
        f"Household {seller.id}'s personal data were erased on"
    )
    expect(page.get_by_label("Access token")).to_be_visible()

    # Signed out for good: the page and the token are refused, the money went to the operator.
    page.goto(server.url + "/ui/household")
    expect(page).to_have_url(server.url + "/")
    assert (
        server.http.get(f"/households/{seller.id}/balance", headers=seller.auth).status_code == 401
    )
    erasure = server.http.post(
        f"/households/{seller.id}/erasure",
        json={"confirm": f"erase household {seller.id}"},
        headers=OP,
    ).json()
    assert erasure["refund_ueur"] == earned and erasure["requested_by"] == "household"
    sign_in(page, server.url, seller.token)
    expect(page.locator("#token-error")).to_be_visible()
    report = server.http.get("/audit/report", headers=OP, timeout=120).json()
    assert report["ok"] is True, report["findings"]


def test_the_data_section_speaks_french(server: Server, page: Any) -> None:
    member = server.register(prosumer=False, name="Francophone")
    page.context.add_cookies([{"name": "voisin_lang", "value": "fr", "url": server.url}])
    sign_in_fr(page, server.url, member.token)
    section = page.locator("#privacy")
    expect(section.get_by_role("heading", name="Vos données")).to_be_visible()
    expect(section.get_by_role("link", name="Télécharger mes données (JSON)")).to_be_visible()
    section.get_by_role("link", name="Effacer mes données…").click()
    expect(page.get_by_role("button", name="Effacer mes données pour de bon")).to_be_visible()


def sign_in_fr(page: Any, url: str, token: str) -> None:
    page.goto(url + "/")
    page.locator("#token").fill(token)
    page.locator("form[action='/ui/signin'] button[type=submit]").click()
