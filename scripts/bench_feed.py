"""Live feed benchmark: delivery delay to many subscribers, and the server's memory over a run.

Starts ``voisin serve`` (embedded chain in its node process, SQLite) in a temporary data dir,
registers households (half of them prosumers, the others topped up), opens ``--subscribers``
streams at once (a quarter of them households' own streams, spread over the households, the
rest the public stream), then settles one past slot every ``--every`` seconds for
``--minutes`` minutes: each slot gets its readings (every prosumer exports, every consumer
imports, so the agents' standing orders trade), then ``POST /market/slots/{slot}/settle``.

Measured:

- **delay**: from the moment the settle request returned to the moment each subscriber read
  the slot's event (``slot_settled`` on the public stream; the household's first ``trade``
  of that slot on its own). The feed may find the slot's events in the mirror before the
  answer reaches this client, so a few delays are slightly negative;
- **RSS** of the server's process (VmRSS, the feed lives there; the chain's node process
  apart) every 30 s;
- streams that ended early (a drop, a refused connection) and events that arrived twice or
  out of order (there must be none).

Usage: ``.venv/bin/python scripts/bench_feed.py [--minutes 10] [--subscribers 200]
[--households 20] [--every 3]``. Progress goes to stderr, the figures to stdout. Times are
wall-clock on a shared machine: compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from api.process import ServeProcess, ServerStartError
from ledger.readings.eip712 import Reading, domain_separator, sign_reading
from ledger.readings.intake import reading_to_json

TOKEN = "bench-operator-token-0123456789abcdef"
OP = {"Authorization": f"Bearer {TOKEN}"}
RSS_EVERY_S = 30.0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Household:
    id: int
    token: str
    meter: LocalAccount
    prosumer: bool
    import_Wh: int = 0
    export_Wh: int = 0


@dataclass
class Subscriber:
    household: Household | None
    #: slot -> the monotonic time its event was read.
    got: dict[int, float] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    ended: str | None = None


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def follow(http: httpx.AsyncClient, sub: Subscriber, opened: asyncio.Event) -> None:
    """Read one stream until cancelled, noting when each slot's event arrives."""
    path = "/feed" if sub.household is None else f"/households/{sub.household.id}/feed"
    headers = {} if sub.household is None else {"Authorization": f"Bearer {sub.household.token}"}
    try:
        async with http.stream("GET", path, headers=headers) as r:
            if r.status_code != 200:
                sub.ended = f"status {r.status_code}"
                return
            opened.set()
            kind = ""
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("id:"):
                    sub.ids.append(line[3:].strip())
                elif line.startswith("data:") and kind in ("slot_settled", "trade"):
                    slot = int(json.loads(line[5:])["slot"])
                    sub.got.setdefault(slot, time.monotonic())
        sub.ended = "closed by the server"
    except httpx.HTTPError as exc:
        sub.ended = f"{type(exc).__name__}: {exc}"
    finally:
        opened.set()


def register(http: httpx.Client, prosumer: bool) -> Household:
    meter: LocalAccount = Account.create()
    r = http.post("/households", json={"meter": meter.address, "prosumer": prosumer}, headers=OP)
    r.raise_for_status()
    data = r.json()
    if not prosumer:
        t = http.post("/topups", json={"household": data["id"], "amount_ueur": 10**9}, headers=OP)
        t.raise_for_status()
    return Household(data["id"], data["token"], meter, prosumer)


def settle_slot(http: httpx.Client, households: list[Household], slot: int, domain: bytes) -> float:
    """Meter and settle ``slot``; the monotonic time the settle request returned."""
    readings = []
    for h in households:
        if h.prosumer:
            h.export_Wh += 400
        else:
            h.import_Wh += 300
        signed = sign_reading(
            h.meter.key, Reading(h.meter.address, slot, h.import_Wh, h.export_Wh), domain
        )
        readings.append(reading_to_json(signed))
    r = http.post("/readings", json={"readings": readings})
    r.raise_for_status()
    r = http.post(f"/market/slots/{slot}/settle", headers=OP)
    r.raise_for_status()
    return time.monotonic()


