"""The embedded chain keeps everything it acknowledged across close, reopen and kill -9.

Transactions are signed locally with keys generated here and funded in genesis; the chain
has no unlocked accounts. Run as a script, this module is the writer process that the kill -9
test starts and kills.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.types import TransactionDictType
from eth_typing import ChecksumAddress, HexStr
from hexbytes import HexBytes
from web3 import Web3

from ledger.chain.embedded import CHAIN_ID, ChainLockedError, EmbeddedChain
from ledger.chain.kvstore import LmdbStore
from ledger.errors import ChainUnavailable, LedgerError

FUNDING = 10**21  # 1000 ether
VALUE = 10**15
MAX_FEE_PER_GAS = 10**10  # well above the 1 gwei genesis base fee, which only falls
PRIORITY_FEE = 10**9

STORED_VALUE = 42
STORED_TOPIC = bytes(Web3.keccak(text="Stored(uint256)"))


def _runtime_code() -> bytes:
    """Runtime that returns storage slot 0 for any call."""
    return bytes.fromhex(
        "600054"  # PUSH1 0 SLOAD
        "600052"  # PUSH1 0 MSTORE
        "60206000f3"  # PUSH1 32 PUSH1 0 RETURN
    )


def _init_code() -> bytes:
    """Constructor: slot 0 = 42, LOG1 Stored(42), then return the runtime.

    Hand-assembled because no compiler is available to this test.
    """
    runtime = _runtime_code()
    constructor = (
        bytes.fromhex("602a600055")  # PUSH1 42 PUSH1 0 SSTORE
        + bytes.fromhex("602a600052")  # PUSH1 42 PUSH1 0 MSTORE
        + b"\x7f"  # PUSH32 topic
        + STORED_TOPIC
        + bytes.fromhex("60206000a1")  # PUSH1 32 PUSH1 0 LOG1
    )
    # CODECOPY(dest=0, offset=<runtime start>, size) then RETURN(0, size); both tails have a
    # fixed length, so the runtime starts 12 bytes after the constructor body.
    runtime_start = len(constructor) + 12
    copy_and_return = bytes(
        (0x60, len(runtime), 0x60, runtime_start, 0x60, 0x00, 0x39)  # CODECOPY
    ) + bytes((0x60, len(runtime), 0x60, 0x00, 0xF3))  # RETURN
    assert len(copy_and_return) == 12
    return constructor + copy_and_return + runtime


def _send(
    w3: Web3,
    sender: LocalAccount,
    nonce: int,
    *,
    to: ChecksumAddress | None = None,
    value: int = 0,
    data: bytes = b"",
    gas: int = 21_000,
) -> HexBytes:
    tx: TransactionDictType = {
        "value": value,
        "data": data,
        "gas": gas,
        "maxFeePerGas": MAX_FEE_PER_GAS,
        "maxPriorityFeePerGas": PRIORITY_FEE,
        "nonce": nonce,
        "chainId": CHAIN_ID,
    }
    if to is not None:
        tx["to"] = HexStr(to)
    signed = sender.sign_transaction(tx)
    return w3.eth.send_raw_transaction(signed.raw_transaction)


def _total_fees(w3: Web3) -> int:
    """Sum of fees paid by every transaction on the chain."""
    fees = 0
    for number in range(1, w3.eth.block_number + 1):
        for tx_hash in w3.eth.get_block(number)["transactions"]:
            assert isinstance(tx_hash, bytes)
            receipt = w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            fees += receipt["gasUsed"] * receipt["effectiveGasPrice"]
    return fees


def test_a_value_transfer_and_a_contract_deployment_survive_close_and_reopen(
    tmp_path: Path,
) -> None:
    sender = Account.create()
    recipient = Account.create().address
    with EmbeddedChain(tmp_path, {sender.address: FUNDING}) as chain:
        assert chain.created
        w3 = chain.w3
        transfer_hash = _send(w3, sender, 0, to=recipient, value=VALUE)
        deploy_hash = _send(w3, sender, 1, data=_init_code(), gas=200_000)
        deploy_receipt = w3.eth.get_transaction_receipt(deploy_hash)
        contract = deploy_receipt["contractAddress"]
        assert contract is not None
        expected_sender_balance = w3.eth.get_balance(sender.address)

    with EmbeddedChain(tmp_path) as chain:
        assert not chain.created
        w3 = chain.w3
        assert w3.eth.chain_id == chain.chain_id == CHAIN_ID
        assert w3.eth.block_number == 2
        assert w3.eth.get_transaction_count(sender.address) == 2
        assert w3.eth.get_balance(recipient) == VALUE
        assert w3.eth.get_balance(sender.address) == expected_sender_balance
        assert expected_sender_balance == FUNDING - VALUE - _total_fees(w3)

        transfer_receipt = w3.eth.get_transaction_receipt(transfer_hash)
        assert transfer_receipt["status"] == 1
        assert transfer_receipt["blockNumber"] == 1
        assert w3.eth.get_transaction_receipt(deploy_hash) == deploy_receipt
        block = w3.eth.get_block(2)
        assert block["transactions"] == [deploy_hash]

        assert w3.eth.get_code(contract) == _runtime_code()
        assert w3.eth.get_storage_at(contract, 0) == STORED_VALUE.to_bytes(32, "big")
        call_result = w3.eth.call({"to": contract, "from": sender.address})
        assert call_result == STORED_VALUE.to_bytes(32, "big")

        logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": contract})
        assert len(logs) == 1
        assert logs[0]["topics"] == [HexBytes(STORED_TOPIC)]
        assert logs[0]["data"] == STORED_VALUE.to_bytes(32, "big")
        assert logs[0]["transactionHash"] == deploy_hash
        assert logs[0]["blockNumber"] == 2


def test_every_acknowledged_transaction_survives_kill_9(tmp_path: Path) -> None:
    sender = Account.create()
    recipient = Account.create().address
    kill_after = 25
    writer = subprocess.Popen(
        [
            sys.executable,
            __file__,
            str(tmp_path),
            sender.key.to_0x_hex(),
            recipient,
            "100000",  # far more than it gets to send: it must die mid-run
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # A writer that hangs must fail the test, not the suite.
    watchdog = threading.Timer(60, writer.kill)
    watchdog.start()
    try:
        assert writer.stdout is not None
        acknowledged: list[str] = []
        for line in writer.stdout:
            acknowledged.append(line.strip())
            if len(acknowledged) == kill_after:
                os.kill(writer.pid, signal.SIGKILL)
                break
        # Lines the writer printed before it died were acknowledged too.
        acknowledged += writer.stdout.read().split()
        writer.wait()
        assert writer.stderr is not None
        stderr = writer.stderr.read()
    finally:
        watchdog.cancel()
    assert writer.returncode == -signal.SIGKILL, stderr
    assert len(acknowledged) >= kill_after

    with EmbeddedChain(tmp_path, {sender.address: FUNDING}) as chain:
        w3 = chain.w3
        for tx_hash in acknowledged:
            assert w3.eth.get_transaction_receipt(HexBytes(tx_hash))["status"] == 1
        # The transaction in flight at the kill may or may not have become durable.
        mined = w3.eth.get_transaction_count(sender.address)
        assert len(acknowledged) <= mined <= len(acknowledged) + 1
        assert int(w3.eth.block_number) == mined  # one block per transaction, none torn
        assert w3.eth.get_balance(recipient) == VALUE * mined
        assert w3.eth.get_balance(sender.address) == FUNDING - VALUE * mined - _total_fees(w3)

        # And the chain carries on from there.
        _send(w3, sender, mined, to=recipient, value=VALUE)
        assert w3.eth.get_balance(recipient) == VALUE * (mined + 1)


def test_opening_the_same_data_dir_twice_at_once_raises_chain_locked_error(
    tmp_path: Path,
) -> None:
    with EmbeddedChain(tmp_path), pytest.raises(ChainLockedError, match=str(tmp_path)):
        EmbeddedChain(tmp_path)
    # Closing releases the lock.
    with EmbeddedChain(tmp_path) as chain:
        assert not chain.created


def test_a_locked_data_dir_is_a_ledger_error_and_still_a_runtime_error() -> None:
    # The API answers any ChainUnavailable with 503; older callers caught RuntimeError.
    assert issubclass(ChainLockedError, ChainUnavailable)
    assert issubclass(ChainLockedError, LedgerError)
    assert issubclass(ChainLockedError, RuntimeError)


def test_genesis_funding_applies_only_on_the_first_start(tmp_path: Path) -> None:
    first = Account.create().address
    second = Account.create().address
    with EmbeddedChain(tmp_path, {first: FUNDING}):
        pass
    with EmbeddedChain(tmp_path, {second: FUNDING}) as chain:
        assert chain.w3.eth.get_balance(first) == FUNDING
        assert chain.w3.eth.get_balance(second) == 0


def test_a_call_without_a_sender_is_refused_with_a_hint(tmp_path: Path) -> None:
    with EmbeddedChain(tmp_path) as chain, pytest.raises(ValueError, match="default_account"):
        chain.w3.eth.call({"to": Account.create().address})


def test_the_store_reads_its_pending_writes_and_tombstones(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path / "kv")
    store[b"kept"] = b"1"
    store[b"dropped"] = b"2"
    store.flush()
    store[b"new"] = b"3"
    del store[b"dropped"]
    assert store[b"new"] == b"3"
    assert not store.exists(b"dropped")
    with pytest.raises(KeyError):
        del store[b"never-written"]
    store.flush()
    store.close()

    reopened = LmdbStore(tmp_path / "kv")
    assert reopened[b"kept"] == b"1"
    assert reopened[b"new"] == b"3"
    assert b"dropped" not in reopened
    reopened.close()


def _write_until_killed(data_dir: Path, key: str, recipient: ChecksumAddress, count: int) -> None:
    """Writer process: print each transaction hash once send_raw_transaction returned."""
    sender = Account.from_key(key)
    with EmbeddedChain(data_dir, {sender.address: FUNDING}) as chain:
        first = chain.w3.eth.get_transaction_count(sender.address)
        for nonce in range(first, first + count):
            tx_hash = _send(chain.w3, sender, nonce, to=recipient, value=VALUE)
            print(tx_hash.to_0x_hex(), flush=True)


if __name__ == "__main__":
    _write_until_killed(
        Path(sys.argv[1]), sys.argv[2], Web3.to_checksum_address(sys.argv[3]), int(sys.argv[4])
    )


def test_old_transactions_are_found_by_hash_after_many_blocks_and_a_reopen(
    tmp_path: Path,
) -> None:
    from web3.exceptions import TransactionNotFound

    sender: LocalAccount = Account.create()
    hashes: list[HexBytes] = []
    with EmbeddedChain(tmp_path / "chain", {sender.address: FUNDING}) as chain:
        w3 = chain.w3
        for nonce in range(25):
            hashes.append(_send(w3, sender, nonce, to=Account.create().address, value=VALUE))
        first = w3.eth.get_transaction_receipt(hashes[0])
        assert first["blockNumber"] == 1 and first["status"] == 1
    with EmbeddedChain(tmp_path / "chain", {sender.address: FUNDING}) as chain:
        w3 = chain.w3
        for i, tx_hash in enumerate(hashes):
            receipt = w3.eth.get_transaction_receipt(tx_hash)
            assert receipt["transactionHash"] == tx_hash
            assert receipt["blockNumber"] == i + 1
            assert w3.eth.get_transaction(tx_hash)["nonce"] == i
        with pytest.raises(TransactionNotFound):
            w3.eth.get_transaction_receipt(HexBytes(b"\x11" * 32))


def test_log_queries_answer_what_eth_tester_answers(tmp_path: Path) -> None:
    """The embedded chain reads ``eth_getLogs`` from py-evm's receipts (ledger.chain.embedded
    ``_logs_in_range``); the entries equal eth-tester's own, range by range and by address."""
    from ledger import open_chain
    from ledger.chain.embedded import _logs_in_range
    from ledger.mirror.engine import make_engine
    from ledger.mirror.indexer import index
    from tests.world import SLOT, new_world

    with open_chain("embedded", tmp_path) as chain:
        w = new_world(chain)
        a, b = w.household(), w.household(prosumer=False, topup_ueur=5_000)
        w.meter(a, SLOT, export_Wh=700)
        w.meter(b, SLOT, import_Wh=900)
        tester = chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        head = int(chain.w3.eth.block_number)
        contract = w.client.address
        for low, high, address in [
            (0, head, contract),
            (0, head, None),
            (2, head - 1, contract),
            (head, head, [contract, Account.create().address]),
            (0, head, Account.create().address),
        ]:
            query: dict[str, object] = {"from_block": low, "to_block": high}
            if address is not None:
                query["address"] = address
            ours = _logs_in_range(tester.backend.chain, (query,))
            theirs = list(tester.get_logs(from_block=low, to_block=high, address=address))
            assert ours == theirs, (low, high, address)
        assert _logs_in_range(tester.backend.chain, ({"from_block": 0, "to_block": head},))
        # Beyond the head, or with topics, eth-tester answers as before.
        assert (
            _logs_in_range(tester.backend.chain, ({"from_block": 0, "to_block": head + 5},)) is None
        )
        topics = {"from_block": 0, "to_block": head, "topics": []}
        assert _logs_in_range(tester.backend.chain, (topics,)) is None
        # Through web3 and the client, the indexer mirrors the same events.
        engine = make_engine(f"sqlite:///{tmp_path / 'mirror.db'}")
        assert index(w.client, engine).events == len(w.client.events(0, head)) > 0


