"""The open-data export: per-slot neighbourhood aggregates as a Frictionless Data Package with
DCAT-AP metadata, and the suppression rules that keep every published figure from describing
one household.

What lives here:

- :func:`slot_contributors`: per slot, which households are behind each figure (metered,
  importing, exporting, selling, buying, PV), from the chain's events (pure);
- :func:`suppression`: per slot, published, or what is withheld and why (pure). The rules,
  with k = ``min_households``:

  1. ``few-households``: fewer than k households in the slot's sums: every figure withheld;
  2. ``membership-change``: the set of households differs from the set behind a slot
     published earlier by 1 to k-1 households: every figure withheld. Subtracting two
     published figures over sets that differ by one household would give that household's
     figure (a household joining or leaving between two days; a late reading making the same
     slot's set grow by one); with this rule any two published sets are equal or differ by at
     least k households, so a difference is a sum over at least k of them. It is checked
     against *every* set published earlier, in slot order over the whole history (not only
     the exported range), so the decision for a slot never depends on ``--from``/``--to``;
  3. ``few-contributors``: a figure is a sum over between 1 and k-1 households (a lone PV
     household's export, one seller's sales): that figure is withheld, with the figures that
     would give it back through the neighbourhood's identities (:func:`withheld_fields`).

- :func:`open_data_rows`: the rows, withheld figures empty (``None``), the reason in the
  ``suppressed`` column and their names in ``suppressed_fields`` (pure);
- :func:`data_package` and :func:`dcat_dataset`: the ``datapackage.json`` (Data Package v1,
  a Table Schema per resource) and the ``dcat.jsonld`` (DCAT-AP) documents (pure);
- :func:`write_open_data`: the only function that writes files: one CSV and one JSON file per
  local day, the README, ``datapackage.json`` and ``dcat.jsonld``.

Only neighbourhood sums leave: no household id, account, meter or address is in any column.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.audit.contributors import SlotContributors, slot_contributors
from ledger.errors import LedgerError
from ledger.localtime import DEFAULT_ZONE, day_span, local_date, slot_iso, zone
from ledger.types import SLOT_SECONDS

if TYPE_CHECKING:
    from ledger.audit.report import AuditReport

__all__ = [
    "DEFAULT_LICENCE",
    "DEFAULT_PUBLISHER",
    "FEW_CONTRIBUTORS",
    "FEW_HOUSEHOLDS",
    "FIELDS",
    "FIGURES",
    "LICENCES",
    "MEMBERSHIP_CHANGE",
    "MIN_HOUSEHOLDS",
    "REASONS",
    "OpenDataError",
    "PackageFile",
    "SlotContributors",
    "Withheld",
    "data_package",
    "day_file_stem",
    "dcat_dataset",
    "open_data_rows",
    "slot_contributors",
    "suppression",
    "withheld_fields",
    "write_open_data",
]


class OpenDataError(LedgerError, ValueError):
    """An open-data option out of range (a threshold below 1, an unknown licence)."""


#: The default k: fewer households than this behind a figure and it is withheld.
MIN_HOUSEHOLDS = 3

FEW_HOUSEHOLDS = "few-households"
FEW_CONTRIBUTORS = "few-contributors"
MEMBERSHIP_CHANGE = "membership-change"
#: Why a slot's figures are withheld, as written in the ``suppressed`` column.
REASONS: dict[str, str] = {
    FEW_HOUSEHOLDS: "fewer than k households are in the slot's sums",
    FEW_CONTRIBUTORS: (
        "a figure is a sum over fewer than k households (importers, exporters, sellers, "
        "buyers or PV households): it is withheld, with the figures that would give it back"
    ),
    MEMBERSHIP_CHANGE: (
        "the slot's households differ from those of a published slot by fewer than k "
        "households: subtracting the two would isolate the ones who joined or left"
    ),
}

#: Licences the export can carry: SPDX-style id -> (title, canonical URL).
LICENCES: dict[str, tuple[str, str]] = {
    "ODbL-1.0": (
        "Open Data Commons Open Database License (ODbL) 1.0",
        "https://opendatacommons.org/licenses/odbl/1-0/",
    ),
    "CC-BY-4.0": (
        "Creative Commons Attribution 4.0 International",
        "https://creativecommons.org/licenses/by/4.0/",
    ),
    "etalab-2.0": (
        "Licence Ouverte / Open Licence version 2.0 (Etalab)",
        "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
    ),
    "CC0-1.0": (
        "Creative Commons Zero v1.0 Universal",
        "https://creativecommons.org/publicdomain/zero/1.0/",
    ),
}
#: ODbL 1.0: the licence the export has always carried; a city portal may ask for another.
DEFAULT_LICENCE = "ODbL-1.0"
_LICENCE_TERMS: dict[str, str] = {
    "ODbL-1.0": "You may share, adapt and build on this data provided you attribute the "
    "publisher and share adapted databases under the same licence.",
    "CC-BY-4.0": "You may share, adapt and build on this data for any purpose provided you "
    "attribute the publisher.",
    "etalab-2.0": "You may reuse this data freely, including commercially, provided you "
    "mention its source (the publisher) and the date it was last updated.",
    "CC0-1.0": "The publisher waives every right in this data: reuse it without conditions.",
}
DEFAULT_PUBLISHER = "Voisin neighbourhood energy ledger operator"

_NAME = "voisin-neighbourhood-energy"
_TITLE = "Voisin neighbourhood energy: per-slot aggregates"
_KEYWORDS = (
    "energy",
    "electricity",
    "photovoltaics",
    "peer-to-peer energy trading",
    "local energy market",
    "smart meter",
    "settlement period",
)
_STEM = "neighbourhood-slots"

#: The columns, in order: (name, Table Schema type, description with its unit).
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("slot", "integer", "Settlement period: unix seconds // 900 (15 minutes, UTC)."),
    ("start_utc", "datetime", "Start of the slot, ISO 8601 in UTC."),
    (
        "start_local",
        "datetime",
        "Start of the slot in the neighbourhood's local time, ISO 8601 with the UTC offset.",
    ),
    (
        "households_metered",
        "integer",
        "Number of households in the slot's sums (whose meter reported for the slot); "
        "published even when the figures are withheld.",
    ),
    (
        "pv_Wh",
        "integer",
        "PV production of the neighbourhood in watt-hours (Wh); empty where not measured "
        "or withheld.",
    ),
    (
        "load_Wh",
        "integer",
        "Consumption of the neighbourhood in watt-hours (Wh); empty where not measured "
        "or withheld.",
    ),
    (
        "local_traded_Wh",
        "integer",
        "Energy sold by neighbours to neighbours in the slot, in watt-hours (Wh); empty "
        "where withheld.",
    ),
    (
        "grid_import_Wh",
        "integer",
        "Energy drawn from the public grid (metered import - local), in watt-hours (Wh); "
        "empty where withheld.",
    ),
    (
        "grid_export_Wh",
        "integer",
        "Energy fed into the public grid (metered export - local), in watt-hours (Wh); "
        "empty where withheld.",
    ),
    (
        "clearing_price_ueur_per_kWh",
        "integer",
        "Energy-weighted mean price of the slot's local trades in micro-euro (1e-6 EUR) per "
        "kWh (the uniform clearing price under pay-as-clear); empty if nothing traded or "
        "withheld.",
    ),
    (
        "suppressed",
        "string",
        "Empty when all the slot's figures are published; otherwise why some or all are "
        "withheld: " + "; ".join(f"{code}: {text}" for code, text in REASONS.items()) + ".",
    ),
    (
        "suppressed_fields",
        "string",
        "The columns withheld in this row, separated by spaces (their cells are empty); empty "
        "when nothing is withheld.",
    ),
)
#: The columns that hold figures: the ones the rules may withhold.
FIGURES = tuple(name for name, _, _ in FIELDS[4:-2])


def _check_k(min_households: int) -> None:
    if min_households < 1:
        raise OpenDataError(
            f"the minimum number of households behind a figure must be at least 1, "
            f"got {min_households}"
        )


@dataclass(frozen=True, slots=True)
class Withheld:
    """Why a slot's figures are withheld (a code of :data:`REASONS`) and which columns."""

    reason: str
    fields: tuple[str, ...]


