"""The household's page in headless Chromium, checked the way a household would check it:
what is settled and what is still pending, money that adds up to the cent and below, local
time across the clock changes, refusals in the reader's language where the reader is, the slots
a direct take can be for, the figures a buyer and a seller decide with, and the page on a
390 x 844 phone.

One server for the module (auto-settle off, so a slot is settled only when a test says so).
Every slot a test uses is fixed against one base slot taken when the module starts, so that no
two tests share a slot however long the module runs, and every slot is closed."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import expect

from api.services import slot_now
from api.web import i18n
from api.web.texts import common, household
from api.web.texts.refusals import REFUSALS
from ledger import localtime
from ledger.types import SLOT_SECONDS
from tests.web.conftest import OP, Member, Server, axe_violations, sign_in

pytestmark = pytest.mark.browser

TZ = "Europe/Paris"  # the server's default zone
LIVE = 60_000  # ms a live update may take to show (the page polls every 3 s)
PHONE = {"width": 390, "height": 844}
EN = i18n.text("en")
FR = i18n.text("fr")
PURPLE, GREY, GREEN = "#6a3d9a", "#5a6570", "#1b7a3a"  # pending, from the grid, bought


@pytest.fixture(scope="module")
def base() -> int:
    """The slot the module's slots are counted back from (the current slot at its start)."""
    return slot_now()


# ───────────────────────────── Helpers ─────────────────────────────


def post_readings(server: Server, flows: list[tuple[Member, int, int, int]]) -> None:
    """Signed readings (member, slot, import Wh, export Wh), sent without settling."""
    batch = [server.reading(m, slot, imp, exp) for m, slot, imp, exp in flows]
    r = server.http.post("/readings", json={"readings": batch})
    assert r.status_code == 202 and r.json()["accepted"] == len(batch), r.text


def wait_metered(server: Server, member: Member, slot: int) -> None:
    """Until the ledger has the member's reading for ``slot`` (sent and mirrored)."""
    deadline = time.monotonic() + 60
    while True:
        server.services.outbox.run_once()
        lines = statement(server, member, slot, slot)["lines"]
        if any(line["slot"] == slot for line in lines):
            return
        assert time.monotonic() < deadline, f"reading of {member.id} for {slot} not mirrored"
        time.sleep(0.2)


def settle(server: Server, slot: int) -> dict[str, Any]:
    r = server.http.post(f"/market/slots/{slot}/settle", headers=OP, timeout=120)
    assert r.status_code == 200, r.text
    outcome: dict[str, Any] = r.json()
    return outcome


