"""The grid operator's dashboard in headless Chromium: flows and prices per slot, the forms
that register and top up households, the audit with a finding after a tamper, and its evidence.

The tamper test runs last in this module: it corrupts the server's mirror on purpose.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address
from playwright.sync_api import expect
from sqlalchemy import text
from sqlmodel import Session

from tests.web.conftest import OP, OPERATOR_TOKEN, Server, axe_violations, past_slot, sign_in

pytestmark = pytest.mark.browser


def test_operator_registers_a_household_and_tops_it_up_from_the_page(
    server: Server, page: Any
) -> None:
    sign_in(page, server.url, OPERATOR_TOKEN)
    expect(page).to_have_url(server.url + "/ui/operator")
    meter = "0x" + "ab" * 20
    page.get_by_label("Meter address (0x…)", exact=True).fill(meter)
    page.get_by_label("Name (optional)").fill("Élise")
    page.get_by_label("Has PV (may sell)").check()
    page.get_by_role("button", name="Register").click()
    notice = page.locator("#notice")
    expect(notice).to_contain_text("registered. Its token, shown only now: vsn_")
    found = re.search(
        r"Household (\d+) registered\. Its token, shown only now: (vsn_\S+)", notice.inner_text()
    )
    assert found is not None
    household, token = int(found[1]), found[2]
    row = page.locator("#households-table tbody tr", has_text="Élise")
    expect(row).to_contain_text(to_checksum_address(meter))

    page.locator("#topup").get_by_label("Household", exact=True).select_option(str(household))
    page.get_by_label("Amount (€)").fill("12.50")
    page.get_by_role("button", name="Top up").click()
    expect(page.locator("#notice")).to_have_text(f"€12.50 added to household {household}.")
    balance = server.http.get(f"/households/{household}/balance", headers=OP).json()
    assert balance["balance_ueur"] == 12_500_000
    expect(
        page.locator("#households-table tbody tr", has_text="Élise").locator("td[data-ueur]")
    ).to_have_attribute("data-ueur", "12500000")

    # The token shown works: the new household signs in to its own page.
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, server.url, token)
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Household {household} — Élise")
    expect(page.locator("#balance")).to_have_attribute("data-ueur", "12500000")


@pytest.mark.parametrize(
    ("meter", "amount", "field", "message"),
    [
        (
            "not-an-address",
            "5",
            "meter",
            "Enter the meter's address: 0x followed by 40 hexadecimal characters.",
        ),
        (None, "-3", "amount", "This cannot be negative."),
        (None, "lots", "amount", "Enter a number, e.g. 12.5 (digits only)."),
        (None, "0", "amount", "This must be more than zero."),
        (None, "1.0000001", "amount", "Use at most 6 decimals."),
    ],
)
def test_operator_forms_refuse_bad_input_next_to_the_field(
    server: Server, page: Any, meter: str | None, amount: str, field: str, message: str
) -> None:
    before = server.http.get("/health").json()
    sign_in(page, server.url, OPERATOR_TOKEN)
    if meter is not None:
        page.get_by_label("Meter address (0x…)", exact=True).fill(meter)
        page.get_by_role("button", name="Register").click()
    else:
        if not page.locator("#household option").count():
            server.register(prosumer=False, name="Top-up target")
            page.reload()
        page.get_by_label("Amount (€)").fill(amount)
        page.get_by_role("button", name="Top up").click()
    expect(page.locator(f"#{field}-error")).to_have_text(message)
    expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#{field}")).to_have_value(meter if meter is not None else amount)
    assert server.http.get("/health").json()["chain"]["block"] == before["chain"]["block"]


def test_operator_replaces_a_households_meter_from_the_page(server: Server, page: Any) -> None:
    member = server.register(prosumer=False, name="New meter")
    slot = past_slot(20)
    r = server.http.post("/readings", json={"readings": [server.reading(member, slot, 120, 0)]})
    assert r.status_code == 202, r.text
    server.services.outbox.run_once()  # the old meter's reading is on chain before the swap
    sign_in(page, server.url, OPERATOR_TOKEN)
    form = page.locator("#replace-meter")
    form.get_by_label("Household", exact=True).select_option(str(member.id))
    new_meter = Account.create()
    form.get_by_label("New meter address (0x…)").fill(new_meter.address)
    form.get_by_label("Import register now (Wh, empty for 0)").fill("5000")
    form.get_by_label("Export register now (Wh, empty for 0)").fill("-5")
    form.get_by_role("button", name="Replace the meter").click()
    expect(page.locator("#new_export_Wh-error")).to_have_text("This cannot be negative.")
    form = page.locator("#replace-meter")
    expect(form.get_by_label("Import register now (Wh, empty for 0)")).to_have_value("5000")
    form.get_by_label("Export register now (Wh, empty for 0)").fill("")
    form.get_by_role("button", name="Replace the meter").click()
    expect(page.locator("#notice")).to_have_text(
        f"Household {member.id} now reads from meter {new_meter.address}; "
        f"its readings follow slot {slot}."
    )
    # The new meter's next reading counts from its registers; the old meter's is refused.
    old_meter = member.meter
    member.meter, member.import_Wh, member.export_Wh = new_meter, 5000, 0
    fresh = server.http.post("/readings", json={"readings": [server.reading(member, slot + 1, 80)]})
    assert fresh.status_code == 202 and fresh.json()["accepted"] == 1, fresh.text
    member.meter = old_meter
    stale = server.http.post("/readings", json={"readings": [server.reading(member, slot + 2, 1)]})
    assert stale.status_code == 422, stale.text


def test_operator_sees_flows_and_clearing_prices_per_slot_and_the_page_passes_axe(
    server: Server, page: Any
) -> None:
    seller = server.register(prosumer=True, name="Flows seller")
    buyer = server.register(prosumer=False, name="Flows buyer", topup_ueur=4_000_000)
    first = past_slot(12)
    outcomes = server.simulate([first, first + 1], {seller.id: (0, 800), buyer.id: (300, 0)})
    sign_in(page, server.url, OPERATOR_TOKEN)
    rows = page.locator("#flows-table tbody tr")
    expect(rows).to_have_count(2)
    for i, outcome in enumerate(outcomes):
        cells = rows.nth(i).locator("td").all_text_contents()
        assert cells[:3] == [
            f"{outcome['surplus_Wh']:,}",
            f"{outcome['deficit_Wh']:,}",
            f"{outcome['matched_Wh']:,}",
        ]
    expect(page.locator("#chart-flows title")).to_contain_text("Bars for 2 settled slots")
    expect(page.locator("#chart-prices title")).to_contain_text("Clearing prices of 2 slots")
    assert page.locator("#chart-prices circle").count() == 2
    assert axe_violations(page) == []
    # On a phone: one column, nothing wider than the screen, still no serious violation.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert axe_violations(page) == []


def test_operator_sees_the_audit_status_and_a_finding_after_a_tamper(
    server: Server, page: Any
) -> None:
    seller = server.register(prosumer=True, name="Audit seller")
    buyer = server.register(prosumer=False, name="Audit buyer", topup_ueur=4_000_000)
    slot = past_slot(8)
    server.simulate([slot], {seller.id: (0, 900), buyer.id: (600, 0)})
    sign_in(page, server.url, OPERATOR_TOKEN)
    status = page.locator("#audit-status")
    expect(status).to_have_attribute("data-ok", "true")
    expect(status).to_contain_text("Audit passed")
    # The feeder check ran for the slots the page shows.
    settled = page.locator("#flows-table tbody tr").count()
    expect(page.locator("#feeder-table tbody tr")).to_have_count(settled)

    # Tamper: the mirror now claims the slot's fill moved more energy than the chain says.
    with Session(server.services.engine) as s:
        changed = s.execute(
            text("UPDATE fill SET energy_Wh = energy_Wh + 50 WHERE slot = :slot"), {"slot": slot}
        )
        s.commit()
    assert changed.rowcount == 1  # type: ignore[attr-defined]
    page.reload()
    expect(status).to_have_attribute("data-ok", "false")
    expect(status).to_contain_text("Audit failed")
    finding = page.locator("#findings tr.finding").filter(has_text="integrity").first
    expect(finding).to_be_visible()
    link = finding.get_by_role("link", name=re.compile("see the evidence"))
    href = link.get_attribute("href")
    assert href is not None and f"slot={slot}" in href
    assert axe_violations(page) == []
    link.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Slot {slot}")
    fills = page.locator("#evidence-fills tbody tr")
    expect(fills).to_have_count(1)
    expect(fills).to_contain_text(str(seller.id))
    # The signed readings behind it: the slot's, narrowed to the household the finding names.
    readings = page.locator("#evidence-readings tbody tr")
    named = re.search(r"household=(\d+)", href)
    if named is None:
        expect(readings).to_have_count(2)
    else:
        member = next(m for m in (seller, buyer) if m.id == int(named[1]))
        expect(readings).to_have_count(1)
        expect(readings).to_contain_text(member.meter.address)
    assert axe_violations(page) == []
