"""Security properties of the contract that SECURITY.md names: a signed reading is bound to one
chain and one deployment, the contract makes no call that could re-enter it, and a household's
account key can be rotated without its money or orders moving to anyone else."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from ledger import Chain, errors, open_chain
from ledger.contract.compile import load_artifact
from ledger.readings.eip712 import Reading, sign_reading
from tests.conftest import ANVIL_BIN, ANVIL_KEY, _free_port, _wait_for
from tests.world import SLOT, World, new_world

#: Opcodes that hand control to other code: a contract without them cannot be re-entered.
#: STATICCALL (0xfa) is left out: it cannot change state, and ecrecover runs through it.
CALLING_OPCODES = {0xF1: "CALL", 0xF2: "CALLCODE", 0xF4: "DELEGATECALL", 0xFF: "SELFDESTRUCT"}


#: Opcodes after which the next byte is not reached by falling through: only a JUMPDEST
#: (0x5b) starts reachable code again. The compiler appends constant data (event topics) after
#: the last of them, which a plain walk would read as opcodes.
_TERMINATORS = {0x00, 0x56, 0xF3, 0xFD, 0xFE, 0xFF}


def _opcodes(code: bytes) -> list[int]:
    """The reachable opcodes of EVM code: PUSH data, the trailing CBOR metadata and the bytes
    between a terminating opcode and the next JUMPDEST (where no jump can land) skipped."""
    metadata = int.from_bytes(code[-2:], "big") + 2
    body = code[: len(code) - metadata]
    ops: list[int] = []
    i = 0
    live = True
    while i < len(body):
        op = body[i]
        live = live or op == 0x5B
        if live:
            ops.append(op)
        i += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
        if op in _TERMINATORS:
            live = False
    return ops


def test_the_opcode_walk_skips_data_but_not_code() -> None:
    metadata = bytes(2)  # no CBOR: a length of 0
    # A CALL in PUSH data and one after INVALID, before any JUMPDEST, cannot run ...
    hidden = bytes([0x63, 0xF1, 0xF1, 0xF1, 0xF1, 0x50, 0xFE, 0xF1, 0xF4])
    assert _opcodes(hidden + metadata) == [0x63, 0x50, 0xFE]
    # ... one after a JUMPDEST can.
    assert 0xF1 in _opcodes(hidden + bytes([0x5B, 0xF1]) + metadata)


def test_contract_code_holds_no_call_that_could_reenter() -> None:
    code = bytes.fromhex(load_artifact("Voisin")["deployedBytecode"].removeprefix("0x"))
    ops = _opcodes(code)
    # The walk reached real code: the precompile call behind ecrecover is there.
    assert 0xFA in ops
    assert {CALLING_OPCODES[op] for op in ops if op in CALLING_OPCODES} == set()


def test_reading_accepted_by_one_deployment_is_refused_by_a_second(embedded_chain: Chain) -> None:
    first, second = new_world(embedded_chain), new_world(embedded_chain)
    assert first.client.address != second.client.address
    meter = Account.create()
    for w in (first, second):
        w.client.register_household(w.operator, w.account().address, meter.address, prosumer=True)
    reading = Reading(meter.address, SLOT, 0, 500)
    signed = sign_reading(meter.key, reading, first.domain)
    first.client.commit_readings(first.operator, [signed])
    assert first.client.credits_of(1, SLOT) == 500
    with pytest.raises(errors.InvalidSignature) as err:
        second.client.commit_readings(second.operator, [signed])
    assert err.value.values == {"index": 0, "meter": meter.address, "slot": SLOT}
    assert second.client.credits_of(1, SLOT) == 0
    # The same reading signed for the second deployment is accepted there.
    second.client.commit_readings(
        second.operator, [sign_reading(meter.key, reading, second.domain)]
    )
    assert second.client.credits_of(1, SLOT) == 500


@pytest.fixture
def two_anvil_chains(tmp_path: Path) -> Iterator[tuple[Chain, Chain]]:
    """Two fresh anvil nodes with different chain ids, the same funded operator at nonce 0."""
    if not ANVIL_BIN.exists():
        pytest.skip("anvil is not installed (run scripts/install)")
    procs: list[subprocess.Popen[bytes]] = []
    chains: list[Chain] = []
    try:
        for chain_id in (31337, 31338):
            port = _free_port()
            proc = subprocess.Popen(
                [str(ANVIL_BIN), "--port", str(port), "--chain-id", str(chain_id), "--silent"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(proc)
            url = f"http://127.0.0.1:{port}"
            _wait_for(url, proc)
            chains.append(open_chain(url, operator_key=ANVIL_KEY))
        yield chains[0], chains[1]
    finally:
        for chain in chains:
            chain.close()
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.mark.anvil
def test_reading_accepted_on_one_chain_is_refused_on_another_chain_id(
    two_anvil_chains: tuple[Chain, Chain],
) -> None:
    a, b = (new_world(chain) for chain in two_anvil_chains)
    # Same deployer, same nonce: the same contract address on both chains, so only the chain
    # id in the EIP-712 domain tells the two deployments apart.
    assert a.client.address == b.client.address
    assert a.chain.chain_id != b.chain.chain_id
    assert a.domain != b.domain
    meter = Account.create()
    for w in (a, b):
        w.client.register_household(w.operator, w.account().address, meter.address, prosumer=True)
    signed = sign_reading(meter.key, Reading(meter.address, SLOT, 0, 700), a.domain)
    a.client.commit_readings(a.operator, [signed])
    assert a.client.credits_of(1, SLOT) == 700
    with pytest.raises(errors.InvalidSignature):
        b.client.commit_readings(b.operator, [signed])
    assert b.client.credits_of(1, SLOT) == 0


@pytest.fixture
def w(embedded_chain: Chain) -> World:
    return new_world(embedded_chain)


def test_rotated_account_keeps_balance_and_orders_and_the_old_key_is_refused(w: World) -> None:
    seller = w.household(prosumer=True)
    buyer = w.household(prosumer=False, topup_ueur=2_000_000)
    w.meter(seller, SLOT, export_Wh=1000)
    w.meter(buyer, SLOT, import_Wh=1000)
    offer = w.client.post_offer(seller.account, 80_000, SLOT)
    old, new = buyer.account, w.account()
    w.client.top_up(w.operator, new.address, 5)  # money the new key already held joins in
    result = w.client.rotate_account(w.operator, buyer.id, new.address)
    assert result.named("AccountRotated")[0].args == {
        "household": buyer.id,
        "oldAccount": old.address,
        "newAccount": new.address,
    }
    assert w.client.household(buyer.id).account == new.address
    assert w.client.household_of(new.address) == buyer.id
    assert w.client.household_of(old.address) == 0
    assert (w.client.balance_of(old.address), w.client.balance_of(new.address)) == (0, 2_000_005)
    # The old key can neither trade nor move money any more.
    with pytest.raises(errors.NotHousehold):
        w.client.take_offer(old, offer, SLOT, 100)
    with pytest.raises(errors.InsufficientBalance):
        w.client.transfer(old, w.operator.address, 1)
    # The new key trades for the household; the seller's offer stays open.
    w.client.take_offer(new, offer, SLOT, 100)
    assert w.client.slot_energy(buyer.id, SLOT).bought_Wh == 100
    # The seller rotates too: its open offer is cancelled only by its new key.
    seller_new = w.account()
    w.client.rotate_account(w.operator, seller.id, seller_new.address)
    with pytest.raises(errors.NotOrderOwner):
        w.client.cancel_offer(seller.account, offer)
    w.client.cancel_offer(seller_new, offer)


def test_account_rotation_refuses_taken_zero_and_unknown(w: World) -> None:
    a, b = w.household(), w.household()
    with pytest.raises(errors.AccountAlreadyRegistered) as err:
        w.client.rotate_account(w.operator, a.id, b.account.address)
    assert err.value.values == {"account": b.account.address}
    with pytest.raises(errors.ZeroAddress):
        w.client.rotate_account(w.operator, a.id, "0x" + "00" * 20)
    with pytest.raises(errors.UnknownHousehold):
        w.client.rotate_account(w.operator, 99, Account.create().address)
    with pytest.raises(errors.Unauthorized):
        w.client.rotate_account(b.account, b.id, Account.create().address)
