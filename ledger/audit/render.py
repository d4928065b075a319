"""The audit report's outputs: JSON and CSV for machines, an HTML page for people, and the
open-data export for the city's portal.

- :func:`report_json`: the report dict (:meth:`AuditReport.as_dict`) as JSON.
- :func:`write_csv`: ``findings.csv`` (one row per finding, the evidence as JSON),
  ``neighbourhood.csv`` (per-slot aggregates) and, when the feeder ran, ``feeder.csv``; each
  slot also as its local start, ISO 8601 with the offset (``slot_start_local``).
- :func:`report_html`: one self-contained page for people: the audited period in local time,
  the summary with a label for every field, the findings per check, the findings (or "No
  findings"), then plots of the voltage band and the loading per slot on a local clock-time
  axis (PNG embedded as data URIs). Slots read as local spans (``2026-11-26 14:15-14:30
  CET``); a value that is absent says what its absence means.

The machine outputs keep UTC slot numbers; the local zone is a parameter of the outputs for
people and of the CSVs (``tz``, an IANA name, default :data:`ledger.localtime.DEFAULT_ZONE`):
the API passes its ``VOISIN_TIMEZONE``.
- :func:`write_open_data` (from :mod:`ledger.audit.open_data`): per-slot neighbourhood
  aggregates **only**, one CSV and one JSON file per local day, as a Frictionless Data Package
  with its DCAT-AP record; figures that could describe fewer than k households are withheld.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.audit.open_data import write_open_data
from ledger.audit.report import AuditReport
from ledger.localtime import DEFAULT_ZONE, slot_iso, slot_span_label, slot_start, span_label, zone
from ledger.types import SLOT_SECONDS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "FORWARD_LABELS",
    "SUMMARY_LABELS",
    "feeder_figures",
    "field_label",
    "report_html",
    "report_json",
    "write_csv",
    "write_open_data",
]


def report_json(report: AuditReport) -> str:
    return json.dumps(report.as_dict(), indent=2, sort_keys=False, default=str) + "\n"


def _csv(rows: list[list[Any]], header: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue()


def _local(slot: int | None, tz: str) -> str:
    return "" if slot is None else slot_iso(slot, tz)


def write_csv(report: AuditReport, directory: Path | str, *, tz: str = DEFAULT_ZONE) -> list[Path]:
    """Write the machine-readable CSV files into ``directory``; returns their paths. Next to
    each slot number, ``slot_start_local`` is its start in ``tz``, ISO 8601 with the offset."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    findings = folder / "findings.csv"
    findings.write_text(
        _csv(
            [
                [
                    f.check,
                    f.severity,
                    f.slot,
                    _local(f.slot, tz),
                    f.household,
                    f.message,
                    f.evidence_json(),
                ]
                for f in report.findings
            ],
            ["check", "severity", "slot", "slot_start_local", "household", "message", "evidence"],
        )
    )
    paths.append(findings)
    rows = report.as_dict()["neighbourhood"]
    header = list(rows[0]) if rows else ["slot"]
    header.insert(1, "slot_start_local")
    neighbourhood = folder / "neighbourhood.csv"
    neighbourhood.write_text(
        _csv(
            [[r["slot"], _local(r["slot"], tz), *(r[k] for k in header[2:])] for r in rows], header
        )
    )
    paths.append(neighbourhood)
    if report.feeder is not None:
        fr = report.feeder
        feeder = folder / "feeder.csv"
        feeder.write_text(
            _csv(
                [
                    [slot, _local(slot, tz), *values]
                    for slot, *values in zip(
                        fr.slots,
                        fr.vm_min_pu,
                        fr.vm_max_pu,
                        fr.max_line_loading_percent,
                        fr.trafo_loading_percent,
                        strict=True,
                    )
                ],
                [
                    "slot",
                    "slot_start_local",
                    "vm_min_pu",
                    "vm_max_pu",
                    "max_line_loading_percent",
                    "trafo_loading_percent",
                ],
            )
        )
        paths.append(feeder)
    return paths


# ── the page for people ──

