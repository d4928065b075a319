"""A deployment that continues another (a contract upgrade by migration): the constructor
declares the predecessor once, before anything can happen, with ``MigratedFrom``; every meter
registered on the continuation starts after the predecessor's last slot, so no (meter, slot)
counts on both deployments. One suite, subclassed per backend."""

from __future__ import annotations

import pytest
from eth_utils.crypto import keccak
from web3.exceptions import ContractCustomError

from ledger import Chain, errors
from ledger.contract.client import VoisinClient
from ledger.contract.compile import load_artifact
from ledger.contract.deploy import (
    DEFAULT_TARIFFS,
    ZERO_ADDRESS,
    Deployment,
    Predecessor,
    deploy,
)
from ledger.types import Onboarding
from tests.world import SLOT, World

PREVIOUS = "0x" + "ab" * 20
DIGEST = "0x" + "cd" * 32
LAST_SLOT = SLOT + 7


def _world(chain: Chain, predecessor: Predecessor) -> tuple[World, Deployment]:
    deployment = deploy(chain, DEFAULT_TARIFFS, None, predecessor)
    abi = load_artifact("Voisin")["abi"]
    client = VoisinClient(chain.w3, deployment.address, abi, estimate_gas=chain.estimates_gas)
    return World(chain, client), deployment


class MigrationSuite:
    """Backend-independent tests; subclasses provide the ``chain`` fixture."""

    @pytest.fixture
    def chain(self) -> Chain:
        raise NotImplementedError

    @pytest.fixture
    def continued(self, chain: Chain) -> tuple[World, Deployment]:
        return _world(chain, Predecessor(PREVIOUS, 1234, DIGEST, LAST_SLOT))

    def test_a_continuation_declares_its_predecessor_once_in_its_constructor(
        self, chain: Chain, continued: tuple[World, Deployment]
    ) -> None:
        w, deployment = continued
        events = w.client.events(deployment.block_number, deployment.block_number)
        declared = [e for e in events if e.name == "MigratedFrom"]
        assert [e.args for e in declared] == [
            {
                "previous": chain.w3.to_checksum_address(PREVIOUS),
                "snapshotBlock": 1234,
                "snapshotDigest": DIGEST,
                "lastSlot": LAST_SLOT,
            }
        ]
        previous = w.client.contract.functions.predecessor().call()
        assert previous == (
            chain.w3.to_checksum_address(PREVIOUS),
            1234,
            bytes.fromhex(DIGEST[2:]),
            LAST_SLOT,
        )
        assert deployment.migrated_from == PREVIOUS and deployment.snapshot_digest == DIGEST

    def test_a_first_deployment_declares_nothing(self, chain: Chain) -> None:
        w, deployment = _world(chain, Predecessor())
        events = w.client.events(deployment.block_number, deployment.block_number)
        assert "MigratedFrom" not in {e.name for e in events}
        previous = w.client.contract.functions.predecessor().call()
        assert previous == (ZERO_ADDRESS, 0, bytes(32), 0)
        assert deployment.migrated_from is None
        member = w.household()
        assert w.client.meter_state(member.meter.address).last_slot == 0

    def test_a_floor_or_a_digest_without_the_deployment_they_come_from_is_refused(
        self, chain: Chain
    ) -> None:
        for predecessor in (
            Predecessor(last_slot=LAST_SLOT),
            Predecessor(snapshot_digest=DIGEST),
            Predecessor(snapshot_block=9),
        ):
            with pytest.raises((ContractCustomError, errors.TransactionFailed)) as err:
                deploy(chain, DEFAULT_TARIFFS, None, predecessor)
            if isinstance(err.value, ContractCustomError):
                assert str(err.value.data).startswith("0x" + keccak(text="ZeroAddress()")[:4].hex())

    def test_a_last_slot_beyond_the_clock_is_refused(self, chain: Chain) -> None:
        # Every meter starts after it, and no meter may be ahead of the chain's clock.
        far = int(chain.w3.eth.get_block("latest")["timestamp"]) // 900 + 10_000
        with pytest.raises((ContractCustomError, errors.TransactionFailed)) as err:
            deploy(chain, DEFAULT_TARIFFS, None, Predecessor(PREVIOUS, 1234, DIGEST, far))
        if isinstance(err.value, ContractCustomError):
            selector = keccak(text="FutureSlot(uint32,uint32)")[:4].hex()
            assert str(err.value.data).startswith("0x" + selector)

    def test_meters_start_after_the_predecessors_last_slot(
        self, continued: tuple[World, Deployment]
    ) -> None:
        w, _ = continued
        member = w.household()
        onboarded_id = w.client.onboard(
            w.operator,
            [Onboarding(w.account().address, w.account(False).address, True, 500, 700, 10)],
        )[0]
        onboarded = w.client.household(onboarded_id)
        for meter in (member.meter.address, onboarded.meter):
            assert w.client.meter_state(meter).last_slot == LAST_SLOT
        with pytest.raises(errors.DuplicateReading) as dup:
            w.client.commit_readings(w.operator, [w.sign(member, LAST_SLOT, 0, 0)])
        assert dup.value.values == {"index": 0, "meter": member.meter.address, "slot": LAST_SLOT}
        with pytest.raises(errors.StaleReading) as stale:
            w.client.commit_readings(w.operator, [w.sign(member, SLOT, 0, 0)])
        assert stale.value.values["lastSlot"] == LAST_SLOT
        w.meter(member, LAST_SLOT + 1, import_Wh=10, export_Wh=20)
        assert w.client.meter_state(member.meter.address).last_slot == LAST_SLOT + 1

    def test_a_rotated_meter_keeps_the_floor(self, continued: tuple[World, Deployment]) -> None:
        w, _ = continued
        member = w.household()
        new_meter = w.account(False)
        w.client.rotate_meter(w.operator, member.id, new_meter.address, 0, 0)
        assert w.client.meter_state(new_meter.address).last_slot == LAST_SLOT


class TestOnEmbeddedChain(MigrationSuite):
    @pytest.fixture
    def chain(self, embedded_chain: Chain) -> Chain:
        return embedded_chain


@pytest.mark.anvil
class TestOnAnvil(MigrationSuite):
    @pytest.fixture
    def chain(self, anvil_chain: Chain) -> Chain:
        return anvil_chain
