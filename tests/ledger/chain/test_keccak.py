"""ledger puts eth-hash's C Keccak backend under the whole process, unless the user chose one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Hashes once before importing ledger (as an import of web3 or eth-account may), then again
# after, and names the backend eth-hash uses from then on.
PROBE = """
from eth_hash.auto import keccak
from eth_utils import keccak as utils_keccak
before = utils_keccak(b"")
import ledger
after = utils_keccak(b"")
assert before == after, (before, after)
print(type(keccak.hasher.__self__).__name__, after.hex())
"""
EMPTY_KECCAK = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


def _backend(env_backend: str | None) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ETH_HASH_BACKEND"}
    if env_backend is not None:
        env["ETH_HASH_BACKEND"] = env_backend
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], out[1]


def test_ledger_puts_the_c_backend_under_every_later_hash() -> None:
    backend, digest = _backend(None)
    assert backend == "PySha3Backend"
    assert digest == EMPTY_KECCAK


@pytest.mark.parametrize("named", ["pycryptodome", "pysha3"])
def test_a_backend_the_user_names_is_kept(named: str) -> None:
    backend, digest = _backend(named)
    assert backend == {"pycryptodome": "CryptodomeBackend", "pysha3": "PySha3Backend"}[named]
    assert digest == EMPTY_KECCAK