#: A label for each field of the report's summary (:meth:`AuditReport.as_dict`).
SUMMARY_LABELS: dict[str, str] = {
    "generated_at": "Generated",
    "chain_id": "Chain id",
    "contract": "Voisin contract",
    "head_block": "Chain head (block)",
    "mirror_block": "Database mirrored up to block",
    "from_slot": "Audit asked from",
    "to_slot": "Audit asked up to",
    "first_slot": "First slot audited",
    "last_slot": "Last slot audited",
    "digest_head": "Digest head (worth publishing: it pins the whole history)",
    "slots": "Slots audited",
    "households": "Households registered",
    "readings": "Signed readings committed",
    "fills": "Fills settled",
    "sealed_slots": "Slots sealed in the digest chain",
    "findings": "Findings",
}

#: A label for each figure of the day-ahead book (:class:`ledger.audit.forwards.ForwardSummary`).
FORWARD_LABELS: dict[str, str] = {
    "positions": "Positions cleared",
    "settled": "Positions settled",
    "open_positions": "Positions open",
    "cleared_Wh": "Energy cleared (Wh)",
    "delivered_Wh": "Energy delivered (Wh)",
    "shortfall_Wh": "Energy short (Wh)",
    "reserved_open_ueur": "Reserved by the open positions (µ€)",
    "escrow_ueur": "Held in escrow on chain (µ€)",
}

#: What an absent (``None``) summary value means, by field.
_ABSENT: dict[str, str] = {
    "from_slot": "the first slot on record",
    "to_slot": "the last slot on record",
    "first_slot": "no slot",
    "last_slot": "no slot",
    "digest_head": "no slot sealed yet",
    "mirror_block": "nothing mirrored yet",
}

#: Each check and what it makes sure of, in report order.
CHECK_LABELS: dict[str, str] = {
    "provenance": "Provenance: every credit comes from a meter's signed reading",
    "energy": "Energy: nobody sold or bought more than was metered",
    "money": "Money: balances, fees and top-ups add up; every fill at its price and tariffs",
    "integrity": "Integrity: the database matches the chain; the digest chain is intact",
    "forwards": "Forwards: each day-ahead position reserved, delivered and refunded as cleared; "
    "the escrow holds the open ones",
    "feeder": "Feeder: voltages and loadings within limits (power flow)",
}

#: Unit suffixes of field names, longest first: snake_case and the contract's camelCase.
_UNITS: tuple[tuple[str, str], ...] = (
    ("_ueur_per_kWh", "µ€/kWh"),
    ("UeurPerKWh", "µ€/kWh"),
    ("_ueur", "µ€"),
    ("Ueur", "µ€"),
    ("_Wh", "Wh"),
    ("Wh", "Wh"),
    ("_W", "W"),
    ("_pu", "pu"),
    ("_percent", "%"),
)
#: Abbreviations in field names, spelt out.
_WORDS = {"vm": "voltage", "v": "voltage", "trafo": "transformer", "tx": "transaction"}


def field_label(key: str) -> str:
    """A label for people for a field name: the words of a ``snake_case`` or ``camelCase``
    name with its unit in brackets (``fee_ueur`` -> ``Fee (µ€)``, ``importDeltaWh`` ->
    ``Import delta (Wh)``). The summary's fields have their own (:data:`SUMMARY_LABELS`)."""
    stem, unit = key, ""
    for suffix, name in _UNITS:
        if key.endswith(suffix) and len(key) > len(suffix):
            stem, unit = key[: -len(suffix)], name
            break
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", stem).replace("_", " ")
    words = [_WORDS.get(w.lower(), w.lower()) for w in spaced.split()]
    text = " ".join(words) or key
    text = text[0].upper() + text[1:]
    return f"{text} ({unit})" if unit else text