def withheld_fields(c: SlotContributors, min_households: int) -> tuple[str, ...]:
    """The figures of a slot that are sums over between 1 and k-1 households, with the
    figures that would give them back through the neighbourhood's identities.

    ``load = self_consumed + local + grid_import`` and ``pv = self_consumed + local +
    grid_export + battery``, so ``pv - load = grid_export - grid_import + battery``: with no
    battery, any three of pv, load, grid import and grid export give the fourth. Grid export
    is therefore withheld with PV, and grid import with load; local trades cancel out of the
    identities, so they are withheld alone."""

    def few(group: frozenset[int]) -> bool:
        return 0 < len(group) < min_households

    fields: set[str] = set()
    if few(c.sellers) or few(c.buyers):
        fields |= {"local_traded_Wh", "clearing_price_ueur_per_kWh"}
    # The grid's figures are net of local trades: a household that sold all it exported is
    # not behind them, so they are checked against who is (and against the gross sums).
    if few(c.exporters) or few(c.grid_exporters) or (c.pv_recorded and few(c.prosumers)):
        fields |= {"grid_export_Wh", "pv_Wh"}
    if few(c.importers) or few(c.grid_importers):
        fields |= {"grid_import_Wh", "load_Wh"}
    return tuple(name for name in FIGURES if name in fields)


