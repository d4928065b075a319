"""The py-evm speedups are installed only by an opened embedded chain, only at the versions
tested, never with the switch off, and once per process.

What each process-wide question needs a fresh interpreter for (an import that must change
nothing, the switch, a version mismatch) runs in a child Python that prints what it saw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ledger.chain import pyevm_speedups

ROOT = Path(__file__).resolve().parents[3]

# Everything the speedups could change in py-evm, py-trie, eth-hash and eth-tester, as a
# comparable value. keccak is hashed with first, so that eth-hash's own lazy choice of a
# backend on its first call is not mistaken for a change.
SNAPSHOT = """
import eth_hash.auto
import trie.hexary, trie.utils.nibbles, trie.utils.nodes
from eth.db.account import AccountDB
from eth.db.storage import AccountStorageDB, StorageLookup
from eth.vm.forks.prague import PragueVM
from eth_tester.backends.pyevm import main as tester_main

eth_hash.auto.keccak(b"")

def snapshot():
    state = PragueVM.get_state_class()
    computation = state.computation_class
    return {
        "keccak": (eth_hash.auto.keccak.hasher, eth_hash.auto.keccak.preimage),
        "HexaryTrie": dict(vars(trie.hexary.HexaryTrie)),
        "trie.hexary": dict(vars(trie.hexary)),
        "trie.nibbles": dict(vars(trie.utils.nibbles)),
        "trie.nodes": dict(vars(trie.utils.nodes)),
        "StorageLookup": dict(vars(StorageLookup)),
        "AccountStorageDB": dict(vars(AccountStorageDB)),
        "AccountDB": dict(vars(AccountDB)),
        "PragueVM": (dict(vars(PragueVM)), state, dict(vars(state)), computation),
        "opcodes": dict(computation.opcodes),
        "precompiles": dict(computation.get_precompiles()),
        "eth_tester": dict(vars(tester_main)),
    }

def changed(before, after):
    return sorted(k for k in before if before[k] != after[k])

