"""Settlement benchmark: gas per settled fill and fills settled per second.

Usage::

    .venv/bin/python scripts/bench_settlement.py [--backends embedded,anvil]
        [--sizes 1,10,100,500] [--layouts neighbourhood,merge-walk,worst]
        [--reading-sizes 1,10,100] [--takes 20] [--repeat 3] [--first-sale-size 100]
        [--estimate-max-fills 100] [--no-trace] [--anvil-args ARGS] [--json FILE]

(``scripts/bench`` runs it with the project's venv.) A default run takes about 4-8 minutes on
a shared 2-core machine; results and their reading are in BENCHMARKS.md.

For every backend (the persistent embedded chain in a temporary data dir, and an anvil node
that the script starts on a free localhost port and stops at the end) it deploys a fresh Voisin
contract, sets up a neighbourhood of households, and then measures:

* **gas per settled fill**: ``settleBatch`` batches of each size, one transaction each;
  gas per fill = receipt ``gasUsed`` / fills, so the 21,000 base cost, calldata and every
  check of the contract are included. Layouts:

  - ``neighbourhood``: N fills among ceil(N/4) sellers and ceil(N/4) buyers, each with one
    standing offer or bid; with k = ceil(N/4), fill i goes from seller i mod k to buyer
    (i mod k + i div k) mod k, so every (seller, buyer) pair is distinct and each party is in
    about four fills;
  - ``merge-walk``: N fills as one pass of a pay-as-clear merge walk over sorted offers and
    bids produces them: round(0.4 (N+1)) sellers and the rest of N+1 parties buyers, each fill
    followed by a step to the next seller or the next buyer (N = sellers + buyers - 1, the
    most fills such a walk can yield), so each party is in one to three fills;
  - ``worst``: every fill has its own seller, buyer, offer and bid (all storage cold);
  - ``first-sale``: as ``worst``, and each seller holds no vEUR before the batch (its first
    sale ever), in case crediting a zero balance costs more.

  Every household except the first-sale sellers holds vEUR before its batch (steady state:
  prosumers have sold or topped up before), and so does the fee recipient.
* **the direct-take path**: ``takeOffer`` transactions, each by its own buyer from its own
  offer (a take is one transaction, so all its storage is cold whatever the layout);
* **gas per committed reading**: ``commitReadings`` batches of signed readings;
* **gas per forward position**: ``clearForwards`` batches of day-ahead positions (each its
  own seller and buyer, ahead of a slot none of them has metered), then, once their readings
  for that slot are committed (untimed), ``settleForwards`` of the same positions, each
  delivered in full; and ``clearForwards`` of the same pairs a day beyond the chain's clock
  (a live day-ahead market's case, where the contract reads no meter: none can have read a
  slot the clock has not reached), left open;
* **throughput**: the wall time of each settle (and take, and reading) transaction from
  ``send_raw_transaction`` to its receipt, with ``time.perf_counter``; fills/s = fills / that
  time. Each (layout, size) of at most 100 fills is settled ``--repeat`` times, each time in a
  new slot, and the median is reported; larger batches and the first-sale batch run once.
  The ``eth_estimateGas`` that the typed client runs before sending is timed separately
  (first run of batches up to ``--estimate-max-fills`` fills) and is not part of fills/s;
  other batches are sent with a fixed gas limit, which does not change ``gasUsed``.

Set-up (registering households, gas money, top-ups, readings, orders) is not timed. Each fill
is valid: the seller's credits and the buyer's metered import for the slot cover it, the buyer
can pay, and the clearing price (125,000 ueur/kWh) lies between every offer limit
(50,000-99,999) and every bid limit (150,000-219,999), inside the default tariff band
(feed-in 40,000, retail 250,000, grid fee 30,000 ueur/kWh). A batch that the contract refuses
stops the run with the contract's error.

On anvil the set-up is mined in a few large blocks (automine off, ``evm_mine``) and the
measured transactions with automine, one per block: anvil's cost per block grows with the
blocks and the state it holds. A plain ether transfer is timed after the set-up as each
backend's floor per transaction.

Unless ``--no-trace``, a second, untimed anvil started with ``--steps-tracing`` settles the same
100-fill batches (the largest size up to 100) and one take, and ``debug_traceTransaction`` adds
up the gas of their opcodes by kind: where the gas of a fill goes.

Progress goes to stderr, the tables to stdout; ``--json FILE`` writes every figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run from a checkout without an editable install
    sys.path.insert(0, str(REPO_ROOT))

from eth_abi.abi import encode as abi_encode  # noqa: E402
from eth_account import Account  # noqa: E402
from eth_account.signers.local import LocalAccount  # noqa: E402
from eth_typing import HexStr  # noqa: E402
from eth_utils.crypto import keccak  # noqa: E402
from hexbytes import HexBytes  # noqa: E402
from web3 import Web3  # noqa: E402
from web3.exceptions import (  # noqa: E402
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
)
from web3.types import RPCEndpoint, TxParams  # noqa: E402

from ledger.chain.anvil import ANVIL_BIN, start_anvil  # noqa: E402
from ledger.chain.backends import Chain, open_chain  # noqa: E402
from ledger.contract.client import VoisinClient  # noqa: E402
from ledger.contract.compile import Artifact, load_artifact  # noqa: E402
from ledger.contract.deploy import DEFAULT_TARIFFS, bytecode_sha256, deploy  # noqa: E402
from ledger.readings.eip712 import Reading, SignedReading, sign_reading  # noqa: E402
from ledger.types import OPEN_END  # noqa: E402

#: Anvil's first dev account (public test mnemonic), funded on every anvil start.
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

#: The issue's target: at most this much gas per fill at TARGET_FILLS fills per batch.
TARGET_GAS_PER_FILL = 20_000
TARGET_FILLS = 100
#: EIP-7825 (Osaka): the most gas one transaction may use on a chain that enforces it.
OSAKA_TX_GAS_CAP = 2**24

LAYOUTS = ("neighbourhood", "merge-walk", "worst")
#: Share of the trading households that sell in the merge-walk layout.
MERGE_WALK_SELLER_SHARE = 0.4
FIRST_SALE = "first-sale"
TAKE = "direct take"
#: Uniform (pay-as-clear) price of every batch fill, ueur/kWh.
CLEARING_PRICE = 125_000
BUYER_TOPUP_UEUR = 50_000_000
SELLER_TOPUP_UEUR = 1_000_000
FEE_RECIPIENT_TOPUP_UEUR = 1_000_000
#: Gas money per household. eth-tester checks that the sender of an eth_estimateGas could pay
#: the block gas limit at 1 gwei (0.03 ether), so a buyer that takes needs more than that.
HOUSEHOLD_GAS_WEI = 10**17
#: Unsold export and uncovered import (Wh) left in each reading: residuals go to the grid.
EXPORT_SLACK_WH = 20
IMPORT_SLACK_WH = 30
#: Readings per commitReadings transaction during set-up.
SETUP_READINGS_PER_TX = 100
#: Gas limits of transactions sent without an estimate (generous; gasUsed does not depend on
#: the limit).
REGISTER_GAS = 300_000
TOPUP_GAS = 150_000
ORDER_GAS = 200_000
READING_GAS = 80_000
SETTLE_GAS_PER_FILL = 90_000
#: Refresh the fee cap every so many sends.
FEE_REFRESH_SENDS = 200
#: Declared gas per set-up block on anvil: half the 30M block gas limit, the base-fee target.
BATCH_BLOCK_GAS = 15_000_000
#: Plain ether transfers timed after the set-up of each backend.
TRANSFERS = 5


def log(message: str) -> None:
    """A progress line on stderr, stamped with the time since start."""
    print(f"[{time.perf_counter() - _START:6.0f} s] {message}", file=sys.stderr, flush=True)


_START = time.perf_counter()


def fill_energy_Wh(i: int) -> int:
    """Wh of the i-th fill of a batch: 50 to 249 Wh, varied so calldata is not uniform."""
    return 50 + (i * 37) % 200


def offer_limit(j: int) -> int:
    """Price limit of offer j: 50,000 to 99,999 ueur/kWh."""
    return 50_000 + (j * 7_919) % 50_000


def bid_limit(j: int) -> int:
    """Price limit of bid j: 150,000 to 219,999 ueur/kWh."""
    return 150_000 + (j * 104_729) % 70_000


@dataclass(frozen=True)
class Config:
    """What one backend pass measures."""

    sizes: tuple[int, ...]
    layouts: tuple[str, ...]
    repeat: int
    takes: int
    reading_sizes: tuple[int, ...]
    first_sale_size: int
    estimate_max_fills: int
    anvil_args: tuple[str, ...] = ()
    forward_sizes: tuple[int, ...] = ()

    def runs(self, size: int) -> int:
        """Batches settled per (layout, size): large batches once, their set-up dominates."""
        return self.repeat if size <= TARGET_FILLS else 1


# ───────────────────────────── Results ─────────────────────────────


@dataclass
class TxTiming:
    """One measured transaction."""

    tx_hash: str
    gas_used: int
    calldata_bytes: int
    calldata_gas: int
    send_to_receipt_s: float
    estimate_s: float | None


@dataclass
class SettleRun:
    backend: str
    layout: str
    fills: int
    sellers: int
    buyers: int
    energy_Wh: int
    slot: int
    timing: TxTiming

    @property
    def gas_per_settled_fill(self) -> float:
        return self.timing.gas_used / self.fills


@dataclass
class ReadingRun:
    backend: str
    readings: int
    timing: TxTiming

    @property
    def gas_per_reading(self) -> float:
        return self.timing.gas_used / self.readings


@dataclass
class ForwardRun:
    """One size of forward batch: its clearForwards and its settleForwards."""

    backend: str
    positions: int
    clear: TxTiming
    settle: TxTiming
    clear_ahead: TxTiming
    """The same pairs' positions cleared a day beyond the chain's clock."""

    @property
    def clear_gas_per_position(self) -> float:
        return self.clear.gas_used / self.positions

    @property
    def clear_ahead_gas_per_position(self) -> float:
        return self.clear_ahead.gas_used / self.positions

    @property
    def settle_gas_per_position(self) -> float:
        return self.settle.gas_used / self.positions


@dataclass
class TakeRun:
    backend: str
    energy_Wh: int
    timing: TxTiming


@dataclass
class Breakdown:
    """Gas of one traced transaction by kind of opcode (debug_traceTransaction)."""

    layout: str
    fills: int
    gas_used: int
    timed_gas_used: int | None
    timed_calldata_gas: int | None
    intrinsic: int
    calldata: int
    groups: dict[str, int]
    counts: dict[str, int]
    other: dict[str, int]


@dataclass
class BackendResults:
    backend: str
    detail: str
    setup_s: float
    households: int
    settles: list[SettleRun] = field(default_factory=list)
    readings: list[ReadingRun] = field(default_factory=list)
    takes: list[TakeRun] = field(default_factory=list)
    forwards: list[ForwardRun] = field(default_factory=list)
    breakdowns: list[Breakdown] = field(default_factory=list)
    transfers_s: list[float] = field(default_factory=list)


# ───────────────────────────── Chain access ─────────────────────────────


class BenchError(RuntimeError):
    """The benchmark cannot run (missing tool, refused transaction)."""


class Sender:
    """Signs and sends transactions with locally tracked nonces.

    Set-up transactions get a fixed gas limit and are not waited for one by one.
    :meth:`sync` waits until every account's sent transactions are mined; the run then checks
    their effects through views, and the settle transactions check every fill again.
    Measured transactions go through :meth:`timed`.

    The embedded chain mines each transaction before ``send_raw_transaction`` returns. On anvil,
    :meth:`batch_blocks` turns automine off for the set-up and mines blocks of up to
    ``BATCH_BLOCK_GAS`` declared gas with ``evm_mine``: anvil's cost per block grows with the
    number of blocks it has mined (it keeps a state snapshot per block), so thousands of
    one-transaction set-up blocks would slow down every measured transaction after them.
    Blocks stay under half the block gas limit, so the base fee does not rise.
    """

    def __init__(self, chain: Chain, client: VoisinClient) -> None:
        self.w3: Web3 = chain.w3
        self.chain_id = chain.chain_id
        self.client = client
        self.contract = client.contract
        self.block_gas_limit = int(self.w3.eth.get_block("latest")["gasLimit"])
        self._nonces: dict[str, int] = {}
        self._unsynced: set[str] = set()
        self._encoders: dict[str, tuple[bytes, list[str]]] = {}
        self._fee = 0
        self._sends = 0
        self._batching = False
        self._pending_gas = 0

    def _rpc(self, method: str, params: list[Any]) -> Any:
        response = self.w3.provider.make_request(RPCEndpoint(method), params)
        if "error" in response:
            raise BenchError(f"{method} failed: {response['error']}")
        return response.get("result")

    @contextmanager
    def batch_blocks(self, enabled: bool) -> Iterator[None]:
        """Within the block (if ``enabled``), mine set-up transactions in large blocks."""
        if not enabled:
            yield
            return
        self._rpc("anvil_setAutomine", [False])
        self._batching = True
        try:
            yield
            self.sync()
        finally:
            self._batching = False
            self._rpc("anvil_setAutomine", [True])

    def _mine(self) -> None:
        self._rpc("evm_mine", [])
        self._pending_gas = 0

    def _submit(self, raw: bytes, gas: int) -> HexBytes:
        if self._batching and self._pending_gas + gas > BATCH_BLOCK_GAS:
            self._mine()
        tx_hash = HexBytes(self.w3.eth.send_raw_transaction(raw))
        if self._batching:
            self._pending_gas += gas
        return tx_hash

    def encode(self, function: str, args: Sequence[Any]) -> str:
        """Calldata of ``function(*args)``.

        Encoded with eth-abi from a selector and types prepared once: web3's
        ``encode_abi`` validates the whole ABI on every call, which costs more client CPU
        than anvil spends executing a set-up transaction.
        """
        encoder = self._encoders.get(function)
        if encoder is None:
            abi = cast(list[dict[str, Any]], self.contract.abi)
            matches = [
                item
                for item in abi
                if item.get("type") == "function" and item.get("name") == function
            ]
            if len(matches) != 1:
                raise BenchError(f"no unique function {function} in the Voisin ABI")
            types = [_abi_type(dict(i)) for i in matches[0].get("inputs", [])]
            selector = keccak(text=f"{function}({','.join(types)})")[:4]
            encoder = self._encoders[function] = (selector, types)
        selector, types = encoder
        return "0x" + (selector + abi_encode(types, list(args))).hex()

    def _next_nonce(self, account: LocalAccount) -> int:
        nonce = self._nonces.get(account.address)
        if nonce is None:
            nonce = int(self.w3.eth.get_transaction_count(account.address, "pending"))
        self._nonces[account.address] = nonce + 1
        self._unsynced.add(account.address)
        return nonce

    def sync(self, timeout_s: float = 120) -> None:
        """Wait until every transaction sent since the last sync is mined."""
        deadline = time.monotonic() + timeout_s
        if self._batching and self._pending_gas:
            self._mine()
        for address in sorted(self._unsynced):
            account = Web3.to_checksum_address(address)
            while int(self.w3.eth.get_transaction_count(account, "latest")) < self._nonces[address]:
                if time.monotonic() > deadline:
                    raise BenchError(f"transactions of {address} were not mined in {timeout_s} s")
                if self._batching:
                    self._mine()  # what did not fit in the last block
                else:
                    time.sleep(0.002)
        self._unsynced.clear()

    def _fee_cap(self) -> int:
        if self._sends % FEE_REFRESH_SENDS == 0:
            self._fee = 2 * int(self.w3.eth.gas_price) + 1
        self._sends += 1
        return self._fee

    def _tx(self, sender: LocalAccount, to: str, data: str, gas: int, value: int) -> dict[str, Any]:
        return {
            "to": to,
            "data": data,
            "value": value,
            "gas": gas,
            "nonce": self._next_nonce(sender),
            "chainId": self.chain_id,
            "maxFeePerGas": self._fee_cap(),
            "maxPriorityFeePerGas": 1,
        }

    def send(self, sender: LocalAccount, function: str, args: Sequence[Any], gas: int) -> HexBytes:
        """Send a contract call without waiting for its receipt."""
        data = self.encode(function, args)
        signed = sender.sign_transaction(self._tx(sender, self.contract.address, data, gas, 0))
        return self._submit(signed.raw_transaction, gas)

    def pay(self, sender: LocalAccount, to: str, wei: int) -> HexBytes:
        """Send ether without waiting for the receipt."""
        signed = sender.sign_transaction(self._tx(sender, to, "0x", 21_000, wei))
        return self._submit(signed.raw_transaction, 21_000)

    def timed_transfer(self, sender: LocalAccount) -> float:
        """Send -> receipt seconds of a plain 21,000-gas ether transfer: the backend's floor."""
        raw = sender.sign_transaction(
            self._tx(sender, Account.create().address, "0x", 21_000, 1)
        ).raw_transaction
        t0 = time.perf_counter()
        tx_hash = self.w3.eth.send_raw_transaction(raw)
        self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=0.002)
        return time.perf_counter() - t0

    def timed(
        self,
        sender: LocalAccount,
        function: str,
        args: Sequence[Any],
        *,
        gas_limit: int | None = None,
    ) -> TxTiming:
        """Send a call and time it from send to receipt.

        Without ``gas_limit`` the gas is estimated first, as the typed client does, and the
        estimate is timed on its own; with it, the call is sent with that limit.
        """
        data = self.encode(function, args)
        call: TxParams = {"from": sender.address, "to": self.contract.address, "data": HexStr(data)}
        estimate_s: float | None = None
        if gas_limit is None:
            t0 = time.perf_counter()
            try:
                gas = int(self.w3.eth.estimate_gas(call))
            except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
                error = self.client.decode_error(exc)
                raise BenchError(f"{function} would revert: {error!r}") from exc
            estimate_s = time.perf_counter() - t0
        else:
            gas = min(gas_limit, self.block_gas_limit)
        raw = sender.sign_transaction(
            self._tx(sender, self.contract.address, data, gas, 0)
        ).raw_transaction
        t1 = time.perf_counter()
        tx_hash = self.w3.eth.send_raw_transaction(raw)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=900, poll_latency=0.002)
        t2 = time.perf_counter()
        if receipt["status"] != 1:
            reason = "out of gas?"
            try:
                self.w3.eth.call(call, block_identifier=receipt["blockNumber"] - 1)
            except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
                reason = repr(self.client.decode_error(exc))
            raise BenchError(f"{function} reverted in {HexBytes(tx_hash).to_0x_hex()}: {reason}")
        return TxTiming(
            tx_hash=HexBytes(tx_hash).to_0x_hex(),
            gas_used=int(receipt["gasUsed"]),
            calldata_bytes=len(HexBytes(data)),
            calldata_gas=_calldata_gas(bytes(HexBytes(data))),
            send_to_receipt_s=t2 - t1,
            estimate_s=estimate_s,
        )


