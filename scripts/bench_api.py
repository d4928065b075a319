"""API benchmark: readings ingested per second, and balance latency under concurrent clients.

Starts ``voisin serve`` (embedded chain, SQLite) in a temporary data dir on a loopback port,
registers households, signs readings for them, then:

1. **ingest**: N concurrent clients POST /readings (one reading per request, and batches of
   ``--batch`` readings per request) until every reading is answered; readings/s counts the
   readings answered 202 (stored durably) per second of wall time;
2. **balance**: N concurrent clients GET /households/{id}/balance for ``--seconds`` seconds,
   back to back and then paced (``--pause`` seconds between requests, each client on its own
   random phase); p50, p99 and max latency per request.

Usage: ``.venv/bin/python scripts/bench_api.py [--clients 1,10,50] [--households 50]
[--readings 2000] [--batch 50] [--seconds 10] [--workers N] [--json out.json]``. With
``--workers N`` the server is ``voisin serve --workers N`` (an anvil ``--chain`` and a
PostgreSQL ``--database-url``). With ``--markets K`` it serves a city of K markets and the
households are spread over them (readings and balances at ``/markets/<name>/...``).
Progress goes to stderr, the tables to stdout. Times are wall-clock on a shared machine:
compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
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

TOKEN = "bench-operator-token-0123456789abcdef"
#: Anvil's first dev account (public test mnemonic), used as operator with --chain.
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def start_server(
    data_dir: Path,
    outbox_interval: float,
    chain: str | None,
    database_url: str | None,
    chain_process: bool = True,
    workers: int = 1,
    markets: tuple[str, ...] = (),
) -> ServeProcess:
    """``voisin serve`` on a free loopback port, up and answering; its log in ``serve.log``
    beside ``data_dir``. ``chain`` is an anvil URL (its first dev key is the operator)."""
    env = {
        "VOISIN_OPERATOR_TOKEN": TOKEN,
        "VOISIN_AUTO_SETTLE": "false",
        "VOISIN_OUTBOX_INTERVAL_S": str(outbox_interval),
        "VOISIN_CHAIN_PROCESS": "true" if chain_process else "false",
    }
    if chain:
        env["VOISIN_CHAIN"] = chain
        env["VOISIN_CHAIN_KEY"] = ANVIL_KEY
    if database_url:
        env["VOISIN_DATABASE_URL"] = database_url
    if markets:
        env["VOISIN_MARKETS"] = ",".join(markets)
    server = ServeProcess(data_dir, env, log_path=data_dir.parent / "serve.log", workers=workers)
    try:
        return server.start()
    except ServerStartError as exc:
        raise SystemExit(f"bench_api: {exc}") from exc


def batches(
    stream: list[tuple[str, dict[str, Any]]], per_request: int
) -> list[tuple[str, dict[str, Any]]]:
    """A client's readings (each with its market's prefix) as request bodies of at most
    ``per_request`` readings, each of one market, each meter's readings in slot order."""
    by_market: dict[str, list[dict[str, Any]]] = {}
    for prefix, reading in stream:
        by_market.setdefault(prefix, []).append(reading)
    return [
        (prefix, {"readings": readings[i : i + per_request]})
        for prefix, readings in by_market.items()
        for i in range(0, len(readings), per_request)
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def ingest(
    base: str, per_client: list[list[tuple[str, dict[str, Any]]]]
) -> tuple[float, int, int, int]:
    """Each client posts its own bodies in order (its meters' readings, slot by slot), all
    clients at once; returns (seconds, readings answered 202, failed requests, retries).

    Each client holds one keep-alive connection and speaks HTTP/1.1 on an asyncio stream, as
    the balance clients do (:func:`balances`), so that this process's own cost per request
    stays small beside the server's. The bodies are encoded before the clock starts."""
    accepted = errors = retries = 0
    host, port = base.removeprefix("http://").split(":")

    def request(prefix: str, body: dict[str, Any]) -> bytes:
        payload = json.dumps(body).encode()
        head = (
            f"POST {prefix}/readings HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        return head.encode() + payload

    async def worker(requests: list[bytes]) -> None:
        nonlocal accepted, errors, retries
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for raw in requests:
                for attempt in range(5):
                    try:
                        writer.write(raw)
                        status, answer = await read_response(reader)
                        break
                    except (ConnectionError, asyncio.IncompleteReadError):
                        # A reset connection: send again, as a meter gateway would (idempotent).
                        retries += 1
                        writer.close()
                        await asyncio.sleep(0.05 * 2**attempt)
                        reader, writer = await asyncio.open_connection(host, int(port))
                else:
                    errors += 1
                    continue
                if status == 202:
                    accepted += json.loads(answer)["accepted"]
                else:
                    errors += 1
        finally:
            writer.close()

    encoded = [[request(prefix, body) for prefix, body in bodies] for bodies in per_client]
    start = time.perf_counter()
    await asyncio.gather(*(worker(requests) for requests in encoded))
    return time.perf_counter() - start, accepted, errors, retries


async def balances(
    base: str, members: list[tuple[int, str, str]], clients: int, seconds: float, pause: float
) -> tuple[list[float], int]:
    """Each client asks for a balance, waits ``pause`` seconds, and again (0: back to back).

    Paced clients start at random moments within the first pause and wait ``pause`` plus or
    minus 10 % between requests, as household apps polling on their own clocks do (started
    together and kept in step, 50 clients would arrive as one burst every pause).

    Each client holds one keep-alive connection and speaks HTTP/1.1 directly on an asyncio
    stream: a full HTTP client library costs about a millisecond of this process's time per
    request, which on a shared 2-core machine would be measured as server latency.
    """
    latencies: list[float] = []
    errors = 0
    host, port = base.removeprefix("http://").split(":")
    stop = time.monotonic() + seconds
    rng = random.Random(7)

    async def worker(k: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        if pause:
            await asyncio.sleep(rng.uniform(0, pause))
        i = k
        try:
            while time.monotonic() < stop:
                household, token, prefix = members[i % len(members)]
                i += clients
                request = (
                    f"GET {prefix}/households/{household}/balance HTTP/1.1\r\nHost: {host}\r\n"
                    f"Authorization: Bearer {token}\r\n\r\n"
                ).encode()
                start = time.perf_counter()
                writer.write(request)
                status, _body = await read_response(reader)
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    errors += 1
                if pause:
                    await asyncio.sleep(pause * rng.uniform(0.9, 1.1))
        finally:
            writer.close()

    await asyncio.gather(*(worker(k) for k in range(clients)))
    return latencies, errors


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length body (what uvicorn sends for JSON)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, await reader.readexactly(length)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,10,50")
    parser.add_argument("--households", type=int, default=50)
    parser.add_argument("--readings", type=int, default=2000, help="readings per ingest run")
    parser.add_argument("--batch", type=int, default=50, help="readings per request (batched run)")
    parser.add_argument("--seconds", type=float, default=10, help="length of each balance run")
    parser.add_argument(
        "--outbox-interval",
        type=float,
        default=0.5,
        help="seconds between outbox passes in the server (60 = nearly idle)",
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=0.5,
        help="seconds each balance client waits between requests in the paced runs",
    )
    parser.add_argument("--chain", help="JSON-RPC URL of an anvil node (default: embedded)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in the data dir)")
    parser.add_argument(
        "--chain-process",
        choices=("yes", "no", "both"),
        default="yes",
        help="embedded chain in its own node process (yes, the default of voisin serve), "
        "inside the API process (no), or both one after the other in this run",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="voisin serve --workers N (above 1: needs --chain and a PostgreSQL --database-url)",
    )
    parser.add_argument(
        "--markets",
        type=int,
        default=0,
        help="serve a city of K markets (m01, m02, ...) and spread the households over them "
        "(default 0: one market at the root)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.markets < 0:
        parser.error("--markets must be 0 or more")
    if args.workers > 1 and not (args.chain and args.database_url):
        parser.error("--workers above 1 needs --chain and a PostgreSQL --database-url")
    clients = [int(c) for c in args.clients.split(",")]
    if min(clients) < 1 or args.households < 1 or args.readings < 1 or args.batch < 1:
        parser.error("counts must be positive")
    modes = {"yes": [True], "no": [False], "both": [True, False]}[args.chain_process]
    rows: list[dict[str, Any]] = []
    for chain_process in modes:
        if not args.chain:
            where = "its own node process" if chain_process else "the API process"
            print(f"\n## embedded chain in {where} (VOISIN_CHAIN_PROCESS={chain_process})\n")
        for row in bench_server(args, clients, chain_process):
            rows.append(
                {
                    **row,
                    "chain_process": chain_process,
                    "workers": args.workers,
                    "markets": args.markets,
                }
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def bench_server(
    args: argparse.Namespace, clients: list[int], chain_process: bool
) -> list[dict[str, Any]]:
    """One server, the ingest runs then the balance runs; the table rows, printed as they come."""
    data_dir = Path(tempfile.mkdtemp(prefix="voisin-bench-api-")) / "data"
    print(f"bench_api: starting voisin serve (data {data_dir})", file=sys.stderr)
    markets = tuple(f"m{k + 1:02d}" for k in range(args.markets))
    server = start_server(
        data_dir,
        args.outbox_interval,
        args.chain,
        args.database_url,
        chain_process,
        args.workers,
        markets,
    )
    base = server.base_url
    rows: list[dict[str, Any]] = []
    try:
        op = {"Authorization": f"Bearer {TOKEN}"}
        meters = [Account.create() for _ in range(args.households)]
        # Each meter's market (its path prefix): household i in market i mod K.
        prefixes = [f"/markets/{m}" for m in markets] or [""]
        prefix_of = {m.address: prefixes[i % len(prefixes)] for i, m in enumerate(meters)}
        members: list[tuple[int, str, str]] = []
        domains: dict[str, bytes] = {}
        with httpx.Client(base_url=base, timeout=60) as http:
            for m in meters:
                prefix = prefix_of[m.address]
                r = http.post(
                    f"{prefix}/households", json={"meter": m.address, "prosumer": True}, headers=op
                )
                r.raise_for_status()
                members.append((r.json()["id"], r.json()["token"], prefix))
            for prefix in prefixes:
                chain = http.get(f"{prefix}/health").json()["chain"]
                domains[prefix] = domain_separator(int(chain["chain_id"]), chain["contract"])
        print(
            f"bench_api: registered {len(members)} households in {len(prefixes)} market(s)",
            file=sys.stderr,
        )

        # Each run uses fresh slots: every reading is new, so each one is stored.
        next_slot = int(time.time()) // 900 - 20_000
        registers = {m.address: 0 for m in meters}
        runs = [(c, 1) for c in clients] + [(c, args.batch) for c in clients]
        print(
            f"{'clients':>7} {'readings/req':>12} {'readings':>9} {'seconds':>8} "
            f"{'readings/s':>11} {'errors':>6} {'retries':>7}"
        )
        for c, per_request in runs:
            per_meter = -(-args.readings // len(meters))
            # Client j sends for meters j, j + c, ... (a meter's readings go out in slot order,
            # as a real meter or gateway sends them).
            streams: list[list[tuple[str, dict[str, Any]]]] = [
                [] for _ in range(min(c, len(meters)))
            ]
            for k in range(per_meter):
                slot = next_slot + k
                for i, m in enumerate(meters):
                    registers[m.address] += 10
                    total = registers[m.address]
                    prefix = prefix_of[m.address]
                    reading = Reading(m.address, slot, total, total)
                    s = sign_reading(m.key, reading, domains[prefix])
                    streams[i % len(streams)].append((prefix, reading_to_json(s)))
            next_slot += per_meter
            per_client = [batches(stream, per_request) for stream in streams]
            total_readings = sum(len(stream) for stream in streams)
            print(
                f"bench_api: ingest {total_readings} readings, {c} clients, {per_request}/request",
                file=sys.stderr,
            )
            seconds, accepted, errors, retries = asyncio.run(ingest(base, per_client))
            print(
                f"{c:>7} {per_request:>12} {accepted:>9} {seconds:>8.2f} "
                f"{accepted / seconds:>11.0f} {errors:>6} {retries:>7}"
            )
            rows.append(
                {
                    "run": "ingest",
                    "clients": c,
                    "per_request": per_request,
                    "readings": accepted,
                    "seconds": seconds,
                    "errors": errors,
                    "retries": retries,
                }
            )

        print()
        print(
            f"{'clients':>7} {'pause s':>7} {'requests':>9} {'req/s':>7} {'p50 ms':>7} "
            f"{'p99 ms':>7} {'max ms':>7} {'errors':>6}"
        )
        for c, pause in [(c, 0.0) for c in clients] + [(c, args.pause) for c in clients]:
            print(
                f"bench_api: balance, {c} clients, pause {pause} s, {args.seconds} s",
                file=sys.stderr,
            )
            lat, errors = asyncio.run(balances(base, members, c, args.seconds, pause))
            p50, p99 = percentile(lat, 0.50) * 1000, percentile(lat, 0.99) * 1000
            print(
                f"{c:>7} {pause:>7.2f} {len(lat):>9} {len(lat) / args.seconds:>7.0f} {p50:>7.1f} "
                f"{p99:>7.1f} {max(lat) * 1000:>7.1f} {errors:>6}"
            )
            rows.append(
                {
                    "run": "balance",
                    "pause_s": pause,
                    "clients": c,
                    "requests": len(lat),
                    "p50_ms": p50,
                    "p99_ms": p99,
                    "max_ms": max(lat) * 1000,
                    "mean_ms": statistics.mean(lat) * 1000,
                    "errors": errors,
                }
            )
    finally:
        server.stop(timeout_s=60)
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
