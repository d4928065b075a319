"""The open-data package: a valid Frictionless Data Package (checked with the frictionless
library) with its DCAT-AP record, one file per local day, neighbourhood sums only; and the
suppression rules, with the differencing attacks run against the export with and without them."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import frictionless
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select

from api import audit_cli
from api.cli import main
from ledger.audit import AuditReport
from ledger.audit.energy import SlotAggregate
from ledger.audit.open_data import (
    DEFAULT_LICENCE,
    DEFAULT_PUBLISHER,
    FEW_CONTRIBUTORS,
    FEW_HOUSEHOLDS,
    FIELDS,
    FIGURES,
    LICENCES,
    MEMBERSHIP_CHANGE,
    MIN_HOUSEHOLDS,
    OpenDataError,
    SlotContributors,
    day_file_stem,
    open_data_rows,
    suppression,
    write_open_data,
)
from ledger.localtime import day_span
from ledger.mirror.models import HouseholdRecord
from ledger.readings.evidence import store_signed_readings
from meter_sim.run import RunResult
from tests.ledger.audit.conftest import SLOT, Market, audit_dir, copy_data, day_scenario, db_engine

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_NAMES = [name for name, _, _ in FIELDS]


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text().splitlines()))


# ── the package ──


def test_the_package_validates_and_holds_neighbourhood_sums_only(
    clean_day: RunResult, tmp_path: Path
) -> None:
    data = copy_data(clean_day, tmp_path)
    report = audit_dir(data)
    out = tmp_path / "open"
    paths = write_open_data(report, out, tz="Europe/Paris")
    # The simulated day is the local day 2026-06-21: one CSV and one JSON file.
    stem = day_file_stem(date(2026, 6, 21))
    assert [p.name for p in paths] == [
        f"{stem}.csv",
        f"{stem}.json",
        "README.md",
        "datapackage.json",
        "dcat.jsonld",
    ]
    checked = frictionless.validate(out / "datapackage.json")
    assert checked.valid, checked.flatten(["rowNumber", "fieldName", "type", "note"])
    package = json.loads((out / "datapackage.json").read_text())
    assert [r["path"] for r in package["resources"]] == [p.name for p in paths[:2]]
    for resource in package["resources"]:
        assert resource["schema"]["primaryKey"] == ["slot"]
        assert resource["schema"]["missingValues"] == [""]
        assert [f["name"] for f in resource["schema"]["fields"]] == _NAMES
        file = out / resource["path"]
        if resource["format"] == "json":
            continue
        assert resource["bytes"] == file.stat().st_size
        assert resource["hash"] == "sha256:" + hashlib.sha256(file.read_bytes()).hexdigest()
    assert package["licenses"][0]["name"] == DEFAULT_LICENCE
    # The CSV and the JSON hold the same rows.
    rows = _rows(out / f"{stem}.csv")
    as_json = json.loads((out / f"{stem}.json").read_text())
    assert [{k: "" if v is None else str(v) for k, v in r.items()} for r in as_json] == rows
    assert len(rows) == 96
    assert [int(r["slot"]) for r in rows] == clean_day.flows.slots.tolist()
    assert rows[0]["start_utc"] == "2026-06-20T22:00:00Z"
    assert rows[0]["start_local"] == "2026-06-21T00:00:00+02:00"
    assert rows[-1]["start_local"] == "2026-06-21T23:45:00+02:00"
    assert all(int(r["households_metered"]) == 6 for r in rows)
    # Published figures are the neighbourhood's sums; withheld ones are empty and named.
    flows = clean_day.flows
    expected = {
        "pv_Wh": flows.pv_Wh.sum(axis=0).tolist(),
        "load_Wh": flows.load_Wh.sum(axis=0).tolist(),
    }
    for name in FIGURES[2:]:
        expected[name] = [getattr(a, name) for a in report.neighbourhood]
    for i, row in enumerate(rows):
        withheld = row["suppressed_fields"].split()
        # The membership never changes here: only single figures from few households go.
        assert row["suppressed"] == (FEW_CONTRIBUTORS if withheld else "")
        for name in FIGURES:
            value = expected[name][i]
            assert row[name] == ("" if name in withheld or value is None else str(value))
    full = [r for r in rows if not r["suppressed"]]
    # About half the day whole: the evening, night and morning, when every household imports.
    assert len(full) >= 45
    # A lone seller at noon: the local trades are withheld, the grid's figures are not.
    assert any(
        r["suppressed_fields"] == "local_traded_Wh clearing_price_ueur_per_kWh" for r in rows
    )
    # No address, account or meter anywhere in the package.
    everything = "".join(p.read_text() for p in paths)
    assert not _ADDRESS.search(everything.replace(report.meta["contract"], ""))
    with Session(db_engine(data)) as session:
        homes = session.exec(select(HouseholdRecord)).all()
    secrets = [h.account for h in homes] + [h.meter for h in homes]
    secrets += [i.account for i in day_scenario().identities]
    secrets += [i.meter for i in day_scenario().identities]
    for value in secrets:
        assert value.lower() not in everything.lower()
    # The README describes every column, every file and the licence.
    readme = (out / "README.md").read_text()
    for name in _NAMES:
        assert f"`{name}`" in readme
    for path in paths[:2]:
        assert f"`{path.name}`" in readme
    assert LICENCES[DEFAULT_LICENCE][0] in readme


def _jsonld_terms(node: Any, prefixes: set[str]) -> list[str]:
    """The terms of a JSON-LD tree whose prefix the ``@context`` does not define, and any
    ``@id``, ``@value`` or ``@type`` that is not a string."""
    bad: list[str] = []
    if isinstance(node, list):
        for item in node:
            bad += _jsonld_terms(item, prefixes)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "@context":
                continue
            if key.startswith("@"):
                if key in ("@id", "@value", "@type", "@language") and not isinstance(value, str):
                    bad.append(f"{key}={value!r}")
                if key == "@type" and value.split(":")[0] not in prefixes:
                    bad.append(value)
                continue
            if key.split(":")[0] not in prefixes:
                bad.append(key)
            bad += _jsonld_terms(value, prefixes)
    return bad


def test_the_dcat_record_describes_the_dataset_and_every_file(
    clean_day: RunResult, tmp_path: Path
) -> None:
    report = audit_dir(copy_data(clean_day, tmp_path))
    out = tmp_path / "open"
    paths = write_open_data(
        report,
        out,
        licence="etalab-2.0",
        publisher="Régie de quartier",
        base_url="https://data.example.org/voisin/",
        spatial="https://sws.geonames.org/2988507/",
    )
    dcat: dict[str, Any] = json.loads((out / "dcat.jsonld").read_text())
    assert dcat["@context"]["dcat"] == "http://www.w3.org/ns/dcat#"
    assert dcat["@context"]["dct"] == "http://purl.org/dc/terms/"
    assert dcat["@type"] == "dcat:Dataset"
    # JSON-LD's shape: every term is a compact IRI whose prefix the context defines.
    assert _jsonld_terms(dcat, set(dcat["@context"])) == []
    for key in ("dct:title", "dct:description", "dcat:keyword", "dct:temporal", "dct:identifier"):
        assert dcat[key], key
    assert dcat["dct:publisher"] == {"@type": "foaf:Agent", "foaf:name": "Régie de quartier"}
    licence_url = LICENCES["etalab-2.0"][1]
    assert dcat["dct:license"] == {"@id": licence_url}
    assert dcat["dct:spatial"] == {"@id": "https://sws.geonames.org/2988507/"}
    assert dcat["dct:temporal"]["dcat:startDate"]["@value"] == "2026-06-21T00:00:00+02:00"
    assert dcat["dct:temporal"]["dcat:endDate"]["@value"] == "2026-06-22T00:00:00+02:00"
    distributions = dcat["dcat:distribution"]
    # One distribution per file but the record itself.
    assert len(distributions) == len(paths) - 1
    for d, path in zip(distributions, paths, strict=False):
        assert d["@type"] == "dcat:Distribution"
        url = f"https://data.example.org/voisin/{path.name}"
        assert d["dcat:downloadURL"] == {"@id": url} == d["dcat:accessURL"]
        assert d["dcat:mediaType"]["@id"].startswith(
            "https://www.iana.org/assignments/media-types/"
        )
        assert d["dcat:byteSize"]["@value"] == str(path.stat().st_size)
        checksum = d["spdx:checksum"]
        assert checksum["spdx:algorithm"] == {"@id": "spdx:checksumAlgorithm_sha256"}
        assert (
            checksum["spdx:checksumValue"]["@value"]
            == hashlib.sha256(path.read_bytes()).hexdigest()
        )
        assert d["dct:license"] == {"@id": licence_url}
    assert [d["dcat:mediaType"]["@id"].rsplit("/", 2)[-2:] for d in distributions[:2]] == [
        ["text", "csv"],
        ["application", "json"],
    ]
    # Without a base URL, the URLs are relative to the record.
    write_open_data(report, out)
    relative = json.loads((out / "dcat.jsonld").read_text())
    assert relative["dcat:distribution"][0]["dcat:downloadURL"]["@id"] == paths[0].name
    assert relative["dct:publisher"]["foaf:name"] == DEFAULT_PUBLISHER
    assert "dct:spatial" not in relative


def test_the_cli_writes_the_package_with_its_options(
    clean_day: RunResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy_data(clean_day, tmp_path)
    out = tmp_path / "open"
    argv = ["audit", "--data-dir", str(data), "--open-data", str(out)]
    options = ["--open-data-licence", "CC-BY-4.0", "--open-data-publisher", "Ville de Lyon"]
    assert main([*argv, *options, "--open-data-min-households", "7"]) == 0, capsys.readouterr().err
    package = json.loads((out / "datapackage.json").read_text())
    assert package["licenses"][0]["name"] == "CC-BY-4.0"
    assert package["contributors"] == [{"title": "Ville de Lyon", "role": "publisher"}]
    # Six households: with k = 7 every slot's figures are withheld.
    rows = [r for p in sorted(out.glob("*.csv")) for r in _rows(p)]
    assert len(rows) == 96 and {r["suppressed"] for r in rows} == {FEW_HOUSEHOLDS}
    assert main([*argv, "--open-data-min-households", "0"]) == 2
    assert "--open-data-min-households must be at least 1, got 0" in capsys.readouterr().err


def test_the_cli_repeats_the_open_data_defaults() -> None:
    assert audit_cli._MIN_HOUSEHOLDS == MIN_HOUSEHOLDS
    assert tuple(LICENCES) == audit_cli._LICENCES and audit_cli._LICENCES[0] == DEFAULT_LICENCE
    assert audit_cli._PUBLISHER == DEFAULT_PUBLISHER


def test_bad_options_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    report = AuditReport([], (), {}, [])
    with pytest.raises(OpenDataError, match="at least 1, got 0"):
        write_open_data(report, tmp_path / "a", min_households=0)
    with pytest.raises(OpenDataError, match=r"unknown licence 'WTFPL'; choose one of ODbL-1\.0"):
        write_open_data(report, tmp_path / "b", licence="WTFPL")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_period_without_slots_gives_an_empty_valid_package(tmp_path: Path) -> None:
    paths = write_open_data(AuditReport([], (), {}, []), tmp_path)
    assert [p.name for p in paths] == ["README.md", "datapackage.json", "dcat.jsonld"]
    assert json.loads((tmp_path / "datapackage.json").read_text())["resources"] == []
    assert frictionless.validate(tmp_path / "datapackage.json").valid
    assert "dct:temporal" not in json.loads((tmp_path / "dcat.jsonld").read_text())


def _aggregate(slot: int, households: int, import_Wh: int) -> SlotAggregate:
    return SlotAggregate(
        slot, households, import_Wh, 0, 0, import_Wh, 0, None, None, None, None, None, None
    )


def test_local_days_follow_the_clock_change(tmp_path: Path) -> None:
    # 2026-10-25, the day clocks go back in Paris, has 100 slots: one file, every slot in it.
    first, last = day_span(date(2026, 10, 25), "Europe/Paris")
    slots = range(first - 2, last + 3)
    members = SlotContributors(frozenset({1, 2, 3}), importers=frozenset({1, 2, 3}))
    report = AuditReport(
        [],
        (),
        {"generated_at": "2026-10-26T08:00:00+00:00"},
        [_aggregate(s, 3, 300) for s in slots],
        contributors=dict.fromkeys(slots, members),
    )
    write_open_data(report, tmp_path, tz="Europe/Paris")
    day = _rows(tmp_path / f"{day_file_stem(date(2026, 10, 25))}.csv")
    assert len(day) == last - first + 1 == 100
    assert day[0]["start_local"] == "2026-10-25T00:00:00+02:00"
    assert day[-1]["start_local"] == "2026-10-25T23:45:00+01:00"
    assert len(_rows(tmp_path / f"{day_file_stem(date(2026, 10, 24))}.csv")) == 2
    assert len(_rows(tmp_path / f"{day_file_stem(date(2026, 10, 26))}.csv")) == 2
    checked = frictionless.validate(tmp_path / "datapackage.json")
    assert checked.valid, checked.flatten(["rowNumber", "fieldName", "type", "note"])


# ── the suppression rules ──


def test_a_slot_with_fewer_than_k_households_is_withheld(market: Market, tmp_path: Path) -> None:
    market.meter_slot(SLOT, {h.id: (100, 0) for h in market.homes})
    # In the next slot only the first home reports.
    only_one = market.homes[0]
    reading = market.sign(only_one, SLOT + 1, 10, 0)
    store_signed_readings(market.engine, [reading])
    market.client.commit_readings(market.chain.operator, [reading])
    report = market.audit()
    write_open_data(report, tmp_path)
    rows = [r for p in sorted(tmp_path.glob("*.csv")) for r in _rows(p)]
    assert [(int(r["slot"]), r["households_metered"], r["suppressed"]) for r in rows] == [
        (SLOT, "4", ""),
        (SLOT + 1, "1", FEW_HOUSEHOLDS),
    ]
    assert rows[0]["grid_import_Wh"] == "400" and rows[1]["grid_import_Wh"] == ""
    # k is an option: with k = 5 the four households are too few as well.
    assert [r["suppressed"] for r in open_data_rows(report, min_households=5)] == [
        FEW_HOUSEHOLDS,
        FEW_HOUSEHOLDS,
    ]


def test_a_figure_from_fewer_than_k_households_is_withheld(market: Market) -> None:
    # Four households metered, but one alone exports: the export would be its own.
    sellers = [h for h in market.homes if h.id in (1, 2)]
    market.meter_slot(SLOT, {h.id: (100, 0) for h in market.homes} | {sellers[0].id: (0, 500)})
    market.meter_slot(SLOT + 1, {h.id: (100, 0) for h in market.homes})
    rows = open_data_rows(market.audit())
    assert [(r["households_metered"], r["suppressed"], r["suppressed_fields"]) for r in rows] == [
        (4, FEW_CONTRIBUTORS, "pv_Wh grid_export_Wh"),
        (4, None, None),
    ]
    # The export is withheld (with PV, which would give it back); the import stays.
    assert rows[0]["grid_export_Wh"] is None and rows[1]["grid_export_Wh"] == 0
    assert rows[0]["grid_import_Wh"] == 300


#: Each home's import in every slot (Wh): the same every day, the attacker's best case.
_STEADY = {1: (100, 0), 2: (120, 0), 3: (140, 0), 4: (160, 0)}
_JOINER_Wh = 250


def _published(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["suppressed"] is None]


def _recovers(rows: list[dict[str, Any]], figure_Wh: int) -> bool:
    """Whether subtracting two published rows' grid import gives ``figure_Wh``."""
    pub = _published(rows)
    return any(b["grid_import_Wh"] - a["grid_import_Wh"] == figure_Wh for a in pub for b in pub)