def test_direct_reads_give_the_receipts_and_logs_web3_gives(tmp_path: Path) -> None:
    """The client reads the embedded chain's receipts and logs through ``DirectReads`` instead
    of ``w3.eth``; every field it uses equals web3's answer, for every transaction on the
    chain (a reverted one included) and for log ranges within and beyond the head."""
    from ledger import open_chain
    from ledger.errors import LedgerError
    from tests.world import SLOT, new_world

    with open_chain("embedded", tmp_path) as chain:
        w = new_world(chain)
        a, b = w.household(), w.household(prosumer=False, topup_ueur=5_000)
        w.meter(a, SLOT, export_Wh=700)
        w.meter(b, SLOT, import_Wh=900)
        # Registering a's account again reverts; sent without the dry run, it is mined.
        with pytest.raises(LedgerError):
            w.client.transact(
                w.operator,
                "registerHousehold",
                a.account.address,
                Account.create().address,
                True,
                0,
                0,
                check_first=False,
            )
        # Two transfers in one block: gas used is per transaction, not cumulative.
        tester = chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        second_sender = w.account()
        tester.disable_auto_mine_transactions()
        for sender in (w.operator, second_sender):
            nonce = chain.w3.eth.get_transaction_count(sender.address)
            _send(chain.w3, sender, nonce, to=a.account.address, value=VALUE)
        tester.mine_blocks(1)
        assert len(chain.w3.eth.get_block("latest")["transactions"]) == 2
        tester.enable_auto_mine_transactions()
        direct = chain.w3.provider.direct_reads  # type: ignore[attr-defined]
        head = int(chain.w3.eth.block_number)
        statuses = []
        for number in range(head + 1):
            for tx_hash in chain.w3.eth.get_block(number)["transactions"]:
                assert isinstance(tx_hash, bytes)
                theirs = chain.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
                ours = direct.receipt(bytes(tx_hash))
                assert ours is not None
                for key in ("status", "blockNumber", "gasUsed"):
                    assert ours[key] == theirs[key], (number, key)
                assert _log_fields(ours["logs"]) == _log_fields(theirs["logs"])
                statuses.append(ours["status"])
        assert statuses.count(0) == 1 and statuses.count(1) == len(statuses) - 1
        assert direct.receipt(b"\x11" * 32) is None
        for low, high in [(0, head), (2, head - 1), (head, head)]:
            query = {"address": w.client.address, "fromBlock": low, "toBlock": high}
            theirs = chain.w3.eth.get_logs(query)  # type: ignore[arg-type]
            ours = direct.logs(w.client.address, low, high)
            assert len(ours) > 0 or low == head
            assert _log_fields(ours) == _log_fields(theirs), (low, high)
            assert w.client.decode_logs(ours) == w.client.decode_logs(theirs)
        assert direct.logs(w.client.address, 0, head + 1) is None
        assert direct.logs(Account.create().address, 0, head) == []


