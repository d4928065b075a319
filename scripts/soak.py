"""Soak test: a bounded mixed load on a local ``voisin serve`` for a fixed duration.

Starts ``voisin serve`` (embedded chain, SQLite, loopback only) in a temporary data dir, with
scripts/bench_api.py's launcher, registers households, and then for ``--duration`` seconds runs
four paced lanes at once:

- **readings**: every ``--reading-interval`` seconds, one request with the next slot's signed
  reading of every meter (each household imports and exports every slot);
- **orders**: ``--order-rate`` per second, a household posts a one-off bid, and every other
  time cancels the bid it posted before;
- **takes**: ``--take-rate`` per second, a household buys a few Wh from another's standing
  offer, for a slot whose readings of both are on chain (the read lane learns which), never
  more than the slot's export and import (so no take can run out: none should fail);
- **reads**: ``--read-rate`` per second, a balance, the open offers, the trades or the health.

Each lane waits for its answer before the next request, so the load is bounded whatever the
server's speed. It prints the throughput, p50/p99/max latency per lane, the answers counted by
status, and the server's resident memory (RSS, and its anonymous part: the embedded chain's
LMDB map is file-backed and counted in RSS as its pages are touched) sampled every 5 s, with
the growth from the end of the warm-up (the first 10 % of the run, at least 30 s) to the end.

Usage: ``scripts/soak --duration 600 [--households 20] [--json out.json]``; with
``--chain URL --database-url URL`` the server runs on a JSON-RPC node (anvil: its first dev key
is the operator) and that database instead, so the server's memory is the API's alone.
Progress goes to stderr, the report to stdout. The exit status is 1 if any answer was an
error other than 429.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_api import TOKEN, percentile, start_server

from ledger.readings.eip712 import Reading, domain_separator, sign_reading
from ledger.readings.intake import reading_to_json

OP = {"Authorization": f"Bearer {TOKEN}"}
#: Wh each household imports and exports per slot, and Wh bought per take.
PER_SLOT_WH = 500
TAKE_WH = 5
#: Price of the standing offers and the bids (ueur/kWh), inside the default tariff band.
PRICE = 80_000


@dataclass
class Household:
    id: int
    token: str
    meter: LocalAccount
    offer: int = 0
    registers_Wh: int = 0
    committed_slot: int = 0
    last_bid: int | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (t, rss kB, anon kB)

    def record(self, lane: str, seconds: float, status: str) -> None:
        self.latencies[lane].append(seconds)
        self.statuses[lane][status] += 1


def rss_kB(pid: int) -> tuple[int, int]:
    """Resident memory of ``pid`` (VmRSS, RssAnon) in kB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["RssAnon"]


