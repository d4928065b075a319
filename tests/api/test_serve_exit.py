"""``voisin serve`` exits non-zero when it cannot run, so that a supervisor (systemd's
``Restart=on-failure``) restarts it, and stops cleanly on SIGTERM, so that a deliberate stop is
not taken for a failure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from api.process import ServeProcess
from tests.api.conftest import OPERATOR_TOKEN
from tests.conftest import ANVIL_KEY

ROOT = Path(__file__).resolve().parents[2]


def _serve(tmp_path: Path, port: int, **env: str) -> subprocess.CompletedProcess[str]:
    """``voisin serve`` in a fresh data dir with ``env``, run until it exits (2 minutes at most)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VOISIN_")}
    clean.update({"VOISIN_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_invalid_settings_exit_2_and_say_which() -> None:
    run = _serve(Path("/nonexistent"), _free_port(), VOISIN_MAX_JSON_DEPTH="1")
    assert run.returncode == 2
    assert "max_json_depth" in run.stderr


@pytest.mark.slow
def test_a_chain_that_cannot_be_reached_at_start_is_a_failure(tmp_path: Path) -> None:
    run = _serve(
        tmp_path, _free_port(), VOISIN_CHAIN="http://127.0.0.1:9", VOISIN_CHAIN_KEY=ANVIL_KEY
    )
    assert run.returncode == 3
    assert "cannot reach the chain node at http://127.0.0.1:9" in run.stderr


@pytest.mark.slow
def test_a_port_already_taken_is_a_failure(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        run = _serve(tmp_path, taken.getsockname()[1], VOISIN_OPERATOR_TOKEN=OPERATOR_TOKEN)
    assert run.returncode == 3
    assert "address already in use" in run.stderr


@pytest.mark.slow
def test_sigterm_is_a_clean_stop_and_a_crash_is_not(tmp_path: Path) -> None:
    """uvicorn shuts down on SIGTERM and then re-raises it: systemd counts a death by SIGTERM
    as clean, as it does exit status 0. A segmentation fault is a failure."""
    env = {"VOISIN_OPERATOR_TOKEN": OPERATOR_TOKEN}
    server = ServeProcess(tmp_path / "data", env, log_path=tmp_path / "serve.log").start()
    # While it runs, the data directory says where it answers (voisin audit, voisin db
    # upgrade read it); once stopped, nothing says so any more.
    assert (tmp_path / "data" / "serve.url").read_text() == f"{server.base_url}/"
    assert server.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in (tmp_path / "serve.log").read_text()
    assert not (tmp_path / "data" / "serve.url").exists()
    server.start()
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSEGV)
    assert server.proc.wait(30) == -signal.SIGSEGV