def suppression(
    contributors: Mapping[int, SlotContributors],
    *,
    min_households: int = MIN_HOUSEHOLDS,
    differencing: bool = True,
) -> dict[int, Withheld | None]:
    """Per slot, ``None`` if all its figures may be published, else what is withheld and
    why (see the module's docstring). Slots are decided in order, each against the sets of
    households behind the slots published before it (partly published ones included).

    ``differencing=False`` applies rules 1 and 2 only: the export as it would be without
    protection against differencing (kept for the tests that run the attack)."""
    _check_k(min_households)
    k = min_households
    published: set[frozenset[int]] = set()
    # A set once too close to a published one stays so (published sets are only added):
    # remembered, so that a long membership change costs one comparison per slot.
    too_close: set[frozenset[int]] = set()
    out: dict[int, Withheld | None] = {}
    for slot in sorted(contributors):
        c = contributors[slot]
        decision: Withheld | None = None
        if len(c.members) < k:
            decision = Withheld(FEW_HOUSEHOLDS, FIGURES)
        elif (
            differencing
            and c.members not in published
            and (c.members in too_close or any(len(p ^ c.members) < k for p in published))
        ):
            too_close.add(c.members)
            decision = Withheld(MEMBERSHIP_CHANGE, FIGURES)
        else:
            fields = withheld_fields(c, k)
            decision = Withheld(FEW_CONTRIBUTORS, fields) if fields else None
            published.add(c.members)
        out[slot] = decision
    return out


# ── the rows ──


def _utc(slot: int) -> str:
    return datetime.fromtimestamp(slot * SLOT_SECONDS, UTC).isoformat().replace("+00:00", "Z")


def open_data_rows(
    report: AuditReport,
    *,
    tz: str = DEFAULT_ZONE,
    min_households: int = MIN_HOUSEHOLDS,
    differencing: bool = True,
) -> list[dict[str, Any]]:
    """One row per slot of the report, keyed by :data:`FIELDS`' names. Every slot keeps its
    times and ``households_metered``; withheld figures are ``None``, ``suppressed`` says why
    and ``suppressed_fields`` names them (both ``None`` when everything is published)."""
    decided = suppression(
        report.contributors, min_households=min_households, differencing=differencing
    )
    rows = []
    for a in report.neighbourhood:
        withheld = decided.get(a.slot, Withheld(FEW_HOUSEHOLDS, FIGURES))
        row: dict[str, Any] = {
            "slot": a.slot,
            "start_utc": _utc(a.slot),
            "start_local": slot_iso(a.slot, tz),
            "households_metered": a.households_metered,
            "pv_Wh": a.pv_Wh,
            "load_Wh": a.load_Wh,
            "local_traded_Wh": a.local_traded_Wh,
            "grid_import_Wh": a.grid_import_Wh,
            "grid_export_Wh": a.grid_export_Wh,
            "clearing_price_ueur_per_kWh": a.clearing_price_ueur_per_kWh,
            "suppressed": None,
            "suppressed_fields": None,
        }
        if withheld is not None:
            row.update(dict.fromkeys(withheld.fields))
            row["suppressed"] = withheld.reason
            row["suppressed_fields"] = " ".join(withheld.fields)
        rows.append(row)
    return rows


def _by_day(rows: Iterable[dict[str, Any]], tz: str) -> dict[date, list[dict[str, Any]]]:
    days: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        days[local_date(row["slot"], tz)].append(row)
    return dict(sorted(days.items()))


