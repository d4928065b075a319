"""Nothing accepted is lost: a server killed with SIGKILL under a stream of readings, and an RPC
node that goes away and comes back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from ledger import open_chain
from ledger.contract.deploy import open_ledger
from ledger.readings.eip712 import Reading, sign_reading
from ledger.readings.intake import reading_to_json
from tests.api.conftest import OP, OPERATOR_TOKEN, Api, past_slot
from tests.conftest import ANVIL_BIN, ANVIL_KEY, _free_port, _wait_for

ROOT = Path(__file__).resolve().parents[2]


def _serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VOISIN_DATA_DIR": str(data_dir),
        "VOISIN_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "VOISIN_AUTO_SETTLE": "false",
        "VOISIN_OUTBOX_INTERVAL_S": "0.2",
    }
    env.pop("VOISIN_CHAIN", None)
    env.pop("VOISIN_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"voisin serve exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("voisin serve did not come up")


@pytest.mark.slow
def test_a_server_killed_under_load_loses_no_accepted_reading(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve(data_dir, port)
    meters = [Account.create() for _ in range(4)]
    with httpx.Client(base_url=base, timeout=30) as http:
        for m in meters:
            r = http.post("/households", json={"meter": m.address, "prosumer": True}, headers=OP)
            assert r.status_code == 201, r.text
        health = http.get("/health").json()
    contract = health["chain"]["contract"]
    chain_id = int(health["chain"]["chain_id"])
    from ledger.readings.eip712 import domain_separator

    domain = domain_separator(chain_id, contract)
    accepted: list[tuple[str, int]] = []
    stop = threading.Event()
    first = past_slot(400)

    def stream() -> None:
        with httpx.Client(base_url=base, timeout=5) as http:
            for k in range(300):
                if stop.is_set():
                    return
                m = meters[k % len(meters)]
                slot = first + k // len(meters)
                total = 10 * (slot - first + 1)
                signed = sign_reading(m.key, Reading(m.address, slot, total, total), domain)
                body = {"readings": [reading_to_json(signed)]}
                try:
                    r = http.post("/readings", json=body)
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code == 202:
                    accepted.append((m.address, slot))

    writer = threading.Thread(target=stream)
    writer.start()
    while len(accepted) < 40 and writer.is_alive():
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stop.set()
    writer.join()
    assert len(accepted) >= 40

    proc = _serve(data_dir, port)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            backlog = httpx.get(f"{base}/health").json()["backlog"]
            if backlog["readings"] == 0:
                break
            time.sleep(0.3)
        assert backlog["readings"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)

    with open_chain("embedded", data_dir) as chain:
        client, deployment = open_ledger(chain)
        events = client.events(deployment.block_number, int(chain.w3.eth.block_number))
    committed = Counter(
        (e.args["meter"], int(e.args["slot"])) for e in events if e.name == "ReadingCommitted"
    )
    assert all(n == 1 for n in committed.values()), "a reading was committed twice"
    missing = [a for a in accepted if a not in committed]
    assert not missing, f"{len(missing)} accepted readings never reached the chain: {missing[:5]}"


@pytest.mark.anvil
@pytest.mark.slow
def test_readings_queue_while_the_node_is_down_and_reach_it_when_it_returns(
    tmp_path: Path,
) -> None:
    if not ANVIL_BIN.exists():
        pytest.skip("anvil is not installed")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    state = tmp_path / "anvil-state.json"

    def start_anvil() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                str(ANVIL_BIN),
                "--port",
                str(port),
                "--silent",
                "--state",
                str(state),
                "--state-interval",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for(url, proc)
        return proc

    node = start_anvil()
    settings = Settings(
        data_dir=tmp_path / "data",
        operator_token=OPERATOR_TOKEN,
        auto_settle=False,
        chain=url,
        chain_key=ANVIL_KEY,
    )
    app = create_app(settings, background=False)
    try:
        with TestClient(app) as client:
            api = Api(client, app.state.services)
            m = api.register(prosumer=True)
            slot = past_slot(5)
            assert (
                client.post(
                    "/readings", json={"readings": [api.reading(m, slot, export_Wh=7)]}
                ).status_code
                == 202
            )
            api.flush()
            time.sleep(1.5)  # let anvil write its state
            node.send_signal(signal.SIGTERM)
            node.wait(timeout=30)

            queued: list[dict[str, Any]] = [
                api.reading(m, slot + k, export_Wh=5) for k in (1, 2, 3)
            ]
            for reading in queued:
                r = client.post("/readings", json={"readings": [reading]})
                assert r.status_code == 202, r.text
            assert api.services.outbox.run_once().chain_down
            health = client.get("/health")
            assert health.status_code == 503
            assert health.json()["backlog"]["readings"] == 3 and not health.json()["chain"]["ok"]
            assert client.get(f"/households/{m.id}/balance", headers=m.auth).status_code == 200

            node = start_anvil()
            result = api.services.outbox.run_once()
            assert not result.chain_down and result.committed == 3
            assert client.get("/health").json()["backlog"]["readings"] == 0
            state_now = api.services.client.meter_state(m.meter.address)
            assert (state_now.last_slot, state_now.export_Wh) == (slot + 3, 7 + 15)
    finally:
        node.terminate()
        node.wait(timeout=30)


@pytest.mark.slow
def test_a_dead_embedded_node_is_restarted_and_the_queue_reaches_it(tmp_path: Path) -> None:
    """`voisin serve`'s embedded chain runs as a child node process (ledger/chain/node.py). If that
    process dies, readings still queue, /health says the chain is down, and the next outbox
    pass starts the node again on the same data, where the queue then lands."""
    settings = Settings(
        data_dir=tmp_path / "data",
        operator_token=OPERATOR_TOKEN,
        auto_settle=False,
        chain_process=True,
    )
    app = create_app(settings, background=False)
    with TestClient(app) as client:
        api = Api(client, app.state.services)
        node = api.services.chain.node
        assert node is not None and node.alive
        m = api.register(prosumer=True)
        slot = past_slot(5)
        first = client.post("/readings", json={"readings": [api.reading(m, slot, export_Wh=7)]})
        assert first.status_code == 202
        api.flush()

        node.process.send_signal(signal.SIGKILL)
        node.process.wait(timeout=30)
        queued = [api.reading(m, slot + k, export_Wh=5) for k in (1, 2)]
        for reading in queued:
            assert client.post("/readings", json={"readings": [reading]}).status_code == 202
        assert api.services.outbox.run_once().chain_down
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["backlog"]["readings"] == 2

        api.services._revive_node()  # what each pass of the background loop does first
        assert node.alive
        result = api.services.outbox.run_once()
        assert not result.chain_down and result.committed == 2
        assert client.get("/health").json()["backlog"]["readings"] == 0
        state_now = api.services.client.meter_state(m.meter.address)
        assert (state_now.last_slot, state_now.export_Wh) == (slot + 2, 7 + 10)
