"""Private speedups of py-evm, py-trie and eth-hash for the embedded chain: one switch, one
:func:`install`.

py-evm interprets the EVM and walks its tries in pure Python; on the embedded chain that is
most of a simulated day's time. The modules here shorten the hottest paths and change no
result (each has a differential test against the code it stands in for):

- :mod:`.evm_fast`: the common opcodes in one call each, and a leaner ecrecover precompile;
- :mod:`.trie_batch`: a contract's storage writes applied to its trie in one pass;
- :mod:`.trie_cache`: decoded trie nodes by hash, a leaner node encoder, nibble caches;
- :mod:`.keccak`: eth-hash's C Keccak backend (safe-pysha3);
- :mod:`.vm`: the VM subclass and chain class that carry the first two.

**Installed explicitly, never by an import.** Importing this package (or ``ledger``) changes
nothing in any library. The embedded chain calls :func:`install` when it opens
(:class:`ledger.chain.embedded.EmbeddedChain`, :func:`ledger.chain.embedded.in_memory_chain`)
and then runs on :func:`chain_class` of eth-tester's chain class; :func:`ledger.chain.open_chain`
calls it for every backend, so that a process reaching its chain over JSON-RPC (the API beside
its node process) hashes with the C Keccak too. :func:`status` tells whether
the speedups are installed in this process, and if not, why.

**What is scoped and what is process-wide.** The opcodes, the ecrecover precompile and the
storage batching live on subclasses (:func:`ledger.chain.pyevm_speedups.vm.fast_vm` of
``PragueVM``): only chains built from :func:`chain_class` run them; ``PragueVM`` and every other
chain in the process keep py-evm's classes. Two cannot be scoped, so :func:`install` changes
them for the whole process:

- py-trie's ``HexaryTrie`` (:mod:`.trie_cache`): py-evm builds tries in many places (account
  and storage tries, transaction and receipt tries, the chain database) from the class itself,
  with no setting a subclass could go through;
- eth-hash's ``keccak`` (:mod:`.keccak`): one shared object that every library imported by
  name.

Both give the same bytes as the code they replace (the tests compare roots, proofs, encodings
and hashes), so any other user of py-trie or eth-hash in the process gets the same answers,
sooner.

**The version gate.** The speedups reach into the internals of the libraries they patch or
subclass, so :func:`install` installs them only when the exact versions they were tested
with are installed (:data:`TESTED_VERSIONS`, the versions ``pyproject.toml`` pins). Otherwise
it changes nothing, the embedded chain runs on py-evm's own paths (the same results, slower),
and one warning in the log (logger ``ledger.chain.pyevm_speedups``) says which version differs.

**The switch.** ``VOISIN_PYEVM_SPEEDUPS=0`` (or ``false``, ``no``, ``off``) in the environment
turns all of them off; unset, or any other value, leaves them on. It is read once per process,
by the first :func:`install` (that is, when the first embedded chain opens); the embedded
chain's node process inherits it from its parent.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from types import MappingProxyType
from typing import Final, TypeVar

__all__ = [
    "SWITCH",
    "TESTED_VERSIONS",
    "Status",
    "chain_class",
    "install",
    "status",
    "version_mismatches",
]

log = logging.getLogger(__name__)

#: The environment variable that turns the speedups off (see the module docstring).
SWITCH: Final = "VOISIN_PYEVM_SPEEDUPS"
_OFF: Final = frozenset({"0", "false", "no", "off"})

#: The distributions whose internals the speedups depend on, at the versions tested (and
#: pinned in pyproject.toml): py-evm's computation, state and storage classes (evm_fast, vm,
#: trie_batch); eth-tester's chain class (vm); py-trie's HexaryTrie (trie_cache, trie_batch);
#: pyrlp's encoding, which trie_cache.encode_node reproduces; eth-hash's shared keccak object.
TESTED_VERSIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "py-evm": "0.12.1b1",
        "eth-tester": "0.14.0b1",
        "trie": "4.0.0",
        "rlp": "5.0.0",
        "eth-hash": "0.8.0",
    }
)


@dataclass(frozen=True)
class Status:
    """Whether the speedups are installed in this process; ``reason`` says why not, or what
    ``parts`` were installed."""

    installed: bool
    reason: str
    parts: tuple[str, ...] = ()


_NOT_YET: Final = Status(False, "not installed yet: no chain has opened in this process")
_status: Status | None = None
_lock = threading.Lock()

ChainT = TypeVar("ChainT", bound=type)


def _installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None if it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def version_mismatches(
    installed_version: Callable[[str], str | None] | None = None,
) -> list[str]:
    """One sentence per distribution of :data:`TESTED_VERSIONS` installed at another version
    (or missing); empty when every one is at the version tested."""
    lookup = installed_version or _installed_version
    found = []
    for distribution, tested in TESTED_VERSIONS.items():
        version = lookup(distribution)
        if version != tested:
            have = "is not installed" if version is None else f"is {version}"
            found.append(f"{distribution} {have}, the speedups are tested with {tested}")
    return found


def install() -> Status:
    """Install the speedups, once per process, if the switch and the version gate allow it.

    Idempotent and thread-safe: the first call decides and every later call returns the same
    :class:`Status`. When they are not installed, the first call logs why: a warning for a
    version mismatch, an info line for the switch.
    """
    global _status
    with _lock:
        if _status is None:
            _status = _decide_and_install()
        return _status


def _decide_and_install() -> Status:
    switch = os.environ.get(SWITCH)
    if switch is not None and switch.strip().lower() in _OFF:
        reason = f"turned off by {SWITCH}={switch}"
        log.info("py-evm speedups %s; the embedded chain runs on py-evm's own paths", reason)
        return Status(False, reason)
    mismatches = version_mismatches(_installed_version)
    if mismatches:
        reason = "; ".join(mismatches)
        log.warning(
            "py-evm speedups not installed (%s): the embedded chain runs on py-evm's own "
            "paths, with the same results, more slowly",
            reason,
        )
        return Status(False, reason)
    # Imported only now: with another version of a library, importing them could fail.
    from ledger.chain.pyevm_speedups import keccak, trie_cache

    trie_cache.patch()
    parts = ["opcodes", "ecrecover", "storage batch", "trie cache"]
    if keccak.use_c_backend():
        parts.append("keccak")
    return Status(True, "installed: " + ", ".join(parts), tuple(parts))


def status() -> Status:
    """Whether :func:`install` has installed the speedups in this process, and why not."""
    return _status or _NOT_YET


def chain_class(base: ChainT) -> ChainT:
    """``base`` (a py-evm chain class) running the fast VM, if the speedups are installed;
    ``base`` itself otherwise."""
    if not status().installed:
        return base
    from ledger.chain.pyevm_speedups.vm import fast_chain_class

    return fast_chain_class(base)