def statement(server: Server, member: Member, first: int, last: int) -> dict[str, Any]:
    r = server.http.get(
        f"/households/{member.id}/statement",
        params={"from": first, "to": last},
        headers=member.auth,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def month_statement(server: Server, member: Member) -> dict[str, Any]:
    """The API's statement for the local month so far (what the page's tiles cover)."""
    now = slot_now()
    at = localtime.slot_start(now, TZ)
    first, _ = localtime.month_span(at.year, at.month, TZ)
    return statement(server, member, first, now)


def trades(server: Server, member: Member) -> list[dict[str, Any]]:
    r = server.http.get("/trades", headers=member.auth, params={"limit": 100})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def open_offer_of(server: Server, member: Member) -> dict[str, Any]:
    """The member's standing offer once it is open on chain."""
    deadline = time.monotonic() + 60
    while True:
        server.services.outbox.run_once()
        offers = server.http.get(
            "/offers", params={"household": member.id, "status": "open"}, headers=OP
        ).json()["items"]
        live = [o for o in offers if not o["cancel_requested"]]
        if live:
            assert len(live) == 1, live
            offer: dict[str, Any] = live[0]
            return offer
        assert time.monotonic() < deadline, f"no open offer of {member.id}"
        time.sleep(0.2)


def open_orders(server: Server, side: str) -> list[dict[str, Any]]:
    """Every open order on ``side`` (``offers`` or ``bids``) not being cancelled."""
    found: list[dict[str, Any]] = []
    while True:
        chunk = server.http.get(
            f"/{side}", params={"status": "open", "limit": 100, "offset": len(found)}, headers=OP
        ).json()["items"]
        found += chunk
        if len(chunk) < 100:
            return [o for o in found if not o["cancel_requested"]]


def today_first() -> int:
    now = slot_now()
    return localtime.day_span(localtime.local_date(now, TZ), TZ)[0]


def month_first() -> int:
    at = localtime.slot_start(slot_now(), TZ)
    return localtime.month_span(at.year, at.month, TZ)[0]


def month_of(slot: int) -> str:
    return f"{localtime.slot_start(slot, TZ):%Y-%m}"


def ueur_of(text: str) -> int:
    """An amount as the English page writes it (``-€1,234.567``) in micro-euro, exactly."""
    shown = text.strip().replace("\u00a0", "")
    sign = -1 if shown.startswith("-") else 1
    digits = shown.lstrip("+-").removeprefix("€").replace(",", "")
    whole, _, frac = digits.partition(".")
    assert len(frac) >= 2 and len(frac) <= 6, text
    return sign * (int(whole) * 1_000_000 + int(frac.ljust(6, "0")))


def csv_rows(download: Any) -> list[dict[str, str]]:
    with open(download.path(), encoding="utf-8") as f:
        return list(csv.DictReader(io.StringIO(f.read())))


def csv_header(download: Any) -> list[str]:
    with open(download.path(), encoding="utf-8") as f:
        return next(csv.reader(f))


def download_bill(page: Any, month: str, lang: str = "en") -> Any:
    t = EN if lang == "en" else FR
    page.get_by_label(t["month"], exact=True).fill(month)
    with page.expect_download() as got:
        page.get_by_role("button", name=t["download_bill"]).click()
    return got.value


def download_trades(page: Any, lang: str = "en") -> Any:
    t = EN if lang == "en" else FR
    with page.expect_download() as got:
        page.get_by_role("link", name=t["download_trades"]).click()
    return got.value


def sign_in_at(page: Any, server: Server, member: Member, lang: str = "en") -> None:
    sign_in(page, server.url, member.token)
    expect(page).to_have_url(server.url + "/ui/household")
    if lang == "fr":
        page.goto(server.url + "/ui/lang/fr?to=/ui/household")
        expect(page.locator("html")).to_have_attribute("lang", "fr")


def open_tables(page: Any) -> None:
    """Open the figures' tables (in ``<details>``) as a reader who wants them would."""
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")


# ───────────────────────────── Settled and pending ─────────────────────────────


def test_a_slot_not_settled_is_marked_pending_then_settled(
    server: Server, page: Any, base: int
) -> None:
    seller = server.register(prosumer=True, name="Pending seller")
    buyer = server.register(prosumer=False, name="Pending buyer", topup_ueur=2_000_000)
    earlier, slot = base - 3, base - 1
    # An earlier slot from the grid alone, settled: 200 Wh at retail (25 c€/kWh) = €0.05.
    post_readings(server, [(buyer, earlier, 200, 0)])
    settle(server, earlier)
    # Then a slot metered on both sides but not settled: nobody's grid energy yet.
    post_readings(server, [(seller, slot, 0, 500), (buyer, slot, 300, 0)])
    wait_metered(server, buyer, slot)
    wait_metered(server, seller, slot)
    api = statement(server, buyer, earlier, slot)
    assert [(x["slot"], x["status"]) for x in api["lines"]] == [
        (earlier, "settled"),
        (slot, "pending"),
    ]
    pending_line = api["lines"][1]
    assert pending_line["pending_import_Wh"] == 300 and pending_line["grid_import_Wh"] == 0
    assert api["pending_slots"] == 1 and api["grid_import_cost_ueur"] == 50_000

    sign_in_at(page, server, buyer)
    hint = EN["pending_hint"].format(n=1, imp="300", exp="0")
    in_month = earlier >= month_first()
    in_today = earlier >= today_first()
    if slot >= month_first():
        expect(page.locator("#month-pending")).to_have_text(hint)
        expect(page.locator("#month-pending")).to_have_class("pending-note")
        # The grid tile counts the settled slot only: €0.05, not the pending 300 Wh too.
        grid_bill = 50_000 if in_month else 0
        expect(page.locator("#grid-bill")).to_have_attribute("data-ueur", str(grid_bill))
        expect(page.locator("#grid-bill")).to_have_text(i18n.euros(grid_bill, "en"))
        expect(page.locator("#grid-bill").locator("xpath=..")).to_contain_text(EN["settled_only"])
        expect(page.locator("#spent")).to_have_attribute("data-ueur", "0")
    if slot >= today_first():
        expect(page.locator("#today-pending")).to_have_text(hint)
        open_tables(page)
        row = page.locator("#today-table tbody tr").filter(has_text=localtime.slot_time(slot, TZ))
        expect(row).to_have_attribute("data-status", "pending")
        cells = row.locator("td")
        # Status, bought, from the grid, sold, to the grid, not settled yet.
        expect(cells).to_have_text([EN["status_pending"], "0", "—", "0", "—", "300 / 0"])
        # On the chart the pending import is its own colour, and only the settled slot has
        # a grey "from the grid" bar.
        chart = page.locator("#today svg.chart")
        expect(chart.locator(f'rect[fill="{PURPLE}"]')).to_have_count(1)
        expect(chart.locator(f'rect[fill="{GREY}"]')).to_have_count(1 if in_today else 0)
        expect(chart.locator(f'rect[fill="{GREEN}"]')).to_have_count(0)
        if in_today:
            settled_row = page.locator("#today-table tbody tr").filter(
                has_text=localtime.slot_time(earlier, TZ)
            )
            expect(settled_row).to_have_attribute("data-status", "settled")
            expect(settled_row.locator("td")).to_have_text(
                [EN["status_settled"], "0", "200", "0", "0", "—"]
            )
    expect(page.locator("#no-trades")).to_be_visible()

    # The bill says the same: the line is pending, with the grid's cells empty.
    bill = csv_rows(download_bill(page, month_of(slot)))
    lines = {r["slot"]: r for r in bill}
    pending = lines[str(slot)]
    assert pending["status"] == "pending"
    assert pending["start_local"] == localtime.slot_iso(slot, TZ)
    for column in (
        "grid_import_Wh",
        "grid_export_Wh",
        "grid_import_cost_ueur",
        "grid_export_revenue_ueur",
        "grid_only_cost_ueur",
    ):
        assert pending[column] == "", column
    assert (pending["import_Wh"], pending["pending_import_Wh"], pending["bought_Wh"]) == (
        "300",
        "300",
        "0",
    )
    assert lines["total"]["status"] == "pending"
    if month_of(earlier) == month_of(slot):
        done = lines[str(earlier)]
        assert (done["status"], done["grid_import_Wh"], done["grid_import_cost_ueur"]) == (
            "settled",
            "200",
            "50000",
        )
        assert lines["total"]["grid_import_cost_ueur"] == "50000"

    # The operator settles the slot: the same page, without a reload, shows it settled and the
    # energy bought from the neighbour.
    outcome = settle(server, slot)
    assert outcome["matched_Wh"] == 300
    bought = trades(server, buyer)
    assert [(t["slot"], t["seller"], t["energy_Wh"]) for t in bought] == [(slot, seller.id, 300)]
    row = page.locator(f'#trades-table tr.trade[data-slot="{slot}"]')
    expect(row).to_contain_text(f"{EN['bought']} ({EN['seller']} {seller.id})", timeout=LIVE)
    expect(row).to_have_attribute("data-energy-wh", "300")
    if slot >= month_first():
        expect(page.locator("#month-pending")).to_have_text(EN["all_settled"])
        expect(page.locator("#grid-bill")).to_have_attribute(
            "data-ueur", str(50_000 if in_month else 0)
        )
        paid = bought[0]["cost_ueur"] + bought[0]["fee_ueur"]
        expect(page.locator("#spent")).to_have_attribute("data-ueur", str(paid))
    if slot >= today_first():
        expect(page.locator("#today-pending")).to_have_count(0)
        open_tables(page)
        row = page.locator("#today-table tbody tr").filter(has_text=localtime.slot_time(slot, TZ))
        expect(row).to_have_attribute("data-status", "settled")
        expect(row.locator("td")).to_have_text([EN["status_settled"], "300", "0", "0", "0", "—"])
        chart = page.locator("#today svg.chart")
        expect(chart.locator(f'rect[fill="{PURPLE}"]')).to_have_count(0)
        expect(chart.locator(f'rect[fill="{GREEN}"]')).to_have_count(1)
    bill = csv_rows(download_bill(page, month_of(slot)))
    settled = {r["slot"]: r for r in bill}[str(slot)]
    assert (settled["status"], settled["bought_Wh"], settled["grid_import_Wh"]) == (
        "settled",
        "300",
        "0",
    )
    assert settled["pending_import_Wh"] == "0"


# ───────────────────────────── Money that adds up ─────────────────────────────


@dataclass
class Traded:
    """A small neighbourhood that traded odd amounts: the prosumer sold 333 Wh and 100 Wh to
    the buyer, and bought 77 Wh from another prosumer."""

    seller: Member
    other: Member
    buyer: Member
    slots: tuple[int, int, int]


@pytest.fixture(scope="module")
def traded(server: Server, base: int) -> Iterator[Traded]:
    seller = server.register(prosumer=True, name="Odd seller")
    other = server.register(prosumer=True, name="Other seller")
    buyer = server.register(prosumer=False, name="Odd buyer", topup_ueur=3_000_000)
    t1, t2, t3 = base - 20, base - 19, base - 18
    server.simulate([t1], {seller.id: (0, 500), buyer.id: (333, 0)})
    server.simulate([t2], {seller.id: (0, 100), buyer.id: (100, 0)})
    server.simulate([t3], {seller.id: (77, 0), other.id: (0, 250)})
    yield Traded(seller, other, buyer, (t1, t2, t3))


def _check_rows_add_up(page: Any, member: Member, expected: list[dict[str, Any]]) -> None:
    rows = page.locator("#trades-table tbody tr.trade")
    expect(rows).to_have_count(len(expected))
    attrs = rows.evaluate_all(
        """rows => rows.map(r => ({
            slot: +r.dataset.slot, energy: +r.dataset.energyWh,
            amount: +r.dataset.amountUeur, fee: +r.dataset.feeUeur,
            amountText: r.querySelector('.amount').textContent,
            feeText: r.querySelector('.fee').textContent}))"""
    )
    # Each row as the ledger recorded it, signed from the household's side.
    by_api = sorted(
        (
            t["slot"],
            t["energy_Wh"],
            t["cost_ueur"] if t["seller"] == member.id else -t["cost_ueur"],
            0 if t["seller"] == member.id else t["fee_ueur"],
        )
        for t in expected
    )
    assert sorted((a["slot"], a["energy"], a["amount"], a["fee"]) for a in attrs) == by_api
    for a in attrs:
        # What is written is what the attribute says, to the micro-euro.
        assert ueur_of(a["amountText"]) == a["amount"], a
        assert ueur_of(a["feeText"]) == a["fee"], a
    total = page.locator("#trades-total")
    amount_total = sum(a["amount"] for a in attrs)
    fee_total = sum(a["fee"] for a in attrs)
    expect(total.locator(".amount")).to_have_attribute("data-ueur", str(amount_total))
    expect(total.locator(".fee")).to_have_attribute("data-ueur", str(fee_total))
    assert ueur_of(total.locator(".amount").inner_text()) == amount_total
    assert ueur_of(total.locator(".fee").inner_text()) == fee_total
    assert sum(ueur_of(a["amountText"]) for a in attrs) == ueur_of(
        total.locator(".amount").inner_text()
    )
    sold = sum(a["energy"] for a in attrs if a["amount"] > 0)
    bought = sum(a["energy"] for a in attrs if a["amount"] < 0)
    expect(total.locator("td").nth(0)).to_have_text(
        f"{EN['sold']} {i18n.integer(sold, 'en')}\u00a0Wh · "
        f"{EN['bought']} {i18n.integer(bought, 'en')}\u00a0Wh"
    )
    expect(total.locator("td").nth(1)).to_have_text(i18n.integer(sold + bought, "en"))


def test_trade_rows_add_up_to_their_total_exactly(
    server: Server, page: Any, traded: Traded
) -> None:
    seller_trades = trades(server, traded.seller)
    assert len(seller_trades) == 3
    # Amounts below a cent are in play: the total would drift if rows were cut to cents.
    assert any(t["cost_ueur"] % 10_000 for t in seller_trades)
    sign_in_at(page, server, traded.seller)
    _check_rows_add_up(page, traded.seller, seller_trades)
    # The total is the prosumer's earnings net of its purchase.
    net = sum(t["cost_ueur"] if t["seller"] == traded.seller.id else -t["cost_ueur"]
              for t in seller_trades)  # fmt: skip
    expect(page.locator("#trades-total .amount")).to_have_text(
        ("+" if net >= 0 else "") + i18n.euros(net, "en")
    )

    page.get_by_role("button", name=EN["signout"]).click()
    sign_in_at(page, server, traded.buyer)
    _check_rows_add_up(page, traded.buyer, trades(server, traded.buyer))


def test_a_fee_under_a_cent_shows_its_decimals(server: Server, page: Any, traded: Traded) -> None:
    _, t2, _ = traded.slots
    [fill] = [t for t in trades(server, traded.buyer) if t["slot"] == t2]
    # 100 Wh at the grid fee of 3 c€/kWh is 0.3 c€.
    assert (fill["energy_Wh"], fill["fee_ueur"]) == (100, 3_000)
    sign_in_at(page, server, traded.buyer)
    row = page.locator(f'#trades-table tr.trade[data-slot="{t2}"]')
    expect(row.locator(".fee")).to_have_text("€0.003")
    expect(row.locator(".amount")).to_have_text("-" + i18n.euros(fill["cost_ueur"], "en"))
    # The same on the French page, with a decimal comma.
    page.goto(server.url + "/ui/lang/fr?to=/ui/household")
    row = page.locator(f'#trades-table tr.trade[data-slot="{t2}"]')
    expect(row.locator(".fee")).to_have_text("0,003\u00a0€")


def test_month_tiles_equal_the_statement(server: Server, page: Any, traded: Traded) -> None:
    for member in (traded.seller, traded.buyer):
        sign_in_at(page, server, member)
        m = month_statement(server, member)
        tiles = {
            "#spent": m["paid_local_ueur"] + m["fees_ueur"],
            "#grid-bill": m["grid_import_cost_ueur"] - m["grid_export_revenue_ueur"],
            "#savings": m["savings_ueur"],
        }
        if member.prosumer:
            tiles["#earned"] = m["earned_local_ueur"]
        for tile, value in tiles.items():
            expect(page.locator(tile)).to_have_attribute("data-ueur", str(value))
            # What is written is the figure itself, below the cent too.
            assert ueur_of(page.locator(tile).inner_text()) == value, tile
        if min(traded.slots) >= month_first():
            # The month holds the fixture's slots: the figures are the trades'.
            mine = trades(server, member)
            paid = sum(t["cost_ueur"] + t["fee_ueur"] for t in mine if t["buyer"] == member.id)
            earned = sum(t["cost_ueur"] for t in mine if t["seller"] == member.id)
            assert tiles["#spent"] == paid
            if member.prosumer:
                assert tiles["#earned"] == earned
        page.get_by_role("button", name=EN["signout"]).click()


# ───────────────────────────── What a buyer and a seller decide with ─────────────────────


def test_a_buyer_sees_its_all_in_price_against_retail_and_no_earned_tile(
    server: Server, page: Any, traded: Traded
) -> None:
    sign_in_at(page, server, traded.buyer)
    expect(page.locator("#spent")).to_be_visible()
    expect(page.locator("#earned")).to_have_count(0)
    expect(page.get_by_text(EN["earned"], exact=True)).to_have_count(0)
    expect(page.locator("#bid-depth")).to_have_count(0)
    expect(page.locator("#sold-vs-grid")).to_have_count(0)
    m = month_statement(server, traded.buyer)
    retail = i18n.cents_per_kWh(250_000, "en")
    if m["bought_Wh"]:
        paid = m["paid_local_ueur"] + m["fees_ueur"]
        avg = paid * 1000 // m["bought_Wh"]
        expect(page.locator("#all-in")).to_have_text(
            EN["all_in"].format(
                bought=i18n.integer(m["bought_Wh"], "en"),
                paid=i18n.euros(paid, "en"),
                avg=i18n.cents_per_kWh(avg, "en"),
                retail=retail,
                at_retail=i18n.euros(m["bought_at_retail_ueur"], "en"),
            )
        )
        # In plain figures: the clearing price plus the 3 c€ grid fee, against 25 c€ retail.
        mine = trades(server, traded.buyer)
        energy = sum(t["energy_Wh"] for t in mine)
        cost = sum(t["cost_ueur"] + t["fee_ueur"] for t in mine)
        if m["bought_Wh"] == energy == 433:
            expect(page.locator("#all-in")).to_contain_text(
                f"{i18n.cents_per_kWh(cost * 1000 // energy, 'en')} c€/kWh on average, "
                "against 25 c€/kWh retail"
            )
            assert m["bought_at_retail_ueur"] == 433 * 250
    else:
        expect(page.locator("#all-in")).to_contain_text(f"retail is {retail} c€/kWh")


def test_a_prosumer_sees_the_bids_against_its_minimum_and_local_sales_against_feed_in(
    server: Server, page: Any, traded: Traded
) -> None:
    # A neighbour who bids low, besides everyone's standing bids at 20 c€/kWh.
    low = server.register(prosumer=False, name="Low bidder")
    r = server.http.post(
        "/bids",
        json={"price_limit_ueur_per_kWh": 50_000, "first_slot": slot_now()},
        headers=low.auth,
    )
    assert r.status_code == 202, r.text
    # The seller sets its minimum to exactly the standing bids' price: they count as at it.
    sign_in_at(page, server, traded.seller)
    page.get_by_label(EN["sell_price"]).fill("20")
    page.get_by_role("button", name=EN["set_sell"]).click()
    expect(page.locator("#notice")).to_have_text(EN["saved_sell"].format(p="20"))
    deadline = time.monotonic() + 60
    while True:
        server.services.outbox.run_once()
        bids = open_orders(server, "bids")
        if any(b["household"] == low.id and b["source"] != "agent" for b in bids):
            break
        assert time.monotonic() < deadline, "the low bid is not open"
        time.sleep(0.2)
    offer = open_offer_of(server, traded.seller)
    minimum = offer["price_limit_ueur_per_kWh"]
    assert minimum == 200_000
    prices = [b["price_limit_ueur_per_kWh"] for b in bids if b["household"] != traded.seller.id]
    above = sum(1 for p in prices if p >= minimum)
    below = sum(1 for p in prices if p < minimum)
    assert above >= 2 and below >= 1 and max(prices) >= minimum
    page.reload()
    expect(page.locator("#bid-depth")).to_have_text(
        EN["bid_depth"].format(
            above=above,
            below=below,
            p="20",
            hi=i18n.cents_per_kWh(max(prices), "en"),
        )
    )
    m = month_statement(server, traded.seller)
    expected = (
        EN["sold_vs_grid"].format(
            sold=i18n.integer(m["sold_Wh"], "en"), grid=i18n.integer(m["grid_export_Wh"], "en")
        )
        + " "
        + EN["earned_vs_feed_in"].format(
            earned=i18n.euros(m["earned_local_ueur"], "en"),
            feed_in=i18n.euros(m["sold_at_feed_in_ueur"], "en"),
        )
    )
    expect(page.locator("#sold-vs-grid")).to_have_text(expected)
    if min(traded.slots) >= month_first():
        # 333 + 100 Wh sold to the buyer; 167 Wh of the first slot's 500 went to the grid.
        assert (m["sold_Wh"], m["grid_export_Wh"]) == (433, 167)
        assert m["sold_at_feed_in_ueur"] == 433 * 40  # 4 c€/kWh feed-in
        expect(page.locator("#sold-vs-grid")).to_contain_text(
            "This month: 433 Wh sold to neighbours, 167 Wh sent to the grid."
        )
        expect(page.locator("#sold-vs-grid")).to_contain_text(
            "at the feed-in tariff alone it would have earned €0.01732."
        )
    # The recent clearing prices include the fixture's slots.
    expect(page.locator("#recent-prices li").first).to_be_visible()
    # Where the minimum is set, the page says a direct take pays it.
    expect(page.locator("#offer-price-hint")).to_contain_text(EN["take_rule"])


# ───────────────────────────── Local time across the clock changes ─────────────────────


def _utc_slot(year: int, month: int, day: int, hour: int, minute: int) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) // SLOT_SECONDS