def _whole(report: AuditReport, day: date, tz: str) -> bool:
    """Whether the audit's window (``from_slot``..``to_slot``, open ends for none) holds the
    local ``day`` whole: a day it cuts is left out, rather than written in part under the
    day's name (where it would replace the whole day's files of an earlier export)."""
    first, last = day_span(day, tz)
    lo, hi = report.meta.get("from_slot"), report.meta.get("to_slot")
    return (lo is None or lo <= first) and (hi is None or hi >= last)


def day_file_stem(day: date) -> str:
    """The name of a local day's files, without the extension."""
    return f"{_STEM}-{day.isoformat()}"


def _csv_text(rows: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(name for name, _, _ in FIELDS)
    writer.writerows(["" if row[n] is None else row[n] for n, _, _ in FIELDS] for row in rows)
    return out.getvalue()


def _json_text(rows: Sequence[dict[str, Any]]) -> str:
    # One row per line: readable, and diffable between two exports.
    body = ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows)
    return f"[\n{body}\n]\n" if rows else "[]\n"


# ── the package's metadata ──


def _schema() -> dict[str, Any]:
    fields: list[dict[str, Any]] = []
    for name, kind, text in FIELDS:
        field: dict[str, Any] = {"name": name, "type": kind, "description": text}
        if name in ("slot", "start_utc", "start_local", "households_metered"):
            field["constraints"] = {"required": True}
        if kind == "integer" and name != "slot":
            field.setdefault("constraints", {})["minimum"] = 0
        if name == "suppressed":
            field["constraints"] = {"enum": list(REASONS)}
        fields.append(field)
    return {"fields": fields, "primaryKey": ["slot"], "missingValues": [""]}


@dataclass(frozen=True, slots=True)
class PackageFile:
    """One file of the package: its path in the folder, its text, the local day of a data
    file (``None`` for the others)."""

    path: str
    text: str
    day: date | None = None

    @property
    def data(self) -> bytes:
        return self.text.encode("utf-8")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _licence(licence: str) -> tuple[str, str]:
    try:
        return LICENCES[licence]
    except KeyError:
        raise OpenDataError(
            f"unknown licence {licence!r}; choose one of {', '.join(LICENCES)}"
        ) from None


def data_package(
    report: AuditReport,
    files: Sequence[PackageFile],
    *,
    licence: str = DEFAULT_LICENCE,
    publisher: str = DEFAULT_PUBLISHER,
) -> dict[str, Any]:
    """The ``datapackage.json`` document (Tabular Data Package v1) for the day files."""
    title, url = _licence(licence)
    resources = []
    for f in files:
        if f.day is None:
            continue
        csv_file = f.path.endswith(".csv")
        # Size and checksum for the CSV only: frictionless parses a JSON resource without
        # counting its bytes, so it would report a declared size as wrong. dcat.jsonld gives
        # both for every file.
        stats = {"bytes": len(f.data), "hash": f"sha256:{f.sha256}"} if csv_file else {}
        resources.append(
            {
                "name": f"{Path(f.path).stem}-{'csv' if csv_file else 'json'}",
                "title": f"Neighbourhood per-slot aggregates, local day {f.day.isoformat()}"
                + (" (CSV)" if csv_file else " (JSON)"),
                "path": f.path,
                "profile": "tabular-data-resource",
                "format": "csv" if csv_file else "json",
                "mediatype": "text/csv" if csv_file else "application/json",
                "encoding": "utf-8",
                **stats,
                "schema": _schema(),
            }
        )
    return {
        "profile": "tabular-data-package",
        "name": _NAME,
        "title": _TITLE,
        "description": _description(report),
        "keywords": list(_KEYWORDS),
        "licenses": [{"name": licence, "title": title, "path": url}],
        "contributors": [{"title": publisher, "role": "publisher"}],
        "sources": [
            {
                "title": f"Signed meter readings and settlements on chain (contract "
                f"{report.meta.get('contract')})"
            }
        ],
        "created": _created(report),
        "resources": resources,
    }


def _created(report: AuditReport) -> str:
    value = report.meta.get("generated_at")
    return str(value) if value else datetime.now(UTC).isoformat(timespec="seconds")


def _description(report: AuditReport) -> str:
    return (
        "Per 15-minute settlement slot, the totals of a Voisin neighbourhood (a peer-to-peer "
        "energy market on one low-voltage feeder): households metered, PV production, "
        "consumption, energy traded between neighbours, grid import and export, and the local "
        "clearing price. Energy in watt-hours, prices in micro-euro per kWh. No household "
        "identifier is published, and a slot's figures are withheld when fewer than k "
        "households are behind one of them or when subtracting them from another published "
        "slot's would isolate fewer than k households (column `suppressed`). Produced by "
        "`voisin audit` from signed meter readings and the settlements recorded on chain "
        f"(contract {report.meta.get('contract')})."
    )


