"""A city as its operator runs it: ``voisin serve --markets`` (the embedded chain in its node
process, SQLite per market), households registered and readings settled in two markets over
HTTP, the city's figures, a restart that finds every market again, then ``voisin audit`` per
market and for the city, with its open data one folder per market."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from api.backup import verify_archive
from api.cli import main
from api.process import ServeProcess
from ledger.readings.eip712 import Reading, domain_separator, sign_reading
from ledger.readings.intake import reading_to_json

TOKEN = "city-operator-token-for-tests-0123456789"
OP = {"Authorization": f"Bearer {TOKEN}"}
ENV = {"VOISIN_OPERATOR_TOKEN": TOKEN, "VOISIN_AUTO_SETTLE": "false"}


def _domain(base: str) -> bytes:
    """A market's EIP-712 domain separator, from what its /health says."""
    chain = httpx.get(f"{base}/health", timeout=30).json()["chain"]
    return domain_separator(int(chain["chain_id"]), chain["contract"])


def _run_market(http: httpx.Client, market: str, sellers: int, buyers: int) -> int:
    """Register ``sellers`` and ``buyers`` in ``market``, meter two past slots and settle
    them; the fills' count."""
    base = f"/markets/{market}"
    domain = _domain(str(http.base_url).rstrip("/") + base)
    members: list[tuple[Any, bool]] = []
    for k in range(sellers + buyers):
        meter = Account.create()
        prosumer = k < sellers
        r = http.post(
            f"{base}/v1/households", json={"meter": meter.address, "prosumer": prosumer}, headers=OP
        )
        assert r.status_code == 201, r.text
        if not prosumer:
            t = http.post(
                f"{base}/v1/topups",
                json={"household": r.json()["id"], "amount_ueur": 2_000_000},
                headers=OP,
            )
            assert t.status_code == 201, t.text
        members.append((meter, prosumer))
    first = int(time.time()) // 900 - 6
    for t, slot in enumerate((first, first + 1)):
        batch = [
            reading_to_json(
                sign_reading(
                    meter.key,
                    Reading(
                        meter.address,
                        slot,
                        0 if prosumer else 300 * (t + 1),
                        500 * (t + 1) if prosumer else 0,
                    ),
                    domain,
                )
            )
            for meter, prosumer in members
        ]
        r = http.post(f"{base}/v1/readings", json={"readings": batch})
        assert r.status_code == 202 and r.json()["accepted"] == len(batch), r.text
    fills = 0
    for slot in (first, first + 1):
        deadline = time.monotonic() + 120
        while True:
            r = http.post(f"{base}/v1/market/slots/{slot}/settle", headers=OP, timeout=120)
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # the readings are on their way to the chain
        assert r.status_code == 200, r.text
        fills += int(r.json()["fills"])
    return fills


def test_a_city_served_restarted_and_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    env = {**ENV, "VOISIN_MARKETS": "north,south"}
    log = tmp_path / "serve.log"
    with ServeProcess(data, env, log_path=log, start_timeout_s=180) as server:
        http = httpx.Client(base_url=server.base_url, timeout=60)
        health = http.get("/health").json()
        contracts = {m["name"]: m["contract"] for m in health["markets"]}
        assert sorted(contracts) == ["north", "south"]
        fills = {
            "north": _run_market(http, "north", 2, 1),
            "south": _run_market(http, "south", 1, 2),
        }
        assert all(n > 0 for n in fills.values()), fills
        city = http.get("/v1/city", headers=OP).json()
        assert [m["fills"] for m in city["markets"]] == [fills["north"], fills["south"]]
        assert [m["households"] for m in city["markets"]] == [3, 3]
        # The city page asks for the city's token.
        page = http.get("/city")
        assert page.status_code == 200 and 'action="/city/signin"' in page.text
        # A market's dashboard lives under its prefix.
        signin = http.get("/markets/north/")
        assert 'action="/markets/north/ui/signin"' in signin.text
    assert "a city of 2 markets" in log.read_text()
    assert sorted(p.name for p in (data / "markets").iterdir()) == ["north", "south"]

    # Restarted on the same data, the city finds its markets' contracts and households.
    with ServeProcess(data, env, log_path=log, start_timeout_s=180) as server:
        http = httpx.Client(base_url=server.base_url, timeout=60)
        again = {m["name"]: m["contract"] for m in http.get("/health").json()["markets"]}
        assert again == contracts
        city = http.get("/v1/city", headers=OP).json()
        assert [m["fills"] for m in city["markets"]] == [fills["north"], fills["south"]]
        # Backed up while it serves: the chain, each market's folder and database, and the
        # city's secrets in one archive.
        archive = tmp_path / "city.tar.gz"
        assert main(["backup", "--data-dir", str(data), "--to", str(archive)]) == 0
    said = capsys.readouterr().out
    assert "city of 2 markets" in said and "markets: north, south" in said
    manifest = verify_archive(archive)
    assert {n: m.contract for n, m in manifest.markets.items()} == contracts
    assert {"markets/north/voisin.db", "markets/south/deployments.json"} <= set(manifest.files)

    # Audited once the server stopped: one market, then the whole city with its open data.
    assert main(["audit", "--data-dir", str(data), "--market", "north"]) == 0
    report = tmp_path / "city.json"
    open_data = tmp_path / "open"
    code = main(
        [
            "audit", "--data-dir", str(data), "--city", "--json", str(report),
            "--open-data", str(open_data), "--open-data-min-households", "1",
        ]
    )  # fmt: skip
    assert code == 0
    both = json.loads(report.read_text())
    assert both["ok"] is True
    assert sorted(both["markets"]) == ["north", "south"]
    for name in ("north", "south"):
        assert both["markets"][name]["summary"]["fills"] == fills[name]
        assert both["markets"][name]["summary"]["contract"] == contracts[name]
        assert (open_data / name / "datapackage.json").is_file()
    # The backup restores into another folder as the same city, which audits clean.
    restored = tmp_path / "restored"
    # Its markets keep SQLite in their folders: a database URL is refused, nothing written.
    monkeypatch.setenv("VOISIN_DATABASE_URL", f"sqlite:///{tmp_path / 'one.db'}")
    assert main(["restore", str(archive), "--data-dir", str(restored)]) == 2
    assert "keep SQLite in their folders" in capsys.readouterr().err
    assert not restored.exists()
    monkeypatch.delenv("VOISIN_DATABASE_URL")
    assert main(["restore", str(archive), "--data-dir", str(restored)]) == 0
    assert "--markets north,south" in capsys.readouterr().out
    copy = tmp_path / "restored.json"
    assert main(["audit", "--data-dir", str(restored), "--city", "--json", str(copy)]) == 0
    restored_audit = json.loads(copy.read_text())
    assert restored_audit["ok"] is True
    for name in ("north", "south"):
        assert restored_audit["markets"][name]["summary"]["fills"] == fills[name]
    # Each market's schema revision, by market.
    assert main(["db", "current", "--data-dir", str(data), "--market", "north"]) == 0
    assert main(["db", "upgrade", "--data-dir", str(data), "--market", "south"]) == 0
    assert main(["db", "current", "--data-dir", str(data), "--market", "east"]) == 2


