"""The public API for third-party apps: versioned paths, API keys (issued and revoked by the
operator), their scopes, households' consents, per-key rate limits and CORS by each key's
origins, and the generated Python client against the app."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, select

from api.apikeys_rules import ApiKeyCreated, ApiKeyIn, ApiKeyOut, ConsentOut, hash_key
from api.models import ApiConsent, ApiKey
from api.ratelimit import RateLimiter
from tests.api.conftest import OP, Api, Member, past_slot

ROOT = Path(__file__).resolve().parents[2]
APP_ORIGIN = "https://app.quartier-solaire.example"
JSON = {"Content-Type": "application/json"}


def new_key(
    api: Api,
    scopes: list[str] | None = None,
    origins: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "name": "Quartier Solaire",
        "scopes": scopes or ["public:read", "household:read"],
        "origins": origins or [],
        **extra,
    }
    r = api.client.post("/v1/api-keys", json=body, headers=OP)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def with_key(key: dict[str, Any]) -> dict[str, str]:
    return {"X-API-Key": key["key"]}


def rows(api: Api) -> tuple[int, int]:
    """Keys and consents stored: "nothing changed" checks."""
    with Session(api.services.engine) as s:
        keys = s.exec(select(func.count()).select_from(ApiKey)).one()
        consents = s.exec(select(func.count()).select_from(ApiConsent)).one()
    return int(keys), int(consents)


def grant(api: Api, member: Member, key_id: int) -> Any:
    return api.client.post(f"/v1/households/{member.id}/consents/{key_id}", headers=member.auth)


def withdraw(api: Api, member: Member, key_id: int) -> Any:
    return api.client.delete(f"/v1/households/{member.id}/consents/{key_id}", headers=member.auth)


def assert_problem(r: Any, status: int, code: str, *words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) >= {"code", "message"}
    assert body["code"] == code, body
    for word in words:
        assert word in body["message"], body


# ───────────────────────────── Keys (operator) ─────────────────────────────


def test_the_operator_issues_a_key_shown_once_and_stored_hashed(embedded_api: Api) -> None:
    c = embedded_api.client
    key = new_key(embedded_api, origins=[APP_ORIGIN], rate_per_s=5, burst=50)
    assert key["key"].startswith("vak_") and len(key["key"]) > 40
    assert key["prefix"] == key["key"][:10]
    assert key["scopes"] == ["public:read", "household:read"]
    assert (key["origins"], key["rate_per_s"], key["burst"]) == ([APP_ORIGIN], 5, 50)
    assert key["revoked_at"] is None
    listed = c.get("/v1/api-keys", headers=OP).json()
    assert listed["total"] == 1
    (item,) = listed["items"]
    assert "key" not in item and item["prefix"] == key["prefix"]
    assert {k: v for k, v in key.items() if k != "key"} == item
    with Session(embedded_api.services.engine) as s:
        row = s.exec(select(ApiKey)).one()
    assert row.secret_hash == hash_key(key["key"]) and key["key"] not in repr(row)


def test_only_the_operator_issues_lists_and_revokes_keys(embedded_api: Api) -> None:
    c = embedded_api.client
    member = embedded_api.register(prosumer=False)
    key = new_key(embedded_api)
    body = {"name": "Other", "scopes": ["public:read"]}
    before = rows(embedded_api)
    for headers, status, code in [
        ({}, 401, "unauthorized"),
        (member.auth, 403, "forbidden"),
        (with_key(key), 403, "key_out_of_scope"),
    ]:
        assert_problem(c.post("/v1/api-keys", json=body, headers=headers), status, code)
        assert_problem(c.get("/v1/api-keys", headers=headers), status, code)
        assert_problem(c.delete(f"/v1/api-keys/{key['id']}", headers=headers), status, code)
    assert rows(embedded_api) == before
    assert c.get("/v1/market/tariffs", headers=with_key(key)).status_code == 200


def test_a_revoked_key_stops_at_once_and_its_consents_are_withdrawn(embedded_api: Api) -> None:
    c = embedded_api.client
    member = embedded_api.register(prosumer=False)
    key = new_key(embedded_api)
    assert grant(embedded_api, member, key["id"]).status_code == 201
    read = f"/v1/households/{member.id}/balance"
    assert c.get(read, headers=with_key(key)).status_code == 200
    r = c.delete(f"/v1/api-keys/{key['id']}", headers=OP)
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert_problem(c.get(read, headers=with_key(key)), 401, "unauthorized", "revoked")
    assert_problem(c.get("/v1/market/tariffs", headers=with_key(key)), 401, "unauthorized")
    (consent,) = c.get(f"/v1/households/{member.id}/consents", headers=member.auth).json()["items"]
    assert consent["withdrawn_at"] == r.json()["revoked_at"]
    # Again: nothing changes; an unknown key is a 404.
    again = c.delete(f"/v1/api-keys/{key['id']}", headers=OP)
    assert again.status_code == 200 and again.json() == r.json()
    assert_problem(c.delete("/v1/api-keys/999", headers=OP), 404, "unknown_api_key")
    # A household cannot grant a revoked key.
    assert_problem(grant(embedded_api, member, key["id"]), 404, "unknown_api_key", "revoked")


# ───────────────────────────── Scopes and refused keys ─────────────────────────────


def test_a_public_read_key_reads_public_data_and_nothing_else(embedded_api: Api) -> None:
    c = embedded_api.client
    member = embedded_api.register(prosumer=True, topup_ueur=1_000_000)
    key = new_key(embedded_api, scopes=["public:read"])
    for path in ("/v1/market/tariffs", "/market/tariffs", "/v1/health", "/v1/metrics"):
        assert c.get(path, headers=with_key(key)).status_code == 200, path
    assert_problem(c.get("/v1/market/slots/5", headers=with_key(key)), 404, "slot_not_settled")
    # The public feed lets the key through to the stream's own checks (a resume id that is no
    # id is refused before anything streams); a household's feed does not.
    bad_resume = {**with_key(key), "Last-Event-ID": "not-an-id"}
    assert_problem(c.get("/v1/feed", headers=bad_resume), 400, "invalid_last_event_id")
    assert_problem(
        c.get(f"/v1/households/{member.id}/feed", headers=bad_resume), 403, "key_out_of_scope"
    )
    before = (embedded_api.snapshot(), rows(embedded_api))
    assert_problem(
        c.get(f"/v1/households/{member.id}/balance", headers=with_key(key)),
        403,
        "key_out_of_scope",
        "household:read",
    )
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/v1/offers", {"price_limit_ueur_per_kWh": 90_000, "first_slot": 1}),
        ("POST", "/offers", {"price_limit_ueur_per_kWh": 90_000, "first_slot": 1}),
        ("POST", "/v1/topups", {"household": member.id, "amount_ueur": 5}),
        ("POST", "/v1/households", {"meter": "0x" + "1" * 40, "prosumer": False}),
        ("POST", "/v1/readings", {"readings": [embedded_api.reading(member, past_slot())]}),
        ("POST", f"/v1/market/slots/{past_slot()}/settle", None),
        ("GET", "/v1/audit/report", None),
        ("POST", f"/v1/households/{member.id}/consents/{key['id']}", None),
        ("GET", f"/v1/households/{member.id}/consents", None),
    ]
    for method, path, body in writes:
        r = c.request(method, path, json=body, headers=with_key(key))
        assert_problem(r, 403, "key_out_of_scope", "keys only read")
    assert (embedded_api.snapshot(), rows(embedded_api)) == before


def test_unknown_revoked_and_misplaced_keys_are_refused_and_change_nothing(
    embedded_api: Api,
) -> None:
    c = embedded_api.client
    member = embedded_api.register(prosumer=False)
    key = new_key(embedded_api)
    before = (embedded_api.snapshot(), rows(embedded_api))
    tariffs = "/v1/market/tariffs"
    unknown = {"X-API-Key": "vak_" + "A" * 43}
    assert_problem(c.get(tariffs, headers=unknown), 401, "unauthorized", "not valid")
    # A household's token in the key's header, and a key in Authorization: each is told where
    # it goes, and neither is taken for the other.
    token_as_key = {"X-API-Key": member.token}
    assert_problem(c.get(tariffs, headers=token_as_key), 401, "unauthorized", "starts with vak_")
    # Sent empty is sent: not taken for no key.
    empty = {"X-API-Key": ""}
    assert_problem(c.get(tariffs, headers=empty), 401, "unauthorized", "starts with vak_")
    r = c.post(
        "/v1/topups", json={"household": member.id, "amount_ueur": 5}, headers={**OP, **empty}
    )
    assert_problem(r, 401, "unauthorized", "not both")
    key_as_bearer = {"Authorization": f"Bearer {key['key']}"}
    r = c.get(f"/v1/households/{member.id}/balance", headers=key_as_bearer)
    assert_problem(r, 401, "unauthorized", "X-API-Key header")
    r = c.post(
        "/v1/bids",
        json={"price_limit_ueur_per_kWh": 150_000, "first_slot": 1},
        headers=key_as_bearer,
    )
    assert_problem(r, 401, "unauthorized")
    both = {**with_key(key), **member.auth}
    r = c.get(f"/v1/households/{member.id}/balance", headers=both)
    assert_problem(r, 401, "unauthorized", "not both")
    two = [("X-API-Key", key["key"]), ("X-API-Key", "vak_other")]
    assert_problem(c.get(tariffs, headers=two), 401, "unauthorized", "one X-API-Key")
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert (embedded_api.snapshot(), rows(embedded_api)) == before


# ───────────────────────────── Consents ─────────────────────────────


def test_a_consent_lets_a_key_read_one_household_until_it_is_withdrawn(api: Api) -> None:
    c = api.client
    seller = api.register(prosumer=True, topup_ueur=1_000_000)
    buyer = api.register(prosumer=False, topup_ueur=2_000_000)
    slot = past_slot(4)
    r = c.post(
        "/readings",
        json={
            "readings": [
                api.reading(seller, slot, export_Wh=900),
                api.reading(buyer, slot, import_Wh=900),
            ]
        },
    )
    assert r.status_code == 202, r.text
    api.flush()
    key = new_key(api)
    k = with_key(key)
    reads = [
        f"/v1/households/{buyer.id}/balance",
        f"/v1/households/{buyer.id}/statement?from={slot}&to={slot}",
        f"/v1/trades?household={buyer.id}",
        f"/v1/offers?household={buyer.id}",
        f"/v1/bids?household={buyer.id}",
    ]
    for path in reads:
        assert_problem(c.get(path, headers=k), 403, "consent_required", "has not granted")

    r = grant(api, buyer, key["id"])
    assert r.status_code == 201, r.text
    granted = r.json()
    assert (granted["key_id"], granted["household"], granted["withdrawn_at"]) == (
        key["id"],
        buyer.id,
        None,
    )
    assert granted["key_name"] == "Quartier Solaire"
    again = grant(api, buyer, key["id"])
    assert again.status_code == 200 and again.json() == granted
    for path in reads:
        r = c.get(path, headers=k)
        assert r.status_code == 200, (path, r.text)
        # What the key reads is what the household reads itself.
        assert r.json() == c.get(path, headers=buyer.auth).json(), path
        assert r.json() == c.get(path.removeprefix("/v1"), headers=k).json(), path
    # Only that household: not the seller, and not every trade at once.
    assert_problem(c.get(f"/v1/households/{seller.id}/balance", headers=k), 403, "consent_required")
    assert_problem(c.get("/v1/trades", headers=k), 403, "consent_required", "?household=")
    assert_problem(c.get("/v1/offers", headers=k), 403, "consent_required")
    assert_problem(c.get("/v1/households/99999/balance", headers=k), 403, "consent_required")

    r = withdraw(api, buyer, key["id"])
    assert r.status_code == 200, r.text
    assert r.json()["withdrawn_at"] is not None
    # Immediately: the very next request is refused.
    for path in reads:
        assert_problem(c.get(path, headers=k), 403, "consent_required")
    assert_problem(withdraw(api, buyer, key["id"]), 404, "no_consent")
    # Granted again: a new grant, and the history keeps both.
    assert grant(api, buyer, key["id"]).status_code == 201
    history = c.get(f"/v1/households/{buyer.id}/consents", headers=buyer.auth).json()["items"]
    assert [h["withdrawn_at"] is None for h in history] == [True, False]
    assert c.get(f"/v1/households/{buyer.id}/consents", headers=OP).json()["items"] == history


def test_only_the_household_itself_grants_or_withdraws(embedded_api: Api) -> None:
    c = embedded_api.client
    own = embedded_api.register(prosumer=False)
    other = embedded_api.register(prosumer=False)
    key = new_key(embedded_api)
    public_only = new_key(embedded_api, scopes=["public:read"])
    before = rows(embedded_api)
    path = f"/v1/households/{own.id}/consents/{key['id']}"
    for headers, status, code in [
        ({}, 401, "unauthorized"),
        (other.auth, 403, "forbidden"),
        (OP, 403, "forbidden"),
        (with_key(key), 403, "key_out_of_scope"),
    ]:
        assert_problem(c.post(path, headers=headers), status, code)
        assert_problem(c.delete(path, headers=headers), status, code)
    assert_problem(c.get(f"/v1/households/{own.id}/consents", headers=other.auth), 403, "forbidden")
    assert_problem(grant(embedded_api, own, 999), 404, "unknown_api_key")
    assert_problem(grant(embedded_api, own, public_only["id"]), 409, "scope_not_granted")
    assert_problem(withdraw(embedded_api, own, key["id"]), 404, "no_consent")
    assert rows(embedded_api) == before


# ───────────────────────────── Versions ─────────────────────────────

#: Every path the API had before /v1: each is served at /v1 too.
SERVED_TWICE = [
    "/households",
    "/households/{household}/balance",
    "/households/{household}/statement",
    "/households/{household}/rotate-key",
    "/households/{household}/token",
    "/households/{household}/meter",
    "/topups",
    "/readings",
    "/offers",
    "/bids",
    "/offers/{order_id}",
    "/bids/{order_id}",
    "/offers/{order_id}/take",
    "/trades",
    "/market/tariffs",
    "/market/slots/{slot}",
    "/market/slots/{slot}/settle",
    "/audit/report",
    "/health",
    "/metrics",
]


def test_v1_and_unversioned_paths_answer_alike(embedded_api: Api) -> None:
    c = embedded_api.client
    member = embedded_api.register(prosumer=True, topup_ueur=1_000_000)
    reads = [
        ("/market/tariffs", {}),
        ("/market/slots/3", {}),
        (f"/households/{member.id}/balance", member.auth),
        (f"/households/{member.id}/balance", OP),
        ("/trades", member.auth),
        ("/offers", OP),
        ("/bids?limit=0", OP),
        ("/households/1/balance", {}),
        ("/audit/report", member.auth),
        ("/webhooks", OP),
        ("/webhooks", member.auth),
        ("/webhooks/deliveries?status=failed", OP),
        (f"/households/{member.id}/export?format=json", {}),
    ]
    for path, headers in reads:
        old, new = c.get(path, headers=headers), c.get("/v1" + path, headers=headers)
        assert (old.status_code, old.json()) == (new.status_code, new.json()), path
    # The export says when it was made: the same household's, at both paths.
    old, new = (
        c.get(p + f"/households/{member.id}/export", headers=member.auth) for p in ("", "/v1")
    )
    assert old.status_code == new.status_code == 200
    assert old.json()["data"]["household"] == new.json()["data"]["household"]
    # A write through /v1 is the same write.
    r = c.post(
        "/v1/offers",
        json={"price_limit_ueur_per_kWh": 90_000, "first_slot": 1},
        headers=member.auth,
    )
    assert r.status_code == 202, r.text
    listed = c.get(f"/offers?household={member.id}&status=queued", headers=OP).json()
    assert r.json()["id"] in [o["id"] for o in listed["items"]]


def test_the_openapi_documents_v1_and_marks_the_old_paths_deprecated(embedded_api: Api) -> None:
    doc = embedded_api.client.get("/openapi.json").json()
    paths = doc["paths"]
    old = [p for p in paths if "/v1" + p in paths]
    assert set(SERVED_TWICE) <= set(old)
    for p in old:
        assert all(operation["deprecated"] for operation in paths[p].values()), p
        assert not any(op.get("deprecated") for op in paths["/v1" + p].values()), p
    for p in ("/v1/api-keys", "/v1/api-keys/{key_id}", "/v1/households/{household}/consents"):
        assert p in paths and p.removeprefix("/v1") not in paths
    assert paths["/v1/households/{household}/balance"]["get"]["operationId"] == "balance"
    scheme = doc["components"]["securitySchemes"]["ApiKey"]
    assert (scheme["in"], scheme["name"]) == ("header", "X-API-Key")
    for operation in paths["/v1/market/tariffs"].values():
        assert {"401", "403", "429"} <= set(operation["responses"])
        # A key is welcome there, and not needed.
        assert operation["security"] == [{}, {"ApiKey": []}]
    balance = paths["/v1/households/{household}/balance"]["get"]
    assert balance["security"] == [{"ApiKey": []}, {"HTTPBearer": []}]


# ───────────────────────────── Rate limits ─────────────────────────────


def test_each_key_has_its_own_bucket_answered_with_429_and_retry_after(
    embedded_api: Api,
) -> None:
    c = embedded_api.client
    tight = new_key(embedded_api, scopes=["public:read"], rate_per_s=1, burst=2)
    roomy = new_key(embedded_api, scopes=["public:read"])
    for _ in range(2):
        assert c.get("/v1/market/tariffs", headers=with_key(tight)).status_code == 200
    r = c.get("/market/tariffs", headers=with_key(tight))
    assert_problem(r, 429, "rate_limited", f"API key {tight['id']}")
    assert r.headers["Retry-After"] == "1"
    assert r.json()["details"] == {"retry_after_s": 1, "limit": "api_key"}
    # Another key, and a caller without a key, are not held up by it.
    assert c.get("/v1/market/tariffs", headers=with_key(roomy)).status_code == 200
    assert c.get("/v1/market/tariffs").status_code == 200


def test_public_reads_without_a_key_have_a_lower_limit_per_client(embedded_api: Api) -> None:
    c = embedded_api.client
    c.app.state.public_limiter = RateLimiter("public", 0.5, 2)  # type: ignore[attr-defined]
    key = new_key(embedded_api, scopes=["public:read"])
    assert c.get("/v1/market/tariffs").status_code == 200
    assert c.get("/market/slots/7").status_code == 404
    r = c.get("/v1/market/tariffs")
    assert_problem(r, 429, "rate_limited", "without an API key")
    assert r.headers["Retry-After"] == "2"
    # The key reads on; /health is never limited (monitoring polls it).
    assert c.get("/v1/market/tariffs", headers=with_key(key)).status_code == 200
    assert c.get("/health").status_code == 200


# ───────────────────────────── CORS ─────────────────────────────


def preflight(api: Api, origin: str, path: str = "/v1/market/tariffs") -> Any:
    return api.client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-api-key",
        },
    )


def test_cors_answers_each_key_s_origins_only(embedded_api: Api) -> None:
    c = embedded_api.client
    key = new_key(embedded_api, origins=[APP_ORIGIN, "http://localhost:5173"])
    other = new_key(embedded_api, scopes=["public:read"], origins=["https://other.example"])
    r = preflight(embedded_api, APP_ORIGIN)
    assert r.status_code == 204, r.text
    assert r.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert r.headers["Access-Control-Allow-Methods"] == "GET"
    assert "X-API-Key" in r.headers["Access-Control-Allow-Headers"]
    assert preflight(embedded_api, "http://localhost:5173").status_code == 204
    refused = preflight(embedded_api, "https://evil.example")
    assert_problem(refused, 403, "origin_not_allowed", "https://evil.example")
    assert not any(h.lower().startswith("access-control-") for h in refused.headers)

    tariffs = "/v1/market/tariffs"
    r = c.get(tariffs, headers={**with_key(key), "Origin": APP_ORIGIN})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "Retry-After" in r.headers["Access-Control-Expose-Headers"]
    assert "Origin" in r.headers["Vary"]
    # Another key's origin, an unknown origin, no key: no CORS headers.
    for headers in (
        {**with_key(key), "Origin": "https://other.example"},
        {**with_key(other), "Origin": APP_ORIGIN},
        {**with_key(key), "Origin": "https://evil.example"},
        {"Origin": APP_ORIGIN},
    ):
        r = c.get(tariffs, headers=headers)
        assert r.status_code == 200
        assert "Access-Control-Allow-Origin" not in r.headers, headers
    # A refused key's answer from its own origin stays readable by the page (its 403).
    r = c.get("/v1/audit/report", headers={**with_key(key), "Origin": APP_ORIGIN})
    assert r.status_code == 403 and "Access-Control-Allow-Origin" not in r.headers
    # Revoked: its origins are no longer answered.
    c.delete(f"/v1/api-keys/{key['id']}", headers=OP)
    assert preflight(embedded_api, APP_ORIGIN).status_code == 403
    assert preflight(embedded_api, "https://other.example").status_code == 204


# ───────────────────────────── Bad input ─────────────────────────────


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": 5}, "name"),
        ({"name": "x" * 81}, "name"),
        ({"name": "bad\u202eapp"}, "name"),
        ({"scopes": "public:read"}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["household:write"]}, "scopes.0"),
        ({"origins": ["https://app.example/path"]}, "origins.0"),
        ({"origins": ["ftp://app.example"]}, "origins.0"),
        ({"origins": ["https://user@app.example"]}, "origins.0"),
        ({"origins": ["https://app.example:99999"]}, "origins.0"),
        ({"origins": ["https://a.example"] * 21}, "origins"),
        ({"rate_per_s": "5"}, "rate_per_s"),
        ({"rate_per_s": 2.5}, "rate_per_s"),
        ({"rate_per_s": 10**30}, "rate_per_s"),
        ({"rate_per_s": 0}, "rate_per_s"),
        ({"burst": 2**63}, "burst"),
        ({"burst": True}, "burst"),
        ({"secret": "mine"}, "secret"),
    ],
)
def test_a_bad_key_request_is_refused_naming_the_field_and_creates_nothing(
    embedded_api: Api, change: dict[str, Any], field: str
) -> None:
    body = {"name": "App", "scopes": ["public:read"], **change}
    r = embedded_api.client.post("/v1/api-keys", json=body, headers=OP)
    assert_problem(r, 422, "invalid_input")
    assert r.json()["details"][0]["field"] == field, r.json()
    assert rows(embedded_api) == (0, 0)


def test_bad_ids_and_duplicate_keys_are_refused(embedded_api: Api) -> None:
    c = embedded_api.client
    member = embedded_api.register(prosumer=False)
    key = new_key(embedded_api)
    before = rows(embedded_api)
    for path in ("/v1/api-keys/abc", "/v1/api-keys/0", f"/v1/api-keys/{2**70}"):
        assert_problem(c.delete(path, headers=OP), 422, "invalid_input")
    for key_id in ("x", "0", str(2**64)):
        path = f"/v1/households/{member.id}/consents/{key_id}"
        assert_problem(c.post(path, headers=member.auth), 422, "invalid_input")
    # A key reading a household named by something that is not an id: the field is named.
    r = c.get("/v1/trades?household=abc", headers=with_key(key))
    assert_problem(r, 422, "invalid_input", "household")
    r = c.post(
        "/v1/api-keys",
        content=b'{"name": "A", "scopes": ["public:read"], "scopes": ["household:read"]}',
        headers={**OP, **JSON},
    )
    assert_problem(r, 422, "duplicate_key", "'scopes'")
    assert rows(embedded_api) == before
    # Scopes in their order, origins once each and as browsers send them.
    created = new_key(
        embedded_api,
        scopes=["household:read", "public:read"],
        origins=["HTTPS://App.Example:8443", "https://app.example:8443"],
    )
    assert created["scopes"] == ["public:read", "household:read"]
    assert created["origins"] == ["https://app.example:8443"]


# ───────────────────────────── The generated client ─────────────────────────────


def test_the_generated_client_reads_public_data_with_a_key(embedded_api: Api) -> None:
    sys.path.insert(0, str(ROOT / "clients" / "python"))
    try:
        from voisin_client import AuthenticatedClient
        from voisin_client.api.market import tariffs
        from voisin_client.api.service import health
        from voisin_client.models import TariffsOut
    finally:
        sys.path.remove(str(ROOT / "clients" / "python"))
    key = new_key(embedded_api, scopes=["public:read"])
    client = AuthenticatedClient(
        base_url="http://testserver",
        token=key["key"],
        prefix="",
        auth_header_name="X-API-Key",
        # The app itself answers, through the test client's transport: no server started,
        # and the generated client sends its own headers (the key among them).
        httpx_args={"transport": embedded_api.client._transport},
    )
    answer = tariffs.sync(client=client)
    assert isinstance(answer, TariffsOut)
    expected = embedded_api.client.get("/v1/market/tariffs").json()
    # The generator writes field names in snake case; the wire names stay the API's.
    assert answer.retail_ueur_per_k_wh == expected["retail_ueur_per_kWh"]
    assert answer.feed_in_ueur_per_k_wh == expected["feed_in_ueur_per_kWh"]
    assert health.sync_detailed(client=client).status_code == 200
    # A revoked key: the client sees the API's 401.
    embedded_api.client.delete(f"/v1/api-keys/{key['id']}", headers=OP)
    refused = tariffs.sync_detailed(client=client)
    assert refused.status_code == 401


@pytest.mark.parametrize(
    "model", [ApiKeyIn, ApiKeyOut, ApiKeyCreated, ConsentOut], ids=lambda m: m.__name__
)
def test_each_documented_example_is_what_the_api_takes_or_answers(model: type[BaseModel]) -> None:
    (example,) = model.model_json_schema()["examples"]
    parsed = model.model_validate_json(json.dumps(example))
    if model is not ApiKeyIn:
        assert set(example) == set(model.model_fields)
        assert parsed.model_dump(mode="json") == example


@pytest.mark.parametrize("spelled", ["%2B{id}", "{id}.0", "%20{id}", "{id}%20"])
def test_a_household_id_spelled_otherwise_reads_nothing_without_its_consent(
    embedded_api: Api, spelled: str
) -> None:
    """The consent is checked on the household id as digits; the route's own parsing would
    also take "+1", "1.0" or " 1" for 1, so such a spelling is refused before it can read a
    household that did not consent."""
    api = embedded_api
    victim = api.register(prosumer=True)
    body = {"price_limit_ueur_per_kWh": 60_000, "first_slot": past_slot(-2)}
    assert api.client.post("/v1/offers", json=body, headers=victim.auth).status_code == 202
    key = api.client.post(
        "/v1/api-keys", json={"name": "App", "scopes": ["household:read"]}, headers=OP
    ).json()["key"]
    headers = {"X-API-Key": key}
    r = api.client.get(f"/v1/offers?household={victim.id}", headers=headers)
    assert (r.status_code, r.json()["code"]) == (403, "consent_required"), r.text
    for side in ("offers", "bids"):
        r = api.client.get(f"/v1/{side}?household={spelled.format(id=victim.id)}", headers=headers)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_input"), r.text
