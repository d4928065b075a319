"""The dashboard's parts without a browser: form parsing, number writing, charts, and the
routes' guards (sign-in cookie, anti-forgery token, redirects, static files), through
Starlette's test client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.app import create_app
from api.models import KeptAudit
from api.settings import Settings
from api.web import charts, forms, i18n
from api.web.session import TOKEN_COOKIE, form_token
from tests.web.conftest import OP, OPERATOR_TOKEN

SHOWN = {"lo": "4", "hi": "22"}


@pytest.mark.parametrize(
    ("typed", "lang", "ueur_per_kWh"),
    [
        ("4", "en", 40_000),
        ("12,5", "fr", 125_000),
        (" 12.5 ", "en", 125_000),
        ("12.5", "fr", 125_000),
        ("21.9999", "en", 219_999),
        ("22", "fr", 220_000),
        ("12.50000000000000000000000000000", "en", 125_000),
    ],
)
def test_a_price_in_cents_per_kWh_converts_exactly(
    typed: str, lang: str, ueur_per_kWh: int
) -> None:
    assert forms.price(typed, 40_000, 220_000, SHOWN, lang) == ueur_per_kWh


@pytest.mark.parametrize(
    ("typed", "lang", "ueur"),
    [
        ("1,000", "en", 1_000_000_000),
        ("1,000.50", "en", 1_000_500_000),
        ("12,000", "en", 12_000_000_000),
        ("1 000.5", "en", 1_000_500_000),
        ("1,5", "fr", 1_500_000),
        ("1 000,50", "fr", 1_000_500_000),
        ("1\u00a0000,50", "fr", 1_000_500_000),
        ("1\u202f000,50", "fr", 1_000_500_000),
        ("1000.5", "fr", 1_000_500_000),
    ],
)
def test_an_amount_is_read_as_the_pages_language_writes_numbers(
    typed: str, lang: str, ueur: int
) -> None:
    assert forms.euros(typed, 10**13, lang) == ueur


@pytest.mark.parametrize(
    ("typed", "lang", "key"),
    [
        ("1,5", "en", "err_comma"),
        ("1,00", "en", "err_comma"),
        ("1.000,50", "fr", "err_number"),
        ("1,000.50", "fr", "err_number"),
        ("1.000000000000000000000000000009", "en", "err_decimals"),
        ("-0,01", "fr", "err_negative"),
    ],
)
def test_an_amount_that_could_be_read_two_ways_or_rounded_is_refused(
    typed: str, lang: str, key: str
) -> None:
    with pytest.raises(forms.FieldError) as refused:
        forms.euros(typed, 10**13, lang)
    assert refused.value.key == key


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("", "err_required"),
        ("abc", "err_number"),
        ("1e3", "err_number"),
        ("12.5.1", "err_number"),
        ("-5", "err_negative"),
        ("3.99999", "err_decimals"),
        ("3.9999", "err_band"),
        ("22.0001", "err_band"),
    ],
)
def test_a_bad_price_names_what_is_wrong(typed: str, key: str) -> None:
    with pytest.raises(forms.FieldError) as refused:
        forms.price(typed, 40_000, 220_000, SHOWN, "en")
    assert refused.value.key == key


def test_whole_numbers_euros_addresses_months_and_choices_are_checked() -> None:
    assert forms.whole("500", 1000, "en") == 500
    assert forms.whole("1 500", 10_000, "fr") == forms.whole("1,500", 10_000, "en") == 1500
    refusals = {"-1": "err_negative", "0": "err_zero", "2.5": "err_whole", "ten": "err_whole",
                "1001": "err_too_big", " ": "err_required"}  # fmt: skip
    for typed, key in refusals.items():
        with pytest.raises(forms.FieldError) as refused:
            forms.whole(typed, 1000, "en")
        assert refused.value.key == key
    assert (
        forms.register_Wh("", 10, "en"),
        forms.register_Wh("0", 10, "fr"),
        forms.register_Wh("7", 10, "en"),
    ) == (
        0,
        0,
        7,
    )
    for typed, key in (
        ("-1", "err_negative"),
        ("1.5", "err_whole"),
        ("x", "err_whole"),
        ("11", "err_too_big"),
    ):
        with pytest.raises(forms.FieldError) as refused:
            forms.register_Wh(typed, 10, "en")
        assert refused.value.key == key
    assert forms.euros("12.50", 10**12, "en") == 12_500_000
    assert forms.euros("0,01", 10**12, "fr") == 10_000
    with pytest.raises(forms.FieldError, match="err_decimals") as refused:
        forms.euros("0.001", 10**12, "en")
    assert refused.value.values == {"n": "2"}
    with pytest.raises(forms.FieldError, match="err_too_big") as refused:
        forms.euros("1000001", 10**12, "en")
    assert refused.value.values == {"max": "€1,000,000.00"}
    address = Account.create().address
    assert forms.address(f" {address} ") == address
    with pytest.raises(forms.FieldError, match="err_address"):
        forms.address(address[:-1])
    assert forms.month("2026-02") == (2026, 2)
    for bad in ("2026-13", "2026-2", "february"):
        with pytest.raises(forms.FieldError, match="err_month"):
            forms.month(bad)
    assert forms.choice("7", {7, 8}) == 7
    with pytest.raises(forms.FieldError, match="err_choice"):
        forms.choice("9", {7, 8})


def test_numbers_are_written_the_way_each_language_reads_them() -> None:
    # Exact: more decimals only where the amount has a fraction of a cent.
    assert i18n.euros(1_234_567_891, "en") == "€1,234.567891"
    assert i18n.euros(1_234_560_000, "fr") == "1\u202f234,56\u00a0€"
    assert i18n.euros(-15_000, "en") == "-€0.015"
    assert i18n.euros(3_000, "en") == "€0.003"
    assert i18n.euros(0, "en") == "€0.00"
    assert i18n.euros(2_000_000, "en") == "€2.00"
    assert i18n.cents_per_kWh(125_000, "fr") == "12,5"
    assert i18n.cents_per_kWh(40_000, "en") == "4"
    assert i18n.cents_per_kWh(219_999, "en") == "21.9999"
    assert i18n.pick_lang(None, "fr-FR,fr;q=0.9,en;q=0.8") == "fr"
    assert i18n.pick_lang("en", "fr-FR") == "en"
    assert i18n.pick_lang("de", "de-DE") == "en"
    assert set(i18n.text("fr")) == set(i18n.text("en"))
    assert i18n.text("fr")["signin"] != i18n.text("en")["signin"]


def test_a_chart_carries_its_alt_text_and_draws_each_nonzero_value() -> None:
    svg = str(
        charts.mirrored_bars(
            "c",
            'Alt with <markup> & "quotes"',
            ["10:00", "10:15"],
            up=[charts.Series("a", charts.GREEN, [100, 0])],
            down=[charts.Series("b", charts.AMBER, [0, 50])],
        )
    )
    assert svg.startswith('<svg class="chart" id="c"') and 'role="img"' in svg
    assert '<title id="c-title">Alt with &lt;markup&gt; &amp; &quot;quotes&quot;</title>' in svg
    assert svg.count(f'fill="{charts.GREEN}"') == 1 and svg.count(f'fill="{charts.AMBER}"') == 1


def test_prices_outside_the_band_are_drawn_in_the_warning_colour() -> None:
    svg = str(charts.points_in_band("p", "alt", ["a", "b"], [50, 300], [50, 300], (40, 220), "c€"))
    assert svg.count(f'fill="{charts.BLUE}"') == 1 and svg.count(f'fill="{charts.AMBER}"') == 1


async def _no_audit(_: Request) -> JSONResponse:
    return JSONResponse({"code": "not_found", "message": "Not Found"}, 404)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=Path(tmp_path_factory.mktemp("parts")) / "data",
        operator_token=OPERATOR_TOKEN,
        auto_settle=False,
        chain_process=False,
    )
    app = create_app(settings, background=False)
    # The audit endpoint missing (a route placed first answers its path with the 404 any
    # unknown path gets): the operator page reads the kept audit, never the endpoint.
    app.router.routes.insert(0, Route("/audit/report", _no_audit))
    with TestClient(app, follow_redirects=False) as c:
        yield c


def _as(client: TestClient, token: str) -> TestClient:
    """The client carrying ``token``'s sign-in cookie (and nothing else)."""
    client.cookies.clear()
    client.cookies.set(TOKEN_COOKIE, token)
    return client


