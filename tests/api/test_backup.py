"""`voisin backup` and `voisin restore`: a populated ledger comes back whole in another
directory, a backup taken while a real `voisin serve` takes readings converges once restored,
PostgreSQL goes through pg_dump and pg_restore, and every refusal writes nothing."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from api.app import create_app
from api.backup import (
    CHAIN_MEMBER,
    FORMAT_VERSION,
    FileEntry,
    Manifest,
    MarketEntry,
    Refused,
    compression_of,
    human_size,
    libpq_target,
    restore,
    safe_member,
    verify_archive,
)
from api.chain_gate import WRITES_LOCK, ChainGate
from api.cli import main
from api.process import ServeProcess
from api.recovery import Recovered
from ledger import open_chain
from ledger.contract.deploy import open_ledger
from ledger.readings.eip712 import Reading, domain_separator, sign_reading
from ledger.readings.intake import reading_to_json
from tests.api.conftest import OP, OPERATOR_TOKEN, Api, Member, _settings, past_slot

# ───────────────────────────── Helpers ─────────────────────────────


@pytest.fixture(autouse=True)
def _voisin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands read VOISIN_* like a user's shell: none of a developer's leak in."""
    for name in list(os.environ):
        if name.startswith("VOISIN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VOISIN_OPERATOR_TOKEN", OPERATOR_TOKEN)


def voisin(*argv: str | Path) -> int:
    return main([str(a) for a in argv])


def wait_until(condition: Any, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def balances(api: Api, members: list[Member]) -> dict[int, dict[str, Any]]:
    out = {}
    for m in members:
        r = api.client.get(f"/households/{m.id}/balance", headers=m.auth)
        assert r.status_code == 200, r.text
        out[m.id] = r.json()
    return out


def populate(api: Api) -> int:
    """Households, top-ups, orders, readings over two slots, the first one settled; returns
    the settled slot."""
    seller = api.register(prosumer=True, name="Amélie")
    buyer = api.register(prosumer=False, topup_ueur=2_000_000, name="Chloé")
    other = api.register(prosumer=True, topup_ueur=500_000)
    first = past_slot(6)
    r = api.client.post(
        "/bids",
        json={"price_limit_ueur_per_kWh": 180_000, "first_slot": first, "last_slot": first + 1},
        headers=buyer.auth,
    )
    assert r.status_code == 202, r.text
    for t in range(2):
        batch = [
            api.reading(seller, first + t, export_Wh=600 + 100 * t),
            api.reading(buyer, first + t, import_Wh=700),
            api.reading(other, first + t, import_Wh=100, export_Wh=50),
        ]
        assert api.client.post("/readings", json={"readings": batch}).status_code == 202
    api.flush()
    r = api.client.post(f"/market/slots/{first}/settle", headers=OP)
    assert r.status_code == 200 and r.json()["matched_Wh"] > 0, r.text
    api.flush()
    return first


# ───────────────────────────── Pure parts ─────────────────────────────


def _manifest(**overrides: Any) -> Manifest:
    fields: dict[str, Any] = {
        "voisin_version": "0.1.0",
        "created_utc": "2026-01-01T00:00:00Z",
        "chain_kind": "embedded",
        "chain_id": 131277322940537,
        "contract": "0x" + "ab" * 20,
        "head_block": 42,
        "database_dialect": "sqlite",
        "schema_revision": None,
        "files": {
            CHAIN_MEMBER: FileEntry("0" * 64, 10, 0o644),
            "voisin.db": FileEntry("1" * 64, 20, 0o644),
            "deployments.json": FileEntry("2" * 64, 30, 0o644),
            "operator.key": FileEntry("3" * 64, 65, 0o600),
        },
    }
    return Manifest(**{**fields, **overrides})


def test_a_manifest_reads_back_as_written_with_octal_modes() -> None:
    manifest = _manifest()
    text = manifest.to_json()
    assert json.loads(text)["files"]["operator.key"]["mode"] == "600"
    assert json.loads(text)["format"] == FORMAT_VERSION
    assert Manifest.from_json(text) == manifest
    assert manifest.secrets == ["operator.key"]


def _city_manifest() -> Manifest:
    entry = FileEntry("4" * 64, 40, 0o644)
    names = ("deployments.json", "voisin.db")
    return _manifest(
        contract="",
        files={
            CHAIN_MEMBER: entry,
            "operator.key": FileEntry("3" * 64, 65, 0o600),
            **{f"markets/{n}/{f}": entry for n in ("north", "s-2") for f in names},
            "markets/north/operator.token": FileEntry("5" * 64, 43, 0o600),
        },
        markets={
            "north": MarketEntry("0x" + "cd" * 20, "r0006"),
            "s-2": MarketEntry("0x" + "ef" * 20, None),
        },
    )


def test_a_city_manifest_lists_its_markets_and_needs_each_ones_files() -> None:
    manifest = _city_manifest()
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert manifest.database_members == ["markets/north/voisin.db", "markets/s-2/voisin.db"]
    assert manifest.secrets == ["markets/north/operator.token", "operator.key"]
    # One market's manifest has no markets entry at all.
    assert "markets" not in json.loads(_manifest().to_json())
    data = json.loads(manifest.to_json())
    del data["files"]["markets/s-2/voisin.db"]
    with pytest.raises(Refused, match=r"lists no markets/s-2/voisin\.db"):
        Manifest.from_json(json.dumps(data))
    data = json.loads(manifest.to_json())
    data["markets"]["../up"] = data["markets"].pop("north")
    with pytest.raises(Refused, match="is not a market's name"):
        Manifest.from_json(json.dumps(data))
    data["markets"] = {"north": "0xcd"}
    with pytest.raises(Refused, match="lacks or garbles a field"):
        Manifest.from_json(json.dumps(data))


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"format": 99}, "this Voisin reads backup format 1"),
        ({"chain_kind": "carrier-pigeon"}, "unknown chain kind"),
        ({"files": {"../etc/passwd": {"sha256": "0" * 64, "size": 1, "mode": "644"}}}, "plain"),
        ({"files": {"voisin.db": {"sha256": "0" * 64, "size": 1, "mode": "644"}}}, "lists no"),
    ],
)
def test_a_bad_manifest_is_refused_saying_why(change: dict[str, Any], says: str) -> None:
    data = json.loads(_manifest().to_json()) | change
    with pytest.raises(Refused, match=says):
        Manifest.from_json(json.dumps(data))


