"""The operator's audit in a child process, so that the server's memory stays flat.

The audit reads the chain's whole history and every table it checks (``ledger.audit.inputs``):
its working set grows with every settled slot. Run inside the server (the keeper runs it after
every settlement, ``GET /audit/report`` on every call), the C allocator keeps the pages of the
largest run so far, and the server's resident memory rose with its history (about 0.17 MiB a
slot with 20 households) although nothing leaked. Run in a child, that memory goes back to the
system when the child exits; what a run costs is reported (``peak_rss_kib``) and logged.

The child reaches the chain over JSON-RPC, so this needs a chain with a URL: the embedded chain
in its node process (the default of ``voisin serve``), anvil or any node. An embedded chain
inside the server's own process, or the in-memory one, has none: the audit then runs in the
server as before (:func:`chain_access` answers ``None``).

The protocol keeps the view consistent and the chain lock short:

1. the child starts, imports what it needs (a second or so) and says ``ready``, before the
   lock is taken;
2. under the chain lock the server mirrors the new events, then says ``go``; the child reads
   the chain and the database (``collect``) and says ``collected``; the server lets the lock
   go, exactly as it did when it collected itself;
3. the child checks and writes the report as one JSON line, then exits.

The request (node URL and headers, database URL) goes over the child's stdin, never its
command line, which other users of the machine can read.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ledger.audit.inputs import AuditInputs
    from ledger.audit.report import AuditReport
    from ledger.contract.client import VoisinClient

from api.child_lines import ChildError, decode, read_answer, send
from ledger.audit.feeder import DEFAULT_NETWORK

log = logging.getLogger("voisin.audit")

T = TypeVar("T")

__all__ = ["AuditProcessError", "AuditRun", "ChainAccess", "main", "run_in_process", "run_isolated"]

#: Seconds the child may take to start and import (a loaded machine is slow).
READY_TIMEOUT_S = 120.0

READY = "ready"
GO = "go"
COLLECTED = "collected"


class AuditProcessError(ChildError):
    """The audit's child process failed: it could not start, or it stopped with an error."""


class OnChain(Protocol):
    """Runs ``action`` with the chain lock held (``Services.on_chain``)."""

    def __call__(self, action: Callable[[], T]) -> T: ...


@dataclass(frozen=True)
class ChainAccess:
    """How a child process reaches the chain the server uses."""

    url: str
    headers: dict[str, str]
    #: The account calls are made from (the embedded node wants a funded one): the operator's.
    account: str


@dataclass(frozen=True)
class AuditRun:
    """An audit's answer: the report (``AuditReport.as_dict()``, through JSON as the child
    sends it) and the view it covered; ``peak_rss_kib`` is the child's peak resident memory
    (``None`` when the audit ran in the server)."""

    report: dict[str, Any]
    head_block: int
    mirror_block: int | None
    last_settled_slot: int | None
    peak_rss_kib: int | None
    seconds: float


def run_in_process(
    *,
    client: VoisinClient,
    engine: Engine,
    deployment_block: int,
    on_chain: OnChain,
    mirror: Callable[[], object],
    from_slot: int | None = None,
    to_slot: int | None = None,
    feeder: bool = False,
    network: str = DEFAULT_NETWORK,
) -> AuditRun:
    """The same audit in this process (a chain without a URL): collected under the chain
    lock, checked without it."""
    from ledger.audit import audit_inputs
    from ledger.audit.inputs import collect

    begun = time.monotonic()

    def mirror_and_collect() -> AuditInputs:
        # Mirroring first only appends the events after the cursor: rows already in the
        # database are audited as they are, and a mirror that lags is not reported as such
        # merely because the outbox has not indexed its last transaction yet.
        mirror()
        return collect(client, engine, deployment_block)

    inputs = on_chain(mirror_and_collect)
    report = audit_inputs(
        inputs, from_slot=from_slot, to_slot=to_slot, feeder=feeder, network=network
    )
    answer = _answer(report, inputs)
    return AuditRun(
        report=json.loads(json.dumps(answer["report"], default=str)),
        head_block=answer["head_block"],
        mirror_block=answer["mirror_block"],
        last_settled_slot=answer["last_settled_slot"],
        peak_rss_kib=None,
        seconds=time.monotonic() - begun,
    )


def _answer(report: AuditReport, inputs: AuditInputs) -> dict[str, Any]:
    settled = [o.slot for o in inputs.db_outcomes if o.status == "settled"]
    return {
        "report": report.as_dict(),
        "head_block": inputs.head_block,
        "mirror_block": inputs.mirror_block,
        "last_settled_slot": max(settled) if settled else None,
    }


