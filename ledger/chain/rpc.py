"""Lean JSON-RPC to a node on this machine: what ``open_chain`` uses for loopback nodes.

web3's ``HTTPProvider`` goes through ``requests``: each call reads the proxy settings from the
environment, builds a session request and a response object, about 2.5 ms of Python per call
against 0.2 ms for the round trip itself on a local anvil. :class:`NodeLink` writes each
request in one piece on one keep-alive connection per thread instead (``http.client`` reads
the answer), and :class:`LoopbackProvider` is the web3 provider built on it (public
``make_request``/``make_batch_request``), so every ``w3.eth`` call of a loopback node goes
that way.

The provider also carries what :class:`ledger.contract.client.VoisinClient` reads and sends
without web3's formatting, as the embedded chain's provider does (its ``direct_reads``):

- :class:`NodeReads` (``direct_reads``): a receipt, waited for by polling without web3's
  0.1 s sleeps; a view's ``eth_call``; a contract's logs, in the shapes the client reads.
- :class:`NodeSends` (``direct_sends``): the sender's pending nonce, the fees and the head's
  gas limit (and a dry run or a gas estimate) in one batched round trip, and raw sends, one
  or many in one batch.

Remote nodes keep web3's ``HTTPProvider`` (proxies, TLS settings, retries): there the network's
latency, not the client's Python, sets the pace.
"""

from __future__ import annotations

import http.client
import itertools
import json
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import urlsplit

from hexbytes import HexBytes
from web3.providers.base import JSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from ledger.contract.event_codec import checksum_address
from ledger.errors import ChainUnavailable

#: How long :meth:`NodeReads.receipt` waits for a sent transaction to be mined.
RECEIPT_TIMEOUT_S: Final = 120.0
#: The first and the longest pause between two receipt polls, and the growth between them (a
#: local anvil mines a transaction in 1 to 15 ms: the first polls come quickly, each a fraction
#: of a millisecond of the node's time, and a slow node is not flooded).
#: JSON-RPC's "method not found" error code.
_METHOD_NOT_FOUND: Final = -32601
_POLL_FIRST_S: Final = 0.0002
_POLL_MAX_S: Final = 0.05
_POLL_GROWTH: Final = 1.3
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback(url: str) -> bool:
    """Whether ``url`` is a plain ``http://`` URL of a node on this machine."""
    parts = urlsplit(url)
    return parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK_HOSTS