def _abi_type(param: dict[str, Any]) -> str:
    """The canonical type of an ABI parameter, tuples spelled out."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(dict(c)) for c in param["components"])
        return f"({inner}){kind[5:]}"
    return kind


def check_anvil() -> None:
    if not ANVIL_BIN.exists():
        raise BenchError(
            f"anvil is missing at {ANVIL_BIN.relative_to(REPO_ROOT)}: run scripts/install "
            "(or npm ci) to install it, or measure the embedded chain only with "
            "--backends embedded"
        )


def anvil_version() -> str:
    out = subprocess.run([str(ANVIL_BIN), "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0].strip() if out.stdout else "anvil (unknown version)"


@contextmanager
def open_backend(
    kind: str, *, anvil_args: Sequence[str] = (), tracing: bool = False
) -> Iterator[tuple[Chain, str]]:
    """A fresh chain of ``kind`` and a one-line description of it; torn down on exit."""
    if kind == "embedded":
        with tempfile.TemporaryDirectory(prefix="voisin-bench-") as tmp:
            chain = open_chain("embedded", Path(tmp) / "data")
            try:
                yield chain, "embedded eth-tester/py-evm chain, LMDB in a temp dir, fsync per block"
            finally:
                chain.close()
        return
    if kind == "anvil":
        check_anvil()
        extra = [*anvil_args, *(["--steps-tracing"] if tracing else [])]
        # Anvil's own chain id and hardfork: the figures are anvil's as it ships.
        node = start_anvil(args=extra, chain_id=None, hardfork=None)
        try:
            chain = open_chain(node.url, operator_key=ANVIL_KEY)
            hardfork = _anvil_hardfork(chain.w3)
            mode = "".join(f" {a}" for a in extra)
            yield chain, f"{anvil_version()}, hardfork {hardfork}, automine{mode}, on {node.url}"
        finally:
            node.stop()
        return
    raise BenchError(f"unknown backend {kind!r}: use embedded or anvil")


def _anvil_hardfork(w3: Web3) -> str:
    try:
        info = w3.provider.make_request(RPCEndpoint("anvil_nodeInfo"), [])
        return str(info["result"]["hardFork"])
    except Exception:
        return "unknown"


# ───────────────────────────── The neighbourhood ─────────────────────────────


@dataclass(eq=False)
class Member:
    """A registered household with one standing order (an offer or a bid)."""

    account: LocalAccount
    meter: LocalAccount
    id: int = 0
    order: int = 0
    price_limit: int = 0
    import_Wh: int = 0
    export_Wh: int = 0


Plan = list[tuple[Member, Member, int]]
"""(seller, buyer, Wh) per fill."""


@dataclass(eq=False)
class Case:
    """One batch to settle in its own slot."""

    layout: str
    slot: int
    plan: Plan
    estimate: bool = False

    @property
    def fills(self) -> int:
        return len(self.plan)


def neighbourhood_plan(size: int, sellers: Sequence[Member], buyers: Sequence[Member]) -> Plan:
    """N fills among k = ceil(N/4) sellers and k buyers, each (seller, buyer) pair once."""
    k = math.ceil(size / 4)
    return [(sellers[i % k], buyers[(i % k + i // k) % k], fill_energy_Wh(i)) for i in range(size)]


def worst_plan(size: int, sellers: Sequence[Member], buyers: Sequence[Member]) -> Plan:
    """N fills, each with its own seller and buyer."""
    return [(sellers[i], buyers[i], fill_energy_Wh(i)) for i in range(size)]


def merge_walk_plan(size: int, sellers: Sequence[Member], buyers: Sequence[Member]) -> Plan:
    """N fills as a merge walk over sorted offers and bids produces them (pay-as-clear):
    S = round(0.4 (N + 1)) sellers and B = N + 1 - S buyers; after each fill the walk moves to
    the next seller or the next buyer, spread evenly, so N = S + B - 1, the most fills such a
    walk can produce from S offers and B bids."""
    n_s = max(1, round(MERGE_WALK_SELLER_SHARE * (size + 1)))
    n_b = size + 1 - n_s
    plan: Plan = []
    s = b = 0
    for i in range(size):
        plan.append((sellers[s], buyers[b], fill_energy_Wh(i)))
        if s + 1 < n_s and (b + 1 >= n_b or (s + 1) * n_b <= (b + 1) * n_s):
            s += 1
        else:
            b += 1
    return plan


PLANS: dict[str, Callable[[int, Sequence[Member], Sequence[Member]], Plan]] = {
    "neighbourhood": neighbourhood_plan,
    "merge-walk": merge_walk_plan,
    "worst": worst_plan,
}


class Neighbourhood:
    """Households, orders and readings on one backend, set up with untimed transactions."""

    def __init__(self, chain: Chain, client: VoisinClient, sender: Sender) -> None:
        self.chain = chain
        self.client = client
        self.sender = sender
        self.operator = chain.operator
        self.domain = client.domain_separator()
        self.households = 0

    def register(self, count: int, *, role: str, topup_ueur: int) -> list[Member]:
        """Register ``count`` households, give them gas money and vEUR, post one order each."""
        op = self.operator
        first_id = self.client.household_count() + 1
        members = [Member(Account.create(), Account.create()) for _ in range(count)]
        for n, m in enumerate(members):
            self.sender.send(
                op,
                "registerHousehold",
                [m.account.address, m.meter.address, role == "seller", 0, 0],
                REGISTER_GAS,
            )
            self.sender.pay(op, m.account.address, HOUSEHOLD_GAS_WEI)
            if topup_ueur:
                self.sender.send(op, "topUp", [m.account.address, topup_ueur], TOPUP_GAS)
            m.id = first_id + n
            if n % 100 == 99 or n == count - 1:
                log(f"  registered {n + 1}/{count} {role}s")
        self.sender.sync()
        if self.client.household_count() != first_id + count - 1:
            raise BenchError("household registration failed during set-up")
        if self.client.household_of(members[-1].account.address) != members[-1].id:
            raise BenchError("household ids are not the ones expected")
        if topup_ueur and self.client.balance_of(members[-1].account.address) != topup_ueur:
            raise BenchError("top-ups failed during set-up")
        self.households += count
        counter = getattr(
            self.client.contract.functions, "offerCount" if role == "seller" else "bidCount"
        )
        first_order = int(counter().call()) + 1
        for n, m in enumerate(members):
            m.order = first_order + n
            if role == "seller":
                m.price_limit = offer_limit(m.order)
                self.sender.send(m.account, "postOffer", [m.price_limit, 0, 0, OPEN_END], ORDER_GAS)
            else:
                m.price_limit = bid_limit(m.order)
                self.sender.send(m.account, "postBid", [m.price_limit, 0, 0, OPEN_END], ORDER_GAS)
        self.sender.sync()
        if int(counter().call()) != first_order + count - 1:
            raise BenchError(f"posting {role} orders failed during set-up")
        return members

    def top_up(self, address: str, amount_ueur: int) -> None:
        self.sender.send(self.operator, "topUp", [address, amount_ueur], TOPUP_GAS)

    def sign(self, member: Member, slot: int, import_Wh: int, export_Wh: int) -> SignedReading:
        """Sign the member's next reading, adding the given deltas to its registers."""
        member.import_Wh += import_Wh
        member.export_Wh += export_Wh
        reading = Reading(member.meter.address, slot, member.import_Wh, member.export_Wh)
        return sign_reading(member.meter.key, reading, self.domain)

    def readings_for(self, case: Case) -> list[SignedReading]:
        """One reading per party of ``case``: each seller exports its fills' Wh plus slack,
        each buyer imports its fills' Wh plus slack."""
        export: dict[Member, int] = {}
        imported: dict[Member, int] = {}
        for seller, buyer, wh in case.plan:
            export[seller] = export.get(seller, 0) + wh
            imported[buyer] = imported.get(buyer, 0) + wh
        signed = [self.sign(m, case.slot, 0, wh + EXPORT_SLACK_WH) for m, wh in export.items()]
        signed += [self.sign(m, case.slot, wh + IMPORT_SLACK_WH, 0) for m, wh in imported.items()]
        return signed

    def commit(self, readings: Sequence[SignedReading]) -> None:
        """Commit readings (in slot order) with untimed transactions of 100 readings each."""
        for start in range(0, len(readings), SETUP_READINGS_PER_TX):
            chunk = readings[start : start + SETUP_READINGS_PER_TX]
            self.sender.send(
                self.operator,
                "commitReadings",
                [[r.as_contract_tuple() for r in chunk]],
                READING_GAS * len(chunk) + 100_000,
            )
            if start % 1000 == 900:
                log(f"  committed {start + len(chunk)}/{len(readings)} readings")
        self.sender.sync()
        last = readings[-1].reading
        if self.client.meter_state(last.meter).last_slot != last.slot:
            raise BenchError("committing readings failed during set-up")


