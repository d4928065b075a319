"""Meter simulator benchmark: readings generated and signed per second, and one day for 1,000
households.

Usage::

    .venv/bin/python scripts/bench_meters.py [--households 1000] [--days 1] [--seed 0]
        [--repeat 3] [--processes 1,2]

Measures, for the default street (``meter_sim.default_scenario``) in Lyon:

* **generation**: ``meter_sim.simulate`` (BDEW H0 load, pvlib PV under the seeded cloudy sky,
  batteries, netting, integer rounding), cold (first call in the process: demandlib builds
  the year's H0 profile, about 0.5 s, then cached) and warm (median of ``--repeat`` runs), with
  the time of each stage of a warm run;
* **peak memory of generation**: ``tracemalloc`` peak over one warm ``simulate`` (a separate,
  untimed run, as tracing slows Python down);
* **signing**: ``meter_sim.sign_readings`` over the whole period (registers + one
  ``ledger.readings.eip712.sign_reading`` per meter and slot), readings per second, in one process
  and
  split over worker processes (``--processes``);
* **end to end**: generation + signing of every reading, and the process's peak resident set
  size at the end (``ru_maxrss``, it includes the interpreter and the libraries).

Timings are wall-clock ``time.perf_counter`` on whatever else the machine is running: read them
as orders of magnitude. A benchmark prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time
import tracemalloc
from datetime import date

import numpy as np

from ledger.readings.eip712 import domain_separator
from meter_sim import default_scenario, sign_readings, simulate
from meter_sim.battery import dispatch
from meter_sim.flows import round_keeping_totals
from meter_sim.load import load_Wh
from meter_sim.meters import registers
from meter_sim.pv import pv_Wh, sky_for

DOMAIN = domain_separator(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--processes", default="1,2", help="comma-separated worker counts")
    args = parser.parse_args()

    scenario = default_scenario(args.households, args.days, date(2026, 6, 22), args.seed)
    n_readings = args.households * scenario.n_slots
    print(
        f"meter simulator: {args.households} households x {args.days} day(s) = "
        f"{n_readings:,} readings; Python {platform.python_version()}, "
        f"numpy {np.__version__}, {platform.machine()}"
    )

    t0 = time.perf_counter()
    simulate(scenario)
    cold = time.perf_counter() - t0
    warm_times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        flows = simulate(scenario)
        warm_times.append(time.perf_counter() - t0)
    warm = statistics.median(warm_times)

    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    load = round_keeping_totals(load_Wh(scenario))
    stages["load (demandlib H0, individualised)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sky = sky_for(scenario)
    stages["sky (solar position, clear sky, clouds)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pv = round_keeping_totals(pv_Wh(scenario, sky))
    stages["PV (transposition, DC, inverter)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dispatch(pv - load, [h.battery for h in scenario.households])
    stages["batteries"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scenario.identities  # noqa: B018  # derive the keys and baselines once
    registers(scenario, flows)
    stages["keys + registers"] = time.perf_counter() - t0

    tracemalloc.start()
    simulate(scenario)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    signing: dict[int, float] = {}
    for processes in [int(p) for p in args.processes.split(",")]:
        t0 = time.perf_counter()
        readings = sign_readings(scenario, flows, DOMAIN, processes=processes)
        signing[processes] = time.perf_counter() - t0
        assert len(readings) == n_readings
        del readings
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    print()
    row = "{:<42s} {:8.3f} s{}"
    print(row.format("generation (simulate), cold", cold, ""))
    runs = ", ".join(f"{t:.3f}" for t in warm_times)
    print(row.format("generation (simulate), warm median", warm, f"   (runs: {runs})"))
    for name, seconds in stages.items():
        print(row.format("  " + name, seconds, ""))
    print(f"{'peak traced memory of one simulate':<42s} {peak / 2**20:8.1f} MiB")
    for processes, seconds in signing.items():
        rate = f"   {n_readings / seconds:,.0f} readings/s"
        print(row.format(f"signing, {processes} process(es)", seconds, rate))
        total = warm + seconds
        rate = f"   {n_readings / total:,.0f} readings/s"
        print(row.format(f"one period generated + signed, {processes} proc.", total, rate))
    print(f"{'process peak RSS (ru_maxrss)':<42s} {rss_kib / 1024:8.1f} MiB")


if __name__ == "__main__":
    main()
