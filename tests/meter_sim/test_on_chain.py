"""The simulator against the contract on the embedded chain: every genuine reading is accepted,
every injected fault is rejected or flagged, and no fault mints credits."""

from __future__ import annotations

from collections import Counter
from datetime import date

import numpy as np
import pytest

from ledger import Chain, errors
from ledger.types import KEPT_SLOTS, SlotEnergy
from meter_sim import (
    Fault,
    FaultRates,
    Scenario,
    Status,
    default_scenario,
    deliver_in_process,
    envelopes,
    registers,
    sign_readings,
    simulate,
)
from tests.world import World, new_world


def register(w: World, sc: Scenario) -> list[int]:
    """Register the scenario's households with their seeded meters and baselines."""
    ids = []
    for spec, ident in zip(sc.households, sc.identities, strict=True):
        ids.append(
            w.client.register_household(
                w.operator,
                ident.account,
                ident.meter,
                prosumer=spec.prosumer,
                import_baseline_Wh=ident.import_baseline_Wh,
                export_baseline_Wh=ident.export_baseline_Wh,
            )
        )
    return ids


@pytest.mark.slow  # about 8 s: the embedded chain commits some 50 readings a second
def test_every_reading_the_simulator_produces_is_accepted_by_the_contract(
    embedded_chain: Chain,
) -> None:
    w = new_world(embedded_chain)
    sc = default_scenario(4, days=1, start=date(2026, 6, 22), seed=13, prosumer_share=0.5)
    assert any(h.battery for h in sc.households)
    ids = register(w, sc)
    flows = simulate(sc)
    readings = sign_readings(sc, flows, w.domain)
    committed: dict[tuple[int, int], tuple[int, int]] = {}
    for k in range(0, len(readings), 128):  # sent straight to the contract, no pre-validation
        result = w.client.commit_readings(w.operator, readings[k : k + 128])
        for e in result.named("ReadingCommitted"):
            a = e.args
            committed[(a["household"], a["slot"])] = (a["importDeltaWh"], a["exportDeltaWh"])
    assert len(committed) == len(readings) == 4 * 96
    imports, exports = registers(sc, flows)
    for h, (hid, ident) in enumerate(zip(ids, sc.identities, strict=True)):
        state = w.client.meter_state(ident.meter)
        assert (state.household, state.last_slot) == (hid, sc.first_slot + 95)
        assert (state.import_Wh, state.export_Wh) == (int(imports[h, -1]), int(exports[h, -1]))
        for t in range(96):
            assert committed[(hid, sc.first_slot + t)] == (
                int(flows.import_Wh[h, t]),
                int(flows.export_Wh[h, t]),
            )
        # The contract keeps the last KEPT_SLOTS slots for trading; older ones read as zeros.
        for t in range(96 - KEPT_SLOTS, 96):
            energy = w.client.slot_energy(hid, sc.first_slot + t)
            assert energy.import_Wh == int(flows.import_Wh[h, t])
            assert energy.export_Wh == int(flows.export_Wh[h, t])
            assert w.client.credits_of(hid, sc.first_slot + t) == int(flows.export_Wh[h, t])
        assert w.client.slot_energy(hid, sc.first_slot + 52) == SlotEnergy(0, 0, 0, 0)
    assert flows.export_Wh.sum() > 0


