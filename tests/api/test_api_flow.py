"""What users do through the API, end to end: register, top up, post readings, set orders,
settle, then read balances, trades and statements, checked against the chain's events."""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.api.conftest import OP, Api, past_slot


@pytest.mark.parametrize("api", ["embedded-node-sqlite"], indirect=True)
def test_the_flow_through_the_embedded_node_process(api: Api) -> None:
    """What `voisin serve` runs by default: the embedded chain in its node process."""
    assert api.services.chain.node is not None and api.services.chain.node.alive
    test_three_households_four_slots_figures_match_the_chain(api)


def test_three_households_four_slots_figures_match_the_chain(api: Api) -> None:
    seller = api.register(prosumer=True, name="Amélie")
    buyer = api.register(prosumer=False, topup_ueur=3_000_000, name="Chloé")
    other = api.register(prosumer=True, topup_ueur=1_000_000)
    c = api.client
    first = past_slot(8)
    slots = range(first, first + 4)
    # Orders: the seller sets its own offer (its agent's default steps aside), the buyer a bid
    # for these four slots only; the third household keeps its agent's defaults.
    r = c.post(
        "/offers",
        json={"price_limit_ueur_per_kWh": 70_000, "first_slot": first},
        headers=seller.auth,
    )
    assert r.status_code == 202 and r.json()["status"] == "queued", r.text
    own_offer = r.json()["id"]
    r = c.post(
        "/bids",
        json={
            "price_limit_ueur_per_kWh": 180_000,
            "first_slot": first,
            "last_slot": first + 3,
            "max_Wh_per_slot": 900,
        },
        headers=buyer.auth,
    )
    assert r.status_code == 202, r.text
    for t, slot in enumerate(slots):
        batch = [
            api.reading(seller, slot, export_Wh=500 + 100 * t),
            api.reading(buyer, slot, import_Wh=700),
            api.reading(other, slot, import_Wh=150, export_Wh=50 * t),
        ]
        r = c.post("/readings", json={"readings": batch})
        assert r.status_code == 202 and r.json()["accepted"] == 3, r.text
    # Metered but not settled: nothing is the grid's yet.
    api.flush()
    before = c.get(
        f"/households/{buyer.id}/statement", params={"from": first, "to": first + 3},
        headers=buyer.auth,
    ).json()  # fmt: skip
    assert [line["status"] for line in before["lines"]] == ["pending"] * 4
    assert [line["pending_import_Wh"] for line in before["lines"]] == [700] * 4
    assert (before["grid_import_Wh"], before["grid_import_cost_ueur"]) == (0, 0)
    assert (before["pending_slots"], before["savings_ueur"]) == (4, 0)
    outcomes = []
    for slot in slots:
        r = c.post(f"/market/slots/{slot}/settle", headers=OP)
        assert r.status_code == 200, r.text
        outcomes.append(r.json())
        assert c.get(f"/market/slots/{slot}").json() == r.json()
    assert sum(o["matched_Wh"] for o in outcomes) > 0

    offers = c.get("/offers", params={"household": seller.id}, headers=seller.auth).json()
    statuses = {o["id"]: (o["status"], o["cancel_requested"]) for o in offers["items"]}
    assert statuses[own_offer] == ("open", False)
    assert [s for i, s in statuses.items() if i != own_offer] == [("cancelled", False)]

    # Everything the chain says happened, from its events.
    client = api.services.client
    head = int(api.services.chain.w3.eth.block_number)
    events = client.events(api.services.deployment.block_number, head)
    fills = [e.args for e in events if e.name == "FillSettled"]
    paid: dict[int, int] = defaultdict(int)
    fees: dict[int, int] = defaultdict(int)
    earned: dict[int, int] = defaultdict(int)
    for f in fills:
        paid[int(f["buyer"])] += int(f["costUeur"])
        fees[int(f["buyer"])] += int(f["feeUeur"])
        earned[int(f["seller"])] += int(f["costUeur"])
    topups = {seller.id: 0, buyer.id: 3_000_000, other.id: 1_000_000}

    trades = c.get("/trades", headers=OP).json()
    assert trades["total"] == len(fills)
    assert sum(t["energy_Wh"] for t in trades["items"]) == sum(int(f["energyWh"]) for f in fills)
    own = c.get("/trades", headers=buyer.auth).json()["items"]
    assert own and all(buyer.id in (t["buyer"], t["seller"]) for t in own)

    for m in (seller, buyer, other):
        bal = c.get(f"/households/{m.id}/balance", headers=m.auth).json()
        on_chain = client.balance_of(m.account)
        assert (
            bal["balance_ueur"] == on_chain == topups[m.id] - paid[m.id] - fees[m.id] + earned[m.id]
        )
        st = c.get(
            f"/households/{m.id}/statement", params={"from": first, "to": first + 3}, headers=m.auth
        ).json()
        assert (st["paid_local_ueur"], st["fees_ueur"], st["earned_local_ueur"]) == (
            paid[m.id],
            fees[m.id],
            earned[m.id],
        )
        assert len(st["lines"]) == 4 and st["pending_slots"] == 0
        for line in st["lines"]:
            assert line["status"] == "settled" and line["pending_import_Wh"] == 0
            assert line["bought_Wh"] + line["grid_import_Wh"] == line["import_Wh"]
            assert line["sold_Wh"] + line["grid_export_Wh"] == line["export_Wh"]
        assert st["savings_ueur"] == st["grid_only_cost_ueur"] - st["net_cost_ueur"]
    # The seller's credits per slot: exported minus sold.
    credits = c.get(f"/households/{seller.id}/balance", headers=seller.auth).json()["credits"]
    assert [line["slot"] for line in credits] == list(slots)
    assert all(line["credits_Wh"] == line["export_Wh"] - line["sold_Wh"] for line in credits)


