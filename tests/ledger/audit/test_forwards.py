"""The forwards check: the day-ahead book on synthetic event lists (each finding provoked by
tampering one field), a property over the settlement's arithmetic, and the report's shape."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from ledger.audit import audit_inputs
from ledger.audit.energy import check_energy
from ledger.audit.findings import Finding
from ledger.audit.forwards import check_forwards, forward_summary, has_forwards
from ledger.audit.inputs import AuditInputs, checksum, collect
from ledger.audit.money import check_money
from ledger.audit.render import report_html
from ledger.contract.deploy import DEFAULT_TARIFFS
from ledger.market.data import load_statement
from ledger.mirror.indexer import index
from ledger.mirror.models import FillRecord, ForwardRecord
from ledger.readings.evidence import store_signed_readings
from ledger.types import Event, Forward, Tariffs
from tests.ledger.audit.conftest import Home, Market

SLOT = 1_995_000
CONTRACT = checksum("0x" + "c0" * 20)
FEES = checksum("0x" + "fe" * 20)
ZERO = "0x" + "00" * 20
TARIFFS = Tariffs(
    feed_in_ueur_per_kWh=80_000, retail_ueur_per_kWh=300_000, grid_fee_ueur_per_kWh=20_000
)


def account(household: int) -> str:
    return checksum(f"0x{household:040x}")


@dataclass
class Chain:
    """A synthetic contract history, written the way the contract's spec emits it: one
    transaction per call, events in order, balances kept alongside."""

    tariffs: Tariffs = TARIFFS
    events: list[Event] = field(default_factory=list)
    balances: dict[str, int] = field(default_factory=dict)
    supply: int = 0
    block: int = 0
    tx: str = ""
    forwards: dict[int, dict[str, int]] = field(default_factory=dict)
    left: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    """(slot, household) -> [credits left, import left] (Wh)."""

    def __post_init__(self) -> None:
        self.call()
        self.emit("FeeRecipientSet", recipient=FEES)
        self.set_tariffs(self.tariffs)

    def call(self) -> None:
        self.block += 1
        self.tx = f"0x{self.block:064x}"

    def emit(self, name: str, **args: Any) -> Event:
        log = sum(1 for e in self.events if e.tx_hash == self.tx)
        e = Event(name, args, self.block, log, self.tx)
        self.events.append(e)
        return e

    def set_tariffs(self, t: Tariffs) -> None:
        self.call()
        self.tariffs = t
        self.emit(
            "TariffsSet",
            feedInUeurPerKWh=t.feed_in_ueur_per_kWh,
            retailUeurPerKWh=t.retail_ueur_per_kWh,
            gridFeeUeurPerKWh=t.grid_fee_ueur_per_kWh,
        )

    def transfer(self, source: str, target: str, value: int) -> None:
        if source != ZERO:
            self.balances[source] -= value
        self.balances[target] = self.balances.get(target, 0) + value
        self.emit("Transfer", **{"from": source, "to": target, "value": value})

    def register(self, household: int, topup_ueur: int = 0) -> None:
        self.call()
        self.emit(
            "HouseholdRegistered",
            household=household,
            account=account(household),
            meter=checksum(f"0x{household + 1000:040x}"),
            prosumer=True,
            importBaselineWh=0,
            exportBaselineWh=0,
        )
        self.balances.setdefault(account(household), 0)
        if topup_ueur:
            self.call()
            self.supply += topup_ueur
            self.transfer(ZERO, account(household), topup_ueur)
            self.emit("ToppedUp", account=account(household), amountUeur=topup_ueur)

    def meter(self, slot: int, household: int, import_Wh: int, export_Wh: int) -> None:
        self.call()
        self.left[(slot, household)] = [export_Wh, import_Wh]
        self.emit(
            "ReadingCommitted",
            household=household,
            meter=checksum(f"0x{household + 1000:040x}"),
            slot=slot,
            importWh=import_Wh,
            exportWh=export_Wh,
            importDeltaWh=import_Wh,
            exportDeltaWh=export_Wh,
        )

    def reserve(self, energy_Wh: int, price: int) -> int:
        fee = self.tariffs.grid_fee_ueur_per_kWh
        return energy_Wh * price // 1000 + energy_Wh * fee // 1000

    def clear(self, slot: int, positions: list[tuple[int, int, int, int]]) -> list[int]:
        """``clearForwards``: (seller, buyer, Wh, price) each; returns the ids."""
        self.call()
        ids = []
        for seller, buyer, energy, price in positions:
            fid = len(self.forwards) + 1
            reserved = self.reserve(energy, price)
            self.transfer(account(buyer), CONTRACT, reserved)
            self.emit(
                "ForwardCleared",
                forwardId=fid,
                slot=slot,
                seller=seller,
                buyer=buyer,
                energyWh=energy,
                priceUeurPerKWh=price,
                reservedUeur=reserved,
            )
            self.forwards[fid] = {
                "slot": slot,
                "seller": seller,
                "buyer": buyer,
                "energy": energy,
                "price": price,
                "reserved": reserved,
            }
            ids.append(fid)
        return ids

    def fill(self, slot: int, seller: int, buyer: int, energy: int, price: int, **ids: int) -> None:
        cost = energy * price // 1000
        fee = energy * self.tariffs.grid_fee_ueur_per_kWh // 1000
        self.balances[account(buyer)] -= cost + fee
        self.balances[account(seller)] += cost
        self.balances[FEES] = self.balances.get(FEES, 0) + fee
        self.left[(slot, seller)][0] -= energy
        self.left[(slot, buyer)][1] -= energy
        self.emit(
            "FillSettled",
            slot=slot,
            seller=seller,
            buyer=buyer,
            offerId=ids.get("offerId", 0),
            bidId=ids.get("bidId", 0),
            energyWh=energy,
            priceUeurPerKWh=price,
            costUeur=cost,
            feeUeur=fee,
        )

    def settle(self, slot: int, ids: list[int]) -> None:
        """``settleForwards``: release, deliver what both parties' metered energy allows."""
        self.call()
        fee_rate = self.tariffs.grid_fee_ueur_per_kWh
        for fid in ids:
            p = self.forwards[fid]
            seller, buyer, energy, price = p["seller"], p["buyer"], p["energy"], p["price"]
            reserved = p["reserved"]
            self.transfer(CONTRACT, account(buyer), reserved)
            credits = self.left.get((slot, seller), [0, 0])[0]
            imports = self.left.get((slot, buyer), [0, 0])[1]
            delivered = min(energy, credits, imports)
            while delivered and delivered * price // 1000 + delivered * fee_rate // 1000 > reserved:
                delivered -= 1
            cost, fee = delivered * price // 1000, delivered * fee_rate // 1000
            if delivered:
                self.fill(slot, seller, buyer, delivered, price)
            self.emit(
                "ForwardSettled",
                forwardId=fid,
                slot=slot,
                seller=seller,
                buyer=buyer,
                deliveredWh=delivered,
                shortfallWh=energy - delivered,
                costUeur=cost,
                feeUeur=fee,
                refundUeur=reserved - cost - fee,
            )

    def seal(self, slot: int) -> None:
        self.call()
        self.emit("SlotSealed", slot=slot, digestHead="0x" + "ab" * 32)

    def inputs(self) -> AuditInputs:
        return AuditInputs(
            chain_id=1337,
            contract=CONTRACT,
            deployment_block=0,
            head_block=self.block,
            mirror_block=self.block,
            events=list(self.events),
            registrations=[],
            balances=dict(self.balances),
            total_supply_ueur=self.supply,
            meter_states={},
            household_meters={},
        )


