"""The embedded chain as a node process (ledger/chain/node.py): JSON-RPC answers, restarts, dying
with its parent, and one owner per data directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
from eth_account import Account

from ledger import Chain, errors
from ledger.chain.backends import open_chain
from ledger.chain.node import answer, start_node, to_json_rpc
from ledger.errors import ChainUnavailable
from tests.world import SLOT, new_world

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def node_chain(tmp_path: Path) -> Iterator[Chain]:
    chain = open_chain("embedded", tmp_path / "data", process=True)
    yield chain
    chain.close()


def _rpc(url: str, body: object, headers: dict[str, str] | None = None) -> object:
    return httpx.post(url, json=body, headers=headers, timeout=30).json()


def _pid_gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_results_are_standard_json_rpc() -> None:
    assert to_json_rpc({"blockNumber": 5, "status": True, "data": b"\x01\xff", "x": None}) == {
        "blockNumber": "0x5",
        "status": True,
        "data": "0x01ff",
        "x": None,
    }
    assert to_json_rpc([0, "0xab"]) == ["0x0", "0xab"]


def test_node_answers_json_rpc_and_refuses_bad_requests(node_chain: Chain) -> None:
    assert node_chain.node is not None
    url, h = node_chain.node.url, node_chain.node.headers
    reply = _rpc(url, {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, h)
    assert reply == {"jsonrpc": "2.0", "id": 1, "result": hex(node_chain.chain_id)}
    batch = _rpc(
        url,
        [
            {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
            {"jsonrpc": "2.0", "id": 2, "method": "eth_noSuchMethod", "params": []},
        ],
        h,
    )
    assert isinstance(batch, list) and [r["id"] for r in batch] == [1, 2]
    assert batch[0]["result"].startswith("0x")
    assert "error" in batch[1] and "result" not in batch[1]
    # Not JSON, not a request object, params not a list: errors, and the node lives on.
    garbled = httpx.post(url, content=b"{not json", headers=h, timeout=30).json()
    assert garbled["error"]["code"] == -32700
    assert _rpc(url, {"id": 3}, h)["error"]["code"] == -32600  # type: ignore[index]
    assert _rpc(url, {"id": 4, "method": "eth_chainId", "params": 7}, h)["error"]["code"] == -32602  # type: ignore[index]
    assert node_chain.node.alive
    assert node_chain.w3.eth.block_number >= 0


def test_the_node_refuses_testing_and_account_methods(node_chain: Chain) -> None:
    """eth-tester answers evm_snapshot/evm_revert/evm_reset and would send for unlocked
    accounts; the node is reachable by any local user, so none of that is served."""
    assert node_chain.node is not None
    url = node_chain.node.url
    head = node_chain.w3.eth.block_number
    node_chain.fund(Account.create().address)
    for method, params in [
        ("evm_snapshot", []),
        ("evm_revert", ["0x0"]),
        ("evm_reset", []),
        ("evm_mine", []),
        ("eth_accounts", []),
        ("eth_sendTransaction", [{"from": node_chain.operator.address, "value": "0x1"}]),
        ("personal_unlockAccount", [node_chain.operator.address, "", 0]),
    ]:
        body = {"jsonrpc": "2.0", "id": 9, "method": method, "params": params}
        reply = _rpc(url, body, node_chain.node.headers)
        assert reply["error"]["code"] == -32601, (method, reply)  # type: ignore[index]
    assert node_chain.w3.eth.block_number == head + 1  # nothing reverted, reset or mined


def test_the_node_serves_only_its_parent_and_survives_hostile_bodies(node_chain: Chain) -> None:
    """Its port is on loopback, where any local user can reach it: without the parent's token
    it answers nothing, and no body (too deep for the parser, too large, not UTF-8) brings
    it down."""
    node = node_chain.node
    assert node is not None
    url, h = node.url, node.headers
    chain_id = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    stranger = httpx.post(url, json=chain_id, timeout=30)
    assert stranger.status_code == 401 and "result" not in stranger.json()
    wrong = httpx.post(url, json=chain_id, headers={"Authorization": "Bearer x"}, timeout=30)
    assert wrong.status_code == 401
    deep = b"[" * 80_000 + b"]" * 80_000
    for body in (deep, b"[" * 80_000, "[1]".encode("utf-16")):
        reply = httpx.post(url, content=body, headers=h, timeout=30)
        assert reply.status_code == 200 and reply.json()["error"]["code"] == -32700
    huge = httpx.post(url, content=b"[" + b" " * (17 * 1024 * 1024) + b"]", headers=h, timeout=60)
    assert huge.status_code == 413
    assert node.alive
    assert _rpc(url, chain_id, h) == {"jsonrpc": "2.0", "id": 1, "result": hex(node_chain.chain_id)}


def test_reverts_reach_the_client_as_typed_errors(node_chain: Chain) -> None:
    w = new_world(node_chain)
    seller = w.household(prosumer=True)
    w.meter(seller, SLOT, export_Wh=100)
    with pytest.raises(errors.DuplicateReading):
        w.meter(seller, SLOT, export_Wh=200)
    # The node goes on answering after the revert.
    reply = answer(node_chain.w3, {"id": 1, "method": "eth_chainId", "params": []})
    assert reply is not None and int(reply["result"], 16) == node_chain.chain_id


def test_a_killed_node_restarts_on_its_url_with_every_block(node_chain: Chain) -> None:
    node = node_chain.node
    assert node is not None
    account = Account.create()
    node_chain.fund(account.address)
    url, before = node.url, node_chain.w3.eth.block_number
    node.process.send_signal(signal.SIGKILL)
    node.process.wait(10)
    assert not node.alive
    with pytest.raises(requests.exceptions.ConnectionError):  # the node is down
        node_chain.w3.eth.block_number  # noqa: B018
    node.restart()
    assert node.alive and node.url == url
    assert node_chain.w3.eth.block_number == before
    assert node_chain.w3.eth.get_balance(account.address) == 10**18


def test_a_second_node_on_the_same_data_dir_is_refused(node_chain: Chain) -> None:
    assert node_chain.data_dir is not None
    with pytest.raises(ChainUnavailable, match="already open"):
        start_node(node_chain.data_dir, timeout=60)
    with pytest.raises(ChainUnavailable, match="already open"):
        open_chain("embedded", node_chain.data_dir)


def test_the_node_dies_with_its_parent_even_by_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    parent_code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from ledger.chain.backends import open_chain
        chain = open_chain("embedded", Path({str(data)!r}), process=True)
        print(chain.node.process.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        node_pid = int(parent.stdout.readline())
        os.kill(node_pid, 0)  # running
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _pid_gone(node_pid, within_s=10), "the node outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    # Its lock went with it: the data directory opens again, in process.
    with open_chain("embedded", data) as chain:
        assert chain.w3.eth.block_number >= 0