class RpcError(Exception):
    """A JSON-RPC error answer: its ``code``, ``message`` and ``data`` (a revert's data as
    ``0x`` hex, as :meth:`VoisinClient.decode_error` reads it)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (JSON-RPC error {code})")
        self.code = code
        self.message = message
        self.data = data


class NodeLink:
    """JSON-RPC over HTTP/1.1 to ``url``: one keep-alive connection per thread, no proxies."""

    def __init__(
        self, url: str, *, headers: dict[str, str] | None = None, timeout: float = 120.0
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"NodeLink speaks plain http:// only, got {url!r}")
        self.url = url
        self._host = parts.hostname
        self._port = parts.port or 80
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        lines = [
            f"POST {parts.path or '/'} HTTP/1.1",
            f"Host: {host}:{parts.port or 80}",
            "Content-Type: application/json",
            *(f"{k}: {v}" for k, v in (headers or {}).items()),
            "Content-Length: ",
        ]
        self._head = "\r\n".join(lines).encode("latin-1")
        self._timeout = timeout
        self._local = threading.local()
        self._ids = itertools.count(1)

    def request(self, method: str, params: Sequence[Any]) -> Any:
        """The result of ``method(params)``; :class:`RpcError` if the node answers an error."""
        answer = self.post({"jsonrpc": "2.0", "id": next(self._ids), "method": method,
                            "params": list(params)})  # fmt: skip
        if not isinstance(answer, dict):
            raise RpcError(-32603, f"unexpected answer to {method}: {answer!r}")
        return _result(answer)

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """The results of ``calls`` in one round trip, in order; an error answer is returned
        as an :class:`RpcError` in its place (not raised)."""
        if not calls:
            return []
        first = next(self._ids)
        self._ids = itertools.count(first + len(calls))
        body = [
            {"jsonrpc": "2.0", "id": first + k, "method": m, "params": list(p)}
            for k, (m, p) in enumerate(calls)
        ]
        answer = self.post(body)
        if not isinstance(answer, list):
            # A node refuses a whole batch with one error object.
            error = _error(answer) if isinstance(answer, dict) else None
            raise error or RpcError(-32603, f"unexpected answer to a batch: {answer!r}")
        by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
        out: list[Any] = []
        for k in range(len(calls)):
            item = by_id.get(first + k)
            if item is None:
                out.append(RpcError(-32603, f"no answer to {calls[k][0]} in the batch"))
                continue
            error = _error(item)
            out.append(error if error is not None else item.get("result"))
        return out

    def post(self, payload: Any) -> Any:
        """POST ``payload`` as JSON and return the decoded answer."""
        return json.loads(self.post_bytes(json.dumps(payload).encode()))

    def post_bytes(self, body: bytes) -> bytes:
        """POST ``body`` and return the answer's body. A connection the node closed while idle
        is reopened once; other failures raise :class:`ChainUnavailable`."""
        request = self._head + str(len(body)).encode() + b"\r\n\r\n" + body
        for attempt in (0, 1):
            sock, reused = self._connection()
            try:
                # The request in one write: headers and body apart would cost a second system
                # call and wake the node twice.
                sock.sendall(request)
                response = http.client.HTTPResponse(sock)
                response.begin()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self._drop()
                if reused and attempt == 0:
                    continue
                raise ChainUnavailable(f"the node at {self.url} closed the connection") from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                raise ChainUnavailable(f"cannot reach the node at {self.url}: {exc}") from exc
            if response.will_close:
                self._drop()
            if response.status != 200 and not data:
                raise ChainUnavailable(f"the node at {self.url} answered HTTP {response.status}")
            return data
        raise AssertionError("unreachable")

    def _connection(self) -> tuple[socket.socket, bool]:
        sock: socket.socket | None = getattr(self._local, "sock", None)
        if sock is not None:
            return sock, True
        try:
            sock = socket.create_connection((self._host, self._port), timeout=self._timeout)
        except OSError as exc:
            raise ChainUnavailable(f"cannot reach the node at {self.url}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._local.sock = sock
        return sock, False

    def _drop(self) -> None:
        sock = getattr(self._local, "sock", None)
        if sock is not None:
            sock.close()
        self._local.sock = None

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        self._drop()


def _error(answer: dict[str, Any]) -> RpcError | None:
    error = answer.get("error")
    if error is None:
        return None
    if not isinstance(error, dict):
        return RpcError(-32603, str(error))
    return RpcError(
        int(error.get("code", -32603)), str(error.get("message", "")), error.get("data")
    )


def _result(answer: dict[str, Any]) -> Any:
    error = _error(answer)
    if error is not None:
        raise error
    return answer.get("result")


class LoopbackProvider(JSONBaseProvider):
    """web3's provider for a node on this machine, over :class:`NodeLink`; it also carries the
    client's :class:`NodeReads` (``direct_reads``) and :class:`NodeSends` (``direct_sends``)."""

    def __init__(self, link: NodeLink) -> None:
        super().__init__()
        self.link = link
        self.direct_reads = NodeReads(link)
        self.direct_sends = NodeSends(link)

    def __str__(self) -> str:
        return f"RPC connection {self.link.url}"

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        raw = self.link.post_bytes(self.encode_rpc_request(method, params))
        return self.decode_rpc_response(raw)

    def make_batch_request(
        self, batch_requests: list[tuple[RPCEndpoint, Any]]
    ) -> list[RPCResponse] | RPCResponse:
        raw = self.link.post_bytes(self.encode_batch_rpc_request(batch_requests))
        response = cast(Any, self.decode_rpc_response(raw))
        if not isinstance(response, list):
            return cast(RPCResponse, response)
        return sorted(response, key=lambda item: int(item.get("id", 0)))

    def is_connected(self, show_traceback: bool = False) -> bool:
        try:
            self.link.request("web3_clientVersion", [])
        except (ChainUnavailable, RpcError):
            if show_traceback:
                raise
            return False
        return True