def test_a_household_joining_between_two_days_cannot_be_isolated(market: Market) -> None:
    day1 = [SLOT, SLOT + 1, SLOT + 2]
    day2 = [s + 96 for s in day1]
    day3 = [s + 2 * 96 for s in day1]
    for slot in day1:
        market.meter_slot(slot, _STEADY)
    joiner = market.home(prosumer=False)
    for slot in day2:
        market.meter_slot(slot, _STEADY | {joiner.id: (_JOINER_Wh, 0)})
    report = market.audit()
    # The attack on the export without the differencing rule: day 2 minus day 1 is the joiner.
    exposed = open_data_rows(report, differencing=False)
    assert [r["households_metered"] for r in _published(exposed)] == [4, 4, 4, 5, 5, 5]
    assert exposed[3]["grid_import_Wh"] - exposed[0]["grid_import_Wh"] == _JOINER_Wh
    assert _recovers(exposed, _JOINER_Wh)
    # With it, day 2 is withheld: no published pair of rows isolates the joiner.
    protected = open_data_rows(report)
    assert [r["suppressed"] for r in protected] == [None] * 3 + [MEMBERSHIP_CHANGE] * 3
    assert all(r["grid_import_Wh"] is None for r in protected[3:])
    assert not _recovers(protected, _JOINER_Wh)
    # Once k households have joined, the new membership is published again; the difference
    # is now a sum over three households, not one household's figure.
    newcomers = [market.home(prosumer=False) for _ in range(2)]
    for slot in day3:
        flows = _STEADY | {joiner.id: (_JOINER_Wh, 0)}
        flows |= {h.id: (200 + 10 * i, 0) for i, h in enumerate(newcomers)}
        market.meter_slot(slot, flows)
    protected = open_data_rows(market.audit())
    assert [r["suppressed"] for r in protected] == [None] * 3 + [MEMBERSHIP_CHANGE] * 3 + [None] * 3
    assert not _recovers(protected, _JOINER_Wh)
    assert protected[6]["grid_import_Wh"] - protected[0]["grid_import_Wh"] == _JOINER_Wh + 410


