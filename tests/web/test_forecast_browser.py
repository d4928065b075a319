"""The dashboards' forecasts in headless Chromium, in English and French: the household page's
"Tomorrow" by the hour with a suggested price, the operator page's forecast against what was
metered, and what both pages say before there is enough history.

One server for the module: first with no readings (the messages), then with
``MIN_HISTORY_DAYS + 2`` days of readings of three households written straight into the
server's mirror (the SQLite database its app in this process reads), as
tests/api/test_forecast_api.py does. The forecasts are issued on request, once per newest
metered slot, so the next page load after the readings shows them.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import expect

from api.forecasts import hourly
from api.services import slot_now
from ledger.forecast.load import MIN_HISTORY_DAYS
from tests.history import write_metered_days
from tests.web.conftest import AXE, OPERATOR_TOKEN, Server, axe_violations, sign_in

pytestmark = pytest.mark.browser

GREY, BLUE, AMBER = "#5a6570", "#1f5ba0", "#a85400"  # api.web.charts' colours


def _number(text: str) -> int:
    """A figure as the page writes it, in either language (``1,234``, ``1 234``, ``-56``)."""
    return int(re.sub(r"[,\s\u00a0\u202f]", "", text))


def _axe_in(page: Any, selector: str) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations within ``selector`` only (a second language
    of a page checked whole in the first: a quarter of the time of a whole-page run)."""
    if not AXE.exists():
        return axe_violations(page)  # skips, or fails on CI, as the conftest says
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async (s) => await axe.run({include: [s]})", selector)
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


def _switch(page: Any, to: str) -> None:
    page.get_by_role("link", name={"fr": "Français", "en": "English"}[to]).click()
    expect(page.locator("html")).to_have_attribute("lang", to)


def test_before_enough_history_both_pages_say_when_forecasts_start(
    server: Server, page: Any
) -> None:
    """Runs first in the module: the mirror holds no reading yet."""
    member = server.register(prosumer=True, name="Early")
    sign_in(page, server.url, member.token)
    tomorrow = page.locator("#tomorrow")
    expect(tomorrow.get_by_role("heading", level=2)).to_have_text("Tomorrow, expected")
    expect(page.locator("#no-forecast")).to_have_text(
        f"No forecast yet: it starts once the meters have recorded {MIN_HISTORY_DAYS} whole days."
    )
    expect(page.locator("#tomorrow-table")).to_have_count(0)
    _switch(page, "fr")
    expect(tomorrow.get_by_role("heading", level=2)).to_have_text("Demain, prévu")
    expect(page.locator("#no-forecast")).to_have_text(
        "Pas encore de prévision\u00a0: elle commence quand les compteurs ont relevé "
        f"{MIN_HISTORY_DAYS} jours entiers."
    )
    _switch(page, "en")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, server.url, OPERATOR_TOKEN)
    review = page.locator("#forecast-review")
    expect(review.get_by_role("heading", level=2)).to_have_text("Forecast against metered")
    expect(page.locator("#no-forecast-review")).to_have_text(
        "No forecast to review yet: forecasts start once the meters have recorded "
        f"{MIN_HISTORY_DAYS} whole days, and are reviewed a day later."
    )
    expect(page.locator("#review-table")).to_have_count(0)
    _switch(page, "fr")
    expect(review.get_by_role("heading", level=2)).to_have_text("Prévision et relevés")
    expect(page.locator("#no-forecast-review")).to_have_text(
        "Pas encore de prévision à comparer\u00a0: les prévisions commencent quand les "
        f"compteurs ont relevé {MIN_HISTORY_DAYS} jours entiers, et se comparent un jour plus "
        "tard."
    )


