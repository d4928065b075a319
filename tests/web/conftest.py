"""The dashboard under a real browser: ``voisin serve``'s app run by uvicorn in a thread on a
loopback port (embedded chain, SQLite, the outbox running), and headless Chromium from
Debian's ``chromium`` package driven by Playwright (never ``playwright install``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eth_account import Account
from eth_account.signers.local import LocalAccount

from api.app import create_app
from api.services import Services
from api.settings import Settings
from ledger.readings.eip712 import Reading, sign_reading
from ledger.readings.intake import reading_to_json

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
OPERATOR_TOKEN = "operator-token-for-browser-tests-0123456789"
OP = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def chromium_path() -> str:
    return os.environ.get("VOISIN_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@dataclass
class Member:
    id: int
    token: str
    meter: LocalAccount
    prosumer: bool
    import_Wh: int = 0
    export_Wh: int = 0

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Server:
    """A running server and what a test needs to act as the neighbourhood around the page."""

    url: str
    services: Services
    http: httpx.Client
    members: list[Member] = field(default_factory=list)

    def register(self, prosumer: bool, name: str, topup_ueur: int = 0) -> Member:
        meter: LocalAccount = Account.create()
        r = self.http.post(
            "/households",
            json={"meter": meter.address, "prosumer": prosumer, "name": name},
            headers=OP,
        )
        assert r.status_code == 201, r.text
        member = Member(r.json()["id"], r.json()["token"], meter, prosumer)
        if topup_ueur:
            t = self.http.post(
                "/topups", json={"household": member.id, "amount_ueur": topup_ueur}, headers=OP
            )
            assert t.status_code == 201, t.text
        self.members.append(member)
        return member

    def reading(
        self, m: Member, slot: int, import_Wh: int = 0, export_Wh: int = 0
    ) -> dict[str, Any]:
        m.import_Wh += import_Wh
        m.export_Wh += export_Wh
        signed = sign_reading(
            m.meter.key,
            Reading(m.meter.address, slot, m.import_Wh, m.export_Wh),
            self.services.domain,
        )
        return reading_to_json(signed)

    def simulate(self, slots: list[int], flows: dict[int, tuple[int, int]]) -> list[dict[str, Any]]:
        """One step of a simulation per slot: the meters of the members named in ``flows``
        (member id -> (import Wh, export Wh) per slot) post their signed readings, then the
        operator settles the slot. Returns the slots' outcomes."""
        members = [m for m in self.members if m.id in flows]
        outcomes = []
        for slot in slots:
            batch = [self.reading(m, slot, *flows[m.id]) for m in members]
            r = self.http.post("/readings", json={"readings": batch})
            assert r.status_code == 202 and r.json()["accepted"] == len(batch), r.text
            s = self.http.post(f"/market/slots/{slot}/settle", headers=OP, timeout=120)
            assert s.status_code == 200, s.text
            outcomes.append(s.json())
        return outcomes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def past_slot(back: int) -> int:
    return int(time.time()) // 900 - back


@contextmanager
def running_server(data_dir: Path) -> Iterator[Server]:
    """``voisin serve``'s app under uvicorn in a thread, on a free loopback port."""
    settings = Settings(
        data_dir=data_dir,
        operator_token=OPERATOR_TOKEN,
        auto_settle=False,
        outbox_interval_s=0.2,
        chain_process=False,
    )
    app = create_app(settings)
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, name="dashboard-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the dashboard's server did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            yield Server(url, app.state.services, http)
    finally:
        uv.should_exit = True
        thread.join(timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("web") / "data") as running:
        yield running


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Headless Chromium for the tests of this package, closed once they have run.

    Not for the whole session: while Playwright's sync API runs, it marks its event loop as
    the thread's running loop between calls, so an ``asyncio.run()`` or ``anyio.run()`` in a
    later test of the same process (another file on the same pytest-xdist worker) would fail
    with "cannot be called from a running event loop"."""
    path = chromium_path()
    if not Path(path).exists():
        if os.environ.get("CI"):
            pytest.fail(f"chromium is missing at {path}: scripts/install --test installs it")
        pytest.skip("chromium is not installed (scripts/install --test)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        yield b
        b.close()
    # Playwright's exit stops its loop, which clears the running loop; make sure of it, so
    # that no test after this package depends on Playwright's internals.
    if asyncio._get_running_loop() is not None:
        asyncio._set_running_loop(None)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # bypass_csp lets the accessibility test inject axe-core into pages whose policy allows
    # only their own scripts.
    context = browser.new_context(
        locale="en-GB", bypass_csp=True, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def sign_in(page: Any, url: str, token: str) -> None:
    page.goto(url + "/")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is."""
    if not AXE.exists():
        if os.environ.get("CI"):
            pytest.fail(f"axe-core is missing at {AXE}: scripts/install runs npm ci")
        pytest.skip("axe-core is not installed (npm ci)")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