def _url(path: str, base_url: str | None) -> str:
    return f"{base_url.rstrip('/')}/{path}" if base_url else path


def _media(path: str) -> tuple[str, str | None]:
    """(IANA media type, EU file-type authority code) of a file by its extension."""
    if path.endswith(".csv"):
        return "text/csv", "CSV"
    if path.endswith(".md"):
        return "text/markdown", None
    return "application/json", "JSON"


def dcat_dataset(
    report: AuditReport,
    files: Sequence[PackageFile],
    *,
    tz: str = DEFAULT_ZONE,
    licence: str = DEFAULT_LICENCE,
    publisher: str = DEFAULT_PUBLISHER,
    base_url: str | None = None,
    spatial: str | None = None,
) -> dict[str, Any]:
    """The ``dcat.jsonld`` document: one ``dcat:Dataset`` (DCAT-AP) with one
    ``dcat:Distribution`` per file. URLs are relative to the document unless ``base_url``."""
    _, licence_url = _licence(licence)
    slots = [a.slot for a in report.neighbourhood]
    distributions = []
    for f in files:
        media, code = _media(f.path)
        title = (
            f"Per-slot aggregates, local day {f.day.isoformat()} ({code})"
            if f.day is not None
            else {"datapackage.json": "Data Package descriptor (Table Schema)"}.get(
                f.path, "README: columns, suppression rules and licence"
            )
        )
        distribution: dict[str, Any] = {
            "@id": _url(f.path, base_url),
            "@type": "dcat:Distribution",
            "dct:title": {"@value": title, "@language": "en"},
            "dcat:accessURL": {"@id": _url(f.path, base_url)},
            "dcat:downloadURL": {"@id": _url(f.path, base_url)},
            "dcat:mediaType": {"@id": f"https://www.iana.org/assignments/media-types/{media}"},
            "dcat:byteSize": {"@value": str(len(f.data)), "@type": "xsd:nonNegativeInteger"},
            "spdx:checksum": {
                "@type": "spdx:Checksum",
                "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
                "spdx:checksumValue": {"@value": f.sha256, "@type": "xsd:hexBinary"},
            },
            "dct:license": {"@id": licence_url},
        }
        if code is not None:
            distribution["dct:format"] = {
                "@id": f"http://publications.europa.eu/resource/authority/file-type/{code}"
            }
        distributions.append(distribution)
    dataset: dict[str, Any] = {
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/",
            "spdx": "http://spdx.org/rdf/terms#",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
        },
        "@id": _url("dcat.jsonld#dataset", base_url),
        "@type": "dcat:Dataset",
        "dct:identifier": f"{_NAME}-{report.meta.get('chain_id')}-{report.meta.get('contract')}",
        "dct:title": {"@value": _TITLE, "@language": "en"},
        "dct:description": {"@value": _description(report), "@language": "en"},
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": publisher},
        "dct:license": {"@id": licence_url},
        "dct:issued": {"@value": _created(report), "@type": "xsd:dateTime"},
        "dct:modified": {"@value": _created(report), "@type": "xsd:dateTime"},
        "dcat:keyword": [{"@value": k, "@language": "en"} for k in _KEYWORDS],
        "dcat:theme": {"@id": "http://publications.europa.eu/resource/authority/data-theme/ENER"},
        "dcat:temporalResolution": {"@value": "PT15M", "@type": "xsd:duration"},
        "dcat:distribution": distributions,
    }
    if slots:
        dataset["dct:temporal"] = {
            "@type": "dct:PeriodOfTime",
            "dcat:startDate": {"@value": slot_iso(min(slots), tz), "@type": "xsd:dateTime"},
            "dcat:endDate": {"@value": slot_iso(max(slots) + 1, tz), "@type": "xsd:dateTime"},
        }
    if spatial:
        dataset["dct:spatial"] = {"@id": spatial}
    return dataset


# ── the README ──


