"""The household's dashboard in headless Chromium: signing in, setting a price, watching a
simulated neighbourhood trade without reloading, the forms' messages and the CSV downloads."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import OP, Server, axe_violations, past_slot, sign_in

pytestmark = pytest.mark.browser

LIVE = 60_000  # ms a live update may take to show (the page polls every 3 s)


def test_prosumer_sets_a_sell_price_then_sees_its_trades_and_balance_change_live(
    server: Server, page: Any
) -> None:
    seller = server.register(prosumer=True, name="Amélie")
    buyer = server.register(prosumer=False, name="Chloé", topup_ueur=5_000_000)
    sign_in(page, server.url, seller.token)
    expect(page).to_have_url(server.url + "/ui/household")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Household {seller.id}")
    expect(page.locator("#balance")).to_have_attribute("data-ueur", "0")
    expect(page.locator("#no-trades")).to_be_visible()
    expect(page.locator("#bounds")).to_have_text("Allowed: from 4 to 22 c€/kWh")

    page.get_by_label("Lowest price I sell at (c€/kWh)").fill("7.5")
    page.get_by_role("button", name="Set my selling price").click()
    expect(page.locator("#notice")).to_have_text("Selling price saved: 7.5 c€/kWh.")
    expect(page.locator("#offer-price-hint")).to_contain_text("Current: 7.5 c€/kWh.")
    offers = server.http.get("/offers", params={"household": seller.id}, headers=OP).json()
    live = [
        o
        for o in offers["items"]
        if o["status"] in ("queued", "open") and not o["cancel_requested"]
    ]
    assert [(o["price_limit_ueur_per_kWh"], o["source"]) for o in live] == [(75_000, "household")]

    # Two slots of the neighbourhood's life, while the page stays open (a mark left in the
    # page's window survives only if the page is never reloaded).
    page.evaluate("window.voisinTestMark = 42")
    first = past_slot(30)
    outcomes = server.simulate([first, first + 1], {seller.id: (0, 600), buyer.id: (400, 0)})
    assert [o["matched_Wh"] for o in outcomes] == [400, 400]
    trades = server.http.get("/trades", headers=seller.auth).json()["items"]
    assert len(trades) == 2 and all(t["price_ueur_per_kWh"] >= 75_000 for t in trades)
    earned = sum(t["cost_ueur"] for t in trades)
    balance = server.http.get(f"/households/{seller.id}/balance", headers=seller.auth).json()
    assert balance["balance_ueur"] == earned > 0

    expect(page.locator("#balance")).to_have_attribute("data-ueur", str(earned), timeout=LIVE)
    rows = page.locator("#trades-table tr.trade")
    expect(rows).to_have_count(2)
    for slot in (first, first + 1):
        row = page.locator(f'#trades-table tr.trade[data-slot="{slot}"]')
        expect(row).to_have_attribute("data-energy-wh", "400")
        expect(row).to_contain_text(f"sold (Buyer {buyer.id})")
    expect(page.locator("#live-status")).to_contain_text("Live: refreshed at")
    assert page.evaluate("window.voisinTestMark") == 42


def test_a_wrong_token_shows_a_clear_error_next_to_the_field(server: Server, page: Any) -> None:
    sign_in(page, server.url, "vsn_this-is-not-a-token")
    error = page.locator("#token-error")
    expect(error).to_have_text(
        "This token is not valid. Check that it was copied whole; a household's token starts "
        "with vsn_. Ask your grid operator if it was lost."
    )
    expect(page.get_by_label("Access token")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Access token")).to_have_attribute("aria-describedby", "token-error")
    # Still signed out: the household page sends back to the sign-in form.
    page.goto(server.url + "/ui/household")
    expect(page).to_have_url(server.url + "/")
    sign_in(page, server.url, "")
    expect(page.locator("#token-error")).to_have_text("Enter your access token.")


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("cheap", "Enter a number, e.g. 12.5 (digits only)."),
        ("30", "The price must be between 4 and 22 c€/kWh (the tariff bounds)."),
        ("3.9999", "The price must be between 4 and 22 c€/kWh (the tariff bounds)."),
        ("3,9999", "Here a comma separates thousands (1,000.50): write decimals with a point."),
        ("-5", "This cannot be negative."),
        ("12.00001", "Use at most 4 decimals."),
    ],
)
def test_a_bad_price_is_refused_with_a_message_next_to_the_field(
    server: Server, page: Any, typed: str, message: str
) -> None:
    member = server.register(prosumer=True, name="Bad price")
    sign_in(page, server.url, member.token)
    field = page.get_by_label("Highest price I buy at, before the grid fee (c€/kWh)")
    field.fill(typed)
    page.get_by_role("button", name="Set my buying price").click()
    expect(page.locator("#bid-price-error")).to_have_text(message)
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_value(typed)
    # Nothing reached the ledger: only the agent's default bid is live.
    bids = server.http.get("/bids", params={"household": member.id}, headers=OP).json()["items"]
    live = [b for b in bids if b["status"] in ("queued", "open") and not b["cancel_requested"]]
    assert [b["source"] for b in live] == ["agent"]


def test_taking_an_offer_checks_the_quantity_then_buys(server: Server, page: Any) -> None:
    seller = server.register(prosumer=True, name="Seller")
    buyer = server.register(prosumer=False, name="Taker", topup_ueur=2_000_000)
    slot = past_slot(26)
    # Only readings, no settlement: the slot's surplus is left for the take.
    for m, flow in ((seller, (0, 500)), (buyer, (300, 0))):
        r = server.http.post("/readings", json={"readings": [server.reading(m, slot, *flow)]})
        assert r.status_code == 202, r.text
    offer = _open_offer_of(server, seller.id)
    _wait_committed(server, buyer.id, slot)
    sign_in(page, server.url, buyer.token)
    form = page.locator(f"#take-{offer}")
    quantity = form.get_by_label("At most (Wh)")
    for typed, message in (
        ("-10", "This cannot be negative."),
        ("ten", "Enter a whole number, e.g. 500."),
        ("2.5", "Enter a whole number, e.g. 500."),
        ("0", "This must be more than zero."),
    ):
        page.locator(f"#take-{offer}").get_by_label("At most (Wh)").fill(typed)
        page.locator(f"#take-{offer}").get_by_role("button", name="Take this offer").click()
        expect(page.locator(f"#take-qty-{offer}-error")).to_have_text(message)
    quantity = page.locator(f"#take-{offer}").get_by_label("At most (Wh)")
    page.locator(f"#take-{offer}").get_by_label("Slot to buy for").select_option(str(slot))
    quantity.fill("200")
    page.locator(f"#take-{offer}").get_by_role("button", name="Take this offer").click()
    expect(page.locator("#notice")).to_contain_text("Bought 200 Wh at")
    trades = server.http.get("/trades", headers=buyer.auth).json()["items"]
    assert [(t["slot"], t["energy_Wh"], t["bid_chain_id"]) for t in trades] == [(slot, 200, 0)]


def _open_offer_of(server: Server, household: int) -> int:
    """The household's default offer once the outbox has put it on chain."""
    server.services.outbox.run_once()
    offers = server.http.get(
        "/offers", params={"household": household, "status": "open"}, headers=OP
    ).json()["items"]
    assert len(offers) == 1, offers
    return int(offers[0]["id"])


