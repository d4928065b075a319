"""An action interrupted right after any of its steps happens exactly once.

For each of registration, top-up, key rotation, meter rotation and take, and each step of it
(:data:`api.intents.FAULT_POINTS`), the test fault hook raises right after that step: the
request answers 500. Then either the server restarts (its start reconciles the intent with the
chain) and the client retries with the same ``Idempotency-Key``, or the client retries at once
on the same server. Either way the retry answers the action's success, a third send answers the
same again, and the chain and the database hold the action once: one household, one top-up,
one rotation, one fill; the token works, the balances are right, the audit is clean.

In process on the embedded chain with SQLite and on anvil with PostgreSQL; the ``kill -9`` of a
real ``voisin serve`` is in ``test_intent_kill.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from api.intents import FAULT_POINTS, FaultHook
from api.settings import Settings
from tests.api.conftest import OPERATOR_TOKEN
from tests.api.intent_cases import ACTIONS, assert_converged, opened, send
from tests.conftest import ANVIL_KEY

CASES = [(kind, point) for kind, points in FAULT_POINTS.items() for point in points]
KEY = "7d1c2f60-0b55-4a4e-9f0e-interrupted"


@pytest.fixture(
    params=[
        "embedded-sqlite",
        pytest.param("anvil-postgres", marks=[pytest.mark.anvil, pytest.mark.postgres]),
    ]
)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """One backend's settings, opened twice by a test (before and after the restart)."""
    fields = {
        "data_dir": tmp_path / "data",
        "operator_token": OPERATOR_TOKEN,
        "auto_settle": False,
        "chain_process": False,
    }
    if request.param == "anvil-postgres":
        fields |= {
            "chain": request.getfixturevalue("anvil_url"),
            "chain_key": ANVIL_KEY,
            "database_url": request.getfixturevalue("postgres_url"),
        }
    return Settings(**fields)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "point"), CASES, ids=[f"{k}.{p}" for k, p in CASES])
def test_an_action_interrupted_after_any_step_happens_once_after_a_restart_and_a_retry(
    settings: Settings, kind: str, point: str
) -> None:
    with opened(settings) as api:
        action = ACTIONS[kind](api)
        api.services.intents.fault = FaultHook(f"{kind}.{point}")
        first = send(api, action, KEY)
        assert first.status_code == 500, first.text
        assert first.json()["code"] == "internal_error"
    with opened(settings) as api:
        assert api.services.intents.unfinished() == 0  # the start finished it
        retry = send(api, action, KEY)
        assert retry.status_code == action.status, retry.text
        again = send(api, action, KEY)
        assert (again.status_code, again.json()) == (retry.status_code, retry.json())
        action.check(api, retry.json())
        assert_converged(api)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "point"), CASES, ids=[f"{k}.{p}" for k, p in CASES])
def test_an_action_interrupted_after_any_step_happens_once_when_retried_on_the_same_server(
    settings: Settings, kind: str, point: str
) -> None:
    with opened(settings) as api:
        action = ACTIONS[kind](api)
        api.services.intents.fault = FaultHook(f"{kind}.{point}")
        assert send(api, action, KEY).status_code == 500
        retry = send(api, action, KEY)
        assert retry.status_code == action.status, retry.text
        again = send(api, action, KEY)
        assert (again.status_code, again.json()) == (retry.status_code, retry.json())
        action.check(api, retry.json())
        assert_converged(api)