def book() -> Chain:
    """Seller 1 sells 1000 Wh to buyer 2 (delivered whole) and 500 Wh to buyer 3 (300 Wh
    delivered: the seller exported less), both for ``SLOT``; buyer 2's position for the next
    slot is still open. The slot is sealed."""
    c = Chain()
    c.register(1)
    c.register(2, 1_000_000)
    c.register(3, 1_000_000)
    c.clear(SLOT, [(1, 2, 1_000, 100_000), (1, 3, 500, 90_000)])
    c.clear(SLOT + 1, [(1, 2, 200, 100_000)])
    c.meter(SLOT, 1, 0, 1_300)
    c.meter(SLOT, 2, 1_200, 0)
    c.meter(SLOT, 3, 800, 0)
    c.settle(SLOT, [1, 2])
    c.seal(SLOT)
    return c


def tamper(inputs: AuditInputs, name: str, nth: int = 0, **changes: Any) -> Event:
    """Change the ``nth`` ``name`` event's arguments; returns the new event."""
    i = [k for k, e in enumerate(inputs.events) if e.name == name][nth]
    new = dataclasses.replace(inputs.events[i], args={**inputs.events[i].args, **changes})
    inputs.events[i] = new
    return new


def drop(inputs: AuditInputs, name: str, nth: int = 0) -> Event:
    i = [k for k, e in enumerate(inputs.events) if e.name == name][nth]
    return inputs.events.pop(i)