def _when(iso: str, tz: str) -> str:
    """An ISO 8601 instant as a local date and time with the zone's abbreviation."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(zone(tz)):%Y-%m-%d %H:%M:%S %Z}"


def _slot_text(slot: int, tz: str) -> str:
    return f"{slot_span_label(slot, tz)} (slot {slot})"


_SLOT_KEYS = frozenset({"slot", "from_slot", "to_slot", "first_slot", "last_slot"})
_CODE_KEYS = frozenset({"contract", "digest_head"})
#: How many items of a list the page shows before "and N more".
_LIST_LIMIT = 12


def _summary_value(key: str, value: Any, tz: str) -> str:
    """A summary value as escaped HTML."""
    e = html.escape
    if value is None:
        return e(_ABSENT.get(key, "not recorded"))
    if key in _SLOT_KEYS and isinstance(value, int):
        return e(_slot_text(value, tz))
    if key == "generated_at" and isinstance(value, str):
        return e(_when(value, tz))
    if key in _CODE_KEYS:
        return f"<code>{e(str(value))}</code>"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return e(str(value))


def _evidence_value(key: str, value: Any, tz: str) -> str:
    """One evidence value as escaped HTML: slots as local spans, nested records as lists
    with labelled fields, other values verbatim in ``<code>``."""
    e = html.escape
    if value is None:
        return "not recorded"
    if isinstance(value, Mapping):
        return _evidence_list(value, tz)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key in _SLOT_KEYS and isinstance(value, int):
        return e(_slot_text(value, tz))
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = list(value)
        shown = [
            _evidence_value("slot" if key == "slots" else "", v, tz) for v in items[:_LIST_LIMIT]
        ]
        more = f" and {len(items) - _LIST_LIMIT} more" if len(items) > _LIST_LIMIT else ""
        if any(isinstance(v, Mapping) for v in items):
            return "<ol>" + "".join(f"<li>{v}</li>" for v in shown) + f"</ol>{e(more)}"
        return "; ".join(shown) + e(more) if shown else "none"
    return f"<code>{e(str(value))}</code>"


def _evidence_list(evidence: Mapping[str, Any], tz: str) -> str:
    if not evidence:
        return ""
    items = "".join(
        f'<li><span class="key">{html.escape(field_label(str(k)))}</span>: '
        f"{_evidence_value(str(k), v, tz)}</li>"
        for k, v in evidence.items()
    )
    return f'<ul class="evidence">{items}</ul>'


def _zone_names(slots: Sequence[int], tz: str) -> str:
    names: list[str] = []
    for s in (slots[0], slots[-1] + 1) if slots else ():
        name = slot_start(s, tz).tzname() or tz
        if name not in names:
            names.append(name)
    return "/".join(names)


def _figure() -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.8), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _local_time_axis(ax: Axes, slots: Sequence[int], tz: str) -> None:
    """A time x axis in ``tz``'s local clock time."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(tz=zone(tz))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=zone(tz)))  # type: ignore[no-untyped-call]
    ax.set_xlabel(f"local time, {tz} ({_zone_names(slots, tz)})")