def test_trades_read_in_local_time_across_the_clock_changes(server: Server, page: Any) -> None:
    seller = server.register(prosumer=True, name="Heure d'été")
    buyer = server.register(prosumer=False, name="Heure d'hiver", topup_ueur=2_000_000)
    spring = _utc_slot(2026, 3, 29, 0, 45)  # 01:45 CET, ends at 03:00 CEST
    spring_after = _utc_slot(2026, 3, 29, 1, 0)  # 03:00 CEST, the very next slot
    summer = _utc_slot(2026, 10, 25, 0, 30)  # 02:30 CEST
    winter = _utc_slot(2026, 10, 25, 1, 30)  # 02:30 CET, an hour later
    # Past slots, read by fresh meters, in order.
    slots = [spring, spring_after, summer, winter]
    outcomes = server.simulate(slots, {seller.id: (0, 400), buyer.id: (250, 0)})
    assert [o["matched_Wh"] for o in outcomes] == [250] * 4
    labels = {
        spring: "2026-03-29 01:45-03:00 CET/CEST",
        spring_after: "2026-03-29 03:00-03:15 CEST",
        summer: "2026-10-25 02:30-02:45 CEST",
        winter: "2026-10-25 02:30-02:45 CET",
    }
    iso = {
        spring: "2026-03-29T01:45:00+01:00",
        spring_after: "2026-03-29T03:00:00+02:00",
        summer: "2026-10-25T02:30:00+02:00",
        winter: "2026-10-25T02:30:00+01:00",
    }
    sign_in_at(page, server, buyer)
    for slot, label in labels.items():
        row = page.locator(f'#trades-table tr.trade[data-slot="{slot}"]')
        expect(row.locator("th")).to_have_text(label)
    # Newest first.
    expect(page.locator("#trades-table tbody tr.trade th")).to_have_text(
        [labels[winter], labels[summer], labels[spring_after], labels[spring]]
    )

    rows = csv_rows(download_trades(page))
    assert [(int(r["slot"]), r["start_local"], r["role"]) for r in rows] == [
        (slot, iso[slot], "bought") for slot in slots
    ]
    october = csv_rows(download_bill(page, "2026-10"))
    assert [(r["slot"], r["start_local"], r["status"]) for r in october] == [
        (str(summer), iso[summer], "settled"),
        (str(winter), iso[winter], "settled"),
        ("total", "", "settled"),
    ]
    assert october[-1]["bought_Wh"] == "500"
    march = csv_rows(download_bill(page, "2026-03"))
    assert [(r["slot"], r["start_local"]) for r in march] == [
        (str(spring), iso[spring]),
        (str(spring_after), iso[spring_after]),
        ("total", ""),
    ]

    # The French page: the same times, and the files' headers in French.
    page.goto(server.url + "/ui/lang/fr?to=/ui/household")
    expect(page.locator(f'#trades-table tr.trade[data-slot="{winter}"] th')).to_have_text(
        labels[winter]
    )
    bill = download_bill(page, "2026-10", "fr")
    assert csv_header(bill) == [
        "foyer", "mois", "tranche", "debut_local", "etat", "import_Wh", "export_Wh",
        "achete_voisins_Wh", "vendu_voisins_Wh", "pris_reseau_Wh", "envoye_reseau_Wh",
        "import_en_attente_Wh", "export_en_attente_Wh", "paye_voisins_ueur",
        "frais_reseau_ueur", "gagne_voisins_ueur", "cout_reseau_ueur", "revente_reseau_ueur",
        "cout_reseau_seul_ueur", "cout_net_ueur", "economies_ueur",
    ]  # fmt: skip
    french = csv_rows(bill)
    assert [(r["foyer"], r["mois"], r["tranche"], r["debut_local"], r["etat"]) for r in french] == [
        (str(buyer.id), "2026-10", str(summer), iso[summer], "reglee"),
        (str(buyer.id), "2026-10", str(winter), iso[winter], "reglee"),
        (str(buyer.id), "2026-10", "total", "", "reglee"),
    ]
    assert french[-1]["achete_voisins_Wh"] == "500"
    traded_fr = download_trades(page, "fr")
    assert csv_header(traded_fr) == [
        "tranche", "debut_local", "role", "contrepartie", "energie_Wh", "prix_ueur_par_kWh",
        "montant_ueur", "frais_ueur", "tx_hash",
    ]  # fmt: skip
    assert [r["role"] for r in csv_rows(traded_fr)] == ["achete"] * 4


