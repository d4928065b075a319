"""The locks several ``voisin serve`` processes share through PostgreSQL (api/cluster.py):
the chain-writes lock inside the chain gate's lock, and the election of the one process that
runs the market's background work. Each "process" here is its own database session, which is
what PostgreSQL's advisory locks count."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from api.chain_gate import ChainLock
from api.cluster import (
    AdvisoryLock,
    Leadership,
    advisory_key,
    chain_writes_lock_name,
    connections_shortfall,
    is_postgres,
    leader_lock_name,
)

pytestmark = pytest.mark.postgres

OPERATOR = "0x" + "ab" * 20
CONTRACT = "0x" + "cd" * 20


def test_lock_names_and_keys() -> None:
    writes = chain_writes_lock_name(31337, OPERATOR.upper().replace("0X", "0x"))
    assert writes == chain_writes_lock_name(31337, OPERATOR)  # an address in any case
    assert writes != chain_writes_lock_name(1, OPERATOR)
    assert leader_lock_name(31337, CONTRACT) != leader_lock_name(31337, "0x" + "ce" * 20)
    keys = {advisory_key(n) for n in (writes, leader_lock_name(31337, CONTRACT), "x", "y")}
    assert len(keys) == 4 and all(-(2**63) <= k < 2**63 for k in keys)
    assert advisory_key("x") == advisory_key("x")
    assert is_postgres("postgresql+psycopg://u@h/db") and is_postgres("postgresql://h/db")
    assert not is_postgres("sqlite:///data/voisin.db")


@pytest.fixture
def locks(postgres_url: str) -> Iterator[list[AdvisoryLock]]:
    made: list[AdvisoryLock] = []
    yield made
    for lock in made:
        lock.close()


def _lock(locks: list[AdvisoryLock], url: str, name: str = "test/lock") -> AdvisoryLock:
    lock = AdvisoryLock(url, name)
    locks.append(lock)
    return lock


def _terminate(url: str, lock: AdvisoryLock) -> None:
    """Kill the database session that holds ``lock``, as a dead process's would end."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND granted AND ((classid::bigint << 32) | objid::bigint) = :k"
                ),
                {"k": lock.key},
            ).all()
        assert killed == [(True,)]
    finally:
        admin.dispose()


def test_one_session_at_a_time_holds_an_advisory_lock(
    postgres_url: str, locks: list[AdvisoryLock]
) -> None:
    a, b = _lock(locks, postgres_url), _lock(locks, postgres_url)
    assert a.try_acquire() and a.held
    assert not b.try_acquire() and not b.held
    started = time.monotonic()
    assert not b.acquire(deadline=time.monotonic() + 0.3)
    assert time.monotonic() - started >= 0.3
    a.release()
    assert not a.held
    assert b.acquire(deadline=time.monotonic() + 5)
    assert not a.try_acquire()
    b.release()
    assert a.acquire()  # no deadline: waits as long as it takes (here: free)


def test_a_dead_session_releases_its_lock(postgres_url: str, locks: list[AdvisoryLock]) -> None:
    a, b = _lock(locks, postgres_url), _lock(locks, postgres_url)
    assert a.try_acquire()
    assert a.still_held()
    _terminate(postgres_url, a)
    assert b.acquire(deadline=time.monotonic() + 5)
    # The first holder finds out at its next look, and holds nothing.
    assert not a.still_held() and not a.held
    a.release()  # nothing to release: no error
    assert not a.try_acquire()  # a new session, still refused: b holds it


def test_an_unreachable_database_is_an_error_holding_nothing(locks: list[AdvisoryLock]) -> None:
    lock = _lock(locks, "postgresql+psycopg://voisin@127.0.0.1:1/none")
    with pytest.raises(OperationalError):
        lock.try_acquire()
    assert not lock.held


def test_the_chain_lock_holds_the_shared_lock_while_any_thread_holds_it(
    postgres_url: str, locks: list[AdvisoryLock]
) -> None:
    """Two processes' chain gates: one writer at a time across them, and re-entrance within
    one takes the shared lock once."""
    name = chain_writes_lock_name(31337, OPERATOR)
    first = ChainLock(None, _lock(locks, postgres_url, name))
    second = ChainLock(None, _lock(locks, postgres_url, name))
    with first:
        with first:  # re-entrant
            assert first.shared is not None and first.shared.held
        assert first.shared.held  # still inside the outer hold
        assert not second.acquire(timeout=0.2)
        got: list[bool] = []
        may_release = threading.Event()

        def hold_then_release() -> None:
            got.append(second.acquire(timeout=10))
            may_release.wait(timeout=10)
            second.release()  # the thread that took it lets it go

        holder = threading.Thread(target=hold_then_release)
        holder.start()
        time.sleep(0.2)
        assert got == []  # waiting for the other process
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got == [True]
    assert not first.shared.held
    assert not first.acquire(blocking=False)
    with pytest.raises(RuntimeError):
        second.release()  # not this thread's
    may_release.set()
    holder.join(timeout=10)
    assert first.acquire(timeout=5)
    first.release()


