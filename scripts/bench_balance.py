"""Benchmark: the credit lines of ``GET /households/{id}/balance`` on a long history.

Fills a fresh SQLite mirror with ``--households`` households x ``--days`` days of 15-minute
readings (every household exports in the daytime slots) and fills (half of each export sold
locally, in two fills), then times, on the same database in one run:

* the previous way: the household's readings loaded as ORM objects and its fills summed in
  Python (what the endpoint did before ``api.routes.households.credit_lines``);
* ``credit_lines``: one query, fills summed per slot in SQL, no ORM objects.

It checks both give the same lines, and prints the time per call and the ratio.
Run: ``.venv/bin/python scripts/bench_balance.py [--households 100] [--days 30]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import Session, col, select

from api.routes.households import credit_lines
from api.schemas import CreditLine
from ledger.mirror.engine import make_engine
from ledger.mirror.models import FillRecord, ReadingRecord

FIRST_SLOT = 1_975_000


def previous_way(session: Session, household: int) -> list[CreditLine]:
    readings = session.exec(
        select(ReadingRecord)
        .where(ReadingRecord.household == household, ReadingRecord.export_delta_Wh > 0)
        .order_by(col(ReadingRecord.slot))
    ).all()
    sold: dict[int, int] = {}
    for f in session.exec(select(FillRecord).where(FillRecord.seller == household)):
        sold[f.slot] = sold.get(f.slot, 0) + f.energy_Wh
    return [
        CreditLine(
            slot=r.slot,
            export_Wh=r.export_delta_Wh,
            sold_Wh=sold.get(r.slot, 0),
            credits_Wh=r.export_delta_Wh - sold.get(r.slot, 0),
        )
        for r in readings
    ]


def fill_mirror(session: Session, households: int, days: int) -> None:
    block = 0
    for day in range(days):
        for q in range(96):
            slot = FIRST_SLOT + day * 96 + q
            block += 1
            daytime = 32 <= q < 72
            for h in range(1, households + 1):
                export = 400 + h if daytime else 0
                session.add(
                    ReadingRecord(
                        household=h,
                        meter=f"0x{h:040x}",
                        slot=slot,
                        import_Wh=0,
                        export_Wh=0,
                        import_delta_Wh=0 if daytime else 150,
                        export_delta_Wh=export,
                        block_number=block,
                        tx_hash="0x" + "ab" * 32,
                    )
                )
                if export:
                    for k in range(2):
                        session.add(
                            FillRecord(
                                slot=slot,
                                seller=h,
                                buyer=(h % households) + 1,
                                offer_id=h,
                                bid_id=h,
                                energy_Wh=export // 4,
                                price_ueur_per_kWh=100_000,
                                cost_ueur=export // 40,
                                fee_ueur=0,
                                block_number=block,
                                log_index=h * 2 + k,
                                tx_hash="0x" + "cd" * 32,
                            )
                        )
        session.commit()


def per_call(fn: object, session: Session, households: int, calls: int) -> float:
    started = time.perf_counter()
    for k in range(calls):
        fn(session, 1 + k % households)  # type: ignore[operator]
    return (time.perf_counter() - started) / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--calls", type=int, default=60)
    args = parser.parse_args(argv)
    if min(args.households, args.days, args.calls) < 1:
        parser.error("--households, --days and --calls must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'mirror.db'}")
        with Session(engine) as session:
            fill_mirror(session, args.households, args.days)
        with Session(engine) as session:
            lines = credit_lines(session, 1)
            if lines != previous_way(session, 1) or not lines:
                raise SystemExit("bench_balance: the two ways disagree")
            # Interleave the two, twice, so load changes on a shared machine hit both.
            old = new = 0.0
            for _ in range(2):
                old += per_call(previous_way, session, args.households, args.calls)
                new += per_call(credit_lines, session, args.households, args.calls)
    print(
        f"bench_balance: {args.households} households x {args.days} days, "
        f"{len(lines)} credit lines per household"
    )
    print(f"previous (ORM objects, Python sum)  {1000 * old / 2:8.2f} ms per call")
    print(
        f"credit_lines (one query)            {1000 * new / 2:8.2f} ms per call  x{old / new:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
