"""Every integer the API takes is bounded by the tighter of what the contract and both databases
hold, free text refuses control and bidi-override characters, and every error (the unexpected
ones too) is the JSON shape of api/errors.py. The tables run on both backends: PostgreSQL's
INTEGER id columns are the tightest bound of all."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from api.schemas import (
    INT64_MAX,
    MAX_HOUSEHOLD_ID,
    MAX_ORDER_ID,
    MAX_SLOT,
    MAX_TOPUP_UEUR,
    UINT32,
)
from api.web.session import TOKEN_COOKIE, form_token
from ledger.types import MAX_SLOT_ENERGY_WH
from tests.api.conftest import OP, OPERATOR_TOKEN, Api, Member, past_slot

BEYOND = [INT64_MAX + 1, 2**64 - 1]


def _check(api: Api, rows: list[tuple[str, str, Any, dict[str, str], str]]) -> list[str]:
    """Each (method, path, json body, headers, field) must be a 422 naming the field, and
    change nothing."""
    wrong = []
    for method, path, body, headers, field in rows:
        before = api.snapshot()
        r = api.client.request(method, path, json=body, headers=headers)
        got = r.json()
        named = [d["field"] for d in got.get("details") or []]
        if r.status_code != 422 or got["code"] != "invalid_input" or field not in named:
            wrong.append(f"{method} {path} {body}: {r.status_code} {r.text[:300]}")
        elif not got["message"].startswith(field):
            wrong.append(f"{method} {path}: the message does not name {field}: {got['message']}")
        if api.snapshot() != before:
            wrong.append(f"{method} {path} {body}: changed state")
    return wrong


def test_integers_the_storage_cannot_hold_are_refused_naming_the_field(api: Api) -> None:
    seller = api.register(prosumer=True)
    buyer = api.register(prosumer=False, topup_ueur=1_000)
    slot = past_slot(4)
    offer = api.client.post(
        "/offers",
        json={"price_limit_ueur_per_kWh": 90_000, "first_slot": slot},
        headers=seller.auth,
    ).json()["id"]
    meter = Account.create().address
    reading = api.reading(seller, slot, export_Wh=1)
    order = {"price_limit_ueur_per_kWh": 90_000, "first_slot": slot}
    sh, bh = seller.auth, buyer.auth
    rows: list[tuple[str, str, Any, dict[str, str], str]] = []
    for big in BEYOND:
        rows += [
            ("POST", "/households", {"meter": meter, "prosumer": True, "import_baseline_Wh": big},
             OP, "import_baseline_Wh"),
            ("POST", "/households", {"meter": meter, "prosumer": True, "export_baseline_Wh": big},
             OP, "export_baseline_Wh"),
            ("POST", f"/households/{seller.id}/meter", {"meter": meter, "import_baseline_Wh": big},
             OP, "import_baseline_Wh"),
            ("POST", f"/households/{seller.id}/meter", {"meter": meter, "export_baseline_Wh": big},
             OP, "export_baseline_Wh"),
            ("POST", "/readings", {"readings": [{**reading, "import_Wh": big}]}, {},
             "readings.0.import_Wh"),
            ("POST", "/readings", {"readings": [{**reading, "export_Wh": big}]}, {},
             "readings.0.export_Wh"),
            ("POST", "/offers", {**order, "max_Wh_per_slot": big}, sh, "max_Wh_per_slot"),
            ("POST", "/bids", {**order, "max_Wh_per_slot": big}, bh, "max_Wh_per_slot"),
            ("POST", "/bids", {**order, "price_limit_ueur_per_kWh": big}, bh,
             "price_limit_ueur_per_kWh"),
            ("POST", f"/offers/{offer}/take", {"slot": slot, "max_Wh": big}, bh, "max_Wh"),
            ("POST", "/topups", {"household": buyer.id, "amount_ueur": big}, OP, "amount_ueur"),
        ]  # fmt: skip
    too_far = MAX_HOUSEHOLD_ID + 1
    rows += [
        ("POST", "/topups", {"household": too_far, "amount_ueur": 1}, OP, "household"),
        ("POST", "/topups", {"household": buyer.id, "amount_ueur": MAX_TOPUP_UEUR + 1}, OP,
         "amount_ueur"),
        ("POST", "/offers", {**order, "first_slot": MAX_SLOT + 1}, sh, "first_slot"),
        ("POST", "/offers", {**order, "last_slot": UINT32}, sh, "last_slot"),
        ("POST", "/readings", {"readings": [{**reading, "slot": UINT32}]}, {}, "readings.0.slot"),
        ("GET", f"/households/{too_far}/balance", None, OP, "path.household"),
        ("GET", f"/households/{too_far}/statement?from=1&to=2", None, OP, "path.household"),
        ("GET", f"/households/{buyer.id}/statement?from=1&to={UINT32 + 1}", None, OP, "query.to"),
        ("POST", f"/households/{too_far}/token", None, OP, "path.household"),
        ("POST", f"/households/{too_far}/rotate-key", None, OP, "path.household"),
        ("POST", f"/households/{too_far}/meter", {"meter": meter}, OP, "path.household"),
        ("DELETE", f"/offers/{MAX_ORDER_ID + 1}", None, sh, "path.order_id"),
        ("DELETE", f"/bids/{MAX_ORDER_ID + 1}", None, bh, "path.order_id"),
        ("POST", f"/offers/{MAX_ORDER_ID + 1}/take", {"slot": slot, "max_Wh": 1}, bh,
         "path.order_id"),
        ("GET", f"/offers?household={too_far}", None, bh, "query.household"),
        ("GET", f"/bids?household={too_far}", None, bh, "query.household"),
        ("GET", f"/bids?slot={MAX_SLOT + 1}", None, bh, "query.slot"),
        ("GET", "/offers?offset=1000000001", None, bh, "query.offset"),
        ("GET", "/offers?limit=501", None, bh, "query.limit"),
        ("GET", f"/trades?household={too_far}", None, OP, "query.household"),
        ("GET", f"/trades?slot={UINT32 + 1}", None, OP, "query.slot"),
        ("GET", "/trades?limit=501", None, OP, "query.limit"),
        ("GET", "/trades?offset=1000000001", None, OP, "query.offset"),
        ("GET", f"/market/slots/{MAX_SLOT + 1}", None, {}, "path.slot"),
        ("POST", f"/market/slots/{MAX_SLOT + 1}/settle", None, OP, "path.slot"),
        ("GET", f"/audit/report?from={UINT32 + 1}", None, OP, "query.from"),
    ]  # fmt: skip
    wrong = _check(api, rows)
    assert not wrong, "\n".join(wrong)


def test_the_largest_values_the_schema_takes_are_stored_and_read_back(api: Api) -> None:
    """At the bounds nothing fails below the API: not the chain, not either database."""
    c = api.client
    at_bound = {"import_baseline_Wh": INT64_MAX, "export_baseline_Wh": INT64_MAX}
    r = c.post(
        "/households",
        json={"meter": Account.create().address, "prosumer": True, **at_bound},
        headers=OP,
    )
    assert r.status_code == 201, r.text
    household = r.json()["id"]
    r = c.post(
        f"/households/{household}/meter",
        json={"meter": Account.create().address, **at_bound},
        headers=OP,
    )
    assert r.status_code == 200, r.text
    assert r.json()["import_baseline_Wh"] == r.json()["export_baseline_Wh"] == INT64_MAX
    seller = api.register(prosumer=True)
    slot = past_slot(3)
    offer = c.post(
        "/offers",
        json={"price_limit_ueur_per_kWh": 90_000, "first_slot": slot, "max_Wh_per_slot": INT64_MAX},
        headers=seller.auth,
    )
    assert offer.status_code == 202, offer.text
    api.flush()
    listed = c.get(f"/offers?household={seller.id}&status=open", headers=OP).json()["items"]
    assert INT64_MAX in [o["max_Wh_per_slot"] for o in listed]
    buyer = api.register(prosumer=False, topup_ueur=MAX_TOPUP_UEUR)
    balance = c.get(f"/households/{buyer.id}/balance", headers=OP).json()["balance_ueur"]
    assert balance == MAX_TOPUP_UEUR
    take = c.post(
        f"/offers/{offer.json()['id']}/take",
        json={"slot": slot, "max_Wh": INT64_MAX},
        headers=buyer.auth,
    )
    assert take.status_code == 409, take.text  # nothing metered: a conflict, not a crash
    # Ids at their bound: unknown, not a database error.
    assert c.get(f"/households/{MAX_HOUSEHOLD_ID}/balance", headers=OP).status_code == 404
    assert c.delete(f"/offers/{MAX_ORDER_ID}", headers=seller.auth).status_code == 404
    for query in (f"/trades?household={MAX_HOUSEHOLD_ID}", f"/offers?household={MAX_HOUSEHOLD_ID}"):
        assert c.get(query, headers=OP).status_code == 200


def test_a_reading_at_the_largest_register_is_stored_committed_and_mirrored(api: Api) -> None:
    # From a zero baseline the largest register meters more than one slot may hold: refused,
    # with its code, and nothing stored.
    member = api.register(prosumer=True)
    slot = past_slot(3)
    before = api.snapshot()
    r = api.client.post("/readings", json={"readings": [api.reading(member, slot, 0, INT64_MAX)]})
    assert r.status_code == 422 and r.json()["code"] == "energy_too_large", r.text
    assert api.snapshot() == before
    # From baselines one slot's most below the top, the largest registers are accepted.
    meter: LocalAccount = Account.create()
    base = INT64_MAX - MAX_SLOT_ENERGY_WH
    body = {
        "meter": meter.address,
        "prosumer": True,
        "import_baseline_Wh": base,
        "export_baseline_Wh": base,
    }
    created = api.client.post("/households", json=body, headers=OP)
    assert created.status_code == 201, created.text
    data = created.json()
    top = Member(data["id"], data["token"], meter, data["account"], True, base, base)
    first = api.reading(top, slot, import_Wh=MAX_SLOT_ENERGY_WH - 5, export_Wh=MAX_SLOT_ENERGY_WH)
    assert top.export_Wh == INT64_MAX
    r = api.client.post("/readings", json={"readings": [first]})
    assert r.status_code == 202, r.text
    assert not api.flush().chain_down
    balance = api.client.get(f"/households/{top.id}/balance", headers=OP).json()
    assert balance["credits"] == [
        {
            "slot": slot,
            "export_Wh": MAX_SLOT_ENERGY_WH,
            "sold_Wh": 0,
            "credits_Wh": MAX_SLOT_ENERGY_WH,
        }
    ]


NAMES_REFUSED = {
    "nul": ("Ann\x00e", "U+0000"),
    "escape": ("\x1b[31mAnne", "U+001B"),
    "newline": ("Anne\nBob", "U+000A"),
    "delete": ("Anne\x7f", "U+007F"),
    "c1 control": ("Anne\x85", "U+0085"),
    "right-to-left override": ("Anne\u202egpj.exe", "U+202E"),
    "left-to-right embedding": ("\u202aAnne", "U+202A"),
    "first strong isolate": ("Anne\u2068", "U+2068"),
    "pop directional isolate": ("Anne\u2069", "U+2069"),
    "line separator": ("Anne\u2028Bob", "U+2028"),
}


def test_names_refuse_control_and_bidi_override_characters(api: Api) -> None:
    before = api.snapshot()
    for label, (name, where) in NAMES_REFUSED.items():
        body = {"meter": Account.create().address, "prosumer": True, "name": name}
        r = api.client.post("/households", json=body, headers=OP)
        assert r.status_code == 422, (label, r.text)
        got = r.json()
        assert got["code"] == "invalid_input" and got["details"][0]["field"] == "name", label
        assert where in got["message"] and got["message"].startswith("name: "), got["message"]
    # A lone surrogate is not text at all.
    r = api.client.post(
        "/households",
        content=b'{"meter": "%s", "prosumer": true, "name": "\\ud800"}'
        % Account.create().address.encode(),
        headers={**OP, "content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "name"
    assert api.snapshot() == before
    # Names in any script, with accents and right-to-left letters, are fine.
    for name in ("Amélie Dupont-Léger", "سارة", "Zoë 🌞", "O'Brien & Sons"):
        member = api.register(prosumer=False, name=name)
        assert member.id > 0


def test_the_dashboard_register_form_refuses_the_same_names_and_bounds(embedded_api: Api) -> None:
    c = embedded_api.client
    c.cookies.set(TOKEN_COOKIE, OPERATOR_TOKEN)
    form = {"form_token": form_token(OPERATOR_TOKEN), "prosumer": "on"}
    before = embedded_api.snapshot()
    named = c.post(
        "/ui/operator/register",
        data={**form, "meter": Account.create().address, "name": "Anne\u202egpj"},
    )
    assert named.status_code == 422 and "U+202E" in named.text
    too_big = c.post(
        "/ui/operator/register",
        data={**form, "meter": Account.create().address, "import_Wh": str(INT64_MAX + 1)},
    )
    assert too_big.status_code == 422 and str(INT64_MAX) in too_big.text
    assert embedded_api.snapshot() == before


def test_an_unexpected_error_is_logged_and_answered_as_json(
    embedded_api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise RuntimeError("the tariffs table is on fire")

    monkeypatch.setattr(embedded_api.services, "tariffs", broken)
    client = TestClient(embedded_api.client.app, raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="voisin.api"):
        r = client.get("/market/tariffs")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    assert r.json()["code"] == "internal_error"
    assert "fire" not in r.text  # the log has the details, not the answer
    logged = [rec for rec in caplog.records if rec.name == "voisin.api"]
    assert logged and logged[-1].exc_info is not None
    assert "RuntimeError: the tariffs table is on fire" in logged[-1].getMessage()
    assert client.get("/health").status_code == 200


def _request_schemas(openapi: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, schema) of every parameter and every property of every request body."""
    components = openapi["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        return components[ref.rsplit("/", 1)[1]] if ref else schema

    found: list[tuple[str, dict[str, Any]]] = []

    def walk(where: str, schema: dict[str, Any]) -> None:
        schema = resolve(schema)
        for option in schema.get("anyOf", []):
            walk(where, option)
        if schema.get("type") == "object":
            for name, prop in schema.get("properties", {}).items():
                walk(f"{where}.{name}", prop)
        elif schema.get("type") == "array":
            walk(f"{where}[]", schema["items"])
        elif "type" in schema:
            found.append((where, schema))

    for path, operations in openapi["paths"].items():
        for method, op in operations.items():
            for p in op.get("parameters", []):
                walk(f"{method.upper()} {path} {p['in']} {p['name']}", p["schema"])
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                walk(f"{method.upper()} {path} body", body["schema"])
    return found


def test_every_integer_and_string_the_api_takes_has_explicit_bounds(embedded_api: Api) -> None:
    """A new field or parameter without bounds fails here, not in the database."""
    found = _request_schemas(embedded_api.client.get("/openapi.json").json())
    assert len(found) > 40
    unbounded = []
    for where, schema in found:
        if schema["type"] == "integer":
            if "minimum" not in schema and "exclusiveMinimum" not in schema:
                unbounded.append(f"{where}: no minimum")
            top = schema.get("maximum")
            # An integer: a float cannot say 2^63 - 1 (it rounds up to 2^63).
            if not isinstance(top, int) or top > INT64_MAX:
                unbounded.append(f"{where}: maximum {top!r}, not an integer within BIGINT")
        elif schema["type"] == "string" and not (
            "maxLength" in schema or "pattern" in schema or "enum" in schema
        ):
            unbounded.append(f"{where}: free text without a length or pattern")
    assert not unbounded, "\n".join(unbounded)


def test_a_query_parameter_given_twice_is_refused_naming_it(embedded_api: Api) -> None:
    """FastAPI would keep the last value, and whatever reads the first (a proxy, a log) would
    see another request, as with duplicate JSON keys."""
    c = embedded_api.client
    for path in ("/trades?household=1&household=2", "/offers?limit=5&household=1&limit=500"):
        r = c.get(path, headers=OP)
        assert r.status_code == 422, r.text
        field = path.split("?")[1].split("=")[0]
        assert r.json()["message"] == f"query parameter {field!r} is given 2 times; give it once"
        assert r.json()["details"] == [
            {"field": f"query.{field}", "problem": "given more than once"}
        ]
    assert c.get("/trades?household=1&slot=5", headers=OP).status_code == 200