def test_a_household_leaving_cannot_be_isolated(market: Market) -> None:
    leaver = market.home(prosumer=False)
    leaver_Wh = 180
    for slot in (SLOT, SLOT + 1):
        market.meter_slot(slot, _STEADY | {leaver.id: (leaver_Wh, 0)})
    # The fifth household leaves: from the next day on its meter no longer reports.
    market.homes.remove(leaver)
    for slot in (SLOT + 96, SLOT + 97):
        market.meter_slot(slot, _STEADY)
    report = market.audit()
    exposed = open_data_rows(report, differencing=False)
    assert [r["households_metered"] for r in _published(exposed)] == [5, 5, 4, 4]
    assert _recovers(exposed, leaver_Wh)
    protected = open_data_rows(report)
    assert [r["suppressed"] for r in protected] == [None, None] + [MEMBERSHIP_CHANGE] * 2
    assert not _recovers(protected, leaver_Wh)


def test_a_late_reading_cannot_be_isolated_across_two_exports(market: Market) -> None:
    for slot in (SLOT, SLOT + 1):
        market.meter_slot(slot, _STEADY)
    late = market.homes[-1]
    on_time = [market.sign(h, SLOT + 2, *_STEADY[h.id]) for h in market.homes[:-1]]
    store_signed_readings(market.engine, on_time)
    market.client.commit_readings(market.chain.operator, on_time)
    first_export = market.audit()
    # The late reading arrives; the same slot is exported again, now over four households.
    reading = market.sign(late, SLOT + 2, *_STEADY[late.id])
    store_signed_readings(market.engine, [reading])
    market.client.commit_readings(market.chain.operator, [reading])
    second_export = market.audit()
    # Without the rule, the two exports of slot SLOT + 2 differ by the late household's import.
    before = open_data_rows(first_export, differencing=False)[2]
    after = open_data_rows(second_export, differencing=False)[2]
    assert (before["households_metered"], after["households_metered"]) == (3, 4)
    assert after["grid_import_Wh"] - before["grid_import_Wh"] == _STEADY[late.id][0]
    # With it, the first export withholds the slot that lacked a household.
    before = open_data_rows(first_export)[2]
    after = open_data_rows(second_export)[2]
    assert before["suppressed"] == MEMBERSHIP_CHANGE and before["grid_import_Wh"] is None
    assert after["suppressed"] is None and after["grid_import_Wh"] == 520