def messages(findings: list[Finding]) -> list[str]:
    assert {f.check for f in findings} <= {"forwards"}
    return [f.message for f in findings]


def only(findings: list[Finding], fragment: str) -> Finding:
    hits = [f for f in findings if fragment in f.message]
    assert len(hits) == 1, messages(findings)
    return hits[0]


# ── the clean book ──


def test_a_clean_book_has_no_finding_and_its_figures_add_up() -> None:
    inputs = book().inputs()
    assert check_forwards(inputs) == []
    assert check_money(inputs) == []
    assert check_energy(inputs) == []
    summary = forward_summary(inputs)
    assert summary.as_dict() == {
        "positions": 3,
        "settled": 2,
        "open_positions": 1,
        "cleared_Wh": 1_700,
        "delivered_Wh": 1_300,
        "shortfall_Wh": 200,
        "reserved_open_ueur": 200 * 100_000 // 1000 + 200 * 20_000 // 1000,
        "escrow_ueur": 24_000,
    }
    assert forward_summary(inputs, SLOT + 1, SLOT + 1).positions == 1


def test_the_short_position_delivers_what_the_seller_exported() -> None:
    settled = [e for e in book().events if e.name == "ForwardSettled"]
    assert [(e.args["deliveredWh"], e.args["shortfallWh"]) for e in settled] == [
        (1_000, 0),
        (300, 200),
    ]
    # 500 Wh at 90,000 plus the 20,000 grid fee were reserved; 300 Wh of it were spent.
    assert settled[1].args["refundUeur"] == 55_000 - 27_000 - 6_000


def test_a_history_without_forwards_has_none() -> None:
    c = Chain()
    c.register(1)
    c.register(2, 1_000_000)
    c.meter(SLOT, 1, 0, 500)
    c.meter(SLOT, 2, 500, 0)
    c.call()
    c.fill(SLOT, 1, 2, 400, 100_000, offerId=1, bidId=1)
    c.fill(SLOT, 1, 2, 100, 100_000, offerId=1)  # a direct take: bid id 0 alone
    inputs = c.inputs()
    assert not has_forwards(inputs)
    assert check_forwards(inputs) == []


# ── every field of the book, tampered ──


def test_a_settlement_of_a_position_never_cleared() -> None:
    inputs = book().inputs()
    tamper(inputs, "ForwardSettled", 0, forwardId=9)
    assert "forward 9 settled but never cleared" in messages(check_forwards(inputs))
    # Its delivery is then claimed by nobody, and position 1's reservation stays in escrow.
    found = check_forwards(inputs)
    assert any("no ForwardSettled claims" in m for m in messages(found))
    assert any(m.startswith("the escrow") for m in messages(found))


