"""The grid operator's dashboard: its parts without a browser (the kept audit and power flows
as the page reads them, the fees, silent meters and slots to settle, the charts' values, the
downloads and the settle form), then in headless Chromium (marker ``browser``): flows and
prices per slot, the forms that register and top up households, the audit with a finding after
a tamper, and its evidence.

The tamper test runs last in this module: it corrupts the server's mirror on purpose.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address
from fastapi.testclient import TestClient
from playwright.sync_api import expect
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from api import keeper as keeper_module
from api.app import create_app
from api.chain_gate import ChainGate
from api.keeper import Keeper
from api.models import ApiHousehold, IntakeReading, KeptAudit, KeptFeederSlot
from api.settings import Settings
from api.web import audit, charts, i18n, operator_views
from api.web import once as once_module
from api.web.session import TOKEN_COOKIE, form_token
from ledger.audit.energy import SlotAggregate
from ledger.audit.feeder import run_feeder
from ledger.audit.findings import Finding
from ledger.audit.forwards import ForwardSummary
from ledger.audit.report import AuditReport
from ledger.mirror.engine import make_engine
from ledger.mirror.models import FillRecord, HouseholdRecord, ReadingRecord, SlotOutcomeRecord
from ledger.readings.eip712 import Reading, sign_reading
from ledger.readings.intake import reading_to_json
from tests.web.conftest import OP, OPERATOR_TOKEN, Server, axe_violations, past_slot, sign_in

browser = pytest.mark.browser


@browser
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


@browser
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
        (None, "1.001", "amount", "Use at most 2 decimals."),
    ],
)
def test_operator_forms_refuse_bad_input_next_to_the_field(
    server: Server, page: Any, meter: str | None, amount: str, field: str, message: str
) -> None:
    sign_in(page, server.url, OPERATOR_TOKEN)
    if meter is None and not page.locator("#household option").count():
        # A household to top up, registered before the chain's block is noted.
        server.register(prosumer=False, name="Top-up target")
        page.reload()
        # Its agent's standing order goes to the chain in the background: wait for it.
        deadline = time.monotonic() + 120
        while server.http.get("/health").json()["backlog"].get("orders", 0):
            assert time.monotonic() < deadline, "the new household's order never went out"
            time.sleep(0.2)
    before = server.http.get("/health").json()
    if meter is not None:
        page.get_by_label("Meter address (0x…)", exact=True).fill(meter)
        page.get_by_role("button", name="Register").click()
    else:
        page.get_by_label("Amount (€)").fill(amount)
        page.get_by_role("button", name="Top up").click()
    expect(page.locator(f"#{field}-error")).to_have_text(message)
    expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#{field}")).to_have_value(meter if meter is not None else amount)
    assert server.http.get("/health").json()["chain"]["block"] == before["chain"]["block"]


@browser
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


@browser
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
    expect(page.locator("#chart-flows-title")).to_contain_text("Bars for 2 settled slots")
    expect(page.locator("#chart-prices-title")).to_contain_text("Clearing prices of 2 slots")
    assert page.locator("#chart-prices circle").count() == 2
    assert axe_violations(page) == []
    # On a phone: one column, nothing wider than the screen, still no serious violation.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert axe_violations(page) == []


@browser
def test_operator_sees_the_audit_status_and_a_finding_after_a_tamper(
    server: Server, page: Any
) -> None:
    seller = server.register(prosumer=True, name="Audit seller")
    buyer = server.register(prosumer=False, name="Audit buyer", topup_ueur=4_000_000)
    slot = past_slot(8)
    server.simulate([slot], {seller.id: (0, 900), buyer.id: (600, 0)})
    # The keeper audits and runs the power flows in the background after settlement: here,
    # now (the page only reads what it kept).
    server.services.keeper.catch_up()
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
    # A changed database moves no block: the keeper's periodic run is what notices it.
    server.services.keeper.run_once(force_audit=True)
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


# ───────────────────── Without a browser: the page's parts ─────────────────────


def test_charts_show_each_columns_values_on_hover_and_write_numbers_in_the_readers_language() -> (
    None
):
    svg = str(
        charts.grouped_bars(
            "f",
            "alt",
            ["10:00", "10:15"],
            [charts.Series("a", charts.GREEN, [1200, 0]), charts.Series("b", charts.GREY, [3, 4])],
            tips=["10:00 <first>", "10:15"],
            value_text=lambda v: f"{i18n.integer(v, 'fr')} Wh",
        )
    )
    assert svg.count('<rect class="hover"') == 2
    assert "<title>10:00 &lt;first&gt;</title>" in svg and "<title>10:15</title>" in svg
    assert "1\u202f200 Wh" in svg  # the scale's top in French
    band = str(
        charts.points_in_band(
            "v", "alt", ["a"], [951], [1003], (900, 1100), "pu", 1000,
            tips=["a: 0,951 à 1,003 pu"],
            axis_text=lambda v: f"{operator_views.decimal(v / 1000, 2, 'fr')} pu",
        )
    )  # fmt: skip
    assert ">0,90 pu<" in band and ">1,10 pu<" in band and "0.9 pu" not in band
    assert "<title>a: 0,951 à 1,003 pu</title>" in band
    # Without the new arguments the charts draw as before (other pages' calls).
    assert '<rect class="hover"' not in str(charts.grouped_bars("g", "alt", ["x"], []))


def test_the_loading_chart_draws_each_line_under_a_dashed_limit() -> None:
    svg = str(
        charts.lines_under_limit(
            "l",
            "Loading",
            ["a", "b", "c", "d"],
            [
                charts.Line("line", charts.BLUE, [100, 250, None, 1200]),
                charts.Line("trafo", charts.AMBER, [50, 60, 70, 80], dashed=True),
            ],
            1000,
            lambda v: f"{v // 10} %",
            tips=["a", "b", "c", "d"],
        )
    )
    assert (
        svg.startswith('<svg class="chart" id="l"') and '<title id="l-title">Loading</title>' in svg
    )
    # The line breaks where a slot has no value; the transformer's is one dashed run.
    assert svg.count('<polyline points="') == 2
    assert svg.count('stroke-dasharray="5 3"') == 1
    assert svg.count(f'fill="{charts.BLUE}"') == 3 and svg.count(f'fill="{charts.AMBER}"') == 4
    assert f'stroke="{charts.RED}"' in svg and ">100 %<" in svg and ">0 %<" in svg
    assert svg.count('<rect class="hover"') == 4


def test_decimals_moments_and_meter_addresses_are_written_for_people() -> None:
    assert operator_views.decimal(0.95234, 3, "fr") == "0,952"
    assert operator_views.decimal(0.95234, 3, "en") == "0.952"
    assert operator_views.decimal(12.0, 1, "fr") == "12,0"
    # Local time on both sides of the spring change in Paris (2026-03-29, 02:00 -> 03:00).
    before = int(datetime(2026, 3, 29, 0, 30, tzinfo=UTC).timestamp())
    after = int(datetime(2026, 3, 29, 1, 30, tzinfo=UTC).timestamp())
    assert operator_views.moment(before, "Europe/Paris") == "2026-03-29 01:30 CET"
    assert operator_views.moment(after, "Europe/Paris") == "2026-03-29 03:30 CEST"
    address = "0x1234567890abcdef1234567890ABCDEF12345678"
    assert operator_views.short_address(address) == "0x1234…5678"
    assert operator_views.short_address("0x12") == "0x12"


@pytest.fixture
def db(tmp_path: Path) -> Engine:
    return make_engine(f"sqlite:///{tmp_path / 'voisin.db'}")


def _household(
    session: Session, hid: int, *, last: int = 0, created: int, active: bool = True
) -> None:
    meter = f"0x{hid:040x}"
    session.add(
        ApiHousehold(
            id=hid, name=f"H{hid}", account=f"0xa{hid:039x}", meter=meter, prosumer=hid % 2 == 1,
            token_hash=f"t{hid}", key_json="{}", meter_last_slot=last,
            created_at=datetime.fromtimestamp(created * 900, UTC),
        )
    )  # fmt: skip
    session.add(
        HouseholdRecord(id=hid, account=f"0xa{hid:039x}", meter=meter, prosumer=hid % 2 == 1,
                        active=active)
    )  # fmt: skip


def _reading(session: Session, hid: int, slot: int, imported: int, exported: int) -> None:
    session.add(
        ReadingRecord(
            household=hid, meter=f"0x{hid:040x}", slot=slot, import_Wh=0, export_Wh=0,
            import_delta_Wh=imported, export_delta_Wh=exported, block_number=slot, tx_hash="0x",
        )
    )  # fmt: skip


def _outcome(session: Session, slot: int, status: str = "settled") -> None:
    session.add(
        SlotOutcomeRecord(
            slot=slot, status=status, mechanism="pay_as_clear", households=2, surplus_Wh=0,
            deficit_Wh=0, matched_Wh=0, unmatched_surplus_Wh=0, unmatched_deficit_Wh=0, fills=0,
            batches=0,
        )
    )  # fmt: skip


def _fill(session: Session, slot: int, fee: int, n: int) -> None:
    session.add(
        FillRecord(
            slot=slot, seller=1, buyer=2, offer_id=1, bid_id=1, energy_Wh=100,
            price_ueur_per_kWh=100_000, cost_ueur=10_000, fee_ueur=fee, block_number=slot,
            log_index=n, tx_hash="0x",
        )
    )  # fmt: skip


def test_fees_silent_meters_and_slots_to_settle_are_read_from_the_database(db: Engine) -> None:
    now = 2_000_000
    with Session(db) as s:
        _household(s, 1, last=now - 1, created=now - 500)  # reported the last closed slot
        _household(s, 2, last=now - 5, created=now - 500)  # missed exactly 4
        _household(s, 3, last=now - 4, created=now - 500)  # missed 3: not yet silent
        _household(s, 4, created=now - 30)  # never reported, registered 30 slots ago
        _household(s, 5, created=now - 2)  # never reported, registered just now
        _household(s, 6, last=now - 50, created=now - 500, active=False)  # deactivated
        for n, (slot, fee) in enumerate([(now - 60, 1), (now - 10, 20), (now - 9, 300)]):
            _fill(s, slot, fee, n)
        _reading(s, 1, now - 9, 10, 0)
        _reading(s, 1, now - 8, 10, 0)
        _reading(s, 1, now - 300, 10, 0)  # outside the settle form's window
        _outcome(s, now - 9)
        s.add(IntakeReading(household=1, meter="0x" + "0" * 39 + "1", slot=now - 2, import_Wh=1,
                            export_Wh=0, v=27, r="0x", s="0x"))  # fmt: skip
        s.add(IntakeReading(household=2, meter="0x" + "0" * 39 + "2", slot=now - 3, import_Wh=1,
                            export_Wh=0, v=27, r="0x", s="0x", status="rejected"))  # fmt: skip
        s.add(IntakeReading(household=2, meter="0x" + "0" * 39 + "2", slot=now, import_Wh=1,
                            export_Wh=0, v=27, r="0x", s="0x"))  # fmt: skip
        s.commit()
    assert operator_views.fees(db, now - 10, now - 9) == operator_views.Fees(320, 321)
    assert operator_views.fees(db, None, None) == operator_views.Fees(0, 321)
    silent = operator_views.silent_meters(db, now)
    assert [(m.household, m.last_slot, m.missed) for m in silent] == [
        (4, None, 29),
        (2, now - 5, 4),
    ]
    assert silent[0].since_slot == now - 30 and silent[0].name == "H4"
    # Closed, metered (committed or waiting in the intake), not settled, in the window.
    assert operator_views.settleable_slots(db, now) == [now - 2, now - 8]


def _kept(
    session: Session, *, ok: bool | None, last_slot: int | None, findings: int = 0,
    problem: str | None = None, summary: dict[str, Any] | None = None, at: int = 1_000,
) -> None:  # fmt: skip
    shown: list[dict[str, Any]] = [
        {"check": "money", "severity": "error", "slot": None, "household": None,
         "message": f"finding {n}", "evidence": {}}
        for n in range(min(findings, 3))
    ]  # fmt: skip
    session.add(
        KeptAudit(
            started_s=at, finished_s=at + 2, last_slot=last_slot, ok=ok, findings=findings,
            problem=problem, summary_json=json.dumps({"summary": summary or {}, "checks": {}}),
            findings_json=json.dumps(shown), report_json=None if problem else "{}",
        )
    )  # fmt: skip
    session.commit()


def test_the_page_reads_the_kept_audit_and_says_when_there_is_nothing_to_audit(db: Engine) -> None:
    assert audit.kept_view(db).state == audit.EMPTY
    with Session(db) as s:
        _kept(s, ok=True, last_slot=None, summary={"slots": 0, "readings": 0, "fills": 0})
    assert audit.kept_view(db).state == audit.EMPTY  # audited, but nothing to audit yet
    with Session(db) as s:
        _household(s, 1, created=10)
        _reading(s, 1, 100, 5, 0)
        _outcome(s, 100)
        s.commit()
    view = audit.kept_view(db)
    assert view.state == audit.OK and view.behind  # slot 100 settled after that audit
    with Session(db) as s:
        _kept(s, ok=False, last_slot=100, findings=7, summary={"slots": 1}, at=2_000)
    view = audit.kept_view(db)
    assert (view.state, view.total_findings, len(view.findings), view.behind) == (
        audit.FAILED,
        7,
        3,
        False,
    )
    assert view.finished_s == 2_002 and view.last_slot == 100
    # A later run that could not finish: the last result stays, with why.
    with Session(db) as s:
        _kept(s, ok=None, last_slot=None, problem="ChainUnavailable: gone", at=3_000)
    view = audit.kept_view(db)
    assert view.state == audit.FAILED and view.problem == "ChainUnavailable: gone"


def test_a_ledger_with_slots_and_no_kept_audit_says_the_audit_has_not_run(db: Engine) -> None:
    with Session(db) as s:
        _household(s, 1, created=10)
        _reading(s, 1, 100, 5, 0)
        s.commit()
    assert audit.kept_view(db).state == audit.PENDING
    with Session(db) as s:
        _kept(s, ok=None, last_slot=None, problem="LedgerError: no")
    view = audit.kept_view(db)
    assert view.state == audit.UNAVAILABLE and view.problem == "LedgerError: no"


def test_a_kept_report_reads_back_as_the_report_it_was() -> None:
    finding = Finding("money", "error", 7, 2, "short by 1 µ€", {"expected": 1, "found": 0})
    aggregate = SlotAggregate(7, 2, 10, 20, 5, 5, 15, 120_000, None, None, None, None, None)
    report = AuditReport(
        [finding],
        ("provenance", "energy", "money", "integrity"),
        {"generated_at": "2026-12-06T10:00:00+00:00", "chain_id": 1, "contract": "0xC",
         "head_block": 9, "mirror_block": 9, "from_slot": None, "to_slot": None,
         "first_slot": 7, "last_slot": 7, "digest_head": "ab"},
        [aggregate],
        None,
        {"slots": 1, "households": 2, "readings": 2, "fills": 1, "sealed_slots": 1},
    )  # fmt: skip
    again = audit.report_from_dict(json.loads(json.dumps(report.as_dict())))
    assert again.as_dict() == report.as_dict()
    # With the day-ahead book, its figures come back too.
    report.checks_run = (*report.checks_run, "forwards")
    report.forwards = ForwardSummary(3, 2, 1, 3_000, 1_800, 200, 130, 130)
    again = audit.report_from_dict(json.loads(json.dumps(report.as_dict())))
    assert again.as_dict() == report.as_dict()
    assert again.as_dict()["forwards"]["delivered_Wh"] == 1_800


def test_the_keeper_audits_after_settlement_and_not_more_often(db: Engine) -> None:
    keeper = Keeper(ChainGate(), engine=db, audit=None)  # type: ignore[arg-type]
    assert keeper.audit_due(now=10_000)  # none kept yet
    with Session(db) as s:
        _kept(s, ok=True, last_slot=None, at=10_000)  # took 2 s, ended at 10,002
    assert not keeper.audit_due(now=10_006)  # within the gap
    assert not keeper.audit_due(now=10_010)  # nothing settled since
    with Session(db) as s:
        _outcome(s, 55)
        s.commit()
    assert keeper.audit_due(now=10_010)  # a slot was settled
    with Session(db) as s:
        _kept(s, ok=True, last_slot=55, at=20_000)
    assert not keeper.audit_due(now=20_010)
    assert keeper.audit_due(now=20_000 + keeper_module.REFRESH_S)  # stale: runs again
    # Only the last few runs are kept, and always the last one that succeeded.
    keeper._keep(KeptAudit(started_s=30_000, finished_s=30_001, ok=False, findings=1))
    for n in range(5):
        keeper._keep(KeptAudit(started_s=40_000 + n, finished_s=40_001 + n, problem="gone"))
    with Session(db) as s:
        rows = s.exec(select(KeptAudit).order_by(col(KeptAudit.id))).all()
    assert [r.problem for r in rows] == [None, "gone", "gone", "gone"]


@pytest.mark.slow
def test_the_keeper_audits_no_database_that_a_restore_has_not_finished(db: Engine) -> None:
    whole = False
    keeper = Keeper(ChainGate(), engine=db, audit=None, whole=lambda: whole)  # type: ignore[arg-type]
    assert not keeper.audit_due(now=10_000)  # none kept, but the recovery is not done
    whole = True
    assert keeper.audit_due(now=10_000)


def test_the_feeder_kept_slot_by_slot_equals_the_audits_feeder_check(db: Engine) -> None:
    """The power flows kept after each settlement are the audit's own: the same placement of
    the households and the same numbers as one run over all the slots; a late reading of a
    settled slot has its slot computed again."""
    flows = {100: {1: (300, 0), 2: (0, 2_000), 3: (900, 0)},
             101: {1: (200, 0), 2: (0, 5_000), 3: (40_000, 0)},
             102: {1: (100, 0)}}  # fmt: skip
    with Session(db) as s:
        for hid in (1, 2, 3, 4):
            _household(s, hid, created=50)
        for slot, per in flows.items():
            for hid, (imported, exported) in per.items():
                _reading(s, hid, slot, imported, exported)
        _outcome(s, 100)
        _outcome(s, 101)
        _outcome(s, 102, status="planned")  # not settled: no power flow yet
        s.commit()
    due, top = keeper_module.feeder_slots_due(db)
    assert due == [101, 100]
    kept = keeper_module.compute_feeder(db, due)
    with Session(db) as s:
        keeper_module._set_state(s, "feeder_reading_id", str(top))
        s.commit()
    fresh = run_feeder({k: flows[k] for k in (100, 101)}, [1, 2, 3, 4])
    assert [r.slot for r in kept] == fresh.slots
    assert [r.vm_min_pu for r in kept] == pytest.approx(fresh.vm_min_pu, abs=1e-5)
    assert [r.vm_max_pu for r in kept] == pytest.approx(fresh.vm_max_pu, abs=1e-5)
    lines = [r.max_line_loading_percent for r in kept]
    assert lines == pytest.approx(fresh.max_line_loading_percent, abs=1e-3)
    assert keeper_module.kept_mapping(db)[1] == fresh.mapping
    assert keeper_module.feeder_slots_due(db)[0] == []
    rows = audit.feeder_rows(db, 100, 102)
    assert [r.slot for r in rows] == [100, 101] and rows[0].loading_percent is not None
    # A reading of slot 100 mirrored after its power flow was kept: slot 100 again.
    with Session(db) as s:
        _reading(s, 4, 100, 7_000, 0)
        s.commit()
    assert keeper_module.feeder_slots_due(db)[0] == [100]


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=Path(tmp_path_factory.mktemp("operator")) / "data",
        operator_token=OPERATOR_TOKEN,
        auto_settle=False,
        chain_process=False,
    )
    app = create_app(settings, background=False)
    with TestClient(app, follow_redirects=False) as c:
        c.cookies.set(TOKEN_COOKIE, OPERATOR_TOKEN)
        yield c


def test_the_page_reads_what_was_kept_and_never_runs_the_audit(
    app_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_audit(*_: Any, **__: Any) -> None:
        raise AssertionError("the page ran the audit")

    monkeypatch.setattr("ledger.audit.inputs.collect", no_audit)
    monkeypatch.setattr("ledger.audit.feeder.run_feeder", no_audit)
    page = app_client.get("/ui/operator")
    assert page.status_code == 200
    assert 'data-state="empty"' in page.text and "Nothing to audit yet" in page.text
    assert "Audit passed" not in page.text


def test_audit_downloads_in_three_formats_once_an_audit_is_kept(app_client: TestClient) -> None:
    for kind in ("json", "csv", "html"):
        assert app_client.get(f"/ui/operator/audit.{kind}").status_code == 404
    services = app_client.app.state.services  # type: ignore[attr-defined]
    services.keeper.run_once(force_audit=True)
    answer = app_client.get("/ui/operator/audit.json")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    assert re.fullmatch(
        r'attachment; filename="voisin-audit-\d{4}-\d\d-\d\d-\d{4}\.json"',
        answer.headers["content-disposition"],
    )
    report = answer.json()
    assert report["ok"] is True and report["summary"]["slots"] == 0
    assert set(report) == {"ok", "summary", "checks", "findings", "neighbourhood", "feeder"}
    csv_file = app_client.get("/ui/operator/audit.csv")
    assert csv_file.headers["content-type"].startswith("text/csv")
    header = csv_file.text.splitlines()[0].split(",")
    assert header[:3] == ["check", "severity", "slot"] and "message" in header
    html = app_client.get("/ui/operator/audit.html")
    assert html.headers["content-type"].startswith("text/html") and "<h1>" in html.text
    assert app_client.get("/ui/operator/audit.xml").status_code == 404
    client = TestClient(app_client.app, follow_redirects=False)
    assert client.get("/ui/operator/audit.json").status_code == 303  # not signed in


def test_audit_downloads_give_times_in_the_neighbourhoods_zone(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        operator_token=OPERATOR_TOKEN,
        auto_settle=False,
        chain_process=False,
        timezone="America/New_York",
    )
    app = create_app(settings, background=False)
    with TestClient(app, follow_redirects=False) as c:
        c.cookies.set(TOKEN_COOKIE, OPERATOR_TOKEN)
        app.state.services.keeper.run_once(force_audit=True)
        html = c.get("/ui/operator/audit.html").text
        assert "Times are local to America/New_York" in html
        assert "Europe/Paris" not in html


def test_the_feeder_table_and_charts_write_french_decimals_and_local_times(
    app_client: TestClient,
) -> None:
    services = app_client.app.state.services  # type: ignore[attr-defined]
    slot = 1_979_000  # 2026-06-10 14:00 UTC: 16:00 in Paris (CEST)
    with Session(services.engine) as s:
        _outcome(s, slot)
        s.add(KeptFeederSlot(slot=slot, network="n", households=2, readings=2, vm_min_pu=0.95123,
                             vm_max_pu=1.0234, max_line_loading_percent=12.345,
                             trafo_loading_percent=3.21, computed_s=1))  # fmt: skip
        s.commit()
    app_client.cookies.set("voisin_lang", "fr")
    try:
        page = app_client.get("/ui/operator").text
    finally:
        app_client.cookies.delete("voisin_lang")
    assert '<td data-label="Tension min (pu)">0,951</td>' in page
    assert ">12,3</td>" in page and ">3,2</td>" in page and "0.951" not in page
    assert "<title>2026-06-10 16:00-16:15 CEST\u00a0: de 0,951 à 1,023 pu</title>" in page
    assert ">0,90 pu<" in page and ">100 %<" in page
    assert 'id="chart-loading"' in page
    assert "Plage permise de 0,90 à 1,10 pu" in page


def test_the_settle_form_refuses_an_open_slot_and_a_stale_form(app_client: TestClient) -> None:
    now = int(time.time()) // 900
    page = app_client.get("/ui/operator").text
    once = re.search(r'name="once" value="(settle\.[^"]+)"', page)
    assert once is None  # nothing waits for settlement: no form, a sentence
    assert 'id="settle-none"' in page
    token = form_token(OPERATOR_TOKEN)
    fresh = once_module.issue(OPERATOR_TOKEN, "settle", "")
    refused = app_client.post(
        "/ui/operator/settle", data={"slot": str(now), "form_token": token, "once": fresh}
    )
    assert refused.status_code == 422
    assert "This slot has not ended yet; it can be settled once it is closed." in refused.text
    stale = app_client.post("/ui/operator/settle", data={"slot": str(now - 3), "form_token": token})
    assert stale.status_code == 422 and "The form expired; please send it again." in stale.text


def test_the_settle_form_settles_a_closed_slot_once(app_client: TestClient) -> None:
    services = app_client.app.state.services  # type: ignore[attr-defined]
    members = []
    for prosumer in (True, False):
        meter = Account.create()
        r = app_client.post(
            "/households", json={"meter": meter.address, "prosumer": prosumer}, headers=OP
        )
        assert r.status_code == 201, r.text
        members.append((r.json()["id"], meter))
    (_, seller_meter), (buyer, buyer_meter) = members
    topped = app_client.post("/topups", json={"household": buyer, "amount_ueur": 3_000_000},
                             headers=OP)  # fmt: skip
    assert topped.status_code == 201, topped.text
    slot = int(time.time()) // 900 - 3
    readings = [
        reading_to_json(sign_reading(m.key, Reading(m.address, slot, imp, exp), services.domain))
        for m, imp, exp in ((seller_meter, 0, 600), (buyer_meter, 400, 0))
    ]
    assert app_client.post("/readings", json={"readings": readings}).status_code == 202
    page = app_client.get("/ui/operator").text
    assert f'<option value="{slot}">' in page
    once = re.search(r'name="once" value="(settle\.[^"]+)"', page)
    assert once is not None
    form = {"slot": str(slot), "form_token": form_token(OPERATOR_TOKEN), "once": once[1]}
    done = app_client.post("/ui/operator/settle", data=form)
    assert (done.status_code, done.headers["location"]) == (303, "/ui/operator")
    outcome = app_client.get(f"/market/slots/{slot}").json()
    assert outcome["status"] == "settled" and outcome["matched_Wh"] == 400
    shown = app_client.get("/ui/operator").text
    label = i18n.slot_label(slot, "Europe/Paris")
    assert f"Slot of {label} settled: 400 Wh matched between neighbours in " in shown
    assert f'<option value="{slot}">' not in shown
    # The same form sent again settles nothing more and says what happened the first time.
    again = app_client.post("/ui/operator/settle", data=form)
    assert again.status_code == 303
    repeat = app_client.get("/ui/operator").text
    assert f"This form was already sent, and done then: Slot of {label} settled" in repeat
    assert app_client.get(f"/market/slots/{slot}").json() == outcome