def test_bad_city_settings_are_refused_before_anything_starts(tmp_path: Path) -> None:
    def serve(*extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api.cli", "serve", "--port", "1", *extra],
            env={"VOISIN_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin", **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )

    for names, said in [
        ("North", "market name 'North'"),
        ("n01,n01", "named more than once"),
        ("a/b", "market name 'a/b'"),
        ("-x", "market name '-x'"),
        ("n01:kerber_nowhere", "unknown feeder network 'kerber_nowhere'"),
    ]:
        done = serve(f"--markets={names}")
        assert done.returncode == 2, done.stderr
        assert said in done.stderr, done.stderr
    done = serve("--markets", "n01", "--workers", "2")
    assert done.returncode == 2 and "JSON-RPC chain" in done.stderr
    done = serve("--markets", "n01", env={"VOISIN_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert done.returncode == 2 and "own data directory" in done.stderr
    assert not (tmp_path / "data" / "markets").exists()
    # The audit says what a city's data directory needs.
    assert main(["audit", "--data-dir", str(tmp_path), "--city"]) == 2
    assert main(["audit", "--data-dir", str(tmp_path), "--market", "Bad!"]) == 2
    assert main(["audit", "--data-dir", str(tmp_path), "--market", "n01", "--city"]) == 2


def test_a_simulated_city_is_served_as_it_was_simulated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``voisin simulate --neighbourhoods 2`` leaves a city ``voisin serve --markets`` serves
    as is (the command it prints): the city view's figures are the neighbourhoods' reports'."""
    out = tmp_path / "city"
    code = main(
        [
            "simulate", "--neighbourhoods", "2", "--households", "3", "--first-slot", "44",
            "--slots", "8", "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    served = next(line for line in printed.splitlines() if line.startswith("serve it: "))
    markets = served.rsplit("--markets ", 1)[1].split()[0]
    parts = {
        n: json.loads((out / "neighbourhoods" / n / "report.json").read_text())
        for n in ("n01", "n02")
    }
    assert markets == ",".join(f"{n}:{p['feeder_network']}" for n, p in parts.items())
    env = {**ENV, "VOISIN_MARKETS": markets}
    with ServeProcess(
        out / "data", env, log_path=tmp_path / "serve.log", start_timeout_s=180
    ) as server:
        first = parts["n01"]["first_slot"]
        span = {"from": first, "to": first + parts["n01"]["slots"] - 1}
        city = httpx.get(f"{server.base_url}/v1/city", params=span, headers=OP, timeout=60).json()
    for market in city["markets"]:
        report = parts[market["name"]]
        assert market["feeder_network"] == report["feeder_network"]
        assert market["contract"] == report["contract"]
        assert market["households"] == report["households"]
        assert market["slots_settled"] == report["slots"]
        assert market["fills"] == report["fills"]
        assert market["local_Wh"] == report["local_traded_Wh"]
        assert market["grid_export_Wh"] == report["grid_export_Wh"]
        assert market["grid_import_Wh"] == report["grid_import_Wh"]
        assert market["load_Wh"] == report["load_energy_Wh"]
        assert market["self_sufficiency"] == report["self_sufficiency"]
        assert market["local_share_of_surplus"] == report["local_share_of_surplus"]