@pytest.mark.parametrize("key", ["slot", "seller", "buyer"])
def test_a_settlement_that_names_another_position(key: str) -> None:
    inputs = book().inputs()
    e = tamper(inputs, "ForwardSettled", 0)
    tamper(inputs, "ForwardSettled", 0, **{key: int(e.args[key]) + 7})
    f = only(check_forwards(inputs), "another position")
    assert key in f.message and f.evidence["cleared_vs_settled"][key][1] == int(e.args[key]) + 7


def test_delivered_and_short_must_add_up_to_the_energy_cleared() -> None:
    inputs = book().inputs()
    tamper(inputs, "ForwardSettled", 1, shortfallWh=100)
    f = only(check_forwards(inputs), "the 500 Wh cleared")
    assert (f.slot, f.household, f.evidence["forward_id"]) == (SLOT, 3, 2)


def test_a_cost_that_is_not_delivered_wh_times_price() -> None:
    inputs = book().inputs()
    tamper(inputs, "ForwardSettled", 1, costUeur=27_001, refundUeur=21_999)
    found = check_forwards(inputs)
    only(found, "cost 27001 ueur != delivered Wh x price / 1000 = 27000")
    only(found, "its delivery fill differs from the position (costUeur)")


def test_a_refund_that_is_not_reserved_minus_cost_and_fee() -> None:
    inputs = book().inputs()
    tamper(inputs, "ForwardSettled", 1, refundUeur=22_001)
    assert messages(check_forwards(inputs)) == [
        "forward 2: refund 22001 ueur != reserved - cost - fee = 22000 ueur"
    ]


def test_cost_and_fee_beyond_the_reservation() -> None:
    inputs = book().inputs()
    tamper(inputs, "ForwardSettled", 1, feeUeur=40_000, refundUeur=0)
    found = check_forwards(inputs)
    only(found, "exceed the 55000 ueur reserved")
    only(found, "refund 0 ueur != reserved - cost - fee")


def test_a_reservation_that_is_not_the_formula_at_the_clearing_tariffs() -> None:
    c = Chain()
    c.register(1)
    c.register(2, 1_000_000)
    c.set_tariffs(Tariffs(80_000, 300_000, 30_000))
    c.clear(SLOT, [(1, 2, 1_000, 100_000)])  # reserves 100,000 + 30,000
    inputs = c.inputs()
    assert check_forwards(inputs) == []
    # The same reservation under the earlier grid fee (20,000) is 10,000 ueur too much.
    tamper(inputs, "TariffsSet", 1, gridFeeUeurPerKWh=20_000)
    f = only(check_forwards(inputs), "reserved 130000 ueur")
    assert f.evidence["expected_reserved_ueur"] == 120_000


def test_a_reservation_tampered_on_the_event() -> None:
    inputs = book().inputs()
    tamper(inputs, "ForwardCleared", 0, reservedUeur=119_999)
    found = check_forwards(inputs)
    only(found, "forward 1 reserved 119999 ueur")
    only(found, "forward 1: the reservation is not a transfer of 119999 ueur")
    only(found, "forward 1: the release is not a transfer of 119999 ueur")
    only(found, "refund 0 ueur != reserved - cost - fee = -1 ueur")
    only(found, "exceed the 119999 ueur reserved")


def test_a_reservation_taken_from_another_account() -> None:
    inputs = book().inputs()
    tamper(inputs, "Transfer", 2, **{"from": account(3)})  # the first reservation
    f = only(check_forwards(inputs), "the reservation is not a transfer")
    assert f.evidence["transfer"]["from"] == account(3)
    assert f.evidence["expected_transfer"]["from"] == account(2)


def test_a_release_paid_to_another_account() -> None:
    inputs = book().inputs()
    release = next(e for e in inputs.events if e.name == "Transfer" and e.args["from"] == CONTRACT)
    tamper(inputs, "Transfer", inputs.named("Transfer").index(release), to=account(3))
    f = only(check_forwards(inputs), "the release is not a transfer")
    assert f.household == 2 and f.evidence["transfer"]["to"] == account(3)


