"""Transactions the API sends so that it can find them again after a crash.

Some writes leave nothing on chain that could tell them apart from a second, identical one: a
top-up, a take, an order's post (the contract accepts a second post of the same order, at the
same price, as a new order). Their effect cannot be recognised afterwards, so their
transaction is: before sending it, the caller records durably what :func:`about_to_send`
returns (the sender, the nonce the transaction takes, the head block before it and its exact
call data). After a crash, :func:`find_sent` asks the chain whether that transaction was mined.

A sender's nonce is used once. The first block after the recorded head whose state has the
sender's nonce past the recorded one holds the transaction with that nonce: it is ours if it
calls the contract with the recorded call data. Another transaction there means ours was
never mined (the nonce went to something else), and a nonce still unused means the same; a
mined transaction that reverted applied nothing. In each of those cases sending again does it
once. A transaction that waits in the node's pool is neither: :class:`TransactionPending`.

Both hold only while the caller holds the chain gate (:class:`api.chain_gate.ChainGate`), as
every chain write of the API does: nothing else sends as that sender between the nonce read
here and the transaction sent. Used by the intents (:mod:`api.intents`: top-ups and takes) and
the outbox (:mod:`api.outbox`: order posts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3


@dataclass(frozen=True, slots=True)
class Sending:
    """A transaction about to be sent, as recorded before sending it: its ``sender``, the
    ``nonce`` it takes, the head block before it and its call data (``0x`` hex)."""

    sender: str
    nonce: int
    block_before: int
    calldata: str | None


class TransactionPending(Exception):
    """The recorded transaction waits in the node's pool: neither mined nor dropped yet."""

    def __init__(self, sender: str, nonce: int) -> None:
        super().__init__(f"the transaction from {sender} with nonce {nonce} waits to be mined")
        self.sender = sender
        self.nonce = nonce


def about_to_send(w3: Web3, sender: str, calldata: bytes | None) -> Sending:
    """What to record before ``sender`` sends ``calldata`` now (the caller holds the gate)."""
    nonce = int(w3.eth.get_transaction_count(to_checksum_address(sender), "pending"))
    head = int(w3.eth.block_number)
    return Sending(sender, nonce, head, None if calldata is None else "0x" + calldata.hex())


def find_sent(w3: Web3, contract: str, sending: Sending) -> Mapping[str, Any] | None:
    """The receipt of the recorded transaction to ``contract`` if it was mined and succeeded;
    None if it was never mined, or reverted (nothing applied either way). Raises
    :class:`TransactionPending` while it waits in the node's pool."""
    if sending.calldata is None:
        return None
    sender, nonce = to_checksum_address(sending.sender), sending.nonce
    if int(w3.eth.get_transaction_count(sender, "latest")) <= nonce:
        if int(w3.eth.get_transaction_count(sender, "pending")) > nonce:
            raise TransactionPending(sender, nonce)
        return None
    # The first block whose state has the sender's nonce past ours holds our nonce's
    # transaction: a binary search over the blocks since the recorded head.
    low, high = sending.block_before + 1, int(w3.eth.block_number)
    low = min(low, high)
    while low < high:
        middle = (low + high) // 2
        if int(w3.eth.get_transaction_count(sender, middle)) > nonce:
            high = middle
        else:
            low = middle + 1
    block = w3.eth.get_block(low, full_transactions=True)
    for tx in cast(list[Mapping[str, Any]], block["transactions"]):
        if tx["from"].lower() != sender.lower() or int(tx["nonce"]) != nonce:
            continue
        data = HexBytes(tx["input"] if "input" in tx else tx["data"])
        ours = (
            tx["to"] is not None
            and str(tx["to"]).lower() == contract.lower()
            and data == HexBytes(sending.calldata)
        )
        if not ours:
            return None  # the nonce went to another transaction: ours was never mined
        receipt = w3.eth.get_transaction_receipt(tx["hash"])
        return receipt if int(receipt["status"]) == 1 else None
    raise LookupError(f"no transaction of {sender} with nonce {nonce} in block {low}")
