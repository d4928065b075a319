"""Load time of the grid operator's page with a long history: ``--households`` households
(default 100) and ``--days`` days (default 30) of settled slots ending at the current slot.

How the database is built (fast, and what the page reads is real rows):

1. ``voisin serve`` starts once on a temporary data dir (embedded chain, SQLite): it deploys
   the contract and creates every table; it is stopped.
2. The history is written straight into that database through the tables' models, in a few
   large inserts: per household its ``api_household`` row (meter, name, token hash, the last
   slot its meter reported; three meters went quiet ten slots ago), its mirrored household
   and balance; per household and slot a committed reading (mirror), its signed reading (the
   audit's evidence) and the API's intake row; per slot its settled outcome and fills (daytime
   PV of the 40 % of households with panels sold to the others, about 3,700 fills a day like
   ``voisin simulate``'s 100-household day), the feeder power flow the keeper keeps, and one
   kept audit run with a report of the whole history (ok, one neighbourhood row per slot).
   Nothing of it is on chain: the chain's events (``chain_event``) and settlement batches are
   not written, and the page reads neither. The keeper's state says that it is up to date, so
   it stays idle (no audit due for a quarter of an hour, no power flow missing).
3. ``voisin serve`` starts again on it (the outbox loop and the keeper running, as in
   production), the operator's page is loaded ``--warmup`` times, then ``--loads`` times one
   after the other over loopback HTTP with the operator's sign-in cookie; each load's wall
   time (request sent to last byte) is recorded.

It also times what now runs at settlement instead of on every view: one slot's power flow
through the keeper (:func:`api.keeper.compute_feeder`, with pandapower's import apart), and the
three downloads once. The whole audit cannot run on this database (its rows are not on chain);
BENCHMARKS.md's "Audit" section has its cost.

Usage: ``.venv/bin/python scripts/bench_operator_page.py [--households 100] [--days 30]
[--loads 50] [--warmup 5] [--keep DIR]``. Progress goes to stderr, figures to stdout; it
asserts nothing. The temporary data dir (about 300 MiB at the defaults) is deleted at the end
unless ``--keep`` names where to build it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "bench-operator-token-0123456789abcdef"
SLOTS_PER_DAY = 96
#: Grid fee and prices of the bench's tariffs (µ€/kWh), as the default deployment's.
GRID_FEE = 30_000
FEED_IN, RETAIL = 40_000, 250_000
#: Most fills of one slot (the clearing pairs each seller with a few buyers).
MAX_FILLS = 150


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _hex(n: int) -> str:
    return "0x" + secrets.token_hex(n)


def build(db_url: str, households: int, days: int, now_slot: int) -> dict[str, int]:
    """Write the history into the database (see the module); returns row counts."""
    from eth_utils.address import to_checksum_address
    from sqlalchemy import insert, text
    from sqlmodel import Session

    import api.models  # noqa: F401  (the API's tables on the metadata)
    from api.keeper import FINDINGS_SHOWN, KeptState
    from api.models import ApiHousehold, IntakeReading, KeptAudit, KeptFeederSlot
    from ledger.audit.feeder import DEFAULT_NETWORK
    from ledger.mirror.engine import make_engine
    from ledger.mirror.models import (
        BalanceRecord,
        FillRecord,
        HouseholdRecord,
        ReadingRecord,
        SignedReadingRecord,
        SlotOutcomeRecord,
    )

    rng = random.Random(1)
    # The database a server would create (every schema revision): the server then serves it.
    from api.schema import prepare

    engine = make_engine(db_url, create=False)
    prepare(engine)
    last = now_slot - 1
    first = last - days * SLOTS_PER_DAY + 1
    ids = list(range(1, households + 1))
    prosumer = {h: h % 5 in (0, 1) for h in ids}
    meters = {h: to_checksum_address(_hex(20)) for h in ids}
    accounts = {h: to_checksum_address(_hex(20)) for h in ids}
    quiet = set(ids[-3:])  # three meters stopped reporting ten slots ago
    registers = {h: [0, 0] for h in ids}
    readings: list[dict[str, Any]] = []
    signed: list[dict[str, Any]] = []
    intake: list[dict[str, Any]] = []
    fills: list[dict[str, Any]] = []
    outcomes: list[dict[str, Any]] = []
    feeder: list[dict[str, Any]] = []
    neighbourhood: list[dict[str, Any]] = []
    balances = {h: 50_000_000 for h in ids}
    block = 100
    for slot in range(first, last + 1):
        hour = (slot % SLOTS_PER_DAY) / 4 + 1  # roughly local time in Europe
        sun = max(0.0, math.sin(math.pi * (hour - 6) / 12))
        exports: dict[int, int] = {}
        imports: dict[int, int] = {}
        for h in ids:
            if h in quiet and slot > last - 10:
                continue
            load = rng.randint(40, 260)
            pv = int(sun * rng.randint(300, 900)) if prosumer[h] else 0
            imports[h] = max(0, load - pv)
            exports[h] = max(0, pv - load)
            registers[h][0] += imports[h]
            registers[h][1] += exports[h]
            row = {
                "meter": meters[h],
                "slot": slot,
                "import_Wh": registers[h][0],
                "export_Wh": registers[h][1],
            }
            readings.append(
                {
                    **row,
                    "household": h,
                    "import_delta_Wh": imports[h],
                    "export_delta_Wh": exports[h],
                    "block_number": block,
                    "tx_hash": _hex(32),
                }
            )
            sig = {"v": 27, "r": _hex(32), "s": _hex(32)}
            signed.append({**row, **sig})
            intake.append(
                {
                    **row,
                    **sig,
                    "household": h,
                    "status": "committed",
                    "tx_hash": readings[-1]["tx_hash"],
                }
            )
        sellers = [h for h, e in exports.items() if e > 0]
        buyers = [h for h, i in imports.items() if i > 0]
        surplus, deficit = sum(exports.values()), sum(imports.values())
        matched = min(surplus, deficit)
        price = rng.randint(100_000, 180_000) if matched else None
        n_fills = cost = fee = 0
        left = dict(exports)
        # Each buyer buys from the sellers in turn, in pieces, until its import is covered or
        # the surplus is sold.
        turn = 0
        for b in buyers:
            need = imports[b]
            while need > 0 and price is not None and n_fills < MAX_FILLS:
                open_ = [s for s in sellers if left[s] > 0]
                if not open_:
                    break
                s = open_[turn % len(open_)]
                turn += 1
                wh = min(need, left[s], rng.randint(60, 300))
                need -= wh
                left[s] -= wh
                c, f = wh * price // 1000, wh * GRID_FEE // 1000
                fills.append(
                    {
                        "slot": slot,
                        "seller": s,
                        "buyer": b,
                        "offer_id": s,
                        "bid_id": b,
                        "energy_Wh": wh,
                        "price_ueur_per_kWh": price,
                        "cost_ueur": c,
                        "fee_ueur": f,
                        "block_number": block + 1,
                        "log_index": n_fills,
                        "tx_hash": _hex(32),
                    }
                )
                balances[b] -= c + f
                balances[s] += c
                n_fills += 1
                cost += c
                fee += f
        traded = sum(r["energy_Wh"] for r in fills[len(fills) - n_fills :])
        outcomes.append(
            {
                "slot": slot,
                "status": "settled",
                "mechanism": "pay_as_clear",
                "clearing_price_ueur_per_kWh": price,
                "households": len(imports),
                "surplus_Wh": surplus,
                "deficit_Wh": deficit,
                "matched_Wh": traded,
                "unmatched_surplus_Wh": surplus - traded,
                "unmatched_deficit_Wh": deficit - traded,
                "fills": n_fills,
                "batches": 1 if n_fills else 0,
                "cost_ueur": cost,
                "fees_ueur": fee,
                "gas_used": 0,
            }
        )
        kw = deficit * 4 / 1000
        feeder.append(
            {
                "slot": slot,
                "network": DEFAULT_NETWORK,
                "households": households,
                "readings": len(imports),
                "vm_min_pu": round(1.0 - kw * 0.0004, 5),
                "vm_max_pu": round(1.0 + surplus * 4 / 1000 * 0.0003, 5),
                "max_line_loading_percent": round(kw * 0.6, 3),
                "trafo_loading_percent": round(kw / 630 * 100, 3),
                "findings": 0,
                "findings_json": "[]",
                "computed_s": int(time.time()),
            }
        )
        neighbourhood.append(
            {
                "slot": slot,
                "households_metered": len(imports),
                "pv_Wh": None,
                "load_Wh": None,
                "self_consumed_Wh": None,
                "metered_import_Wh": deficit,
                "metered_export_Wh": surplus,
                "local_traded_Wh": traded,
                "grid_import_Wh": deficit - traded,
                "grid_export_Wh": surplus - traded,
                "clearing_price_ueur_per_kWh": price,
            }
        )
        block += 2
    now = int(time.time())
    report = {
        "ok": True,
        "summary": {
            "generated_at": "",
            "chain_id": 1,
            "contract": "0x",
            "head_block": block,
            "mirror_block": block,
            "from_slot": None,
            "to_slot": None,
            "first_slot": first,
            "last_slot": last,
            "digest_head": _hex(32)[2:],
            "slots": len(outcomes),
            "households": households,
            "readings": len(readings),
            "fills": len(fills),
            "sealed_slots": len(outcomes),
            "findings": 0,
        },
        "checks": {
            c: {"ran": c != "feeder", "findings": 0}
            for c in ("provenance", "energy", "money", "integrity", "feeder")
        },
        "findings": [],
        "neighbourhood": neighbourhood,
        "feeder": None,
    }
    with Session(engine) as session, session.begin():
        session.execute(
            insert(HouseholdRecord),
            [
                {
                    "id": h,
                    "account": accounts[h],
                    "meter": meters[h],
                    "prosumer": prosumer[h],
                    "active": True,
                }
                for h in ids
            ],
        )
        session.execute(
            insert(ApiHousehold),
            [
                {
                    "id": h,
                    "name": f"Household {h}",
                    "account": accounts[h],
                    "meter": meters[h],
                    "prosumer": prosumer[h],
                    "token_hash": _hex(32),
                    "key_json": "{}",
                    "meter_last_slot": last - 10 if h in quiet else last,
                    "meter_import_Wh": registers[h][0],
                    "meter_export_Wh": registers[h][1],
                }
                for h in ids
            ],
        )
        session.execute(
            insert(BalanceRecord),
            [{"account": accounts[h], "balance_ueur": balances[h]} for h in ids],
        )
        for model, rows in (
            (ReadingRecord, readings),
            (SignedReadingRecord, signed),
            (IntakeReading, intake),
            (FillRecord, fills),
            (SlotOutcomeRecord, outcomes),
            (KeptFeederSlot, feeder),
        ):
            for k in range(0, len(rows), 20_000):
                session.execute(insert(model), rows[k : k + 20_000])
        session.execute(
            insert(KeptAudit),
            [
                {
                    "started_s": now - 5,
                    "finished_s": now,
                    "head_block": block,
                    "mirror_block": block,
                    "last_slot": last,
                    "ok": True,
                    "findings": 0,
                    "problem": None,
                    "summary_json": json.dumps(
                        {"summary": report["summary"], "checks": report["checks"]}
                    ),
                    "findings_json": json.dumps(report["findings"][:FINDINGS_SHOWN]),
                    "report_json": json.dumps(report),
                }
            ],
        )
        top = session.execute(text("SELECT max(id) FROM reading")).scalar_one()
        session.add(KeptState(key="feeder_reading_id", value=str(top)))
        mapping = {str(h): f"loadbus_{(h - 1) % 10 + 1}_{(h - 1) // 10 + 1}" for h in ids}
        session.add(KeptState(key="feeder_mapping", value=json.dumps(mapping)))
        session.add(KeptState(key="feeder_network", value=DEFAULT_NETWORK))
    engine.dispose()
    return {"readings": len(readings), "fills": len(fills), "slots": len(outcomes)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--loads", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build the data dir here and keep it")
    args = parser.parse_args()

    import httpx

    from api.process import ServeProcess
    from api.web.session import TOKEN_COOKIE

    folder = args.keep or Path(tempfile.mkdtemp(prefix="voisin-bench-operator-"))
    data_dir = (folder / "data").resolve()
    env = {"VOISIN_OPERATOR_TOKEN": TOKEN, "VOISIN_AUTO_SETTLE": "false"}
    log = folder / "serve.log"
    print(
        f"# Operator page benchmark, {time.strftime('%Y-%m-%dT%H:%M:%S%z')}: "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load {_load()} at start"
    )
    _say("deploying (voisin serve, first start) ...")
    with ServeProcess(data_dir, env, log_path=log):
        pass
    db_url = f"sqlite:///{data_dir / 'voisin.db'}"
    now_slot = int(time.time()) // 900
    started = time.perf_counter()
    counts = build(db_url, args.households, args.days, now_slot)
    built_s = time.perf_counter() - started
    size = (data_dir / "voisin.db").stat().st_size
    print(
        f"database: {args.households} households x {args.days} days = {counts['slots']:,} "
        f"settled slots, {counts['readings']:,} readings (mirror, evidence and intake rows "
        f"each), {counts['fills']:,} fills; built in {built_s:.1f} s, "
        f"{size / 2**20:.0f} MiB (plus WAL)"
    )

    # What runs at settlement now: one slot's power flow, kept by the keeper.
    from api.keeper import compute_feeder
    from ledger.mirror.engine import make_engine

    engine = make_engine(db_url)
    t0 = time.perf_counter()
    import pandapower  # noqa: F401

    import_s = time.perf_counter() - t0
    timings = []
    for slot in (now_slot - 41, now_slot - 42, now_slot - 43):
        t0 = time.perf_counter()
        compute_feeder(engine, [slot])
        timings.append(time.perf_counter() - t0)
    engine.dispose()
    print(
        f"at settlement: one slot's power flow computed and kept (the network built, the flow "
        f"run, the row written) in {timings[0] * 1000:.0f}, {timings[1] * 1000:.0f} and "
        f"{timings[2] * 1000:.0f} ms; importing pandapower {import_s:.1f} s once per process"
    )

    _say("serving (voisin serve, outbox and keeper running) ...")
    with ServeProcess(data_dir, env, log_path=log) as server:
        cookies = {TOKEN_COOKIE: TOKEN}
        with httpx.Client(base_url=server.base_url, cookies=cookies, timeout=60) as http:
            for _ in range(args.warmup):
                r = http.get("/ui/operator")
                r.raise_for_status()
            page_bytes = len(r.content)
            times = []
            for _ in range(args.loads):
                t0 = time.perf_counter()
                r = http.get("/ui/operator")
                _ = r.content
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.status_code
            downloads = {}
            for kind in ("json", "csv", "html"):
                t0 = time.perf_counter()
                d = http.get(f"/ui/operator/audit.{kind}")
                downloads[kind] = (time.perf_counter() - t0, len(d.content), d.status_code)
    print(
        f"operator page, {args.loads} loads one after the other ({args.warmup} warm-up loads "
        f"first), {page_bytes / 1024:.0f} KiB each: median {statistics.median(times):.1f} ms, "
        f"p95 {percentile(times, 0.95):.1f} ms, min {min(times):.1f} ms, "
        f"max {max(times):.1f} ms"
    )
    print(
        "downloads (once each): "
        + ", ".join(
            f"{k} {s:.2f} s ({n / 1024:.0f} KiB, HTTP {code})"
            for k, (s, n, code) in downloads.items()
        )
    )
    print(f"# load {_load()} at end" + (f"; data dir kept in {data_dir}" if args.keep else ""))
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