def test_a_delivery_without_its_fill() -> None:
    inputs = book().inputs()
    fill = drop(inputs, "FillSettled", 0)
    assert fill.args["offerId"] == fill.args["bidId"] == 0
    f = only(check_forwards(inputs), "forward 1 delivered 1000 Wh without its fill")
    assert f.evidence["expected_fill"]["energyWh"] == 1_000


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("slot", SLOT + 5),
        ("seller", 3),
        ("buyer", 3),
        ("energyWh", 999),
        ("priceUeurPerKWh", 99_000),
        ("costUeur", 1),
        ("feeUeur", 1),
    ],
)
def test_a_delivery_fill_that_differs_from_its_position(key: str, value: int) -> None:
    inputs = book().inputs()
    tamper(inputs, "FillSettled", 0, **{key: value})
    f = only(check_forwards(inputs), "its delivery fill differs from the position")
    assert f.message.endswith(f"({key})")


def test_a_delivery_fill_in_another_transaction_is_claimed_by_nobody() -> None:
    inputs = book().inputs()
    i = next(k for k, e in enumerate(inputs.events) if e.name == "FillSettled")
    inputs.events[i] = dataclasses.replace(inputs.events[i], tx_hash="0x" + "99" * 32)
    found = check_forwards(inputs)
    only(found, "forward 1 delivered 1000 Wh without its fill")
    only(found, "a forward delivery of 1000 Wh")


def test_a_forward_delivery_without_a_forward() -> None:
    c = Chain()
    c.register(1)
    c.register(2, 1_000_000)
    c.meter(SLOT, 1, 0, 500)
    c.meter(SLOT, 2, 500, 0)
    c.call()
    c.fill(SLOT, 1, 2, 400, 100_000)  # offer id 0 and bid id 0
    inputs = c.inputs()
    assert has_forwards(inputs)
    f = only(check_forwards(inputs), "no ForwardSettled claims")
    assert (f.slot, f.household, f.evidence["fill"]["energyWh"]) == (SLOT, 2, 400)


def test_a_settlement_that_delivered_nothing_leaves_a_fill_before_it_unclaimed() -> None:
    inputs = book().inputs()
    tamper(
        inputs,
        "ForwardSettled",
        0,
        deliveredWh=0,
        shortfallWh=1_000,
        costUeur=0,
        feeUeur=0,
        refundUeur=120_000,
    )
    only(check_forwards(inputs), "a forward delivery of 1000 Wh")


def test_a_position_settled_twice() -> None:
    c = book()
    c.settle(SLOT, [2])
    inputs = c.inputs()
    found = check_forwards(inputs)
    only(found, "forward 2 settled twice")
    # The second release drained the escrow of the open position's reservation.
    only(found, "the escrow")


def test_an_id_cleared_twice() -> None:
    inputs = book().inputs()
    tamper(inputs, "ForwardCleared", 1, forwardId=1)
    found = check_forwards(inputs)
    f = only(found, "forward 1 cleared twice")
    assert f.household == 3


def test_an_escrow_that_differs_from_the_open_reservations() -> None:
    inputs = book().inputs()
    inputs.balances[CONTRACT] += 1
    f = only(check_forwards(inputs), "the escrow")
    assert (f.slot, f.household) == (None, None)
    assert (f.evidence["escrow_ueur"], f.evidence["reserved_open_ueur"]) == (24_001, 24_000)
    assert f.evidence["open_forwards"] == [3]


def test_a_sealed_slot_with_a_position_neither_delivered_nor_settled() -> None:
    c = book()
    c.seal(SLOT + 1)
    f = only(
        check_forwards(c.inputs()), f"forward of slot {SLOT + 1} neither delivered nor settled"
    )
    assert (f.slot, f.household, f.evidence["forward_id"]) == (SLOT + 1, 2, 3)


