"""A local anvil node that Voisin starts itself: the ``anvil`` backend of ``open_chain``.

:func:`start_anvil` runs the anvil binary that ``scripts/install`` puts in ``node_modules``
(:data:`ANVIL_BIN`) on a free loopback port and returns once it answers; :class:`AnvilProcess`
stops it (SIGTERM, then SIGKILL). The node runs in a session of its own, so a Ctrl-C in the
terminal reaches the parent only, which then stops the node as the chain closes; if the
parent dies without closing it (even by SIGKILL), the kernel sends the node SIGTERM
(``PR_SET_PDEATHSIG``): no anvil outlives the process that started it.

:func:`open_anvil` is what ``open_chain("anvil", data_dir)`` runs. The data directory holds:

- ``operator.key``: the operator, as for the embedded chain (given, or created on first use),
  funded on every start with ``anvil_setBalance``;
- ``anvil/state.json``: anvil's state, loaded when the node starts and written when it stops
  (anvil's ``--state``), with the blocks, receipts and logs the indexer and the audit read.
  It is written only at a clean stop: a SIGKILL of anvil loses what it holds since it started.
  A data directory that must survive a ``kill -9`` belongs on the embedded chain or a real node.

The node runs with the embedded chain's chain id (:data:`CHAIN_ID`) and hardfork
(:data:`HARDFORK`) and mines transactions in the order they arrive: the same operator deploys
the contract at the same address, meters sign the same digests, orders get the same ids and
every transaction uses the same gas as on the embedded chain, so a simulation reports the same
figures on both.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from eth_account.signers.local import LocalAccount

from ledger.chain import children
from ledger.chain.operator import OPERATOR_GENESIS_WEI, load_or_create_operator
from ledger.chain.rpc import NodeLink, RpcError
from ledger.errors import ChainUnavailable, ConfigError

#: The anvil binary of the npm package ``@foundry-rs/anvil-linux-amd64`` (``scripts/install``).
ANVIL_BIN: Final = (
    Path(__file__).resolve().parents[2]
    / "node_modules"
    / "@foundry-rs"
    / "anvil-linux-amd64"
    / "bin"
    / "anvil"
)
#: The embedded chain's chain id (eth-tester's; a test holds them equal).
CHAIN_ID: Final = 131277322940537
#: The embedded chain's hardfork (py-evm's PragueVM; a test holds them equal).
HARDFORK: Final = "prague"
#: Where an anvil run keeps its state in a data directory.
STATE_FILE: Final = Path("anvil") / "state.json"
#: How long :func:`start_anvil` waits for the node to answer.
START_TIMEOUT_S: Final = 30.0
#: How long :meth:`AnvilProcess.stop` lets anvil write its state before killing it.
STOP_TIMEOUT_S: Final = 60.0
#: Ports tried when another process takes the free port first.
_PORT_ATTEMPTS: Final = 5


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now: see :func:`start_anvil`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AnvilProcess:
    """A running anvil: its URL and process; :meth:`stop` ends it (idempotent)."""

    url: str
    process: subprocess.Popen[bytes]
    #: anvil's ``--cache-path`` when :func:`start_anvil` made it: removed once anvil stops.
    cache: Path | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (anvil writes its ``--state`` file, if any, and exits), then SIGKILL if it
        is still running after ``timeout`` seconds."""
        if self._stopped:
            return
        self._stopped = True
        children.stop(self.process, timeout)
        if self.cache is not None:
            shutil.rmtree(self.cache, ignore_errors=True)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent thread dies (kept across exec)."""
    children.signal_when_parent_dies(signal.SIGTERM)


def start_anvil(
    *,
    state: Path | None = None,
    args: Sequence[str] = (),
    binary: Path = ANVIL_BIN,
    timeout: float = START_TIMEOUT_S,
    chain_id: int | None = CHAIN_ID,
    hardfork: str | None = HARDFORK,
) -> AnvilProcess:
    """Start anvil on a free loopback port with the embedded chain's chain id and hardfork;
    return once it answers.

    ``state`` is anvil's ``--state`` file (loaded if it exists, written at stop); ``args`` are
    more anvil options; ``chain_id`` or ``hardfork`` ``None`` leaves anvil's own. Raises
    :class:`ConfigError` if the binary is missing and :class:`ChainUnavailable` if anvil does
    not come up (its last line of output in the message).
    """
    if not binary.is_file():
        raise ConfigError(
            f"anvil is not installed at {binary}: run scripts/install (npm ci installs "
            "@foundry-rs/anvil-linux-amd64), or use --chain embedded"
        )
    # First come, first mined: transactions sent without waiting (transact_many) are mined in
    # the order they were sent, as on the embedded chain, whatever their fees.
    options = ["--order", "fifo", "--silent"]
    # anvil writes the states it evicts from memory under its cache path, by default a new
    # folder in ~/.foundry/anvil/tmp per run that it never removes (tens of gigabytes after a
    # few long runs). Beside the state file they live and go with the data directory;
    # otherwise in a folder of their own that stop() removes.
    cache: Path | None = None
    if state is not None:
        options += ["--cache-path", str(state.parent / "cache")]
    else:
        cache = Path(tempfile.mkdtemp(prefix="voisin-anvil-"))
        options += ["--cache-path", str(cache)]
    if chain_id is not None:
        options += ["--chain-id", str(chain_id)]
    if hardfork is not None:
        options += ["--hardfork", hardfork]
    if state is not None:
        state.parent.mkdir(parents=True, exist_ok=True)
        options += ["--state", str(state)]
    problem = ""
    for _ in range(_PORT_ATTEMPTS):
        port = free_port()
        process = subprocess.Popen(
            [str(binary), "--host", "127.0.0.1", "--port", str(port), *options, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        node = AnvilProcess(f"http://127.0.0.1:{port}", process)
        try:
            if _answers(node, timeout):
                if process.stderr is not None:
                    process.stderr.close()
                node.cache = cache
                return node
        except BaseException:
            node.stop(timeout=5)
            if cache is not None:
                shutil.rmtree(cache, ignore_errors=True)
            raise
        node.stop(timeout=5)
        err = process.stderr.read().decode(errors="replace") if process.stderr else ""
        if process.stderr is not None:
            process.stderr.close()
        lines = err.strip().splitlines()
        problem = lines[-1] if lines else f"exit code {process.returncode}"
        if "address already in use" not in problem.lower():
            break
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)
    raise ChainUnavailable(f"anvil did not start: {problem}")


def _answers(node: AnvilProcess, timeout: float) -> bool:
    """Wait until ``node`` answers a request (True) or its process exits (False);
    :class:`ChainUnavailable` after ``timeout`` seconds."""
    link = NodeLink(node.url, timeout=5)
    deadline = time.monotonic() + timeout
    try:
        while node.alive:
            try:
                link.request("eth_chainId", [])
                return True
            except (ChainUnavailable, RpcError):
                if time.monotonic() > deadline:
                    raise ChainUnavailable(
                        f"anvil did not answer at {node.url} within {timeout:.0f} s"
                    ) from None
                time.sleep(0.02)
        return False
    finally:
        link.close()


def fund_operator(link: NodeLink, operator: str, wei: int = OPERATOR_GENESIS_WEI) -> None:
    """Give ``operator`` at least ``wei`` of gas money (``anvil_setBalance``)."""
    balance = int(link.request("eth_getBalance", [operator, "latest"]), 16)
    if balance < wei:
        link.request("anvil_setBalance", [operator, hex(wei)])


@dataclass
class OpenedAnvil:
    """An anvil started for a data directory, its operator funded."""

    node: AnvilProcess
    operator: LocalAccount


def open_anvil(data_dir: Path, operator_key: str | None = None) -> OpenedAnvil:
    """Start anvil on ``data_dir``'s state (see the module docstring) and fund its operator.

    Refuses a data directory that holds an embedded chain (``chain/``): the two would hold
    different ledgers under one deployment record.
    """
    if (data_dir / "chain").is_dir():
        raise ConfigError(
            f"{data_dir} holds an embedded chain: open it with --chain embedded, or give "
            "anvil a data directory of its own"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    operator = load_or_create_operator(data_dir, operator_key)
    node = start_anvil(state=data_dir / STATE_FILE)
    try:
        link = NodeLink(node.url)
        fund_operator(link, operator.address)
        link.close()
    except BaseException:
        node.stop()
        raise
    return OpenedAnvil(node, operator)