def _quantity(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _log(raw: dict[str, Any]) -> dict[str, Any]:
    """A JSON-RPC log in the shape the client reads (see ``DirectReads`` of the embedded chain)."""
    return {
        "address": checksum_address(raw["address"]),
        "topics": [bytes.fromhex(t[2:]) for t in raw["topics"]],
        "data": bytes.fromhex(raw["data"][2:]),
        "blockNumber": _quantity(raw["blockNumber"]),
        "logIndex": _quantity(raw["logIndex"]),
        "transactionHash": bytes.fromhex(raw["transactionHash"][2:]),
    }


def receipt_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """A JSON-RPC receipt in the shape the client reads: ``status``, ``blockNumber``,
    ``gasUsed`` and ``logs``."""
    return {
        "status": _quantity(raw["status"]),
        "blockNumber": _quantity(raw["blockNumber"]),
        "gasUsed": _quantity(raw["gasUsed"]),
        "logs": [_log(item) for item in raw["logs"]],
    }


class NodeReads:
    """Receipts, views and logs of a JSON-RPC node, read without web3's formatting."""

    def __init__(self, link: NodeLink, receipt_timeout: float = RECEIPT_TIMEOUT_S) -> None:
        self._link = link
        self._timeout = receipt_timeout

    def receipt(self, tx_hash: bytes) -> dict[str, Any]:
        """The receipt of a sent transaction, waited for until it is mined (polled quickly at
        first, then less often, every 50 ms at most); :class:`ChainUnavailable` after the
        timeout."""
        return self.receipts([tx_hash])[0]

    def receipts(self, tx_hashes: Sequence[bytes]) -> list[dict[str, Any]]:
        """The receipts of sent transactions, in order, polled together in batches until all
        are mined."""
        wanted = ["0x" + bytes(h).hex() for h in tx_hashes]
        found: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + self._timeout
        pause = _POLL_FIRST_S
        while True:
            missing = [h for h in wanted if h not in found]
            answers = self._link.batch([("eth_getTransactionReceipt", [h]) for h in missing])
            for h, answer in zip(missing, answers, strict=True):
                if isinstance(answer, RpcError):
                    raise answer
                if answer is not None:
                    found[h] = receipt_fields(answer)
            if len(found) == len(wanted):
                return [found[h] for h in wanted]
            if time.monotonic() > deadline:
                raise ChainUnavailable(
                    f"transaction {missing[0]} was not mined within {self._timeout:.0f} s"
                )
            time.sleep(pause)
            pause = min(_POLL_GROWTH * pause, _POLL_MAX_S)

    def call(self, sender: str, to: str, data: bytes) -> bytes | None:
        """``eth_call`` of ``data`` at the head; None if it reverts (the caller then asks
        ``w3.eth``, whose error carries the revert data)."""
        try:
            result = self._link.request(
                "eth_call", [{"from": sender, "to": to, "data": "0x" + data.hex()}, "latest"]
            )
        except RpcError:
            return None
        return bytes.fromhex(str(result)[2:])

    def logs(self, address: str, from_block: int, to_block: int) -> list[dict[str, Any]] | None:
        """The logs of ``address`` in blocks ``from_block..to_block``; None if the node refuses
        the range (the caller then asks ``w3.eth``, whose error says why)."""
        query = {"address": address, "fromBlock": hex(from_block), "toBlock": hex(to_block)}
        try:
            raw = self._link.request("eth_getLogs", [query])
        except RpcError:
            return None
        return [_log(item) for item in raw]


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a transaction needs from the node before it is signed (:meth:`NodeSends.prepare`).

    ``check`` is the dry run's or the gas estimate's answer: the estimate (an int), ``None``
    after a successful dry run, or the :class:`RpcError` of a revert.
    """

    nonce: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    block_gas_limit: int
    check: int | RpcError | None


class NodeSends:
    """Sends for a JSON-RPC node: one batched round trip to prepare, one to send."""

    def __init__(self, link: NodeLink) -> None:
        self._link = link
        self._sync = True

    def prepare(self, sender: str, to: str, data: bytes, *, check: str | None = None) -> Prepared:
        """``sender``'s pending nonce, web3's default fees (the node's priority fee, plus twice
        the head's base fee) and the head's gas limit, in one round trip; with ``check``
        ``"call"`` a dry run of ``data``, with ``"estimate"`` its gas estimate, in the same one.
        """
        tx = {"from": sender, "to": to, "data": "0x" + data.hex()}
        calls: list[tuple[str, Sequence[Any]]] = [
            ("eth_getTransactionCount", [sender, "pending"]),
            ("eth_maxPriorityFeePerGas", []),
            ("eth_getBlockByNumber", ["latest", False]),
        ]
        if check == "call":
            calls.append(("eth_call", [tx, "latest"]))
        elif check == "estimate":
            calls.append(("eth_estimateGas", [tx]))
        answers = self._link.batch(calls)
        for answer in answers[:3]:
            if isinstance(answer, RpcError):
                raise answer
        nonce, tip, head = answers[0], _quantity(answers[1]), answers[2]
        checked: int | RpcError | None = None
        if check is not None:
            outcome = answers[3]
            if isinstance(outcome, RpcError):
                checked = outcome
            elif check == "estimate":
                checked = _quantity(outcome)
        base_fee = _quantity(head.get("baseFeePerGas") or 0)
        return Prepared(
            nonce=_quantity(nonce),
            max_fee_per_gas=tip + 2 * base_fee,
            max_priority_fee_per_gas=tip,
            block_gas_limit=_quantity(head["gasLimit"]),
            check=checked,
        )

    def send_and_wait(self, raw_transaction: bytes) -> tuple[HexBytes, dict[str, Any] | None]:
        """Send a signed transaction and, where the node can, get its receipt in the same round
        trip (``eth_sendRawTransactionSync``, which anvil serves: no receipt polling); returns
        its hash and receipt (:func:`receipt_fields`), or ``None`` for the receipt from a node
        without that method, which is then asked no more."""
        if self._sync:
            try:
                raw = self._link.request(
                    "eth_sendRawTransactionSync", ["0x" + raw_transaction.hex()]
                )
            except RpcError as exc:
                if exc.code != _METHOD_NOT_FOUND:
                    raise
                self._sync = False
            else:
                return HexBytes(raw["transactionHash"]), receipt_fields(raw)
        return self.send(raw_transaction), None

    def send(self, raw_transaction: bytes) -> HexBytes:
        """Send a signed transaction; returns its hash."""
        return HexBytes(
            self._link.request("eth_sendRawTransaction", ["0x" + raw_transaction.hex()])
        )

    def send_many(self, raw_transactions: Sequence[bytes]) -> list[HexBytes]:
        """Send signed transactions one after the other without waiting for them to be mined;
        returns their hashes, or raises the first refusal (those before it were sent).

        One request each, not one JSON-RPC batch: a node may answer a batch's requests in any
        order, and transactions of different senders must reach the pool in the caller's order
        (anvil runs with ``--order fifo``) for the contract to number their orders that way.
        """
        return [self.send(raw) for raw in raw_transactions]
