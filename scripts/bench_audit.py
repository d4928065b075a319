"""Wall time of the operator's audit: the feeder's power flows, and the whole audit of a run.

1. **Feeder alone**: the default scenario's flows (``--households`` households, ``--days``
   days from 2026-06-21, seed 1) as metered import and export per household and slot, one
   pandapower power flow per slot on the Kerber suburban cable feeder (the households mapped
   as :mod:`ledger.audit.feeder` documents). Importing pandapower is timed apart.
2. **Whole audit of a run** (with ``--data-dir DIR`` of a ``voisin simulate`` run, or
   ``--simulate`` to make one first in a temporary folder): ``run_audit`` without, then with,
   the feeder check, reading the chain and the database.

Usage: ``.venv/bin/python scripts/bench_audit.py [--households 100] [--days 1]
[--data-dir DIR | --simulate]``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def feeder_alone(households: int, days: int) -> None:
    from meter_sim import default_scenario
    from meter_sim.flows import simulate

    started = time.perf_counter()
    import pandapower
    import pandapower.networks

    import_s = time.perf_counter() - started
    from ledger.audit.feeder import DEFAULT_NETWORK, run_feeder

    flows = simulate(default_scenario(households, days, date(2026, 6, 21), 1))
    n_h, n_t = flows.shape
    ids = list(range(1, n_h + 1))
    metered = {
        int(slot): {
            h: (int(flows.import_Wh[h - 1, t]), int(flows.export_Wh[h - 1, t])) for h in ids
        }
        for t, slot in enumerate(flows.slots.tolist())
    }
    started = time.perf_counter()
    result = run_feeder(metered, ids, DEFAULT_NETWORK)
    wall = time.perf_counter() - started
    loads = [v for v in result.max_line_loading_percent if v is not None]
    print(f"pandapower {pandapower.__version__}: import {import_s:.1f} s")
    print(
        f"feeder alone: {n_h} households x {n_t} slots on {DEFAULT_NETWORK}: {wall:.1f} s "
        f"({wall / n_t * 1000:.0f} ms per slot), {len(result.findings)} findings, "
        f"max line loading {max(loads):.1f} %, voltage "
        f"{min(v for v in result.vm_min_pu if v is not None):.3f}"
        f"-{max(v for v in result.vm_max_pu if v is not None):.3f} pu"
    )


def whole_audit(data_dir: Path) -> None:
    from ledger.audit import run_audit
    from ledger.chain.backends import open_chain
    from ledger.contract.deploy import open_ledger
    from ledger.mirror.engine import make_engine

    with open_chain("embedded", data_dir) as chain:
        client, deployment = open_ledger(chain)
        engine = make_engine(f"sqlite:///{(data_dir / 'voisin.db').resolve()}")
        for feeder in (False, True):
            started = time.perf_counter()
            report = run_audit(client, engine, deployment.block_number, feeder=feeder)
            wall = time.perf_counter() - started
            s = report.as_dict()["summary"]
            print(
                f"audit {'with' if feeder else 'without'} the feeder: {wall:.1f} s for "
                f"{s['households']} households, {s['slots']} slots, {s['readings']} readings, "
                f"{s['fills']} fills, {s['head_block']} blocks; {len(report.findings)} findings"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100)
    parser.add_argument("--days", type=int, default=1)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data-dir", type=Path, help="data dir of a voisin simulate run")
    source.add_argument(
        "--simulate", action="store_true", help="simulate --households first (untimed here)"
    )
    args = parser.parse_args()
    if args.households < 1 or args.days < 1:
        parser.error("--households and --days must be at least 1")
    print(
        f"# Voisin audit benchmark, {datetime.now(UTC).isoformat(timespec='seconds')}: "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load {_load()} at start"
    )
    feeder_alone(args.households, args.days)
    data_dir = args.data_dir
    if args.simulate:
        from meter_sim import default_scenario
        from meter_sim.run import run_simulation

        data_dir = Path(tempfile.mkdtemp(prefix="voisin-bench-audit-")) / "data"
        started = time.perf_counter()
        scenario = default_scenario(args.households, args.days, date(2026, 6, 21), 1)
        run = run_simulation(scenario, "pay-as-clear", "embedded", data_dir)
        print(
            f"simulated {args.households} households x {args.days} day(s) in "
            f"{time.perf_counter() - started:.0f} s (its report: audit_ok "
            f"{run.report['audit_ok']})"
        )
    if data_dir is not None:
        whole_audit(data_dir)
    print(f"# load {_load()} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