@pytest.mark.slow  # about 8 s, as above
def test_every_injected_fault_is_rejected_or_flagged_and_none_mints_credits(
    embedded_chain: Chain,
) -> None:
    w = new_world(embedded_chain)
    sc = default_scenario(5, days=1, start=date(2026, 6, 22), seed=17, prosumer_share=0.6)
    ids = register(w, sc)
    flows = simulate(sc)
    genuine = sign_readings(sc, flows, w.domain)
    rates = FaultRates(
        dropped=0.04,
        tampered=0.05,
        wrong_key=0.05,
        clock_skew=0.04,
        late=0.05,
        duplicate=0.05,
        replay=0.05,
    )
    sent = envelopes(sc, genuine, w.domain, rates)
    injected = Counter(e.fault for e in sent)
    assert all(injected[f] >= 3 for f in Fault), injected

    report = deliver_in_process(w.client, w.operator, sent, batch_size=150)
    assert len(report.outcomes) == len(sent)
    for o in report.outcomes:
        fault = o.envelope.fault
        if fault is None:
            assert o.status is Status.ACCEPTED, o
            assert "late" not in o.flags
        elif fault is Fault.DROPPED:
            assert o.status is Status.NOT_SENT
        elif fault in (Fault.TAMPERED, Fault.WRONG_KEY):
            assert (o.status, o.code) == (Status.REJECTED, "bad_signature"), o
        elif fault is Fault.CLOCK_SKEW:
            assert (o.status, o.code) == (Status.REJECTED, "future_slot"), o
        elif fault is Fault.REPLAY:
            assert (o.status, o.code) == (Status.REJECTED, "stale_slot"), o
        elif fault is Fault.DUPLICATE:
            assert (o.status, o.code) == (Status.REJECTED, "duplicate"), o
        else:  # late: stale if a later reading got there first, else accepted and flagged
            assert (o.status, o.code) == (Status.REJECTED, "stale_slot") or (
                o.status is Status.ACCEPTED and "late" in o.flags
            ), o
        assert o.status is Status.ACCEPTED or o.code or o.status is Status.NOT_SENT
    # A missing slot (dropped, refused or late) is flagged on the next accepted reading.
    assert any("gap" in o.flags for o in report.outcomes)

    # On chain: exactly the accepted readings, and credits only from them.
    accepted = [o.envelope.signed.reading for o in report.outcomes if o.status is Status.ACCEPTED]
    committed_slots = {(r.meter, r.slot) for r in accepted}
    events = w.client.events(0, w.chain.w3.eth.block_number)
    minted = [e.args for e in events if e.name == "ReadingCommitted"]
    assert {(m["meter"], m["slot"]) for m in minted} == committed_slots
    assert len(minted) == len(accepted)
    imports, exports = registers(sc, flows)
    index = {ident.meter: i for i, ident in enumerate(sc.identities)}
    for h, (hid, ident) in enumerate(zip(ids, sc.identities, strict=True)):
        last = max(r.slot for r in accepted if r.meter == ident.meter)
        state = w.client.meter_state(ident.meter)
        t_last = last - sc.first_slot
        assert state.last_slot == last
        assert (state.import_Wh, state.export_Wh) == (
            int(imports[h, t_last]),
            int(exports[h, t_last]),
        )
        credited = sum(m["exportDeltaWh"] for m in minted if m["household"] == hid)
        assert credited == int(exports[h, t_last]) - ident.export_baseline_Wh
    # Every slot a refused or dropped reading named, unless a genuine reading filled it, holds
    # no energy and no credits.
    for o in report.outcomes:
        rd = o.envelope.signed.reading
        if o.status is Status.ACCEPTED or (rd.meter, rd.slot) in committed_slots:
            continue
        if rd.meter not in index:
            continue
        hid = ids[index[rd.meter]]
        energy = w.client.slot_energy(hid, rd.slot)
        assert (energy.import_Wh, energy.export_Wh) == (0, 0), o
        assert w.client.credits_of(hid, rd.slot) == 0


@pytest.mark.slow  # about 5 s, as above
def test_replay_tamper_and_wrong_key_sent_straight_to_the_contract_are_refused(
    embedded_chain: Chain,
) -> None:
    w = new_world(embedded_chain)
    sc = default_scenario(
        2, days=1, start=date(2026, 6, 22), seed=19, prosumer_share=1.0, battery_share=0.0
    )
    ids = register(w, sc)
    flows = simulate(sc)
    genuine = sign_readings(sc, flows, w.domain)
    noon = 50 * 2  # slot index 50 of household 0 (two meters per slot)
    w.client.commit_readings(w.operator, genuine[: noon + 2])
    faulty = envelopes(sc, genuine[noon + 2 :], w.domain, FaultRates(tampered=0.5, wrong_key=0.5))
    tampered = next(e for e in faulty if e.fault is Fault.TAMPERED)
    wrong_key = next(e for e in faulty if e.fault is Fault.WRONG_KEY)
    replayed = genuine[noon - 8]
    hid = ids[0]
    credits_before = [w.client.credits_of(hid, s) for s in sc.slots]
    with pytest.raises(errors.StaleReading):
        w.client.commit_readings(w.operator, [replayed])
    with pytest.raises(errors.DuplicateReading):
        w.client.commit_readings(w.operator, [genuine[noon]])
    for env in (tampered, wrong_key):
        with pytest.raises(errors.InvalidSignature):
            w.client.commit_readings(w.operator, [env.signed])
    assert [w.client.credits_of(hid, s) for s in sc.slots] == credits_before
    assert flows.export_Wh[0, 50] > 0 and credits_before[50] == flows.export_Wh[0, 50]
    tampered_slot = tampered.signed.reading.slot
    assert w.client.slot_energy(ids[tampered.household], tampered_slot).export_Wh == 0
    # The slots the contract still keeps: the last KEPT_SLOTS up to slot index 50.
    kept = flows.export_Wh[0, 51 - KEPT_SLOTS : 51]
    assert int(np.sum(credits_before)) == int(kept.sum())
