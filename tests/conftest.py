"""Fixtures shared by the test suites: the anvil node and fresh chains per backend."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import Chain, open_chain
from ledger.chain.anvil import ANVIL_BIN, free_port, start_anvil

ROOT = Path(__file__).resolve().parent.parent
#: Anvil's first dev account (from its public test mnemonic): funded on every anvil start.
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
#: The name the test modules that start their own servers import.
_free_port = free_port


def _wait_for(url: str, proc: subprocess.Popen[bytes] | None, seconds: float = 30) -> None:
    from web3 import Web3

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"anvil exited with code {proc.returncode}")
        try:
            if Web3(Web3.HTTPProvider(url)).is_connected():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"anvil did not answer at {url} within {seconds} s")


def _xdist_worker() -> str | None:
    """This process's pytest-xdist worker id ("gw0", "gw1"...), or None outside xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER")


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    """A running anvil node: the one .ci/run started (VOISIN_TEST_ANVIL_URL), or our own.

    Under pytest-xdist only the first worker uses the given node: the tests send from anvil's
    first account, and two processes sending from it at once would race for its nonces. Every
    other worker starts a node of its own."""
    given = os.environ.get("VOISIN_TEST_ANVIL_URL")
    if given and _xdist_worker() in (None, "gw0"):
        _wait_for(given, None)
        yield given
        return
    if not ANVIL_BIN.exists():
        if os.environ.get("CI"):
            pytest.fail(f"anvil is missing at {ANVIL_BIN}: scripts/install must install it")
        pytest.skip("anvil is not installed (run scripts/install)")
    # Anvil's own chain id and hardfork, as a JSON-RPC node ships.
    node = start_anvil(chain_id=None, hardfork=None)
    try:
        yield node.url
    finally:
        node.stop()


def _pg_bin() -> Path | None:
    root = Path("/usr/lib/postgresql")
    versions = sorted(root.iterdir(), key=lambda p: p.name) if root.exists() else []
    return versions[-1] / "bin" if versions else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server URL without a database name: VOISIN_TEST_POSTGRES_URL (set by
    .ci/run), or a private cluster started here from the Debian packages."""
    given = os.environ.get("VOISIN_TEST_POSTGRES_URL")
    if given:
        yield given.rstrip("/")
        return
    bin_dir = _pg_bin()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is missing: .ci/run must install the postgresql package")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    # Not under pytest's temporary root: that is private to root, and the server runs as the
    # postgres user.
    data = Path(tempfile.mkdtemp(prefix="voisin-pg-"))
    os.chmod(data, 0o777)
    run_as: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    cluster = data / "cluster"
    subprocess.run(
        [*run_as, str(bin_dir / "initdb"), "-D", str(cluster), "-A", "trust", "-U", "voisin"],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(cluster),
            "-w",
            "-l",
            str(data / "log"),
            "-o",
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=on "
            "-c max_wal_size=64MB -c min_wal_size=32MB",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://voisin@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", str(cluster), "-m", "fast", "stop"],
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the test server (one per test), dropped after the test: a
    database costs some 7.5 MB of disk, and the suite makes over a hundred."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    name = f"voisin_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{postgres_server}/{name}"
    finally:
        try:
            with admin.connect() as conn:
                # FORCE closes the connections a test's engines still hold.
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except SQLAlchemyError:
            pass  # a database left behind goes with the cluster at the end of the session
        admin.dispose()


@pytest.fixture
def embedded_chain(tmp_path: Path) -> Iterator[Chain]:
    """A fresh persistent embedded chain in a temporary data dir."""
    chain = open_chain("embedded", tmp_path / "data")
    yield chain
    chain.close()


@pytest.fixture
def anvil_chain(anvil_url: str) -> Iterator[Chain]:
    """The shared anvil node, with the operator as anvil's first funded account."""
    chain = open_chain(anvil_url, operator_key=ANVIL_KEY)
    yield chain
    chain.close()