def feeder_figures(report: AuditReport, tz: str = DEFAULT_ZONE) -> dict[str, Figure]:
    """The feeder plots by caption, on a local clock-time axis (empty without the feeder)."""
    fr = report.feeder
    if fr is None or not fr.slots:
        return {}
    from matplotlib.dates import date2num

    # Each slot at its middle: the power flow stands for the whole quarter hour.
    t = date2num(  # type: ignore[no-untyped-call]
        [slot_start(s, tz) + timedelta(seconds=SLOT_SECONDS // 2) for s in fr.slots]
    )

    def values(series: list[float | None]) -> list[float]:
        return [float("nan") if v is None else v for v in series]

    figures: dict[str, Figure] = {}
    fig = _figure()
    ax = fig.add_subplot()
    ax.fill_between(t, values(fr.vm_min_pu), values(fr.vm_max_pu), alpha=0.3)
    ax.plot(t, values(fr.vm_max_pu), color="tab:orange", marker=".", label="highest bus voltage")
    ax.plot(t, values(fr.vm_min_pu), color="tab:blue", marker=".", label="lowest bus voltage")
    ax.axhline(0.9, color="red", linestyle="--", linewidth=1, label="EN 50160 band (0.90-1.10)")
    ax.axhline(1.1, color="red", linestyle="--", linewidth=1)
    _local_time_axis(ax, fr.slots, tz)
    ax.set_ylabel("voltage (pu)")
    fig.legend(loc="outside lower center", ncols=3, fontsize="small")
    figures["Voltage band per slot: lowest and highest bus voltage"] = fig
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(t, values(fr.max_line_loading_percent), marker=".", label="most loaded line")
    ax.plot(t, values(fr.trafo_loading_percent), marker=".", label="transformer")
    ax.axhline(100, color="red", linestyle="--", linewidth=1, label="limit (100 %)")
    _local_time_axis(ax, fr.slots, tz)
    ax.set_ylabel("loading (%)")
    fig.legend(loc="outside lower center", ncols=3, fontsize="small")
    figures["Loading per slot: most loaded line and the transformer"] = fig
    return figures


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _period(report: AuditReport, tz: str) -> str | None:
    first, last = report.meta.get("first_slot"), report.meta.get("last_slot")
    if isinstance(first, int) and isinstance(last, int):
        return span_label(first, last, tz)
    return None


def _verdict(report: AuditReport) -> str:
    if not report.ok:
        return f"{len(report.findings)} finding(s)"
    if report.counts.get("slots") == 0 and report.counts.get("readings") == 0:
        return "Nothing to audit yet: no metered slot in the range audited"
    return "OK: no findings"


def report_html(
    report: AuditReport,
    images: Mapping[str, bytes] | None = None,
    *,
    tz: str = DEFAULT_ZONE,
) -> str:
    """One self-contained page; ``images`` defaults to the feeder plots. Times are shown in
    ``tz`` (an IANA zone). Text is escaped."""
    e = html.escape
    zone(tz)  # an unknown zone fails here, before any work
    d = report.as_dict()
    rows = "\n".join(
        f"<tr><th>{e(SUMMARY_LABELS.get(str(k)) or field_label(str(k)))}</th>"
        f"<td>{_summary_value(str(k), v, tz)}</td></tr>"
        for k, v in d["summary"].items()
    )

    def check_state(c: Mapping[str, Any]) -> str:
        if not c["ran"]:
            return "not run"
        return "no findings" if c["findings"] == 0 else f"{c['findings']} finding(s)"

    checks = "\n".join(
        f"<tr><th>{e(CHECK_LABELS.get(name, field_label(name)))}</th>"
        f"<td>{e(check_state(c))}</td></tr>"
        for name, c in d["checks"].items()
    )
    if report.findings:
        body = "\n".join(
            "<tr>"
            f"<td>{e(CHECK_LABELS.get(f.check, f.check).split(':')[0])}</td>"
            f"<td>{e(f.severity)}</td>"
            f"<td>{e('not one slot' if f.slot is None else _slot_text(f.slot, tz))}</td>"
            f"<td>{e('not one household' if f.household is None else str(f.household))}</td>"
            f"<td>{e(f.message)}</td>"
            f"<td>{_evidence_list(f.evidence, tz)}</td>"
            "</tr>"
            for f in report.findings
        )
        findings = (
            '<table class="findings">\n<tr><th>Check</th><th>Severity</th><th>Slot (local '
            "time)</th><th>Household</th><th>Finding</th><th>Evidence</th></tr>\n"
            f"{body}\n</table>"
        )
    else:
        findings = '<p class="none">No findings.</p>'
    if images is None:
        shown = {caption: _png(fig) for caption, fig in feeder_figures(report, tz).items()}
    else:
        shown = dict(images)
    figures = "\n".join(
        f'<figure><img alt="{e(caption)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode("ascii")}"><figcaption>{e(caption)}</figcaption></figure>'
        for caption, png in shown.items()
    )
    feeder_note = "" if report.feeder is not None else "<p>The feeder check did not run.</p>"
    forwards = ""
    if report.forwards is not None:
        forward_rows = "\n".join(
            f"<tr><th>{e(FORWARD_LABELS.get(k) or field_label(k))}</th><td>{e(str(v))}</td></tr>"
            for k, v in report.forwards.as_dict().items()
        )
        forwards = f"<h2>Day-ahead forwards</h2>\n<table>\n{forward_rows}\n</table>\n"
    period = _period(report, tz)
    title = "Voisin audit report" + (f": {period}" if period else "")
    zones = (
        _zone_names([report.meta["first_slot"], report.meta["last_slot"]], tz) if period else None
    )
    clock = f"Times are local to {tz}" + (f" ({zones})." if zones else ".")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>
body {{ font-family: sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; }}
table {{ border-collapse: collapse; margin-bottom: 1.5rem; }}
th, td {{ text-align: left; padding: 0.2rem 0.8rem 0.2rem 0; border-bottom: 1px solid #ddd;
  vertical-align: top; }}
.evidence {{ margin: 0; padding-left: 1rem; font-size: 0.85rem; }}
code {{ word-break: break-all; }}
img {{ max-width: 100%; }}
.verdict {{ font-size: 1.3rem; font-weight: bold; }}
</style>
</head>
<body>
<h1>{e(title)}</h1>
<p class="verdict">{e(_verdict(report))}</p>
<p>{e(clock)}</p>
<h2>Summary</h2>
<table>
{rows}
</table>
<h2>Findings per check</h2>
<table>
{checks}
</table>
{forwards}<h2>Findings</h2>
{findings}
<h2>Feeder</h2>
{feeder_note}
{figures}
</body>
</html>
"""