def _readme(
    report: AuditReport,
    day_files: Sequence[PackageFile],
    *,
    tz: str,
    min_households: int,
    licence: str,
) -> str:
    title, url = _licence(licence)
    columns = "\n".join(f"| `{name}` | {kind} | {text} |" for name, kind, text in FIELDS)
    reasons = "\n".join(f"| `{code}` | {text} |" for code, text in REASONS.items())
    files = "\n".join(f"- `{f.path}`" for f in day_files) or "- (no slot in the period)"
    k = min_households
    return f"""# Voisin neighbourhood energy: open data

One row per 15-minute settlement slot of a Voisin neighbourhood: the neighbourhood's totals
only. No household identifier, account, meter or address is published. Energy is in watt-hours
(integers), prices in micro-euro (millionths of a euro) per kWh. Produced by `voisin audit`
from the signed meter readings and the settlements recorded on chain (contract
{report.meta.get("contract")}).

One CSV and one JSON file per local day ({tz}), with the same rows:

{files}

`datapackage.json` describes them (Frictionless Data Package, a Table Schema per file: check it
with `frictionless validate datapackage.json`), and `dcat.jsonld` is their DCAT-AP record for a
data portal.

| column | type | meaning |
| --- | --- | --- |
{columns}

Identities (where nothing is withheld): `pv_Wh = self-consumed + local_traded_Wh +
grid_export_Wh` (+ battery charge - discharge) and `load_Wh = self-consumed + local_traded_Wh
+ grid_import_Wh`, where self-consumed is the energy used on site without crossing a meter.

## Withheld figures

k = {k}. Every slot has a row. A figure that could describe fewer than {k} households is
empty, `suppressed` says why and `suppressed_fields` names the empty columns (the slot, its
times and `households_metered` always stay):

| `suppressed` | why |
| --- | --- |
{reasons}

The last rule stops differencing: two published figures over sets of households that differ by
one household (a household joining or leaving between two days, or a late reading) would give
that household's figure when subtracted. Any two published slots are over the same households
or over sets that differ by at least {k}. The cost: after a household joins or leaves, the
neighbourhood's figures are withheld until its membership is back to a published one or has
changed by at least {k} households since. A figure that is a sum over 1 to {k - 1} households
(one seller's sales, a lone PV household's export) is withheld with the figures that would
give it back: `pv_Wh - load_Wh = grid_export_Wh - grid_import_Wh + battery`, so grid export
goes with PV and grid import with load.

## Licence

{title} ({url}). {_LICENCE_TERMS.get(licence, "")}
"""


# ── writing ──


def write_open_data(
    report: AuditReport,
    directory: Path | str,
    *,
    tz: str = DEFAULT_ZONE,
    min_households: int = MIN_HOUSEHOLDS,
    licence: str = DEFAULT_LICENCE,
    publisher: str = DEFAULT_PUBLISHER,
    base_url: str | None = None,
    spatial: str | None = None,
) -> list[Path]:
    """Write the package into ``directory``: per local day ``neighbourhood-slots-DAY.csv``
    and ``.json``, then ``README.md``, ``datapackage.json`` and ``dcat.jsonld``; returns
    their paths in that order. Every option is checked before anything is written."""
    zone(tz)
    _check_k(min_households)
    _licence(licence)
    rows = open_data_rows(report, tz=tz, min_households=min_households)
    days = {day: day_rows for day, day_rows in _by_day(rows, tz).items() if _whole(report, day, tz)}
    if rows and not days:
        raise OpenDataError(
            "open data is published by whole local days: the audit's --from/--to window holds "
            "none whole; widen it to the days' first and last slots"
        )
    day_files: list[PackageFile] = []
    for day, day_rows in days.items():
        stem = day_file_stem(day)
        day_files.append(PackageFile(f"{stem}.csv", _csv_text(day_rows), day))
        day_files.append(PackageFile(f"{stem}.json", _json_text(day_rows), day))
    readme = PackageFile(
        "README.md",
        _readme(report, day_files, tz=tz, min_households=min_households, licence=licence),
    )
    package = data_package(report, day_files, licence=licence, publisher=publisher)
    descriptor = PackageFile("datapackage.json", json.dumps(package, indent=2) + "\n")
    files = [*day_files, readme, descriptor]
    dcat = dcat_dataset(
        report,
        files,
        tz=tz,
        licence=licence,
        publisher=publisher,
        base_url=base_url,
        spatial=spatial,
    )
    files.append(PackageFile("dcat.jsonld", json.dumps(dcat, indent=2, ensure_ascii=False) + "\n"))
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in files:
        path = folder / f.path
        path.write_bytes(f.data)
        paths.append(path)
    return paths
