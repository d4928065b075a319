"""Writer process for the kill -9 persistence test (run as a script, not collected).

It opens the embedded chain in ``argv[1]``, registers three households, then meters and settles
one slot after another, printing one JSON line per acknowledged step, until it is killed.
Keys derive from fixed seeds so the test can find the same accounts after the kill.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from ledger import Fill, Reading, open_chain, open_ledger, sign_reading

SLOT = 1_995_000
TOPUP_UEUR = 1_000_000_000
PRICE = 100_000


def key(name: str) -> LocalAccount:
    account: LocalAccount = Account.from_key(keccak(text=f"voisin-persistence-{name}"))
    return account


def ack(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main(data_dir: Path) -> None:
    chain = open_chain("embedded", data_dir)
    client, deployment = open_ledger(chain)
    op = chain.operator
    a, b, c = key("a"), key("b"), key("c")
    meters = [key("meter-a"), key("meter-b"), key("meter-c")]
    ids = []
    for account, meter, prosumer in zip((a, b, c), meters, (True, True, False), strict=True):
        chain.fund(account.address)
        ids.append(client.register_household(op, account.address, meter.address, prosumer=prosumer))
    client.top_up(op, c.address, TOPUP_UEUR)
    offer_a = client.post_offer(a, PRICE, SLOT)
    offer_b = client.post_offer(b, PRICE, SLOT)
    bid_c = client.post_bid(c, PRICE, SLOT)
    ack(step="setup", contract=deployment.address, ids=ids, orders=[offer_a, offer_b, bid_c])
    domain = client.domain_separator()
    for i in range(10_000):
        slot = SLOT + i
        registers = [(0, 100 * (i + 1)), (0, 100 * (i + 1)), (300 * (i + 1), 0)]
        readings = [
            sign_reading(m.key, Reading(m.address, slot, imp, exp), domain)
            for m, (imp, exp) in zip(meters, registers, strict=True)
        ]
        client.commit_readings(op, readings)
        client.settle_batch(
            op, slot, 0, [Fill(offer_a, bid_c, 100, PRICE), Fill(offer_b, bid_c, 100, PRICE)]
        )
        ack(step="slot", slot=slot)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