def _tomorrow_rows(page: Any, lang: str, low: int, high: int) -> list[int]:
    """Checks the Tomorrow section as shown in ``lang``; returns its rows' first slots."""
    section = page.locator("#tomorrow")
    texts = {
        "en": ("Tomorrow, expected", "Figures as a table", "sell at ", " or more", "buy at ",
               " or less", "c€/kWh"),
        "fr": ("Demain, prévu", "Les chiffres en tableau", "vendre à ", " ou plus", "acheter à ",
               " ou moins", "c€/kWh"),
    }[lang]  # fmt: skip
    heading, summary, sell, sell_end, buy, buy_end, unit = texts
    expect(section.get_by_role("heading", level=2)).to_have_text(heading)
    expect(page.locator("#no-forecast")).to_have_count(0)
    chart = section.get_by_role("img")
    expect(chart).to_be_visible()
    section.get_by_text(summary, exact=True).click()
    rows = page.locator("#tomorrow-table tbody tr")
    expect(rows.first).to_be_visible()
    n = rows.count()
    assert 23 <= n <= 25  # tomorrow's local hours, across a clock change too
    # One bar taken from the network per hour (every hour imports something).
    assert page.locator(f'#chart-tomorrow rect[fill="{GREY}"]').count() == n
    shown_rows = rows.evaluate_all(
        """rows => rows.map(r => ({
            slot: Number(r.dataset.slot),
            hour: r.querySelector('th').innerText,
            cells: [...r.querySelectorAll('td')].map(td => td.innerText),
            limit: Number(r.querySelector('td[data-ueur-per-kwh]').dataset.ueurPerKwh),
        }))"""
    )
    slots, sells, buys = [], 0, 0
    for row in shown_rows:
        slots.append(row["slot"])
        assert re.fullmatch(r"\d\d:00", row["hour"]), row
        imported, exported, net = (_number(c) for c in row["cells"][:3])
        assert net == exported - imported
        limit = row["limit"]
        assert low <= limit <= high
        shown = f"{limit // 10_000}" + (
            ("," if lang == "fr" else ".") + f"{limit % 10_000:04d}".rstrip("0")
            if limit % 10_000
            else ""
        )
        said = row["cells"][3]
        if net > 0:
            assert said.startswith(sell) and said.endswith(sell_end), said
            sells += 1
        else:
            assert said.startswith(buy) and said.endswith(buy_end), said
            buys += 1
        assert f" {shown} {unit}" in said, said
    assert slots == sorted(slots)
    assert sells and buys  # a surplus around noon, a deficit in the evening
    return slots


def _review_rows(page: Any, lang: str, review: Any) -> None:
    section = page.locator("#forecast-review")
    heading, summary = {
        "en": ("Forecast against metered", "Figures as a table"),
        "fr": ("Prévision et relevés", "Les chiffres en tableau"),
    }[lang]
    expect(section.get_by_role("heading", level=2)).to_have_text(heading)
    expect(page.locator("#no-forecast-review")).to_have_count(0)
    expect(section.get_by_role("img")).to_be_visible()
    mae = page.locator("#forecast-mae")
    expect(mae).to_have_text(re.compile(r"^[\d,\s\u202f]+\sWh$"))
    assert _number(mae.inner_text().removesuffix("Wh")) == round(review.mae_Wh)
    section.get_by_text(summary, exact=True).click()
    rows = page.locator("#review-table tbody tr")
    expect(rows.first).to_be_visible()
    hours = hourly(review.first_slot, review.expected_import_Wh)
    assert rows.count() == len(hours) in (24, 25)
    # Two bars per hour: the expected and the metered energy sent out.
    assert page.locator(f'#chart-forecast-review rect[fill="{BLUE}"]').count() == len(hours)
    assert page.locator(f'#chart-forecast-review rect[fill="{AMBER}"]').count() == len(hours)
    cells = rows.evaluate_all(
        "rows => rows.map(r => [...r.querySelectorAll('td')].map(td => td.innerText))"
    )
    shown = np.array([[_number(c) for c in row] for row in cells])
    columns = (
        review.expected_import_Wh,
        review.metered_import_Wh,
        review.expected_export_Wh,
        review.metered_export_Wh,
    )
    for k, series in enumerate(columns):
        assert shown[:, k].tolist() == [v for _, v in hourly(review.first_slot, series)]
    assert shown[:, 3].sum() > 0 and shown[:, 1].sum() > 0  # the metered day is there


def test_with_enough_history_tomorrow_and_the_review_show_in_both_languages(
    server: Server, page: Any
) -> None:
    members = [server.register(prosumer=True, name=f"Street {i}") for i in range(3)]
    write_metered_days(server.services.engine, members, days=MIN_HISTORY_DAYS + 2)
    tariffs = server.http.get("/market/tariffs").json()
    low = tariffs["feed_in_ueur_per_kWh"]
    high = tariffs["retail_ueur_per_kWh"] - tariffs["grid_fee_ueur_per_kWh"]

    sign_in(page, server.url, members[0].token)
    english = _tomorrow_rows(page, "en", low, high)
    assert axe_violations(page) == []
    _switch(page, "fr")
    assert _tomorrow_rows(page, "fr", low, high) == english
    assert _axe_in(page, "#tomorrow") == []
    _switch(page, "en")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, server.url, OPERATOR_TOKEN)
    review = server.services.forecasts.review(slot_now())
    _review_rows(page, "en", review)
    assert axe_violations(page) == []
    _switch(page, "fr")
    _review_rows(page, "fr", review)
    assert _axe_in(page, "#forecast-review") == []
