"""The speedups put eth-hash's C Keccak backend under the whole process when installed, and
only then; a backend the user names, or the switch, keeps eth-hash's own choice."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
from eth_hash.backends.pycryptodome import backend as pycryptodome
from eth_hash.backends.pysha3 import backend as pysha3

# Hashes once before importing ledger (as an import of web3 or eth-account may), names the
# backend after the import, installs the speedups, hashes again and names the backend.
PROBE = """
import json
from eth_hash.auto import keccak
from eth_utils import keccak as utils_keccak

def backend():
    return type(keccak.hasher.__self__).__name__

before = utils_keccak(b"")
import ledger, ledger.chain.embedded
imported = backend()
from ledger.chain import pyevm_speedups
pyevm_speedups.install()
after = utils_keccak(b"")
assert before == after, (before, after)
print(json.dumps([imported, backend(), after.hex()]))
"""
EMPTY_KECCAK = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


def _backends(**env_vars: str) -> tuple[str, str, str]:
    kept_out = ("ETH_HASH_BACKEND", "VOISIN_PYEVM_SPEEDUPS")
    env = {k: v for k, v in os.environ.items() if k not in kept_out}
    env.update(env_vars)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout
    imported, installed, digest = json.loads(out)
    return imported, installed, digest


def test_install_puts_the_c_backend_under_every_later_hash_and_importing_does_not() -> None:
    imported, installed, digest = _backends()
    assert imported == "CryptodomeBackend"
    assert installed == "PySha3Backend"
    assert digest == EMPTY_KECCAK


@pytest.mark.parametrize("named", ["pycryptodome", "pysha3"])
def test_a_backend_the_user_names_is_kept(named: str) -> None:
    *_, installed, digest = _backends(ETH_HASH_BACKEND=named)
    assert installed == {"pycryptodome": "CryptodomeBackend", "pysha3": "PySha3Backend"}[named]
    assert digest == EMPTY_KECCAK


def test_the_switch_keeps_eth_hashs_own_choice() -> None:
    *_, installed, digest = _backends(VOISIN_PYEVM_SPEEDUPS="0")
    assert installed == "CryptodomeBackend"
    assert digest == EMPTY_KECCAK


def test_both_backends_give_the_same_hashes() -> None:
    rng = random.Random(3)
    for length in [0, 1, 31, 32, 33, 55, 56, 64, 135, 136, 137, 1000, *range(0, 300, 7)]:
        data = rng.randbytes(length)
        assert pysha3.keccak256(data) == pycryptodome.keccak256(data)
        assert pysha3.preimage(data).digest() == pycryptodome.preimage(data).digest()
