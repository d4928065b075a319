"""The audit report's outputs: JSON and CSV for machines, an HTML page for people, and the
open-data export for the city's portal.

- :func:`report_json`: the report dict (:meth:`AuditReport.as_dict`) as JSON.
- :func:`write_csv`: ``findings.csv`` (one row per finding, the evidence as JSON),
  ``neighbourhood.csv`` (per-slot aggregates) and, when the feeder ran, ``feeder.csv``.
- :func:`report_html`: one self-contained page: the summary first, then the findings, then
  plots of the voltage band and the loading per slot (PNG embedded as data URIs).
- :func:`write_open_data`: ``voisin_neighbourhood_slots.csv`` with per-slot neighbourhood
  aggregates **only** (no household id, account, meter or address: the columns are fixed in
  :data:`OPEN_DATA_COLUMNS`), and a ``README.md`` describing each column and the licence.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.audit.report import AuditReport
from ledger.types import SLOT_SECONDS

__all__ = [
    "OPEN_DATA_COLUMNS",
    "OPEN_DATA_FILE",
    "OPEN_DATA_LICENCE",
    "report_html",
    "report_json",
    "write_csv",
    "write_open_data",
]

OPEN_DATA_FILE = "voisin_neighbourhood_slots.csv"
OPEN_DATA_LICENCE = "Open Data Commons Open Database License (ODbL) 1.0"
#: The open-data columns and their descriptions; nothing else is ever written.
OPEN_DATA_COLUMNS: tuple[tuple[str, str], ...] = (
    ("slot", "Settlement period: unix seconds // 900 (15 minutes, UTC)."),
    ("start_utc", "Start of the slot, ISO 8601 in UTC."),
    ("households_metered", "Number of households whose meter reported for the slot."),
    ("pv_Wh", "PV production of the neighbourhood (Wh); empty where not measured."),
    ("load_Wh", "Consumption of the neighbourhood (Wh); empty where not measured."),
    ("local_traded_Wh", "Energy sold by neighbours to neighbours in the slot (Wh)."),
    ("grid_import_Wh", "Energy drawn from the public grid: metered import - local (Wh)."),
    ("grid_export_Wh", "Energy fed into the public grid: metered export - local (Wh)."),
    (
        "clearing_price_ueur_per_kWh",
        "Energy-weighted mean price of the slot's local trades in micro-euro per kWh (the "
        "uniform clearing price under pay-as-clear); empty if nothing traded.",
    ),
)
#: Fewer metered households than this and a slot's row is withheld (k-anonymity of the sums).
MIN_HOUSEHOLDS_PER_ROW = 3


def report_json(report: AuditReport) -> str:
    return json.dumps(report.as_dict(), indent=2, sort_keys=False, default=str) + "\n"


def _csv(rows: list[list[Any]], header: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue()


def write_csv(report: AuditReport, directory: Path | str) -> list[Path]:
    """Write the machine-readable CSV files into ``directory``; returns their paths."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    findings = folder / "findings.csv"
    findings.write_text(
        _csv(
            [
                [f.check, f.severity, f.slot, f.household, f.message, f.evidence_json()]
                for f in report.findings
            ],
            ["check", "severity", "slot", "household", "message", "evidence"],
        )
    )
    paths.append(findings)
    rows = report.as_dict()["neighbourhood"]
    header = list(rows[0]) if rows else ["slot"]
    neighbourhood = folder / "neighbourhood.csv"
    neighbourhood.write_text(_csv([[r[k] for k in header] for r in rows], header))
    paths.append(neighbourhood)
    if report.feeder is not None:
        fr = report.feeder
        feeder = folder / "feeder.csv"
        feeder.write_text(
            _csv(
                [
                    list(row)
                    for row in zip(
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
                    "vm_min_pu",
                    "vm_max_pu",
                    "max_line_loading_percent",
                    "trafo_loading_percent",
                ],
            )
        )
        paths.append(feeder)
    return paths


def _start(slot: int) -> str:
    return datetime.fromtimestamp(slot * SLOT_SECONDS, UTC).isoformat().replace("+00:00", "Z")


def open_data_rows(report: AuditReport) -> list[list[Any]]:
    """The open-data rows: neighbourhood sums per slot, slots with too few households left out."""
    rows = []
    for a in report.neighbourhood:
        if a.households_metered < MIN_HOUSEHOLDS_PER_ROW:
            continue
        rows.append(
            [
                a.slot,
                _start(a.slot),
                a.households_metered,
                a.pv_Wh,
                a.load_Wh,
                a.local_traded_Wh,
                a.grid_import_Wh,
                a.grid_export_Wh,
                a.clearing_price_ueur_per_kWh,
            ]
        )
    return rows


def write_open_data(report: AuditReport, directory: Path | str) -> list[Path]:
    """Write the open-data CSV and its README into ``directory``; returns their paths."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / OPEN_DATA_FILE
    data.write_text(_csv(open_data_rows(report), [name for name, _ in OPEN_DATA_COLUMNS]))
    columns = "\n".join(f"| `{name}` | {text} |" for name, text in OPEN_DATA_COLUMNS)
    readme = folder / "README.md"
    readme.write_text(
        f"""# Voisin neighbourhood energy: open data

`{OPEN_DATA_FILE}` holds one row per 15-minute settlement slot of a Voisin neighbourhood:
the neighbourhood's totals only. It contains no household identifier, account, meter or
address, and a slot with fewer than {MIN_HOUSEHOLDS_PER_ROW} metered households is left out so
that no row describes a single home. Energy is in watt-hours (integers), prices in micro-euro
(millionths of a euro) per kWh. It was produced by `voisin audit` from the signed meter
readings and the settlements recorded on chain (contract {report.meta.get("contract")}).

| column | meaning |
| --- | --- |
{columns}

Identities: `pv_Wh = self-consumed + local_traded_Wh + grid_export_Wh` (+ battery charge -
discharge) and `load_Wh = self-consumed + local_traded_Wh + grid_import_Wh`, where
self-consumed is the energy used on site without crossing a meter.

## Licence

{OPEN_DATA_LICENCE}. You may share, adapt and build on this data provided you attribute
"Voisin neighbourhood energy ledger" and share adapted databases under the same licence.
"""
    )
    return [data, readme]


def _plots(report: AuditReport) -> dict[str, bytes]:
    """The feeder plots as PNG bytes by caption (empty when the feeder did not run)."""
    fr = report.feeder
    if fr is None or not fr.slots:
        return {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = [(s - fr.slots[0]) / 4 for s in fr.slots]

    def values(series: list[float | None]) -> list[float]:
        return [float("nan") if v is None else v for v in series]

    images: dict[str, bytes] = {}
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.fill_between(hours, values(fr.vm_min_pu), values(fr.vm_max_pu), alpha=0.3)
    ax.plot(hours, values(fr.vm_max_pu), color="tab:orange", label="highest bus voltage")
    ax.plot(hours, values(fr.vm_min_pu), color="tab:blue", label="lowest bus voltage")
    ax.axhline(0.9, color="red", linestyle="--", linewidth=1, label="EN 50160 band")
    ax.axhline(1.1, color="red", linestyle="--", linewidth=1)
    ax.set_xlabel(f"hours since slot {fr.slots[0]} ({_start(fr.slots[0])})")
    ax.set_ylabel("voltage (pu)")
    ax.legend(loc="best", fontsize="small")
    images["Voltage band per slot: lowest and highest bus voltage"] = _png(fig)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.plot(hours, values(fr.max_line_loading_percent), label="most loaded line")
    ax.plot(hours, values(fr.trafo_loading_percent), label="transformer")
    ax.axhline(100, color="red", linestyle="--", linewidth=1, label="limit")
    ax.set_xlabel(f"hours since slot {fr.slots[0]}")
    ax.set_ylabel("loading (%)")
    ax.legend(loc="best", fontsize="small")
    images["Loading per slot: most loaded line and the transformer"] = _png(fig)
    return images


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def report_html(report: AuditReport, images: Mapping[str, bytes] | None = None) -> str:
    """One self-contained page; ``images`` defaults to the feeder plots. Text is escaped."""
    e = html.escape
    d = report.as_dict()
    summary = d["summary"]
    rows = "\n".join(
        f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in summary.items()
    )
    checks = "\n".join(
        f"<tr><th>{e(name)}</th><td>{'not run' if not c['ran'] else c['findings']}</td></tr>"
        for name, c in d["checks"].items()
    )
    findings = "\n".join(
        "<tr>"
        + "".join(
            f"<td>{e('' if v is None else str(v))}</td>"
            for v in (f.check, f.severity, f.slot, f.household, f.message, f.evidence_json())
        )
        + "</tr>"
        for f in report.findings
    )
    shown = _plots(report) if images is None else images
    figures = "\n".join(
        f'<figure><img alt="{e(caption)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode("ascii")}"><figcaption>{e(caption)}</figcaption></figure>'
        for caption, png in shown.items()
    )
    feeder_note = "" if report.feeder is not None else "<p>The feeder check did not run.</p>"
    verdict = "OK: no findings" if report.ok else f"{len(report.findings)} finding(s)"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Voisin audit report</title>
<style>
body {{ font-family: sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; }}
table {{ border-collapse: collapse; margin-bottom: 1.5rem; }}
th, td {{ text-align: left; padding: 0.2rem 0.8rem 0.2rem 0; border-bottom: 1px solid #ddd;
  vertical-align: top; }}
td:last-child {{ font-family: monospace; font-size: 0.8rem; word-break: break-all; }}
img {{ max-width: 100%; }}
.verdict {{ font-size: 1.3rem; font-weight: bold; }}
</style>
</head>
<body>
<h1>Voisin audit report</h1>
<p class="verdict">{e(verdict)}</p>
<h2>Summary</h2>
<table>
{rows}
</table>
<h2>Findings per check</h2>
<table>
{checks}
</table>
<h2>Findings</h2>
<table>
<tr><th>check</th><th>severity</th><th>slot</th><th>household</th><th>finding</th>
<th>evidence</th></tr>
{findings}
</table>
<h2>Feeder</h2>
{feeder_note}
{figures}
</body>
</html>
"""