# ───────────────────────────── One backend ─────────────────────────────


def deploy_voisin(chain: Chain, artifact: Artifact) -> str:
    """Deploy ``artifact`` with the default tariffs, the operator as admin; its address.

    The artifact is read once per run, so every backend runs the same bytecode even if the
    committed artifact changes during the run.
    """
    return deploy(chain, DEFAULT_TARIFFS, artifact).address


def run_backend(
    kind: str, cfg: Config, artifact: Artifact, *, tracing: bool = False
) -> BackendResults:
    """Set up a neighbourhood on a fresh ``kind`` chain and measure everything ``cfg`` asks."""
    name = f"{kind} (trace pass)" if tracing else kind
    with open_backend(kind, anvil_args=cfg.anvil_args, tracing=tracing) as (chain, detail):
        log(f"{name}: {detail}")
        t_setup = time.perf_counter()
        client = VoisinClient(chain.w3, deploy_voisin(chain, artifact), artifact["abi"])
        sender = Sender(chain, client)
        hood = Neighbourhood(chain, client, sender)

        max_size = max(cfg.sizes)
        pool = max(
            max_size if "worst" in cfg.layouts else 0,
            max_size + 1 - round(MERGE_WALK_SELLER_SHARE * (max_size + 1)),
            math.ceil(max_size / 4),
            cfg.takes,
            cfg.first_sale_size,
            math.ceil(sum(cfg.reading_sizes) / 2),
            sum(cfg.forward_sizes),
        )
        # On anvil the set-up goes in few large blocks (see Sender).
        with sender.batch_blocks(kind == "anvil"):
            log(f"{name}: set-up: {pool} sellers and {pool} buyers holding vEUR")
            sellers = hood.register(pool, role="seller", topup_ueur=SELLER_TOPUP_UEUR)
            buyers = hood.register(pool, role="buyer", topup_ueur=BUYER_TOPUP_UEUR)
            fresh: list[Member] = []
            if cfg.first_sale_size:
                log(f"{name}: set-up: {cfg.first_sale_size} sellers holding no vEUR (first sale)")
                fresh = hood.register(cfg.first_sale_size, role="seller", topup_ueur=0)
            hood.top_up(chain.operator.address, FEE_RECIPIENT_TOPUP_UEUR)  # the fee recipient

            # Every batch in its own slot; a meter's readings go in increasing slot order.
            # The slots are past ones: the contract refuses a reading ahead of its clock.
            total = sum(cfg.runs(size) for _ in cfg.layouts for size in cfg.sizes)
            slot = int(time.time()) // 900 - total - 2
            cases: list[Case] = []
            for layout in cfg.layouts:
                for size in cfg.sizes:
                    for run in range(cfg.runs(size)):
                        estimate = run == 0 and size <= cfg.estimate_max_fills
                        plan = PLANS[layout](size, sellers, buyers)
                        cases.append(Case(layout, slot, plan, estimate))
                        slot += 1
            if cfg.first_sale_size:
                plan = worst_plan(cfg.first_sale_size, fresh, buyers)
                cases.append(Case(FIRST_SALE, slot, plan))
                slot += 1
            take_case = Case(TAKE, slot, worst_plan(cfg.takes, sellers, buyers))
            slot += 1
            readings: list[SignedReading] = []
            for case in [*cases, take_case]:
                readings += hood.readings_for(case)
            log(f"{name}: set-up: committing {len(readings)} readings")
            hood.commit(readings)
        setup_s = time.perf_counter() - t_setup
        log(f"{name}: set-up done in {setup_s:.0f} s ({hood.households} households)")
        results = BackendResults(name, detail, setup_s, hood.households)
        results.transfers_s = [sender.timed_transfer(chain.operator) for _ in range(TRANSFERS)]

        # Readings: a last slot of their own, distinct meters in every batch.
        meters = iter([*sellers, *buyers])
        for n in cfg.reading_sizes:
            batch = [hood.sign(next(meters), slot, 50, 100) for _ in range(n)]
            timing = sender.timed(
                chain.operator, "commitReadings", [[r.as_contract_tuple() for r in batch]]
            )
            results.readings.append(ReadingRun(name, n, timing))
            log(
                f"{name}: commitReadings x{n}: {timing.gas_used / n:,.0f} gas/reading, "
                f"send->receipt {timing.send_to_receipt_s:.3f} s"
            )

        # Settlement batches: batch number 0 of each slot.
        for case in cases:
            fills = [(s.order, b.order, wh, CLEARING_PRICE) for s, b, wh in case.plan]
            limit = None if case.estimate else SETTLE_GAS_PER_FILL * case.fills + 200_000
            timing = sender.timed(
                chain.operator, "settleBatch", [case.slot, 0, fills], gas_limit=limit
            )
            energy = sum(wh for _, _, wh in case.plan)
            _check_fills(chain, client, timing, case.fills, energy)
            run_ = SettleRun(
                name,
                case.layout,
                case.fills,
                len({id(s) for s, _, _ in case.plan}),
                len({id(b) for _, b, _ in case.plan}),
                energy,
                case.slot,
                timing,
            )
            results.settles.append(run_)
            est = f", estimate {timing.estimate_s:.2f} s" if timing.estimate_s is not None else ""
            log(
                f"{name}: settleBatch {case.layout} x{case.fills}: "
                f"{run_.gas_per_settled_fill:,.0f} gas/fill, "
                f"send->receipt {timing.send_to_receipt_s:.3f} s{est}"
            )

        # Direct takes.
        for seller, buyer, wh in take_case.plan:
            timing = sender.timed(buyer.account, "takeOffer", [seller.order, take_case.slot, wh])
            _check_fills(chain, client, timing, 1, wh)
            results.takes.append(TakeRun(name, wh, timing))
        if results.takes:
            gas = statistics.mean(t.timing.gas_used for t in results.takes)
            log(f"{name}: {len(results.takes)} takes, {gas:,.0f} gas each")

        # Forward positions: the slot after the readings' own, each size with its own
        # sellers and buyers (none has metered that slot yet), one clearing batch per size.
        forward_slot = slot + 1
        first = 0
        for batch, n in enumerate(cfg.forward_sizes):
            pairs = list(zip(sellers[first : first + n], buyers[first : first + n], strict=True))
            first += n
            run_f = _measure_forwards(name, hood, sender, client, forward_slot, batch, pairs)
            results.forwards.append(run_f)
            log(
                f"{name}: forwards x{n}: clear {run_f.clear_gas_per_position:,.0f} gas/position, "
                f"settle {run_f.settle_gas_per_position:,.0f} gas/position, clear a day ahead "
                f"{run_f.clear_ahead_gas_per_position:,.0f} gas/position"
            )

        if tracing:
            for run_ in results.settles:
                results.breakdowns.append(
                    trace_breakdown(chain.w3, run_.timing, run_.layout, run_.fills)
                )
            for take in results.takes[:1]:
                results.breakdowns.append(trace_breakdown(chain.w3, take.timing, TAKE, 1))
        return results


