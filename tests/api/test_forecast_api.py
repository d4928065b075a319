"""``GET /forecast`` and ``GET /households/{id}/forecast``: forecasts from the mirror's readings,
who may read which, the history they need, and bad input."""

from __future__ import annotations

import importlib.util
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete
from sqlmodel import Session, select

from api.forecasts import Forecasts
from api.services import slot_now
from api.web.session import LANG_COOKIE, TOKEN_COOKIE
from ledger.forecast.load import MIN_HISTORY_DAYS
from ledger.mirror.models import ReadingRecord
from tests.api.conftest import OP, Api, Member
from tests.api.test_public_api import new_key, with_key
from tests.history import write_metered_days


@pytest.fixture
def street(embedded_api: Api) -> tuple[Api, list[Member]]:
    api = embedded_api
    members = [api.register(prosumer=True) for _ in range(3)]
    write_metered_days(api.services.engine, members, days=MIN_HISTORY_DAYS + 2)
    return api, members


def _hour_of(slot: int) -> float:
    return (slot % 96) / 4


def test_the_neighbourhood_forecast_follows_the_metered_days(
    street: tuple[Api, list[Member]],
) -> None:
    api, _ = street
    c = api.client
    r = c.get("/forecast")  # anyone, no token
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "neighbourhood" and body["households"] == 3
    # The newest metered slot (a slot boundary may have passed since the readings).
    assert body["issued_after_slot"] in (slot_now() - 1, slot_now() - 2)
    slots = body["slots"]
    assert len(slots) == 96 and slots[0]["slot"] == body["issued_after_slot"] + 1
    assert all(s["net_Wh"] == s["export_Wh"] - s["import_Wh"] for s in slots)
    # Noon: a surplus; the evening: a deficit, as every metered day had.
    noon = [s for s in slots if 11 <= _hour_of(s["slot"]) < 13]
    evening = [s for s in slots if 18 <= _hour_of(s["slot"]) < 21]
    assert noon and evening
    assert all(s["net_Wh"] > 0 for s in noon), noon
    assert all(s["net_Wh"] < 0 for s in evening), evening
    # Hours add up their slots, and each suggests a price inside the band.
    hours = body["hours"]
    assert sum(h["net_Wh"] for h in hours) == sum(s["net_Wh"] for s in slots)
    tariffs = c.get("/market/tariffs").json()
    low = tariffs["feed_in_ueur_per_kWh"]
    high = tariffs["retail_ueur_per_kWh"] - tariffs["grid_fee_ueur_per_kWh"]
    assert all(low <= h["suggested_price_ueur_per_kWh"] <= high for h in hours)
    # Scarce hours suggest more than abundant ones.
    dear = max(hours, key=lambda h: -h["net_Wh"])
    cheap = max(hours, key=lambda h: h["net_Wh"])
    assert dear["suggested_price_ueur_per_kWh"] > cheap["suggested_price_ueur_per_kWh"]
    # Local time, with its offset.
    assert slots[0]["starts_at"][-6] in "+-"
    # Issued once per metered slot: the same answer again, and hours=72 reaches three days.
    assert c.get("/forecast").json() == body
    longest = c.get("/v1/forecast", params={"hours": 72}).json()
    assert len(longest["slots"]) == 288 and longest["slots"][:96] == slots


def test_a_household_reads_its_own_forecast_only(street: tuple[Api, list[Member]]) -> None:
    api, members = street
    c = api.client
    first, second, _ = members
    own = c.get(f"/households/{first.id}/forecast", headers=first.auth)
    assert own.status_code == 200, own.text
    mine = own.json()
    assert mine["scope"] == "household" and mine["household"] == first.id
    area = c.get("/forecast").json()
    assert all(
        m["export_Wh"] <= a["export_Wh"] for m, a in zip(mine["slots"], area["slots"], strict=True)
    )
    assert c.get(f"/households/{first.id}/forecast", headers=OP).json() == mine
    r = c.get(f"/households/{first.id}/forecast", headers=second.auth)
    assert r.status_code == 403 and "visible to itself" in r.json()["message"]
    assert c.get(f"/households/{first.id}/forecast").status_code == 401
    r = c.get("/households/999/forecast", headers=OP)
    assert r.status_code == 404 and r.json()["code"] == "unknown_household"
    # An app: the public forecast with public:read; a household's only with its consent.
    key = new_key(api, scopes=["public:read", "household:read"])
    assert c.get("/v1/forecast", headers=with_key(key)).status_code == 200
    r = c.get(f"/v1/households/{first.id}/forecast", headers=with_key(key))
    assert r.status_code == 403 and r.json()["code"] == "consent_required"
    granted = c.post(f"/v1/households/{first.id}/consents/{key['id']}", headers=first.auth)
    assert granted.status_code in (200, 201), granted.text
    r = c.get(f"/v1/households/{first.id}/forecast", headers=with_key(key))
    assert r.status_code == 200 and r.json() == mine