def _household(client: TestClient) -> str:
    r = client.post(
        "/households", json={"meter": Account.create().address, "prosumer": True}, headers=OP
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def test_the_operator_page_reads_no_audit_endpoint_and_shows_the_rest(
    client: TestClient,
) -> None:
    signed = client.post("/ui/signin", data={"token": OPERATOR_TOKEN})
    assert signed.status_code == 303 and signed.headers["location"] == "/ui/operator"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = _as(client, OPERATOR_TOKEN).get("/ui/operator")
    assert page.status_code == 200
    assert "Nothing to audit yet" in page.text
    assert 'id="register-title"' in page.text and 'id="topup-title"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_a_form_without_its_anti_forgery_token_changes_nothing(client: TestClient) -> None:
    token = _household(client)
    before = client.get("/offers", headers=OP).json()["total"]
    r = _as(client, token).post("/ui/household/price", data={"side": "offer", "price": "10"})
    assert r.status_code == 422
    assert "The form expired; please send it again." in r.text
    assert client.get("/offers", headers=OP).json()["total"] == before


@pytest.mark.parametrize(
    "sent_from",
    [
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "https://elsewhere.example"},
        {"origin": "null"},
    ],
)
def test_another_sites_form_neither_signs_in_nor_signs_out(
    client: TestClient, sent_from: dict[str, str]
) -> None:
    forged = client.post("/ui/signin", data={"token": OPERATOR_TOKEN}, headers=sent_from)
    assert forged.status_code == 403 and "set-cookie" not in forged.headers
    assert "This form was sent from another site." in forged.text
    signed_in = _as(client, OPERATOR_TOKEN)
    out = signed_in.post("/ui/signout", headers=sent_from, follow_redirects=False)
    assert out.status_code == 303 and "set-cookie" not in out.headers
    assert signed_in.get("/ui/operator", follow_redirects=False).status_code == 200
    # The same forms sent from the site's own pages, as a browser marks them.
    here = {"sec-fetch-site": "same-origin", "origin": "http://testserver"}
    signed = client.post("/ui/signin", data={"token": OPERATOR_TOKEN}, headers=here)
    assert signed.status_code == 303 and "voisin_token=" in signed.headers["set-cookie"]
    out = signed_in.post("/ui/signout", headers=here, follow_redirects=False)
    assert 'voisin_token=""' in out.headers["set-cookie"]
    old_browser = client.post(
        "/ui/signin", data={"token": OPERATOR_TOKEN}, headers={"origin": "http://testserver"}
    )
    assert old_browser.status_code == 303