def test_an_account_rotation_moves_where_the_release_goes() -> None:
    c = Chain()
    c.register(1)
    c.register(2, 1_000_000)
    c.clear(SLOT, [(1, 2, 100, 100_000)])
    c.call()
    new = checksum("0x" + "22" * 20)
    c.emit("AccountRotated", household=2, oldAccount=account(2), newAccount=new)
    c.call()
    c.emit("Transfer", **{"from": CONTRACT, "to": new, "value": 12_000})
    c.emit(
        "ForwardSettled",
        forwardId=1,
        slot=SLOT,
        seller=1,
        buyer=2,
        deliveredWh=0,
        shortfallWh=100,
        costUeur=0,
        feeUeur=0,
        refundUeur=12_000,
    )
    inputs = c.inputs()
    inputs.balances[CONTRACT] = 0
    assert check_forwards(inputs) == []


# ── the report ──


def test_a_report_without_forwards_reads_as_it_always_did() -> None:
    c = Chain()
    c.register(1)
    report = audit_inputs(c.inputs())
    d = report.as_dict()
    assert list(d) == ["ok", "summary", "checks", "findings", "neighbourhood", "feeder"]
    assert list(d["checks"]) == ["provenance", "energy", "money", "integrity", "feeder"]
    assert report.forwards is None and "forwards" not in report_html(report)


def test_a_report_with_forwards_carries_the_book_and_its_check() -> None:
    report = audit_inputs(book().inputs(), from_slot=SLOT, to_slot=SLOT)
    d = report.as_dict()
    assert d["checks"]["forwards"] == {"ran": True, "findings": 0}
    assert list(d["checks"]) == ["provenance", "energy", "money", "integrity", "forwards", "feeder"]
    assert d["forwards"]["positions"] == 2 and d["forwards"]["open_positions"] == 0
    assert d["forwards"]["escrow_ueur"] == 24_000  # the escrow is the chain's, whatever the range
    assert "<h2>Day-ahead forwards</h2>" in report_html(report)


def test_forward_findings_sort_after_integrity_and_keep_their_slot() -> None:
    c = book()
    c.seal(SLOT + 1)
    report = audit_inputs(c.inputs(), from_slot=SLOT + 1)
    forwards = [f for f in report.findings if f.check == "forwards"]
    assert [f.slot for f in forwards] == [SLOT + 1]
    assert report.as_dict()["checks"]["forwards"]["findings"] == 1


# ── the settlement's arithmetic, for any book ──

positions = st.lists(
    st.tuples(
        st.integers(1, 3),  # seller
        st.integers(4, 6),  # buyer
        st.integers(1, 5_000),  # Wh
        st.integers(80_000, 280_000),  # price, within the tariffs
    ),
    min_size=1,
    max_size=8,
)
metered = st.lists(st.integers(0, 6_000), min_size=6, max_size=6)


@settings(max_examples=150, deadline=None)
@given(positions, metered, st.integers(0, 2_000_000), st.booleans())
def test_any_book_settles_conserved(
    book_: list[tuple[int, int, int, int]], energy: list[int], topup: int, leave_open: bool
) -> None:
    """Whatever the positions and the metered energy, each position delivers + falls short by
    exactly its energy, never more than the metered energy allows, and balances + escrow +
    fees equal the top-ups: the forwards, money and energy checks all find nothing."""
    c = Chain()
    for h in range(1, 7):
        c.register(h, topup if h >= 4 else 0)
    affordable = []
    spend = {h: topup for h in range(4, 7)}
    for seller, buyer, wh, price in book_:
        if c.reserve(wh, price) <= spend[buyer]:  # the contract refuses what a buyer can't pay
            spend[buyer] -= c.reserve(wh, price)
            affordable.append((seller, buyer, wh, price))
    ids = c.clear(SLOT, affordable) if affordable else []
    for h in range(1, 7):
        c.meter(SLOT, h, energy[h - 1] if h >= 4 else 0, energy[h - 1] if h < 4 else 0)
    settled = ids[:-1] if leave_open else ids
    if settled:
        c.settle(SLOT, settled)
    inputs = c.inputs()
    assert check_forwards(inputs) == []
    assert check_money(inputs) == []
    assert check_energy(inputs) == []
    for e in inputs.named("ForwardSettled"):
        p = c.forwards[e.args["forwardId"]]
        assert e.args["deliveredWh"] + e.args["shortfallWh"] == p["energy"]
    households = sum(c.balances.get(account(h), 0) for h in range(1, 7))
    escrow, fees = c.balances.get(CONTRACT, 0), c.balances.get(FEES, 0)
    assert households + escrow + fees == 3 * topup == c.supply
    assert escrow == sum(c.forwards[f]["reserved"] for f in set(ids) - set(settled))
    summary = forward_summary(inputs)
    assert summary.delivered_Wh + summary.shortfall_Wh == sum(
        c.forwards[f]["energy"] for f in settled
    )