#: Slots in a day: how far beyond the chain's clock the day-ahead clearing is measured.
SLOTS_PER_DAY = 96
#: Energy of each measured forward position (Wh), delivered in full.
FORWARD_WH = 1_000


def _measure_forwards(
    name: str,
    hood: Neighbourhood,
    sender: Sender,
    client: VoisinClient,
    slot: int,
    batch: int,
    pairs: Sequence[tuple[Member, Member]],
) -> ForwardRun:
    """Clear ``pairs``' positions ahead of ``slot`` (timed), commit the slot's readings
    (untimed), settle the positions (timed); check every position delivered in full. Then
    clear the same pairs' positions a day beyond the chain's clock (timed, left open)."""
    positions = [(s.id, b.id, FORWARD_WH, CLEARING_PRICE) for s, b in pairs]
    clear = sender.timed(hood.operator, "clearForwards", [slot, batch, positions])
    receipt = hood.chain.w3.eth.get_transaction_receipt(HexStr(clear.tx_hash))
    cleared = [e for e in client.decode_logs(receipt["logs"]) if e.name == "ForwardCleared"]
    if len(cleared) != len(pairs):
        raise BenchError(f"{name}: clearForwards cleared {len(cleared)} of {len(pairs)}")
    readings = [hood.sign(s, slot, 0, FORWARD_WH + EXPORT_SLACK_WH) for s, _ in pairs]
    readings += [hood.sign(b, slot, FORWARD_WH + IMPORT_SLACK_WH, 0) for _, b in pairs]
    hood.commit(readings)
    settle_args = [
        (
            e.args["forwardId"],
            e.args["seller"],
            e.args["buyer"],
            e.args["energyWh"],
            e.args["priceUeurPerKWh"],
            e.args["reservedUeur"],
        )
        for e in cleared
    ]
    settle = sender.timed(hood.operator, "settleForwards", [slot, settle_args])
    receipt = hood.chain.w3.eth.get_transaction_receipt(HexStr(settle.tx_hash))
    settled = [e for e in client.decode_logs(receipt["logs"]) if e.name == "ForwardSettled"]
    if len(settled) != len(pairs) or any(e.args["shortfallWh"] for e in settled):
        raise BenchError(f"{name}: settleForwards did not deliver every position in full")
    day_ahead = client.max_reading_slot() + SLOTS_PER_DAY
    ahead = sender.timed(hood.operator, "clearForwards", [day_ahead, batch, positions])
    receipt = hood.chain.w3.eth.get_transaction_receipt(HexStr(ahead.tx_hash))
    if sum(e.name == "ForwardCleared" for e in client.decode_logs(receipt["logs"])) != len(pairs):
        raise BenchError(f"{name}: clearForwards a day ahead did not clear every position")
    return ForwardRun(name, len(pairs), clear, settle, ahead)


