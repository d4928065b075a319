"""A served city as its markets grow: start-up time, memory, and the city view's latency.

For each K, ``voisin serve --markets m01,...,mK`` starts on a fresh data dir (the embedded
chain in its node process and SQLite, or ``--chain URL`` and ``--database-server URL`` for
anvil and a fresh PostgreSQL database). Then each market gets ``--households`` households and
``--slots`` settled slots of signed readings through its API. Prints, per K:

- the start-up time (every market's contract deployed, ``/health`` answering);
- the server process's resident memory (VmRSS) after start-up and after the traffic, and
  that of the processes it started (the chain's node, power-flow workers);
- ``GET /v1/city`` latency over the whole span (median and largest of ``--repeat``).

Usage: ``.venv/bin/python scripts/bench_city_serve.py [--markets 1,5,20] [--households 10]
[--slots 8] [--chain URL --database-server URL]``. Progress goes to stderr, the table to
stdout. Wall-clock on a shared machine: compare within one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from api.process import ServeProcess, ServerStartError
from ledger.readings.eip712 import Reading, domain_separator, sign_reading
from ledger.readings.intake import reading_to_json

TOKEN = "bench-city-operator-token-0123456789"
OP = {"Authorization": f"Bearer {TOKEN}"}
#: Anvil's first dev account (public test mnemonic), the operator with --chain.
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    """Every descendant of ``pid``, from /proc."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            text = (task / "children").read_text().split()
        except OSError:
            continue
        for child in (int(c) for c in text):
            found += [child, *children(child)]
    return found


def memory(server: ServeProcess) -> tuple[float, float]:
    """(the server process's RSS, its descendants' RSS summed), in MiB."""
    assert server.proc is not None
    pid = server.proc.pid
    return rss_mib(pid), sum(rss_mib(c) for c in children(pid))


def fresh_database(server: str) -> str:
    import uuid

    from sqlalchemy import create_engine, text

    name = f"voisin_city_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{server.rstrip('/')}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return f"{server.rstrip('/')}/{name}"


def traffic(http: httpx.Client, market: str, households: int, slots: int) -> int:
    """Register ``households`` in ``market`` (half with PV), send ``slots`` slots of signed
    readings and settle them; the fills."""
    base = f"/markets/{market}"
    chain = http.get(f"{base}/health").json()["chain"]
    domain = domain_separator(int(chain["chain_id"]), chain["contract"])
    meters = []
    for k in range(households):
        meter = Account.create()
        prosumer = k % 2 == 0
        r = http.post(
            f"{base}/v1/households", json={"meter": meter.address, "prosumer": prosumer}, headers=OP
        )
        r.raise_for_status()
        if not prosumer:
            topup = {"household": r.json()["id"], "amount_ueur": 5_000_000}
            http.post(f"{base}/v1/topups", json=topup, headers=OP).raise_for_status()
        meters.append((meter, prosumer))
    first = int(time.time()) // 900 - slots - 2
    for n, slot in enumerate(range(first, first + slots), start=1):
        batch = [
            reading_to_json(
                sign_reading(
                    m.key,
                    Reading(m.address, slot, 0 if pv else 300 * n, 400 * n if pv else 0),
                    domain,
                )
            )
            for m, pv in meters
        ]
        http.post(f"{base}/v1/readings", json={"readings": batch}).raise_for_status()
    fills = 0
    for slot in range(first, first + slots):
        for _ in range(240):
            r = http.post(f"{base}/v1/market/slots/{slot}/settle", headers=OP, timeout=120)
            if r.status_code == 200:
                fills += int(r.json()["fills"])
                break
            time.sleep(0.5)  # its readings are on their way to the chain
        else:
            raise SystemExit(f"bench_city_serve: slot {slot} of {market} never settled: {r.text}")
    return fills


def run(k: int, args: argparse.Namespace) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix=f"voisin-bench-city-{k}-")) / "data"
    markets = [f"m{i + 1:02d}" for i in range(k)]
    env = {
        "VOISIN_OPERATOR_TOKEN": TOKEN,
        "VOISIN_AUTO_SETTLE": "false",
        "VOISIN_MARKETS": ",".join(markets),
    }
    if args.chain:
        env |= {"VOISIN_CHAIN": args.chain, "VOISIN_CHAIN_KEY": ANVIL_KEY}
    if args.database_server:
        env["VOISIN_DATABASE_URL"] = fresh_database(args.database_server)
    server = ServeProcess(data, env, log_path=data.parent / "serve.log", start_timeout_s=900)
    print(f"bench_city_serve: {k} markets, starting (log {server.log_path})", file=sys.stderr)
    started = time.perf_counter()
    try:
        server.start()
    except ServerStartError as exc:
        raise SystemExit(f"bench_city_serve: {exc}") from exc
    start_s = time.perf_counter() - started
    try:
        idle, idle_children = memory(server)
        fills = 0
        with httpx.Client(base_url=server.base_url, timeout=120) as http:
            for market in markets:
                print(f"bench_city_serve: {k} markets, traffic in {market}", file=sys.stderr)
                fills += traffic(http, market, args.households, args.slots)
            busy, busy_children = memory(server)
            latencies = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                http.get("/v1/city", headers=OP).raise_for_status()
                latencies.append(time.perf_counter() - t0)
    finally:
        server.stop(timeout_s=120)
    return {
        "markets": k,
        "start_s": start_s,
        "rss_idle_MiB": idle,
        "children_idle_MiB": idle_children,
        "rss_busy_MiB": busy,
        "children_busy_MiB": busy_children,
        "fills": fills,
        "city_ms_median": 1000 * statistics.median(latencies),
        "city_ms_max": 1000 * max(latencies),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", default="1,5,20", help="city sizes, comma-separated")
    parser.add_argument("--households", type=int, default=10, help="households per market")
    parser.add_argument("--slots", type=int, default=8, help="settled slots per market")
    parser.add_argument("--repeat", type=int, default=10, help="GET /v1/city requests timed")
    parser.add_argument("--chain", help="a JSON-RPC URL (anvil: its first dev key operates)")
    parser.add_argument(
        "--database-server", help="a PostgreSQL server URL without a database (a fresh one each)"
    )
    args = parser.parse_args(argv)
    try:
        sizes = sorted(int(k) for k in args.markets.split(","))
    except ValueError:
        parser.error("--markets takes integers separated by commas")
    if min(sizes) < 1 or args.households < 2 or args.slots < 1 or args.repeat < 1:
        parser.error("--markets at least 1, --households at least 2, --slots and --repeat 1")
    rows = [run(k, args) for k in sizes]
    print(
        f"{'markets':>7} {'start s':>8} {'RSS idle':>9} {'children':>9} {'RSS busy':>9} "
        f"{'children':>9} {'fills':>6} {'city ms p50':>11} {'max':>7}"
    )
    for r in rows:
        print(
            f"{r['markets']:>7} {r['start_s']:>8.1f} {r['rss_idle_MiB']:>9.0f} "
            f"{r['children_idle_MiB']:>9.0f} {r['rss_busy_MiB']:>9.0f} "
            f"{r['children_busy_MiB']:>9.0f} {r['fills']:>6} {r['city_ms_median']:>11.1f} "
            f"{r['city_ms_max']:>7.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
