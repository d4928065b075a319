"""The parts of ``voisin simulate`` that a neighbourhood's run and a city's run share
(:mod:`api.cli`, :mod:`api.city_cli`): where a run writes, how it refuses, its flows started in
a child, its report and summary, and the collector's settings for a process that ends with it."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.paths import absolute, unwritable_dir, unwritable_file

if TYPE_CHECKING:
    from meter_sim.flows import FlowsAhead
    from meter_sim.scenario import Scenario

__all__ = [
    "FULL_COLLECTION_EVERY",
    "SIMULATE_START",
    "keep_for_good",
    "output_problem",
    "refuse",
    "run_paths",
    "start_flows",
    "summary",
    "write_report",
]

#: The default scenario's first day: the June solstice, the longest day of PV.
SIMULATE_START = date(2026, 6, 21)


def refuse(message: str) -> int:
    """Say why the run cannot start; exit status 2, as for a usage error."""
    print(f"voisin simulate: {message}", file=sys.stderr)
    return 2


def output_problem(args: argparse.Namespace, out: Path, data_dir: Path) -> str | None:
    """Why the run cannot write where its options say (``--json``, ``--out`` and the data
    dir), or None. A new run's ``--out`` must not hold another run's record (``run.json``):
    its report and record would be overwritten, and a stopped run could no longer resume."""
    if args.json and absolute(args.json) in (out, data_dir):
        return f"--json {args.json} is the run's own folder: give the report's file name"
    if args.resume is None and (out / "run.json").exists():
        return (
            f"{out} holds another run (run.json): give a fresh --out, or go on with that run "
            f"with voisin simulate --resume {out}"
        )
    return (
        unwritable_file(args.json, "--json")
        or unwritable_dir(out, "--out")
        or unwritable_dir(data_dir, "--data-dir" if args.data_dir else "the data directory")
    )


def run_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """The run's output folder (``--out``, else ``out/<UTC timestamp>``) and its data dir
    (``--data-dir``, else ``OUT/data``), both absolute."""
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = absolute(args.out if args.out else Path("out") / stamp)
    data_dir = absolute(args.data_dir) if args.data_dir else out / "data"
    return out, data_dir


def start_flows(args: argparse.Namespace, scenario: Scenario) -> FlowsAhead | None:
    """For a direct run, start the load and PV models in a child, so that they run while
    this process imports the ledger; a run through the API computes its flows itself."""
    if args.via != "direct":
        return None
    from meter_sim.flows import simulate_ahead

    return simulate_ahead(scenario, args.first_slot, args.slots)


def write_report(report: dict[str, Any], out: Path, copy_to: str | None) -> Path:
    """Write ``report.json`` in ``out`` (and a copy to ``--json``); returns its path."""
    text = json.dumps(report, indent=2) + "\n"
    path = out / "report.json"
    path.write_text(text)
    if copy_to:
        Path(copy_to).write_text(text)
    return path


def summary(r: dict[str, Any]) -> str:
    """The run's figures as the command prints them (energy in kWh, money in EUR)."""
    from meter_sim.report import mib, pilot_comparison  # loaded with the run already

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f} %"

    price = r["mean_clearing_price_ueur_per_kWh"]
    own = r.get("peak_anon_bytes")
    anon = (
        ""
        if own is None
        else f" (own memory at most {mib(own)}; the rest mapped files and children)"
    )
    lines = [
        f"{r['households']} households ({r['prosumers']} with PV), {r['slots']} slots: "
        f"{r['readings']} readings, {r['fills']} fills",
        f"PV {r['pv_energy_Wh'] / 1000:.1f} kWh, load {r['load_energy_Wh'] / 1000:.1f} kWh; "
        f"self-consumed {r['self_consumed_Wh'] / 1000:.1f} kWh, traded locally "
        f"{r['local_traded_Wh'] / 1000:.1f} kWh, grid import {r['grid_import_Wh'] / 1000:.1f} "
        f"kWh, grid export {r['grid_export_Wh'] / 1000:.1f} kWh",
        f"self-sufficiency {pct(r['self_sufficiency'])}, local share of the surplus "
        f"{pct(r['local_share_of_surplus'])}, mean price "
        f"{'n/a' if price is None else f'{price / 1e6:.4f} EUR/kWh'}, community savings "
        f"{r['community_savings_ueur'] / 1e6:.2f} EUR",
        f"gas {r['gas_used']} ({r['gas_per_household_slot'] or 'n/a'} per household-slot, "
        f"{r['gas_per_settled_fill'] or 'n/a'} per settled fill), wall {r['wall_s']} s, "
        f"disk {mib(r['disk_bytes'])}, peak RSS {mib(r['peak_rss_bytes'])}{anon}, "
        f"audit {'ok' if r['audit_ok'] else 'FAILED'}",
    ]
    da = r.get("day_ahead")
    if da is not None:
        lines.append(
            f"day-ahead: {da['positions']} positions, {da['cleared_Wh'] / 1000:.1f} kWh cleared "
            f"ahead, {da['delivered_Wh'] / 1000:.1f} kWh delivered, "
            f"{da['shortfall_Wh'] / 1000:.1f} kWh short, {da['real_time_Wh'] / 1000:.1f} kWh "
            f"traded in real time; {da['gas_per_position'] or 'n/a'} gas per position"
        )
    comparison = pilot_comparison(r)
    if comparison:
        lines.append(comparison)
    lines += [f"  [FAILED] {finding}" for finding in r["audit_findings"]]
    return "\n".join(lines)


#: In ``voisin simulate``'s own process, a full collection comes after this many collections of
#: the middle generation (Python's default: 10).
FULL_COLLECTION_EVERY = 100


def keep_for_good(own_process: bool) -> None:
    """In a process that ends with this command, move every object alive now out of the
    garbage collector's reach (:func:`gc.freeze`), and make full collections rarer.

    After ``voisin simulate``'s imports some 200,000 objects (modules, classes, functions)
    live until the end anyway, and each full collection walked them again. Measured on a
    100-household run (``gc.callbacks``): 16 full collections took 2.3 s, and the run left
    no more cyclic garbage with one (same peak RSS, same objects tracked at the end); freezing
    took a 30-household run's collection time from 2.0 s to 1.4 s. At the very end, freezing
    spares the interpreter's exit collections over the whole heap (1.1 to 1.9 s measured).
    """
    if own_process:
        gc.freeze()
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


def prepare_mirror(database_url: str) -> None:
    """Create a new run's mirror database with the API's migrations (at this release's
    revision), so that ``voisin serve`` and ``voisin db`` take the run's data as they take
    their own: the run then finds every table there."""
    from sqlalchemy import create_engine

    from api.schema import prepare
    from api.sqlite_pragmas import sqlite_pragmas

    engine = create_engine(database_url)
    sqlite_pragmas(engine)
    try:
        prepare(engine)
    finally:
        engine.dispose()