def _check_fills(
    chain: Chain, client: VoisinClient, timing: TxTiming, fills: int, energy_Wh: int
) -> None:
    """Check (untimed) that the transaction settled ``fills`` fills of ``energy_Wh`` in all."""
    receipt = chain.w3.eth.get_transaction_receipt(HexStr(timing.tx_hash))
    settled = [e for e in client.decode_logs(receipt["logs"]) if e.name == "FillSettled"]
    if len(settled) != fills or sum(e.args["energyWh"] for e in settled) != energy_Wh:
        raise BenchError(f"transaction {timing.tx_hash} did not settle every fill in full")


# ───────────────────────────── Opcode breakdown (anvil) ─────────────────────────────


def _calldata_gas(data: bytes) -> int:
    return sum(4 if b == 0 else 16 for b in data)


#: Opcode groups, in the order the breakdown prints them.
GROUPS = (
    "SLOAD cold (2,100)",
    "SLOAD warm (100)",
    "SSTORE 0 -> non-0 (20,000; +2,100 if cold)",
    "SSTORE first write of a non-0 slot (2,900; +2,100 if cold)",
    "SSTORE rewrite of a slot written before in the tx (100)",
    "LOG (topics, data)",
    "KECCAK256 (mapping keys)",
    "other opcodes",
)
#: Families of the "other opcodes" group, in print order.
OTHER_FAMILIES = (
    "stack: PUSH / DUP / SWAP / POP",
    "control flow: JUMP / JUMPI / JUMPDEST",
    "arithmetic, comparison, bitwise",
    "memory: MLOAD / MSTORE / MCOPY",
    "calldata and environment",
)
_ARITHMETIC = frozenset(
    [
        "ADD",
        "SUB",
        "MUL",
        "DIV",
        "SDIV",
        "MOD",
        "SMOD",
        "ADDMOD",
        "MULMOD",
        "EXP",
        "SIGNEXTEND",
        "LT",
        "GT",
        "SLT",
        "SGT",
        "EQ",
        "ISZERO",
        "AND",
        "OR",
        "XOR",
        "NOT",
        "BYTE",
        "SHL",
        "SHR",
        "SAR",
    ]
)