def _log_fields(logs: object) -> list[tuple[object, ...]]:
    """The fields of each log the client reads, in plain types."""
    assert isinstance(logs, list | tuple)
    return [
        (
            log["address"],
            [bytes(t) for t in log["topics"]],
            bytes(log["data"]),
            int(log["blockNumber"]),
            int(log["logIndex"]),
            bytes(log["transactionHash"]),
        )
        for log in logs
    ]


def test_without_the_dry_run_a_revert_still_raises_its_typed_error_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """``check_first=False`` (what ``voisin simulate`` uses for its own set-up) sends without
    the embedded chain's dry run: the revert is mined, and the client replays it to raise the
    same typed error the dry run would have raised. Nothing but the sender's nonce changes."""
    from ledger import open_chain
    from ledger.errors import AccountAlreadyRegistered, PriceLimitUnreachable, ZeroAmount
    from tests.world import new_world

    with open_chain("embedded", tmp_path) as chain:
        w = new_world(chain)
        a = w.household(topup_ueur=1_000)
        count, balance = w.client.household_count(), w.client.balance_of(a.account.address)
        blocks = chain.w3.eth.block_number
        for check_first in (True, False):
            with pytest.raises(AccountAlreadyRegistered):
                w.client.register_household(
                    w.operator,
                    a.account.address,
                    Account.create().address,
                    prosumer=True,
                    check_first=check_first,
                )
            with pytest.raises(ZeroAmount):
                w.client.top_up(w.operator, a.account.address, 0, check_first=check_first)
            with pytest.raises(PriceLimitUnreachable):
                w.client.post_offer(a.account, 10**12, 1, check_first=check_first)
        # The dry runs sent nothing; each of the three sends without one mined a failed block.
        assert chain.w3.eth.block_number == blocks + 3
        assert w.client.household_count() == count
        assert w.client.balance_of(a.account.address) == balance