def test_a_bill_covers_the_local_month(server: Server, page: Any) -> None:
    member = server.register(prosumer=False, name="Minuit")
    # 23:45 on 30 November and 00:15 on 1 December, local time: both in November in UTC.
    november = _utc_slot(2026, 11, 30, 22, 45)
    december = _utc_slot(2026, 11, 30, 23, 15)
    server.simulate([november, december], {member.id: (100, 0)})
    sign_in_at(page, server, member)
    rows = csv_rows(download_bill(page, "2026-11"))
    assert [(r["slot"], r["start_local"]) for r in rows] == [
        (str(november), "2026-11-30T23:45:00+01:00"),
        ("total", ""),
    ]
    rows = csv_rows(download_bill(page, "2026-12"))
    assert [(r["slot"], r["start_local"]) for r in rows] == [
        (str(december), "2026-12-01T00:15:00+01:00"),
        ("total", ""),
    ]
    assert rows[-1]["import_Wh"] == "100"


def test_a_pending_line_reads_en_attente_in_the_french_bill(
    server: Server, page: Any, base: int
) -> None:
    member = server.register(prosumer=False, name="Facture")
    slot = base - 7
    post_readings(server, [(member, slot, 120, 0)])
    wait_metered(server, member, slot)
    sign_in_at(page, server, member, "fr")
    rows = csv_rows(download_bill(page, month_of(slot), "fr"))
    line = {r["tranche"]: r for r in rows}[str(slot)]
    assert (line["etat"], line["pris_reseau_Wh"], line["import_en_attente_Wh"]) == (
        "en_attente",
        "",
        "120",
    )
    assert rows[-1]["etat"] == "en_attente"