def _other_family(op: str) -> str:
    if op.startswith(("PUSH", "DUP", "SWAP")) or op == "POP":
        return OTHER_FAMILIES[0]
    if op in ("JUMP", "JUMPI", "JUMPDEST"):
        return OTHER_FAMILIES[1]
    if op in _ARITHMETIC:
        return OTHER_FAMILIES[2]
    if op in ("MLOAD", "MSTORE", "MSTORE8", "MCOPY"):
        return OTHER_FAMILIES[3]
    return OTHER_FAMILIES[4]


def _op_group(op: str, cost: int) -> str:
    if op == "SLOAD":
        return GROUPS[0] if cost >= 2_100 else GROUPS[1]
    if op == "SSTORE":
        if cost >= 20_000:
            return GROUPS[2]
        if cost >= 2_900:
            return GROUPS[3]
        return GROUPS[4]
    if op.startswith("LOG"):
        return GROUPS[5]
    if op == "KECCAK256":
        return GROUPS[6]
    return GROUPS[7]


def trace_breakdown(w3: Web3, timing: TxTiming, layout: str, fills: int) -> Breakdown:
    """Add up the gas of every opcode of a transaction by kind (anvil's struct logger)."""
    opts = {"disableStack": True, "disableMemory": True, "disableStorage": True}
    response = w3.provider.make_request(
        RPCEndpoint("debug_traceTransaction"),
        [timing.tx_hash, opts],
    )
    result: dict[str, Any] = dict(response.get("result") or {})
    steps: list[dict[str, Any]] = list(result.get("structLogs") or [])
    if not steps:
        raise BenchError(f"debug_traceTransaction returned no steps: {str(response)[:200]}")
    groups: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    other: Counter[str] = Counter()
    for step in steps:
        if int(step.get("depth", 1)) != 1:  # gas of sub-calls is inside the CALL's cost
            continue
        op, cost = str(step["op"]), int(step["gasCost"])
        group = _op_group(op, cost)
        groups[group] += cost
        counts[group] += 1
        if group == GROUPS[-1]:
            other[_other_family(op)] += cost
    tx = w3.eth.get_transaction(HexStr(timing.tx_hash))
    log(f"trace: {layout} x{fills}: {len(steps)} steps")
    return Breakdown(
        layout=layout,
        fills=fills,
        gas_used=timing.gas_used,
        timed_gas_used=None,
        timed_calldata_gas=None,
        intrinsic=timing.gas_used - sum(groups.values()),
        calldata=_calldata_gas(bytes(tx["input"])),
        groups=dict(groups),
        counts=dict(counts),
        other=dict(other),
    )


# ───────────────────────────── Report ─────────────────────────────


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _by_case(runs: Sequence[SettleRun]) -> dict[tuple[str, int], list[SettleRun]]:
    grouped: dict[tuple[str, int], list[SettleRun]] = {}
    for run in runs:
        grouped.setdefault((run.layout, run.fills), []).append(run)
    return grouped


def _gas_text(values: Sequence[int]) -> str:
    distinct = sorted(set(values))
    return f"{distinct[0]:,}" if len(distinct) == 1 else f"{distinct[0]:,}-{distinct[-1]:,}"


def render(results: Sequence[BackendResults], trace: BackendResults | None, cfg: Config) -> str:
    lines: list[str] = []
    out = lines.append
    names = [r.backend for r in results]
    cases = [_by_case(r.settles) for r in results]
    keys = list(dict.fromkeys(k for c in cases for k in c))

    out("## 1. Gas per settled fill (settleBatch: one transaction per batch)")
    out("")
    out("gas/fill = receipt gasUsed / fills: 21,000 base, calldata and every check included.")
    out("")
    head = f"{'layout':<14} {'fills':>5} {'sellers':>7} {'buyers':>6} {'calldata B':>10}"
    for n in names:
        head += f" {n + ' gasUsed':>19} {n + ' gas/fill':>18}"
    out(head)
    for key in keys:
        first = next(c[key][0] for c in cases if key in c)
        row = (
            f"{key[0]:<14} {key[1]:>5} {first.sellers:>7} {first.buyers:>6} "
            f"{first.timing.calldata_bytes:>10}"
        )
        for c in cases:
            if key in c:
                gas = [r.timing.gas_used for r in c[key]]
                row += f" {_gas_text(gas):>19} {gas[0] / key[1]:>18,.0f}"
            else:
                row += f" {'-':>19} {'-':>18}"
        out(row)
    row = f"{TAKE:<14} {1:>5} {1:>7} {1:>6} {'':>10}"
    for r in results:
        gas = [t.timing.gas_used for t in r.takes]
        row += f" {_gas_text(gas):>19} {gas[0]:>18,}" if gas else f" {'-':>19} {'-':>18}"
    out(row + "   (takeOffer, gas per take)")
    out("")
    out(f"Target: at most {TARGET_GAS_PER_FILL:,} gas per fill at {TARGET_FILLS} fills per batch.")
    if TARGET_FILLS not in cfg.sizes:
        out(f"  (not checked: no batch of {TARGET_FILLS} fills in --sizes)")
    for layout in [*cfg.layouts, FIRST_SALE]:
        for r, c in zip(results, cases, strict=True):
            runs = c.get((layout, TARGET_FILLS))
            if runs:
                gpf = runs[0].gas_per_settled_fill
                verdict = "met" if gpf <= TARGET_GAS_PER_FILL else "NOT met"
                out(f"  {layout:<14} on {r.backend:<9} {gpf:>8,.0f} gas/fill: {verdict}")
    for r in results:
        for run in r.settles:
            if run.timing.gas_used > OSAKA_TX_GAS_CAP and run.slot == min(
                x.slot for x in r.settles if (x.layout, x.fills) == (run.layout, run.fills)
            ):
                out(
                    f"  note: {run.layout} x{run.fills} uses {run.timing.gas_used:,} gas, above "
                    f"the EIP-7825 (Osaka) cap of {OSAKA_TX_GAS_CAP:,} gas per transaction "
                    f"({r.backend})"
                )
    out("")
    out(_derived(results[0], cfg))

    out("## 2. Gas per committed reading (commitReadings: one transaction per batch)")
    out("")
    head = f"{'readings':>8}"
    for n in names:
        head += f" {n + ' gasUsed':>19} {n + ' gas/reading':>21} {n + ' s':>11}"
    out(head)
    for size in cfg.reading_sizes:
        row = f"{size:>8}"
        for r in results:
            found = [x for x in r.readings if x.readings == size]
            if not found:
                row += f" {'-':>19} {'-':>21} {'-':>11}"
                continue
            x = found[0]
            row += (
                f" {x.timing.gas_used:>19,} {x.gas_per_reading:>21,.0f}"
                f" {x.timing.send_to_receipt_s:>11.3f}"
            )
        out(row)
    out("(signatures differ per chain, so calldata and gas differ by a few gas per reading)")
    out("")

    if cfg.forward_sizes:
        out("## 2b. Gas per day-ahead forward position (clearForwards, then settleForwards)")
        out("")
        out(
            f"Each position {FORWARD_WH:,} Wh at {CLEARING_PRICE:,} ueur/kWh, its own seller "
            "and buyer, delivered in full; gas/position = receipt gasUsed / positions. 'ahead':"
            " the same positions cleared a day beyond the chain's clock (no meter read)."
        )
        out("")
        head = f"{'positions':>9}"
        for n in names:
            head += f" {n + ' clear gas/pos':>24} {n + ' settle gas/pos':>25}"
            head += f" {n + ' ahead gas/pos':>24}"
        out(head)
        for size in cfg.forward_sizes:
            row = f"{size:>9}"
            for r in results:
                found = [x for x in r.forwards if x.positions == size]
                if not found:
                    row += f" {'-':>24} {'-':>25} {'-':>24}"
                    continue
                x = found[0]
                row += f" {x.clear_gas_per_position:>24,.0f} {x.settle_gas_per_position:>25,.0f}"
                row += f" {x.clear_ahead_gas_per_position:>24,.0f}"
            out(row)
        out("")

    out("## 3. Throughput: wall time of the transaction, send -> receipt")
    out("")
    out(
        f"Median over runs (batches of <= {TARGET_FILLS} fills: {cfg.repeat} runs, each in a "
        "new slot; larger and first-sale batches: 1 run)."
    )
    out("estimate s: eth_estimateGas before the send (first run), not part of fills/s.")
    out("")
    out(
        f"{'backend':<9} {'layout':<14} {'fills':>5} {'runs':>4} {'send->receipt s':>15} "
        f"{'min-max s':>15} {'fills/s':>9} {'estimate s':>10}"
    )
    for r, c in zip(results, cases, strict=True):
        for (layout, fills), runs in c.items():
            times = [x.timing.send_to_receipt_s for x in runs]
            est = [x.timing.estimate_s for x in runs if x.timing.estimate_s is not None]
            out(_throughput_row(r.backend, layout, fills, times, est))
        if r.takes:
            times = [t.timing.send_to_receipt_s for t in r.takes]
            est = [t.timing.estimate_s for t in r.takes if t.timing.estimate_s is not None]
            out(_throughput_row(r.backend, TAKE, 1, times, est))
        if r.transfers_s:
            out(_throughput_row(r.backend, "ether transfer", 0, r.transfers_s, []))
    out("")
    out("direct take: takes/s = 1 / median send->receipt time of one take (one take per tx).")
    out("ether transfer: a plain 21,000-gas transaction after the set-up, the backend's floor.")
    out("")

    if trace is not None and trace.breakdowns:
        out(_render_breakdown(trace))

    for r in [*results, *([trace] if trace is not None else [])]:
        out(f"{r.backend}: {r.detail}; untimed set-up {r.setup_s:.0f} s, {r.households} households")
    return "\n".join(lines)