def test_member_names_must_stay_inside_the_folder_they_are_unpacked_in() -> None:
    assert safe_member("chain/chain.lmdb/data.mdb") and safe_member("voisin.db")
    for bad in ("", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a\\b"):
        assert not safe_member(bad), bad


def test_the_archive_name_chooses_its_compression_and_sizes_read_for_people() -> None:
    assert [compression_of(Path(n)) for n in ("b.tar", "b.tar.gz", "b.tgz", "b.tar.xz", "b")] == [
        "",
        "gz",
        "gz",
        "xz",
        "gz",
    ]
    assert [human_size(n) for n in (812, 3_400, 12_000_000, 1_200_000_000)] == [
        "812 B",
        "3.4 kB",
        "12.0 MB",
        "1.2 GB",
    ]


def test_pg_tools_get_a_libpq_url_and_the_password_out_of_the_process_list() -> None:
    url, env = libpq_target("postgresql+psycopg://voisin:s3cret@db.example:5433/street")
    assert url == "postgresql://voisin@db.example:5433/street"
    assert env == {"PGPASSWORD": "s3cret"}


# ───────────────────────────── The chain-writes lock ─────────────────────────────


def _hold_writes_lock(path: Path) -> Any:
    """Take the file lock as `voisin backup` does (another open file description)."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_chain_work_waits_while_a_backup_holds_the_writes_lock_and_then_goes_on(
    tmp_path: Path,
) -> None:
    gate = ChainGate(tmp_path / WRITES_LOCK)
    fd = _hold_writes_lock(tmp_path / WRITES_LOCK)
    done: list[float] = []
    worker = threading.Thread(target=lambda: done.append(gate.on_chain(time.monotonic)))
    worker.start()
    time.sleep(0.3)
    assert not done, "a chain write ran while the backup held the lock"
    # A timed acquisition (GET /health's) gives up instead of waiting for the backup.
    assert not gate.lock.acquire(timeout=0.05)
    released = time.monotonic()
    os.close(fd)  # the backup lets go
    worker.join(5)
    assert done and done[0] >= released
    assert gate.lock.waits == 1 and gate.lock.waited_s >= 0.3
    assert gate.up


def test_the_writes_lock_is_held_from_the_outermost_acquisition_to_the_outermost_release(
    tmp_path: Path,
) -> None:
    import fcntl

    path = tmp_path / WRITES_LOCK
    gate = ChainGate(path)
    probe = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def free() -> bool:
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(probe, fcntl.LOCK_UN)
        return True

    with gate.lock:
        assert not free()
        with gate.lock:
            assert not free()
        assert not free()
    assert free()
    # Only the owner may release (the outbox's hand-over relies on the RuntimeError).
    with pytest.raises(RuntimeError):
        gate.lock.release()
    os.close(probe)


# ───────────────────────────── Round trip, embedded + SQLite ─────────────────────────────


@pytest.mark.slow
def test_a_populated_ledger_comes_back_whole_in_another_directory(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    app = create_app(settings, background=False)
    with TestClient(app) as client:
        api = Api(client, app.state.services)
        settled = populate(api)
        members = list(api.members)
        before = balances(api, members)
        late = api.reading(members[0], settled + 2, export_Wh=300)  # signed, not posted yet
    archive = tmp_path / "street.tar.gz"
    started = time.monotonic()
    assert voisin("backup", "--data-dir", settings.data_dir, "--to", archive) == 0
    took = time.monotonic() - started
    assert archive.stat().st_mode & 0o777 == 0o600
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert names[0] == "manifest.json"
    assert set(names[1:]) == {CHAIN_MEMBER, "voisin.db", "deployments.json", "operator.key",
                              "key.secret"}  # fmt: skip
    print(f"backup of the test ledger: {human_size(archive.stat().st_size)} in {took:.2f} s")

    restored = tmp_path / "elsewhere" / "data"
    assert voisin("restore", archive, "--data-dir", restored) == 0
    assert (restored / "operator.key").stat().st_mode & 0o777 == 0o600
    assert voisin("audit", "--data-dir", restored) == 0

    again = create_app(_settings(tmp_path, data_dir=restored), background=False)
    with TestClient(again) as client:
        api = Api(client, again.state.services, members)
        assert balances(api, members) == before
        # The meters go on where the backup left off; what it held is a duplicate.
        r = client.post("/readings", json={"readings": [late]})
        assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
        assert api.flush().committed == 1
        state = api.services.client.meter_state(members[0].meter.address)
        assert (state.last_slot, state.export_Wh) == (settled + 2, members[0].export_Wh)


# ───────────────────────────── Under write load ─────────────────────────────


@dataclass
class Meters:
    """Meters that sign cumulative readings slot after slot, and what the server answered."""

    domain: bytes
    first: int
    keys: list[LocalAccount]
    signed: list[dict[str, Any]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)

    def reading(self, k: int) -> dict[str, Any]:
        m = self.keys[k % len(self.keys)]
        slot = self.first + k // len(self.keys)
        total = 10 * (slot - self.first + 1)
        return reading_to_json(
            sign_reading(m.key, Reading(m.address, slot, total, total), self.domain)
        )


@pytest.mark.slow
def test_a_backup_under_write_load_restores_to_a_ledger_that_converges(tmp_path: Path) -> None:
    env = {
        "VOISIN_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "VOISIN_AUTO_SETTLE": "false",
        "VOISIN_OUTBOX_INTERVAL_S": "0.2",
        "VOISIN_LOG_FORMAT": "text",
    }
    data_dir = tmp_path / "data"
    log = tmp_path / "serve.log"
    keys = [Account.create() for _ in range(4)]
    with ServeProcess(data_dir, env, log_path=log) as server:
        http = httpx.Client(base_url=server.base_url, timeout=60)
        for m in keys:
            r = http.post("/households", json={"meter": m.address, "prosumer": True}, headers=OP)
            assert r.status_code == 201, r.text
        health = http.get("/health").json()
        chain_id, contract = int(health["chain"]["chain_id"]), health["chain"]["contract"]
        meters = Meters(domain_separator(chain_id, contract), past_slot(400), keys)
        stop = threading.Event()
        topup_s: list[tuple[float, float]] = []

        def post_readings() -> None:
            with httpx.Client(base_url=server.base_url, timeout=60) as client:
                for k in range(1_000):
                    if stop.is_set():
                        return
                    reading = meters.reading(k)
                    meters.signed.append(reading)
                    r = client.post("/readings", json={"readings": [reading]})
                    meters.answers.append(r.status_code)

        def top_up() -> None:
            # Requests that write the chain themselves (intents): they wait for the backup.
            with httpx.Client(base_url=server.base_url, timeout=60) as client:
                while not stop.is_set():
                    t0 = time.monotonic()
                    r = client.post("/topups", json={"household": 1, "amount_ueur": 1}, headers=OP)
                    assert r.status_code == 201, r.text
                    topup_s.append((t0, time.monotonic() - t0))

        writers = [threading.Thread(target=post_readings), threading.Thread(target=top_up)]
        for w in writers:
            w.start()
        wait_until(lambda: len(meters.signed) >= 120)
        archive = tmp_path / "under-load.tar.gz"
        backup_started = time.monotonic()
        assert voisin("backup", "--data-dir", data_dir, "--to", archive) == 0
        backup_s = time.monotonic() - backup_started
        at_backup = len(meters.signed)
        wait_until(lambda: len(meters.signed) >= at_backup + 60)
        stop.set()
        for w in writers:
            w.join(60)
        http.close()
    assert all(code == 202 for code in meters.answers)
    during = [s for t0, s in topup_s if backup_started - 5 <= t0 <= backup_started + backup_s]
    waited = [line for line in log.read_text().splitlines() if "chain writes waited" in line]
    print(
        f"backup under load: {human_size(archive.stat().st_size)} in {backup_s:.2f} s; "
        f"top-ups around it took at most {max(during, default=0):.2f} s; the server waited: "
        f"{waited}"
    )

    restored = tmp_path / "restored"
    assert voisin("restore", archive, "--data-dir", restored) == 0
    restarted = ServeProcess(restored, env, log_path=tmp_path / "restored.log")
    with restarted as server, httpx.Client(base_url=server.base_url, timeout=60) as http:
        # Every reading signed, re-posted in order: accepted again, or already recorded.
        verdicts: Counter[str] = Counter()
        for reading in meters.signed:
            r = http.post("/readings", json={"readings": [reading]})
            assert r.status_code == 202, r.text
            body = r.json()
            verdicts.update("accepted" if body["accepted"] else "duplicate" for _ in [0])
        assert verdicts["accepted"] > 0 and verdicts["duplicate"] > 0, verdicts
        deadline = time.monotonic() + 120
        while http.get("/health").json()["backlog"]["readings"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert http.get("/health").json()["backlog"]["readings"] == 0
    assert voisin("audit", "--data-dir", restored) == 0

    with open_chain("embedded", restored) as chain:
        client, deployment = open_ledger(chain)
        events = client.events(deployment.block_number, int(chain.w3.eth.block_number))
        states = {m.address: client.meter_state(m.address) for m in keys}
    committed = Counter(
        (e.args["meter"], int(e.args["slot"])) for e in events if e.name == "ReadingCommitted"
    )
    assert all(n == 1 for n in committed.values()), "a reading was committed twice"
    posted = {(r["meter"], int(r["slot"])) for r in meters.signed}
    assert set(committed) == posted
    # The registers on chain are exactly the last reading each meter signed, counted once.
    last = {r["meter"]: r for r in meters.signed}
    for address, state in states.items():
        assert (state.last_slot, state.export_Wh) == (
            int(last[address]["slot"]),
            int(last[address]["export_Wh"]),
        )


# ───────────────────────────── PostgreSQL ─────────────────────────────


@pytest.fixture
def second_postgres(postgres_server: str) -> Iterator[str]:
    """Another empty database on the test server, for the restore."""
    from sqlalchemy import create_engine, text

    name = f"voisin_restored_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{postgres_server}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_a_postgresql_ledger_goes_through_pg_dump_and_pg_restore(
    tmp_path: Path, postgres_url: str, second_postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, database_url=postgres_url)
    app = create_app(settings, background=False)
    with TestClient(app) as client:
        api = Api(client, app.state.services)
        populate(api)
        members = list(api.members)
        before = balances(api, members)
    archive = tmp_path / "pg.tar.gz"
    monkeypatch.setenv("VOISIN_DATABASE_URL", postgres_url)
    assert voisin("backup", "--data-dir", settings.data_dir, "--to", archive) == 0
    with tarfile.open(archive) as tar:
        assert "database.pgdump" in tar.getnames() and "voisin.db" not in tar.getnames()
    restored = tmp_path / "restored"
    # The source database is not empty: refused, and nothing written.
    assert voisin("restore", archive, "--data-dir", restored) == 2
    assert not restored.exists()
    monkeypatch.setenv("VOISIN_DATABASE_URL", second_postgres)
    assert voisin("restore", archive, "--data-dir", restored) == 0
    assert voisin("audit", "--data-dir", restored) == 0
    again = create_app(
        _settings(tmp_path, data_dir=restored, database_url=second_postgres), background=False
    )
    with TestClient(again) as client:
        assert balances(Api(client, again.state.services), members) == before


# ───────────────────────────── Refusals ─────────────────────────────


@pytest.fixture(scope="module")
def small_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with two households and their readings on chain."""
    root = tmp_path_factory.mktemp("small")
    app = create_app(_settings(root), background=False)
    with TestClient(app) as client:
        api = Api(client, app.state.services)
        a, b = api.register(prosumer=True), api.register(prosumer=False, topup_ueur=10_000)
        slot = past_slot(3)
        batch = [api.reading(a, slot, export_Wh=40), api.reading(b, slot, import_Wh=30)]
        assert client.post("/readings", json={"readings": batch}).status_code == 202
        api.flush()
    return root / "data"


@pytest.fixture
def archive(small_ledger: Path, tmp_path: Path) -> Path:
    path = tmp_path / "small.tar"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOISIN_OPERATOR_TOKEN", OPERATOR_TOKEN)
        assert voisin("backup", "--data-dir", small_ledger, "--to", path) == 0
    return path


def test_a_backup_refuses_to_overwrite_an_existing_file_unless_forced(
    small_ledger: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = archive.read_bytes()
    assert voisin("backup", "--data-dir", small_ledger, "--to", archive) == 2
    assert "exists; choose another name, or --force" in capsys.readouterr().err
    assert archive.read_bytes() == before
    assert voisin("backup", "--data-dir", small_ledger, "--to", archive, "--force") == 0
    assert not [p for p in archive.parent.iterdir() if p.name.startswith(f".{archive.name}")]


def test_a_backup_refuses_a_folder_without_voisin_data_and_an_unwritable_destination(
    tmp_path: Path, small_ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert voisin("backup", "--data-dir", empty, "--to", tmp_path / "x.tar.gz") == 2
    assert "holds no Voisin data" in capsys.readouterr().err
    assert voisin("backup", "--data-dir", small_ledger, "--to", tmp_path / "no" / "x.tgz") == 2
    assert "cannot write to --to" in capsys.readouterr().err
    assert not (tmp_path / "x.tar.gz").exists()


def test_a_damaged_archive_is_refused_before_anything_is_written(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tarfile.open(archive) as tar:
        member = tar.getmember("voisin.db")
    data = bytearray(archive.read_bytes())
    data[member.offset_data + member.size // 2] ^= 0xFF  # one flipped byte in the database
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(bytes(data))
    target = tmp_path / "target"
    assert voisin("restore", damaged, "--data-dir", target) == 2
    assert "voisin.db does not match its checksum" in capsys.readouterr().err
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".target")] == []
    # A truncated compressed archive: damaged, nothing written either.
    truncated = tmp_path / "truncated.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(truncated, "w:gz") as out:
        for m in src:
            out.addfile(m, src.extractfile(m))
    truncated.write_bytes(truncated.read_bytes()[:-200])
    assert voisin("restore", truncated, "--data-dir", target) == 2
    assert "is damaged" in capsys.readouterr().err
    assert not target.exists()


def test_a_restore_refuses_a_non_empty_folder_unless_forced_and_then_moves_it_aside(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    assert voisin("restore", archive, "--data-dir", target) == 2
    assert "is not empty (notes.txt)" in capsys.readouterr().err
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert voisin("restore", archive, "--data-dir", target, "--force") == 0
    assert (target / "deployments.json").is_file() and not (target / "notes.txt").exists()
    (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith("target.before-restore-")]
    assert (aside / "notes.txt").read_text() == "mine"
    # An empty folder is restored into as it is.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert voisin("restore", archive, "--data-dir", empty) == 0
    shutil.rmtree(empty)


def test_a_restore_stopped_half_way_keeps_the_server_off_until_it_is_run_again(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restore moved the old folder aside and stopped before the backup's was in place:
    `voisin serve` refuses the folder, saying how to finish; the same restore run again puts
    it in place and the server may start. A restore refused before it wrote leaves no trace."""
    import api.backup as backup_module
    from api.cli import _restore_problem

    target = tmp_path / "target"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    replace = os.replace

    def stop(src: Any, dst: Any) -> None:
        raise KeyboardInterrupt("the machine went down")

    monkeypatch.setattr(backup_module.os, "replace", stop)
    with pytest.raises(KeyboardInterrupt):
        restore(archive, target, force=True, say=lambda _: None)
    monkeypatch.setattr(backup_module.os, "replace", replace)
    assert not target.exists()  # moved aside, the backup's not in place
    settings = _settings(tmp_path, data_dir=target)
    problem = _restore_problem(settings)
    assert problem is not None and "did not finish" in problem and str(archive) in problem
    monkeypatch.setenv("VOISIN_DATA_DIR", str(target))
    monkeypatch.setenv("VOISIN_OPERATOR_TOKEN", OPERATOR_TOKEN)
    monkeypatch.setattr("uvicorn.Server.run", lambda *_a, **_k: pytest.fail("it served"))
    assert voisin("serve") == 2
    assert voisin("restore", archive, "--data-dir", target, "--force") == 0
    assert (target / "deployments.json").is_file()
    assert _restore_problem(settings) is None
    # Refused before writing (not empty, no --force): nothing to finish.
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert voisin("restore", archive, "--data-dir", other) == 2
    assert _restore_problem(_settings(tmp_path, data_dir=other)) is None


def test_a_restore_refuses_a_folder_whose_chain_a_running_process_holds(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "busy"
    (target / "chain").mkdir(parents=True)
    fd = _hold_writes_lock(target / "chain" / "chain.lock")  # as a running node holds it
    try:
        assert voisin("restore", archive, "--data-dir", target, "--force") == 2
    finally:
        os.close(fd)
    assert "is in use: another process holds its chain" in capsys.readouterr().err
    assert [p.name for p in target.iterdir()] == ["chain"]


def test_a_backup_gives_up_when_the_chain_writes_do_not_pause_in_time(
    small_ledger: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fd = _hold_writes_lock(small_ledger / WRITES_LOCK)  # a chain write that does not end
    try:
        target = tmp_path / "late.tar.gz"
        assert voisin("backup", "--data-dir", small_ledger, "--to", target, "--wait", "0.3") == 1
    finally:
        os.close(fd)
    assert "did not pause within 0.3 s" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anvil
@pytest.mark.slow
def test_on_a_json_rpc_node_the_database_and_files_are_backed_up_and_the_chain_left_to_it(
    tmp_path: Path, anvil_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import ANVIL_KEY

    settings = _settings(tmp_path, chain=anvil_url, chain_key=ANVIL_KEY)
    app = create_app(settings, background=False)
    with TestClient(app) as client:
        api = Api(client, app.state.services)
        populate(api)
        members = list(api.members)
        before = balances(api, members)
    monkeypatch.setenv("VOISIN_CHAIN", anvil_url)
    monkeypatch.setenv("VOISIN_CHAIN_KEY", ANVIL_KEY)
    archive = tmp_path / "rpc.tar.gz"
    assert voisin("backup", "--data-dir", settings.data_dir, "--to", archive) == 0
    with tarfile.open(archive) as tar:
        assert CHAIN_MEMBER not in tar.getnames()
    restored = tmp_path / "restored"
    assert voisin("restore", archive, "--data-dir", restored) == 0
    assert voisin("audit", "--data-dir", restored) == 0
    again = create_app(
        _settings(tmp_path, data_dir=restored, chain=anvil_url, chain_key=ANVIL_KEY),
        background=False,
    )
    with TestClient(again) as client:
        assert balances(Api(client, again.state.services), members) == before


@pytest.mark.anvil
def test_a_backup_restored_behind_a_node_that_went_on_converges_with_a_clean_audit(
    tmp_path: Path, anvil_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usual case on a JSON-RPC node: the chain went on after the database's backup
    (readings committed, a slot settled and sealed). Restored, the database catches up: the
    signed readings come back from the chain, the slot is not settled again and gets back
    its sealed digest link, and the balances and the audit are those of the ledger that went
    on."""
    from sqlmodel import Session

    from api.models import ApiHousehold, HouseholdErasure
    from tests.conftest import ANVIL_KEY

    settings = _settings(tmp_path, chain=anvil_url, chain_key=ANVIL_KEY)
    app = create_app(settings, background=False)
    monkeypatch.setenv("VOISIN_CHAIN", anvil_url)
    monkeypatch.setenv("VOISIN_CHAIN_KEY", ANVIL_KEY)
    archive = tmp_path / "rpc.tar.gz"
    with TestClient(app) as client:
        api = Api(client, app.state.services)
        settled = populate(api)
        members = list(api.members)
        r = client.post(
            "/webhooks",
            json={"url": "https://hooks.example.org/voisin", "event_types": ["trade_settled"]},
            headers=OP,
        )
        assert r.status_code == 201, r.text
        api.services.webhooks.enqueue()
        assert voisin("backup", "--data-dir", settings.data_dir, "--to", archive) == 0
        later = settled + 2
        batch = [api.reading(members[0], later, export_Wh=500)]
        batch += [api.reading(members[2], later, import_Wh=200)]
        assert client.post("/readings", json={"readings": batch}).status_code == 202
        api.flush()
        r = client.post(f"/market/slots/{later}/settle", headers=OP)
        assert r.status_code == 200 and r.json()["matched_Wh"] > 0, r.text
        outcome = r.json()
        # The second household's meter reports the slot after it was settled: too late for
        # its market, though the seller's surplus was left unmatched.
        late = [api.reading(members[1], later, import_Wh=200)]
        assert client.post("/readings", json={"readings": late}).status_code == 202
        api.flush()
        went_on = balances(api, members)
        head = api.services.client.sealed_digest_head(later)
        assert head is not None
        api.services.webhooks.enqueue()
        sent = _delivery_ids(api)
        # The third household asks to be erased after the backup.
        gone = members[2]
        r = client.post(
            f"/households/{gone.id}/erasure",
            json={"confirm": f"erase household {gone.id}"},
            headers=gone.auth,
        )
        assert r.status_code == 200, r.text
        went_on = balances(api, members[:2])

    restored = tmp_path / "restored"
    assert voisin("restore", archive, "--data-dir", restored) == 0
    again = create_app(
        _settings(tmp_path, data_dir=restored, chain=anvil_url, chain_key=ANVIL_KEY),
        background=False,
    )
    with TestClient(again) as client:
        api = Api(client, again.state.services, members)
        # The slot settled after the backup is settled again as it was, the late reading
        # left out of its figures (its digest link rebuilt, so the audit below is clean).
        assert api.services.recover_from_chain() == Recovered(
            len(batch) + len(late), (), erased=(gone.id,), slots=(later,)
        )
        r = client.get(f"/market/slots/{later}", headers=OP)
        assert r.status_code == 200 and r.json()["status"] == "settled", r.text
        assert r.json() == outcome
        assert balances(api, members[:2]) == went_on
        # Its personal data came back with the backup, and are gone again.
        assert client.get(f"/households/{gone.id}/balance", headers=gone.auth).status_code == 401
        with Session(api.services.engine) as session:
            record = session.get(ApiHousehold, gone.id)
            assert record is not None and record.name is None and record.key_json == ""
            erasure = session.get(HouseholdErasure, gone.id)
            assert erasure is not None and erasure.requested_by == "restore"
            assert erasure.deactivated_tx is not None
        r = client.post(f"/market/slots/{later}/settle", headers=OP)
        assert r.status_code == 200, r.text
        figures = ("matched_Wh", "surplus_Wh", "deficit_Wh", "fills", "cost_ueur", "fees_ueur")
        assert {k: r.json()[k] for k in figures} == {k: outcome[k] for k in figures}
        assert api.services.client.sealed_digest_head(later) == head
        # The trades settled since the backup are recorded for the webhook again, with the
        # delivery ids they had: the receiver deduplicates what it got before the restore.
        api.services.webhooks.enqueue()
        assert sent and _delivery_ids(api) == sent
    assert voisin("audit", "--data-dir", restored) == 0


def _delivery_ids(api: Api) -> dict[tuple[int, int], str]:
    """Each webhook delivery's id, by its event's place on chain (block, log index)."""
    from sqlmodel import Session, select

    from api.models import WebhookDelivery

    with Session(api.services.engine) as session:
        rows = session.exec(select(WebhookDelivery)).all()
    places = [json.loads(r.body)["data"]["chain"] for r in rows]
    return {(p["block_number"], p["log_index"]): r.uid for p, r in zip(places, rows, strict=True)}


# ───────────────────────────── A city ─────────────────────────────


@pytest.mark.anvil
@pytest.mark.postgres
@pytest.mark.slow
def test_a_city_on_postgresql_comes_back_with_every_market_schema(
    tmp_path: Path,
    anvil_url: str,
    postgres_url: str,
    second_postgres: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from api.city_app import create_city_app
    from tests.api.test_city import MARKETS, MARKETS_SETTING, Market, _trade
    from tests.conftest import ANVIL_KEY

    chain = {"chain": anvil_url, "chain_key": ANVIL_KEY}
    settings = _settings(tmp_path, markets=MARKETS_SETTING, database_url=postgres_url, **chain)
    app = create_city_app(settings, background=False)
    trades: dict[str, Any] = {}
    contracts: dict[str, str] = {}
    with TestClient(app) as client:
        for sellers, name in enumerate(MARKETS, start=1):
            market = Market(name, client, app.state.city.services(name))
            _trade(market, past_slot(6), 2, sellers=sellers, buyers=2)
            trades[name] = market.get("/v1/trades", headers=OP).json()
            contracts[name] = market.services.client.address
    assert all(t["total"] > 0 for t in trades.values())
    monkeypatch.setenv("VOISIN_CHAIN", anvil_url)
    monkeypatch.setenv("VOISIN_CHAIN_KEY", ANVIL_KEY)
    monkeypatch.setenv("VOISIN_DATABASE_URL", postgres_url)
    archive = tmp_path / "city.tar.gz"
    assert voisin("backup", "--data-dir", settings.data_dir, "--to", archive) == 0
    assert "markets: north, south-2" in capsys.readouterr().out
    manifest = verify_archive(archive)
    assert {n: m.contract for n, m in manifest.markets.items()} == contracts
    assert manifest.contract == "" and manifest.schema_revision is not None
    # One dump holds every market's schema; no SQLite file and no chain (the node's).
    assert "database.pgdump" in manifest.files and CHAIN_MEMBER not in manifest.files
    assert not [n for n in manifest.files if n.endswith("voisin.db")]

    restored = tmp_path / "restored"
    # A city's SQLite URL is refused before anything is written.
    monkeypatch.setenv("VOISIN_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert voisin("restore", archive, "--data-dir", restored) == 2
    assert not restored.exists()
    monkeypatch.setenv("VOISIN_DATABASE_URL", second_postgres)
    assert voisin("restore", archive, "--data-dir", restored) == 0
    said = capsys.readouterr().out
    assert "a city of 2 markets" in said and "--markets north,south-2" in said
    monkeypatch.setenv("VOISIN_MARKETS", MARKETS_SETTING)
    assert voisin("audit", "--data-dir", restored, "--city") == 0
    again = create_city_app(
        _settings(tmp_path, data_dir=restored, markets=MARKETS_SETTING,
                  database_url=second_postgres, **chain),
        background=False,
    )  # fmt: skip
    with TestClient(again) as client:
        for name in MARKETS:
            market = Market(name, client, again.state.city.services(name))
            assert market.services.client.address == contracts[name]
            assert market.get("/v1/trades", headers=OP).json() == trades[name]


# ───────────────────────────── One market of a city ─────────────────────────────


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _chain_orders(market: Any, household: int) -> list[tuple[str, int]]:
    """The household's orders on chain, as the market's mirror holds them."""
    from sqlmodel import Session, select

    from ledger.mirror.models import OrderRecord

    with Session(market.services.engine) as session:
        rows = session.exec(select(OrderRecord).where(OrderRecord.household == household)).all()
    return sorted((r.side, r.order_id) for r in rows)


def test_one_market_of_a_city_comes_back_and_catches_up_leaving_the_rest_as_it_was(
    tmp_path: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A city on the embedded chain with SQLite: `voisin restore --market north` puts north's
    backed-up folder back, moves the former aside, and touches neither the chain nor the other
    market; north's mirror then catches up with what the chain did after the backup."""
    from api.city_app import create_city_app
    from tests.api.test_city import MARKETS_SETTING, Market, _trade

    settings = _settings(tmp_path, markets=MARKETS_SETTING)
    data = settings.data_dir
    app = create_city_app(settings, background=False)
    with TestClient(app) as client:
        for sellers, name in enumerate(("north", "south-2"), start=1):
            _trade(Market(name, client, app.state.city.services(name)), past_slot(8), 2,
                   sellers=sellers, buyers=2)  # fmt: skip
        # A household registers and offers just before the backup: its orders are still
        # queued in the database when it is taken, and posted on chain after.
        north = Market("north", client, app.state.city.services("north"))
        early = north.register(prosumer=True)
        r = north.post(
            "/v1/offers",
            json={
                "price_limit_ueur_per_kWh": 90_000,
                "first_slot": past_slot(2),
                "last_slot": past_slot(1),
            },
            headers=early.auth,
        )
        assert r.status_code == 202, r.text
    city_archive = tmp_path / "city.tar.gz"
    assert voisin("backup", "--data-dir", data, "--to", city_archive) == 0
    backed_up = verify_archive(city_archive)
    # Both markets go on after the backup: north registers two households, which trade.
    late = past_slot(4)
    with TestClient(app) as client:
        _trade(Market("south-2", client, app.state.city.services("south-2")), late, 1,
               sellers=1, buyers=1)  # fmt: skip
        north = Market("north", client, app.state.city.services("north"))
        north.services.outbox.run_once()  # posts the early household's orders
        north.services.on_chain(north.services.mirror)
        early_orders = _chain_orders(north, early.id)
        assert early_orders
        seller = north.register(prosumer=True)
        buyer = north.register(prosumer=False, topup_ueur=5_000_000)
        batch = [
            north.reading(seller, late, export_Wh=400),
            north.reading(buyer, late, import_Wh=300),
        ]
        r = north.post("/v1/readings", json={"readings": batch})
        assert r.status_code == 202 and r.json()["accepted"] == 2, r.text
        north.services.outbox.run_once()
        assert north.post(f"/v1/market/slots/{late}/settle", headers=OP).status_code == 200
        trades_on_chain = north.get("/v1/trades", headers=OP).json()
        seller_balance = north.get(f"/v1/households/{seller.id}/balance", headers=seller.auth)
        head = int(north.services.client.w3.eth.block_number)
    north_db, south_db = (data / "markets" / n / "voisin.db" for n in ("north", "south-2"))
    north_before, south_before = _sha256(north_db), _sha256(south_db)
    capsys.readouterr()

    # Refused, nothing written: no --force while north has data, an unknown or garbled
    # market, an archive that is not a city's, a folder that is not a city.
    assert voisin("restore", city_archive, "--data-dir", data, "--market", "north") == 2
    assert "--force moves its folder aside" in capsys.readouterr().err
    assert voisin("restore", city_archive, "--data-dir", data, "--market", "east", "--force") == 2
    assert "no market 'east'; its markets are north, south-2" in capsys.readouterr().err
    assert voisin("restore", city_archive, "--data-dir", data, "--market", "North!") == 2
    assert "not a market's name" in capsys.readouterr().err
    assert voisin("restore", archive, "--data-dir", data, "--market", "north", "--force") == 2
    assert "not a city: restore it whole" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    assert voisin("restore", city_archive, "--data-dir", other, "--market", "north") == 2
    assert "is not a city" in capsys.readouterr().err
    assert (_sha256(north_db), _sha256(south_db)) == (north_before, south_before)
    assert not list((data / "markets").glob("north.before-restore-*"))

    assert voisin("restore", city_archive, "--data-dir", data, "--market", "north", "--force") == 0
    said = capsys.readouterr().out
    assert "restore ok: market north" in said and "the chain holds it" in said
    aside = list((data / "markets").glob("north.before-restore-*"))
    assert len(aside) == 1 and _sha256(aside[0] / "voisin.db") == north_before
    assert _sha256(north_db) != north_before
    assert _sha256(south_db) == south_before
    assert not [p for p in (data / "markets").iterdir() if p.name.endswith(".restore")]
    records = (data / "markets" / "north" / "deployments.json").read_text()
    assert backed_up.markets["north"].contract in records

    # The city serves north again from the backup's state, and its mirror catches up: the
    # trades the chain settled after the backup are back, and the city's audit is clean.
    again = create_city_app(settings, background=False)
    with TestClient(again) as client:
        north = Market("north", client, again.state.city.services("north"))
        assert int(north.services.client.w3.eth.block_number) == head
        assert north.get("/v1/trades", headers=OP).json()["total"] < trades_on_chain["total"]
        # What the server's indexer does as it starts.
        # The signed readings committed since the backup come back from the chain's
        # transactions (what the leader does as it starts): provenance holds again.
        recovered = north.services.recover_from_chain()
        assert recovered.signed_readings == 2
        assert recovered.households == (seller.id, buyer.id)
        # The early household's orders, queued in the backup and posted since, are recorded
        # as the orders on chain, not posted again; those of the households registered since
        # are recorded too.
        late_orders = _chain_orders(north, seller.id) + _chain_orders(north, buyer.id)
        assert len(recovered.orders_found) == len(early_orders) + len(late_orders)
        assert north.services.outbox.run_once().orders_posted == 0
        north.services.on_chain(north.services.mirror)
        assert _chain_orders(north, early.id) == early_orders
        assert north.get("/v1/trades", headers=OP).json() == trades_on_chain
        assert north.services.recover_from_chain() == Recovered(0, ())
        # The households registered since are back, without the token and key the lost
        # database held: the operator issues new ones; their meters post on meanwhile.
        path = f"/v1/households/{seller.id}"
        assert north.get(f"{path}/balance", headers=seller.auth).status_code == 401
        r = north.post(f"{path}/token", headers=OP)
        assert r.status_code == 200, r.text
        seller.token = r.json()["token"]
        assert north.get(f"{path}/balance", headers=seller.auth).json() == seller_balance.json()
        # Its standing offer, posted on chain after the backup, is its own again.
        r = north.get("/v1/offers", params={"household": seller.id}, headers=seller.auth)
        assert r.status_code == 200, r.text
        listed = r.json()["items"] if isinstance(r.json(), dict) else r.json()
        adopted = [o for o in listed if o["status"] == "open"]
        assert sorted(("offer", o["chain_id"]) for o in adopted) == [
            o for o in _chain_orders(north, seller.id) if o[0] == "offer"
        ]
        # Without an account key yet, it can cancel (the operator signs the cancel), and a
        # new order waits for the key the operator issues next.
        r = north.client.delete(f"/markets/north/v1/offers/{adopted[0]['id']}", headers=seller.auth)
        assert r.status_code == 202, r.text
        r = north.post(
            "/v1/offers",
            json={
                "price_limit_ueur_per_kWh": 95_000,
                "first_slot": late + 2,
                "last_slot": late + 3,
            },
            headers=seller.auth,
        )
        assert r.status_code == 202, r.text
        waiting = r.json()["id"]
        pass_result = north.services.outbox.run_once()
        assert pass_result.orders_cancelled == 1 and pass_result.orders_posted == 0
        r = north.get("/v1/offers", params={"household": seller.id}, headers=seller.auth)
        mine = {o["id"]: o for o in (r.json()["items"] if isinstance(r.json(), dict) else r.json())}
        assert mine[adopted[0]["id"]]["status"] == "cancelled"
        assert mine[waiting]["status"] == "queued" and "no account key" in mine[waiting]["reason"]
        # Nor can it be erased yet: what is left on its account could not be refunded.
        r = north.post(
            f"{path}/erasure",
            json={"confirm": f"erase household {seller.id}"},
            headers=seller.auth,
        )
        assert r.status_code == 409 and r.json()["code"] == "no_account_key", r.text
        assert north.post(f"{path}/rotate-key", headers=OP).status_code == 200
        assert north.services.outbox.run_once().orders_posted == 1
        r = north.post("/v1/readings", json={"readings": [north.reading(seller, late + 1, 0, 50)]})
        assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
        # The slot settled since the backup is not settled twice, its figures are whole, and
        # its link of the digest chain is rebuilt as the chain sealed it.
        r = north.post(f"/v1/market/slots/{late}/settle", headers=OP)
        assert r.status_code == 200, r.text
        outcome = r.json()
        assert outcome["fills"] == 1 and outcome["matched_Wh"] == 300
        assert outcome["unmatched_surplus_Wh"] == 100 and outcome["unmatched_deficit_Wh"] == 0
        # Its link of the digest chain is rebuilt as the chain sealed it.
        assert north.services.client.sealed_digest_head(late) is not None
    assert voisin("audit", "--data-dir", data, "--city") == 0


@pytest.mark.anvil
@pytest.mark.postgres
@pytest.mark.slow
def test_one_market_of_a_city_on_postgresql_comes_back_in_its_own_schema(
    tmp_path: Path,
    anvil_url: str,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On PostgreSQL a market's restore replaces its own schema of the city's database from
    the city's dump, in one transaction, and leaves the other markets' schemas alone."""
    from api.city_app import create_city_app
    from tests.api.test_city import MARKETS_SETTING, Market, _trade
    from tests.conftest import ANVIL_KEY

    chain = {"chain": anvil_url, "chain_key": ANVIL_KEY}
    settings = _settings(tmp_path, markets=MARKETS_SETTING, database_url=postgres_url, **chain)
    app = create_city_app(settings, background=False)
    with TestClient(app) as client:
        for name in ("north", "south-2"):
            _trade(Market(name, client, app.state.city.services(name)), past_slot(8), 1,
                   sellers=1, buyers=1)  # fmt: skip
    for name, value in (("CHAIN", anvil_url), ("CHAIN_KEY", ANVIL_KEY),
                        ("DATABASE_URL", postgres_url)):  # fmt: skip
        monkeypatch.setenv(f"VOISIN_{name}", value)
    city_archive = tmp_path / "city.tar.gz"
    assert voisin("backup", "--data-dir", settings.data_dir, "--to", city_archive) == 0
    with TestClient(app) as client:
        north, south = (Market(n, client, app.state.city.services(n)) for n in ("north", "south-2"))
        trades_at_backup = north.get("/v1/trades", headers=OP).json()
        _trade(north, past_slot(4), 1, sellers=1, buyers=1)
        _trade(south, past_slot(4), 1, sellers=1, buyers=1)
        south_trades = south.get("/v1/trades", headers=OP).json()
        north_trades = north.get("/v1/trades", headers=OP).json()
        assert north_trades["total"] > trades_at_backup["total"]
    capsys.readouterr()

    # Without the city's PostgreSQL URL: refused, nothing written.
    monkeypatch.setenv("VOISIN_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    argv = ("restore", city_archive, "--data-dir", settings.data_dir, "--market", "north")
    assert voisin(*argv, "--force") == 2
    assert "set VOISIN_DATABASE_URL to the city's database" in capsys.readouterr().err
    monkeypatch.setenv("VOISIN_DATABASE_URL", postgres_url)
    assert voisin(*argv) == 2  # its schema holds data: --force
    assert "--force moves its folder aside" in capsys.readouterr().err
    assert voisin(*argv, "--force") == 0
    assert "restoring the schema market_north with pg_restore" in capsys.readouterr().out

    again = create_city_app(settings, background=False)
    with TestClient(again) as client:
        north, south = (
            Market(n, client, again.state.city.services(n)) for n in ("north", "south-2")
        )
        # North's schema is the backup's until it mirrors the chain again; south's is as it
        # was.
        assert north.get("/v1/trades", headers=OP).json() == trades_at_backup
        assert south.get("/v1/trades", headers=OP).json() == south_trades
        assert north.services.recover_from_chain().signed_readings == 2
        assert north.get("/v1/trades", headers=OP).json() == north_trades


def test_a_top_up_left_unsent_at_the_backup_is_refused_not_done_twice(tmp_path: Path) -> None:
    """A database restored while the chain went on cannot tell whether a top-up it had
    recorded and not sent (a crash before the backup) was done since: marked restored, its
    next start finishes it as refused before it reconciles anything; unmarked, the same intent
    is done as usual."""
    from sqlmodel import Session

    from api.models import ApiIntent
    from api.recovery import mark_restored, restored_from

    def pending_top_up(api: Api, household: int) -> int:
        with Session(api.services.engine) as session:
            row = ApiIntent(
                kind="topup",
                scope="operator",
                fingerprint="a top-up recorded, then the process stopped",
                household=household,
                payload=json.dumps({"amount_ueur": 70_000}),
            )
            session.add(row)
            session.commit()
            assert row.id is not None
            return row.id

    settings = _settings(tmp_path)

    def restart() -> Any:
        return TestClient(create_app(settings, background=False))

    with restart() as client:
        api = Api(client, client.app.state.services)  # type: ignore[attr-defined]
        member = api.register(prosumer=False, topup_ueur=10_000)
        balance = api.services.client.balance_of(member.account)
        unmarked = pending_top_up(api, member.id)
    with restart() as client:  # the start reconciles it: done
        api = Api(client, client.app.state.services)  # type: ignore[attr-defined]
        assert api.services.client.balance_of(member.account) == balance + 70_000
        refused = pending_top_up(api, member.id)
        url = api.services.engine.url.render_as_string(hide_password=False)
    mark_restored(url, 12)
    with restart() as client:  # restored: the start refuses it instead
        api = Api(client, client.app.state.services)  # type: ignore[attr-defined]
        assert api.services.client.balance_of(member.account) == balance + 70_000
        with Session(api.services.engine) as session:
            row = session.get(ApiIntent, refused)
            assert row is not None and row.state == "failed" and row.status_code == 409
            assert "unsent_at_backup" in (row.response or "")
            done = session.get(ApiIntent, unmarked)
            assert done is not None and done.state == "done"
        assert api.services.recover_from_chain() == Recovered(0, ())
        assert restored_from(api.services.engine) is None  # settled once


def test_a_restored_market_sends_nothing_until_its_queue_is_settled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Taking back from the chain fails (the node does not answer): a restored database's
    outbox waits for the next try, since its queued orders may be on chain already; any other
    database's goes on."""
    from api.recovery import mark_restored, restored_from

    app = create_app(_settings(tmp_path), background=False)
    with TestClient(app):
        services = app.state.services

        def unreachable() -> None:
            raise ConnectionError("the node does not answer")

        monkeypatch.setattr(services, "mirror", unreachable)
        assert services._recovered() is True
        mark_restored(services.engine.url.render_as_string(hide_password=False), 3)
        assert services._recovered() is False
        assert restored_from(services.engine) == 3
        monkeypatch.undo()
        assert services._recovered() is True
        assert restored_from(services.engine) is None


def _queued_offer(api: Api, member: Member, price: int) -> int:
    """An offer the API accepted and has not posted yet (the outbox has not run)."""
    slot = past_slot(-4)
    body = {
        "price_limit_ueur_per_kWh": price,
        "first_slot": slot,
        "last_slot": slot + 8,
        "max_Wh_per_slot": 500,
    }
    r = api.client.post("/offers", json=body, headers=member.auth)
    assert r.status_code in (201, 202), r.text
    return int(r.json()["id"])


def _api_order(api: Api, order_id: int) -> Any:
    from sqlmodel import Session

    from api.models import ApiOrder

    with Session(api.services.engine) as session:
        return session.get(ApiOrder, order_id)


def test_a_queued_order_posted_and_cancelled_after_the_backup_is_not_posted_again(
    tmp_path: Path,
) -> None:
    """The backup held an offer queued; after it, the offer was posted and then cancelled.
    Restored, the queued offer is recorded as that cancelled chain order instead of going on
    chain a second time and trading."""
    from sqlmodel import Session

    from api.models import ApiHousehold
    from api.recovery import mark_restored, restored_from

    app = create_app(_settings(tmp_path), background=False)
    with TestClient(app) as client:
        api = Api(client, app.state.services)
        member = api.register(prosumer=True)
        api.flush()  # its default orders go on chain
        order_id = _queued_offer(api, member, 111_000)
        order = _api_order(api, order_id)
        assert order.status == "queued"
        with Session(api.services.engine) as session:
            household = session.get(ApiHousehold, member.id)
            assert household is not None
            key = api.services.vault.account(household.key_json)
        # What happened after the backup: the outbox posted it, the household cancelled it.
        chain = api.services.client
        posted = chain.post_offer(
            key, 111_000, order.first_slot, order.last_slot, order.max_Wh_per_slot
        )
        chain.cancel_offer(key, posted)
        mark_restored(api.services.engine.url.render_as_string(hide_password=False), 5)
        recovered = api.services.recover_from_chain()
        assert recovered.orders_found == (order_id,)
        assert restored_from(api.services.engine) is None
        order = _api_order(api, order_id)
        assert (order.status, order.chain_id) == ("cancelled", posted)
        before = _chain_orders(api, member.id)
        assert ("offer", posted) in before
        api.flush()
        assert _chain_orders(api, member.id) == before  # not posted again


def test_a_post_in_flight_at_the_backup_is_its_own_orders_not_a_second_one(
    tmp_path: Path,
) -> None:
    """The backup was taken while an offer's post was in flight (recorded, and mined after the
    backup): restored, the offer is recorded as the order its post made, and no second API
    order is made for that chain order."""
    from sqlmodel import Session, select

    from api.intents import FaultHook, InjectedFault
    from api.models import ApiOrder, ApiOrderPost
    from api.recovery import mark_restored

    app = create_app(_settings(tmp_path), background=False)
    with TestClient(app) as client:
        api = Api(client, app.state.services)
        member = api.register(prosumer=True)
        api.flush()
        order_id = _queued_offer(api, member, 112_000)
        # The pass stops once the post is mined, before it records it: as the backup has it.
        api.services.outbox.fault = FaultHook("post_offer.sent")
        with pytest.raises(InjectedFault):
            api.services.outbox.run_once()
        assert _api_order(api, order_id).status == "queued"
        mark_restored(api.services.engine.url.render_as_string(hide_password=False), 5)
        api.services.recover_from_chain()
        order = _api_order(api, order_id)
        assert order.status == "open" and order.chain_id is not None
        with Session(api.services.engine) as session:
            query = select(ApiOrder).where(ApiOrder.side == "offer")
            standing_for = session.exec(query.where(ApiOrder.chain_id == order.chain_id)).all()
            assert session.get(ApiOrderPost, order_id) is None
        assert [o.id for o in standing_for] == [order_id]
        before = _chain_orders(api, member.id)
        api.flush()
        assert _chain_orders(api, member.id) == before


def test_a_step_that_fails_keeps_the_mark_and_the_next_pass_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Taking back the erasures fails once (the database is busy): the mark stays and the
    outbox waits; the next pass takes everything back and the mark goes. A signed reading the
    chain does not hold is the audit's to report, not a reason to wait for ever."""
    import api.services as services_module
    from api.recovery import RecoveryIncomplete, mark_restored, restored_from
    from ledger.readings import recovery as readings_recovery

    app = create_app(_settings(tmp_path), background=False)
    with TestClient(app) as client:
        services = app.state.services
        url = services.engine.url.render_as_string(hide_password=False)
        mark_restored(url, 7)
        # Nothing settled by hand, and no live feed, until the chain's news are taken back.
        r = client.post(f"/market/slots/{past_slot(3)}/settle", headers=OP)
        assert r.status_code == 503 and r.json()["code"] == "restore_recovering", r.text
        assert r.headers["Retry-After"] == "10"
        r = client.get("/feed")
        assert r.status_code == 503 and r.json()["code"] == "restore_recovering", r.text
        erase_again = services_module.erase_again
        calls: list[int] = []

        def busy_once(engine: Any) -> list[int]:
            calls.append(1)
            if len(calls) == 1:
                raise OSError("database is locked")
            return erase_again(engine)

        monkeypatch.setattr(services_module, "erase_again", busy_once)
        with pytest.raises(RecoveryIncomplete, match="erasures"):
            services.recover_from_chain()
        assert restored_from(services.engine) == 7
        # No audit meanwhile: it would report what the recovery is about to take back.
        assert not services.keeper.audit_due()
        assert services._recovered() is True  # the next pass
        assert restored_from(services.engine) is None and len(calls) == 2
        assert services.keeper.audit_due(now=time.time() + 3600)

        mark_restored(url, 8)

        def unrecoverable(client: Any, engine: Any) -> int:
            raise readings_recovery.UnrecoverableReading("the chain and the mirror disagree")

        monkeypatch.setattr(readings_recovery, "recover_signed_readings", unrecoverable)
        services.recover_from_chain()
        assert restored_from(services.engine) is None


def test_only_money_actions_recorded_before_the_backup_are_refused(tmp_path: Path) -> None:
    """The start's refusal did not happen (the database was marked after it): taking back
    from the chain refuses the top-up the backup held unsent, and not the one a request
    recorded after the restore, which is then done as usual."""
    from sqlmodel import Session

    from api.models import ApiIntent
    from api.recovery import mark_restored

    def pending_top_up(api: Api, household: int, amount: int) -> int:
        with Session(api.services.engine) as session:
            row = ApiIntent(
                kind="topup",
                scope="operator",
                fingerprint=f"a top-up of {amount}",
                household=household,
                payload=json.dumps({"amount_ueur": amount}),
            )
            session.add(row)
            session.commit()
            assert row.id is not None
            return row.id

    app = create_app(_settings(tmp_path), background=False)
    with TestClient(app) as client:
        api = Api(client, app.state.services)
        member = api.register(prosumer=False, topup_ueur=10_000)
        balance = api.services.client.balance_of(member.account)
        before = pending_top_up(api, member.id, 70_000)
        mark_restored(api.services.engine.url.render_as_string(hide_password=False), 9)
        after = pending_top_up(api, member.id, 5_000)
        api.services.recover_from_chain()
        api.services.intents.reconcile()
        with Session(api.services.engine) as session:
            refused, done = session.get(ApiIntent, before), session.get(ApiIntent, after)
            assert refused is not None and refused.state == "failed"
            assert "unsent_at_backup" in (refused.response or "")
            assert done is not None and done.state == "done"
        assert api.services.client.balance_of(member.account) == balance + 5_000


def test_a_registration_the_backup_held_unfinished_is_finished_before_orders_are_matched(
    tmp_path: Path,
) -> None:
    """The backup held a registration the chain had done and the database had not recorded:
    taking back from the chain finishes it first, so that its household is the API's (with
    its token and key) before orders are matched, and the mark goes only then."""
    from sqlmodel import Session, select

    from api.intents import FaultHook, InjectedFault
    from api.models import ApiHousehold, ApiIntent
    from api.recovery import lost_households, mark_restored, restored_from

    app = create_app(_settings(tmp_path), background=False)
    with TestClient(app) as client:
        api = Api(client, app.state.services)
        meter = Account.create()
        api.services.intents.fault = FaultHook("register.sent")
        with pytest.raises(InjectedFault):
            client.post("/households", json={"meter": meter.address, "prosumer": True}, headers=OP)
        with Session(api.services.engine) as session:  # as old as the backup
            (intent,) = session.exec(select(ApiIntent).where(ApiIntent.kind == "register"))
            intent.updated_s -= 3600
            session.add(intent)
            session.commit()
        mark_restored(api.services.engine.url.render_as_string(hide_password=False), 4)
        assert lost_households(api.services.engine) == []  # its registration records it
        recovered = api.services.recover_from_chain()
        assert recovered.households == ()  # not taken back keyless: registered
        assert restored_from(api.services.engine) is None
        with Session(api.services.engine) as session:
            (row,) = session.exec(select(ApiHousehold).where(ApiHousehold.meter == meter.address))
            assert row.key_json


def test_a_household_erased_after_the_backup_loses_its_token_at_once(tmp_path: Path) -> None:
    """Its token came back with the backup, and this process had it cached: erased again,
    the household's token stops working right away, not when the cache is next emptied, and
    the order it posted after the backup is not taken back as its own."""
    from sqlmodel import Session, select

    from api.models import ApiHousehold, ApiOrder
    from api.recovery import mark_restored

    app = create_app(_settings(tmp_path), background=False)
    with TestClient(app) as client:
        api = Api(client, app.state.services)
        member = api.register(prosumer=False)
        assert client.get(f"/households/{member.id}/balance", headers=member.auth).is_success
        # After the backup: it posted a bid, then its erasure deactivated it on chain.
        services = api.services
        with Session(services.engine) as session:
            household = session.get(ApiHousehold, member.id)
            assert household is not None
            key = services.vault.account(household.key_json)
        bid = services.client.post_bid(key, 120_000, past_slot(-4), past_slot(-8))
        services.client.deactivate_household(services.chain.operator, member.id)
        mark_restored(services.engine.url.render_as_string(hide_password=False), 6)
        recovered = services.recover_from_chain()
        assert recovered.erased == (member.id,)
        r = client.get(f"/households/{member.id}/balance", headers=member.auth)
        assert r.status_code == 401, r.text
        # Its bid is not taken back as its open order: the erasure's cancels are done.
        assert recovered.orders_found == ()
        with Session(services.engine) as session:
            taken = session.exec(select(ApiOrder).where(ApiOrder.chain_id == bid)).all()
        assert [o for o in taken if o.side == "bid"] == []