def test_views_read_directly_give_web3s_answers(tmp_path: Path) -> None:
    """On the embedded chain the client executes views without web3 (``DirectReads.call``);
    each view's answer, in value and type, equals web3's, and a view that reverts or an
    argument that does not fit still gives the errors web3's path gives."""
    from ledger import open_chain
    from ledger.errors import InvalidArgument, LedgerError
    from tests.world import SLOT, new_world

    with open_chain("embedded", tmp_path) as chain:
        w = new_world(chain)
        a, b = w.household(), w.household(prosumer=False, topup_ueur=5_000)
        w.meter(a, SLOT, export_Wh=700)
        w.meter(b, SLOT, import_Wh=900)
        offer = w.client.post_offer(a.account, 60_000, SLOT, SLOT + 4)
        client = w.client
        assert client._direct is not None
        calls: list[tuple[str, tuple[object, ...]]] = [
            ("tariffs", ()),
            ("totalSupply", ()),
            ("balanceOf", (a.account.address,)),
            ("feeRecipient", ()),
            ("paused", ()),
            ("getHousehold", (a.id,)),
            ("householdOf", (b.account.address,)),
            ("householdCount", ()),
            ("meterState", (a.meter.address,)),
            ("slotEnergy", (b.id, SLOT)),
            ("getOffer", (offer,)),
            ("offerCount", ()),
            ("offerUsedWh", (offer, SLOT)),
            ("batchSettled", (SLOT, 0)),
            ("domainSeparator", ()),
            ("readingDigest", (a.meter.address, SLOT, 1, 2)),
        ]
        for name, args in calls:
            assert name in client._outputs, name
            theirs = getattr(client.contract.functions, name)(*args).call()
            ours = client._direct_view(name, args)
            assert ours == theirs, name
            assert type(ours) is type(theirs), name
            if isinstance(theirs, tuple):
                assert [type(x) for x in ours] == [type(x) for x in theirs], name
        # A call that reverts is left to web3 (None), so its typed error is unchanged.
        empty = client.calldata("settleBatch", SLOT, 0, [])
        assert client._direct.call(w.operator.address, client.address, empty) is None
        with pytest.raises(LedgerError):
            client.transact(w.operator, "settleBatch", SLOT, 0, [])
        # An argument that does not fit its type goes to web3 as before.
        assert client._direct_view("slotEnergy", (-1, SLOT)) is None
        with pytest.raises(Exception) as raised:
            client.credits_of(-1, SLOT)
        assert not isinstance(raised.value, InvalidArgument)