def test_readings_retried_are_idempotent_and_conflicts_are_refused(api: Api) -> None:
    m = api.register(prosumer=True)
    slot = past_slot(3)
    reading = api.reading(m, slot, import_Wh=10, export_Wh=20)
    first = api.client.post("/readings", json={"readings": [reading]})
    again = api.client.post("/readings", json={"readings": [reading]})
    assert first.status_code == again.status_code == 202
    assert again.json()["duplicates"] == 1 and again.json()["accepted"] == 0
    # A tampered copy is a forgery (422); a validly signed different reading a conflict (409).
    tampered = {**reading, "export_Wh": reading["export_Wh"] + 1}
    forged = api.client.post("/readings", json={"readings": [tampered]})
    assert forged.status_code == 422 and forged.json()["code"] == "bad_signature"
    m.import_Wh, m.export_Wh = m.import_Wh - 10, m.export_Wh - 20
    different = api.reading(m, slot, import_Wh=10, export_Wh=21)
    conflict = api.client.post("/readings", json={"readings": [different]})
    assert conflict.status_code == 409 and conflict.json()["code"] == "conflicting_reading"
    m.export_Wh -= 1
    api.flush()
    assert api.services.client.meter_state(m.meter.address).last_slot == slot
    # Retried after commit: still a duplicate, still nothing new on chain.
    assert api.client.post("/readings", json={"readings": [reading]}).status_code == 202
    assert api.flush().committed == 0
    assert api.services.client.slot_energy(m.id, slot).export_Wh == 20


def test_cancelling_an_order_takes_it_off_the_chain(api: Api) -> None:
    m = api.register(prosumer=True)
    r = api.client.post(
        "/offers",
        json={"price_limit_ueur_per_kWh": 100_000, "first_slot": past_slot(1)},
        headers=m.auth,
    )
    order = r.json()["id"]
    api.flush()
    listed = api.client.get("/offers", params={"status": "open"}, headers=m.auth).json()
    chain_id = next(o["chain_id"] for o in listed["items"] if o["id"] == order)
    assert api.services.client.offer(chain_id).open
    assert api.client.delete(f"/offers/{order}", headers=m.auth).status_code == 202
    api.flush()
    assert not api.services.client.offer(chain_id).open
    again = api.client.delete(f"/offers/{order}", headers=m.auth)
    assert again.status_code == 409 and again.json()["code"] == "order_closed"


def test_health_and_metrics_report_the_backlog(api: Api) -> None:
    m = api.register(prosumer=False)
    api.client.post("/readings", json={"readings": [api.reading(m, past_slot(2), import_Wh=5)]})
    health = api.client.get("/health").json()
    assert health["ok"] and health["backlog"]["readings"] == 1
    metrics = api.client.get("/metrics").text
    assert 'voisin_outbox_backlog{kind="readings"} 1.0' in metrics
    assert "voisin_http_requests_total" in metrics
    api.flush()
    assert api.client.get("/health").json()["backlog"] == {"readings": 0, "orders": 0}