def test_a_database_error_leaves_the_chain_lock_free(
    locks: list[AdvisoryLock], tmp_path: Path
) -> None:
    lock_file = tmp_path / "chain-writes.lock"
    chain_lock = ChainLock(lock_file, _lock(locks, "postgresql+psycopg://voisin@127.0.0.1:1/x"))
    with pytest.raises(OperationalError):
        chain_lock.acquire()
    # Neither this process's lock nor the file lock stays taken.
    local = ChainLock(lock_file)
    assert local.acquire(timeout=1)
    local.release()
    assert chain_lock._rlock.acquire(blocking=False)
    chain_lock._rlock.release()


class Elections:
    """Leaderships of several processes for one market, with what each was told."""

    def __init__(self, url: str, locks: list[AdvisoryLock], n: int) -> None:
        self.events: list[tuple[int, str]] = []
        self.changed = threading.Condition()
        self.members = [
            Leadership(
                _lock(locks, url, leader_lock_name(31337, CONTRACT)),
                on_elected=partial(self._tell, i, "elected"),
                on_lost=partial(self._tell, i, "lost"),
                poll_s=0.05,
            )
            for i in range(n)
        ]

    def _tell(self, member: int, what: str) -> None:
        with self.changed:
            self.events.append((member, what))
            self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = 10) -> list[tuple[int, str]]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.events) >= count, timeout), self.events
            return list(self.events)

    def leaders(self) -> list[int]:
        return [i for i, m in enumerate(self.members) if m.leader]


def test_exactly_one_process_is_elected_and_a_leader_that_stops_hands_over(
    postgres_url: str, locks: list[AdvisoryLock]
) -> None:
    world = Elections(postgres_url, locks, 3)
    for member in world.members:
        member.start()
    try:
        ((first, what),) = world.wait_for(1)
        assert what == "elected"
        time.sleep(0.3)  # several polls: nobody else is elected meanwhile
        assert world.events == [(first, "elected")] and world.leaders() == [first]
        # A leader that stops (shutdown) releases the lock at once: another is elected.
        world.members[first].close()
        events = world.wait_for(2)
        assert events[1][1] == "elected" and events[1][0] != first
        time.sleep(0.3)
        assert world.leaders() == [events[1][0]] and len(world.events) == 2
    finally:
        for member in world.members:
            member.close()


def test_when_the_leader_s_session_ends_another_takes_over_and_it_steps_down(
    postgres_url: str, locks: list[AdvisoryLock]
) -> None:
    """Each process's look at the lock, one at a time (what each thread does every poll)."""
    world = Elections(postgres_url, locks, 2)
    old, new = world.members
    old.step()
    new.step()
    assert world.events == [(0, "elected")] and world.leaders() == [0]
    assert old.lock is not None
    _terminate(postgres_url, old.lock)  # the leader's process died, or its host vanished
    new.step()
    assert world.events[-1] == (1, "elected")
    old.step()  # its session is gone and the lock taken: it steps down
    assert world.events == [(0, "elected"), (1, "elected"), (0, "lost")]
    assert old.stepped_down and world.leaders() == [1]
    old.step()  # and never asks again
    assert len(world.events) == 3 and world.leaders() == [1]
    for member in world.members:
        member.close()


def test_a_lone_leader_keeps_leading_when_its_session_ends(
    postgres_url: str, locks: list[AdvisoryLock]
) -> None:
    """A database restart ends every session: a single server asks again and leads on."""
    world = Elections(postgres_url, locks, 1)
    (alone,) = world.members
    alone.step()
    assert alone.lock is not None
    _terminate(postgres_url, alone.lock)
    alone.step()
    assert world.events == [(0, "elected")] and alone.leader and not alone.stepped_down
    assert alone.lock.still_held()
    alone.close()


def test_without_a_lock_the_only_process_leads_at_once() -> None:
    told: list[str] = []
    alone = Leadership(
        None, on_elected=lambda: told.append("elected"), on_lost=lambda: told.append("lost")
    )
    alone.start()
    assert alone.leader and told == ["elected"]
    alone.close()
    assert not alone.leader


def test_a_database_short_of_connections_is_said_before_serving(postgres_url: str) -> None:
    from sqlalchemy import make_url

    with create_engine(postgres_url).connect() as conn:
        limit = int(conn.execute(text("SHOW max_connections")).scalar_one())
        reserved = int(conn.execute(text("SHOW superuser_reserved_connections")).scalar_one())
    assert connections_shortfall(postgres_url, limit - reserved) is None
    said = connections_shortfall(postgres_url, limit - reserved + 1)
    assert said is not None and f"max_connections {limit}" in said
    assert f"up to {limit - reserved + 1}" in said
    # Not PostgreSQL, or not answering: nothing to say here (the start-up reports the latter).
    assert connections_shortfall("sqlite:///x.db", 10**6) is None
    gone = make_url(postgres_url).set(port=1).render_as_string(hide_password=False)
    assert connections_shortfall(gone, 10**6) is None
