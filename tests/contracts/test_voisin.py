"""The Voisin contract suite: every function's success path and every custom error, with the
emitted events asserted. One suite, subclassed per backend: the persistent embedded chain and a
real anvil node."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.exceptions import ContractLogicError

from ledger import Chain, errors
from ledger.chain.backends import open_chain
from ledger.errors import TAKE, InvalidArgument
from ledger.readings.eip712 import Reading, SignedReading, domain_separator, sign_reading
from ledger.types import KEPT_SLOTS, OPEN_END, Fill, Onboarding, SlotEnergy, Tariffs
from meter_sim.run import HOUSEHOLDS_PER_ONBOARDING
from tests.world import SLOT, Member, World, new_world

FEED_IN, RETAIL, FEE = 40_000, 250_000, 30_000
HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
N = 2 * HALF_N + 1


@dataclass
class Market:
    """A seller with 3000 Wh of export and a buyer with 5000 Wh of import in SLOT."""

    seller: Member
    buyer: Member
    offer: int
    bid: int


#: commitReadings' argument with every field widened to a full word, to hand-make call data.
RAW_READINGS = "(uint256,uint256,uint256,uint256,uint256,uint256,uint256)[]"
#: settleBatch's fills, widened the same way.
RAW_FILLS = "(uint256,uint256,uint256,uint256)[]"


class VoisinContractSuite:
    """Backend-independent tests; subclasses provide the ``chain`` fixture."""

    @pytest.fixture
    def chain(self) -> Chain:
        raise NotImplementedError

    @pytest.fixture
    def w(self, chain: Chain) -> World:
        return new_world(chain)

    @pytest.fixture
    def m(self, w: World) -> Market:
        seller = w.household(prosumer=True)
        buyer = w.household(prosumer=False, topup_ueur=10_000_000)
        w.meter(seller, SLOT, export_Wh=3000)
        w.meter(buyer, SLOT, import_Wh=5000)
        offer = w.client.post_offer(seller.account, 80_000, SLOT)
        bid = w.client.post_bid(buyer.account, 150_000, SLOT)
        return Market(seller, buyer, offer, bid)

    # ───────────────────────────── Deployment, roles, pause ─────────────────────────────

    def test_deployment_sets_tariffs_roles_and_token_metadata(self, w: World) -> None:
        c = w.client
        assert c.tariffs() == Tariffs(FEED_IN, RETAIL, FEE)
        for role in ("DEFAULT_ADMIN_ROLE", "OPERATOR_ROLE", "SETTLER_ROLE"):
            assert c.has_role(role, w.operator.address)
        assert c.contract.functions.decimals().call() == 6
        assert c.fee_recipient() == w.operator.address
        assert c.domain_separator() == domain_separator(w.chain.chain_id, c.address)

    def test_granted_settler_can_settle_and_revoked_cannot(self, w: World, m: Market) -> None:
        settler = w.account()
        result = w.client.grant_role(w.operator, "SETTLER_ROLE", settler.address)
        assert result.named("RoleGranted")[0].args["account"] == settler.address
        w.client.settle_batch(settler, SLOT, 0, [Fill(m.offer, m.bid, 100, 100_000)])
        result = w.client.revoke_role(w.operator, "SETTLER_ROLE", settler.address)
        assert result.named("RoleRevoked")[0].args["account"] == settler.address
        with pytest.raises(errors.Unauthorized) as err:
            w.client.settle_batch(settler, SLOT, 1, [Fill(m.offer, m.bid, 100, 100_000)])
        assert err.value.values["account"] == settler.address

    def test_only_admin_grants_roles_and_never_to_zero(self, w: World) -> None:
        outsider = w.account()
        with pytest.raises(errors.Unauthorized):
            w.client.grant_role(outsider, "OPERATOR_ROLE", outsider.address)
        with pytest.raises(errors.ZeroAddress):
            w.client.grant_role(w.operator, "OPERATOR_ROLE", "0x" + "00" * 20)

    def test_pause_stops_trading_until_unpaused(self, w: World, m: Market) -> None:
        assert w.client.pause(w.operator).named("Paused")
        assert w.client.paused()
        with pytest.raises(errors.EnforcedPause):
            w.client.pause(w.operator)
        with pytest.raises(errors.EnforcedPause):
            w.client.settle_batch(w.operator, SLOT, 0, [Fill(m.offer, m.bid, 100, 100_000)])
        with pytest.raises(errors.EnforcedPause):
            w.client.transfer(m.buyer.account, m.seller.account.address, 1)
        with pytest.raises(errors.EnforcedPause):
            w.client.commit_readings(w.operator, [w.sign(m.seller, SLOT + 1, 0, 3000)])
        assert w.client.unpause(w.operator).named("Unpaused")
        with pytest.raises(errors.ExpectedPause):
            w.client.unpause(w.operator)
        w.client.settle_batch(w.operator, SLOT, 0, [Fill(m.offer, m.bid, 100, 100_000)])

    def test_outsider_cannot_pause(self, w: World) -> None:
        with pytest.raises(errors.Unauthorized):
            w.client.pause(w.account())

    def test_every_operator_function_refuses_outsiders(self, w: World, m: Market) -> None:
        outsider = w.account()
        zero = "0x" + "00" * 20
        calls: list[tuple[str, tuple[object, ...]]] = [
            ("registerHousehold", (outsider.address, Account.create().address, True, 0, 0)),
            ("onboard", ([(outsider.address, Account.create().address, True, 0, 0, 1)],)),
            ("rotateMeter", (m.seller.id, Account.create().address, 0, 0)),
            ("rotateAccount", (m.seller.id, outsider.address)),
            ("deactivateHousehold", (m.seller.id,)),
            ("setTariffs", (1, 2, 0)),
            ("setFeeRecipient", (outsider.address,)),
            ("topUp", (outsider.address, 1)),
            ("pause", ()),
            ("unpause", ()),
            ("settleBatch", (SLOT, 0, [(m.offer, m.bid, 1, 100_000)])),
        ]
        for function, args in calls:
            with pytest.raises(errors.Unauthorized) as err:
                w.client.transact(outsider, function, *args)
            assert err.value.values["account"] == outsider.address, function
        for function in ("grantRole", "revokeRole"):
            with pytest.raises(errors.Unauthorized):
                w.client.transact(outsider, function, b"\x00" * 32, outsider.address)
        with pytest.raises(errors.ZeroAddress):
            w.client.transfer(m.buyer.account, zero, 1)

    def test_pause_stops_every_household_action(self, w: World, m: Market) -> None:
        spender = w.account()
        w.client.approve(m.buyer.account, spender.address, 10)
        w.client.pause(w.operator)
        actions = [
            lambda: w.client.post_offer(m.seller.account, 80_000, SLOT),
            lambda: w.client.post_bid(m.buyer.account, 150_000, SLOT),
            lambda: w.client.take_offer(m.buyer.account, m.offer, SLOT, 10),
            lambda: w.client.top_up(w.operator, m.buyer.account.address, 1),
            lambda: w.client.transfer_from(spender, m.buyer.account.address, spender.address, 1),
        ]
        for action in actions:
            with pytest.raises(errors.EnforcedPause):
                action()
        # Cancelling stays possible: a household can always withdraw its orders.
        w.client.cancel_offer(m.seller.account, m.offer)

    def test_take_refuses_closed_offers_and_inactive_households(self, w: World, m: Market) -> None:
        w.client.cancel_offer(m.seller.account, m.offer)
        with pytest.raises(errors.OrderClosed) as err:
            w.client.take_offer(m.buyer.account, m.offer, SLOT, 10)
        assert err.value.values == {"fill": TAKE, "orderId": m.offer}
        offer = w.client.post_offer(m.seller.account, 80_000, SLOT)
        w.client.deactivate_household(w.operator, m.seller.id)
        with pytest.raises(errors.HouseholdInactive):
            w.client.take_offer(m.buyer.account, offer, SLOT, 10)

    # ───────────────────────────── Token ─────────────────────────────

    def test_top_up_mints_and_emits(self, w: World) -> None:
        acct = w.account(funded=False)
        result = w.client.top_up(w.operator, acct.address, 2_500_000)
        assert result.named("ToppedUp")[0].args == {
            "account": acct.address,
            "amountUeur": 2_500_000,
        }
        transfer = result.named("Transfer")[0].args
        assert transfer["from"] == "0x" + "00" * 20 and transfer["value"] == 2_500_000
        assert w.client.balance_of(acct.address) == 2_500_000
        assert w.client.total_supply() == 2_500_000

    def test_top_up_rejects_zero_and_outsiders(self, w: World) -> None:
        acct = w.account()
        with pytest.raises(errors.ZeroAmount):
            w.client.top_up(w.operator, acct.address, 0)
        with pytest.raises(errors.Unauthorized):
            w.client.top_up(acct, acct.address, 1)
        with pytest.raises(errors.ZeroAddress):
            w.client.top_up(w.operator, "0x" + "00" * 20, 1)

    def test_transfer_moves_money_and_refuses_overdraft(self, w: World) -> None:
        a, b = w.account(), w.account(funded=False)
        w.client.top_up(w.operator, a.address, 1000)
        result = w.client.transfer(a, b.address, 400)
        assert result.named("Transfer")[0].args == {
            "from": a.address,
            "to": b.address,
            "value": 400,
        }
        assert (w.client.balance_of(a.address), w.client.balance_of(b.address)) == (600, 400)
        with pytest.raises(errors.InsufficientBalance) as err:
            w.client.transfer(a, b.address, 601)
        assert err.value.values == {"account": a.address, "balance": 600, "needed": 601}

    def test_transfer_from_spends_allowance(self, w: World) -> None:
        owner, spender, to = w.account(), w.account(), w.account(funded=False)
        w.client.top_up(w.operator, owner.address, 1000)
        assert w.client.approve(owner, spender.address, 300).named("Approval")
        w.client.transfer_from(spender, owner.address, to.address, 200)
        assert w.client.allowance(owner.address, spender.address) == 100
        with pytest.raises(errors.InsufficientAllowance) as err:
            w.client.transfer_from(spender, owner.address, to.address, 101)
        assert err.value.values["allowance"] == 100
        with pytest.raises(errors.ZeroAddress):
            w.client.approve(owner, "0x" + "00" * 20, 1)

    def test_top_up_cannot_exceed_the_supply_cap(self, w: World) -> None:
        acct = w.account(funded=False)
        cap = 2**80 - 1
        w.client.top_up(w.operator, acct.address, cap - 10)
        with pytest.raises(errors.SupplyCapExceeded) as err:
            w.client.top_up(w.operator, acct.address, 11)
        assert err.value.values == {"amount": 11, "max": cap}
        w.client.top_up(w.operator, acct.address, 10)
        assert w.client.total_supply() == cap

    def test_money_held_before_registration_moves_into_the_household(self, w: World) -> None:
        acct, meter = w.account(), Account.create()
        w.client.top_up(w.operator, acct.address, 700)
        hid = w.client.register_household(w.operator, acct.address, meter.address, prosumer=False)
        assert w.client.household(hid).balance_ueur == 700
        assert w.client.balance_of(acct.address) == 700
        outsider = w.account(funded=False)
        w.client.transfer(acct, outsider.address, 300)
        assert w.client.balance_of(acct.address) == 400
        assert w.client.balance_of(outsider.address) == 300
        assert w.client.total_supply() == 700

    # ───────────────────────────── Registry ─────────────────────────────

    def test_register_household_records_account_and_meter(self, w: World) -> None:
        acct, meter = Account.create(), Account.create()
        hid = w.client.register_household(w.operator, acct.address, meter.address, prosumer=True)
        assert hid == 1 == w.client.household_count()
        h = w.client.household(hid)
        assert (h.account, h.meter, h.active, h.prosumer) == (
            acct.address,
            meter.address,
            True,
            True,
        )
        assert w.client.household_of(acct.address) == hid
        assert w.client.meter_state(meter.address).household == hid

    def test_register_household_refuses_duplicates_zero_and_outsiders(self, w: World) -> None:
        member = w.household()
        with pytest.raises(errors.AccountAlreadyRegistered):
            w.client.register_household(
                w.operator, member.account.address, Account.create().address, prosumer=True
            )
        with pytest.raises(errors.MeterAlreadyRegistered):
            w.client.register_household(
                w.operator, Account.create().address, member.meter.address, prosumer=True
            )
        with pytest.raises(errors.ZeroAddress):
            w.client.register_household(
                w.operator, "0x" + "00" * 20, Account.create().address, prosumer=True
            )
        with pytest.raises(errors.Unauthorized):
            w.client.register_household(
                member.account, Account.create().address, Account.create().address, prosumer=True
            )

    def test_onboard_registers_and_tops_up_a_batch_in_one_transaction(self, w: World) -> None:
        accounts = [Account.create() for _ in range(3)]
        meters = [Account.create() for _ in range(3)]
        batch = [
            Onboarding(accounts[0].address, meters[0].address, True, 5, 7, top_up_ueur=1_000),
            Onboarding(accounts[1].address, meters[1].address, False),
            Onboarding(accounts[2].address, meters[2].address, True, 0, 11, top_up_ueur=2),
        ]
        head = w.chain.w3.eth.block_number
        assert w.client.onboard(w.operator, batch) == [1, 2, 3]
        assert w.chain.w3.eth.block_number == head + 1
        events = w.client.events(head + 1, head + 1)
        assert [e.name for e in events if e.name != "Transfer"] == [
            "HouseholdRegistered",
            "ToppedUp",
            "HouseholdRegistered",
            "HouseholdRegistered",
            "ToppedUp",
        ]
        registered = [e.args for e in events if e.name == "HouseholdRegistered"]
        assert registered[0] == {
            "household": 1,
            "account": accounts[0].address,
            "meter": meters[0].address,
            "prosumer": True,
            "importBaselineWh": 5,
            "exportBaselineWh": 7,
        }
        for hid, (entry, acct, meter) in enumerate(
            zip(batch, accounts, meters, strict=True), start=1
        ):
            h = w.client.household(hid)
            assert (h.account, h.meter, h.prosumer) == (acct.address, meter.address, entry.prosumer)
            state = w.client.meter_state(meter.address)
            assert (state.household, state.import_Wh, state.export_Wh) == (
                hid,
                entry.import_baseline_Wh,
                entry.export_baseline_Wh,
            )
            assert w.client.balance_of(acct.address) == entry.top_up_ueur

    def test_onboard_is_all_or_none_and_the_operators_alone(self, w: World) -> None:
        member = w.household()
        fresh = Onboarding(Account.create().address, Account.create().address, True, top_up_ueur=9)
        taken = Onboarding(member.account.address, Account.create().address, True)
        # The second registration reverts: the first, and its top-up, are undone with it.
        with pytest.raises(errors.AccountAlreadyRegistered):
            w.client.onboard(w.operator, [fresh, taken])
        meter_taken = Onboarding(Account.create().address, member.meter.address, False)
        with pytest.raises(errors.MeterAlreadyRegistered):
            w.client.onboard(w.operator, [fresh, meter_taken])
        with pytest.raises(errors.ZeroAddress):
            w.client.onboard(w.operator, [Onboarding(fresh.account, "0x" + "00" * 20, True)])
        with pytest.raises(errors.Unauthorized):
            w.client.onboard(member.account, [fresh])
        assert w.client.household_count() == 1
        assert w.client.household_of(fresh.account) == 0
        assert w.client.balance_of(fresh.account) == 0
        # While paused, registering still works but a top-up is refused (as topUp alone).
        w.client.pause(w.operator)
        with pytest.raises(errors.EnforcedPause):
            w.client.onboard(w.operator, [fresh])
        unfunded = Onboarding(fresh.account, fresh.meter, True)
        assert w.client.onboard(w.operator, [unfunded]) == [2]
        # The contract refuses an empty batch even when the client is bypassed.
        with pytest.raises(errors.EmptyBatch):
            w.client.transact(w.operator, "onboard", [])

    def test_onboard_refuses_bad_input_before_sending(self, w: World) -> None:
        a, m = Account.create().address, Account.create().address
        head = w.chain.w3.eth.block_number
        with pytest.raises(InvalidArgument):
            w.client.onboard(w.operator, [])
        for bad in (
            Onboarding(a, m, True, top_up_ueur=-1),
            Onboarding(a, m, True, top_up_ueur=2**256),
            Onboarding(a, m, True, import_baseline_Wh=2**64),
            Onboarding(a, m, True, export_baseline_Wh=-5),
            Onboarding(a, m, 1),  # type: ignore[arg-type]
        ):
            with pytest.raises(InvalidArgument):
                w.client.onboard(w.operator, [bad])
        with pytest.raises(ValueError):
            w.client.onboard(w.operator, [Onboarding("0x1234", m, True)])
        assert w.chain.w3.eth.block_number == head

    def test_a_full_onboarding_batch_fits_the_per_transaction_gas_cap(self, w: World) -> None:
        """What ``voisin simulate`` sends per transaction stays under 2^24 gas (Osaka rules)."""
        batch = [
            Onboarding(Account.create().address, Account.create().address, True, 1, 2, 10**9)
            for _ in range(HOUSEHOLDS_PER_ONBOARDING)
        ]
        head = w.chain.w3.eth.block_number
        assert len(w.client.onboard(w.operator, batch)) == HOUSEHOLDS_PER_ONBOARDING
        receipt = w.chain.w3.eth.get_transaction_receipt(
            w.chain.w3.eth.get_block(head + 1)["transactions"][0]  # type: ignore[arg-type]
        )
        assert receipt["gasUsed"] < 2**24

    def test_rotated_meter_signs_and_old_key_is_refused(self, w: World) -> None:
        member = w.household()
        w.meter(member, SLOT, export_Wh=100)
        old, new = member.meter, Account.create()
        result = w.client.rotate_meter(w.operator, member.id, new.address, 7, 9)
        assert result.named("MeterRotated")[0].args == {
            "household": member.id,
            "oldMeter": old.address,
            "newMeter": new.address,
            "importBaselineWh": 7,
            "exportBaselineWh": 9,
        }
        with pytest.raises(errors.UnknownMeter):
            w.client.commit_readings(w.operator, [w.sign(member, SLOT + 1, 0, 200)])
        member.meter, member.import_Wh, member.export_Wh = new, 7, 9
        # The new meter inherits the last slot: it cannot re-meter SLOT.
        with pytest.raises(errors.DuplicateReading):
            w.client.commit_readings(w.operator, [w.sign(member, SLOT, 7, 50)])
        w.meter(member, SLOT + 1, export_Wh=41)
        assert w.client.slot_energy(member.id, SLOT + 1).export_Wh == 41
        with pytest.raises(errors.MeterAlreadyRegistered):
            w.client.rotate_meter(w.operator, member.id, old.address, 0, 0)
        with pytest.raises(errors.UnknownHousehold):
            w.client.rotate_meter(w.operator, 99, Account.create().address, 0, 0)
        with pytest.raises(errors.ZeroAddress):
            w.client.rotate_meter(w.operator, member.id, "0x" + "00" * 20, 0, 0)

    def test_deactivated_household_cannot_meter_order_or_trade(self, w: World, m: Market) -> None:
        result = w.client.deactivate_household(w.operator, m.seller.id)
        assert result.named("HouseholdDeactivated")[0].args == {"household": m.seller.id}
        assert not w.client.household(m.seller.id).active
        with pytest.raises(errors.HouseholdInactive):
            w.client.deactivate_household(w.operator, m.seller.id)
        with pytest.raises(errors.HouseholdInactive):
            w.meter(m.seller, SLOT + 1, export_Wh=10)
        with pytest.raises(errors.NotHousehold):
            w.client.post_offer(m.seller.account, 80_000, SLOT)
        with pytest.raises(errors.HouseholdInactive) as err:
            w.client.settle_batch(w.operator, SLOT, 0, [Fill(m.offer, m.bid, 100, 100_000)])
        assert err.value.values == {"household": m.seller.id}
        with pytest.raises(errors.UnknownHousehold):
            w.client.deactivate_household(w.operator, 99)

    # ───────────────────────────── Tariffs ─────────────────────────────

    def test_set_tariffs_checks_the_band(self, w: World) -> None:
        result = w.client.set_tariffs(w.operator, Tariffs(50_000, 300_000, 20_000))
        assert result.named("TariffsSet")[0].args == {
            "feedInUeurPerKWh": 50_000,
            "retailUeurPerKWh": 300_000,
            "gridFeeUeurPerKWh": 20_000,
        }
        with pytest.raises(errors.InvalidTariffs):
            w.client.set_tariffs(w.operator, Tariffs(200_000, 250_000, 60_000))
        with pytest.raises(errors.InvalidTariffs):
            w.client.set_tariffs(w.operator, Tariffs(0, 0, 0))
        with pytest.raises(errors.Unauthorized):
            w.client.set_tariffs(w.account(), Tariffs(1, 2, 0))

    def test_fee_recipient_receives_grid_fees(self, w: World, m: Market) -> None:
        treasury = Account.create()
        assert w.client.set_fee_recipient(w.operator, treasury.address).named("FeeRecipientSet")
        w.client.settle_batch(w.operator, SLOT, 0, [Fill(m.offer, m.bid, 1000, 100_000)])
        assert w.client.balance_of(treasury.address) == 1000 * FEE // 1000
        with pytest.raises(errors.ZeroAddress):
            w.client.set_fee_recipient(w.operator, "0x" + "00" * 20)

    # ───────────────────────────── Readings ─────────────────────────────

    def test_reading_records_deltas_and_mints_credits(self, w: World) -> None:
        member = w.household()
        result = w.client.commit_readings(
            w.operator, [w.sign(member, SLOT, 100, 2000), w.sign(member, SLOT + 1, 350, 2600)]
        )
        events = result.named("ReadingCommitted")
        assert [e.args for e in events] == [
            {
                "household": member.id,
                "meter": member.meter.address,
                "slot": SLOT,
                "importWh": 100,
                "exportWh": 2000,
                "importDeltaWh": 100,
                "exportDeltaWh": 2000,
            },
            {
                "household": member.id,
                "meter": member.meter.address,
                "slot": SLOT + 1,
                "importWh": 350,
                "exportWh": 2600,
                "importDeltaWh": 250,
                "exportDeltaWh": 600,
            },
        ]
        assert w.client.credits_of(member.id, SLOT) == 2000
        assert w.client.credits_of(member.id, SLOT + 1) == 600
        state = w.client.meter_state(member.meter.address)
        assert (state.last_slot, state.import_Wh, state.export_Wh) == (SLOT + 1, 350, 2600)

    def test_anyone_may_submit_signed_readings(self, w: World) -> None:
        member = w.household()
        w.client.commit_readings(w.account(), [w.sign(member, SLOT, 0, 10)])
        assert w.client.credits_of(member.id, SLOT) == 10

    def test_reading_from_unknown_meter_is_refused(self, w: World) -> None:
        stranger = Account.create()
        signed = sign_reading(stranger.key, Reading(stranger.address, SLOT, 0, 5), w.domain)
        with pytest.raises(errors.UnknownMeter) as err:
            w.client.commit_readings(w.operator, [signed])
        assert err.value.values == {"index": 0, "meter": stranger.address}

    def test_tampered_reading_is_refused(self, w: World) -> None:
        member = w.household()
        good = w.sign(member, SLOT, 0, 100)
        forged = SignedReading(Reading(member.meter.address, SLOT, 0, 9999), good.v, good.r, good.s)
        with pytest.raises(errors.InvalidSignature) as err:
            w.client.commit_readings(w.operator, [forged])
        assert err.value.values == {"index": 0, "meter": member.meter.address, "slot": SLOT}

    def test_reading_signed_by_another_key_is_refused(self, w: World) -> None:
        member = w.household()
        wrong = Account.create()
        signed = sign_reading(wrong.key, Reading(member.meter.address, SLOT, 0, 100), w.domain)
        with pytest.raises(errors.InvalidSignature):
            w.client.commit_readings(w.operator, [signed])

    def test_reading_signed_for_another_chain_or_contract_is_refused(self, w: World) -> None:
        member = w.household()
        for domain in (
            domain_separator(w.chain.chain_id + 1, w.client.address),
            domain_separator(w.chain.chain_id, Account.create().address),
        ):
            signed = sign_reading(
                member.meter.key, Reading(member.meter.address, SLOT, 0, 100), domain
            )
            with pytest.raises(errors.InvalidSignature):
                w.client.commit_readings(w.operator, [signed])

    def test_malleable_high_s_signature_is_refused(self, w: World) -> None:
        member = w.household()
        good = w.sign(member, SLOT, 0, 100)
        s_high = N - int.from_bytes(good.s, "big")
        flipped = SignedReading(good.reading, 55 - good.v, good.r, s_high.to_bytes(32, "big"))
        with pytest.raises(errors.InvalidSignature):
            w.client.commit_readings(w.operator, [flipped])
        w.client.commit_readings(w.operator, [good])

    def test_replayed_reading_is_refused_as_duplicate(self, w: World) -> None:
        member = w.household()
        signed = w.sign(member, SLOT, 0, 100)
        w.client.commit_readings(w.operator, [signed])
        with pytest.raises(errors.DuplicateReading) as err:
            w.client.commit_readings(w.operator, [signed])
        assert err.value.values == {"index": 0, "meter": member.meter.address, "slot": SLOT}
        assert w.client.credits_of(member.id, SLOT) == 100

    def test_older_slot_after_newer_is_stale(self, w: World) -> None:
        member = w.household()
        w.client.commit_readings(w.operator, [w.sign(member, SLOT + 5, 0, 100)])
        with pytest.raises(errors.StaleReading) as err:
            w.client.commit_readings(w.operator, [w.sign(member, SLOT + 4, 0, 100)])
        assert err.value.values["lastSlot"] == SLOT + 5

    def test_decreasing_register_is_refused(self, w: World) -> None:
        member = w.household()
        w.client.commit_readings(w.operator, [w.sign(member, SLOT, 50, 100)])
        with pytest.raises(errors.RegisterDecreased) as err:
            w.client.commit_readings(w.operator, [w.sign(member, SLOT + 1, 50, 99)])
        assert err.value.values["lastExportWh"] == 100 and err.value.values["exportWh"] == 99

    def test_bad_reading_rejects_the_whole_batch(self, w: World) -> None:
        a, b = w.household(), w.household()
        batch = [w.sign(a, SLOT, 0, 10), w.sign(b, SLOT, 0, 20), w.sign(a, SLOT, 0, 10)]
        with pytest.raises(errors.DuplicateReading) as err:
            w.client.commit_readings(w.operator, batch)
        assert err.value.values["index"] == 2
        assert w.client.credits_of(a.id, SLOT) == 0 and w.client.credits_of(b.id, SLOT) == 0

    def test_a_field_beyond_its_type_in_raw_call_data_is_refused(self, w: World) -> None:
        # The client cannot encode such a reading; a hand-made transaction can. The contract's
        # assembly path reads raw words and must not accept one with high bits set (its range
        # check refuses it, and the signature would not match the widened word either).
        member = w.household()
        good = w.sign(member, SLOT, 7, 100)
        words = [
            int(member.meter.address, 16),
            SLOT,
            7,
            100,
            good.v,
            int.from_bytes(good.r, "big"),
            int.from_bytes(good.s, "big"),
        ]
        selector = w.client.calldata("commitReadings", [])[:4]

        def call(data: bytes) -> None:
            w.client.w3.eth.call({"from": w.operator.address, "to": w.client.address, "data": data})

        for field, extra in ((0, 1 << 160), (1, 1 << 32), (2, 1 << 64), (3, 1 << 64), (4, 1 << 8)):
            tampered = list(words)
            tampered[field] += extra
            with pytest.raises(ContractLogicError):
                call(selector + abi_encode([RAW_READINGS], [[tuple(tampered)]]))
        # The words themselves were right: unwidened, the same call goes through.
        call(selector + abi_encode([RAW_READINGS], [[tuple(words)]]))
        w.client.commit_readings(w.operator, [good])
        assert w.client.credits_of(member.id, SLOT) == 100

    def test_registers_at_their_limits_pack_without_touching_neighbouring_fields(
        self, w: World
    ) -> None:
        top = 2**64 - 1
        most = 2**56 - 1
        account = w.account()
        meter: LocalAccount = Account.create()
        hid = w.client.register_household(
            w.operator,
            account.address,
            meter.address,
            prosumer=True,
            import_baseline_Wh=top - most - 5,
            export_baseline_Wh=top - most - 9,
        )
        member = Member(hid, account, meter)
        # The highest slot the chain's clock allows now (a later one is a FutureReading).
        last = w.client.max_reading_slot()
        # The largest energy one slot holds, each way, then registers at their top.
        w.client.commit_readings(w.operator, [w.sign(member, SLOT, top - 5, top - 9)])
        assert w.client.credits_of(member.id, SLOT) == most
        assert w.client.slot_energy(member.id, SLOT).import_Wh == most
        result = w.client.commit_readings(w.operator, [w.sign(member, last, top, top)])
        assert result.named("ReadingCommitted")[0].args == {
            "household": member.id,
            "meter": member.meter.address,
            "slot": last,
            "importWh": top,
            "exportWh": top,
            "importDeltaWh": 5,
            "exportDeltaWh": 9,
        }
        state = w.client.meter_state(member.meter.address)
        assert (state.household, state.last_slot, state.import_Wh, state.export_Wh) == (
            member.id,
            last,
            top,
            top,
        )
        assert (state.retired, state.active) == (False, True)
        assert w.client.credits_of(member.id, last) == 9
        energy = w.client.slot_energy(member.id, last)
        assert (energy.import_Wh, energy.export_Wh, energy.bought_Wh, energy.sold_Wh) == (
            5,
            9,
            0,
            0,
        )

    @pytest.mark.parametrize("side", ["import", "export"])
    def test_a_slot_metering_2_56_Wh_or_more_is_refused_and_changes_nothing(
        self, w: World, side: str
    ) -> None:
        member = w.household()
        w.meter(member, SLOT, import_Wh=10, export_Wh=10)
        big = 10 + 2**56
        reading = w.sign(
            member, SLOT + 1, big if side == "import" else 11, big if side == "export" else 11
        )
        with pytest.raises(errors.EnergyTooLarge) as err:
            w.client.commit_readings(w.operator, [reading])
        assert err.value.values["index"] == 0
        assert err.value.values[f"{side}DeltaWh"] == 2**56
        state = w.client.meter_state(member.meter.address)
        assert (state.last_slot, state.import_Wh, state.export_Wh) == (SLOT, 10, 10)
        # One Wh less is accepted, through the fast path too (no dry run).
        ok = w.sign(
            member,
            SLOT + 1,
            big - 1 if side == "import" else 11,
            big - 1 if side == "export" else 11,
        )
        w.client.commit_readings(w.operator, [ok], check_first=False)
        assert w.client.meter_state(member.meter.address).last_slot == SLOT + 1

    def test_a_slot_is_kept_until_a_reading_kept_slots_later(self, w: World) -> None:
        seller = w.household()
        buyer = w.household(prosumer=False, topup_ueur=10_000_000)
        for k in range(KEPT_SLOTS):
            w.meter(seller, SLOT + k, export_Wh=100)
            w.meter(buyer, SLOT + k, import_Wh=100)
        offer = w.client.post_offer(seller.account, 50_000, SLOT)
        bid = w.client.post_bid(buyer.account, 150_000, SLOT)
        # Every kept slot is still there to trade.
        assert [w.client.credits_of(seller.id, SLOT + k) for k in range(KEPT_SLOTS)] == [
            100
        ] * KEPT_SLOTS
        w.client.settle_batch(w.operator, SLOT, 0, [Fill(offer, bid, 40, 100_000)])
        # The seller's next reading takes SLOT's word: its 60 Wh left are gone for trading.
        w.meter(seller, SLOT + KEPT_SLOTS, export_Wh=100)
        assert w.client.credits_of(seller.id, SLOT) == 0
        assert w.client.slot_energy(seller.id, SLOT) == SlotEnergy(0, 0, 0, 0)
        assert w.client.credits_of(seller.id, SLOT + KEPT_SLOTS) == 100
        for check_first in (True, False):
            with pytest.raises(errors.InsufficientCredits) as err:
                w.client.settle_batch(
                    w.operator, SLOT, 1, [Fill(offer, bid, 10, 100_000)], check_first=check_first
                )
            assert (err.value.values["haveWh"], err.value.values["wantWh"]) == (0, 10)
        with pytest.raises(errors.InsufficientCredits):
            w.client.take_offer(buyer.account, offer, SLOT, 10)
        # The buyer's SLOT is still kept (its next reading has not come): it buys from SLOT + 1.
        assert w.client.slot_energy(buyer.id, SLOT) == SlotEnergy(100, 0, 40, 0)
        w.client.settle_batch(w.operator, SLOT + 1, 0, [Fill(offer, bid, 60, 100_000)])
        assert w.client.slot_energy(seller.id, SLOT + 1) == SlotEnergy(0, 100, 0, 60)
        # A buyer whose slot has gone: InsufficientDeficit, with nothing left.
        w.meter(buyer, SLOT + KEPT_SLOTS + 1, import_Wh=100)
        with pytest.raises(errors.InsufficientDeficit) as gone:
            w.client.settle_batch(w.operator, SLOT + 1, 1, [Fill(offer, bid, 1, 100_000)])
        assert gone.value.values["haveWh"] == 0

    def test_deactivation_reaches_the_meter_and_a_rotated_meter_keeps_it(self, w: World) -> None:
        member = w.household()
        w.meter(member, SLOT, export_Wh=10)
        assert w.client.meter_state(member.meter.address).active
        w.client.transact(w.operator, "deactivateHousehold", member.id)
        assert not w.client.meter_state(member.meter.address).active
        for check_first in (True, False):
            with pytest.raises(errors.HouseholdInactive):
                w.client.commit_readings(
                    w.operator, [w.sign(member, SLOT + 1, 0, 20)], check_first=check_first
                )
        new: LocalAccount = Account.create()
        w.client.transact(w.operator, "rotateMeter", member.id, new.address, 0, 20)
        assert not w.client.meter_state(new.address).active
        old = w.client.meter_state(member.meter.address)
        assert (old.household, old.retired, old.active) == (0, True, False)
        rotated = Member(member.id, member.account, new)
        with pytest.raises(errors.HouseholdInactive):
            w.client.commit_readings(w.operator, [w.sign(rotated, SLOT + 1, 0, 30)])

    # ───────────────────────────── Orders ─────────────────────────────

    def test_post_and_cancel_orders(self, w: World) -> None:
        member = w.household()
        result = w.client.transact(member.account, "postOffer", 90_000, 500, SLOT, SLOT + 3)
        assert result.named("OfferPosted")[0].args == {
            "offerId": 1,
            "household": member.id,
            "priceLimitUeurPerKWh": 90_000,
            "maxWhPerSlot": 500,
            "firstSlot": SLOT,
            "lastSlot": SLOT + 3,
        }
        bid_id = w.client.post_bid(member.account, 120_000, SLOT)
        assert w.client.bid(bid_id).last_slot == OPEN_END
        cancelled = w.client.cancel_offer(member.account, 1).named("OfferCancelled")[0].args
        assert cancelled == {"offerId": 1, "by": member.account.address}
        assert not w.client.offer(1).open
        with pytest.raises(errors.OrderAlreadyClosed):
            w.client.cancel_offer(member.account, 1)
        # The operator may cancel any order.
        assert w.client.cancel_bid(w.operator, bid_id).named("BidCancelled")
        with pytest.raises(errors.UnknownOffer):
            w.client.cancel_offer(member.account, 42)
        with pytest.raises(errors.UnknownBid):
            w.client.cancel_bid(member.account, 42)

    def test_only_owner_or_operator_cancels(self, w: World) -> None:
        owner, other = w.household(), w.household()
        offer_id = w.client.post_offer(owner.account, 90_000, SLOT)
        with pytest.raises(errors.NotOrderOwner) as err:
            w.client.cancel_offer(other.account, offer_id)
        assert err.value.values == {"orderId": offer_id, "account": other.account.address}

    def test_orders_are_validated(self, w: World) -> None:
        member = w.household()
        with pytest.raises(errors.InvalidSlotRange):
            w.client.post_offer(member.account, 90_000, SLOT + 1, SLOT)
        with pytest.raises(errors.PriceLimitUnreachable) as err:
            w.client.post_offer(member.account, RETAIL - FEE + 1, SLOT)
        assert err.value.values["maxLocalPrice"] == RETAIL - FEE
        with pytest.raises(errors.PriceLimitUnreachable):
            w.client.post_bid(member.account, FEED_IN - 1, SLOT)
        with pytest.raises(errors.NotHousehold):
            w.client.post_bid(w.account(), 100_000, SLOT)

    def test_wrong_types_and_huge_numbers_are_refused_before_sending(self, w: World) -> None:
        member = w.household()
        with pytest.raises(InvalidArgument, match="between 0 and"):
            w.client.post_offer(member.account, -5, SLOT)
        with pytest.raises(InvalidArgument, match="between 0 and"):
            w.client.post_bid(member.account, 100_000, SLOT, 2**32)
        with pytest.raises(InvalidArgument, match="must be an integer"):
            w.client.take_offer(member.account, 1, SLOT, "10")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            w.client.top_up(w.operator, member.account.address, -1)
        assert w.client.offer_count() == 0 and w.client.bid_count() == 0

    # ───────────────────────────── Batch settlement ─────────────────────────────

    def test_batch_moves_energy_and_money_with_events(self, w: World, m: Market) -> None:
        c = w.client
        result = c.settle_batch(
            w.operator,
            SLOT,
            0,
            [Fill(m.offer, m.bid, 1000, 100_000), Fill(m.offer, m.bid, 1, 100_000)],
        )
        fills = [e.args for e in result.named("FillSettled")]
        assert fills[0] == {
            "slot": SLOT,
            "seller": m.seller.id,
            "buyer": m.buyer.id,
            "offerId": m.offer,
            "bidId": m.bid,
            "energyWh": 1000,
            "priceUeurPerKWh": 100_000,
            "costUeur": 100_000,
            "feeUeur": 30_000,
        }
        # 1 Wh at 100000 ueur/kWh costs 100 ueur; the fee 30 ueur.
        assert (fills[1]["costUeur"], fills[1]["feeUeur"]) == (100, 30)
        assert result.named("BatchSettled")[0].args == {
            "slot": SLOT,
            "batch": 0,
            "fills": 2,
            "energyWh": 1001,
        }
        assert c.balance_of(m.seller.account.address) == 100_100
        assert c.balance_of(m.buyer.account.address) == 10_000_000 - 100_100 - 30_030
        assert c.balance_of(w.operator.address) == 30_030
        assert c.slot_energy(m.seller.id, SLOT).sold_Wh == 1001
        assert c.slot_energy(m.buyer.id, SLOT).bought_Wh == 1001
        assert c.batch_settled(SLOT, 0) and not c.batch_settled(SLOT, 1)

    def test_batch_is_settled_once(self, w: World, m: Market) -> None:
        w.client.settle_batch(w.operator, SLOT, 0, [Fill(m.offer, m.bid, 10, 100_000)])
        with pytest.raises(errors.BatchAlreadySettled) as err:
            w.client.settle_batch(w.operator, SLOT, 0, [Fill(m.offer, m.bid, 10, 100_000)])
        assert err.value.values == {"slot": SLOT, "batch": 0}
        assert w.client.slot_energy(m.seller.id, SLOT).sold_Wh == 10

    def test_batch_rejects_each_broken_rule_naming_the_fill(self, w: World, m: Market) -> None:
        ok = Fill(m.offer, m.bid, 10, 100_000)
        s, b = m.seller.id, m.buyer.id
        cases: list[tuple[Fill, type[errors.ContractError], dict[str, object]]] = [
            (Fill(99, m.bid, 10, 100_000), errors.UnknownOffer, {"offerId": 99}),
            (Fill(m.offer, 99, 10, 100_000), errors.UnknownBid, {"bidId": 99}),
            (Fill(m.offer, m.bid, 0, 100_000), errors.ZeroEnergy, {"fill": 1}),
            (
                Fill(m.offer, m.bid, 10, 79_999),
                errors.PriceBelowOffer,
                {"fill": 1, "price": 79_999, "offerLimit": 80_000},
            ),
            (
                Fill(m.offer, m.bid, 10, 150_001),
                errors.PriceAboveBid,
                {"fill": 1, "price": 150_001, "bidLimit": 150_000},
            ),
            (
                Fill(m.offer, m.bid, 3001, 100_000),
                errors.InsufficientCredits,
                {"fill": 1, "seller": s, "slot": SLOT, "haveWh": 2990, "wantWh": 3001},
            ),
        ]
        for bad, error, values in cases:
            with pytest.raises(error) as err:
                w.client.settle_batch(w.operator, SLOT, 0, [ok, bad])
            for key, value in values.items():
                assert err.value.values[key] == value, (error, key)
        # Nothing of any rejected batch was applied.
        assert w.client.slot_energy(s, SLOT).sold_Wh == 0
        assert w.client.slot_energy(b, SLOT).bought_Wh == 0
        with pytest.raises(errors.EmptyBatch):
            w.client.settle_batch(w.operator, SLOT, 0, [])

    def test_fill_cannot_exceed_buyer_import(self, w: World, m: Market) -> None:
        seller2 = w.household()
        w.meter(seller2, SLOT, export_Wh=9000)
        offer2 = w.client.post_offer(seller2.account, 80_000, SLOT)
        with pytest.raises(errors.InsufficientDeficit) as err:
            w.client.settle_batch(
                w.operator,
                SLOT,
                0,
                [Fill(m.offer, m.bid, 3000, 100_000), Fill(offer2, m.bid, 2001, 100_000)],
            )
        assert err.value.values == {
            "fill": 1,
            "buyer": m.buyer.id,
            "slot": SLOT,
            "haveWh": 2000,
            "wantWh": 2001,
        }

    def test_fill_price_must_sit_in_the_tariff_band(self, w: World, m: Market) -> None:
        w.client.set_tariffs(w.operator, Tariffs(90_000, 250_000, 30_000))
        with pytest.raises(errors.PriceOutsideTariffs) as err:
            w.client.settle_batch(w.operator, SLOT, 0, [Fill(m.offer, m.bid, 10, 85_000)])
        assert err.value.values["feedIn"] == 90_000
        w.client.set_tariffs(w.operator, Tariffs(40_000, 120_000, 30_000))
        with pytest.raises(errors.PriceOutsideTariffs):
            # 100000 + 30000 fee > 120000 retail: the buyer would pay more than the grid.
            w.client.settle_batch(w.operator, SLOT, 0, [Fill(m.offer, m.bid, 10, 100_000)])

    def test_fill_needs_open_orders_covering_the_slot(self, w: World, m: Market) -> None:
        with pytest.raises(errors.SlotOutsideOrder) as err:
            w.client.settle_batch(w.operator, SLOT - 1, 0, [Fill(m.offer, m.bid, 10, 100_000)])
        assert err.value.values == {"fill": 0, "orderId": m.offer, "slot": SLOT - 1}
        w.client.cancel_bid(m.buyer.account, m.bid)
        with pytest.raises(errors.OrderClosed) as err2:
            w.client.settle_batch(w.operator, SLOT, 0, [Fill(m.offer, m.bid, 10, 100_000)])
        assert err2.value.values == {"fill": 0, "orderId": m.bid}

    def test_household_cannot_trade_with_itself(self, w: World, m: Market) -> None:
        own_bid = w.client.post_bid(m.seller.account, 150_000, SLOT)
        with pytest.raises(errors.SelfTrade) as err:
            w.client.settle_batch(w.operator, SLOT, 0, [Fill(m.offer, own_bid, 10, 100_000)])
        assert err.value.values == {"fill": 0, "household": m.seller.id}

    def test_a_fill_field_beyond_its_type_in_raw_call_data_is_refused(
        self, w: World, m: Market
    ) -> None:
        selector = w.client.calldata("settleBatch", SLOT, 0, [])[:4]
        words = [m.offer, m.bid, 100, 100_000]

        def call(fill: list[int]) -> None:
            data = selector + abi_encode(["uint32", "uint32", RAW_FILLS], [SLOT, 0, [tuple(fill)]])
            w.client.w3.eth.call({"from": w.operator.address, "to": w.client.address, "data": data})

        for field, extra in ((0, 1 << 32), (1, 1 << 32), (2, 1 << 64), (3, 1 << 64)):
            tampered = list(words)
            tampered[field] += extra
            with pytest.raises(ContractLogicError):
                call(tampered)
        call(words)
        w.client.settle_batch(w.operator, SLOT, 0, [Fill(m.offer, m.bid, 100, 100_000)])
        assert w.client.credits_of(m.seller.id, SLOT) == 2900

    def test_per_slot_cap_is_enforced_across_fills(self, w: World, m: Market) -> None:
        capped = w.client.post_offer(m.seller.account, 80_000, SLOT, SLOT, max_Wh_per_slot=500)
        w.client.settle_batch(w.operator, SLOT, 0, [Fill(capped, m.bid, 300, 100_000)])
        assert w.client.offer_used_Wh(capped, SLOT) == 300
        with pytest.raises(errors.OrderCapExceeded) as err:
            w.client.settle_batch(w.operator, SLOT, 1, [Fill(capped, m.bid, 201, 100_000)])
        assert err.value.values == {
            "fill": 0,
            "orderId": capped,
            "slot": SLOT,
            "leftWh": 200,
            "wantWh": 201,
        }
        capped_bid = w.client.post_bid(m.buyer.account, 150_000, SLOT, SLOT, max_Wh_per_slot=50)
        with pytest.raises(errors.OrderCapExceeded):
            w.client.settle_batch(w.operator, SLOT, 1, [Fill(m.offer, capped_bid, 51, 100_000)])
        # Up to the caps exactly, both capped orders in one fill, with a second fill after.
        w.client.settle_batch(
            w.operator,
            SLOT,
            1,
            [Fill(capped, capped_bid, 40, 100_000), Fill(capped, m.bid, 160, 100_000)],
        )
        assert w.client.offer_used_Wh(capped, SLOT) == 500
        assert w.client.bid_used_Wh(capped_bid, SLOT) == 40
        assert w.client.offer_used_Wh(capped, SLOT + 1) == 0
        with pytest.raises(errors.OrderCapExceeded) as err:
            w.client.settle_batch(w.operator, SLOT, 2, [Fill(capped, m.bid, 1, 100_000)])
        assert err.value.values["leftWh"] == 0

    def test_buyer_must_afford_cost_and_fee(self, w: World, m: Market) -> None:
        poor = w.household(topup_ueur=129)
        w.meter(poor, SLOT, import_Wh=1000)
        bid = w.client.post_bid(poor.account, 150_000, SLOT)
        # 1 Wh at 100000 costs 100 + fee 30 = 130 > 129.
        with pytest.raises(errors.InsufficientFunds) as err:
            w.client.settle_batch(w.operator, SLOT, 0, [Fill(m.offer, bid, 1, 100_000)])
        assert err.value.values == {
            "fill": 0,
            "buyer": poor.account.address,
            "haveUeur": 129,
            "wantUeur": 130,
        }

    def test_only_settlers_settle(self, w: World, m: Market) -> None:
        with pytest.raises(errors.Unauthorized):
            w.client.settle_batch(m.buyer.account, SLOT, 0, [Fill(m.offer, m.bid, 10, 100_000)])

    # ───────────────────────────── Direct take ─────────────────────────────

    def test_take_fills_partially_at_the_offer_price(self, w: World, m: Market) -> None:
        result = w.client.take_offer(m.buyer.account, m.offer, SLOT, 10_000)
        fill = result.named("FillSettled")[0].args
        # Limited by the seller's 3000 Wh of credits; priced at the offer's limit.
        assert (fill["energyWh"], fill["priceUeurPerKWh"], fill["bidId"]) == (3000, 80_000, 0)
        assert fill["costUeur"] == 240_000 and fill["feeUeur"] == 90_000
        assert w.client.credits_of(m.seller.id, SLOT) == 0
        with pytest.raises(errors.InsufficientCredits) as err:
            w.client.take_offer(m.buyer.account, m.offer, SLOT, 1)
        assert err.value.values["fill"] == TAKE

    def test_take_is_limited_by_own_import_cap_and_funds(self, w: World) -> None:
        seller = w.household()
        w.meter(seller, SLOT, export_Wh=10_000)
        offer = w.client.post_offer(seller.account, 100_000, SLOT, SLOT, max_Wh_per_slot=4000)
        buyer = w.household(topup_ueur=130_000 * 1500 // 1000)
        w.meter(buyer, SLOT, import_Wh=2000)
        # Funds for 1500 Wh at 100000 + 30000 fee.
        fill = w.client.take_offer(buyer.account, offer, SLOT, 9999).named("FillSettled")[0]
        assert fill.args["energyWh"] == 1500
        w.client.top_up(w.operator, buyer.account.address, 10_000_000)
        fill = w.client.take_offer(buyer.account, offer, SLOT, 9999).named("FillSettled")[0]
        assert fill.args["energyWh"] == 500  # the rest of its 2000 Wh import
        with pytest.raises(errors.InsufficientDeficit):
            w.client.take_offer(buyer.account, offer, SLOT, 1)
        other = w.household(topup_ueur=10_000_000)
        w.meter(other, SLOT, import_Wh=9000)
        fill = w.client.take_offer(other.account, offer, SLOT, 9999).named("FillSettled")[0]
        assert fill.args["energyWh"] == 2000  # the offer's 4000 Wh cap for the slot
        with pytest.raises(errors.OrderCapExceeded):
            w.client.take_offer(other.account, offer, SLOT, 1)

    def test_take_refuses_bad_requests(self, w: World, m: Market) -> None:
        with pytest.raises(errors.ZeroEnergy):
            w.client.take_offer(m.buyer.account, m.offer, SLOT, 0)
        with pytest.raises(errors.UnknownOffer):
            w.client.take_offer(m.buyer.account, 77, SLOT, 10)
        with pytest.raises(errors.NotHousehold):
            w.client.take_offer(w.account(), m.offer, SLOT, 10)
        with pytest.raises(errors.SelfTrade):
            w.client.take_offer(m.seller.account, m.offer, SLOT, 10)
        with pytest.raises(errors.SlotOutsideOrder):
            w.client.take_offer(m.buyer.account, m.offer, SLOT - 1, 10)
        broke = w.household()
        w.meter(broke, SLOT, import_Wh=100)
        with pytest.raises(errors.InsufficientFunds):
            w.client.take_offer(broke.account, m.offer, SLOT, 10)


class TestOnEmbeddedChain(VoisinContractSuite):
    @pytest.fixture
    def chain(self, embedded_chain: Chain) -> Chain:
        return embedded_chain


@pytest.mark.anvil
class TestOnAnvil(VoisinContractSuite):
    @pytest.fixture
    def chain(self, anvil_chain: Chain) -> Chain:
        return anvil_chain


class TestOnEmbeddedNodeProcess(VoisinContractSuite):
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
