"""Idempotent deployment of the Voisin contract.

The deployed address is recorded in ``<data_dir>/deployments.json``, keyed by chain id, with the
deployment block and the hash of the bytecode deployed. Opening a ledger reuses the recorded
deployment; it deploys only when none is recorded for that chain. A record whose contract has
no code on the chain (a node restarted without its state) is an error, not a silent redeploy:
households, credits and money would otherwise vanish without a word.
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
#: Default tariffs (micro-euro per kWh): a French household's feed-in and retail prices, and a
#: local-grid fee for the low-voltage network.
DEFAULT_TARIFFS = Tariffs(
    feed_in_ueur_per_kWh=40_000, retail_ueur_per_kWh=250_000, grid_fee_ueur_per_kWh=30_000
)


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where the contract lives on one chain."""

    chain_id: int
    address: str
    block_number: int
    tx_hash: str
    bytecode_sha256: str
    deployed_at: str


def bytecode_sha256(bytecode: str) -> str:
    return hashlib.sha256(bytes.fromhex(bytecode.removeprefix("0x"))).hexdigest()


def deploy(
    chain: Chain, tariffs: Tariffs = DEFAULT_TARIFFS, artifact: Artifact | None = None
) -> Deployment:
    """Deploy a new Voisin contract with the operator as admin (not recorded).

    ``artifact`` defaults to the committed one; a caller that must deploy the very same
    bytecode several times (the benchmark, across backends) passes the one it read.
    """
    artifact = artifact or load_artifact(CONTRACT_NAME)
    w3 = chain.w3
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = factory.constructor(
        chain.operator.address,
        tariffs.feed_in_ueur_per_kWh,
        tariffs.retail_ueur_per_kWh,
        tariffs.grid_fee_ueur_per_kWh,
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
        deployment = Deployment(**entry)
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