def run_isolated(
    *,
    access: ChainAccess,
    database_url: str,
    contract: str,
    abi: list[dict[str, Any]],
    deployment_block: int,
    on_chain: OnChain,
    mirror: Callable[[], object],
    from_slot: int | None = None,
    to_slot: int | None = None,
    feeder: bool = False,
    network: str = DEFAULT_NETWORK,
    started: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> AuditRun:
    """Run the audit in a child process (see the module); raises :class:`AuditProcessError`.

    ``on_chain`` runs a callable with the chain lock held (the server's gate); ``mirror``
    brings the database up to the chain under it. ``started`` is told the child's process, so
    that a server shutting down can kill it.
    """
    begun = time.monotonic()
    request = {
        "chain_url": access.url,
        "chain_headers": access.headers,
        "account": access.account,
        "database_url": database_url,
        "contract": contract,
        "abi": abi,
        "deployment_block": deployment_block,
        "from_slot": from_slot,
        "to_slot": to_slot,
        "feeder": feeder,
        "network": network,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.audit_process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,  # the child's log lines go where the server's go
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if started is not None:
        started(proc)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        send(proc.stdin, request)
        _expect(proc, READY, READY_TIMEOUT_S)

        def collect_in_child() -> None:
            mirror()
            send(proc.stdin, GO)  # type: ignore[arg-type]
            _expect(proc, COLLECTED, None)

        on_chain(collect_in_child)
        line = proc.stdout.readline()
        proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    answer = decode(line, "the audit process", AuditProcessError)
    if "error" in answer or proc.returncode != 0:
        raise AuditProcessError(
            str(answer.get("error") or f"the audit process exited with {proc.returncode}")
        )
    result = AuditRun(
        report=answer["report"],
        head_block=int(answer["head_block"]),
        mirror_block=answer["mirror_block"],
        last_settled_slot=answer["last_settled_slot"],
        peak_rss_kib=int(answer["peak_rss_kib"]),
        seconds=time.monotonic() - begun,
    )
    log.info(
        "audit ran in its own process: %.1f s, peak %d MiB, %d finding(s)",
        result.seconds,
        (result.peak_rss_kib or 0) // 1024,
        len(result.report.get("findings", ())),
    )
    return result


def _expect(proc: subprocess.Popen[bytes], word: str, timeout_s: float | None) -> None:
    """Wait for the child's ``word`` line; an error line or the child's end raises."""
    answer = read_answer(proc, "the audit process", timeout_s, AuditProcessError)
    if answer.get("say") != word:
        raise AuditProcessError(str(answer.get("error") or f"the audit process answered {answer}"))


# ───────────────────────────── The child ─────────────────────────────


def main() -> int:
    """The child: read the request, say ready, wait for go, collect, check, answer."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        request = json.loads(stdin.readline())
        from web3 import HTTPProvider, Web3

        from ledger.audit import audit_inputs
        from ledger.audit.inputs import collect
        from ledger.chain.rpc import LoopbackProvider, NodeLink, is_loopback
        from ledger.contract.client import VoisinClient
        from ledger.mirror.engine import make_engine

        url = request["chain_url"]
        headers = request["chain_headers"]
        provider: Any = (
            LoopbackProvider(NodeLink(url, headers=headers))
            if is_loopback(url)
            else HTTPProvider(url, request_kwargs={"timeout": 120, "headers": headers})
        )
        w3 = Web3(provider)
        w3.eth.default_account = request["account"]
        client = VoisinClient(w3, request["contract"], request["abi"])
        engine = make_engine(request["database_url"], create=False)
        send(stdout, {"say": READY})
        if json.loads(stdin.readline()) != GO:
            return 2
        inputs = collect(client, engine, int(request["deployment_block"]))
        send(stdout, {"say": COLLECTED})
        report = audit_inputs(
            inputs,
            from_slot=request["from_slot"],
            to_slot=request["to_slot"],
            feeder=bool(request["feeder"]),
            network=str(request.get("network") or DEFAULT_NETWORK),
        )
        answer = _answer(report, inputs)
        answer["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        send(stdout, answer)
        return 0
    except BrokenPipeError:  # the server that asked died (killed): nobody is left to answer
        return 1
    except Exception as exc:
        send(stdout, {"error": f"{type(exc).__name__}: {exc}"})
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
