"""End-to-end wall time, memory, disk and gas of `voisin simulate`, as households and days grow.

Each run is its own `voisin simulate` process (a fresh chain and database in a temporary
output folder). Prints, per run: the run's own `wall_s`, the whole command's wall time, the
peak RSS (the largest child so far, so runs go from small to large), the data dir's size,
slots, readings, fills, gas, gas per household-slot, and the cost per household and slot (wall
seconds / (households x slots)).

Usage: ``.venv/bin/python scripts/bench_simulate.py [--households 10,100] [--days 1,7]
[--scenario default|quartierstrom] [--chain embedded,anvil] [--json out.json]``. The
``quartierstrom`` scenario has its 37 households (``--households`` is ignored).
``--chain`` takes one or more chains,
comma-separated: ``embedded`` (the default), ``anvil`` (a local anvil that each run starts and
stops itself) or a JSON-RPC URL (the operator key then in ``VOISIN_CHAIN_KEY``). With more than
one, each size runs on each chain in turn, in the same invocation, and the table ends with each
chain's speed-up over the first one (its run time divided into the first chain's) and whether
the runs reported the same figures. Progress of each run goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


#: Report fields that do not have to match between chains: the run's time and resources, the
#: chain's name, and the seals' gas, whose calldata is a digest over block numbers and
#: transaction hashes (a zero byte of calldata costs 4 gas, another 16).
CHAIN_SPECIFIC = frozenset(
    {
        "wall_s",
        "disk_bytes",
        "peak_rss_bytes",
        "chain",
        "gas_used",
        "gas_seals",
        "gas_per_household_slot",
    }
)


def run(households: int, days: int, chain: str | None, scenario: str) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix=f"voisin-bench-sim-{households}-"))
    command = [sys.executable, "-m", "api.cli", "simulate", "--scenario", scenario]
    if scenario == "default":
        command += ["--households", str(households)]
    command += ["--days", str(days), "--out", str(out)]
    if chain:
        command += ["--chain", chain]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=os.environ.copy(), stdout=sys.stderr)
    elapsed = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        raise SystemExit(f"bench_simulate: voisin simulate failed for {households} households")
    report = json.loads((out / "report.json").read_text())
    # A month of runs fills gigabytes: the figures are read, the folder goes.
    shutil.rmtree(out, ignore_errors=True)
    households = report["households"]
    return {
        "scenario": scenario,
        "households": households,
        "days": days,
        "chain": chain or "embedded",
        "run_s": report["wall_s"],
        "command_s": elapsed,
        # ru_maxrss of children is the largest child so far: each size runs after the smaller.
        "peak_rss_MiB": max(peak_kib, before) / 1024,
        "slots": report["slots"],
        "readings": report["readings"],
        "fills": report["fills"],
        "gas_used": report["gas_used"],
        "gas_per_household_slot": report["gas_per_household_slot"],
        "disk_MiB": report["disk_bytes"] / 2**20,
        "ms_per_household_slot": 1000 * report["wall_s"] / (households * report["slots"]),
        "audit_ok": report["audit_ok"],
        "figures": {k: v for k, v in report.items() if k not in CHAIN_SPECIFIC},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", default="10,100", help="sizes, comma-separated")
    parser.add_argument("--days", default="1", help="days, comma-separated")
    parser.add_argument("--scenario", default="default", choices=("default", "quartierstrom"))
    parser.add_argument(
        "--chain",
        default="embedded",
        help="chains, comma-separated: embedded (default), anvil or a JSON-RPC URL",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    try:
        sizes = sorted(int(n) for n in args.households.split(","))
        days = sorted(int(n) for n in args.days.split(","))
    except ValueError:
        parser.error("--households and --days must be integers separated by commas")
    if args.scenario == "quartierstrom":
        sizes = [37]
    if min(sizes) < 1 or min(days) < 1:
        parser.error("sizes and days must be at least 1")
    chains = [c.strip() for c in args.chain.split(",") if c.strip()]
    if not chains:
        parser.error("--chain names no chain")
    rows = [
        run(n, d, None if chain == "embedded" else chain, args.scenario)
        for n in sizes
        for d in days
        for chain in chains
    ]
    # The chain column is as wide as its longest entry: a node's URL is shown whole.
    w = max(9, *(len(r["chain"]) for r in rows))
    print(
        f"{'households':>10} {'days':>4} {'chain':>{w}} {'run s':>8} {'command s':>9} "
        f"{'peak MiB':>9} {'disk MiB':>8} {'readings':>9} {'fills':>7} {'gas':>13} "
        f"{'gas/hh-slot':>11} {'ms/hh-slot':>10} {'audit':>5}"
    )
    for r in rows:
        print(
            f"{r['households']:>10} {r['days']:>4} {r['chain']:>{w}} {r['run_s']:>8.1f} "
            f"{r['command_s']:>9.1f} {r['peak_rss_MiB']:>9.0f} {r['disk_MiB']:>8.1f} "
            f"{r['readings']:>9} {r['fills']:>7} {r['gas_used']:>13,} "
            f"{r['gas_per_household_slot']:>11,} {r['ms_per_household_slot']:>10.2f} "
            f"{'ok' if r['audit_ok'] else 'FAIL':>5}"
        )
    if len(chains) > 1:
        print()
        for n, d in ((n, d) for n in sizes for d in days):
            same_size = [r for r in rows if (r["households"], r["days"]) == (n, d)]
            first = same_size[0]
            for r in same_size[1:]:
                ratio = first["run_s"] / r["run_s"] if r["run_s"] else float("inf")
                command = first["command_s"] / r["command_s"] if r["command_s"] else float("inf")
                differ = sorted(
                    k
                    for k in first["figures"].keys() | r["figures"].keys()
                    if first["figures"].get(k) != r["figures"].get(k)
                )
                r["speedup_over_first"] = ratio
                r["figures_differ"] = differ
                print(
                    f"{n} households, {d} days: {r['chain']} is {ratio:.2f}x as fast as "
                    f"{first['chain']} "
                    f"(run {first['run_s']:.1f} s / {r['run_s']:.1f} s; whole command "
                    f"{command:.2f}x); same report figures: "
                    + ("yes" if not differ else "NO, " + ", ".join(differ))
                )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
