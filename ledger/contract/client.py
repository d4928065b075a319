"""Typed client of the deployed Voisin contract.

Every write is built, gas-estimated, signed locally with the sender's key and sent raw, so it
works the same on the embedded chain and on any JSON-RPC node. A revert is raised as the typed
exception of :mod:`ledger.errors` that bears the contract error's name and values.

A node on this machine has a provider with ``direct_sends`` (:mod:`ledger.chain.rpc`): a
write then costs two round trips, one batch for the nonce, the fees and the dry run or gas
estimate, and the raw send, and its receipt is polled without web3's 0.1 s sleeps.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import EncodingError
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError as EthValidationError
from hexbytes import HexBytes
from web3 import Web3
from web3._utils.transactions import fill_transaction_defaults
from web3.contract import Contract
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    Web3RPCError,
)

from ledger import errors
from ledger.chain.rpc import RpcError
from ledger.contract import abi_static
from ledger.contract.event_codec import checksum_address, event_decoders
from ledger.errors import InvalidArgument
from ledger.readings.eip712 import SignedReading
from ledger.types import (
    OPEN_END,
    Event,
    Fill,
    Forward,
    ForwardPosition,
    Household,
    MeterState,
    Onboarding,
    Order,
    OrderRequest,
    SlotEnergy,
    Tariffs,
    TxResult,
    check_uint,
)


class VoisinClient:
    """The Voisin contract at ``address`` on ``w3``, described by ``abi``."""

    def __init__(
        self, w3: Web3, address: str, abi: list[dict[str, Any]], *, estimate_gas: bool = True
    ) -> None:
        self.w3 = w3
        # eth_estimateGas binary-searches by re-executing the call: on the in-process chain a
        # 100-fill batch takes ten times longer to estimate than to execute. There, one eth_call
        # surfaces any revert and the transaction carries the block gas limit instead (only the
        # gas used is charged). JSON-RPC nodes estimate quickly and keep estimating.
        self.estimate_gas = estimate_gas
        self._gas_limit: int | None = None
        self.address = to_checksum_address(address)
        self.contract: Contract = w3.eth.contract(address=self.address, abi=abi)
        self._errors = _error_decoders(abi)
        self._events = event_decoders(abi)
        self._functions = {
            str(item["name"]): (
                function_abi_to_4byte_selector(item),  # type: ignore[arg-type]
                tuple(get_abi_input_types(item)),  # type: ignore[arg-type]
            )
            for item in abi
            if item["type"] == "function"
        }
        # Output types of the views whose answers are plain values or structs of them (no
        # arrays, no strings): those the embedded chain can answer without web3 (_view).
        self._outputs: dict[str, tuple[list[str], list[str | tuple[str, ...]]]] = {}
        for item in abi:
            if item["type"] != "function" or item.get("stateMutability") not in ("view", "pure"):
                continue
            outputs = item.get("outputs", [])
            kinds = [_output_type(output) for output in outputs]
            if outputs and all(kind is not None for kind in kinds):
                self._outputs[str(item["name"])] = (
                    [_abi_type(output) for output in outputs],
                    [kind for kind in kinds if kind is not None],
                )
        self._lock = threading.Lock()
        self.chain_id = int(w3.eth.chain_id)
        # The embedded chain's receipts and logs, read without web3's formatting
        # (ledger.chain.embedded.DirectReads); None on a JSON-RPC node.
        self._direct: Any = getattr(w3.provider, "direct_reads", None)
        # A loopback JSON-RPC node's batched preparation and raw sends
        # (ledger.chain.rpc.NodeSends); None elsewhere.
        self._sends: Any = getattr(w3.provider, "direct_sends", None)

    # ───────────────────────────── Transactions ─────────────────────────────

    def transact(
        self, sender: LocalAccount, function: str, *args: Any, check_first: bool = True
    ) -> TxResult:
        """Call ``function(*args)`` as ``sender``; raise the typed error if it would revert.

        ``check_first=False`` skips the dry run the embedded chain does before sending (for
        inputs the caller already validated, e.g. readings through :mod:`ledger.readings.intake`); a
        revert is still raised as its typed error, from the mined receipt.
        """
        data = self.calldata(function, *args)
        with self._lock:
            try:
                if self._sends is not None:
                    tx_hash, receipt = self._send_prepared(sender, data, check_first)
                    if receipt is not None:
                        return self._outcome(tx_hash, receipt, sender, function, data)
                else:
                    tx_hash = self._send_through_web3(sender, data, check_first)
            except (EthValidationError, Web3RPCError, RpcError, ValueError) as exc:
                if isinstance(exc, errors.LedgerError) or not _cannot_pay_gas(exc):
                    raise
                raise _no_gas_money(sender, function) from exc
        return self._result(tx_hash, sender, function, data)

    def _send_through_web3(self, sender: LocalAccount, data: bytes, check_first: bool) -> HexBytes:
        """Send a call of the contract through ``w3.eth``: the embedded chain, a remote node."""
        # The chain's pending count, not a local counter: it stays right after a snapshot
        # revert or when another process sends as the same account.
        nonce = int(self.w3.eth.get_transaction_count(sender.address, "pending"))
        gas: int | None = None
        if not self.estimate_gas:
            if check_first:
                try:
                    self._call(sender.address, data)
                except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
                    raise self.decode_error(exc) from exc
            gas = self._block_gas_limit()
        return self._sign_and_send(sender, data, nonce, gas)

    def _send_prepared(
        self, sender: LocalAccount, data: bytes, check_first: bool
    ) -> tuple[HexBytes, Mapping[str, Any] | None]:
        """Send a call of the contract through the provider's ``direct_sends``: the nonce (the
        chain's pending count), the fees and the dry run or the gas estimate in one round trip,
        then the raw send, which also brings the receipt where the node can (else ``None``).
        Without estimates the transaction carries the block gas limit, as on the embedded
        chain (only the gas used is charged)."""
        check = "estimate" if self.estimate_gas else "call" if check_first else None
        prepared = self._sends.prepare(sender.address, self.address, data, check=check)
        outcome = prepared.check
        if isinstance(outcome, RpcError):
            if _cannot_pay_gas(outcome):
                raise outcome
            raise self.decode_error(outcome) from outcome
        gas = outcome if isinstance(outcome, int) else prepared.block_gas_limit
        signed = self._signed(sender, data, prepared.nonce, gas, prepared)
        tx_hash, receipt = self._sends.send_and_wait(signed)
        return HexBytes(tx_hash), receipt

    def _signed(
        self, sender: LocalAccount, data: bytes, nonce: int, gas: int, prepared: Any
    ) -> bytes:
        """``sender``'s signed call of the contract, with the fees of ``prepared``."""
        tx: dict[str, Any] = {
            "to": self.address,
            "data": data,
            "value": 0,
            "nonce": nonce,
            "gas": gas,
            "maxFeePerGas": prepared.max_fee_per_gas,
            "maxPriorityFeePerGas": prepared.max_priority_fee_per_gas,
            "chainId": self.chain_id,
        }
        return bytes(sender.sign_transaction(tx).raw_transaction)

    def _sign_and_send(
        self, sender: LocalAccount, data: bytes, nonce: int, gas: int | None
    ) -> HexBytes:
        """Sign and send a call of the contract; without ``gas``, web3 estimates it (a revert
        then raises its typed error)."""
        params: dict[str, Any] = {
            "from": sender.address,
            "to": self.address,
            "data": data,
            "value": 0,
            "nonce": nonce,
            "chainId": self.chain_id,
        }
        if gas is not None:
            params["gas"] = gas
        try:
            # Fees (and, unless given, the gas estimate) as web3's build_transaction fills them.
            tx = fill_transaction_defaults(self.w3, params)
        except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
            raise self.decode_error(exc) from exc
        signed = sender.sign_transaction(tx)
        return HexBytes(self.w3.eth.send_raw_transaction(signed.raw_transaction))

    def transact_many(
        self, calls: Sequence[tuple[LocalAccount, str, Sequence[Any]]]
    ) -> list[TxResult]:
        """Send ``calls`` (sender, function, arguments) in order, then wait for them all;
        returns their results in order, or raises the first revert's typed error.

        On the embedded chain they share blocks (``shared_blocks`` of its provider) instead of
        mining one block each: the set-up of a run sends one gas top-up and one or two standing
        orders per household. Each call carries twice the gas the first call of its function
        was estimated to use (the estimate is also its dry run); only the gas used is charged.
        Elsewhere this is :meth:`transact` for each call, without the dry run.
        """
        if self._sends is not None and not self.estimate_gas and calls:
            return self._transact_batched(calls)
        shared = getattr(self.w3.provider, "shared_blocks", None)
        if shared is None or self.estimate_gas:
            return [self.transact(s, f, *args, check_first=False) for s, f, args in calls]
        gas_limits: dict[str, int] = {}
        nonces: dict[str, int] = {}
        sent: list[tuple[HexBytes, LocalAccount, str, bytes]] = []
        with self._lock, shared():
            for sender, function, args in calls:
                data = self.calldata(function, *args)
                if function not in gas_limits:
                    estimate = self._estimate(sender.address, data)
                    gas_limits[function] = min(2 * estimate, self._block_gas_limit())
                if sender.address not in nonces:
                    count = self.w3.eth.get_transaction_count(sender.address, "pending")
                    nonces[sender.address] = int(count)
                nonce = nonces[sender.address]
                tx_hash = self._sign_and_send(sender, data, nonce, gas_limits[function])
                nonces[sender.address] += 1
                sent.append((tx_hash, sender, function, data))
        return [self._result(*item) for item in sent]

    def _transact_batched(
        self, calls: Sequence[tuple[LocalAccount, str, Sequence[Any]]]
    ) -> list[TxResult]:
        """:meth:`transact_many` on a loopback node: every call signed with its sender's next
        nonce and twice the first estimate of its function, all sent in one JSON-RPC batch, and
        their receipts polled together."""
        gas_limits: dict[str, int] = {}
        prepared: dict[str, Any] = {}
        nonces: dict[str, int] = {}
        raws: list[bytes] = []
        items: list[tuple[LocalAccount, str, bytes]] = []
        with self._lock:
            try:
                for sender, function, args in calls:
                    data = self.calldata(function, *args)
                    check = "estimate" if function not in gas_limits else None
                    if check is not None or sender.address not in nonces:
                        ready = self._sends.prepare(sender.address, self.address, data, check=check)
                        if isinstance(ready.check, RpcError):
                            if _cannot_pay_gas(ready.check):
                                raise ready.check
                            raise self.decode_error(ready.check) from ready.check
                        if isinstance(ready.check, int):
                            gas_limits[function] = min(2 * ready.check, ready.block_gas_limit)
                        if sender.address not in nonces:
                            nonces[sender.address] = ready.nonce
                            prepared[sender.address] = ready
                    nonce = nonces[sender.address]
                    nonces[sender.address] += 1
                    raws.append(
                        self._signed(
                            sender, data, nonce, gas_limits[function], prepared[sender.address]
                        )
                    )
                    items.append((sender, function, data))
                hashes = self._sends.send_many(raws)
            except RpcError as exc:
                if not _cannot_pay_gas(exc):
                    raise
                raise _no_gas_money(calls[len(raws) - 1][0], calls[len(raws) - 1][1]) from exc
        receipts = self._direct.receipts([bytes(h) for h in hashes])
        return [
            self._outcome(HexBytes(h), receipt, *item)
            for h, receipt, item in zip(hashes, receipts, items, strict=True)
        ]

    def _estimate(self, sender: str, data: bytes) -> int:
        """Gas ``data`` would use if sent now by ``sender``; a revert raises its typed error."""
        params: Any = {"from": sender, "to": self.address, "data": data}
        try:
            return int(self.w3.eth.estimate_gas(params))
        except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
            raise self.decode_error(exc) from exc

    def _result(
        self, tx_hash: HexBytes, sender: LocalAccount, function: str, data: bytes
    ) -> TxResult:
        """The mined transaction's result; its typed error if it reverted."""
        return self._outcome(tx_hash, self._receipt(tx_hash), sender, function, data)

    def _outcome(
        self,
        tx_hash: HexBytes,
        receipt: Mapping[str, Any],
        sender: LocalAccount,
        function: str,
        data: bytes,
    ) -> TxResult:
        """The result of a mined transaction from its ``receipt``; its typed error if it
        reverted."""
        if receipt["status"] != 1:
            # The state changed between estimate and mining: replay to learn the reason.
            try:
                self._call(sender.address, data, receipt["blockNumber"] - 1)
            except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
                raise self.decode_error(exc) from exc
            raise errors.TransactionFailed(f"{function} reverted in tx {tx_hash.hex()}")
        return TxResult(
            tx_hash=tx_hash.to_0x_hex(),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            logs=tuple(receipt["logs"]),
            decode=self.decode_logs,
        )

    def calldata(self, function: str, *args: Any) -> bytes:
        """The call data of ``function(*args)``: its selector, then the arguments ABI-encoded.

        Encoded from the ABI's types, resolved once per function: web3's
        ``build_transaction`` matched the ABI and walked every argument for each transaction,
        about 50 ms for a batch of 100 readings. Arrays of static structs (readings, fills)
        are written directly (:mod:`ledger.contract.abi_static`), the rest by eth_abi.
        """
        try:
            selector, types = self._functions[function]
        except KeyError:
            raise InvalidArgument(f"the Voisin contract has no function {function!r}") from None
        if len(args) != len(types):
            raise InvalidArgument(f"{function} takes {len(types)} arguments, got {len(args)}")
        fast = abi_static.encode(types, args)
        if fast is not None:
            return selector + fast
        try:
            return selector + abi_encode(types, args)
        except (EncodingError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"{function}: an argument does not fit its type: {exc}") from exc

    def _call(self, sender: str, data: bytes, block: int | None = None) -> bytes:
        """``eth_call`` of ``data`` on the contract as ``sender`` (a dry run, or at ``block``
        a replay)."""
        params: Any = {"from": sender, "to": self.address, "data": data}
        return bytes(self.w3.eth.call(params, "latest" if block is None else block))

    def _receipt(self, tx_hash: HexBytes) -> Mapping[str, Any]:
        """The receipt of a sent transaction, once mined."""
        if self._direct is not None:
            receipt: Mapping[str, Any] | None = self._direct.receipt(bytes(tx_hash))
            if receipt is not None:
                return receipt
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)

    def gas_used(self, tx_hash: str | bytes) -> int:
        """The gas a mined transaction used (on the embedded chain read straight from py-evm,
        without web3's formatting of the whole receipt)."""
        return int(self._receipt(HexBytes(tx_hash))["gasUsed"])

    def _block_gas_limit(self) -> int:
        if self._gas_limit is None:
            self._gas_limit = int(self.w3.eth.get_block("latest")["gasLimit"])
        return self._gas_limit

    def decode_error(self, exc: Exception) -> errors.LedgerError:
        """The typed exception for a revert raised by web3."""
        data = getattr(exc, "data", None)
        if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
            raw = bytes.fromhex(data[2:])
            decoder = self._errors.get(raw[:4])
            if decoder is not None:
                return decoder(raw[4:])
        return errors.TransactionFailed(f"contract call reverted: {exc}")

    def decode_logs(self, logs: Iterable[Any]) -> list[Event]:
        """Decode the Voisin events among ``logs`` (others are skipped)."""
        out: list[Event] = []
        for log in logs:
            if checksum_address(log["address"]) != self.address or not log["topics"]:
                continue
            decoder = self._events.get(bytes(log["topics"][0]))
            if decoder is None:
                continue
            args = decoder.decode(log["topics"], bytes(log["data"]))
            out.append(
                Event(
                    name=decoder.name,
                    args={k: _plain(v) for k, v in args.items()},
                    block_number=int(log["blockNumber"]),
                    log_index=int(log["logIndex"]),
                    tx_hash=HexBytes(log["transactionHash"]).to_0x_hex(),
                )
            )
        return out

    def events(self, from_block: int, to_block: int) -> list[Event]:
        """Every Voisin event in blocks [from_block, to_block], in chain order."""
        logs: Iterable[Any] | None = None
        if self._direct is not None:
            logs = self._direct.logs(self.address, from_block, to_block)
        if logs is None:
            logs = self.w3.eth.get_logs(
                {"address": self.address, "fromBlock": from_block, "toBlock": to_block}
            )
        return self.decode_logs(logs)

    def _view(self, function: str, *args: Any) -> Any:
        if self._direct is not None and function in self._outputs:
            answer = self._direct_view(function, args)
            if answer is not None:
                return answer
        try:
            return getattr(self.contract.functions, function)(*args).call()
        except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
            raise self.decode_error(exc) from exc

    def _direct_view(self, function: str, args: tuple[Any, ...]) -> Any:
        """The view's answer from the embedded chain, shaped as web3 gives it; None where
        web3 should answer instead (no default account, an argument that does not fit, a
        revert), so that errors stay web3's and are decoded as before.

        On the embedded chain web3's request and answer formatting took about three times as
        long as executing the view (7.8 ms against 2.3 ms for ``tariffs``): the audit reads
        every household, meter and balance this way.
        """
        sender = self.w3.eth.default_account
        if not isinstance(sender, str):
            return None
        try:
            data = self.calldata(function, *args)
        except InvalidArgument:
            return None
        raw = self._direct.call(sender, self.address, data)
        if raw is None:
            return None
        types, kinds = self._outputs[function]
        decoded = abi_decode(types, raw)
        values = tuple(_web3_value(k, v) for k, v in zip(kinds, decoded, strict=True))
        return values[0] if len(values) == 1 else list(values)

    # ───────────────────────────── Operator ─────────────────────────────

    def register_household(
        self,
        operator: LocalAccount,
        account: str,
        meter: str,
        *,
        prosumer: bool,
        import_baseline_Wh: int = 0,
        export_baseline_Wh: int = 0,
        check_first: bool = True,
    ) -> int:
        """Register a household; returns its id. ``check_first``: see :meth:`transact`."""
        args = _registration(account, meter, prosumer, import_baseline_Wh, export_baseline_Wh)
        result = self.transact(operator, "registerHousehold", *args, check_first=check_first)
        return int(result.named("HouseholdRegistered")[0].args["household"])

    def onboard(
        self,
        operator: LocalAccount,
        households: Sequence[Onboarding],
        *,
        check_first: bool = True,
    ) -> list[int]:
        """Register ``households`` and top up those with a ``top_up_ueur``, in one transaction:
        all of them or none. Returns their ids, in order. ``check_first``: see :meth:`transact`.

        The contract's ``onboard`` makes the same checks and emits the same events as
        ``registerHousehold`` and then ``topUp`` for each, without a transaction and a block
        each. Keep a batch under the chain's per-transaction gas: about 104,000 gas per household
        registered and topped up in a batch of 50, 156,000 for one alone.
        """
        if not households:
            raise InvalidArgument("onboard needs at least one household")
        entries = [
            (
                *_registration(
                    h.account, h.meter, h.prosumer, h.import_baseline_Wh, h.export_baseline_Wh
                ),
                check_uint("top_up_ueur", h.top_up_ueur, 256),
            )
            for h in households
        ]
        result = self.transact(operator, "onboard", entries, check_first=check_first)
        return [int(e.args["household"]) for e in result.named("HouseholdRegistered")]

    def rotate_meter(
        self,
        operator: LocalAccount,
        household: int,
        new_meter: str,
        import_baseline_Wh: int,
        export_baseline_Wh: int,
    ) -> TxResult:
        return self.transact(
            operator,
            "rotateMeter",
            household,
            to_checksum_address(new_meter),
            import_baseline_Wh,
            export_baseline_Wh,
        )

    def rotate_account(self, operator: LocalAccount, household: int, new_account: str) -> TxResult:
        """Move ``household`` to a new account key; its balance and orders stay with it."""
        return self.transact(operator, "rotateAccount", household, to_checksum_address(new_account))

    def deactivate_household(self, operator: LocalAccount, household: int) -> TxResult:
        return self.transact(operator, "deactivateHousehold", household)

    def set_tariffs(self, operator: LocalAccount, tariffs: Tariffs) -> TxResult:
        return self.transact(
            operator,
            "setTariffs",
            tariffs.feed_in_ueur_per_kWh,
            tariffs.retail_ueur_per_kWh,
            tariffs.grid_fee_ueur_per_kWh,
        )

    def set_fee_recipient(self, operator: LocalAccount, recipient: str) -> TxResult:
        return self.transact(operator, "setFeeRecipient", to_checksum_address(recipient))

    def top_up(
        self, operator: LocalAccount, account: str, amount_ueur: int, *, check_first: bool = True
    ) -> TxResult:
        """Credit ``account`` with ``amount_ueur``. ``check_first``: see :meth:`transact`."""
        return self.transact(
            operator,
            "topUp",
            to_checksum_address(account),
            check_uint("amount_ueur", amount_ueur, 256),
            check_first=check_first,
        )

    def grant_role(self, admin: LocalAccount, role: str, account: str) -> TxResult:
        return self.transact(admin, "grantRole", role_id(role), to_checksum_address(account))

    def revoke_role(self, admin: LocalAccount, role: str, account: str) -> TxResult:
        return self.transact(admin, "revokeRole", role_id(role), to_checksum_address(account))

    def pause(self, operator: LocalAccount) -> TxResult:
        return self.transact(operator, "pause")

    def unpause(self, operator: LocalAccount) -> TxResult:
        return self.transact(operator, "unpause")

    # ───────────────────────────── Readings ─────────────────────────────

    def commit_readings(
        self, sender: LocalAccount, readings: Sequence[SignedReading], *, check_first: bool = True
    ) -> TxResult:
        """Commit signed readings in one transaction (all or none).

        Pass ``check_first=False`` for readings that :func:`ledger.readings.intake.classify`
        accepted:
        on the embedded chain that halves the cost (no dry run before the transaction).
        """
        return self.transact(
            sender,
            "commitReadings",
            [r.as_contract_tuple() for r in readings],
            check_first=check_first,
        )

    # ───────────────────────────── Orders and trades ─────────────────────────────

    def post_offer(
        self,
        household: LocalAccount,
        price_limit_ueur_per_kWh: int,
        first_slot: int,
        last_slot: int = OPEN_END,
        max_Wh_per_slot: int = 0,
        *,
        check_first: bool = True,
    ) -> int:
        """Post a sell offer (at or above the limit); returns its id."""
        args = (price_limit_ueur_per_kWh, first_slot, last_slot, max_Wh_per_slot)
        return self._post_order(household, "Offer", *args, check_first=check_first)

    def post_bid(
        self,
        household: LocalAccount,
        price_limit_ueur_per_kWh: int,
        first_slot: int,
        last_slot: int = OPEN_END,
        max_Wh_per_slot: int = 0,
        *,
        check_first: bool = True,
    ) -> int:
        """Post a buy bid (at or below the limit, grid fee excluded); returns its id."""
        args = (price_limit_ueur_per_kWh, first_slot, last_slot, max_Wh_per_slot)
        return self._post_order(household, "Bid", *args, check_first=check_first)

    def _post_order(
        self,
        household: LocalAccount,
        side: str,
        price_limit_ueur_per_kWh: int,
        first_slot: int,
        last_slot: int,
        max_Wh_per_slot: int,
        *,
        check_first: bool,
    ) -> int:
        args = _order_args(price_limit_ueur_per_kWh, first_slot, last_slot, max_Wh_per_slot)
        result = self.transact(household, f"post{side}", *args, check_first=check_first)
        return _posted_id(result, side)

    def order_calldata(
        self,
        side: str,
        price_limit_ueur_per_kWh: int,
        first_slot: int,
        last_slot: int = OPEN_END,
        max_Wh_per_slot: int = 0,
    ) -> bytes:
        """The call data :meth:`post_offer` (``side`` ``"offer"``) or :meth:`post_bid`
        (``"bid"``) sends for these arguments: what a caller records before sending, to find
        the transaction on chain after a crash."""
        function = {"offer": "postOffer", "bid": "postBid"}.get(side)
        if function is None:
            raise InvalidArgument(f"side must be 'offer' or 'bid', got {side!r}")
        args = _order_args(price_limit_ueur_per_kWh, first_slot, last_slot, max_Wh_per_slot)
        return self.calldata(function, *args)

    def post_orders(self, orders: Sequence[OrderRequest]) -> list[int]:
        """Post ``orders`` (each sent by its household), all sent before any is waited for
        (:meth:`transact_many`: on the embedded chain they share blocks); returns their ids,
        in order."""
        calls = [
            (
                o.household,
                f"post{o.side.capitalize()}",
                _order_args(
                    o.price_limit_ueur_per_kWh, o.first_slot, o.last_slot, o.max_Wh_per_slot
                ),
            )
            for o in orders
        ]
        results = self.transact_many(calls)
        return [_posted_id(r, o.side.capitalize()) for r, o in zip(results, orders, strict=True)]

    def cancel_offer(self, sender: LocalAccount, offer_id: int) -> TxResult:
        return self.transact(sender, "cancelOffer", offer_id)

    def cancel_bid(self, sender: LocalAccount, bid_id: int) -> TxResult:
        return self.transact(sender, "cancelBid", bid_id)

    def settle_batch(
        self,
        settler: LocalAccount,
        slot: int,
        batch: int,
        fills: Sequence[Fill],
        *,
        check_first: bool = True,
    ) -> TxResult:
        """Settle ``fills`` of ``slot`` as batch number ``batch`` (all or none).

        ``check_first=False`` skips the embedded chain's dry run (see :meth:`transact`); a
        refused batch still raises its typed error, and a reverted batch does not use up its
        number.
        """
        return self.transact(
            settler,
            "settleBatch",
            check_uint("slot", slot, 32),
            check_uint("batch", batch, 32),
            [f.as_contract_tuple() for f in fills],
            check_first=check_first,
        )

    def clear_forwards(
        self,
        settler: LocalAccount,
        slot: int,
        batch: int,
        forwards: Sequence[Forward],
        *,
        check_first: bool = True,
    ) -> TxResult:
        """Clear ``forwards`` for ``slot`` ahead of it as batch number ``batch`` (all or none):
        each reserves its buyer's cost and grid fee in the contract's escrow and gets an id
        (its ``ForwardCleared`` event). ``check_first``: see :meth:`transact`."""
        return self.transact(
            settler,
            "clearForwards",
            check_uint("slot", slot, 32),
            check_uint("batch", batch, 32),
            [f.as_contract_tuple() for f in forwards],
            check_first=check_first,
        )

    def settle_forwards(
        self,
        settler: LocalAccount,
        slot: int,
        positions: Sequence[ForwardPosition],
        *,
        check_first: bool = True,
    ) -> TxResult:
        """Settle ``positions`` of ``slot`` against its metered energy (all or none): each
        delivers what both parties' metered energy left for the slot allows, as a fill, and
        gives the rest of its reservation back (its ``ForwardSettled`` event)."""
        for p in positions:
            if p.slot != slot:
                raise errors.InvalidArgument(
                    f"forward {p.forward_id} is for slot {p.slot}, not {slot}"
                )
        return self.transact(
            settler,
            "settleForwards",
            check_uint("slot", slot, 32),
            [p.as_contract_tuple() for p in positions],
            check_first=check_first,
        )

    def seal_slot(
        self,
        settler: LocalAccount,
        slot: int,
        digest_head: bytes | str,
        *,
        check_first: bool = True,
    ) -> TxResult:
        """Anchor ``slot``'s head of the settled-slot digest chain on chain (settler role).

        ``digest_head`` is 32 bytes, or their ``0x`` hex as :mod:`ledger.audit.digest` writes
        them. A seal is final: a different head for a sealed slot raises
        :class:`~ledger.errors.SlotAlreadySealed`; the same head again succeeds without a
        ``SlotSealed`` event (a retry after a crash is safe). A slot beyond
        :meth:`max_reading_slot` raises :class:`~ledger.errors.FutureSlot`, a zero head
        :class:`~ledger.errors.ZeroDigest`. ``check_first``: see :meth:`transact`.
        """
        return self.transact(
            settler,
            "sealSlot",
            check_uint("slot", slot, 32),
            _bytes32("digest_head", digest_head),
            check_first=check_first,
        )

    def take_offer(
        self, buyer: LocalAccount, offer_id: int, slot: int, max_energy_Wh: int
    ) -> TxResult:
        """Buy up to ``max_energy_Wh`` from an offer; the FillSettled event says how much."""
        return self.transact(
            buyer,
            "takeOffer",
            check_uint("offer_id", offer_id, 32),
            check_uint("slot", slot, 32),
            check_uint("max_energy_Wh", max_energy_Wh, 64),
        )

    def transfer(self, sender: LocalAccount, to: str, amount_ueur: int) -> TxResult:
        return self.transact(
            sender, "transfer", to_checksum_address(to), check_uint("amount_ueur", amount_ueur, 256)
        )

    def approve(self, sender: LocalAccount, spender: str, amount_ueur: int) -> TxResult:
        return self.transact(sender, "approve", to_checksum_address(spender), amount_ueur)

    def transfer_from(
        self, spender: LocalAccount, owner: str, to: str, amount_ueur: int
    ) -> TxResult:
        return self.transact(
            spender,
            "transferFrom",
            to_checksum_address(owner),
            to_checksum_address(to),
            amount_ueur,
        )

    # ───────────────────────────── Views ─────────────────────────────

    def balance_of(self, account: str, block: int | None = None) -> int:
        """``account``'s payment-token balance (micro-euro), now or as it was after ``block``."""
        if block is None:
            return int(self._view("balanceOf", to_checksum_address(account)))
        view = self.contract.functions.balanceOf(to_checksum_address(account))
        return int(view.call(block_identifier=block))

    def total_supply(self) -> int:
        return int(self._view("totalSupply"))

    def allowance(self, owner: str, spender: str) -> int:
        return int(
            self._view("allowance", to_checksum_address(owner), to_checksum_address(spender))
        )

    def tariffs(self) -> Tariffs:
        return Tariffs(*self._view("tariffs"))

    def fee_recipient(self) -> str:
        return str(self._view("feeRecipient"))

    def paused(self) -> bool:
        return bool(self._view("paused"))

    def predecessor_last_slot(self) -> int:
        """The last slot metered on the deployment this one continues (0 for a first
        deployment): every meter here starts after it."""
        return int(self._view("predecessor")[3])

    def has_role(self, role: str, account: str) -> bool:
        return bool(self._view("hasRole", role_id(role), to_checksum_address(account)))

    def household(self, household_id: int) -> Household:
        account, active, prosumer, balance, meter = self._view("getHousehold", household_id)
        if int(account, 16) == 0:
            raise errors.UnknownHousehold({"household": household_id})
        return Household(household_id, account, active, prosumer, balance, meter)

    def household_balance_after(self, household_id: int, block: int) -> int | None:
        """The household's balance (micro-euro) as it was after ``block``; None if the node no
        longer keeps that block's state (a node that prunes old state)."""
        view = self.contract.functions.getHousehold(household_id)
        try:
            fields = view.call(block_identifier=block)
        except (ValueError, Web3RPCError, RpcError):
            return None
        return int(fields[3])

    def household_of(self, account: str) -> int:
        """The household id of ``account``, 0 if none."""
        return int(self._view("householdOf", to_checksum_address(account)))

    def household_count(self) -> int:
        return int(self._view("householdCount"))

    def meter_state(self, meter: str) -> MeterState:
        return MeterState(*self._view("meterState", to_checksum_address(meter)))

    def slot_energy(self, household: int, slot: int) -> SlotEnergy:
        return SlotEnergy(*self._view("slotEnergy", household, slot))

    def credits_of(self, household: int, slot: int) -> int:
        """Unsold metered export of ``slot`` (Wh): zero for a slot the ring no longer keeps."""
        return self.slot_energy(household, slot).credits_Wh

    def offer(self, offer_id: int) -> Order:
        return _order(offer_id, self._view("getOffer", offer_id), errors.UnknownOffer, "offerId")

    def bid(self, bid_id: int) -> Order:
        return _order(bid_id, self._view("getBid", bid_id), errors.UnknownBid, "bidId")

    def offer_count(self) -> int:
        return int(self._view("offerCount"))

    def bid_count(self) -> int:
        return int(self._view("bidCount"))

    def offer_used_Wh(self, offer_id: int, slot: int) -> int:
        return int(self._view("offerUsedWh", offer_id, slot))

    def bid_used_Wh(self, bid_id: int, slot: int) -> int:
        return int(self._view("bidUsedWh", bid_id, slot))

    def batch_settled(self, slot: int, batch: int) -> bool:
        return bool(self._view("batchSettled", slot, batch))

    def forward_batch_cleared(self, slot: int, batch: int) -> bool:
        return bool(self._view("forwardBatchCleared", slot, batch))

    def forward_count(self) -> int:
        return int(self._view("forwardCount"))

    def sealed_digest_head(self, slot: int) -> str | None:
        """The digest head sealed on chain for ``slot`` (``0x`` + 64 hex digits, lowercase,
        as :mod:`ledger.audit.digest` writes them), or None if the slot is not sealed."""
        head = bytes(self._view("sealedDigestHead", check_uint("slot", slot, 32)))
        return None if head == bytes(32) else "0x" + head.hex()

    def max_reading_slot(self) -> int:
        """The last slot a reading or a seal may name at the chain's latest block:
        ``block_time // 900 + MAX_SLOTS_AHEAD`` (the contract refuses later ones with
        :class:`~ledger.errors.FutureReading` or :class:`~ledger.errors.FutureSlot`)."""
        return int(self._view("maxReadingSlot"))

    def domain_separator(self) -> bytes:
        return bytes(self._view("domainSeparator"))

    def reading_digest(self, meter: str, slot: int, import_Wh: int, export_Wh: int) -> bytes:
        return bytes(
            self._view("readingDigest", to_checksum_address(meter), slot, import_Wh, export_Wh)
        )


