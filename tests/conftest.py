"""Fixtures shared by the test suites: the anvil node and fresh chains per backend."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import Chain, open_chain

ROOT = Path(__file__).resolve().parent.parent
ANVIL_BIN = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
#: Anvil's first dev account (from its public test mnemonic): funded on every anvil start.
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, proc: subprocess.Popen[bytes] | None, seconds: float = 30) -> None:
    from web3 import Web3

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"anvil exited with code {proc.returncode}")
        try:
            if Web3(Web3.HTTPProvider(url)).is_connected():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"anvil did not answer at {url} within {seconds} s")


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    """A running anvil node: the one .ci/run started (VOISIN_TEST_ANVIL_URL), or our own."""
    given = os.environ.get("VOISIN_TEST_ANVIL_URL")
    if given:
        _wait_for(given, None)
        yield given
        return
    if not ANVIL_BIN.exists():
        if os.environ.get("CI"):
            pytest.fail(f"anvil is missing at {ANVIL_BIN}: scripts/install must install it")
        pytest.skip("anvil is not installed (run scripts/install)")
    port = _free_port()
    proc = subprocess.Popen(
        [str(ANVIL_BIN), "--port", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def embedded_chain(tmp_path: Path) -> Iterator[Chain]:
    """A fresh persistent embedded chain in a temporary data dir."""
    chain = open_chain("embedded", tmp_path / "data")
    yield chain
    chain.close()


@pytest.fixture
def anvil_chain(anvil_url: str) -> Iterator[Chain]:
    """The shared anvil node, with the operator as anvil's first funded account."""
    chain = open_chain(anvil_url, operator_key=ANVIL_KEY)
    yield chain
    chain.close()