def test_pages_need_a_valid_sign_in_cookie(client: TestClient) -> None:
    for path in ("/ui/household", "/ui/operator", "/ui/household/trades.csv"):
        r = _as(client, "vsn_forged").get(path)
        assert (r.status_code, r.headers["location"]) == (303, "/"), path
    household = _household(client)
    # A household is not the operator, and the operator has no household page.
    assert _as(client, household).get("/ui/operator").status_code == 303
    assert _as(client, OPERATOR_TOKEN).get("/ui/household").status_code == 303
    assert _as(client, "nope").get("/ui/live").status_code == 401
    live = _as(client, household).get("/ui/live")
    assert live.status_code == 200 and live.json()["stamp"]


def test_the_operators_live_stamp_changes_when_the_keeper_keeps_an_audit(
    client: TestClient,
) -> None:
    """One poll refreshes every live section: the operator's stamp also covers what the keeper
    kept (its audit and power flows), a household's does not."""
    household = _household(client)

    def stamps() -> tuple[str, str]:
        return (
            _as(client, OPERATOR_TOKEN).get("/ui/live").json()["stamp"],
            _as(client, household).get("/ui/live").json()["stamp"],
        )

    before = stamps()
    engine = client.app.state.services.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        session.add(KeptAudit(started_s=1, finished_s=2, ok=True))
        session.commit()
    operator, own = stamps()
    assert operator != before[0] and own == before[1]


def test_the_language_switch_only_goes_back_to_a_local_page(client: TestClient) -> None:
    r = client.get("/ui/lang/fr", params={"to": "/ui/household"})
    assert (r.status_code, r.headers["location"]) == (303, "/ui/household")
    assert "voisin_lang=fr" in r.headers["set-cookie"]
    assert client.get("/ui/lang/fr", params={"to": "//elsewhere"}).headers["location"] == "/"
    assert client.get("/ui/lang/fr", params={"to": "https://elsewhere.test/"}).status_code == 422
    assert client.get("/ui/lang/de").status_code == 404
    client.cookies.clear()
    client.cookies.set("voisin_lang", "fr")
    french = client.get("/")
    assert '<html lang="fr">' in french.text and "Se connecter" in french.text


def test_static_files_are_served_locally_and_nothing_else(client: TestClient) -> None:
    js = client.get("/ui/static/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert client.get("/ui/static/app.css").status_code == 200
    assert client.get("/ui/static/views.py").status_code == 404
    page = client.get("/").text
    assert "http://" not in page and "https://" not in page  # no CDN, nothing remote
    assert not any(
        p.startswith("/ui") or p == "/" for p in client.get("/openapi.json").json()["paths"]
    )


def test_the_page_shares_the_household_tokens_abuse_limit(client: TestClient) -> None:
    r = client.post(
        "/households", json={"meter": Account.create().address, "prosumer": True}, headers=OP
    )
    household, token = r.json()["id"], r.json()["token"]
    limiter = client.app.state.services.token_limiter  # type: ignore[attr-defined]
    for _ in range(100_000):  # empty the household's bucket (bounded)
        if limiter.take(f"household:{household}") > 0:
            break
    before = client.get("/offers", headers=OP).json()["total"]
    page = _as(client, token).post(
        "/ui/household/price",
        data={"side": "offer", "price": "10", "form_token": form_token(token)},
    )
    assert page.status_code == 422
    assert re.search(
        r'id="offer-price-error">Too many changes at once; try again in \d+ s\.<', page.text
    )
    assert client.get("/offers", headers=OP).json()["total"] == before