# ───────────────────────────── Refusals in the reader's language ─────────────────────


def test_a_refused_take_is_explained_in_french_at_the_form_on_a_phone(
    server: Server, browser: Any, base: int
) -> None:
    seller = server.register(prosumer=True, name="Vendeuse")
    buyer = server.register(prosumer=False, name="Sans le sou")  # no top-up: €0
    slot = base - 5
    post_readings(server, [(seller, slot, 0, 400), (buyer, slot, 300, 0)])
    offer = open_offer_of(server, seller)["id"]
    wait_metered(server, seller, slot)
    wait_metered(server, buyer, slot)
    context = browser.new_context(
        locale="en-GB", bypass_csp=True, viewport=PHONE, is_mobile=True, has_touch=True
    )
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        sign_in_at(page, server, buyer, "fr")
        form = page.locator(f"#take-{offer}")
        form.get_by_label(FR["take_slot"]).select_option(str(slot))
        form.get_by_label(FR["take_qty"]).fill("200")
        form.get_by_role("button", name=FR["take"]).click()
        error = page.locator(f"#take-qty-{offer}-error")
        french = i18n.french_spaces(REFUSALS["insufficient_funds"][1])
        expect(error).to_have_text(french)
        # Where the reader is: the page opens at the form that was sent, its error in view.
        assert page.url.endswith(f"/ui/household/take#take-{offer}"), page.url
        expect(error).to_be_in_viewport()
        box = error.bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]
        expect(form.get_by_label(FR["take_qty"])).to_have_attribute("aria-invalid", "true")
        expect(form.get_by_label(FR["take_slot"])).to_have_value(str(slot))
        expect(form.get_by_label(FR["take_qty"])).to_have_value("200")
        # No English anywhere on the page: neither the ledger's message nor a refusal text.
        body = page.locator("body").inner_text()
        for english, _ in REFUSALS.values():
            assert english.split("{")[0] not in body, english
        for word in ("InsufficientFunds", "insufficient", "The ledger refused", "balance"):
            assert word not in body, word
        # Nor any of the page's own texts in English, and French spacing before a colon.
        for key, (english, french) in {**household.TEXTS, **common.TEXTS}.items():
            shown = english.split("{")[0].strip()
            if english != french and len(shown) >= 12:
                assert shown not in body, (key, shown)
        assert " :" not in body and " ;" not in body
        assert trades(server, buyer) == []
    finally:
        context.close()