@pytest.mark.parametrize(
    "params",
    [{"hours": 0}, {"hours": 73}, {"hours": -1}, {"hours": "x"}, {"hours": 10**30}, {"hour": 1}],
)
def test_bad_hours_are_refused(street: tuple[Api, list[Member]], params: dict[str, Any]) -> None:
    api, members = street
    assert api.client.get("/forecast", params=params).status_code == 422
    r = api.client.get(f"/households/{members[0].id}/forecast", params=params, headers=OP)
    assert r.status_code == 422


def test_no_forecast_without_enough_history_nor_for_too_few_households(
    embedded_api: Api,
) -> None:
    api = embedded_api
    c = api.client
    r = c.get("/forecast")
    assert r.status_code == 409 and r.json()["code"] == "not_enough_history"
    members = [api.register(prosumer=True) for _ in range(2)]
    write_metered_days(api.services.engine, members, days=MIN_HISTORY_DAYS - 1)
    r = c.get("/forecast")
    assert r.status_code == 409 and r.json()["code"] == "not_enough_history"
    assert f"needs {MIN_HISTORY_DAYS} whole days" in r.json()["message"]
    # Enough days, but two households: the aggregate would show a neighbour's.
    api.services.forecasts = Forecasts(api.services.engine)
    with Session(api.services.engine) as session:
        session.execute(delete(ReadingRecord))
        session.commit()
    for m in members:
        m.import_Wh = m.export_Wh = 0
    write_metered_days(api.services.engine, members, days=MIN_HISTORY_DAYS + 1)
    r = c.get("/forecast")
    assert r.status_code == 409 and r.json()["code"] == "too_few_households"
    own = c.get(f"/households/{members[0].id}/forecast", headers=members[0].auth)
    assert own.status_code == 200, own.text


def test_the_household_page_shows_tomorrow_by_the_hour(street: tuple[Api, list[Member]]) -> None:
    api, members = street
    c = api.client
    c.cookies.set(TOKEN_COOKIE, members[0].token)
    page = c.get("/ui/household")
    assert page.status_code == 200
    html = page.text
    assert 'id="tomorrow-title"' in html and 'id="chart-tomorrow"' in html
    rows = re.findall(r'<tr data-slot="(\d+)">', html)
    # Tomorrow's local hours (23 to 25 of them across a clock change), in order.
    assert 23 <= len(rows) <= 25 and rows == sorted(rows)
    prices = [int(p) for p in re.findall(r'data-ueur-per-kwh="(\d+)"', html)]
    assert len(prices) == len(rows) and len(set(prices)) > 1
    assert "sell at" in html and "buy at" in html  # a surplus at noon, a deficit at night
    c.cookies.set(LANG_COOKIE, "fr")
    assert "Demain, prévu" in c.get("/ui/household").text
    c.cookies.clear()


def test_the_household_page_says_when_forecasts_start(embedded_api: Api) -> None:
    api = embedded_api
    member = api.register(prosumer=True)
    api.client.cookies.set(TOKEN_COOKIE, member.token)
    html = api.client.get("/ui/household").text
    assert 'id="no-forecast"' in html
    assert f"once the meters have recorded {MIN_HISTORY_DAYS} whole days" in html


def test_the_operator_page_sets_the_forecast_against_what_was_metered(
    street: tuple[Api, list[Member]],
) -> None:
    api, _ = street
    c = api.client
    c.cookies.set(TOKEN_COOKIE, OP["Authorization"].removeprefix("Bearer "))
    html = c.get("/ui/operator").text
    assert 'id="review-title"' in html and 'id="chart-forecast-review"' in html
    rows = re.findall(r"<tr><th scope=\"row\">", html.split('id="review-table"')[1])
    assert len(rows) >= 24
    review = api.services.forecasts.review(slot_now())
    # The forecast of the last metered day, made from the days before it, against that day's
    # readings as the mirror holds them.
    assert review.first_slot == review.issue_slot + 1
    day = range(review.first_slot, review.first_slot + 96)
    with Session(api.services.engine) as session:
        rows = session.exec(
            select(ReadingRecord.slot, ReadingRecord.import_delta_Wh, ReadingRecord.export_delta_Wh)
        ).all()
    metered_in = [sum(r[1] for r in rows if r[0] == slot) for slot in day]
    metered_out = [sum(r[2] for r in rows if r[0] == slot) for slot in day]
    assert review.metered_import_Wh.tolist() == metered_in
    assert review.metered_export_Wh.tolist() == metered_out
    expected = review.expected_export_Wh - review.expected_import_Wh
    actual = review.metered_export_Wh - review.metered_import_Wh
    assert review.mae_Wh == pytest.approx(float(abs(expected - actual).mean()))
    naive_in = [sum(r[1] for r in rows if r[0] == slot - 96) for slot in day]
    naive_out = [sum(r[2] for r in rows if r[0] == slot - 96) for slot in day]
    naive = [o - i for i, o in zip(naive_in, naive_out, strict=True)]
    assert review.seasonal_naive_mae_Wh == pytest.approx(
        sum(abs(n - a) for n, a in zip(naive, actual.tolist(), strict=True)) / 96
    )
    assert review.skill_vs_seasonal_naive == pytest.approx(
        1 - review.mae_Wh / review.seasonal_naive_mae_Wh
    )
    assert f'data-skill="{review.skill_vs_seasonal_naive}"' in html
    # Made from the readings before the day only: without the day's readings, the same.
    with Session(api.services.engine) as session:
        session.execute(delete(ReadingRecord).where(ReadingRecord.slot > review.issue_slot))
        session.commit()
    again = Forecasts(api.services.engine)
    fresh = again._issue(review.issue_slot, again._households())
    assert fresh.neighbourhood().export_Wh[:96].tolist() == review.expected_export_Wh.tolist()
    c.cookies.clear()


