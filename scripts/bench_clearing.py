"""Clearing time per slot for each mechanism, at 100 and 1,000 households (BENCHMARKS.md).

The book is a midday slot of a neighbourhood whose agents post default standing orders
(:mod:`ledger.market.agents`): 40% prosumers with surplus, everyone else with a deficit. Two books
are
timed:

- ``agents``: each household's agent has its own seeded markup and discount, so limits differ;
- ``uniform``: every agent keeps the default settings, so all offers and all bids tie on price
  and time priority and ids decide.

Usage: ``.venv/bin/python scripts/bench_clearing.py [--sizes 100,1000] [--repeat 5]
[--json out.json]``. Times are wall-clock medians of ``--repeat`` runs (after one warm-up) on
a shared machine: compare mechanisms within one run, as ratios.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

from ledger.contract.deploy import DEFAULT_TARIFFS
from ledger.market.agents import AgentSettings, standing_limits
from ledger.market.clearing import MECHANISMS, BookOrder, Side

Book = tuple[list[BookOrder], dict[int, int], dict[int, int]]


def make_book(households: int, varied: bool, seed: int = 1) -> Book:
    rng = random.Random(seed)
    orders: list[BookOrder] = []
    surplus: dict[int, int] = {}
    deficit: dict[int, int] = {}
    for h in range(1, households + 1):
        prosumer = h % 5 < 2
        settings = (
            AgentSettings(rng.randrange(0, 60_001, 500), rng.randrange(0, 60_001, 500))
            if varied
            else AgentSettings()
        )
        sell, buy = standing_limits(settings, DEFAULT_TARIFFS)
        if prosumer:
            surplus[h] = rng.randint(0, 1500)
            orders.append(BookOrder(h, h, Side.OFFER, sell, None, h))
            deficit[h] = 0
        else:
            deficit[h] = rng.randint(50, 600)
        orders.append(BookOrder(h, h, Side.BID, buy, None, households + h))
    return orders, surplus, deficit


def time_it(book: Book, mechanism: str, repeat: int) -> tuple[float, float, int, int]:
    clear = MECHANISMS[mechanism]
    result = clear(*book, DEFAULT_TARIFFS)  # warm-up, and the figures
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        clear(*book, DEFAULT_TARIFFS)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), len(result.fills), result.matched_Wh


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="household counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per row (median)")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes must be integers separated by commas, got {args.sizes!r}")
    if any(n < 2 for n in sizes) or args.repeat < 1:
        parser.error("sizes must be at least 2 and --repeat at least 1")

    print(f"python {platform.python_version()}, {platform.machine()}, repeat {args.repeat}")
    print(
        f"{'book':8} {'households':>10} {'mechanism':>13} {'median ms':>10} {'min ms':>8} "
        f"{'fills':>6} {'matched Wh':>11} {'x pay-as-offer':>15}"
    )
    rows = []
    for varied in (True, False):
        for n in sizes:
            book = make_book(n, varied)
            base = None
            for name in ("pay-as-offer", "midpoint", "pay-as-clear"):
                print(f"  timing {name} on {n} households...", file=sys.stderr, flush=True)
                median, best, fills, matched = time_it(book, name, args.repeat)
                base = base or median
                label = "agents" if varied else "uniform"
                print(
                    f"{label:8} {n:>10} {name:>13} {median * 1000:>10.1f} {best * 1000:>8.1f} "
                    f"{fills:>6} {matched:>11} {median / base:>15.2f}"
                )
                rows.append(
                    {
                        "book": label,
                        "households": n,
                        "mechanism": name,
                        "median_s": median,
                        "min_s": best,
                        "fills": fills,
                        "matched_Wh": matched,
                    }
                )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