# ── on the embedded chain ──


def forward_day(market: Market) -> tuple[Home, Home, Home, Home]:
    """Seller 0 sells 500 Wh day-ahead to buyer 2 and exports 1,000 Wh (delivered whole, the
    rest goes to the real-time market); seller 1 sells 600 Wh to buyer 3 but exports only
    400 Wh (a deviation: 200 Wh short). Buyer 2 also holds an open position for the next slot."""
    s0, s1, b0, b1 = market.homes
    market.worker.clear_forwards(
        SLOT, [Forward(s0.id, b0.id, 500, 100_000), Forward(s1.id, b1.id, 600, 100_000)]
    )
    market.worker.clear_forwards(SLOT + 1, [Forward(s0.id, b0.id, 300, 90_000)])
    market.meter_slot(SLOT, {s0.id: (0, 1_000), s1.id: (0, 400), b0.id: (800, 0), b1.id: (800, 0)})
    market.worker.settle_slot(SLOT)
    return s0, s1, b0, b1


def test_a_day_ahead_market_on_chain_audits_clean(market: Market) -> None:
    s0 = forward_day(market)[0]
    report = market.audit()
    assert report.findings == []
    settled = {
        e.args["forwardId"]: (e.args["deliveredWh"], e.args["shortfallWh"])
        for e in market.client.events(
            market.deployment.block_number, market.client.w3.eth.block_number
        )
        if e.name == "ForwardSettled"
    }
    assert settled == {1: (500, 0), 2: (400, 200)}
    reserved = 300 * 90_000 // 1000 + 300 * DEFAULT_TARIFFS.grid_fee_ueur_per_kWh // 1000
    d = report.as_dict()
    assert d["checks"]["forwards"] == {"ran": True, "findings": 0}
    assert d["forwards"] == {
        "positions": 3,
        "settled": 2,
        "open_positions": 1,
        "cleared_Wh": 1_400,
        "delivered_Wh": 900,
        "shortfall_Wh": 200,
        "reserved_open_ueur": reserved,
        "escrow_ueur": reserved,
    }
    # The real-time market settled what the forwards left: seller 0's other 500 Wh.
    with Session(market.engine) as session:
        fills = session.exec(select(FillRecord).where(FillRecord.slot == SLOT)).all()
    forward = [f for f in fills if f.offer_id == 0 and f.bid_id == 0]
    realtime = [f for f in fills if f.bid_id != 0]
    assert sorted(f.energy_Wh for f in forward) == [400, 500]
    assert sum(f.energy_Wh for f in realtime) == 500
    assert {f.seller for f in realtime} == {s0.id}