async def run(args: argparse.Namespace, server: ServeProcess) -> dict[str, Any]:
    assert server.proc is not None
    pid = server.proc.pid
    sync = httpx.Client(base_url=server.base_url, timeout=120)
    chain = sync.get("/health").json()["chain"]
    domain = domain_separator(int(chain["chain_id"]), chain["contract"])
    households = [register(sync, prosumer=k % 2 == 0) for k in range(args.households)]
    say(f"{len(households)} households registered")
    private = args.subscribers // 4
    subs = [Subscriber(households[k % len(households)]) for k in range(private)]
    subs += [Subscriber(None) for _ in range(args.subscribers - private)]
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(60, read=None)
    rss: list[tuple[float, int]] = [(0.0, rss_kib(pid))]
    settled: dict[int, float] = {}
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=timeout) as http:
        opened = [asyncio.Event() for _ in subs]
        tasks = [asyncio.create_task(follow(http, s, o)) for s, o in zip(subs, opened, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(o.wait() for o in opened)), 120)
        say(f"{len(subs)} streams open ({private} households' own); RSS {rss[0][1] // 1024} MiB")
        rss.append((0.0, rss_kib(pid)))
        start = time.monotonic()
        end = start + args.minutes * 60
        next_rss = start + RSS_EVERY_S
        # Past slots, oldest first: one every `--every` seconds over the run, and spare.
        count = int(args.minutes * 60 / args.every) + 2
        slot = int(time.time()) // 900 - count - 2
        while time.monotonic() < end:
            began = time.monotonic()
            returned = await asyncio.to_thread(settle_slot, sync, households, slot, domain)
            settled[slot] = returned
            slot += 1
            now = time.monotonic()
            if now >= next_rss:
                rss.append((now - start, rss_kib(pid)))
                mib = rss[-1][1] // 1024
                say(f"{now - start:5.0f} s: {len(settled)} slots settled, RSS {mib} MiB")
                next_rss += RSS_EVERY_S
            await asyncio.sleep(max(0.0, args.every - (now - began)))
        await asyncio.sleep(3)  # the last slot's events
        rss.append((time.monotonic() - start, rss_kib(pid)))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    sync.close()

    public: list[float] = []
    private_delays: list[float] = []
    missing = 0
    for sub in subs:
        for slot, at in settled.items():
            if slot in sub.got:
                (public if sub.household is None else private_delays).append(sub.got[slot] - at)
            elif sub.household is None:
                missing += 1  # a household trades in a slot only if its orders matched
    out_of_order = sum(
        1
        for sub in subs
        if [tuple(map(int, i.split("-"))) for i in sub.ids]
        != sorted({tuple(map(int, i.split("-"))) for i in sub.ids})
    )
    return {
        "subscribers": len(subs),
        "private_subscribers": private,
        "households": len(households),
        "slots": len(settled),
        "public_delays_s": public,
        "private_delays_s": private_delays,
        "missing": missing,
        "ended_early": [s.ended for s in subs if s.ended and s.ended != "closed by the server"],
        "out_of_order": out_of_order,
        "rss_kib": rss,
    }


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"bench_feed: {result['subscribers']} subscribers ({result['private_subscribers']} on "
        f"households' own streams), {result['households']} households, {result['slots']} slots "
        f"settled, one every {args.every} s for {args.minutes} min"
    )
    print("| stream | events | p50 ms | p99 ms | max ms |")
    print("| --- | --- | --- | --- | --- |")
    for name, key in (
        ("public (slot_settled)", "public_delays_s"),
        ("household (trade)", "private_delays_s"),
    ):
        values = result[key]
        if values:
            print(
                f"| {name} | {len(values)} | {1000 * statistics.median(values):.0f} | "
                f"{1000 * percentile(values, 0.99):.0f} | {1000 * max(values):.0f} |"
            )
    print(
        f"public slot_settled events missing: {result['missing']}, streams ended early: "
        f"{len(result['ended_early'])}, streams with ids out of order or repeated: "
        f"{result['out_of_order']}"
    )
    print("RSS of the server process (MiB) at s: " + ", ".join(
        f"{t:.0f}: {kib / 1024:.0f}" for t, kib in result["rss_kib"]
    ))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--households", type=int, default=20)
    parser.add_argument("--every", type=float, default=3.0, help="seconds between settled slots")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="voisin-bench-feed-") as tmp:
        data_dir = Path(tmp) / "data"
        env = {
            "VOISIN_OPERATOR_TOKEN": TOKEN,
            "VOISIN_AUTO_SETTLE": "false",
            "VOISIN_FEED_MAX_SUBSCRIBERS": str(max(1000, args.subscribers + 10)),
            # The bench registers its households at once: no rate limit in its way.
            "VOISIN_TOKEN_RATE_PER_S": "0",
        }
        server = ServeProcess(data_dir, env, log_path=Path(tmp) / "serve.log")
        try:
            server.start()
        except ServerStartError as exc:
            raise SystemExit(f"bench_feed: {exc}") from exc
        try:
            result = asyncio.run(run(args, server))
        finally:
            server.stop()
    report(result, args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
