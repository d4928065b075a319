"""A database written by the previous release, upgraded and served by this one.

``tests/fixtures/release-r0001`` is the data directory Voisin wrote before it had migrations
(``scripts/make_release_fixture``: four households through six settled slots, through
``voisin serve``). On SQLite it is used as it is; on PostgreSQL its rows are loaded into the
tables that release created there (the baseline revision's schema, with no revision
recorded). Either way: ``voisin serve`` refuses it and names ``voisin db upgrade``; the upgrade
keeps every row; then the server starts on it, the audit is clean, balances are the chain's,
and the meters go on where they stopped.
"""

from __future__ import annotations

import importlib.util
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main
from api.schema import head_revision, inspect_schema
from api.settings import Settings
from ledger.readings.eip712 import Reading, sign_reading
from ledger.readings.intake import reading_to_json
from meter_sim.scenario import derive_key
from tests.api.conftest import OP, OPERATOR_TOKEN

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "release-r0001" / "data.tar.gz"
BASELINE_FILE = (
    Path(__file__).resolve().parents[2] / "api" / "migrations" / "versions" / "r0001_baseline.py"
)
#: The fixture's run: the default scenario with seed 1, up to this slot.
SEED = 1
LAST_SLOT = 1980041


def _baseline() -> sa.MetaData:
    spec = importlib.util.spec_from_file_location("baseline", BASELINE_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    metadata: sa.MetaData = module.BASELINE
    return metadata


def _value(value: Any) -> Any:
    """A row's value as both databases give it back (datetimes in UTC, without the zone)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _rows(engine: sa.Engine, metadata: sa.MetaData) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of ``metadata``, in key order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as c:
        for table in metadata.sorted_tables:
            query = sa.select(table).order_by(*table.primary_key.columns)
            out[table.name] = [tuple(_value(v) for v in row) for row in c.execute(query)]
    return out


def _load_into_postgres(sqlite_url: str, postgres_url: str, metadata: sa.MetaData) -> None:
    """The previous release's tables on PostgreSQL (as its create_all made them), holding
    the fixture's rows, with each table's row numbering where the release left it."""
    source = sa.create_engine(sqlite_url)
    target = sa.create_engine(postgres_url)
    metadata.create_all(target)
    with source.connect() as read, target.begin() as write:
        for table in metadata.sorted_tables:
            rows = [dict(r._mapping) for r in read.execute(sa.select(table))]
            if rows:
                write.execute(table.insert(), rows)
            for column in table.primary_key.columns:
                sequence = write.execute(
                    sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                    {"t": f'"{table.name}"', "c": column.name},
                ).scalar()
                if sequence is not None and rows:
                    write.execute(
                        sa.text(
                            f'SELECT setval(:s, (SELECT max("{column.name}") FROM "{table.name}"))'
                        ),
                        {"s": sequence},
                    )
    source.dispose()
    target.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def previous_release(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, str]:
    """The previous release's data directory and the URL of its database."""
    data = tmp_path / "data"
    data.mkdir()
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(data, filter="data")
    sqlite_url = f"sqlite:///{data / 'voisin.db'}"
    monkeypatch.setenv("VOISIN_DATA_DIR", str(data))
    if request.param == "sqlite":
        monkeypatch.delenv("VOISIN_DATABASE_URL", raising=False)
        return data, sqlite_url
    postgres_url: str = request.getfixturevalue("postgres_url")
    _load_into_postgres(sqlite_url, postgres_url, _baseline())
    (data / "voisin.db").unlink()
    monkeypatch.setenv("VOISIN_DATABASE_URL", postgres_url)
    return data, postgres_url


def test_the_previous_releases_database_upgrades_and_serves(
    previous_release: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    data, url = previous_release
    baseline = _baseline()
    engine = sa.create_engine(url)
    before = _rows(engine, baseline)
    assert len(before["reading"]) == 24 and len(before["fill"]) == 17
    assert inspect_schema(engine).state == "behind"

    # The server refuses it, touching nothing, and says what to run.
    assert main(["serve", "--port", "1"]) == 2
    assert "voisin db upgrade" in capsys.readouterr().err
    assert _rows(engine, baseline) == before

    assert main(["db", "upgrade", "--data-dir", str(data)]) == 0
    assert f"upgraded from no revision to {head_revision()}" in capsys.readouterr().out
    assert inspect_schema(engine).state == "current"
    assert _rows(engine, baseline) == before
    engine.dispose()

    settings = Settings(
        data_dir=data,
        database_url=None if url.startswith("sqlite") else url,
        operator_token=OPERATOR_TOKEN,
        auto_settle=False,
        chain_process=False,
    )
    with TestClient(create_app(settings, background=False)) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        audit = client.get("/audit/report", headers=OP)
        assert audit.status_code == 200, audit.text
        assert audit.json()["ok"], audit.json()["findings"]
        for account, balance in [(r[0], r[1]) for r in before["balance"]]:
            assert services.client.balance_of(account) == balance

        # The first meter goes on from its last reading: accepted, then on chain.
        meter_key = derive_key("default", SEED, "meter", 0)
        household = before["api_household"][0]
        last_import, last_export = household[8], household[9]  # the registers
        signed = sign_reading(
            meter_key,
            Reading(household[3], LAST_SLOT + 1, last_import + 120, last_export),
            services.domain,
        )
        posted = client.post("/readings", json={"readings": [reading_to_json(signed)]})
        assert posted.status_code == 202, posted.text
        assert posted.json()["accepted"] == 1
        services.outbox.run_once()
        assert services.client.meter_state(household[3]).last_slot == LAST_SLOT + 1

        # A reading the previous release already counted is recognised, not counted again.
        replay = sign_reading(
            meter_key,
            Reading(household[3], LAST_SLOT, last_import, last_export),
            services.domain,
        )
        again = client.post("/readings", json={"readings": [reading_to_json(replay)]})
        assert again.status_code == 202 and again.json()["duplicates"] == 1, again.text

        audit = client.get("/audit/report", headers=OP)
        assert audit.json()["ok"], audit.json()["findings"]