def test_a_forged_settlement_is_a_forwards_finding(market: Market) -> None:
    forward_day(market)
    index(market.client, market.engine, start_block=market.deployment.block_number)
    inputs = collect(market.client, market.engine, market.deployment.block_number)
    assert audit_inputs(inputs).ok
    tamper(inputs, "ForwardSettled", 1, shortfallWh=100)
    report = audit_inputs(inputs)
    event, row, forged = report.findings
    assert (forged.check, forged.slot, forged.household, forged.message) == (
        "forwards",
        SLOT,
        market.homes[3].id,
        "forward 2: delivered 400 + short 100 Wh != the 600 Wh cleared",
    )
    # The mirror holds the event and the position as the chain gave them, so integrity sees
    # the forgery too.
    assert event.check == row.check == "integrity"
    assert event.message.startswith("the mirrored ForwardSettled event")
    assert row.message == "a forward row in the database differs from the chain's events"


def test_a_forward_delivery_edited_in_the_database_is_flagged(market: Market) -> None:
    forward_day(market)
    with Session(market.engine) as session, session.begin():
        row = session.exec(
            select(FillRecord).where(
                FillRecord.slot == SLOT, FillRecord.offer_id == 0, FillRecord.bid_id == 0
            )
        ).first()
        assert row is not None
        row.energy_Wh -= 100
        session.add(row)
    report = market.audit()
    assert report.findings
    assert {(f.check, f.slot) for f in report.findings} == {("integrity", SLOT)}
    assert any("fill row in the database differs" in f.message for f in report.findings)


def test_a_sealed_slot_whose_forward_was_never_settled_is_flagged(market: Market) -> None:
    """The buyer's meter never reported the slot: the contract refuses to settle the position
    (not due), the slot is settled and sealed all the same, and the reservation stays locked."""
    s0, _, b0, _ = market.homes
    market.worker.clear_forwards(SLOT, [Forward(s0.id, b0.id, 500, 100_000)])
    readings = [market.sign(h, SLOT, 0, 1_000) for h in market.homes if h is not b0]
    store_signed_readings(market.engine, readings)
    market.client.commit_readings(market.chain.operator, readings)
    market.worker.settle_slot(SLOT)
    report = market.audit()
    found = [f for f in report.findings if f.check == "forwards"]
    assert [(f.slot, f.household) for f in found] == [(SLOT, b0.id)]
    assert found[0].message.startswith(f"forward of slot {SLOT} neither delivered nor settled")
    assert report.as_dict()["forwards"]["open_positions"] == 1


def test_a_forward_position_edited_in_the_database_is_flagged(market: Market) -> None:
    forward_day(market)
    with Session(market.engine) as session, session.begin():
        row = session.get(ForwardRecord, 2)
        assert row is not None and (row.delivered_Wh, row.shortfall_Wh) == (400, 200)
        row.shortfall_Wh = 0
        session.add(row)
    report = market.audit()
    (f,) = report.findings
    assert (f.check, f.slot, f.household) == ("integrity", SLOT, market.homes[3].id)
    assert f.message == "a forward row in the database differs from the chain's events"
    assert f.evidence["key"] == [2]


def test_the_statements_show_both_stages_from_the_mirror(market: Market) -> None:
    s0, s1, b0, b1 = forward_day(market)
    index(market.client, market.engine, start_block=market.deployment.block_number)
    short_buyer, seller = (
        load_statement(market.engine, b1.id, SLOT, SLOT + 1),
        load_statement(market.engine, s0.id, SLOT, SLOT + 1),
    )
    (line,) = short_buyer.lines
    assert (line.day_ahead_bought_Wh, line.day_ahead_short_bought_Wh) == (400, 200)
    assert line.day_ahead_bought_Wh + line.realtime_bought_Wh + line.grid_import_Wh == 800
    (sold,) = seller.lines
    assert (sold.day_ahead_sold_Wh, sold.realtime_sold_Wh) == (500, 500)
    assert [p.forward_id for p in seller.forwards] == [1, 3]
    # Buyer 0's position for the next slot still holds its reservation in escrow.
    buyer = load_statement(market.engine, b0.id, SLOT, SLOT + 1)
    assert (buyer.open_forwards, buyer.escrow_reserved_ueur) == (
        1,
        market.client.balance_of(market.client.address),
    )
    assert s1.id not in {p.buyer for p in buyer.forwards}
