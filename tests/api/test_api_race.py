"""Fifty households' takes race for one offer with 10 kWh left: at most 10 kWh is sold, and
every take that finds nothing left gets 409."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.api.conftest import Api, past_slot
from tests.api.test_api_security import _trade_ready


def test_fifty_concurrent_takes_never_oversell(api: Api) -> None:
    c = api.client
    seller = api.register(prosumer=True)
    buyers = [api.register(prosumer=False, topup_ueur=2_000_000) for _ in range(5)]
    slot = past_slot(3)
    readings = [api.reading(seller, slot, export_Wh=10_000)]
    readings += [api.reading(b, slot, import_Wh=4_000) for b in buyers]
    assert c.post("/readings", json={"readings": readings}).status_code == 202
    offer = c.post(
        "/offers",
        json={"price_limit_ueur_per_kWh": 80_000, "first_slot": slot},
        headers=seller.auth,
    ).json()["id"]
    api.flush()

    def take(i: int) -> tuple[int, dict[str, object]]:
        buyer = buyers[i % len(buyers)]
        r = c.post(
            f"/offers/{offer}/take", json={"slot": slot, "max_Wh": 1_000}, headers=buyer.auth
        )
        return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(take, range(50)))
    sold = sum(int(body["energy_Wh"]) for status, body in results if status == 200)  # type: ignore[call-overload]
    statuses = sorted({status for status, _ in results})
    assert sold == 10_000, results
    assert statuses == [200, 409], statuses
    assert sum(1 for status, _ in results if status == 200) == 10
    assert all(body["code"] == "insufficient_credits" for status, body in results if status == 409)
    # The chain agrees: the seller sold exactly its export, no more.
    energy = api.services.client.slot_energy(seller.id, slot)
    assert energy.sold_Wh == energy.export_Wh == 10_000


def test_a_take_shows_in_the_buyers_trades_and_balance_at_once(api: Api) -> None:
    """Read your writes: no outbox pass between the take and the buyer's next reads."""
    c = api.client
    _seller, buyer, slot, offer = _trade_ready(api)
    before = c.get(f"/households/{buyer.id}/balance", headers=buyer.auth).json()["balance_ueur"]
    taken = c.post(f"/offers/{offer}/take", json={"slot": slot, "max_Wh": 300}, headers=buyer.auth)
    assert taken.status_code == 200, taken.text
    paid = taken.json()["cost_ueur"] + taken.json()["fee_ueur"]
    trades = c.get("/trades", headers=buyer.auth).json()["items"]
    assert [(t["slot"], t["energy_Wh"]) for t in trades] == [(slot, 300)]
    after = c.get(f"/households/{buyer.id}/balance", headers=buyer.auth).json()["balance_ueur"]
    assert before - after == paid > 0