def _registration(
    account: str, meter: str, prosumer: bool, import_baseline_Wh: int, export_baseline_Wh: int
) -> tuple[Any, ...]:
    """The arguments of ``registerHousehold``, checked."""
    if not isinstance(prosumer, bool):
        raise InvalidArgument(f"prosumer must be a bool, got {type(prosumer).__name__}")
    return (
        to_checksum_address(account),
        to_checksum_address(meter),
        prosumer,
        check_uint("import_baseline_Wh", import_baseline_Wh, 64),
        check_uint("export_baseline_Wh", export_baseline_Wh, 64),
    )


def _bytes32(name: str, value: bytes | str) -> bytes:
    """``value`` (32 bytes, or ``0x`` and 64 hex digits) as 32 bytes, else InvalidArgument."""
    raw: bytes | None = None
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
    elif isinstance(value, str) and value.startswith("0x"):
        try:
            raw = bytes.fromhex(value[2:])
        except ValueError:
            raw = None
    if raw is None or len(raw) != 32:
        raise InvalidArgument(f"{name} must be 32 bytes or 0x and 64 hex digits, got {value!r}")
    return raw


def _cannot_pay_gas(exc: Exception) -> bool:
    """Whether the chain refused a call or transaction because its sender cannot pay the gas:
    py-evm says "cannot afford txn gas", JSON-RPC nodes "insufficient funds"."""
    text = str(exc).lower()
    return "cannot afford" in text or "insufficient funds" in text