def _throughput_row(
    backend: str, layout: str, fills: int, times: Sequence[float], estimates: Sequence[float]
) -> str:
    med = _median(times)
    spread = f"{min(times):.3f}-{max(times):.3f}"
    est = f"{_median(estimates):.3f}" if estimates else "-"
    count, rate = (str(fills), f"{fills / med:,.0f}") if fills else ("-", "-")
    return (
        f"{backend:<9} {layout:<14} {count:>5} {len(times):>4} {med:>15.4f} "
        f"{spread:>15} {rate:>9} {est:>10}"
    )


def _derived(r: BackendResults, cfg: Config) -> str:
    """Differences between measured rows: what one more fill or one more party costs."""
    runs = {k: v[0] for k, v in _by_case(r.settles).items()}
    gas = {k: run.timing.gas_used for k, run in runs.items()}
    lines = ["Derived from the rows above (differences of measured gasUsed):"]
    for layout in cfg.layouts:
        sizes = sorted(n for (lay, n) in gas if lay == layout)
        for a, b in itertools.pairwise(sizes):
            marginal = (gas[(layout, b)] - gas[(layout, a)]) / (b - a)
            lines.append(
                f"  {layout:<14} fills {a:>3} -> {b:>3}: {marginal:>8,.0f} gas per added fill"
            )
    n = TARGET_FILLS if ("worst", TARGET_FILLS) in gas else max(cfg.sizes)
    if ("worst", n) in gas and ("neighbourhood", n) in gas:
        # Linear in the number of distinct parties: gas/fill = base + per_party * parties/fills.
        w, nb = runs[("worst", n)], runs[("neighbourhood", n)]
        parties_w, parties_nb = w.sellers + w.buyers, nb.sellers + nb.buyers
        per_party = (gas[("worst", n)] - gas[("neighbourhood", n)]) / (parties_w - parties_nb)
        base = gas[("neighbourhood", n)] / n - per_party * parties_nb / n
        lines.append(
            f"  worst - neighbourhood at {n} fills: {per_party:,.0f} gas per extra party "
            f"({parties_w} vs {parties_nb} parties)"
        )
        lines.append(
            f"  so at {n} fills, gas/fill = {base:,.0f} + {per_party:,.0f} x parties/fills; "
            f"<= {TARGET_GAS_PER_FILL:,} while parties/fills <= "
            f"{(TARGET_GAS_PER_FILL - base) / per_party:.2f}"
        )
        for layout in [x for x in cfg.layouts if x not in ("worst", "neighbourhood")] + [
            FIRST_SALE
        ]:
            run = runs.get((layout, n))
            if run is not None:
                parties = run.sellers + run.buyers
                lines.append(
                    f"  check, {layout} at {n} fills ({parties} parties): predicted "
                    f"{base + per_party * parties / n:,.0f}, "
                    f"measured {run.gas_per_settled_fill:,.0f}"
                )
    f = cfg.first_sale_size
    if (FIRST_SALE, f) in gas and ("worst", f) in gas:
        extra = gas[(FIRST_SALE, f)] - gas[("worst", f)]
        lines.append(
            f"  first-sale - worst at {f} fills: {extra / f:+,.0f} gas per fill "
            "(sellers holding no vEUR before the batch, against sellers holding some)"
        )
    if r.takes and ("worst", 1) in gas:
        take = r.takes[0].timing.gas_used
        lines.append(
            f"  direct take - 1-fill worst-case batch: {take - gas[('worst', 1)]:+,} gas "
            f"({take:,} vs {gas[('worst', 1)]:,})"
        )
    return "\n".join(lines) + "\n"


def _same_gas(b: Breakdown) -> str:
    if b.timed_gas_used == b.gas_used:
        return "yes"
    if b.timed_gas_used is None or b.timed_calldata_gas is None:
        return "not timed"
    if b.timed_gas_used - b.timed_calldata_gas == b.gas_used - b.calldata:
        # Same execution; only the order ids in the calldata differ (other pool size).
        return f"calldata {b.timed_gas_used - b.gas_used:+,}"
    return f"no ({b.timed_gas_used:,})"


def _render_breakdown(trace: BackendResults) -> str:
    lines = [
        "## 4. Where the gas of a fill goes (debug_traceTransaction, gas per fill)",
        "",
        "A separate, untimed anvil with --steps-tracing settles the same batches; gas of every",
        "top-level opcode, added up by kind and divided by the fills of the transaction.",
        "",
    ]
    bds = trace.breakdowns
    titles = [f"{b.layout} x{b.fills}" for b in bds]
    width = 60
    lines.append(f"{'gas per fill':<{width}}" + "".join(f" {t:>18}" for t in titles))
    for g in GROUPS:
        if any(g in b.groups for b in bds):
            lines.append(
                f"{g:<{width}}" + "".join(f" {b.groups.get(g, 0) / b.fills:>18,.0f}" for b in bds)
            )
    for family in OTHER_FAMILIES:
        lines.append(
            f"{'  ' + family:<{width}}"
            + "".join(f" {b.other.get(family, 0) / b.fills:>18,.0f}" for b in bds)
        )
    lines.append(
        f"{'intrinsic (21,000 base + calldata)':<{width}}"
        + "".join(f" {b.intrinsic / b.fills:>18,.0f}" for b in bds)
    )
    lines.append(
        f"{'  of which calldata (4 / 16 gas per 0 / non-0 byte)':<{width}}"
        + "".join(f" {b.calldata / b.fills:>18,.0f}" for b in bds)
    )
    lines.append(
        f"{'total = gasUsed / fills':<{width}}"
        + "".join(f" {b.gas_used / b.fills:>18,.0f}" for b in bds)
    )
    same = [_same_gas(b) for b in bds]
    lines.append(
        f"{'gasUsed equal to the timed anvil run':<{width}}" + "".join(f" {s:>18}" for s in same)
    )
    lines.append("")
    lines.append("Opcodes per fill:")
    for g in GROUPS:
        if any(g in b.counts for b in bds):
            lines.append(
                f"{g:<{width}}" + "".join(f" {b.counts.get(g, 0) / b.fills:>18,.2f}" for b in bds)
            )
    lines.append("")
    return "\n".join(lines)