before = snapshot()
"""


def _child(body: str, **env_vars: str) -> Any:
    """Run SNAPSHOT then ``body`` in a fresh interpreter; ``body`` prints one JSON value."""
    env = {k: v for k, v in os.environ.items() if k != pyevm_speedups.SWITCH}
    env.update(env_vars)
    done = subprocess.run(
        [sys.executable, "-c", SNAPSHOT + textwrap.dedent(body)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_every_ledger_module_patches_nothing() -> None:
    seen = _child(
        """
        import importlib, json, pkgutil
        import ledger
        for name in ledger.__all__:
            getattr(ledger, name)
        for module in pkgutil.walk_packages(ledger.__path__, "ledger."):
            importlib.import_module(module.name)
        from ledger.chain import pyevm_speedups
        print(json.dumps([changed(before, snapshot()), pyevm_speedups.status().installed]))
        """
    )
    assert seen == [[], False]


def test_an_opened_chain_installs_them_and_runs_the_fast_vm() -> None:
    seen = _child(
        """
        import json
        from ledger.chain import pyevm_speedups
        from ledger.chain.backends import open_chain
        with open_chain("memory") as chain:
            backend = chain.w3.provider.ethereum_tester.backend
            vm = type(backend.chain.get_vm())
        status = pyevm_speedups.status()
        print(json.dumps([changed(before, snapshot()), status.installed, list(status.parts),
                          vm.__name__, vm.__mro__[1].__name__]))
        """
    )
    changed, installed, parts, vm, base = seen
    # Process-wide: py-trie's HexaryTrie and its helpers, and eth-hash's backend; PragueVM,
    # its table and py-evm's storage classes are untouched (the fast VM subclasses them).
    assert changed == ["HexaryTrie", "keccak", "trie.hexary", "trie.nibbles", "trie.nodes"]
    assert installed is True
    assert parts == ["opcodes", "ecrecover", "storage batch", "trie cache", "keccak"]
    assert (vm, base) == ("FastPragueVM", "PragueVM")


@pytest.mark.parametrize("value", ["0", "off"])
def test_with_the_switch_off_an_embedded_chain_installs_none_and_still_works(
    value: str, tmp_path: Path
) -> None:
    seen = _child(
        f"""
        import json, logging
        from pathlib import Path
        from eth_account import Account
        from ledger.chain import pyevm_speedups
        from ledger.chain.backends import open_chain
        from ledger.contract.deploy import open_ledger

        records = []
        handler = logging.Handler()
        handler.emit = records.append
        logging.getLogger("ledger.chain.pyevm_speedups").addHandler(handler)
        logging.getLogger("ledger.chain.pyevm_speedups").setLevel(logging.INFO)
        with open_chain("embedded", Path({str(tmp_path)!r})) as chain:
            client, deployment = open_ledger(chain)
            household = Account.create().address
            chain.fund(household, 10**15)
            works = [chain.w3.eth.get_balance(household), client.tariffs() is not None]
            vm = type(chain.w3.provider.ethereum_tester.backend.chain.get_vm()).__name__
        status = pyevm_speedups.status()
        print(json.dumps([changed(before, snapshot()), status.installed, status.reason, vm,
                          works, [r.getMessage() for r in records]]))
        """,
        VOISIN_PYEVM_SPEEDUPS=value,
    )
    changed, installed, reason, vm, works, messages = seen
    assert changed == []
    assert installed is False
    assert reason == f"turned off by VOISIN_PYEVM_SPEEDUPS={value}"
    assert vm == "PragueVM"
    assert works == [10**15, True]
    assert len(messages) == 1 and "turned off" in messages[0]


def test_a_version_mismatch_installs_nothing_and_warns_once() -> None:
    seen = _child(
        """
        import json, logging
        from ledger.chain import pyevm_speedups
        from ledger.chain.backends import open_chain

        real = pyevm_speedups._installed_version
        pyevm_speedups._installed_version = lambda d: "9.9.9" if d == "trie" else real(d)
        records = []
        handler = logging.Handler()
        handler.emit = records.append
        logging.getLogger("ledger.chain.pyevm_speedups").addHandler(handler)
        balances = []
        for _ in range(3):
            with open_chain("memory") as chain:
                chain.fund("0x" + "11" * 20, 5)
                balances.append(chain.w3.eth.get_balance("0x" + "11" * 20))
                vm = type(chain.w3.provider.ethereum_tester.backend.chain.get_vm()).__name__
        status = pyevm_speedups.install()
        print(json.dumps([changed(before, snapshot()), status.installed, status.reason, vm,
                          balances, [(r.levelname, r.getMessage()) for r in records]]))
        """
    )
    changed, installed, reason, vm, balances, records = seen
    assert changed == []
    assert installed is False
    assert reason == "trie is 9.9.9, the speedups are tested with 4.0.0"
    assert vm == "PragueVM"
    assert balances == [5, 5, 5]
    assert len(records) == 1
    level, message = records[0]
    assert level == "WARNING" and "trie is 9.9.9" in message


def test_version_mismatches_names_each_library_that_differs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tested = dict(pyevm_speedups.TESTED_VERSIONS)
    assert pyevm_speedups.version_mismatches(tested.get) == []
    other = {**tested, "py-evm": "0.13.0", "rlp": None}
    assert pyevm_speedups.version_mismatches(other.get) == [
        "py-evm is 0.13.0, the speedups are tested with 0.12.1b1",
        "rlp is not installed, the speedups are tested with 5.0.0",
    ]
    # Without an argument, the versions installed here (the pinned ones) pass the gate.
    assert pyevm_speedups.version_mismatches() == []


def test_install_is_idempotent() -> None:
    import trie.hexary
    from eth_hash.auto import keccak

    first = pyevm_speedups.install()
    patched = (dict(vars(trie.hexary.HexaryTrie)), keccak.hasher)
    again = pyevm_speedups.install()
    assert again is first
    assert pyevm_speedups.status() is first
    assert (dict(vars(trie.hexary.HexaryTrie)), keccak.hasher) == patched


def test_the_versions_tested_are_the_versions_pinned() -> None:
    pins: dict[str, str] = {}
    for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]:
        name, _, version = requirement.partition("==")
        if version:
            pins[name.split("[")[0].strip().lower()] = version.strip()
    for distribution, tested in pyevm_speedups.TESTED_VERSIONS.items():
        assert pins.get(distribution) == tested, distribution