def _no_gas_money(sender: LocalAccount, function: str) -> errors.NoGasMoney:
    return errors.NoGasMoney(
        f"account {sender.address} has no ether to pay the gas of {function}; "
        "the operator funds a household's account when it registers"
    )


def role_id(role: str) -> bytes:
    """The bytes32 id of a role name (``DEFAULT_ADMIN_ROLE``, ``OPERATOR_ROLE``, ...)."""
    if role == "DEFAULT_ADMIN_ROLE":
        return b"\x00" * 32
    return keccak(text=role)


_DIRECT_BASIC = re.compile(r"^(address|bool|bytes([1-9]|[12][0-9]|3[0-2])?|u?int([0-9]+)?)$")


def _output_type(output: Mapping[str, Any]) -> str | tuple[str, ...] | None:
    """A view output the direct path decodes: a basic type, or a struct of basic types (as
    a tuple of their names); None for anything else (arrays, strings, nested structs)."""
    kind = str(output["type"])
    if kind == "tuple":
        parts = tuple(str(c["type"]) for c in output.get("components", []))
        return parts if parts and all(_DIRECT_BASIC.match(p) for p in parts) else None
    return kind if _DIRECT_BASIC.match(kind) else None


def _web3_value(kind: str | tuple[str, ...], value: Any) -> Any:
    """``value`` as web3's ``call`` gives it: addresses checksummed, structs as tuples."""
    if isinstance(kind, tuple):
        return tuple(_web3_value(k, v) for k, v in zip(kind, value, strict=True))
    if kind == "address":
        return to_checksum_address(value)
    return value


