"""Bad input gets the exact status and error code, and changes nothing in the database or on
chain. Each row is one request; the table runs on both backends."""

from __future__ import annotations

from typing import Any

from eth_account import Account

from ledger.readings.eip712 import Reading, sign_reading
from ledger.readings.intake import reading_to_json
from tests.api.conftest import OP, Api, past_slot

HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_bad_input_table(api: Api) -> None:
    c = api.client
    seller = api.register(prosumer=True)
    buyer = api.register(prosumer=False, topup_ueur=1_000)
    slot = past_slot(6)
    # One accepted reading per meter, so stale and decreasing registers can be tried.
    assert (
        c.post(
            "/readings",
            json={
                "readings": [
                    api.reading(seller, slot, export_Wh=500),
                    api.reading(buyer, slot, import_Wh=300),
                ]
            },
        ).status_code
        == 202
    )
    offer = c.post(
        "/offers",
        json={"price_limit_ueur_per_kWh": 90_000, "first_slot": slot},
        headers=seller.auth,
    ).json()["id"]
    api.flush()

    good = api.reading(seller, slot + 1, export_Wh=10)
    seller.export_Wh -= 10  # the table never submits it as is
    tampered = {**good, "export_Wh": good["export_Wh"] + 1000}
    future = reading_to_json(
        sign_reading(
            seller.meter.key,
            Reading(seller.meter.address, past_slot(-3), 10**6, 10**6),
            api.services.domain,
        )
    )
    stranger = Account.create()
    unknown = reading_to_json(
        sign_reading(stranger.key, Reading(stranger.address, slot + 1, 1, 1), api.services.domain)
    )
    stale = reading_to_json(
        sign_reading(
            seller.meter.key, Reading(seller.meter.address, slot - 1, 0, 600), api.services.domain
        )
    )
    decreased = reading_to_json(
        sign_reading(
            seller.meter.key, Reading(seller.meter.address, slot + 1, 0, 100), api.services.domain
        )
    )
    low_s = sign_reading(
        seller.meter.key, Reading(seller.meter.address, slot + 1, 0, 510), api.services.domain
    )
    s_value = int.from_bytes(low_s.s, "big")
    high_s = {
        **reading_to_json(low_s),
        "v": 55 - low_s.v,
        "s": "0x" + (N - s_value).to_bytes(32, "big").hex(),
    }
    assert N - s_value > HALF_N
    ok_offer = {"price_limit_ueur_per_kWh": 90_000, "first_slot": slot}
    sh, bh = seller.auth, buyer.auth

    # (name, method, path, json body or raw bytes, headers, status, code)
    table: list[tuple[str, str, str, Any, dict[str, str], int, str]] = [
        (
            "meter not an address",
            "POST",
            "/households",
            {"meter": "0x123", "prosumer": True},
            OP,
            422,
            "invalid_input",
        ),
        (
            "prosumer as a string",
            "POST",
            "/households",
            {"meter": Account.create().address, "prosumer": "yes"},
            OP,
            422,
            "invalid_input",
        ),
        (
            "unknown field",
            "POST",
            "/households",
            {"meter": Account.create().address, "prosumer": True, "admin": True},
            OP,
            422,
            "invalid_input",
        ),
        (
            "meter already registered",
            "POST",
            "/households",
            {"meter": seller.meter.address, "prosumer": True},
            OP,
            409,
            "meter_already_registered",
        ),
        (
            "negative baseline",
            "POST",
            "/households",
            {"meter": Account.create().address, "prosumer": True, "import_baseline_Wh": -1},
            OP,
            422,
            "invalid_input",
        ),
        (
            "zero top-up",
            "POST",
            "/topups",
            {"household": buyer.id, "amount_ueur": 0},
            OP,
            422,
            "invalid_input",
        ),
        (
            "negative top-up",
            "POST",
            "/topups",
            {"household": buyer.id, "amount_ueur": -5},
            OP,
            422,
            "invalid_input",
        ),
        (
            "huge top-up",
            "POST",
            "/topups",
            {"household": buyer.id, "amount_ueur": 10**30},
            OP,
            422,
            "invalid_input",
        ),
        (
            "top-up as a string",
            "POST",
            "/topups",
            {"household": buyer.id, "amount_ueur": "100"},
            OP,
            422,
            "invalid_input",
        ),
        (
            "top-up of an unknown household",
            "POST",
            "/topups",
            {"household": 9999, "amount_ueur": 100},
            OP,
            404,
            "unknown_household",
        ),
        ("no readings", "POST", "/readings", {"readings": []}, {}, 422, "invalid_input"),
        (
            "reading from the future",
            "POST",
            "/readings",
            {"readings": [future]},
            {},
            422,
            "future_slot",
        ),
        (
            "tampered reading",
            "POST",
            "/readings",
            {"readings": [tampered]},
            {},
            422,
            "bad_signature",
        ),
        (
            "unregistered meter",
            "POST",
            "/readings",
            {"readings": [unknown]},
            {},
            422,
            "unknown_meter",
        ),
        ("replayed older slot", "POST", "/readings", {"readings": [stale]}, {}, 422, "stale_slot"),
        (
            "register decreased",
            "POST",
            "/readings",
            {"readings": [decreased]},
            {},
            422,
            "register_decreased",
        ),
        ("high-s signature", "POST", "/readings", {"readings": [high_s]}, {}, 422, "bad_signature"),
        (
            "r not 32 bytes",
            "POST",
            "/readings",
            {"readings": [{**good, "r": "0x1234"}]},
            {},
            422,
            "invalid_input",
        ),
        (
            "v out of range",
            "POST",
            "/readings",
            {"readings": [{**good, "v": 29}]},
            {},
            422,
            "invalid_input",
        ),
        (
            "negative register",
            "POST",
            "/readings",
            {"readings": [{**good, "import_Wh": -1}]},
            {},
            422,
            "invalid_input",
        ),
        (
            "register beyond uint64",
            "POST",
            "/readings",
            {"readings": [{**good, "export_Wh": 2**64}]},
            {},
            422,
            "invalid_input",
        ),
        (
            "too many readings",
            "POST",
            "/readings",
            {"readings": [good] * 1001},
            {},
            422,
            "invalid_input",
        ),
        (
            "offer below feed-in",
            "POST",
            "/offers",
            {**ok_offer, "price_limit_ueur_per_kWh": 1},
            sh,
            422,
            "price_out_of_bounds",
        ),
        (
            "offer above retail - fee",
            "POST",
            "/offers",
            {**ok_offer, "price_limit_ueur_per_kWh": 230_000},
            sh,
            422,
            "price_out_of_bounds",
        ),
        (
            "bid price beyond uint64",
            "POST",
            "/bids",
            {**ok_offer, "price_limit_ueur_per_kWh": 2**70},
            bh,
            422,
            "invalid_input",
        ),
        (
            "price as a float",
            "POST",
            "/offers",
            {**ok_offer, "price_limit_ueur_per_kWh": 1.5},
            sh,
            422,
            "invalid_input",
        ),
        (
            "last slot before first",
            "POST",
            "/offers",
            {**ok_offer, "last_slot": slot - 1},
            sh,
            422,
            "invalid_slot_range",
        ),
        (
            "zero Wh cap",
            "POST",
            "/offers",
            {**ok_offer, "max_Wh_per_slot": 0},
            sh,
            422,
            "invalid_input",
        ),
        ("slot zero", "POST", "/bids", {**ok_offer, "first_slot": 0}, bh, 422, "invalid_input"),
        ("offer from a household without PV", "POST", "/offers", ok_offer, bh, 403, "forbidden"),
        (
            "take of an unknown offer",
            "POST",
            "/offers/99999/take",
            {"slot": slot, "max_Wh": 5},
            bh,
            404,
            "unknown_offer",
        ),
        (
            "take of zero Wh",
            "POST",
            f"/offers/{offer}/take",
            {"slot": slot, "max_Wh": 0},
            bh,
            422,
            "invalid_input",
        ),
        (
            "take in a slot with nothing metered",
            "POST",
            f"/offers/{offer}/take",
            {"slot": slot + 50, "max_Wh": 5},
            bh,
            409,
            "insufficient_credits",
        ),
        ("cancel an unknown offer", "DELETE", "/offers/99999", None, sh, 404, "unknown_offer"),
        (
            "balance of an unknown household",
            "GET",
            "/households/9999/balance",
            None,
            OP,
            404,
            "unknown_household",
        ),
        (
            "statement ending before it starts",
            "GET",
            f"/households/{buyer.id}/statement?from={slot}&to={slot - 1}",
            None,
            bh,
            422,
            "invalid_input",
        ),
        (
            "statement of 366 days and one slot",
            "GET",
            f"/households/{buyer.id}/statement?from={slot}&to={slot + 96 * 366}",
            None,
            bh,
            422,
            "invalid_input",
        ),
        ("page size zero", "GET", "/offers?limit=0", None, bh, 422, "invalid_input"),
        ("page size too big", "GET", "/offers?limit=100000", None, bh, 422, "invalid_input"),
        (
            "settle a slot not yet ended",
            "POST",
            f"/market/slots/{past_slot(-2)}/settle",
            None,
            OP,
            409,
            "slot_not_closed",
        ),
        ("body is not JSON", "POST", "/topups", b"{not json", OP, 422, "invalid_input"),
        ("body too large", "POST", "/readings", b"x" * 1_000_001, {}, 413, "payload_too_large"),
    ]
    assert len(table) >= 25
    wrong = []
    for name, method, path, body, headers, status, code in table:
        before = api.snapshot()
        if isinstance(body, bytes):
            r = c.request(
                method, path, content=body, headers={**headers, "content-type": "application/json"}
            )
        else:
            r = c.request(method, path, json=body, headers=headers)
        got = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        if (r.status_code, got.get("code")) != (status, code):
            wrong.append(
                f"{name}: {r.status_code} {got.get('code')} (wanted {status} {code}) {r.text[:200]}"
            )
        elif not got.get("message"):
            wrong.append(f"{name}: no message in {got}")
        after = api.snapshot()
        if after != before:
            wrong.append(f"{name}: changed state {before} -> {after}")
    assert not wrong, "\n".join(wrong)
    # And the good reading that all those variants came from is still accepted afterwards.
    seller.export_Wh += 10
    assert c.post("/readings", json={"readings": [good]}).status_code == 202
