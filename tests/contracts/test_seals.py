"""Seals: the settlement role anchors each settled slot's digest-chain head on chain
(``sealSlot``), once, so that whoever holds the database cannot rewrite a settled slot and its
digest without the audit seeing the difference. One suite, subclassed per backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_utils.crypto import keccak

from ledger import Chain, errors
from ledger.chain.backends import open_chain
from ledger.errors import InvalidArgument
from tests.world import SLOT, World, new_world

HEAD_A = "0x" + "a1" * 32
HEAD_B = "0x" + "b2" * 32
ZERO = "0x" + "00" * 32


class SealSuite:
    """Backend-independent tests; subclasses provide the ``chain`` fixture."""

    @pytest.fixture
    def chain(self) -> Chain:
        raise NotImplementedError

    @pytest.fixture
    def w(self, chain: Chain) -> World:
        return new_world(chain)

    def test_settler_seals_a_slot_and_reads_it_back(self, w: World) -> None:
        assert w.client.sealed_digest_head(SLOT) is None
        result = w.client.seal_slot(w.operator, SLOT, HEAD_A)
        assert [(e.name, e.args) for e in result.events] == [
            ("SlotSealed", {"slot": SLOT, "digestHead": HEAD_A})
        ]
        assert w.client.sealed_digest_head(SLOT) == HEAD_A
        assert w.client.sealed_digest_head(SLOT + 1) is None
        # Each slot has its own seal; the head may be given as bytes too.
        w.client.seal_slot(w.operator, SLOT + 1, bytes.fromhex(HEAD_B[2:]))
        assert w.client.sealed_digest_head(SLOT + 1) == HEAD_B
        assert w.client.sealed_digest_head(SLOT) == HEAD_A

    def test_the_same_head_again_changes_nothing_and_emits_nothing(self, w: World) -> None:
        w.client.seal_slot(w.operator, SLOT, HEAD_A)
        again = w.client.seal_slot(w.operator, SLOT, HEAD_A)
        assert again.events == []
        assert w.client.sealed_digest_head(SLOT) == HEAD_A

    def test_a_different_head_for_a_sealed_slot_is_refused_with_both_heads(self, w: World) -> None:
        w.client.seal_slot(w.operator, SLOT, HEAD_A)
        for check_first in (True, False):
            with pytest.raises(errors.SlotAlreadySealed) as err:
                w.client.seal_slot(w.operator, SLOT, HEAD_B, check_first=check_first)
            assert err.value.values == {
                "slot": SLOT,
                "sealedDigestHead": HEAD_A,
                "digestHead": HEAD_B,
            }
            assert isinstance(err.value, errors.Conflict)
        assert w.client.sealed_digest_head(SLOT) == HEAD_A

    def test_only_the_settlement_role_seals(self, w: World) -> None:
        outsider = w.account()
        with pytest.raises(errors.Unauthorized) as err:
            w.client.seal_slot(outsider, SLOT, HEAD_A)
        assert err.value.values == {
            "account": outsider.address,
            "role": "0x" + keccak(text="SETTLER_ROLE").hex(),
        }
        w.client.grant_role(w.operator, "SETTLER_ROLE", outsider.address)
        w.client.seal_slot(outsider, SLOT, HEAD_A)
        w.client.revoke_role(w.operator, "SETTLER_ROLE", outsider.address)
        with pytest.raises(errors.Unauthorized):
            w.client.seal_slot(outsider, SLOT + 1, HEAD_B)
        assert w.client.sealed_digest_head(SLOT) == HEAD_A
        assert w.client.sealed_digest_head(SLOT + 1) is None

    def test_a_zero_head_is_refused(self, w: World) -> None:
        with pytest.raises(errors.ZeroDigest) as err:
            w.client.seal_slot(w.operator, SLOT, ZERO)
        assert err.value.values == {"slot": SLOT}
        assert w.client.sealed_digest_head(SLOT) is None

    def test_a_slot_ahead_of_the_chains_clock_is_refused_and_the_last_allowed_sealed(
        self, w: World
    ) -> None:
        ahead = w.client.max_reading_slot() + 10_000
        with pytest.raises(errors.FutureSlot) as err:
            w.client.seal_slot(w.operator, ahead, HEAD_A)
        top = int(err.value.values["maxSlot"])
        assert err.value.values == {"slot": ahead, "maxSlot": top}
        assert w.client.sealed_digest_head(ahead) is None
        with pytest.raises(errors.FutureSlot):
            w.client.seal_slot(w.operator, 2**32 - 1, HEAD_A)
        # The chain's clock does not go back: the bound the refusal named still holds.
        w.client.seal_slot(w.operator, top, HEAD_A)
        assert w.client.sealed_digest_head(top) == HEAD_A

    def test_sealing_goes_on_while_the_ledger_is_paused(self, w: World) -> None:
        w.client.pause(w.operator)
        result = w.client.seal_slot(w.operator, SLOT, HEAD_A)
        assert result.named("SlotSealed")[0].args == {"slot": SLOT, "digestHead": HEAD_A}

    def test_the_client_refuses_a_head_that_is_not_32_bytes_before_sending(self, w: World) -> None:
        for bad in (b"\x01" * 31, b"\x01" * 33, "0x12", "a1" * 32, "0x" + "zz" * 32, 7):
            with pytest.raises(InvalidArgument):
                w.client.seal_slot(w.operator, SLOT, bad)  # type: ignore[arg-type]
        for slot in (-1, 2**32):
            with pytest.raises(InvalidArgument):
                w.client.seal_slot(w.operator, slot, HEAD_A)
        assert w.client.sealed_digest_head(SLOT) is None


class TestOnEmbeddedChain(SealSuite):
    @pytest.fixture
    def chain(self, embedded_chain: Chain) -> Chain:
        return embedded_chain


@pytest.mark.anvil
class TestOnAnvil(SealSuite):
    @pytest.fixture
    def chain(self, anvil_chain: Chain) -> Chain:
        return anvil_chain


class TestOnEmbeddedNodeProcess(SealSuite):
    """The embedded chain run as `voisin serve` runs it: a node process over loopback JSON-RPC."""

    @pytest.fixture(scope="class")
    @classmethod
    def node_chain(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
        chain = open_chain("embedded", tmp_path_factory.mktemp("node") / "data", process=True)
        yield chain
        chain.close()

    @pytest.fixture
    def chain(self, node_chain: Chain) -> Chain:
        return node_chain
