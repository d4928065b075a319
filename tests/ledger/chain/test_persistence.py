"""The embedded chain keeps every acknowledged balance, order and event across a kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from ledger import open_chain, open_ledger
from tests.ledger.chain.persistence_writer import PRICE, SLOT, TOPUP_UEUR, key

ROOT = Path(__file__).resolve().parents[3]
FEE = 30_000  # the default grid fee, ueur/kWh


def test_sigkill_loses_no_acknowledged_state(tmp_path: Path) -> None:
    data = tmp_path / "data"
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.ledger.chain.persistence_writer", str(data)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acks: list[dict[str, object]] = []
    assert writer.stdout is not None
    try:
        for line in writer.stdout:
            acks.append(json.loads(line))
            if len(acks) == 7:  # setup + 6 settled slots
                break
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL, writer.stderr.read() if writer.stderr else ""
    setup, slots = acks[0], [int(str(a["slot"])) for a in acks[1:]]
    assert slots == [SLOT + i for i in range(6)]

    with open_chain("embedded", data) as chain:
        client, deployment = open_ledger(chain)
        assert deployment.address == setup["contract"], "the recorded deployment is reused"
        a, b, c = (int(i) for i in setup["ids"])  # type: ignore[attr-defined]
        # The writer may have gone one step further than its last acknowledgement.
        settled = 0
        while client.batch_settled(SLOT + settled, 0):
            settled += 1
        assert settled >= len(slots)
        events = client.events(deployment.block_number, int(chain.w3.eth.block_number))
        sold: Counter[tuple[int, int]] = Counter()
        bought: Counter[tuple[int, int]] = Counter()
        for e in events:
            if e.name == "FillSettled":
                sold[(e.args["seller"], e.args["slot"])] += e.args["energyWh"]
                bought[(e.args["buyer"], e.args["slot"])] += e.args["energyWh"]
        for i in range(settled):
            assert (sold[(a, SLOT + i)], sold[(b, SLOT + i)]) == (100, 100)
            assert bought[(c, SLOT + i)] == 200
        # The contract keeps the last slots it can still trade: the newest settled one is kept.
        newest = SLOT + settled - 1
        assert client.slot_energy(a, newest).sold_Wh == 100
        assert client.slot_energy(c, newest).bought_Wh == 200
        cost, fee = 100 * PRICE // 1000, 100 * FEE // 1000
        assert client.balance_of(key("a").address) == settled * cost
        assert client.balance_of(key("b").address) == settled * cost
        assert client.balance_of(key("c").address) == TOPUP_UEUR - settled * 2 * (cost + fee)
        assert client.total_supply() == TOPUP_UEUR
        orders = [client.offer(1), client.offer(2), client.bid(1)]
        assert all(o.open and o.price_limit_ueur_per_kWh == PRICE for o in orders)
        assert len([e for e in events if e.name == "FillSettled"]) == 2 * settled
        assert len([e for e in events if e.name == "ReadingCommitted"]) >= 3 * settled
        assert len([e for e in events if e.name == "HouseholdRegistered"]) == 3
        # The reopened chain goes on accepting transactions.
        client.top_up(chain.operator, key("a").address, 5)
        assert client.balance_of(key("a").address) == settled * cost + 5


def test_clean_restart_reopens_the_same_ledger(tmp_path: Path) -> None:
    with open_chain("embedded", tmp_path) as chain:
        client, first = open_ledger(chain)
        client.top_up(chain.operator, key("x").address, 42)
        operator = chain.operator.address
    with open_chain("embedded", tmp_path) as chain:
        client, again = open_ledger(chain)
        assert again == first and chain.operator.address == operator
        assert client.balance_of(key("x").address) == 42
        client.top_up(chain.operator, key("x").address, 1)
        assert client.balance_of(key("x").address) == 43