def test_the_operator_page_says_when_forecasts_will_be_reviewed(embedded_api: Api) -> None:
    c = embedded_api.client
    c.cookies.set(TOKEN_COOKIE, OP["Authorization"].removeprefix("Bearer "))
    assert 'id="no-forecast-review"' in c.get("/ui/operator").text


def test_the_washing_machine_app_reads_tomorrow_from_the_forecast(
    street: tuple[Api, list[Member]],
) -> None:
    """The example app (examples/washing_machine) through the generated client, with a key of
    scope public:read only, on a neighbourhood with enough days metered."""
    api, _ = street
    path = Path(__file__).resolve().parents[2] / "examples" / "washing_machine"
    spec = importlib.util.spec_from_file_location("washing_machine", path / "washing_machine.py")
    assert spec is not None and spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    sys.modules["washing_machine"] = app
    spec.loader.exec_module(app)
    key = new_key(api, scopes=["public:read"])
    client = app.client_for("http://testserver", key["key"])
    api.client.headers["X-API-Key"] = key["key"]
    client.set_httpx_client(api.client)
    forecast = app.forecast_for(client)
    assert forecast is not None and forecast.scope == "neighbourhood"
    tz = ZoneInfo(api.services.settings.timezone)
    tomorrow = datetime.now(tz).date() + timedelta(days=1)
    hours = app.expected_hours(forecast, tomorrow, tz)
    assert hours and all(h.start.date() == tomorrow for h in hours)
    # The street sends power out around noon and none at night.
    by_hour = {h.start.hour: h.leftover_Wh for h in hours}
    assert by_hour.get(3, 0) == 0 and max(by_hour.values()) > 0
    said = list(app.lines(tomorrow - timedelta(days=1), [], 1, hours))
    assert "(expected: Voisin's forecast): run it at" in said[1]
    del api.client.headers["X-API-Key"]


def test_a_households_forecast_needs_its_own_history_and_an_active_household(
    embedded_api: Api,
) -> None:
    """The forecast follows the active households: a newcomer, or one with a day of readings,
    gets 409 until it has its own history (not a forecast learned from zeros); an erased one
    leaves the neighbourhood's aggregate; an unknown one is 404 whatever the history."""
    api = embedded_api
    c = api.client
    assert c.get("/households/999/forecast", headers=OP).status_code == 404
    members = [api.register(prosumer=True) for _ in range(4)]
    write_metered_days(api.services.engine, members, days=MIN_HISTORY_DAYS + 2)
    assert c.get("/forecast").json()["households"] == 4  # issued, and kept
    newcomer, short = api.register(prosumer=False), api.register(prosumer=False)
    write_metered_days(api.services.engine, [short], days=1)
    for member in (newcomer, short):
        r = c.get(f"/households/{member.id}/forecast", headers=member.auth)
        assert r.status_code == 409 and r.json()["code"] == "not_enough_history", r.text
        assert f"household {member.id} has 0" in r.json()["message"], r.text
    assert c.get(f"/households/{members[0].id}/forecast", headers=OP).status_code == 200
    gone = members[3]
    api.erase(gone)
    # The short-history household is metered, so it counts: 3 of the 4 plus it.
    assert c.get("/forecast").json()["households"] == 4
    r = c.get(f"/households/{gone.id}/forecast", headers=OP)
    assert r.status_code == 409 and r.json()["code"] == "household_inactive", r.text


def test_no_forecast_when_the_newest_reading_is_more_than_a_day_old(
    street: tuple[Api, list[Member]],
) -> None:
    api, _ = street
    with Session(api.services.engine) as session:  # the meters stopped two days ago
        session.execute(delete(ReadingRecord).where(ReadingRecord.slot > slot_now() - 2 * 96))
        session.commit()
    r = api.client.get("/forecast", params={"hours": 24})
    assert r.status_code == 409 and r.json()["code"] == "not_enough_history", r.text
    assert "more than a day before now" in r.json()["message"]