def test_set_up_transactions_share_blocks_and_give_the_results_of_single_sends(
    tmp_path: Path,
) -> None:
    """Gas top-ups and standing orders sent together share blocks on the embedded chain;
    each result (order id, events, gas) is what a send of its own gives, the logs of a
    shared block are numbered in the block, and the blocks survive a reopen."""
    from ledger import open_chain
    from ledger.chain.embedded import SHARED_BLOCK_TRANSACTIONS
    from ledger.errors import LedgerError
    from ledger.types import OrderRequest
    from tests.world import SLOT, new_world

    with open_chain("embedded", tmp_path) as chain:
        w = new_world(chain)
        members = [w.household() for _ in range(11)]
        fresh = [Account.create() for _ in range(10)]
        head = int(chain.w3.eth.block_number)
        chain.fund_many([a.address for a in fresh], VALUE)
        assert all(chain.w3.eth.get_balance(a.address) == VALUE for a in fresh)
        after_funds = int(chain.w3.eth.block_number)
        assert after_funds - head == -(-10 // SHARED_BLOCK_TRANSACTIONS)
        # One order posted alone, for its gas; then 11 together.
        alone = w.client.transact(members[0].account, "postOffer", 60_000, 0, SLOT, SLOT + 9)
        requests = [
            OrderRequest(m.account, "offer" if k % 2 else "bid", 70_000 + k, SLOT, SLOT + 9)
            for k, m in enumerate(members)
        ]
        before = int(chain.w3.eth.block_number)
        ids = w.client.post_orders(requests)
        mined = int(chain.w3.eth.block_number) - before
        assert mined == -(-len(requests) // SHARED_BLOCK_TRANSACTIONS) < len(requests)
        offers = [i for i, r in zip(ids, requests, strict=True) if r.side == "offer"]
        bids = [i for i, r in zip(ids, requests, strict=True) if r.side == "bid"]
        assert offers == list(range(2, 2 + len(offers)))
        assert bids == list(range(1, 1 + len(bids)))
        for order_id, request in zip(ids, requests, strict=True):
            order = w.client.offer(order_id) if request.side == "offer" else w.client.bid(order_id)
            assert order.price_limit_ueur_per_kWh == request.price_limit_ueur_per_kWh
        # Logs: numbered 0, 1, ... within each shared block, through every read path.
        events = w.client.events(before + 1, before + mined)
        assert len(events) == len(requests)
        for number in range(before + 1, before + mined + 1):
            in_block = [e.log_index for e in events if e.block_number == number]
            assert in_block == list(range(len(in_block))) and len(in_block) > 1
        query = {"address": w.client.address, "fromBlock": before + 1, "toBlock": before + mined}
        assert [int(log["logIndex"]) for log in chain.w3.eth.get_logs(query)] == [  # type: ignore[arg-type]
            e.log_index for e in events
        ]
        # Gas charged is the gas each used, the same as an offer posted alone.
        receipt = chain.w3.provider.direct_reads.receipt(  # type: ignore[attr-defined]
            bytes(HexBytes(w.client.events(before + 1, before + 1)[1].tx_hash))
        )
        assert receipt["gasUsed"] < 2 * alone.gas_used
        # A call that would revert raises its typed error; the calls before it stay mined.
        bad = [
            OrderRequest(members[0].account, "offer", 50_000, SLOT, SLOT + 1),
            OrderRequest(members[1].account, "offer", 50_000, SLOT + 5, SLOT + 1),
        ]
        with pytest.raises(LedgerError):
            w.client.post_orders(bad)
        count = w.client.offer_count()
        address, abi = w.client.address, w.client.contract.abi
    with open_chain("embedded", tmp_path) as chain:
        from ledger.contract.client import VoisinClient

        reopened = VoisinClient(chain.w3, address, list(abi), estimate_gas=False)
        assert reopened.offer_count() == count
        assert int(chain.w3.eth.block_number) >= before + mined


def test_blocks_read_again_come_from_the_decoded_blocks_and_follow_a_rewound_chain() -> None:
    """Receipts and logs of recent blocks are kept decoded by block hash; a chain rewound
    (eth-tester's snapshots, in tests) and mined again is read as it is now."""
    from ledger import open_chain
    from ledger.chain.embedded import _block_and_receipts, _logs_in_range
    from tests.world import new_world

    with open_chain("memory") as chain:
        w = new_world(chain)
        tester = chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        py_chain = tester.backend.chain
        snapshot = tester.take_snapshot()
        a = w.household()
        head = int(chain.w3.eth.block_number)
        query = ({"from_block": head, "to_block": head},)
        first = _logs_in_range(py_chain, query)
        assert first and _logs_in_range(py_chain, query) == first
        assert _block_and_receipts(py_chain, head) is _block_and_receipts(py_chain, head)
        tester.revert_to_snapshot(snapshot)
        b = w.household(prosumer=False)
        assert a.account.address != b.account.address
        while int(chain.w3.eth.block_number) < head:
            tester.mine_blocks(1)
        again = _logs_in_range(py_chain, query)
        theirs = list(tester.get_logs(from_block=head, to_block=head))
        assert again == theirs
        assert again != first


def test_receipts_are_decoded_as_py_evm_decodes_them(tmp_path: Path) -> None:
    """Every receipt of a chain (contract calls with logs, a revert, value transfers, and a
    legacy transaction's receipt) read through ``_block_and_receipts`` has py-evm's fields."""
    from ledger import open_chain
    from ledger.chain.embedded import _block_and_receipts
    from tests.world import SLOT, new_world

    with open_chain("embedded", tmp_path) as chain:
        w = new_world(chain)
        a = w.household()
        w.meter(a, SLOT, export_Wh=700)
        sender = w.operator
        legacy = sender.sign_transaction(
            {
                "to": a.account.address,
                "value": VALUE,
                "gas": 21_000,
                "gasPrice": MAX_FEE_PER_GAS,
                "nonce": chain.w3.eth.get_transaction_count(sender.address),
                "chainId": CHAIN_ID,
            }
        )
        chain.w3.eth.send_raw_transaction(legacy.raw_transaction)
        py_chain = chain.w3.provider.ethereum_tester.backend.chain  # type: ignore[attr-defined]
        head = py_chain.get_canonical_head().block_number
        kinds: set[int | None] = set()
        logs = 0
        for number in range(head + 1):
            block, ours = _block_and_receipts(py_chain, number)
            theirs = block.get_receipts(py_chain.chaindb)
            assert len(ours) == len(theirs) == len(block.transactions)
            for mine, py_evm in zip(ours, theirs, strict=True):
                kinds.add(py_evm.type_id if hasattr(py_evm, "type_id") else None)
                assert mine.state_root == py_evm.state_root
                assert mine.gas_used == py_evm.gas_used
                assert [
                    (log.address, [int.from_bytes(t, "big") for t in log.topics], log.data)
                    for log in mine.logs
                ] == [(log.address, list(log.topics), log.data) for log in py_evm.logs]
                logs += len(mine.logs)
        assert logs > 5
        assert None in kinds and 2 in kinds, kinds  # legacy and EIP-1559 receipts
