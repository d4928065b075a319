"""Who may call what: every endpoint with every role (no token, a bad token, the household
itself, another household, the operator) and a forged meter signature."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_account import Account
from httpx import Response

from tests.api.conftest import OP, Api, past_slot

NONE: dict[str, str] = {}
BAD = {"Authorization": "Bearer vsn_not-a-real-token"}


def test_every_endpoint_with_every_role(api: Api) -> None:
    c = api.client
    own = api.register(prosumer=True, topup_ueur=1_000_000)
    other = api.register(prosumer=True, topup_ueur=1_000_000)
    slot = past_slot(4)
    # Metered energy so that a take can succeed: own exports, other imports.
    c.post(
        "/readings",
        json={
            "readings": [
                api.reading(own, slot, export_Wh=900),
                api.reading(other, slot, import_Wh=900),
            ]
        },
    )
    api.flush()

    def offer_of(who: Any) -> int:
        r = c.post(
            "/offers",
            json={"price_limit_ueur_per_kWh": 90_000, "first_slot": slot},
            headers=who.auth,
        )
        assert r.status_code == 202, r.text
        return int(r.json()["id"])

    def bid_of(who: Any) -> int:
        r = c.post(
            "/bids",
            json={"price_limit_ueur_per_kWh": 150_000, "first_slot": slot},
            headers=who.auth,
        )
        assert r.status_code == 202, r.text
        return int(r.json()["id"])

    own_offer = offer_of(own)
    third = api.register(prosumer=False)
    api.flush()
    roles = {"none": NONE, "bad": BAD, "own": own.auth, "other": other.auth, "operator": OP}

    def new_meter() -> dict[str, Any]:
        return {"meter": Account.create().address, "prosumer": False}

    # (name, call(headers) -> response, expected status per role)
    Case = tuple[str, Callable[[dict[str, str]], Response], dict[str, int]]
    cases: list[Case] = [
        (
            "POST /households",
            lambda h: c.post("/households", json=new_meter(), headers=h),
            {"none": 401, "bad": 401, "own": 403, "other": 403, "operator": 201},
        ),
        (
            "POST /topups",
            lambda h: c.post("/topups", json={"household": own.id, "amount_ueur": 5}, headers=h),
            {"none": 401, "bad": 401, "own": 403, "other": 403, "operator": 201},
        ),
        (
            "GET /offers",
            lambda h: c.get("/offers", headers=h),
            {"none": 401, "bad": 401, "own": 200, "other": 200, "operator": 200},
        ),
        (
            "GET /bids",
            lambda h: c.get("/bids", headers=h),
            {"none": 401, "bad": 401, "own": 200, "other": 200, "operator": 200},
        ),
        (
            "POST /offers",
            lambda h: c.post(
                "/offers", json={"price_limit_ueur_per_kWh": 90_000, "first_slot": slot}, headers=h
            ),
            {"none": 401, "bad": 401, "own": 202, "other": 202, "operator": 403},
        ),
        (
            "POST /bids",
            lambda h: c.post(
                "/bids", json={"price_limit_ueur_per_kWh": 90_000, "first_slot": slot}, headers=h
            ),
            {"none": 401, "bad": 401, "own": 202, "other": 202, "operator": 403},
        ),
        # Each role tries to cancel a fresh order of its own household "own".
        (
            "DELETE /offers/{id}",
            lambda h: c.delete(f"/offers/{offer_of(own)}", headers=h),
            {"none": 401, "bad": 401, "own": 202, "other": 403, "operator": 403},
        ),
        (
            "DELETE /bids/{id}",
            lambda h: c.delete(f"/bids/{bid_of(own)}", headers=h),
            {"none": 401, "bad": 401, "own": 202, "other": 403, "operator": 403},
        ),
        (
            "POST /offers/{id}/take",
            lambda h: c.post(
                f"/offers/{own_offer}/take", json={"slot": slot, "max_Wh": 10}, headers=h
            ),
            {"none": 401, "bad": 401, "own": 409, "other": 200, "operator": 403},
        ),
        (
            "GET balance",
            lambda h: c.get(f"/households/{own.id}/balance", headers=h),
            {"none": 401, "bad": 401, "own": 200, "other": 403, "operator": 200},
        ),
        (
            "GET statement",
            lambda h: c.get(
                f"/households/{own.id}/statement", params={"from": slot, "to": slot}, headers=h
            ),
            {"none": 401, "bad": 401, "own": 200, "other": 403, "operator": 200},
        ),
        (
            "GET /trades",
            lambda h: c.get("/trades", headers=h),
            {"none": 401, "bad": 401, "own": 200, "other": 200, "operator": 200},
        ),
        (
            "GET /trades?household=own",
            lambda h: c.get("/trades", params={"household": own.id}, headers=h),
            {"none": 401, "bad": 401, "own": 200, "other": 403, "operator": 200},
        ),
        (
            "POST settle",
            lambda h: c.post(f"/market/slots/{slot}/settle", headers=h),
            {"none": 401, "bad": 401, "own": 403, "other": 403, "operator": 200},
        ),
        (
            "GET /market/slots/{slot}",
            lambda h: c.get(f"/market/slots/{slot}", headers=h),
            {"none": 200, "bad": 200, "own": 200, "other": 200, "operator": 200},
        ),
        (
            "GET /health",
            lambda h: c.get("/health", headers=h),
            {"none": 200, "bad": 200, "own": 200, "other": 200, "operator": 200},
        ),
        (
            "GET /metrics",
            lambda h: c.get("/metrics", headers=h),
            {"none": 200, "bad": 200, "own": 200, "other": 200, "operator": 200},
        ),
        # Key rotation is the operator's, on a household of its own so the rest is unaffected.
        (
            "POST rotate-key",
            lambda h: c.post(f"/households/{third.id}/rotate-key", headers=h),
            {"none": 401, "bad": 401, "own": 403, "other": 403, "operator": 200},
        ),
        (
            "POST token",
            lambda h: c.post(f"/households/{third.id}/token", headers=h),
            {"none": 401, "bad": 401, "own": 403, "other": 403, "operator": 200},
        ),
        (
            "POST meter",
            lambda h: c.post(
                f"/households/{third.id}/meter",
                json={"meter": Account.create().address},
                headers=h,
            ),
            {"none": 401, "bad": 401, "own": 403, "other": 403, "operator": 200},
        ),
    ]
    wrong = []
    for name, call, expected in cases:
        for role, headers in roles.items():
            r = call(headers)
            if r.status_code != expected[role]:
                wrong.append(
                    f"{name} as {role}: {r.status_code} (wanted {expected[role]}) {r.text[:160]}"
                )
            elif r.status_code >= 400:
                body = r.json()
                if not (isinstance(body.get("code"), str) and body.get("message")):
                    wrong.append(f"{name} as {role}: error body without code/message: {body}")
    assert not wrong, "\n".join(wrong)

    # A household's own trades view never shows others' trades.
    for t in c.get("/trades", headers=other.auth).json()["items"]:
        assert other.id in (t["buyer"], t["seller"])

    # Readings need no token; a forged signature is refused whoever sends it.
    forger = Account.create()
    forged = api.reading(own, slot + 1, export_Wh=1, key=forger.key)
    for role, headers in roles.items():
        r = c.post("/readings", json={"readings": [forged]}, headers=headers)
        assert r.status_code == 422 and r.json()["code"] == "bad_signature", (role, r.text)
    genuine = api.reading(own, slot + 1, export_Wh=0)
    assert c.post("/readings", json={"readings": [genuine]}).status_code == 202


def test_a_token_rotated_while_its_lookup_ran_is_not_cached(embedded_api: Api) -> None:
    """A request with the old token read the database just before the token's rotation
    committed: it is answered, but what it read is not cached, so the old token is refused
    from then on."""
    import api.auth as auth
    from api.auth import Principal
    from api.routes.households import rotate_token

    api = embedded_api
    member = api.register(prosumer=False)
    lookup = auth._household_of_token
    rotated: list[int] = []

    def rotation_commits_meanwhile(engine: Any, digest: str) -> int | None:
        found = lookup(engine, digest)
        if not rotated:
            rotated.append(member.id)
            rotate_token(member.id, Principal("operator"), api.services)
        return found

    auth._household_of_token = rotation_commits_meanwhile  # type: ignore[assignment]
    try:
        r = api.client.get(f"/v1/households/{member.id}/balance", headers=member.auth)
    finally:
        auth._household_of_token = lookup  # type: ignore[assignment]
    assert r.status_code == 200 and rotated
    r = api.client.get(f"/v1/households/{member.id}/balance", headers=member.auth)
    assert r.status_code == 401, r.text
