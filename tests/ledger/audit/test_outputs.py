"""The report's outputs: the JSON, CSV and HTML carry the findings and the feeder plots; plus
the evidence store and the digest chain. The open-data export has its own tests
(``test_open_data.py``)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from sqlmodel import Session, select

from ledger.audit import AuditReport, Finding
from ledger.audit.digest import GENESIS_DIGEST, compute_leaves, link_digest
from ledger.audit.render import (
    SUMMARY_LABELS,
    feeder_figures,
    field_label,
    report_html,
    report_json,
    write_csv,
)
from ledger.mirror.engine import make_engine
from ledger.mirror.models import SignedReadingRecord, SlotDigestRecord
from ledger.readings.eip712 import Reading, sign_reading
from ledger.readings.evidence import ConflictingReading, load_signed_readings, store_signed_readings
from meter_sim.run import RunResult
from tests.ledger.audit.conftest import SLOT, Market, audit_dir, copy_data

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _report_with_findings() -> AuditReport:
    findings = [
        Finding("money", "error", 7, 3, "fee <b>wrong</b>", {"fee_ueur": 12}),
        Finding("integrity", "error", None, None, "totals & more", {}),
    ]
    return AuditReport(findings, ("provenance", "energy", "money", "integrity"), {"x": 1}, [])


def test_json_csv_and_html_carry_every_finding(tmp_path: Path) -> None:
    report = _report_with_findings()
    d = json.loads(report_json(report))
    assert d["ok"] is False
    assert d["findings"][0] == {
        "check": "money",
        "severity": "error",
        "slot": 7,
        "household": 3,
        "message": "fee <b>wrong</b>",
        "evidence": {"fee_ueur": 12},
    }
    assert d["checks"]["money"] == {"ran": True, "findings": 1}
    assert d["checks"]["feeder"] == {"ran": False, "findings": 0}
    write_csv(report, tmp_path)
    rows = list(csv.DictReader((tmp_path / "findings.csv").read_text().splitlines()))
    assert [(r["check"], r["slot"], r["slot_start_local"], r["household"]) for r in rows] == [
        ("money", "7", "1970-01-01T02:45:00+01:00", "3"),
        ("integrity", "", "", ""),
    ]
    assert json.loads(rows[0]["evidence"]) == {"fee_ueur": 12}
    page = report_html(report)
    assert "fee &lt;b&gt;wrong&lt;/b&gt;" in page and "<b>wrong" not in page
    assert "totals &amp; more" in page and "2 finding(s)" in page
    assert page.index("Summary") < page.index("<h2>Findings</h2>") < page.index("<h2>Feeder")
    assert "The feeder check did not run." in page
    # For people: the slot as a local time, the evidence's fields labelled, nothing "None".
    assert "<td>1970-01-01 02:45-03:00 CET (slot 7)</td>" in page
    assert '<span class="key">Fee (µ€)</span>: <code>12</code>' in page
    assert "<td>not one slot</td><td>not one household</td>" in page
    assert_for_people(page)


def test_the_html_page_embeds_the_voltage_and_loading_plots(market: Market, tmp_path: Path) -> None:
    market.meter_slot(SLOT, {h.id: (300, 0) for h in market.homes})
    market.meter_slot(SLOT + 1, {h.id: (0, 200) for h in market.homes})
    report = market.audit(feeder=True)
    page = report_html(report)
    assert page.count('src="data:image/png;base64,') == 2
    assert "Voltage band per slot" in page and "Loading per slot" in page
    assert page.index("Summary") < page.index("<h2>Findings</h2>") < page.index("Voltage band")
    assert "hours since" not in page
    # The feeder's time axis is the local clock: SLOT starts at 06:00 UTC on 24 November
    # 2026, 07:00 in Paris (CET) and 01:00 in New York (EST).
    for tz, hour, names in (("Europe/Paris", "07", "CET"), ("America/New_York", "01", "EST")):
        figures = feeder_figures(report, tz)
        assert list(figures) == [
            "Voltage band per slot: lowest and highest bus voltage",
            "Loading per slot: most loaded line and the transformer",
        ]
        for fig in figures.values():
            fig.canvas.draw()
            (ax,) = fig.axes
            assert ax.get_xlabel() == f"local time, {tz} ({names})"
            times = [
                t.get_text()
                for t in ax.get_xticklabels()
                if re.fullmatch(r"\d\d:\d\d", t.get_text())
            ]
            assert times and all(t.startswith(f"{hour}:") for t in times), (tz, times)
            assert ax.get_legend() is None and len(fig.legends) == 1
    csv_dir = tmp_path / "csv"
    write_csv(report, csv_dir, tz="America/New_York")
    feeder_rows = list(csv.DictReader((csv_dir / "feeder.csv").read_text().splitlines()))
    assert [(r["slot"], r["slot_start_local"]) for r in feeder_rows] == [
        (str(SLOT), "2026-11-24T01:00:00-05:00"),
        (str(SLOT + 1), "2026-11-24T01:15:00-05:00"),
    ]
    hood = list(csv.DictReader((csv_dir / "neighbourhood.csv").read_text().splitlines()))
    assert list(hood[0])[:3] == ["slot", "slot_start_local", "households_metered"]
    assert hood[0]["slot_start_local"] == "2026-11-24T01:00:00-05:00"


#: A snake_case or camelCase field name, as the JSON spells keys.
_RAW_KEY = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b|\b[a-z]+[A-Z][A-Za-z]*\b")


def assert_for_people(page: str) -> None:
    """No raw key, no ``None`` and no bare slot number in the page's text (verbatim values in
    ``<code>``, the style sheet and the embedded images aside)."""
    text = re.sub(r'src="data:image/png;base64,[^"]+"', "", page)
    text = re.sub(r"<style>.*?</style>", "", text, flags=re.S)
    text = re.sub(r"<code>.*?</code>", "", text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    assert "None" not in text
    assert not _RAW_KEY.findall(text), _RAW_KEY.findall(text)
    # Every slot number is named as such, beside its local time.
    for number in re.findall(r"\b\d{7}\b", text):
        assert f"(slot {number})" in text, number


def test_the_html_page_speaks_to_people_in_local_time(clean_day: RunResult, tmp_path: Path) -> None:
    data = copy_data(clean_day, tmp_path)
    report = audit_dir(data)
    assert report.ok and report.meta["from_slot"] is None
    first = clean_day.flows.first_slot
    page = report_html(report, tz="Europe/Paris")
    # The audited day in the title and the heading, local midnight to midnight, summer time.
    title = "Voisin audit report: 2026-06-21 00:00-24:00 CEST"
    assert f"<title>{title}</title>" in page and f"<h1>{title}</h1>" in page
    assert "Times are local to Europe/Paris (CEST)." in page
    # Labels for every field, slots as local spans, absences said in words.
    assert f"<th>First slot audited</th><td>2026-06-21 00:00-00:15 CEST (slot {first})</td>" in page
    last = first + 95
    assert f"<th>Last slot audited</th><td>2026-06-21 23:45-00:00 CEST (slot {last})</td>" in page
    assert "<th>Audit asked from</th><td>the first slot on record</td>" in page
    assert "<th>Signed readings committed</th><td>576</td>" in page
    assert "<th>Digest head (worth publishing: it pins the whole history)</th><td><code>0x" in page
    # No findings: a sentence, not an empty table.
    assert '<p class="none">No findings.</p>' in page
    assert '<table class="findings">' not in page
    assert "OK: no findings" in page
    assert_for_people(page)
    # Another zone is a parameter: the same day read from New York.
    page = report_html(report, tz="America/New_York")
    assert "Voisin audit report: 2026-06-20 18:00 EDT to 2026-06-21 18:00 EDT" in page
    assert f"2026-06-20 18:00-18:15 EDT (slot {first})" in page
    assert_for_people(page)
    # A range with nothing in it says there is nothing to audit.
    empty = audit_dir(data, from_slot=first - 10, to_slot=first - 1)
    page = report_html(empty)
    assert "Nothing to audit yet" in page and "<th>First slot audited</th><td>no slot</td>" in page
    assert_for_people(page)


def test_every_field_gets_a_label_for_people() -> None:
    assert field_label("fee_ueur") == "Fee (µ€)"
    assert field_label("price_ueur_per_kWh") == "Price (µ€/kWh)"
    assert field_label("importDeltaWh") == "Import delta (Wh)"
    assert field_label("trafo_loading_percent") == "Transformer loading (%)"
    assert field_label("vm_min_pu") == "Voltage min (pu)"
    assert field_label("tx_hash") == "Transaction hash"
    assert field_label("x") == "X"
    assert set(SUMMARY_LABELS) >= {
        "generated_at", "chain_id", "contract", "head_block", "mirror_block", "from_slot",
        "to_slot", "first_slot", "last_slot", "digest_head", "slots", "households",
        "readings", "fills", "sealed_slots", "findings",
    }  # fmt: skip


def test_the_evidence_store_is_idempotent_and_refuses_a_second_different_reading(
    tmp_path: Path,
) -> None:
    from eth_account import Account

    engine = make_engine(f"sqlite:///{tmp_path / 'e.db'}")
    meter = Account.create()
    domain = b"\x01" * 32
    first = sign_reading(meter.key, Reading(meter.address, SLOT, 10, 20), domain)
    assert store_signed_readings(engine, [first]) == 1
    assert store_signed_readings(engine, [first]) == 0
    other = sign_reading(meter.key, Reading(meter.address, SLOT, 11, 20), domain)
    with pytest.raises(
        ConflictingReading, match=f"slot {SLOT}; each \\(meter, slot\\) counts once"
    ):
        store_signed_readings(engine, [other])
    # A batch holding a conflict stores none of its readings, and two different readings of
    # one (meter, slot) within a batch conflict too.
    later = sign_reading(meter.key, Reading(meter.address, SLOT + 1, 12, 20), domain)
    with pytest.raises(ConflictingReading):
        store_signed_readings(engine, [later, other])
    twin = sign_reading(meter.key, Reading(meter.address, SLOT + 1, 13, 20), domain)
    with pytest.raises(ConflictingReading):
        store_signed_readings(engine, [later, twin])
    rows = load_signed_readings(engine)
    assert [(r.meter, r.slot, r.import_Wh, r.v) for r in rows] == [
        (meter.address, SLOT, 10, first.v)
    ]
    assert rows[0].r == "0x" + first.r.hex()
    # A new reading beside one already stored: only the new one is added.
    assert store_signed_readings(engine, [later, first]) == 1


def test_the_digest_chain_detects_a_rewritten_link_and_a_changed_outcome(market: Market) -> None:
    for slot in (SLOT, SLOT + 1):
        market.meter_slot(
            slot, {h.id: (100, 0) if i > 1 else (0, 150) for i, h in enumerate(market.homes)}
        )
        market.worker.settle_slot(slot)
    with Session(market.engine) as session:
        links = session.exec(select(SlotDigestRecord).order_by(SlotDigestRecord.seq)).all()
    assert [link.slot for link in links] == [SLOT, SLOT + 1]
    assert links[0].prev_digest == GENESIS_DIGEST and links[1].prev_digest == links[0].digest
    leaves = json.loads(links[0].leaves_json)
    assert link_digest(GENESIS_DIGEST, SLOT, links[0].sealed_block, leaves) == links[0].digest
    assert set(leaves) == {"slot"} | {str(h.id) for h in market.homes}
    # Leaves depend only on the records of the slot, up to the sealed block.
    assert compute_leaves(SLOT, 0, [], [], None)["slot"] != leaves["slot"]
    assert market.audit().ok

    # Rewrite the first link's digest: it no longer matches its leaves, and the second link no
    # longer follows it.
    with Session(market.engine) as session, session.begin():
        link = session.get(SlotDigestRecord, links[0].seq)
        assert link is not None
        link.digest = "0x" + "ab" * 32
        session.add(link)
    messages = {(f.slot, f.message) for f in market.audit().findings}
    assert (SLOT, "a sealed link was rewritten: its digest does not match its leaves") in messages
    assert (
        SLOT + 1,
        "the digest chain is broken: this link does not follow the previous one",
    ) in messages


def test_deleting_a_signed_reading_leaves_a_credit_without_evidence(market: Market) -> None:
    market.meter_slot(SLOT, {h.id: (0, 500) for h in market.homes})
    victim = market.homes[1]
    with Session(market.engine) as session, session.begin():
        row = session.exec(
            select(SignedReadingRecord).where(SignedReadingRecord.meter == victim.meter.address)
        ).one()
        session.delete(row)
    findings = market.audit().findings
    assert [(f.check, f.slot, f.household) for f in findings] == [("provenance", SLOT, victim.id)]
    assert findings[0].evidence["credit_Wh"] == 500