def _order_args(price: int, first_slot: int, last_slot: int, max_Wh: int) -> tuple[int, ...]:
    """postOffer's and postBid's arguments, each checked against its type."""
    return (
        check_uint("price_limit_ueur_per_kWh", price, 64),
        check_uint("max_Wh_per_slot", max_Wh, 64),
        check_uint("first_slot", first_slot, 32),
        check_uint("last_slot", last_slot, 32),
    )


def _posted_id(result: TxResult, side: str) -> int:
    return int(result.named(f"{side}Posted")[0].args[f"{side.lower()}Id"])


def _order(
    order_id: int, raw: Sequence[Any], missing: type[errors.ContractError], key: str
) -> Order:
    household, price, cap, first, last, is_open = raw
    if household == 0:
        raise missing({key: order_id})
    return Order(order_id, household, price, cap, first, last, is_open)


def _signature(item: dict[str, Any]) -> str:
    return f"{item['name']}({','.join(_abi_type(i) for i in item['inputs'])})"


def _abi_type(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param["components"]) + ")" + kind[5:]
    return kind


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return HexBytes(value).to_0x_hex()
    return value


def _error_decoders(
    abi: list[dict[str, Any]],
) -> dict[bytes, Callable[[bytes], errors.ContractError]]:
    classes = errors.contract_error_classes()
    decoders: dict[bytes, Callable[[bytes], errors.ContractError]] = {}
    for item in abi:
        if item["type"] != "error":
            continue
        selector = keccak(text=_signature(item))[:4]
        cls = classes.get(str(item["name"]), errors.ContractError)
        names = [str(i["name"]) for i in item["inputs"]]
        types = [_abi_type(i) for i in item["inputs"]]
        decoders[selector] = _make_decoder(cls, names, types)
    return decoders


def _make_decoder(
    cls: type[errors.ContractError], names: list[str], types: list[str]
) -> Callable[[bytes], errors.ContractError]:
    def decode(payload: bytes) -> errors.ContractError:
        values = abi_decode(types, payload) if types else ()
        decoded = {
            n: to_checksum_address(v) if t == "address" else _plain(v)
            for n, t, v in zip(names, types, values, strict=True)
        }
        return cls(decoded)

    return decode
