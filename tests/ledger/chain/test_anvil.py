"""The ``anvil`` backend: a local anvil started on a free port, its operator funded, stopped
when the chain closes (also on an exception, and when its parent is killed), its state kept in
the data directory, and a clear error when the binary is missing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from web3 import Web3

from ledger.chain.anvil import ANVIL_BIN, CHAIN_ID, STATE_FILE, free_port, start_anvil
from ledger.chain.backends import open_chain
from ledger.chain.operator import OPERATOR_GENESIS_WEI
from ledger.errors import ConfigError

pytestmark = pytest.mark.skipif(
    not ANVIL_BIN.is_file() and not os.environ.get("CI"),
    reason="anvil is not installed (run scripts/install)",
)

ROOT = Path(__file__).resolve().parents[3]
OTHER = Web3.to_checksum_address("0x" + "ab" * 20)


def _gone(pid: int, seconds: float = 10.0) -> bool:
    """Whether process ``pid`` has exited (and been reaped, or is a zombie) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(")")[-1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_a_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"anvil is not installed .*scripts/install"):
        start_anvil(binary=tmp_path / "no-anvil")


def test_the_chain_id_is_the_embedded_chains() -> None:
    from ledger.chain.embedded import CHAIN_ID as EMBEDDED_CHAIN_ID

    assert CHAIN_ID == EMBEDDED_CHAIN_ID


def test_anvil_starts_funds_the_operator_and_stops_on_close(tmp_path: Path) -> None:
    key = "0x" + "42" * 32
    with open_chain("anvil", tmp_path, key) as chain:
        assert chain.kind == "anvil" and chain.anvil is not None
        process = chain.anvil.process
        assert chain.anvil.url.startswith("http://127.0.0.1:")
        assert chain.chain_id == CHAIN_ID
        assert chain.w3.eth.get_balance(chain.operator.address) >= OPERATOR_GENESIS_WEI
        assert chain.operator.address == Web3().eth.account.from_key(key).address
        chain.fund_many([chain.operator.address, OTHER], 5)
        assert chain.w3.eth.get_balance(OTHER) == 5
    assert process.poll() is not None
    # Its state was written at the stop, and the next start loads it; the key stayed too.
    assert (tmp_path / STATE_FILE).is_file()
    with open_chain("anvil", tmp_path) as again:
        assert again.operator.address == chain.operator.address
        assert again.w3.eth.get_balance(OTHER) == 5


def test_anvil_stops_when_the_block_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), open_chain("anvil", tmp_path) as chain:
        assert chain.anvil is not None
        process = chain.anvil.process
        raise RuntimeError("boom")
    assert process.poll() is not None


def test_a_data_dir_with_an_embedded_chain_is_refused(tmp_path: Path) -> None:
    (tmp_path / "chain").mkdir()
    with pytest.raises(ConfigError, match="holds an embedded chain"):
        open_chain("anvil", tmp_path)


def test_anvil_dies_with_a_parent_killed_without_closing_it(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from ledger.chain.backends import open_chain\n"
        f"chain = open_chain('anvil', {str(tmp_path)!r})\n"
        "print(chain.anvil.process.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        anvil_pid = int(parent.stdout.readline())
        assert not _gone(anvil_pid, 0.2)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _gone(anvil_pid)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
