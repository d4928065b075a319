"""A finding as one line of text: the slot's number, and its local time when a zone is given."""

from __future__ import annotations

from ledger.audit.findings import ERROR, Finding


def test_a_findings_line_names_the_slot_in_local_time_when_given_a_zone() -> None:
    # Slot 1980041 starts at 2026-06-21 10:15 UTC: 12:15 in Paris (CEST).
    finding = Finding("energy", ERROR, 1980041, 3, "sold more than exported")
    assert finding.as_text() == "energy [error] slot 1980041, household 3: sold more than exported"
    assert finding.as_text("Europe/Paris") == (
        "energy [error] slot 1980041 (2026-06-21 12:15-12:30 CEST), household 3: "
        "sold more than exported"
    )
    assert Finding("money", ERROR, None, None, "totals differ").as_text("Europe/Paris") == (
        "money [error]: totals differ"
    )