class Soak:
    def __init__(self, http: httpx.AsyncClient, households: list[Household], args: Any) -> None:
        self.http = http
        self.households = households
        self.args = args
        self.stats = Stats()
        self.rng = random.Random(args.seed)
        self.slot = 0  # the last slot whose readings were sent
        self.first_slot = 0
        #: Wh reserved per (seller, slot) and (buyer, slot) by takes sent.
        self.sold: Counter[tuple[int, int]] = Counter()
        self.bought: Counter[tuple[int, int]] = Counter()
        self.stop_at = 0.0

    async def call(self, lane: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        start = time.perf_counter()
        try:
            r = await self.http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            self.stats.record(lane, time.perf_counter() - start, f"transport:{type(exc).__name__}")
            return None
        self.stats.record(lane, time.perf_counter() - start, str(r.status_code))
        if r.status_code >= 400 and r.status_code != 429:
            print(f"soak: {lane} {method} {url}: {r.status_code} {r.text[:300]}", file=sys.stderr)
        return r

    async def paced(self, interval: float, step: Any) -> None:
        """Run ``step`` every ``interval`` seconds (or back to back when it takes longer)."""
        next_at = time.monotonic()
        while time.monotonic() < self.stop_at:
            await step()
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    # ───────────────────────────── Lanes ─────────────────────────────

    async def readings(self) -> None:
        self.slot += 1
        body = []
        for h in self.households:
            h.registers_Wh += PER_SLOT_WH
            reading = Reading(h.meter.address, self.slot, h.registers_Wh, h.registers_Wh)
            body.append(reading_to_json(sign_reading(h.meter.key, reading, self.domain)))
        await self.call("readings", "POST", "/readings", json={"readings": body})

    async def orders(self) -> None:
        h = self.rng.choice(self.households)
        if h.last_bid is not None:
            bid, h.last_bid = h.last_bid, None
            await self.call("orders", "DELETE", f"/bids/{bid}", headers=h.auth)
            return
        first = self.slot + self.rng.randint(1, 50)
        body = {
            "price_limit_ueur_per_kWh": self.rng.randint(50_000, 150_000),
            "first_slot": first,
            "last_slot": first + self.rng.randint(0, 4),
            "max_Wh_per_slot": self.rng.randint(10, 1000),
        }
        r = await self.call("orders", "POST", "/bids", json=body, headers=h.auth)
        if r is not None and r.status_code == 202:
            h.last_bid = r.json()["id"]

    async def takes(self) -> None:
        seller, buyer = self.rng.sample(self.households, 2)
        ready = min(seller.committed_slot, buyer.committed_slot)
        # A slot whose readings of both are on chain, with room left for one more take.
        candidates = [
            s
            for s in range(max(self.first_slot, ready - 20), ready + 1)
            if self.sold[(seller.id, s)] + TAKE_WH <= PER_SLOT_WH
            and self.bought[(buyer.id, s)] + TAKE_WH <= PER_SLOT_WH
        ]
        if ready < self.first_slot or not candidates:
            return
        slot = self.rng.choice(candidates)
        self.sold[(seller.id, slot)] += TAKE_WH
        self.bought[(buyer.id, slot)] += TAKE_WH
        await self.call(
            "takes",
            "POST",
            f"/offers/{seller.offer}/take",
            json={"slot": slot, "max_Wh": TAKE_WH},
            headers=buyer.auth,
        )

    async def reads(self) -> None:
        h = self.rng.choice(self.households)
        kind = self.rng.randrange(4)
        if kind == 0:
            r = await self.call("reads", "GET", f"/households/{h.id}/balance", headers=h.auth)
            if r is not None and r.status_code == 200:
                credits = r.json()["credits"]
                if credits:
                    h.committed_slot = max(h.committed_slot, credits[-1]["slot"])
        elif kind == 1:
            await self.call("reads", "GET", "/offers?status=open&limit=50", headers=h.auth)
        elif kind == 2:
            await self.call("reads", "GET", f"/trades?household={h.id}&limit=50", headers=OP)
        else:
            await self.call("reads", "GET", "/health")

    async def memory(self, pid: int, started: float) -> None:
        while time.monotonic() < self.stop_at:
            rss, anon = rss_kB(pid)
            self.stats.samples.append((time.monotonic() - started, rss, anon))
            await asyncio.sleep(5)

    async def run(self, pid: int, domain: bytes, first_slot: int) -> float:
        self.domain = domain
        self.first_slot = first_slot
        self.slot = first_slot - 1  # readings() sends first_slot first
        started = time.monotonic()
        self.stop_at = started + self.args.duration
        a = self.args
        lanes = [
            self.paced(a.reading_interval, self.readings),
            self.paced(1 / a.order_rate, self.orders),
            self.paced(1 / a.take_rate, self.takes),
            self.paced(1 / a.read_rate, self.reads),
            self.memory(pid, started),
        ]
        await asyncio.gather(*lanes)
        return time.monotonic() - started


async def setup(http: httpx.AsyncClient, n: int, first_slot: int) -> list[Household]:
    households = []
    for _ in range(n):
        meter: LocalAccount = Account.create()
        r = await http.post(
            "/households", json={"meter": meter.address, "prosumer": True}, headers=OP
        )
        r.raise_for_status()
        h = Household(r.json()["id"], r.json()["token"], meter)
        t = await http.post("/topups", json={"household": h.id, "amount_ueur": 10**11}, headers=OP)
        t.raise_for_status()
        o = await http.post(
            "/offers",
            json={"price_limit_ueur_per_kWh": PRICE, "first_slot": first_slot},
            headers=h.auth,
        )
        o.raise_for_status()
        h.offer = o.json()["id"]
        households.append(h)
    # Takes need the standing offers on chain: the outbox posts them within a few passes.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        r = await http.get("/offers?status=open&limit=500", headers=OP)
        open_ids = {o["id"] for o in r.json()["items"]}
        backlog = (await http.get("/health")).json()["backlog"]
        # Start from a drained outbox (registration queues each agent's standing orders).
        if all(h.offer in open_ids for h in households) and not any(backlog.values()):
            return households
        await asyncio.sleep(0.5)
    raise SystemExit(
        "soak: the standing offers did not open (or the outbox did not drain) within 120 s"
    )


def report(stats: Stats, seconds: float, warmup_s: float) -> dict[str, Any]:
    lanes = {}
    head = f"{'lane':<9} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    print(f"{head}  statuses")
    total = 0
    for lane in ("readings", "orders", "takes", "reads"):
        lat = stats.latencies.get(lane, [])
        total += len(lat)
        row = {
            "requests": len(lat),
            "per_s": len(lat) / seconds,
            "p50_ms": percentile(lat, 0.50) * 1000 if lat else 0.0,
            "p99_ms": percentile(lat, 0.99) * 1000 if lat else 0.0,
            "max_ms": max(lat) * 1000 if lat else 0.0,
            "statuses": dict(sorted(stats.statuses[lane].items())),
        }
        lanes[lane] = row
        print(
            f"{lane:<9} {row['requests']:>8} {row['per_s']:>7.1f} {row['p50_ms']:>8.1f} "
            f"{row['p99_ms']:>8.1f} {row['max_ms']:>8.1f}  {row['statuses']}"
        )
    every = Counter[str]()
    for counts in stats.statuses.values():
        every.update(counts)
    errors = {s: n for s, n in every.items() if not s.startswith("2") and s != "429"}
    print(f"all       {total:>8} {total / seconds:>7.1f}  over {seconds:.0f} s")
    print(f"answers by status: {dict(sorted(every.items()))}")
    print(f"errors other than 429: {sum(errors.values())} {errors or ''}")
    after = [s for s in stats.samples if s[0] >= warmup_s] or stats.samples
    first, last = stats.samples[0], stats.samples[-1]
    base = after[0]
    growth = (last[1] - base[1]) / base[1] * 100
    anon_growth = (last[2] - base[2]) / base[2] * 100
    peak = max(s[1] for s in stats.samples)
    print(
        f"server RSS: {first[1] / 1024:.0f} MiB at start, {base[1] / 1024:.0f} MiB after the "
        f"{base[0]:.0f} s warm-up, {last[1] / 1024:.0f} MiB at the end (peak "
        f"{peak / 1024:.0f} MiB): {growth:+.1f} % after warm-up"
    )
    print(
        f"server RssAnon: {first[2] / 1024:.0f} -> {base[2] / 1024:.0f} -> "
        f"{last[2] / 1024:.0f} MiB: {anon_growth:+.1f} % after warm-up"
    )
    return {
        "seconds": seconds,
        "requests": total,
        "lanes": lanes,
        "statuses": dict(every),
        "errors_other_than_429": sum(errors.values()),
        "rss_kB": [{"t_s": t, "rss_kB": r, "anon_kB": a} for t, r, a in stats.samples],
        "rss_growth_after_warmup_pct": growth,
        "anon_growth_after_warmup_pct": anon_growth,
    }


async def soak(args: argparse.Namespace, base: str, pid: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        health = (await http.get("/health")).json()
        domain = domain_separator(int(health["chain"]["chain_id"]), health["chain"]["contract"])
        # Slots in the past, one per reading round: enough for the run at any interval.
        rounds = int(args.duration / args.reading_interval) + 10
        first_slot = int(time.time()) // 900 - rounds - 10
        households = await setup(http, args.households, first_slot)
        print(
            f"soak: {len(households)} households registered; load for {args.duration} s",
            file=sys.stderr,
        )
        runner = Soak(http, households, args)
        seconds = await runner.run(pid, domain, first_slot)
    warmup_s = max(30.0, args.duration * 0.1)
    return report(runner.stats, seconds, warmup_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of load")
    parser.add_argument("--households", type=int, default=20)
    parser.add_argument("--reading-interval", type=float, default=1.0, help="seconds per round")
    parser.add_argument("--order-rate", type=float, default=2.0, help="bids or cancels per s")
    parser.add_argument("--take-rate", type=float, default=4.0, help="takes per s")
    parser.add_argument("--read-rate", type=float, default=20.0, help="reads per s")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument(
        "--chain", help="JSON-RPC URL of a node (anvil; operator: its first dev key)"
    )
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in the data dir)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rates = (args.duration, args.reading_interval, args.order_rate, args.take_rate, args.read_rate)
    if min(rates) <= 0 or args.households < 2:
        parser.error("duration, interval and rates must be positive, and households at least 2")

    data_dir = Path(tempfile.mkdtemp(prefix="voisin-soak-")) / "data"
    print(f"soak: starting voisin serve (data {data_dir})", file=sys.stderr)
    server = start_server(data_dir, 0.5, args.chain, args.database_url)
    assert server.proc is not None
    try:
        result = asyncio.run(soak(args, server.base_url, server.proc.pid))
    finally:
        server.stop(timeout_s=60)
    result["settings"] = {k: v for k, v in vars(args).items() if k != "json"}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 1 if result["errors_other_than_429"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
