"""The settlement worker anchors the digest links a stop left unanchored, oldest first, reading
the newest links a page at a time (a year of settled slots is not loaded on every slot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import Session

from ledger.market.settlement import SettlementWorker
from ledger.mirror.engine import make_engine
from ledger.mirror.models import SlotDigestRecord


class Chain:
    """The contract's seal views and sends, for slots up to ``anchored`` already sealed."""

    address = "0x" + "11" * 20

    def __init__(self, anchored: int) -> None:
        self.anchored = anchored
        self.asked: list[int] = []
        self.sent: list[int] = []

    def sealed_digest_head(self, slot: int) -> str | None:
        self.asked.append(slot)
        return "head" if slot <= self.anchored or slot in self.sent else None

    def seal_slot(self, _sender: Any, slot: int, _digest: str, **_kwargs: Any) -> None:
        self.sent.append(slot)


def worker_over(tmp_path: Path, links: int, anchored: int) -> tuple[SettlementWorker, Chain]:
    tmp_path.mkdir(exist_ok=True)
    engine = make_engine(f"sqlite:///{tmp_path / 'mirror.db'}")
    with Session(engine) as session:
        for slot in range(1, links + 1):
            session.add(SlotDigestRecord(slot=slot, sealed_block=slot, prev_digest="p",
                                         digest=f"d{slot}", leaves_json="[]"))  # fmt: skip
        session.commit()
    chain = Chain(anchored)
    return SettlementWorker(chain, engine, settler=None), chain  # type: ignore[arg-type]


def test_a_settled_history_costs_one_view(tmp_path: Path) -> None:
    worker, chain = worker_over(tmp_path, links=100, anchored=100)
    assert worker.anchor_seals() == 0
    assert chain.asked == [100] and chain.sent == []


def test_unanchored_links_across_pages_are_anchored_oldest_first(tmp_path: Path) -> None:
    worker, chain = worker_over(tmp_path, links=100, anchored=60)
    assert worker.anchor_seals() == 40
    assert chain.sent == list(range(61, 101))
    assert chain.asked == list(range(100, 59, -1))
    # Nothing anchored at all: every link, and the walk ends with the links.
    worker, chain = worker_over(tmp_path / "none", links=35, anchored=0)
    assert worker.anchor_seals() == 35 and chain.sent == list(range(1, 36))
