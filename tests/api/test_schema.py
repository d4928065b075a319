"""The database's schema revisions (api.schema, ``voisin db``, ``voisin serve``'s check).

A fresh database gets every revision and then matches the models exactly (a model changed
without a revision fails here); a server refuses a database behind or ahead of its release
and names the command that fixes it, without touching it; ``voisin db upgrade`` brings one
up and leaves a copy of a SQLite file first.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlmodel import SQLModel

from api.cli import main
from api.schema import (
    SchemaError,
    alembic_config,
    head_revision,
    inspect_schema,
    prepare,
    unversioned_revision,
    upgrade,
)
from api.services import Services
from tests.api.conftest import _settings


def _drift(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def _to(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'voisin.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_a_fresh_database_gets_every_revision_and_matches_the_models(database: str) -> None:
    engine = create_engine(database)
    assert inspect_schema(engine).state == "empty"
    status = prepare(engine)
    assert (status.state, status.revision) == ("current", head_revision())
    assert status.tables == len(SQLModel.metadata.tables)
    assert _drift(engine) == []
    # A second start finds it current and changes nothing.
    assert prepare(engine).state == "current"
    engine.dispose()


def test_the_baseline_then_the_upgrade_matches_the_models(database: str) -> None:
    engine = create_engine(database)
    _to(engine, "r0001")
    status = inspect_schema(engine)
    assert (status.state, status.revision) == ("behind", "r0001")
    if engine.dialect.name == "postgresql":
        # The baseline's ids are 32-bit there: the models' are not.
        assert _drift(engine) != []
    done = upgrade(engine)
    assert (done.before.revision, done.after.revision) == ("r0001", head_revision())
    assert _drift(engine) == []
    engine.dispose()


@pytest.mark.postgres
def test_ids_beyond_32_bits_after_the_upgrade_on_postgresql(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    _to(engine, "r0001")
    big = 2**32 - 1  # the largest uint32 household id the contract can hand out
    insert = text(
        "INSERT INTO household (id, account, meter, prosumer, active) "
        "VALUES (:id, :a, :m, true, true)"
    )
    with pytest.raises(Exception, match="out of range"), engine.begin() as c:
        c.execute(insert, {"id": big, "a": "0xa", "m": "0xm"})
    with engine.begin() as c:
        c.execute(insert, {"id": 7, "a": "0xa", "m": "0xm"})
        c.execute(text("SELECT setval(pg_get_serial_sequence('chain_event', 'id'), 2147483647)"))
    upgrade(engine)
    with engine.begin() as c:
        c.execute(insert, {"id": big, "a": "0xb", "m": "0xn"})
        # The row numbering goes on past 2^31 - 1 too.
        c.execute(
            text(
                "INSERT INTO chain_event (contract, block_number, log_index, tx_hash, name, "
                "args_json) VALUES ('0xc', 1, 0, '0x', 'E', '{}')"
            )
        )
        ids = sorted(c.execute(text("SELECT id FROM household")).scalars())
        event_id = c.execute(text("SELECT id FROM chain_event")).scalar_one()
    assert ids == [7, big]
    assert event_id == 2**31
    columns = {c["name"]: str(c["type"]) for c in inspect(engine).get_columns("fill")}
    assert columns["seller"] == "BIGINT"
    engine.dispose()


def test_a_server_refuses_a_database_behind_its_release(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.data_dir.mkdir(parents=True)
    engine = create_engine(settings.resolved_database_url())
    _to(engine, "r0001")
    with pytest.raises(SchemaError, match="voisin db upgrade"):
        Services(settings)
    # Nothing was touched: not the database, and no contract was deployed.
    assert inspect_schema(engine).revision == "r0001"
    assert not (settings.data_dir / "deployments.json").exists()
    engine.dispose()


def test_serve_exits_2_naming_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    engine = create_engine(f"sqlite:///{data / 'voisin.db'}")
    _to(engine, "r0001")
    monkeypatch.setenv("VOISIN_DATA_DIR", str(data))
    assert main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "at r0001; this release runs on" in err
    assert "voisin db upgrade" in err
    # A revision from a newer release: refused, and the message says so.
    with engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = 'r9999'"))
    assert main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "r9999, which this release does not know" in err
    assert "newer Voisin" in err
    assert main(["db", "upgrade", "--data-dir", str(data)]) == 2
    assert "does not know" in capsys.readouterr().err
    assert inspect_schema(engine).revision == "r9999"
    engine.dispose()


def test_db_current_and_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.delenv("VOISIN_DATABASE_URL", raising=False)
    assert main(["db", "current", "--data-dir", str(data)]) == 2
    assert "no database at" in capsys.readouterr().err
    database = data / "voisin.db"
    engine = create_engine(f"sqlite:///{database}")
    _to(engine, "r0001")
    with engine.begin() as c:
        c.execute(text("INSERT INTO indexer_state (key, value) VALUES ('fee', '0xfee')"))
    assert main(["db", "current", "--data-dir", str(data)]) == 1
    assert "voisin db upgrade" in capsys.readouterr().out
    # A server answering on the data directory: the upgrade waits for it to stop.
    with _answering() as url:
        (data / "serve.url").write_text(url)
        assert main(["db", "upgrade", "--data-dir", str(data)]) == 2
        assert f"a voisin serve is running on {data} (it answers at {url})" in (
            capsys.readouterr().err
        )
    assert inspect_schema(engine).revision == "r0001"
    # The file a killed server left behind, nothing answering: no obstacle.
    assert main(["db", "upgrade", "--data-dir", str(data)]) == 0
    assert inspect_schema(engine).state == "current"
    engine.dispose()


@contextmanager
def _answering() -> Iterator[str]:
    """A loopback HTTP server that answers every GET (a stand-in for a running server)."""

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_upgrade_copies_a_sqlite_file_first_and_keeps_its_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    database = data / "voisin.db"
    engine = create_engine(f"sqlite:///{database}")
    _to(engine, "r0001")
    with engine.begin() as c:
        c.execute(text("INSERT INTO indexer_state (key, value) VALUES ('fee', '0xfee')"))
    engine.dispose()
    assert main(["db", "upgrade", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert f"upgraded from r0001 to {head_revision()}" in out
    copies = list(data.glob("voisin.db.before-r0001-*"))
    assert len(copies) == 1 and f"Copied the database to {copies[0]}" in out
    with sqlite3.connect(copies[0]) as old:
        assert old.execute("SELECT version_num FROM alembic_version").fetchall() == [("r0001",)]
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as c:
        assert c.execute(text("SELECT value FROM indexer_state")).scalars().all() == ["0xfee"]
    assert inspect_schema(engine).state == "current"
    engine.dispose()
    assert main(["db", "upgrade", "--data-dir", str(data)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["db", "current", "--data-dir", str(data)]) == 0


def test_a_table_that_is_not_the_baselines_is_refused(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with engine.begin() as c:
        c.execute(text("CREATE TABLE household (id INTEGER PRIMARY KEY, nickname TEXT)"))
    assert inspect_schema(engine).state == "behind"
    with pytest.raises(Exception, match="lacks the columns"):
        upgrade(engine)
    # Nothing of the baseline was created beside the foreign table.
    assert inspect(engine).get_table_names() == ["household"]
    engine.dispose()


@pytest.mark.parametrize("made_at", ["r0001", "r0003", "r0005", "head"])
def test_a_database_made_without_recording_its_revision_is_upgraded_from_where_it_is(
    database: str, made_at: str
) -> None:
    engine = create_engine(database)
    _to(engine, made_at)
    with engine.begin() as c:
        c.execute(text("INSERT INTO indexer_state (key, value) VALUES ('fee', '0xfee')"))
        c.execute(text("DROP TABLE alembic_version"))
    status = inspect_schema(engine)
    assert status.state == "behind" and status.revision is None
    with engine.connect() as c:
        inferred = unversioned_revision(c)
    assert inferred == {"r0001": None, "head": head_revision()}.get(made_at, made_at)
    after = upgrade(engine).after
    assert after.state == "current" and after.revision == head_revision()
    with engine.connect() as c:
        assert c.execute(text("SELECT value FROM indexer_state")).scalars().all() == ["0xfee"]
    assert _drift(engine) == []
    engine.dispose()
