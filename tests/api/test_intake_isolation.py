"""One bad reading never costs another request anything.

Concurrent ``POST /readings`` requests are stored by one writer in group commits
(:class:`api.intake.IntakeWriter`). Here some of the readings are poisoned: the database
itself refuses their row (a trigger the test installs, on SQLite and on PostgreSQL), or a row
already holds their (meter, slot) behind the writer's back (a unique violation). Every valid
reading, in the same group and even in the same request, is stored and committed on chain
exactly once; every poisoned one is refused with a clear JSON verdict, and its meter goes on.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from api.models import IntakeReading
from ledger.mirror.models import ReadingRecord
from tests.api.conftest import Api, Member, past_slot

#: A reading whose import register is at least this is refused by the database's trigger.
POISON_WH = 9_000_000_000_000

_SQLITE_TRIGGER = f"""
CREATE TRIGGER poison_reading BEFORE INSERT ON intake_reading
WHEN NEW.import_Wh >= {POISON_WH}
BEGIN SELECT RAISE(ABORT, 'poisoned reading refused by the test trigger'); END
"""
_PG_FUNCTION = f"""
CREATE FUNCTION poison_reading() RETURNS trigger AS $$
BEGIN
  IF NEW."import_Wh" >= {POISON_WH} THEN
    RAISE EXCEPTION 'poisoned reading refused by the test trigger';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql
"""
_PG_TRIGGER = """
CREATE TRIGGER poison_reading BEFORE INSERT ON intake_reading
FOR EACH ROW EXECUTE FUNCTION poison_reading()
"""


def _poison_the_table(api: Api) -> None:
    engine = api.services.engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text(_SQLITE_TRIGGER))
        else:
            conn.execute(text(_PG_FUNCTION))
            conn.execute(text(_PG_TRIGGER))


class _HeldQueue(queue.Queue[Any]):
    """The writer's queue, holding every request back until ``expected`` have arrived, so
    that they all land in one group commit (whatever the threads' timing)."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.full_house = threading.Event()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        if self.qsize() >= self.expected:
            self.full_house.set()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not self.full_house.wait(timeout):
            raise queue.Empty
        return super().get(block, timeout)


def _one_group(api: Api, monkeypatch: pytest.MonkeyPatch, requests: int) -> list[int]:
    """Hold the next ``requests`` requests into one group; returns the group sizes stored."""
    writer = api.services.intake
    held = _HeldQueue(requests)
    monkeypatch.setattr(writer, "_queue", held)
    sizes: list[int] = []
    real_write = writer._write

    def counted(group: list[Any]) -> None:
        sizes.append(len(group))
        real_write(group)

    monkeypatch.setattr(writer, "_write", counted)
    return sizes


def _poisoned(api: Api, m: Member, slot: int) -> dict[str, Any]:
    """A reading the meter really signed, which the database refuses to hold; the member's
    registers stay where they were (the reading is never accepted)."""
    before = m.import_Wh
    body = api.reading(m, slot, import_Wh=POISON_WH)
    m.import_Wh = before
    return body


def _post_all(api: Api, bodies: list[list[dict[str, Any]]]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(lambda b: api.client.post("/readings", json={"readings": b}), bodies))


def test_a_poisoned_reading_in_a_group_commit_costs_no_other_request_anything(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    _poison_the_table(api)
    members = [api.register(prosumer=i % 2 == 0) for i in range(9)]
    slot = past_slot(8)
    # Requests of 2 slots each; the meters of members 6, 7 and 8 carry a poisoned reading:
    # alone in its request, then first and last of a request with a valid one.
    valid: list[tuple[Member, int, dict[str, Any]]] = []
    bodies: list[list[dict[str, Any]]] = []
    for m in members[:6]:
        batch = [api.reading(m, slot, 10, 20), api.reading(m, slot + 1, 30, 40)]
        valid += [(m, slot, batch[0]), (m, slot + 1, batch[1])]
        bodies.append(batch)
    lone, first, last = members[6:]
    bodies.append([_poisoned(api, lone, slot)])
    poisoned_first = [_poisoned(api, first, slot), api.reading(first, slot + 1, 5, 0)]
    valid.append((first, slot + 1, poisoned_first[1]))
    bodies.append(poisoned_first)
    poisoned_last = [api.reading(last, slot, 7, 0), _poisoned(api, last, slot + 1)]
    valid.append((last, slot, poisoned_last[0]))
    bodies.append(poisoned_last)
    sizes = _one_group(api, monkeypatch, len(bodies))

    answers = _post_all(api, bodies)

    assert sizes == [len(bodies)]  # one group commit held all nine requests
    for answer in answers[:6]:
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] == 2 and answer.json()["rejected"] == 0
    refused = answers[6]
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "not_stored"
    assert "could not be stored" in refused.json()["message"]
    assert "other readings" in refused.json()["message"]
    for answer, bad_index in ((answers[7], 0), (answers[8], 1)):
        assert answer.status_code == 202, answer.text
        results = answer.json()["results"]
        assert [r["status"] for r in results] == [
            "rejected" if i == bad_index else "accepted" for i in range(2)
        ]
        assert results[bad_index]["code"] == "not_stored"

    _all_valid_committed_once(api, valid, poisoned=[(lone, slot), (first, slot), (last, slot + 1)])

    # The poisoned meters are not locked out: their next readings are accepted.
    again = [api.reading(m, slot + 2, 1, 1) for m in (lone, first, last)]
    after = api.client.post("/readings", json={"readings": again})
    assert after.status_code == 202 and after.json()["accepted"] == 3, after.text


def _all_valid_committed_once(
    api: Api, valid: list[tuple[Member, int, dict[str, Any]]], poisoned: list[tuple[Member, int]]
) -> None:
    api.flush()
    engine = api.services.engine
    with Session(engine) as session:
        stored = Counter((r.meter, r.slot) for r in session.exec(select(IntakeReading)))
        statuses = {r.status for r in session.exec(select(IntakeReading))}
        mirrored = {(r.meter, r.slot): r for r in session.exec(select(ReadingRecord))}
    head = int(api.services.chain.w3.eth.block_number)
    events = api.services.client.events(api.services.deployment.block_number, head)
    on_chain = Counter(
        (str(e.args["meter"]), int(e.args["slot"])) for e in events if e.name == "ReadingCommitted"
    )
    assert statuses == {"committed"}
    for m, slot, body in valid:
        key = (m.meter.address, slot)
        assert stored[key] == 1 and on_chain[key] == 1, key
        row = mirrored[key]
        assert (row.import_Wh, row.export_Wh) == (body["import_Wh"], body["export_Wh"])
    for m, slot in poisoned:
        key = (m.meter.address, slot)
        assert stored[key] == 0 and on_chain[key] == 0, key
    assert sum(on_chain.values()) == len(valid)


def test_a_unique_violation_behind_the_writers_back_is_refused_alone(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row for (meter, slot) that the writer's cached state does not know of (as another
    API process could have written): that reading is refused, the rest of the group stored."""
    members = [api.register(prosumer=False) for _ in range(4)]
    slot = past_slot(6)
    warm = [api.reading(m, slot, 1, 0) for m in members]
    assert api.client.post("/readings", json={"readings": warm}).json()["accepted"] == 4
    squatted = members[0]
    with Session(api.services.engine) as session, session.begin():
        session.add(
            IntakeReading(
                household=squatted.id,
                meter=squatted.meter.address,
                slot=slot + 1,
                import_Wh=10**6,
                export_Wh=0,
                v=27,
                r="0x" + "11" * 32,
                s="0x" + "22" * 32,
                status="rejected",
                reason="written by another process",
            )
        )
    bodies = [[api.reading(m, slot + 1, 5, 0)] for m in members]
    sizes = _one_group(api, monkeypatch, len(bodies))
    answers = _post_all(api, bodies)
    assert sizes == [len(bodies)]
    assert answers[0].status_code == 422, answers[0].text
    assert answers[0].json()["code"] == "not_stored"
    for answer in answers[1:]:
        assert answer.status_code == 202 and answer.json()["accepted"] == 1, answer.text


def test_a_household_deactivated_on_chain_after_its_readings_were_accepted_blocks_no_one(
    api: Api,
) -> None:
    """The chain refuses a batch holding a deactivated household's reading with an error that
    names the household, not the reading: those readings are refused, the others committed."""
    members = [api.register(prosumer=False) for _ in range(3)]
    slot = past_slot(7)
    batch = [api.reading(m, slot, 10 * (i + 1), 0) for i, m in enumerate(members)]
    assert api.client.post("/readings", json={"readings": batch}).json()["accepted"] == 3
    gone = members[1]
    services = api.services
    services.client.deactivate_household(services.chain.operator, gone.id)
    result = api.flush()
    assert (result.committed, result.rejected) == (2, 1)
    with Session(services.engine) as session:
        rows = {r.meter: r for r in session.exec(select(IntakeReading))}
    assert rows[gone.meter.address].status == "rejected"
    assert "HouseholdInactive" in (rows[gone.meter.address].reason or "")
    for m in (members[0], members[2]):
        assert rows[m.meter.address].status == "committed"
        assert services.client.meter_state(m.meter.address).last_slot == slot