def test_a_refusal_in_english_on_the_english_page(server: Server, page: Any, base: int) -> None:
    seller = server.register(prosumer=True, name="Seller of nothing")
    buyer = server.register(prosumer=False, name="Penniless")
    slot = base - 6
    post_readings(server, [(seller, slot, 0, 200), (buyer, slot, 150, 0)])
    offer = open_offer_of(server, seller)["id"]
    wait_metered(server, seller, slot)
    wait_metered(server, buyer, slot)
    sign_in_at(page, server, buyer)
    form = page.locator(f"#take-{offer}")
    form.get_by_label(EN["take_slot"]).select_option(str(slot))
    form.get_by_label(EN["take_qty"]).fill("100")
    form.get_by_role("button", name=EN["take"]).click()
    expect(page.locator(f"#take-qty-{offer}-error")).to_have_text(REFUSALS["insufficient_funds"][0])
    assert "InsufficientFunds" not in page.locator("body").inner_text()


# ───────────────────────────── The take list ─────────────────────────────


def test_the_take_list_offers_only_slots_a_take_can_be_for(
    server: Server, page: Any, base: int
) -> None:
    both = server.register(prosumer=True, name="Exports thrice")
    once = server.register(prosumer=True, name="Exports once")
    idle = server.register(prosumer=True, name="Exports never")
    buyer = server.register(prosumer=False, name="Chooser", topup_ueur=2_000_000)
    settled, early, late = base - 11, base - 10, base - 9
    # The buyer bids at the floor, below every offer: the settlement matches nothing, and the
    # settled slot keeps import and export that a take could otherwise have been for.
    sign_in_at(page, server, buyer)
    page.get_by_label(EN["buy_price"]).fill("4")
    page.get_by_role("button", name=EN["set_buy"]).click()
    expect(page.locator("#notice")).to_have_text(EN["saved_buy"].format(p="4"))
    post_readings(server, [(both, settled, 0, 300), (buyer, settled, 200, 0)])
    assert settle(server, settled)["matched_Wh"] == 0
    post_readings(server, [(both, early, 0, 300), (buyer, early, 200, 0)])
    post_readings(server, [(both, late, 0, 300), (once, late, 0, 300), (buyer, late, 200, 0)])
    offers = {m.id: open_offer_of(server, m)["id"] for m in (both, once, idle)}
    for member, slot in ((buyer, late), (both, late), (once, late)):
        wait_metered(server, member, slot)

    page.reload()
    # The settled slot is not offered; the other two are, newest first, in local time.
    options = page.locator(f"#take-slot-{offers[both.id]} option")
    expect(options).to_have_count(2)
    assert options.evaluate_all("os => os.map(o => +o.value)") == [late, early]
    expect(options).to_have_text([localtime.slot_span_label(s, TZ) for s in (late, early)])
    # A seller who exported in one slot only is offered for that slot only.
    options = page.locator(f"#take-slot-{offers[once.id]} option")
    assert options.evaluate_all("os => os.map(o => +o.value)") == [late]
    # A seller with no export: the offer says there is nothing to take, and has no form fields.
    form = page.locator(f"#take-{offers[idle.id]}")
    expect(form.locator(".no-slots")).to_have_text(EN["no_slots"])
    expect(form.locator("select")).to_have_count(0)
    expect(form.get_by_role("button", name=EN["take"])).to_have_count(0)

    # What the list leaves out, the API refuses too.
    r = server.http.post(
        f"/offers/{offers[both.id]}/take",
        json={"slot": settled, "max_Wh": 100},
        headers=buyer.auth,
    )
    assert r.status_code == 409 and r.json()["code"] == "slot_settled", r.text

    # Once the buyer has taken all it imported in the late slot, that slot is no longer
    # offered by either seller.
    form = page.locator(f"#take-{offers[once.id]}")
    form.get_by_label(EN["take_slot"]).select_option(str(late))
    form.get_by_label(EN["take_qty"]).fill("200")
    form.get_by_role("button", name=EN["take"]).click()
    expect(page.locator("#notice")).to_contain_text("Bought 200 Wh at")
    page.reload()
    options = page.locator(f"#take-slot-{offers[both.id]} option")
    assert options.evaluate_all("os => os.map(o => +o.value)") == [early]
    expect(page.locator(f"#take-{offers[once.id]} .no-slots")).to_be_visible()