def _wait_committed(server: Server, household: int, slot: int) -> None:
    server.services.outbox.run_once()
    balance = server.http.get(f"/households/{household}/balance", headers=OP).json()
    assert balance["as_of_block"] > 0
    from sqlmodel import Session, select

    from ledger.mirror.models import ReadingRecord

    with Session(server.services.engine) as s:
        found = s.exec(
            select(ReadingRecord).where(
                ReadingRecord.household == household, ReadingRecord.slot == slot
            )
        ).first()
    assert found is not None and found.import_delta_Wh > 0


def test_trades_and_the_monthly_bill_download_as_csv(server: Server, page: Any) -> None:
    seller = server.register(prosumer=True, name="CSV seller")
    buyer = server.register(prosumer=False, name="CSV buyer", topup_ueur=3_000_000)
    first = past_slot(22)
    server.simulate([first], {seller.id: (0, 700), buyer.id: (500, 0)})
    sign_in(page, server.url, buyer.token)
    with page.expect_download() as got:
        page.get_by_role("link", name="Download all my trades (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(_read(got.value))))
    api = server.http.get("/trades", headers=buyer.auth).json()["items"]
    assert [
        (int(r["slot"]), r["role"], int(r["counterparty"]), int(r["energy_Wh"])) for r in rows
    ] == [(t["slot"], "bought", seller.id, t["energy_Wh"]) for t in api]
    assert sum(int(r["cost_ueur"]) for r in rows) == sum(t["cost_ueur"] for t in api)

    month = datetime.fromtimestamp(first * 900, UTC).strftime("%Y-%m")
    page.get_by_label("Month", exact=True).fill(month)
    with page.expect_download() as got:
        page.get_by_role("button", name="Download the bill (CSV)").click()
    bill = list(csv.DictReader(io.StringIO(_read(got.value))))
    statement = server.http.get(
        f"/households/{buyer.id}/statement",
        params={"from": first, "to": first},
        headers=buyer.auth,
    ).json()
    total = bill[-1]
    assert total["slot"] == "total"
    assert [int(r["slot"]) for r in bill[:-1]] == [first]
    assert int(total["bought_Wh"]) == statement["bought_Wh"] == 500
    assert int(total["paid_local_ueur"]) == statement["paid_local_ueur"]
    assert int(total["savings_ueur"]) == statement["savings_ueur"]


def test_a_malformed_month_is_refused_next_to_the_field(server: Server, page: Any) -> None:
    member = server.register(prosumer=False, name="Month")
    sign_in(page, server.url, member.token)
    page.goto(server.url + "/ui/household/bill.csv?month=2026-13")
    expect(page.locator("#month-error")).to_have_text("Choose a month (YYYY-MM).")


def test_the_page_switches_to_french_and_back(server: Server, page: Any) -> None:
    member = server.register(prosumer=True, name="Langue")
    sign_in(page, server.url, member.token)
    page.get_by_role("link", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Foyer {member.id}")
    expect(page.locator("#bounds")).to_have_text("Autorisé : de 4 à 22 c€/kWh")
    page.get_by_label("Prix minimum de vente (c€/kWh)").fill("99")
    page.get_by_role("button", name="Fixer mon prix de vente").click()
    expect(page.locator("#offer-price-error")).to_have_text(
        "Le prix doit être entre 4 et 22 c€/kWh (les bornes du tarif)."
    )
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_household_pages_pass_axe_with_no_serious_violation(server: Server, page: Any) -> None:
    page.goto(server.url + "/")
    assert axe_violations(page) == []
    seller = server.register(prosumer=True, name="Axe")
    buyer = server.register(prosumer=False, name="Axe buyer", topup_ueur=1_000_000)
    server.simulate([past_slot(18)], {seller.id: (0, 300), buyer.id: (200, 0)})
    sign_in(page, server.url, buyer.token)
    expect(page.locator("#trades-table")).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_label("Highest price I buy at, before the grid fee (c€/kWh)").fill("abc")
    page.get_by_role("button", name="Set my buying price").click()
    expect(page.locator("#bid-price-error")).to_be_visible()
    assert axe_violations(page) == []


def _read(download: Any) -> str:
    path = download.path()
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_on_a_phone_the_household_page_fits_and_passes_axe(server: Server, browser: Any) -> None:
    seller = server.register(prosumer=True, name="Phone seller")
    buyer = server.register(prosumer=False, name="Phone buyer", topup_ueur=1_000_000)
    server.simulate([past_slot(16)], {seller.id: (0, 300), buyer.id: (250, 0)})
    context = browser.new_context(
        locale="en-GB", bypass_csp=True, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    try:
        page = context.new_page()
        sign_in(page, server.url, buyer.token)
        expect(page.locator("#trades-table")).to_be_attached()
        # Nothing wider than the screen but the tables' own scrolling boxes.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert axe_violations(page) == []
    finally:
        context.close()
