"""The city's audit across its markets: a meter held by two markets, and what `voisin audit
--city` gives each market (its own feeder network, its own open-data URLs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

import ledger.audit
from api.city import meters_in_several_markets
from api.city_app import create_city_app
from api.cli import main
from api.settings import Settings
from tests.api.conftest import OP, _settings, past_slot
from tests.api.test_city import MARKETS, MARKETS_SETTING, CityUnderTest, _trade


def test_meters_in_several_markets_names_each_shared_meter_once() -> None:
    shared = meters_in_several_markets(
        {"north": {"0xAa", "0xbb"}, "south": {"0xaa"}, "east": {"0xAA", "0xcc"}}
    )
    assert [(s["meter"], s["markets"]) for s in shared] == [("0xaa", ["east", "north", "south"])]
    assert meters_in_several_markets({"north": {"0xaa"}, "south": {"0xbb"}}) == []


@pytest.fixture
def served(tmp_path: Path) -> Settings:
    """A city of two markets that traded, one of whose meters was also registered straight on
    the other market's contract (as a tool beside the API could), then stopped."""
    settings = _settings(tmp_path, markets=MARKETS_SETTING)
    app = create_city_app(settings, background=False)
    with TestClient(app) as client:
        city = CityUnderTest(client, app.state.city, settings)
        north, south = (city.market(name) for name in MARKETS)
        for market in (north, south):
            _trade(market, past_slot(8), 2, sellers=2, buyers=2)
        assert client.get("/v1/city/audit", headers=OP).json()["ok"] is True
        twice = north.register(prosumer=True)
        chain = app.state.city.chain
        south.services.client.register_household(
            chain.operator, Account.create().address, twice.meter.address, prosumer=True
        )
        audit = client.get("/v1/city/audit", headers=OP).json()
        assert audit["ok"] is False, audit
        assert [(s["meter"], s["markets"]) for s in audit["shared_meters"]] == [
            (twice.meter.address.lower(), ["north", "south-2"])
        ]
        assert all(m["ok"] for m in audit["markets"])  # each market alone is consistent
    return settings


def test_the_city_audit_finds_a_meter_of_two_markets_and_gives_each_its_own_feeder_and_urls(
    served: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOISIN_MARKETS", MARKETS_SETTING)
    networks = []
    run_audit = ledger.audit.run_audit

    def noting_the_network(*args, **kwargs):  # type: ignore[no-untyped-def]
        networks.append(kwargs["network"])
        return run_audit(*args, **{**kwargs, "feeder": False})

    monkeypatch.setattr(ledger.audit, "run_audit", noting_the_network)
    report, open_data = tmp_path / "city.json", tmp_path / "open"
    code = main(
        [
            "audit", "--data-dir", str(served.data_dir), "--city", "--feeder",
            "--json", str(report), "--open-data", str(open_data),
            "--open-data-min-households", "1",
            "--open-data-base-url", "https://data.example.org/open/",
        ]
    )  # fmt: skip
    assert code == 1
    both = json.loads(report.read_text())
    assert both["ok"] is False and len(both["shared_meters"]) == 1
    assert both["shared_meters"][0]["markets"] == ["north", "south-2"]
    # Each market's feeder as the server's settings give it (north's is its own).
    assert networks == ["kerber_dorfnetz", "kerber_vorstadtnetz_kabel_1"]
    for name in MARKETS:
        dcat = json.loads((open_data / name / "dcat.jsonld").read_text())
        urls = [d["dcat:downloadURL"]["@id"] for d in dcat["dcat:distribution"]]
        assert urls and all(u.startswith(f"https://data.example.org/open/{name}/") for u in urls)
    # --network given names the network of every market.
    networks.clear()
    code = main(
        [
            "audit", "--data-dir", str(served.data_dir), "--city", "--feeder",
            "--network", "kerber_landnetz_kabel_1",
        ]
    )  # fmt: skip
    assert networks == ["kerber_landnetz_kabel_1"] * 2