def test_the_rule_does_not_depend_on_the_range_exported(market: Market) -> None:
    market.meter_slot(SLOT, _STEADY)
    joiner = market.home(prosumer=False)
    market.meter_slot(SLOT + 1, _STEADY | {joiner.id: (_JOINER_Wh, 0)})
    # Exporting only the second slot still compares it with the first, published earlier.
    rows = open_data_rows(market.audit(from_slot=SLOT + 1))
    assert [(r["slot"], r["suppressed"]) for r in rows] == [(SLOT + 1, MEMBERSHIP_CHANGE)]


_HOMES = st.frozensets(st.integers(1, 9))


@given(st.lists(_HOMES, max_size=30), st.integers(1, 5))
def test_any_two_published_sets_are_equal_or_differ_by_k_households(
    sets: list[frozenset[int]], k: int
) -> None:
    decided = suppression(
        {slot: SlotContributors(members) for slot, members in enumerate(sets)}, min_households=k
    )
    # A slot with some figure published (whole or in part) counts as published.
    published = [
        sets[slot]
        for slot, withheld in decided.items()
        if withheld is None or withheld.fields != FIGURES
    ]
    assert all(len(s) >= k for s in published)
    assert all(a == b or len(a ^ b) >= k for a in published for b in published)
    # A steady membership of at least k households is always published.
    if sets and len(sets[0]) >= k:
        steady = suppression(
            {slot: SlotContributors(sets[0]) for slot in range(len(sets))}, min_households=k
        )
        assert set(steady.values()) == {None}


