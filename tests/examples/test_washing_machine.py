"""The washing-machine app (examples/washing_machine) against a running ``voisin serve``.

Two households trade through a real server; the app, holding only an API key of scope
``public:read``, reads the settled slots through the generated client and finds the surplus
no neighbour bought, then hears the next slot settle on the live feed.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from eth_account import Account

from api.process import ServeProcess
from ledger.readings.eip712 import Reading, domain_separator, sign_reading
from ledger.readings.intake import reading_to_json

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "washing_machine" / "washing_machine.py"
TOKEN = "operator-token-for-the-example-app-0123456789"
OP = {"Authorization": f"Bearer {TOKEN}"}
TZ = ZoneInfo("Europe/Paris")

pytestmark = pytest.mark.slow


def _app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("washing_machine", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["washing_machine"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class Street:
    """A seller and a buyer on a real server, with their meters' registers."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        chain = http.get("/health").json()["chain"]
        self.domain = domain_separator(chain["chain_id"], chain["contract"])
        self.meters = {"seller": Account.create(), "buyer": Account.create()}
        self.registers = {"seller": [0, 0], "buyer": [0, 0]}
        for who, prosumer in (("seller", True), ("buyer", False)):
            body = {"meter": self.meters[who].address, "prosumer": prosumer, "name": who}
            r = http.post("/households", json=body, headers=OP)
            assert r.status_code == 201, r.text
            if who == "buyer":
                top = http.post(
                    "/topups", json={"household": r.json()["id"], "amount_ueur": 5_000_000},
                    headers=OP,
                )  # fmt: skip
                assert top.status_code == 201, top.text

    def slot(self, slot: int, export_Wh: int, import_Wh: int) -> dict[str, Any]:
        """Meter ``slot`` (the seller exports, the buyer imports) and settle it."""
        readings = []
        for who, (imp, exp) in (("seller", (0, export_Wh)), ("buyer", (import_Wh, 0))):
            self.registers[who][0] += imp
            self.registers[who][1] += exp
            meter = self.meters[who]
            reading = Reading(meter.address, slot, *self.registers[who])
            readings.append(reading_to_json(sign_reading(meter.key, reading, self.domain)))
        r = self.http.post("/readings", json={"readings": readings})
        assert r.status_code == 202 and r.json()["accepted"] == 2, r.text
        settled = self.http.post(f"/market/slots/{slot}/settle", headers=OP)
        assert settled.status_code == 200, settled.text
        outcome: dict[str, Any] = settled.json()
        return outcome


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    env = {"VOISIN_OPERATOR_TOKEN": TOKEN, "VOISIN_AUTO_SETTLE": "false"}
    with ServeProcess(tmp_path / "data", env, log_path=tmp_path / "serve.log") as running:
        yield running


