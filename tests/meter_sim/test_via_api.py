"""``voisin simulate --via api``: the same neighbourhood run through a real ``voisin serve``
process on loopback finds the same totals as the in-process run."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from api.cli import main
from api.process import ServeProcess
from meter_sim.run import RunResult, SimulationError, run_simulation
from meter_sim.via_api import ApiCallError, run_via_api
from tests.meter_sim.test_run import FIRST, SLOTS, scenario

pytestmark = pytest.mark.slow

#: What may differ between two runs of one scenario: where and how fast they ran, and the
#: gas (calldata costs depend on the contract's address bytes, the seals' digests over each
#: run's transaction hashes, and batch sizes).
RUN_SPECIFIC = {
    "contract", "wall_s", "gas_used", "gas_readings", "gas_seals", "gas_per_household_slot",
    "gas_per_reading", "gas_per_settled_fill", "disk_bytes", "peak_rss_bytes",
}  # fmt: skip
TOKEN = "via-api-test-operator-token-0123456789"


def serve(data: Path, mechanism: str, tmp_path: Path) -> ServeProcess:
    return ServeProcess(
        data,
        {
            "VOISIN_OPERATOR_TOKEN": TOKEN,
            "VOISIN_AUTO_SETTLE": "false",
            "VOISIN_MECHANISM": mechanism,
            "VOISIN_CHAIN": "embedded",
        },
        log_path=tmp_path / "serve.log",
    )


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    data = tmp_path_factory.mktemp("direct") / "data"
    return run_simulation(scenario(), "midpoint", "embedded", data, first_slot=FIRST, slots=SLOTS)


def test_a_run_through_the_api_finds_the_same_totals_as_in_process(
    direct: RunResult, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = serve(data, "midpoint", tmp_path).start()
    try:
        via_api = run_via_api(
            scenario(),
            server.base_url,
            TOKEN,
            data_dir=data,
            mechanism="midpoint",
            first_slot=FIRST,
            slots=SLOTS,
            before_report=server.stop,
        )
    finally:
        server.stop()
    a, d = via_api.report, direct.report
    assert d["fills"] > 0 and d["local_traded_Wh"] > 0, "the window must trade"
    assert a["audit_ok"], a["audit_findings"]
    assert a["mechanism"] == "midpoint"
    assert {k: v for k, v in a.items() if k not in RUN_SPECIFIC} == {
        k: v for k, v in d.items() if k not in RUN_SPECIFIC
    }
    assert via_api.savings_ueur == direct.savings_ueur
    # Settling went through the server: its mirror holds the slots' outcomes, and each
    # reading was committed once, through the API's outbox.
    assert a["readings"] == len(scenario().households) * SLOTS
    assert a["gas_used"] > 0


def test_a_wrong_token_or_a_used_deployment_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serve(data, "pay-as-clear", tmp_path) as server:
        with pytest.raises(ApiCallError, match="401"):
            run_via_api(scenario(), server.base_url, "not-the-token", data_dir=data, slots=1)
        taken = httpx.post(
            f"{server.base_url}/households",
            json={"meter": "0x" + "11" * 20, "prosumer": False},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert taken.status_code == 201
        with pytest.raises(SimulationError, match="fresh deployment"):
            run_via_api(scenario(), server.base_url, TOKEN, data_dir=data, slots=1)


def test_voisin_simulate_via_api_writes_its_report_and_stops_the_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            *("simulate", "--households", "3", "--first-slot", "46", "--slots", "2"),
            *("--via", "api", "--out", str(out)),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["readings"] == 6 and report["audit_ok"]
    log = (out / "serve.log").read_text()
    assert "Uvicorn running" in log or "Application startup complete" in log
    base = err.split("starting voisin serve on ")[1].split()[0]
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/health", timeout=2)
