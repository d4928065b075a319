"""Idempotent deployment of the Voisin contract, and the record of its deployments.

The deployed address is recorded in ``<data_dir>/deployments.json``, keyed by chain id, with the
deployment block and the hash of the bytecode deployed. Opening a ledger reuses the recorded
deployment; it deploys only when none is recorded for that chain. A record whose contract has
no code on the chain (a node restarted without its state) is an error, not a silent redeploy:
households, credits and money would otherwise vanish without a word.

A chain's entry is its **current** deployment, the one a ledger opens. When the contract is
upgraded by a migration (:mod:`ledger.contract.upgrade`), the entry becomes the new deployment,
with ``migrated_from``, ``snapshot_block``, ``snapshot_digest`` and ``carried_block``, and the
deployments it replaced are kept, oldest first, in its ``history``: each with the block it was
frozen at, the digest of its state there and where its database mirror was archived. An entry
without these fields (a single deployment, as every file was before the first upgrade) reads
as before.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hexbytes import HexBytes
from web3 import Web3

from ledger.chain.backends import Chain
from ledger.contract.client import VoisinClient
from ledger.contract.compile import Artifact, load_artifact
from ledger.errors import DeploymentError, TransactionFailed
from ledger.files import write_durably
from ledger.types import Tariffs

CONTRACT_NAME = "Voisin"
DEPLOYMENTS_FILE = "deployments.json"
ZERO_ADDRESS = "0x" + "00" * 20
#: Default tariffs (micro-euro per kWh): a French household's feed-in and retail prices, and a
#: local-grid fee for the low-voltage network.
DEFAULT_TARIFFS = Tariffs(
    feed_in_ueur_per_kWh=40_000, retail_ueur_per_kWh=250_000, grid_fee_ueur_per_kWh=30_000
)


@dataclass(frozen=True, slots=True)
class Predecessor:
    """The deployment a new one continues: the contract's constructor argument of the same
    name. All zeros (:data:`NO_PREDECESSOR`) for a first deployment."""

    deployment: str = ZERO_ADDRESS
    snapshot_block: int = 0
    snapshot_digest: str = "0x" + "00" * 32
    last_slot: int = 0

    def as_contract_tuple(self) -> tuple[str, int, bytes, int]:
        return (
            Web3.to_checksum_address(self.deployment),
            self.snapshot_block,
            bytes.fromhex(self.snapshot_digest.removeprefix("0x")),
            self.last_slot,
        )


NO_PREDECESSOR = Predecessor()


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where the contract lives on one chain.

    A deployment that continues another (a contract upgrade) also names it
    (``migrated_from``), the block of its state that was carried over (``snapshot_block``)
    and that state's digest (``snapshot_digest``), and the block from which the carried state
    was complete on this one (``carried_block``); all ``None`` for a first deployment.
    """

    chain_id: int
    address: str
    block_number: int
    tx_hash: str
    bytecode_sha256: str
    deployed_at: str
    migrated_from: str | None = None
    snapshot_block: int | None = None
    snapshot_digest: str | None = None
    carried_block: int | None = None


@dataclass(frozen=True, slots=True)
class FrozenDeployment:
    """A deployment an upgrade replaced: paused at ``frozen_block``, where its state's digest
    is ``snapshot_digest``; its database mirror was archived at ``mirror_archive`` (relative to
    the data dir, or a database URL), and ``superseded_by`` is the deployment that continues it."""

    deployment: Deployment
    frozen_block: int
    snapshot_digest: str
    mirror_archive: str | None
    superseded_by: str

    def as_record(self) -> dict[str, Any]:
        return {
            **asdict(self.deployment),
            "frozen_block": self.frozen_block,
            "snapshot_digest": self.snapshot_digest,
            "mirror_archive": self.mirror_archive,
            "superseded_by": self.superseded_by,
        }


def bytecode_sha256(bytecode: str) -> str:
    return hashlib.sha256(bytes.fromhex(bytecode.removeprefix("0x"))).hexdigest()


def from_this_release(deployment: Deployment, artifact: Artifact | None = None) -> bool:
    """Whether ``deployment`` was deployed from this release's contract (the committed
    artifact's bytecode). A ledger on another release's keeps working; ``voisin
    upgrade-contract`` moves it to this one's."""
    artifact = artifact or load_artifact(CONTRACT_NAME)
    return deployment.bytecode_sha256 == bytecode_sha256(artifact["bytecode"])


