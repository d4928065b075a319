"""The first run, as a new user makes it: ``cd`` to a folder of one's own and ``voisin serve``
with the default (relative) data directory. The server, its chain node and ``voisin audit``
must all use that folder's ``data``, nothing else may appear in the folder or in the
repository's, and the server must print where the dashboard is and where the operator's token
is (never the token itself)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from api.process import free_port
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
#: The installed ``voisin`` program, as a user runs it (not ``python -m`` from the repository).
VOISIN = Path(sys.executable).parent / "voisin"
#: The lines ``voisin serve`` prints once it listens: where to go, and where the token is.
DASHBOARD = re.compile(r"^Dashboard: (http://\S+/)$", re.M)
TOKEN_AT = re.compile(r"^Operator token: (in (/.+)|from VOISIN_OPERATOR_TOKEN)$", re.M)


@dataclass
class FirstRun:
    """A ``voisin serve`` started in ``cwd``: what it printed, and where it said things are."""

    proc: subprocess.Popen[str]
    cwd: Path
    log: Path
    printed: str
    dashboard: str
    #: The operator token's file, as printed (``None``: from VOISIN_OPERATOR_TOKEN).
    token_file: Path | None

    @property
    def base_url(self) -> str:
        return self.dashboard.rstrip("/")

    def output(self) -> str:
        """Everything the server wrote so far (stdout, then its stderr log)."""
        return self.printed + self.log.read_text(errors="replace")


@contextmanager
def voisin_serve_in(cwd: Path, log: Path, **env: str) -> Iterator[FirstRun]:
    """``voisin serve`` started in ``cwd`` with ``env`` as its only ``VOISIN_*`` settings,
    until it has printed where its dashboard and its operator token are; SIGTERM at the end."""
    assert VOISIN.exists(), f"the voisin program is not installed at {VOISIN}"
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("VOISIN_")}
    child_env.update(env)
    lines: queue.Queue[str] = queue.Queue()
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [str(VOISIN), "serve", "--port", str(free_port())],
            cwd=cwd,
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    assert proc.stdout is not None
    stdout = proc.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    printed = ""
    try:
        deadline = time.monotonic() + 120
        while not TOKEN_AT.search(printed):
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"voisin serve did not start:\n{printed}{log.read_text()[-3000:]}")
            with suppress(queue.Empty):
                printed += lines.get(timeout=0.5)
        dashboard = DASHBOARD.search(printed)
        token_at = TOKEN_AT.search(printed)
        assert dashboard is not None and token_at is not None, printed
        token_file = Path(token_at[2]) if token_at[2] else None
        yield FirstRun(proc, cwd, log, printed, dashboard[1], token_file)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def register_household(run: FirstRun, operator_token: str) -> tuple[int, str]:
    """A household registered by the operator: its id and its token."""
    r = httpx.post(
        f"{run.base_url}/households",
        json={"meter": Account.create().address, "prosumer": False, "name": "Première"},
        headers={"Authorization": f"Bearer {operator_token}"},
        timeout=120,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), str(r.json()["token"])


def test_the_data_dir_is_made_absolute_once_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VOISIN_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert Settings().data_dir == tmp_path / "data"
    assert Settings(data_dir=Path("runs/../state")).data_dir == tmp_path / "state"
    monkeypatch.setenv("VOISIN_DATA_DIR", "here")
    settings = Settings()
    monkeypatch.chdir(ROOT)  # later changes of directory do not move it
    assert settings.data_dir == tmp_path / "here"
    assert settings.resolved_database_url() == f"sqlite:///{tmp_path / 'here' / 'voisin.db'}"


@pytest.mark.slow
def test_voisin_serve_from_another_folder_uses_that_folder_and_says_where_things_are(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    repo_data_before = (ROOT / "data").exists()
    with voisin_serve_in(home, tmp_path / "serve.log") as run:
        data = home / "data"
        assert run.dashboard.startswith("http://127.0.0.1:")
        assert run.printed.splitlines()[0] == (
            f"Voisin API on {run.base_url} — chain embedded, data in {data}"
        )
        assert f"\nOperator token: in {data / 'operator.token'}\n" in run.printed
        assert run.token_file == data / "operator.token"
        assert run.token_file.stat().st_mode & 0o777 == 0o600
        token = run.token_file.read_text().strip()

        # The node opened the same folder's chain with the same operator: the contract is
        # deployed, and the server answers on the printed URL.
        assert (data / "chain" / "chain.lock").is_file() and (data / "node.log").is_file()
        assert sorted(p.name for p in home.iterdir()) == ["data"]
        assert (ROOT / "data").exists() == repo_data_before
        health = httpx.get(f"{run.base_url}/health", timeout=60).json()
        assert health["ok"] is True and health["chain"]["contract"]

        # The dashboard's page of a household the operator registers loads.
        household, household_token = register_household(run, token)
        with httpx.Client(base_url=run.base_url, timeout=60, follow_redirects=True) as browser:
            signed = browser.post("/ui/signin", data={"token": household_token})
            assert signed.status_code == 200 and str(signed.url).endswith("/ui/household")
            assert f"Household {household} — Première" in signed.text

        # voisin audit in the same folder finds the server's data dir and says what to do.
        audit = subprocess.run(
            [str(VOISIN), "audit", "--feeder"],
            cwd=home,
            env={k: v for k, v in os.environ.items() if not k.startswith("VOISIN_")},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert audit.returncode == 3, audit.stderr
        first, second = audit.stderr.splitlines()
        assert re.fullmatch(
            rf"voisin audit: {re.escape(str(data))} is in use: another process holds its chain "
            r"\(pid \d+\), most likely a running voisin serve\.",
            first,
        )
        assert second == (
            f"Ask that server for the audit instead: GET {run.base_url}/audit/report"
            "?feeder=true with the operator token (Authorization: Bearer TOKEN), or stop it and "
            "run voisin audit again."
        )
        served = httpx.get(
            f"{run.base_url}/audit/report",
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )
        assert served.status_code == 200 and served.json()["ok"] is True
    assert token not in run.output()
    assert sorted(p.name for p in home.iterdir()) == ["data"]


@pytest.mark.slow
def test_voisin_serve_says_the_token_comes_from_the_environment_and_writes_no_token_file(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    token = "a-token-of-my-own-choosing-0123456789"
    with voisin_serve_in(
        home, tmp_path / "serve.log", VOISIN_DATA_DIR="state/here", VOISIN_OPERATOR_TOKEN=token
    ) as run:
        assert run.token_file is None
        assert "\nOperator token: from VOISIN_OPERATOR_TOKEN\n" in run.printed
        assert run.printed.splitlines()[0].endswith(f", data in {home / 'state' / 'here'}")
        assert (home / "state" / "here" / "chain").is_dir()
        assert not (home / "state" / "here" / "operator.token").exists()
        register_household(run, token)
    assert token not in run.output()
    assert sorted(p.name for p in home.iterdir()) == ["state"]
