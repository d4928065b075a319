"""The operator page's panels in headless Chromium: values on the charts, the loading chart
beside the voltage band, the fees collected, the meters not reporting (short addresses with a
copy button), the settle button, the audit's downloads, "nothing to audit yet" on an empty
ledger, the page on a 390 x 844 phone (every table column in view, chart text at 11 px or
more) and axe-core on all of it.

The audit and the feeder's power flows are kept by the server's keeper after settlement; the
tests ask it to catch up where a person would wait a few seconds.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from api.web.audit import kept_view
from api.web.operator_views import short_address
from ledger import localtime
from tests.web.conftest import (
    OP,
    OPERATOR_TOKEN,
    Server,
    axe_violations,
    past_slot,
    running_server,
    sign_in,
)

pytestmark = pytest.mark.browser

ZONE = "Europe/Paris"  # the server's VOISIN_TIMEZONE (the default)


def _fees(server: Server) -> dict[int, int]:
    """The fees of every settled fill, per slot (µ€), as the API reports them."""
    trades = server.http.get("/trades", headers=OP, params={"limit": 100}).json()
    assert trades["total"] <= 100
    per: dict[int, int] = {}
    for t in trades["items"]:
        per[t["slot"]] = per.get(t["slot"], 0) + t["fee_ueur"]
    return per


#: Table cells (outside a table's head) that are neither within the viewport's width nor in a
#: box that scrolls sideways with a visible cue after it.
CELLS_OUT_OF_VIEW = """() => {
          const out = [];
          const width = document.documentElement.clientWidth;
          for (const cell of document.querySelectorAll('main table td, main table th')) {
            const box = cell.getBoundingClientRect();
            if (box.width === 0 && box.height === 0) continue;  // e.g. a card's hidden head
            if (cell.closest('thead')) continue;
            const inView = box.left >= -0.5 && box.right <= width + 0.5;
            let scroller = cell.parentElement, cue = false;
            while (scroller && scroller !== document.body) {
              const style = getComputedStyle(scroller);
              if (/(auto|scroll)/.test(style.overflowX) &&
                  scroller.scrollWidth > scroller.clientWidth) {
                const next = scroller.nextElementSibling;
                cue = !!next && next.classList.contains('op-scroll-cue') &&
                      getComputedStyle(next).display !== 'none';
                break;
              }
              scroller = scroller.parentElement;
            }
            if (!inView && !cue) {
              out.push(cell.closest('table').id + ': ' + cell.textContent.trim().slice(0, 40));
            }
          }
          return out;
        }"""


def _cells_out_of_view(page: Any) -> list[str]:
    return list(page.evaluate(CELLS_OUT_OF_VIEW))


@pytest.fixture(scope="module")
def settled(server: Server) -> dict[str, Any]:
    """Two settled slots of a seller and a buyer, and a third household whose meter reported
    once, long ago; the keeper has caught up."""
    seller = server.register(prosumer=True, name="Panel seller")
    buyer = server.register(prosumer=False, name="Panel buyer", topup_ueur=5_000_000)
    quiet = server.register(prosumer=False, name="Panel quiet")
    old = past_slot(30)
    server.simulate([old], {quiet.id: (120, 0)})
    first = past_slot(10)
    outcomes = server.simulate([first, first + 1], {seller.id: (0, 900), buyer.id: (400, 0)})
    server.services.keeper.catch_up()
    return {
        "seller": seller,
        "buyer": buyer,
        "quiet": quiet,
        "old": old,
        "first": first,
        "outcomes": outcomes,
    }


def test_each_panel_shows_its_figures(server: Server, page: Any, settled: dict[str, Any]) -> None:
    sign_in(page, server.url, OPERATOR_TOKEN)
    expect(page.locator("#audit-status")).to_have_attribute("data-state", "ok")
    when = page.locator("#audit-when")
    expect(when).to_contain_text("Audited as of ")
    expect(when).to_contain_text(localtime.slot_span_label(settled["first"] + 1, ZONE))

    # Values on the charts: one hover column per slot, with the slot's local time and figures.
    shown = page.locator("#flows-table tbody tr").count()
    tips = page.locator("#chart-flows rect.hover title")
    expect(tips).to_have_count(shown)
    outcome = settled["outcomes"][-1]
    label = localtime.slot_span_label(settled["first"] + 1, ZONE)
    expect(tips.last).to_have_text(
        f"{label}: surplus {outcome['surplus_Wh']:,} Wh, deficit {outcome['deficit_Wh']:,} Wh, "
        f"matched {outcome['matched_Wh']:,} Wh"
    )
    expect(page.locator("#chart-prices rect.hover title").last).to_contain_text(f"{label}: ")
    expect(page.locator("#chart-prices rect.hover title").last).to_contain_text(" c€/kWh")

    # The feeder: a power flow per settled slot shown, the loading chart beside the band.
    expect(page.locator("#feeder-table tbody tr")).to_have_count(shown)
    expect(page.locator("#chart-feeder")).to_be_visible()
    expect(page.locator("#chart-loading")).to_be_visible()
    expect(page.locator("#chart-loading-title")).to_contain_text("Loading per slot for")
    expect(page.locator("#chart-loading rect.hover title").last).to_contain_text(
        f"{label}: most loaded line "
    )
    page.locator("#feeder summary").click()
    cells = page.locator("#feeder-table tbody tr").last.locator("td").all_text_contents()
    assert re.fullmatch(r"\d\.\d{3}", cells[0]) and re.fullmatch(r"\d+\.\d", cells[2]), cells

    # Fees: over the slots shown and in all, as the API's trades add them up (this server has
    # fewer settled slots than the page shows, so the two are equal here).
    per_slot = _fees(server)
    assert per_slot.get(settled["first"], 0) > 0
    expect(page.locator("#fees-all")).to_have_attribute("data-ueur", str(sum(per_slot.values())))
    expect(page.locator("#fees-shown")).to_have_attribute("data-ueur", str(sum(per_slot.values())))
    expect(page.locator("#fees")).to_contain_text(
        f"Over the slots shown ({localtime.slot_span_label(settled['old'], ZONE)} to "
    )

    # The meter that reported once, long ago, is listed with its last slot in local time.
    quiet = settled["quiet"]
    row = page.locator(f"#silent-table tr[data-household='{quiet.id}']")
    expect(row).to_contain_text("Panel quiet")
    expect(row).to_contain_text(localtime.slot_span_label(settled["old"], ZONE))
    expect(row).to_contain_text(short_address(quiet.meter.address))
    missed = page.locator("#silent-table tr").filter(has_text="Panel quiet").locator("td").last
    expected = past_slot(1) - settled["old"]  # or one more, if a slot ended meanwhile
    expect(missed).to_have_text(re.compile(rf"^({expected}|{expected + 1})$"))


def test_a_meter_address_is_shortened_and_its_copy_button_copies_it_whole(
    server: Server, page: Any, settled: dict[str, Any]
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    sign_in(page, server.url, OPERATOR_TOKEN)
    seller = settled["seller"]
    row = page.locator("#households-table tbody tr", has_text="Panel seller")
    shown = row.locator(".op-addr span[aria-hidden]")
    expect(shown).to_have_text(re.compile(r"^0x[0-9a-fA-F]{4}…[0-9a-fA-F]{4}$"))
    button = row.get_by_role("button", name=f"Copy the meter address of household {seller.id}")
    expect(button).to_be_visible()
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == seller.meter.address


def test_the_settle_button_settles_a_closed_slot(
    server: Server, page: Any, settled: dict[str, Any]
) -> None:
    seller, buyer = settled["seller"], settled["buyer"]
    slot = past_slot(4)
    batch = [server.reading(seller, slot, 0, 700), server.reading(buyer, slot, 500, 0)]
    r = server.http.post("/readings", json={"readings": batch})
    assert r.status_code == 202, r.text
    assert server.http.get(f"/market/slots/{slot}").status_code == 404
    sign_in(page, server.url, OPERATOR_TOKEN)
    form = page.locator("#settle")
    label = localtime.slot_span_label(slot, ZONE)
    form.get_by_label("Slot to settle").select_option(str(slot))
    expect(form.get_by_label("Slot to settle").locator("option:checked")).to_have_text(label)
    form.get_by_role("button", name="Settle the slot").click()
    notice = page.locator("#notice")
    expect(notice).to_contain_text(f"Slot of {label} settled: ")
    outcome = server.http.get(f"/market/slots/{slot}").json()
    assert outcome["status"] == "settled" and outcome["matched_Wh"] == 500
    expect(notice).to_have_text(
        f"Slot of {label} settled: 500 Wh matched between neighbours in "
        f"{outcome['fills']} trade(s)."
    )
    expect(page.locator(f"#settle_slot option[value='{slot}']")).to_have_count(0)
    # Reloading shows the page again and settles nothing more.
    page.reload()
    expect(page.locator("#notice")).to_have_count(0)
    expect(page.locator("#flows-table tbody tr").last.locator("th")).to_have_text(label)
    # Its power flow and the audit follow in the background (the settle form woke the
    # keeper), and the page shows them by itself, without a reload. The keeper spaces its
    # audits by twice the last one's duration, which a loaded machine stretches: the test
    # waits for the kept audit first, then for the page. The page polls every 3 s, and while
    # the keeper's next pass runs in this process (the chain is in process here) each of its
    # requests waits for the interpreter: on a loaded machine that took more than 30 s.
    deadline = time.monotonic() + 600
    while (kept_view(server.services.engine).last_slot or 0) < slot:
        assert time.monotonic() < deadline, "the keeper kept no audit of the settled slot"
        time.sleep(0.5)
    expect(page.locator("#audit-when")).to_contain_text(
        f"up to the slot of {label}.", timeout=180_000
    )
    expect(page.locator("#feeder-table tbody tr").last.locator("th")).to_have_text(label)
    assert server.http.get(f"/market/slots/{slot}").json() == outcome


def test_the_audit_downloads_in_three_formats(
    server: Server, page: Any, settled: dict[str, Any], tmp_path: Path
) -> None:
    sign_in(page, server.url, OPERATOR_TOKEN)
    got: dict[str, str] = {}
    for kind, name in (("json", "Report (JSON)"), ("csv", "Findings (CSV)"),
                       ("html", "Report page (HTML)")):  # fmt: skip
        with page.expect_download() as info:
            page.get_by_role("link", name=name).click()
        download = info.value
        assert re.fullmatch(
            rf"voisin-audit-\d{{4}}-\d\d-\d\d-\d{{4}}\.{kind}", download.suggested_filename
        )
        path = tmp_path / download.suggested_filename
        download.save_as(path)
        got[kind] = path.read_text()
    report = json.loads(got["json"])
    assert report["ok"] is True and report["findings"] == []
    assert report["summary"]["last_slot"] >= settled["first"] + 1
    assert report["checks"]["feeder"]["ran"] is True
    assert settled["first"] in report["feeder"]["slots"]
    rows = list(csv.reader(io.StringIO(got["csv"])))
    assert rows[0][:3] == ["check", "severity", "slot"] and len(rows) == 1
    assert "<h1>" in got["html"] and "</html>" in got["html"]


def test_on_a_phone_every_table_column_is_in_view_and_chart_text_is_at_least_11_px(
    server: Server, page: Any, settled: dict[str, Any]
) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, server.url, OPERATOR_TOKEN)
    expect(page.locator("#audit-status")).to_be_visible()
    for summary in page.locator("details > summary").all():
        summary.click()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert _cells_out_of_view(page) == []
    tables = page.locator("main table").count()
    assert tables >= 4  # findings are absent while the audit passes
    sizes = page.evaluate(
        """() => Array.from(document.querySelectorAll('svg.chart text')).map(t => {
          const scale = t.getScreenCTM().a;
          return parseFloat(getComputedStyle(t).fontSize) * scale;
        })"""
    )
    assert sizes and min(sizes) >= 11, sorted(sizes)[:3]
    # A chart wider than the phone scrolls sideways inside its box, and says so.
    cue = page.locator("#flows .op-scroll-cue")
    expect(cue).to_be_visible()
    box = page.locator("#flows .op-chart")
    assert page.evaluate("b => b.scrollWidth > b.clientWidth", box.element_handle())
    # Every column of a card has its name beside its value.
    cell = page.locator("#households-table tbody tr").first.locator("td").first
    label = page.evaluate("c => getComputedStyle(c, '::before').content", cell.element_handle())
    assert label == '"Name"'
    assert axe_violations(page) == []
    # The evidence behind a slot: its readings and fills as cards too.
    page.goto(f"{server.url}/ui/operator/evidence?slot={settled['first']}")
    expect(page.locator("#evidence-fills tbody tr").first).to_be_visible()
    assert _cells_out_of_view(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert axe_violations(page) == []


def test_the_operator_page_with_every_panel_passes_axe_in_both_languages(
    server: Server, page: Any, settled: dict[str, Any]
) -> None:
    sign_in(page, server.url, OPERATOR_TOKEN)
    expect(page.locator("#silent-table")).to_be_visible()
    for summary in page.locator("details > summary").all():
        summary.click()
    assert axe_violations(page) == []
    page.get_by_role("link", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("#feeder-title")).to_have_text("Contrôle du départ BT")
    # French decimals in the feeder's table.
    for summary in page.locator("details > summary").all():
        summary.click()
    cell = page.locator("#feeder-table tbody tr").first.locator("td").first
    expect(cell).to_have_text(re.compile(r"^\d,\d{3}$"))
    assert axe_violations(page) == []


@pytest.fixture
def empty_server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path / "data") as running:
        yield running


def test_an_empty_ledger_says_nothing_to_audit_yet(empty_server: Server, page: Any) -> None:
    empty_server.services.keeper.catch_up()
    sign_in(page, empty_server.url, OPERATOR_TOKEN)
    status = page.locator("#audit-status")
    expect(status).to_have_attribute("data-state", "empty")
    expect(status).to_have_text(
        "Nothing to audit yet: no meter reading has reached the ledger and no slot is settled."
    )
    expect(page.get_by_text("Audit passed")).to_have_count(0)
    expect(page.locator("#settle-none")).to_have_text("No closed slot is waiting for settlement.")
    expect(page.locator("#fees-all")).to_have_attribute("data-ueur", "0")
    assert axe_violations(page) == []