# ───────────────────────────── On a phone ─────────────────────────────


#: The body and total rows' cells that are not wholly on screen (the header row of a table
#: shown as cards is hidden on purpose: each cell names its column).
CELLS_OUTSIDE = """(width) => {
  const out = [];
  document.querySelectorAll('table.cards tbody tr, table.cards tfoot tr').forEach((tr, i) => {
    tr.querySelectorAll('th, td').forEach((cell, j) => {
      const r = cell.getBoundingClientRect();
      if (r.width <= 0 || r.height <= 0 || r.left < -0.5 || r.right > width + 0.5) {
        out.push({table: tr.closest('table').id, row: i, cell: j, left: r.left,
                  right: r.right, width: r.width, text: cell.textContent.trim()});
      }
    });
  });
  return out;
}"""

CHART_TEXT = """() => Array.from(document.querySelectorAll('svg.chart text')).map(t => {
  const r = t.getBoundingClientRect();
  const scale = t.getScreenCTM().a;
  return {text: t.textContent, height: r.height,
          px: parseFloat(getComputedStyle(t).fontSize) * scale};
})"""


def test_on_a_phone_every_column_shows_and_chart_text_is_readable(
    server: Server, browser: Any, base: int
) -> None:
    seller = server.register(prosumer=True, name="Phone prosumer")
    buyer = server.register(prosumer=False, name="Phone neighbour", topup_ueur=1_000_000)
    slot = base - 2
    server.simulate([slot], {seller.id: (0, 450), buyer.id: (275, 0)})
    context = browser.new_context(
        locale="en-GB", bypass_csp=True, viewport=PHONE, is_mobile=True, has_touch=True
    )
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        for member in (seller, buyer):
            sign_in_at(page, server, member)
            expect(page.locator("#trades-table tr.trade")).to_have_count(1)
            assert axe_violations(page) == []
            open_tables(page)
            tables = page.locator("table.cards")
            expect(tables.first).to_be_visible()
            ids = tables.evaluate_all("ts => ts.map(t => t.id)")
            assert "trades-table" in ids
            outside = page.evaluate(CELLS_OUTSIDE, PHONE["width"])
            assert outside == [], "\n".join(map(str, outside))
            # Each card names its column: a value is never shown without what it is.
            labels = page.locator("#trades-table tbody tr.trade td").evaluate_all(
                "cs => cs.map(c => getComputedStyle(c, '::before').content)"
            )
            assert all(label not in ("none", '""', "normal") for label in labels), labels
            if slot >= today_first():
                assert "today-table" in ids
                texts = page.evaluate(CHART_TEXT)
                assert texts, "the chart has its axis and slot labels"
                small = [t for t in texts if t["px"] < 11 or t["height"] < 11]
                assert small == [], small
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            assert axe_violations(page) == []
            page.get_by_role("button", name=EN["signout"]).click()
    finally:
        context.close()


def test_the_household_page_passes_axe_on_a_desktop(
    server: Server, page: Any, traded: Traded
) -> None:
    for member in (traded.seller, traded.buyer):
        sign_in_at(page, server, member)
        expect(page.locator("#trades-table")).to_be_visible()
        assert axe_violations(page) == []
        open_tables(page)
        assert axe_violations(page) == []
        page.goto(server.url + "/ui/lang/fr?to=/ui/household")
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        assert axe_violations(page) == []
        page.goto(server.url + "/ui/lang/en?to=/ui/household")
        page.get_by_role("button", name=EN["signout"]).click()