def test_the_app_finds_the_hours_of_local_surplus_and_follows_the_feed(
    server: ServeProcess,
) -> None:
    app = _app()
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        street = Street(http)
        created = http.post(
            "/v1/api-keys", json={"name": "washing machine", "scopes": ["public:read"]},
            headers=OP,
        )  # fmt: skip
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        now = int(http.get("/market/tariffs").json()["current_slot"])
        slots = list(range(now - 10, now - 6))
        outcomes = {s: street.slot(s, export_Wh=900, import_Wh=300) for s in slots}
        expected = {s: o["unmatched_surplus_Wh"] for s, o in outcomes.items()}
        assert all(v > 0 for v in expected.values()), outcomes

        with app.client_for(server.base_url, key) as client:
            assert app.settled_leftovers(client, [*slots, now - 1]) == expected
            day = app.slot_start(slots[0], TZ).date()
            leftovers = app.day_leftovers(client, day, TZ)
        assert {s: v for s, v in leftovers.items() if s in expected} == {
            s: v for s, v in expected.items() if app.slot_start(s, TZ).date() == day
        }
        hours = app.hours_of(expected, TZ)
        assert sum(h.leftover_Wh for h in hours) == sum(expected.values())
        assert app.good_hours(hours, 1) == hours
        assert app.good_hours(hours, 10**9) == []
        assert "run it at" in app.describe(day, hours, 1)
        # A server with a few slots metered has no forecast yet: tomorrow is today again.
        with app.client_for(server.base_url, key) as client:
            assert app.forecast_for(client) is None
        said = list(app.lines(day, hours, 1, None))
        assert "Voisin has no forecast yet" in said[1] and "run it at" in said[1]

        # A key the operator revoked reads nothing more.
        revoked = http.delete(f"/v1/api-keys/{created.json()['id']}", headers=OP)
        assert revoked.status_code in (200, 204), revoked.text
        with app.client_for(server.base_url, key) as client, pytest.raises(app.VoisinError):
            app.current_slot(client)

        # The live feed, from its start ("0"): the slots settled so far, then the next one as
        # it settles, each with the surplus no neighbour bought.
        heard: dict[int, int] = {}

        def on_slot(slot: int, leftover: int) -> bool:
            heard[slot] = leftover
            return slot != now - 6

        listener = threading.Thread(
            target=app.follow,
            args=(server.base_url, TZ, on_slot),
            kwargs={"last_event_id": "0", "timeout_s": 30},
            daemon=True,
        )
        listener.start()
        outcome = street.slot(now - 6, export_Wh=700, import_Wh=200)
        listener.join(60)
        assert not listener.is_alive()
        assert heard == {**expected, now - 6: outcome["unmatched_surplus_Wh"]}


def test_the_advice_is_pure_arithmetic_on_local_hours() -> None:
    app = _app()
    # 2026-06-21 10:00 UTC is 12:00 in Paris: four slots of one local hour, then one more.
    first = 1980040
    leftovers = {first: 100, first + 1: 200, first + 2: 0, first + 3: 150, first + 4: 500}
    hours = app.hours_of(leftovers, TZ)
    assert [(h.start.hour, h.leftover_Wh, h.settled_slots) for h in hours] == [
        (12, 450, 4),
        (13, 500, 1),
    ]
    assert [h.start.hour for h in app.good_hours(hours, 500)] == [13]
    assert [h.start.day for h in app.tomorrow_guess(hours)] == [22, 22]
    assert len(app.day_slots(app.slot_start(first, TZ).date(), TZ)) == 96
    # The day the clocks go back has 100 slots, and the day they go forward 92.
    assert len(app.day_slots(date(2026, 10, 25), TZ)) == 100
    assert len(app.day_slots(date(2026, 3, 29), TZ)) == 92
    assert app.leftover_of_event({"slot": 5, "export_Wh": 900, "local_Wh": 300}) == (5, 600)
    assert app.leftover_of_event({"slot": 5}) is None


def test_tomorrow_comes_from_the_forecast_when_voisin_has_one() -> None:
    app = _app()
    from voisin_client.models import ForecastOut

    def hour(at: str, net: int) -> dict[str, Any]:
        return {"starts_at": at, "first_slot": 0, "import_Wh": 0, "export_Wh": max(net, 0),
                "net_Wh": net, "suggested_price_ueur_per_kWh": 100_000}  # fmt: skip

    forecast = ForecastOut.from_dict(
        {"scope": "neighbourhood", "household": None, "households": 3, "issued_after_slot": 1,
         "issued_after": "2026-06-21T23:45:00+02:00", "model": "m", "slots": [],
         "hours": [hour("2026-06-21T23:00:00+02:00", 900), hour("2026-06-22T12:00:00+02:00", 800),
                   hour("2026-06-22T13:00:00+02:00", 200), hour("2026-06-22T20:00:00+02:00", -500)]}
    )  # fmt: skip
    tomorrow = app.expected_hours(forecast, date(2026, 6, 22), TZ)
    assert [(h.start.hour, h.leftover_Wh) for h in tomorrow] == [(12, 800), (13, 200), (20, 0)]
    said = list(app.lines(date(2026, 6, 21), [], 400, tomorrow))
    assert said[1] == "Monday 22 June (expected: Voisin's forecast): run it at 12:00-13:00"
