"""Schemathesis drives every operation of the OpenAPI schema with generated requests, as the
operator and as a household: no 5xx, and every answer conforms to the schema."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from eth_account import Account
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from api.settings import Settings
from tests.api.conftest import OP, OPERATOR_TOKEN

DATA = Path(tempfile.mkdtemp(prefix="voisin-schema-")) / "data"
APP = create_app(
    Settings(data_dir=DATA, operator_token=OPERATOR_TOKEN, auto_settle=False, chain_process=False),
    background=False,
)
# The unversioned paths (deprecated) are the /v1 routes themselves, included twice (the test
# of /v1 holds both alike): the /v1 operations are driven, once each.
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(deprecated=True)
TOKENS: dict[str, str] = {"operator": OPERATOR_TOKEN}
# Every check but "schema-valid data must be accepted": the API rightly refuses some
# schema-valid requests by rules the schema cannot express (prices inside the tariffs of the day,
# unknown ids, a meter already registered, a slot not yet ended). Schema-invalid data must
# still be refused (negative_data_rejection stays on).
EXCLUDED = [positive_data_acceptance]


@pytest.fixture(scope="module", autouse=True)
def running_app() -> Iterator[None]:
    """Open the app's services once for the module (schemathesis's client then shares them)."""
    with TestClient(APP) as client:
        r = client.post(
            "/households", json={"meter": Account.create().address, "prosumer": True}, headers=OP
        )
        assert r.status_code == 201
        TOKENS["household"] = r.json()["token"]
        yield
    shutil.rmtree(DATA.parent, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_operator_requests_conform_and_never_fail(case: schemathesis.Case) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKENS['operator']}"}, excluded_checks=EXCLUDED
    )


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_household_requests_conform_and_never_fail(case: schemathesis.Case) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKENS['household']}"}, excluded_checks=EXCLUDED
    )
