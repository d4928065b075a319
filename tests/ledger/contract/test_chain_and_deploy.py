"""Choosing a chain backend and deploying once: clear errors for every bad configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger import open_chain, open_ledger
from ledger.contract.deploy import DEPLOYMENTS_FILE
from ledger.errors import ChainUnavailable, ConfigError, DeploymentError


def test_unknown_chain_spec_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="use 'embedded', 'memory', 'anvil' or an http"):
        open_chain("ftp://example", tmp_path)


def test_rpc_chain_needs_an_operator_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VOISIN_CHAIN_KEY"):
        open_chain("http://127.0.0.1:9", tmp_path)
    with pytest.raises(ConfigError, match="32 bytes of hex"):
        open_chain("http://127.0.0.1:9", tmp_path, operator_key="0x1234")


def test_unreachable_node_is_reported(tmp_path: Path) -> None:
    key = "0x" + "11" * 32
    with pytest.raises(ChainUnavailable, match="cannot reach"):
        open_chain("http://127.0.0.1:9", tmp_path, operator_key=key)


def test_embedded_data_dir_opens_once_at_a_time(tmp_path: Path) -> None:
    with open_chain("embedded", tmp_path), pytest.raises(ChainUnavailable, match="already open"):
        open_chain("embedded", tmp_path)


def test_operator_key_file_is_private(tmp_path: Path) -> None:
    with open_chain("embedded", tmp_path) as chain:
        key_file = tmp_path / "operator.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert chain.w3.eth.get_balance(chain.operator.address) > 0


def test_open_ledger_deploys_once_and_reuses(tmp_path: Path) -> None:
    with open_chain("embedded", tmp_path) as chain:
        _, first = open_ledger(chain)
        _, second = open_ledger(chain)
        assert first == second
    records = json.loads((tmp_path / DEPLOYMENTS_FILE).read_text())
    assert records[str(first.chain_id)]["address"] == first.address


def test_recorded_contract_missing_on_chain_is_an_error(tmp_path: Path) -> None:
    with open_chain("embedded", tmp_path / "a") as chain:
        open_ledger(chain)
    # Another data dir holds a fresh chain: the recorded address has no code there.
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / DEPLOYMENTS_FILE).write_text((tmp_path / "a" / DEPLOYMENTS_FILE).read_text())
    with (
        open_chain("embedded", tmp_path / "b") as chain,
        pytest.raises(DeploymentError, match="no code there"),
    ):
        open_ledger(chain)


def test_corrupt_deployment_record_is_an_error(tmp_path: Path) -> None:
    (tmp_path / DEPLOYMENTS_FILE).write_text("{not json")
    with (
        open_chain("embedded", tmp_path) as chain,
        pytest.raises(DeploymentError, match="not valid JSON"),
    ):
        open_ledger(chain)
