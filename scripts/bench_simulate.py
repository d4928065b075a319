"""End-to-end wall time, memory, disk and gas of `voisin simulate`, as households and days grow.

Each run is its own `voisin simulate` process (a fresh chain and database in a temporary
output folder). Prints, per run: the run's own `wall_s`, the whole command's wall time, the
peak RSS (the largest child so far, so runs go from small to large), the run's own memory
(the report's ``peak_anon_bytes``: without the pages of mapped files), the data dir's size,
slots, readings, fills, gas, gas per household-slot, and the cost per household and slot (wall
seconds / (households x slots)).

Usage: ``.venv/bin/python scripts/bench_simulate.py [--households 10,100] [--days 1,7]
[--neighbourhoods 1,5,20] [--scenario default|quartierstrom] [--chain embedded,anvil]
[--market real-time,day-ahead] [--agents default,mixed,forecast] [--json out.json]``. The
``quartierstrom`` scenario has its 37 households (``--households`` is ignored).
``--neighbourhoods`` runs cities of K neighbourhoods (``voisin simulate --neighbourhoods K``):
"households" is then the city's total, and the peak RSS the command's largest process.
``--database-server URL`` runs every size as a city (even of one) on PostgreSQL, each in a
fresh database of that server (one schema per neighbourhood), and adds its size to the table.
``--chain`` takes one or more chains,
comma-separated: ``embedded`` (the default), ``anvil`` (a local anvil that each run starts and
stops itself) or a JSON-RPC URL (the operator key then in ``VOISIN_CHAIN_KEY``). With more than
one, each size runs on each chain in turn, in the same invocation, and the table ends with each
chain's speed-up over the first one (its run time divided into the first chain's) and whether
the runs reported the same figures. ``--market`` and ``--agents`` also take comma-separated
lists: each size runs in each market with each agents' mode, and with more than one market or
mode a second table compares them (markets x agents): self-sufficiency, local share of the
surplus, community savings, the clearing price spread and, in the day-ahead market, its
positions, the delivered share, the shortfall, the deviation traded in real time and the gas
per position. Progress of each run goes to stderr.

``--repeat N`` runs the whole grid N times over, round after round, so that a slower spell of
a shared machine falls on every market and chain alike. With more than one market, a last
table gives each market's time as a ratio to the first market's, per round and as the median
of the rounds: the run's wall time and its CPU time (user and system, of the command and the
processes it waited for), which a neighbour's load on the host slows less than the wall clock.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
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
        "peak_anon_bytes",
        "chain",
        "gas_used",
        "gas_seals",
        "gas_per_household_slot",
    }
)


#: The markets and agents' modes ``voisin simulate`` takes.
MARKETS = ("real-time", "day-ahead")
AGENTS = ("default", "mixed", "forecast")


def run(
    households: int,
    days: int,
    chain: str | None,
    scenario: str,
    market: str = "real-time",
    agents: str = "default",
    neighbourhoods: int = 1,
    database_server: str | None = None,
) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix=f"voisin-bench-sim-{households}-"))
    command = [sys.executable, "-m", "api.cli", "simulate", "--scenario", scenario]
    if scenario == "default":
        command += ["--households", str(households)]
    env = os.environ.copy()
    database = None
    if neighbourhoods > 1 or database_server:
        command += ["--neighbourhoods", str(neighbourhoods)]
    if database_server:
        database = _fresh_database(database_server)
        env["VOISIN_DATABASE_URL"] = f"{database_server.rstrip('/')}/{database}"
    command += ["--days", str(days), "--out", str(out)]
    command += ["--market", market, "--agents", agents]
    if chain:
        command += ["--chain", chain]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, stdout=sys.stderr)
    elapsed = time.perf_counter() - start
    database_MiB = _database_MiB(database_server, database) if database_server else 0.0
    if database_server and database:
        _drop_database(database_server, database)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kib = usage.ru_maxrss
    cpu_s = usage.ru_utime + usage.ru_stime - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"bench_simulate: voisin simulate failed for {households} households")
    report = json.loads((out / "report.json").read_text())
    # A month of runs fills gigabytes: the figures are read, the folder goes.
    shutil.rmtree(out, ignore_errors=True)
    households = report["households"]
    return {
        "scenario": scenario,
        "neighbourhoods": neighbourhoods,
        "households": households,
        "days": days,
        "chain": chain or "embedded",
        "market": market,
        "agents": agents,
        "run_s": report["wall_s"],
        "command_s": elapsed,
        "cpu_s": cpu_s,
        # ru_maxrss of children is the largest child so far: each size runs after the smaller.
        "peak_rss_MiB": max(peak_kib, before) / 1024,
        # The run's own memory, without the pages of mapped files (meter_sim.memory); a
        # city's report has none.
        "own_MiB": (report.get("peak_anon_bytes") or 0) / 2**20,
        "slots": report["slots"],
        "readings": report["readings"],
        "fills": report["fills"],
        "gas_used": report["gas_used"],
        "gas_per_household_slot": report["gas_per_household_slot"],
        "disk_MiB": report["disk_bytes"] / 2**20,
        # With PostgreSQL, the city's database beside the data dir (pg_database_size).
        "database_MiB": database_MiB,
        "ms_per_household_slot": 1000 * report["wall_s"] / (households * report["slots"]),
        "audit_ok": report["audit_ok"],
        "self_sufficiency": report["self_sufficiency"],
        "local_share_of_surplus": report["local_share_of_surplus"],
        "community_savings_ueur": report["community_savings_ueur"],
        "price_spread": report.get("clearing_price_spread_ueur_per_kWh"),
        "day_ahead": report.get("day_ahead"),
        "figures": {k: v for k, v in report.items() if k not in CHAIN_SPECIFIC},
    }


def _admin(server: str) -> Any:
    from sqlalchemy import create_engine

    return create_engine(f"{server.rstrip('/')}/postgres", isolation_level="AUTOCOMMIT")


def _fresh_database(server: str) -> str:
    """A new empty database on the PostgreSQL ``server`` (a URL without a database name)."""
    import uuid

    from sqlalchemy import text

    name = f"voisin_bench_{uuid.uuid4().hex[:12]}"
    admin = _admin(server)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return name


def _database_MiB(server: str, name: str) -> float:
    from sqlalchemy import text

    admin = _admin(server)
    try:
        with admin.connect() as conn:
            size = conn.execute(text("SELECT pg_database_size(:n)"), {"n": name}).scalar_one()
    finally:
        admin.dispose()
    return int(size) / 2**20


def _drop_database(server: str, name: str) -> None:
    from sqlalchemy import text

    admin = _admin(server)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def print_markets_table(rows: list[dict[str, Any]]) -> None:
    """The markets x agents comparison: one line per run."""
    print(
        f"{'households':>10} {'days':>4} {'market':>9} {'agents':>8} {'self-suff':>9} "
        f"{'local sh':>8} {'savings EUR':>11} {'price min-max ct':>16} {'positions':>9} "
        f"{'delivered':>9} {'short kWh':>9} {'RT kWh':>8} {'gas/pos':>8} {'audit':>5}"
    )
    for r in rows:
        spread = r["price_spread"] or {}
        low, high = spread.get("min"), spread.get("max")
        prices = "n/a" if low is None or high is None else f"{low / 1e4:.1f}-{high / 1e4:.1f}"
        da = r["day_ahead"]
        ahead = (
            f"{da['positions']:>9} {_pct(da['delivered_share']):>9} "
            f"{da['shortfall_Wh'] / 1000:>9.1f} {da['real_time_Wh'] / 1000:>8.1f} "
            f"{da['gas_per_position'] or 0:>8,}"
            if da
            else f"{'-':>9} {'-':>9} {'-':>9} {'-':>8} {'-':>8}"
        )
        print(
            f"{r['households']:>10} {r['days']:>4} {r['market']:>9} {r['agents']:>8} "
            f"{_pct(r['self_sufficiency']):>9} {_pct(r['local_share_of_surplus']):>8} "
            f"{r['community_savings_ueur'] / 1e6:>11.2f} {prices:>16} {ahead} "
            f"{'ok' if r['audit_ok'] else 'FAIL':>5}"
        )


def print_market_ratios(rows: list[dict[str, Any]], markets: list[str]) -> None:
    """Each market's run time and CPU time over the first market's, per round and median."""
    first = markets[0]
    groups: dict[tuple[Any, ...], dict[int, dict[str, dict[str, Any]]]] = {}
    for r in rows:
        key = (r["households"], r["days"], r["chain"], r["agents"])
        groups.setdefault(key, {}).setdefault(r["round"], {})[r["market"]] = r
    for (n, d, chain, agents), rounds in groups.items():
        for market in markets[1:]:
            pairs = [
                (by[market], by[first])
                for _, by in sorted(rounds.items())
                if market in by and first in by
            ]
            if not pairs:
                continue
            wall = [a["run_s"] / b["run_s"] for a, b in pairs]
            cpu = [a["cpu_s"] / b["cpu_s"] for a, b in pairs if b["cpu_s"]]
            each = ", ".join(
                f"{a['run_s']:.1f}/{b['run_s']:.1f} s = {ratio:.2f}x"
                for (a, b), ratio in zip(pairs, wall, strict=True)
            )
            line = (
                f"{n} households, {d} days, {chain}, {agents}: {market} over {first}, "
                f"run time {statistics.median(wall):.2f}x (median of {len(wall)}: {each})"
            )
            if cpu:
                line += (
                    f"; CPU time {statistics.median(cpu):.2f}x ("
                    + ", ".join(f"{x:.2f}x" for x in cpu)
                    + ")"
                )
            print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", default="10,100", help="sizes, comma-separated")
    parser.add_argument("--days", default="1", help="days, comma-separated")
    parser.add_argument(
        "--neighbourhoods",
        default="1",
        help="cities of K neighbourhoods of --households each, comma-separated (default 1)",
    )
    parser.add_argument("--scenario", default="default", choices=("default", "quartierstrom"))
    parser.add_argument(
        "--chain",
        default="embedded",
        help="chains, comma-separated: embedded (default), anvil or a JSON-RPC URL",
    )
    parser.add_argument(
        "--market", default="real-time", help="markets, comma-separated: real-time, day-ahead"
    )
    parser.add_argument(
        "--agents",
        default="default",
        help="agents' modes, comma-separated: default, mixed, forecast",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of the whole grid, one after another"
    )
    parser.add_argument(
        "--database-server",
        metavar="URL",
        help=(
            "a PostgreSQL server (postgresql+psycopg://user@host:port, no database): each run "
            "is a city (even of one) with its neighbourhoods' schemas in a fresh database there, "
            "dropped after the run; the table then says the database's size"
        ),
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    markets = [m.strip() for m in args.market.split(",") if m.strip()]
    modes = [a.strip() for a in args.agents.split(",") if a.strip()]
    if not markets or any(m not in MARKETS for m in markets):
        parser.error(f"--market takes one or more of {', '.join(MARKETS)}")
    if not modes or any(a not in AGENTS for a in modes):
        parser.error(f"--agents takes one or more of {', '.join(AGENTS)}")
    try:
        sizes = sorted(int(n) for n in args.households.split(","))
        days = sorted(int(n) for n in args.days.split(","))
        cities = sorted(int(n) for n in args.neighbourhoods.split(","))
    except ValueError:
        parser.error(
            "--households, --days and --neighbourhoods must be integers separated by commas"
        )
    if min(cities) < 1 or (max(cities) > 1 and args.scenario != "default"):
        parser.error("--neighbourhoods: at least 1, and above 1 only with the default scenario")
    if args.scenario == "quartierstrom":
        sizes = [37]
    if min(sizes) < 1 or min(days) < 1:
        parser.error("sizes and days must be at least 1")
    chains = [c.strip() for c in args.chain.split(",") if c.strip()]
    if not chains:
        parser.error("--chain names no chain")
    rows = [
        run(
            n,
            d,
            None if chain == "embedded" else chain,
            args.scenario,
            market,
            mode,
            k,
            args.database_server,
        )
        | {"round": round_}
        for round_ in range(1, args.repeat + 1)
        for k in cities
        for n in sizes
        for d in days
        for market in markets
        for mode in modes
        for chain in chains
    ]
    # The chain column is as wide as its longest entry: a node's URL is shown whole.
    w = max(9, *(len(r["chain"]) for r in rows))
    print(
        f"{'nbhds':>5} {'households':>10} {'days':>4} {'chain':>{w}} {'market':>9} {'agents':>8} "
        f"{'run s':>8} {'command s':>9} "
        f"{'peak MiB':>9} {'own MiB':>8} {'disk MiB':>8} {'readings':>9} {'fills':>7} {'gas':>13} "
        f"{'gas/hh-slot':>11} {'ms/hh-slot':>10} {'cpu s':>8} {'audit':>5}"
        + (f" {'db MiB':>8}" if args.database_server else "")
    )
    for r in rows:
        print(
            f"{r['neighbourhoods']:>5} {r['households']:>10} {r['days']:>4} {r['chain']:>{w}} "
            f"{r['market']:>9} "
            f"{r['agents']:>8} {r['run_s']:>8.1f} "
            f"{r['command_s']:>9.1f} {r['peak_rss_MiB']:>9.0f} {r['own_MiB']:>8.0f} "
            f"{r['disk_MiB']:>8.1f} "
            f"{r['readings']:>9} {r['fills']:>7} {r['gas_used']:>13,} "
            f"{r['gas_per_household_slot']:>11,} {r['ms_per_household_slot']:>10.2f} "
            f"{r['cpu_s']:>8.1f} {'ok' if r['audit_ok'] else 'FAIL':>5}"
            + (f" {r['database_MiB']:>8.1f}" if args.database_server else "")
        )
    if len(markets) > 1 or len(modes) > 1:
        print()
        print_markets_table([r for r in rows if r["chain"] == rows[0]["chain"] and r["round"] == 1])
    if len(markets) > 1:
        print()
        print_market_ratios(rows, markets)
    if len(chains) > 1:
        print()
        for k, n, d, m, a in (
            (k, n, d, m, a)
            for k in range(1, args.repeat + 1)
            for n in sizes
            for d in days
            for m in markets
            for a in modes
        ):
            same_size = [
                r
                for r in rows
                if (r["round"], r["households"], r["days"], r["market"], r["agents"])
                == (k, n, d, m, a)
            ]
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
                    (f"round {k}: " if args.repeat > 1 else "")
                    + f"{n} households, {d} days, {m}, {a}: {r['chain']} is {ratio:.2f}x "
                    f"as fast as {first['chain']} "
                    f"(run {first['run_s']:.1f} s / {r['run_s']:.1f} s; whole command "
                    f"{command:.2f}x); same report figures: "
                    + ("yes" if not differ else "NO, " + ", ".join(differ))
                )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