def source_version(artifact: Artifact) -> str:
    """The git commit of the checkout, whether contracts/ has local changes, and the hash of
    the deployed bytecode: which contract the figures belong to."""

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=False
        )
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = git("status", "--porcelain", "--", "contracts")
    state = "contracts/ with local changes" if dirty else "contracts/ as committed"
    return (
        f"git {commit} ({state}), Voisin bytecode sha256 "
        f"{bytecode_sha256(artifact['bytecode'])[:16]}"
    )


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1_5_15_min": list(os.getloadavg()),
    }


def to_json(
    results: Sequence[BackendResults], trace: BackendResults | None, cfg: Config, started: str
) -> dict[str, Any]:
    def backend(r: BackendResults) -> dict[str, Any]:
        return {
            "backend": r.backend,
            "detail": r.detail,
            "setup_s": r.setup_s,
            "households": r.households,
            "settles": [
                {
                    **asdict(s),
                    "gas_per_settled_fill": s.gas_per_settled_fill,
                    "fills_per_s": s.fills / s.timing.send_to_receipt_s,
                }
                for s in r.settles
            ],
            "readings": [{**asdict(x), "gas_per_reading": x.gas_per_reading} for x in r.readings],
            "takes": [asdict(t) for t in r.takes],
            "forwards": [
                {
                    **asdict(f),
                    "clear_gas_per_position": f.clear_gas_per_position,
                    "settle_gas_per_position": f.settle_gas_per_position,
                    "clear_ahead_gas_per_position": f.clear_ahead_gas_per_position,
                }
                for f in r.forwards
            ],
            "breakdowns": [asdict(b) for b in r.breakdowns],
        }

    return {
        "started": started,
        "machine": machine(),
        "config": asdict(cfg),
        "target": {"gas_per_settled_fill": TARGET_GAS_PER_FILL, "fills_per_batch": TARGET_FILLS},
        "tariffs_ueur_per_kWh": asdict(DEFAULT_TARIFFS),
        "clearing_price_ueur_per_kWh": CLEARING_PRICE,
        "backends": [backend(r) for r in results],
        "trace": backend(trace) if trace is not None else None,
        "elapsed_s": time.perf_counter() - _START,
    }


# ───────────────────────────── Command line ─────────────────────────────


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("expected positive integers")
    return values


def _name_list(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
        if not names or any(n not in allowed for n in names):
            raise argparse.ArgumentTypeError(f"choose among {', '.join(allowed)}")
        return names

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure gas per settled fill and fills settled per second.",
    )
    parser.add_argument(
        "--backends",
        type=_name_list(("embedded", "anvil")),
        default=("embedded", "anvil"),
        help="comma-separated: embedded, anvil (default: both)",
    )
    parser.add_argument(
        "--sizes",
        type=_int_list,
        default=(1, 10, 100, 500),
        help="fills per settleBatch (default: 1,10,100,500)",
    )
    parser.add_argument(
        "--layouts",
        type=_name_list(LAYOUTS),
        default=LAYOUTS,
        help="comma-separated: neighbourhood, merge-walk, worst (default: all three)",
    )
    parser.add_argument(
        "--reading-sizes",
        type=_int_list,
        default=(1, 10, 100),
        help="readings per commitReadings (default: 1,10,100)",
    )
    parser.add_argument("--takes", type=int, default=20, help="direct takes to measure")
    parser.add_argument(
        "--forward-sizes",
        type=_int_list,
        default=(1, 10, 100),
        help="day-ahead positions per clearForwards and settleForwards (default: 1,10,100)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help=f"runs per batch of <= {TARGET_FILLS} fills"
    )
    parser.add_argument(
        "--first-sale-size",
        type=int,
        default=TARGET_FILLS,
        help="fills of the worst-case batch whose sellers hold no vEUR (0: skip)",
    )
    parser.add_argument(
        "--estimate-max-fills",
        type=int,
        default=TARGET_FILLS,
        help="time eth_estimateGas for batches up to this many fills (0: never)",
    )
    parser.add_argument(
        "--no-trace", action="store_true", help="skip the opcode breakdown on a tracing anvil"
    )
    parser.add_argument(
        "--anvil-args",
        default="",
        help="extra options for the anvil node, e.g. '--prune-history'",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    if args.takes < 1 or args.repeat < 1 or args.first_sale_size < 0:
        parser.error("--takes and --repeat must be >= 1, --first-sale-size >= 0")
    return args


def _match_timed_gas(trace: BackendResults, results: Sequence[BackendResults]) -> None:
    """Record, per traced transaction, the gasUsed of the same batch in the timed anvil run."""
    timed: dict[tuple[str, int], TxTiming] = {}
    for r in results:
        if r.backend == "anvil":
            timed.update({(s.layout, s.fills): s.timing for s in r.settles})
            if r.takes:
                timed[(TAKE, 1)] = r.takes[0].timing
    for b in trace.breakdowns:
        t = timed.get((b.layout, b.fills))
        if t is not None:
            b.timed_gas_used, b.timed_calldata_gas = t.gas_used, t.calldata_gas


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = Config(
        sizes=args.sizes,
        layouts=args.layouts,
        repeat=args.repeat,
        takes=args.takes,
        reading_sizes=args.reading_sizes,
        first_sale_size=args.first_sale_size,
        estimate_max_fills=args.estimate_max_fills,
        anvil_args=tuple(shlex.split(args.anvil_args)),
        forward_sizes=args.forward_sizes,
    )
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_start = os.getloadavg()
    artifact = load_artifact("Voisin")  # once: every backend runs the same bytecode
    version = source_version(artifact)
    traced = [s for s in cfg.sizes if s <= TARGET_FILLS]
    do_trace = not args.no_trace and "anvil" in args.backends and bool(traced)
    try:
        if "anvil" in args.backends:
            check_anvil()  # fail before spending minutes on the embedded chain
        results = [run_backend(kind, cfg, artifact) for kind in args.backends]
        trace = None
        if do_trace:
            trace_cfg = replace(
                cfg,
                sizes=(max(traced),),
                repeat=1,
                takes=1,
                reading_sizes=(),
                estimate_max_fills=0,
                forward_sizes=(),
            )
            trace = run_backend("anvil", trace_cfg, artifact, tracing=True)
            _match_timed_gas(trace, results)
    except BenchError as exc:
        print(f"bench_settlement: {exc}", file=sys.stderr)
        return 2
    m = machine()
    loads = [" / ".join(f"{x:.1f}" for x in load) for load in (load_start, os.getloadavg())]
    print(
        f"# Voisin settlement benchmark, {started}: {m['cpus']} CPUs ({m['cpu_model']}), "
        f"Python {m['python']}; run took {time.perf_counter() - _START:.0f} s"
    )
    print(f"# load average (1 / 5 / 15 min): {loads[0]} at start, {loads[1]} at end")
    print(f"# contract: {version}")
    print(
        f"# sizes {list(cfg.sizes)}, layouts {list(cfg.layouts)}, repeat {cfg.repeat}, "
        f"takes {cfg.takes}, first-sale {cfg.first_sale_size}, "
        f"readings {list(cfg.reading_sizes)}, forwards {list(cfg.forward_sizes)}"
    )
    print()
    print(render(results, trace, cfg))
    if args.json:
        report = to_json(results, trace, cfg, started)
        report["machine"]["load_average_at_start"] = list(load_start)
        report["contract"] = version
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {args.json}")
    log(f"done in {time.perf_counter() - _START:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