def test_a_grid_figure_behind_which_one_household_stands_is_withheld(market: Market) -> None:
    """Four households exported, three of them sold all of it to neighbours: the grid's
    export is the fourth's alone, however many exported, and is withheld with the PV."""
    seller = market.home(prosumer=True)
    market.client.post_offer(seller.account, 60_000, SLOT)
    buyer = market.home(prosumer=False, topup_ueur=10_000_000)
    market.client.post_bid(buyer.account, 200_000, SLOT)
    lone = market.home(prosumer=True)  # PV, and no offer
    flows = {1: (0, 100), 2: (0, 100), seller.id: (0, 100)}
    flows |= {3: (200, 0), 4: (200, 0), buyer.id: (200, 0), lone.id: (0, 77)}
    market.meter_slot(SLOT, flows)
    market.worker.settle_slot(SLOT)
    report = market.audit()
    assert report.contributors[SLOT].exporters == {1, 2, seller.id, lone.id}
    assert report.contributors[SLOT].grid_exporters == {lone.id}
    assert report.neighbourhood[0].grid_export_Wh == 77
    row = open_data_rows(report)[0]
    assert row["grid_export_Wh"] is None and row["pv_Wh"] is None


def test_a_window_that_cuts_a_local_day_leaves_that_days_files_alone(tmp_path: Path) -> None:
    """An export of an afternoon into the folder of an earlier whole-day export: the day's
    files keep the whole day (the cut day is not written), and a window holding no whole
    day is refused."""
    from ledger.audit.open_data import OpenDataError, day_file_stem, write_open_data

    day = date(2026, 3, 29)  # the clocks go forward: 92 slots
    first, last = day_span(day, "Europe/Paris")
    everyone = frozenset({1, 2, 3})
    contributors = {
        slot: SlotContributors(everyone, importers=everyone) for slot in range(first, last + 97)
    }

    def report(lo: int | None, hi: int | None) -> AuditReport:
        slots = range(lo if lo is not None else first, (hi if hi is not None else last + 96) + 1)
        aggregates = [
            SlotAggregate(s, 3, 300, 0, 0, 300, 0, None, None, None, None, None, None)
            for s in slots
        ]
        meta = {"generated_at": "2026-03-31T08:00:00+00:00", "from_slot": lo, "to_slot": hi}
        return AuditReport([], (), meta, aggregates, contributors=contributors)

    write_open_data(report(None, None), tmp_path)
    path = tmp_path / f"{day_file_stem(day)}.csv"
    assert len(list(csv.DictReader(path.open()))) == 92
    written = write_open_data(report(first + 60, last + 96), tmp_path)
    assert len(list(csv.DictReader(path.open()))) == 92
    assert path not in written and tmp_path / f"{day_file_stem(date(2026, 3, 30))}.csv" in written
    with pytest.raises(OpenDataError, match="whole local days"):
        write_open_data(report(first + 60, last), tmp_path)
    assert len(list(csv.DictReader(path.open()))) == 92