def deploy(
    chain: Chain,
    tariffs: Tariffs = DEFAULT_TARIFFS,
    artifact: Artifact | None = None,
    predecessor: Predecessor = NO_PREDECESSOR,
) -> Deployment:
    """Deploy a new Voisin contract with the operator as admin (not recorded).

    ``artifact`` defaults to the committed one; a caller that must deploy the very same
    bytecode several times (the benchmark, across backends) passes the one it read.
    ``predecessor`` names the deployment this one continues (an upgrade,
    :mod:`ledger.contract.upgrade`); the contract emits ``MigratedFrom`` and starts every
    meter after its last slot.
    """
    artifact = artifact or load_artifact(CONTRACT_NAME)
    w3 = chain.w3
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = factory.constructor(
        chain.operator.address,
        tariffs.feed_in_ueur_per_kWh,
        tariffs.retail_ueur_per_kWh,
        tariffs.grid_fee_ueur_per_kWh,
        predecessor.as_contract_tuple(),
    ).build_transaction(
        {
            "from": chain.operator.address,
            "nonce": w3.eth.get_transaction_count(chain.operator.address, "pending"),
            "chainId": chain.chain_id,
        }
    )
    signed = chain.operator.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=300)
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise TransactionFailed(f"deploying {CONTRACT_NAME} failed in tx {tx_hash.hex()}")
    return Deployment(
        chain_id=chain.chain_id,
        address=str(receipt["contractAddress"]),
        block_number=int(receipt["blockNumber"]),
        tx_hash=HexBytes(tx_hash).to_0x_hex(),
        bytecode_sha256=bytecode_sha256(artifact["bytecode"]),
        deployed_at=datetime.now(UTC).isoformat(timespec="seconds"),
        migrated_from=None if predecessor == NO_PREDECESSOR else predecessor.deployment,
        snapshot_block=None if predecessor == NO_PREDECESSOR else predecessor.snapshot_block,
        snapshot_digest=None if predecessor == NO_PREDECESSOR else predecessor.snapshot_digest,
    )


def open_ledger(
    chain: Chain, record_dir: Path | None = None, tariffs: Tariffs = DEFAULT_TARIFFS
) -> tuple[VoisinClient, Deployment]:
    """The client of the recorded deployment on ``chain``, deploying first if none is recorded.

    Without a ``record_dir`` (and no data dir on the chain) a fresh contract is deployed.
    """
    directory = record_dir or chain.data_dir
    artifact = load_artifact(CONTRACT_NAME)
    if directory is None:
        deployment = deploy(chain, tariffs)
        return _client(chain, deployment, artifact["abi"]), deployment
    path = Path(directory) / DEPLOYMENTS_FILE
    records = _read(path)
    entry = records.get(str(chain.chain_id))
    if entry is not None:
        deployment = _deployment(path, entry)
        code = chain.w3.eth.get_code(Web3.to_checksum_address(deployment.address))
        if len(code) == 0:
            raise DeploymentError(
                f"{path} records {CONTRACT_NAME} at {deployment.address} on chain "
                f"{chain.chain_id}, but the chain has no code there (was the node reset?). "
                f"Restore the node's state, or move {path} away to deploy afresh."
            )
    else:
        deployment = deploy(chain, tariffs)
        records[str(chain.chain_id)] = asdict(deployment)
        _write(path, records)
    return _client(chain, deployment, artifact["abi"]), deployment


def recorded_deployments(
    directory: Path, chain_id: int
) -> tuple[Deployment | None, list[FrozenDeployment]]:
    """The current deployment recorded for ``chain_id`` in ``directory`` (None if none) and the
    deployments it replaced, oldest first (empty for a single deployment)."""
    path = Path(directory) / DEPLOYMENTS_FILE
    entry = _read(path).get(str(chain_id))
    if entry is None:
        return None, []
    history = entry.get("history", [])
    if not isinstance(history, list):
        raise DeploymentError(f"{path}: the history of chain {chain_id} must be a list")
    frozen = [
        FrozenDeployment(
            deployment=_deployment(path, item),
            frozen_block=int(item["frozen_block"]),
            snapshot_digest=str(item["snapshot_digest"]),
            mirror_archive=item.get("mirror_archive"),
            superseded_by=str(item["superseded_by"]),
        )
        for item in history
    ]
    return _deployment(path, entry), frozen


def record_upgrade(directory: Path, frozen: FrozenDeployment, current: Deployment) -> None:
    """Record ``current`` as the chain's deployment, continuing ``frozen`` (which must be the
    deployment recorded now), and keep ``frozen`` at the end of the history. Written
    atomically: a crash leaves the old record or the new one."""
    path = Path(directory) / DEPLOYMENTS_FILE
    records = _read(path)
    key = str(current.chain_id)
    entry = records.get(key)
    if entry is None or entry.get("address") != frozen.deployment.address:
        raise DeploymentError(
            f"{path} must record {frozen.deployment.address} as the deployment on chain {key} "
            f"to record its upgrade to {current.address}"
        )
    history = [*entry.get("history", []), frozen.as_record()]
    records[key] = {**asdict(current), "history": history}
    _write(path, records)


_FIELDS = frozenset(Deployment.__dataclass_fields__)


def _deployment(path: Path, entry: dict[str, Any]) -> Deployment:
    """The deployment an entry (or a history item) records; keys it does not know are left."""
    try:
        return Deployment(**{k: v for k, v in entry.items() if k in _FIELDS})
    except TypeError as exc:
        raise DeploymentError(f"{path} holds an incomplete deployment record: {exc}") from exc


def _client(chain: Chain, deployment: Deployment, abi: list[dict[str, Any]]) -> VoisinClient:
    return VoisinClient(chain.w3, deployment.address, abi, estimate_gas=chain.estimates_gas)


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DeploymentError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DeploymentError(f"{path} must hold an object keyed by chain id")
    return data


def _write(path: Path, records: dict[str, Any]) -> None:
    """Write atomically and durably: a crash leaves the old file or the new one, never half."""
    write_durably(path, json.dumps(records, indent=2, sort_keys=True) + "\n")
