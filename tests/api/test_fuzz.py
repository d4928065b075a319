"""Fuzzing the API's bodies and parameters: no input, however shaped, gets a 5xx, every refusal
is the JSON error shape, and the app still answers ``/health`` afterwards.

Two sources of input, both bounded so that the module runs in well under a minute:

- a Hypothesis strategy of arbitrary JSON (any shape, depth and size, huge integers, control
  characters, duplicate keys, deep nesting, raw bytes), alone or spliced into a valid body,
  sent to every route that takes a JSON body, without a token, as the operator and as a
  household, with Content-Length or chunked;
- schemathesis's negative data: requests that break the OpenAPI document on purpose (wrong
  types, out-of-range integers, missing fields, unknown query parameters), which must be
  refused with a 4xx.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from eth_account import Account
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection

from api.app import create_app
from api.schemas import INT64_MAX
from api.settings import Settings
from tests.api.conftest import OP, OPERATOR_TOKEN

DATA = Path(tempfile.mkdtemp(prefix="voisin-fuzz-")) / "data"
APP = create_app(
    Settings(data_dir=DATA, operator_token=OPERATOR_TOKEN, auto_settle=False, chain_process=False),
    background=False,
)
CALLERS: dict[str, dict[str, str]] = {"nobody": {}, "operator": OP}
#: A valid body per JSON route (the ids exist once `running_app` has run): the fuzzer splices
#: arbitrary JSON into them, so that it also reaches past the first field's check.
VALID: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/households"): {"meter": Account.create().address, "prosumer": True, "name": "A"},
    ("POST", "/households/1/meter"): {"meter": Account.create().address},
    ("POST", "/topups"): {"household": 1, "amount_ueur": 1},
    ("POST", "/readings"): {
        "readings": [
            {
                "meter": Account.create().address,
                "slot": 5,
                "import_Wh": 1,
                "export_Wh": 2,
                "v": 27,
                "r": "0x" + "1" * 64,
                "s": "0x" + "2" * 64,
            }
        ]
    },
    ("POST", "/offers"): {"price_limit_ueur_per_kWh": 90_000, "first_slot": 5},
    ("POST", "/bids"): {"price_limit_ueur_per_kWh": 90_000, "first_slot": 5, "last_slot": 6},
    ("POST", "/offers/1/take"): {"slot": 5, "max_Wh": 10},
}
ROUTES = sorted(VALID)


@pytest.fixture(scope="module", autouse=True)
def running_app() -> Iterator[TestClient]:
    """The app's services, open for the whole module (schemathesis's client shares them), with
    a prosumer (household 1) that has an offer (order 1)."""
    with TestClient(APP) as client:
        r = client.post(
            "/households", json={"meter": Account.create().address, "prosumer": True}, headers=OP
        )
        assert r.status_code == 201, r.text
        CALLERS["household"] = {"Authorization": f"Bearer {r.json()['token']}"}
        r = client.post("/offers", json=VALID[("POST", "/offers")], headers=CALLERS["household"])
        assert r.status_code == 202, r.text
        yield client
        assert client.get("/health").status_code == 200
    shutil.rmtree(DATA.parent, ignore_errors=True)


# ───────────────────────────── Hypothesis: arbitrary JSON ─────────────────────────────

edge_integers = st.sampled_from(
    [0, -1, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, INT64_MAX, INT64_MAX + 1, 2**64 - 1, 2**64]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | edge_integers
    | st.integers(min_value=-(10**80), max_value=10**80)
    | st.floats()  # NaN and infinities too: Python's parser takes them
    | st.text(max_size=40)
    | st.sampled_from(["", "\x00", "\x1b[2J", "\u202e", "\ud800", "0x" + "f" * 40, "1e999"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=40,
)


@st.composite
def bodies(draw: st.DrawFn, route: tuple[str, str]) -> bytes:
    """Raw bytes for ``route``: arbitrary JSON, a valid body with a part replaced, deep or
    unclosed nesting, a duplicate key, or bytes that are not JSON at all."""
    kind = draw(st.sampled_from(["json", "spliced", "deep", "duplicate", "bytes"]))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "spliced":
        body = json.loads(json.dumps(VALID[route]))
        target = body["readings"][0] if "readings" in body else body
        key = draw(st.sampled_from([*target, "extra"]))
        if draw(st.booleans()):
            target[key] = draw(json_values)
        else:
            target.pop(key, None)
        # A lone surrogate goes out as it would from a careless client: not UTF-8.
        return json.dumps(body, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if kind == "deep":
        depth = draw(st.integers(0, 100_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        return opener * depth + b"1" + closer * draw(st.integers(0, depth))
    if kind == "duplicate":
        key = draw(st.sampled_from(sorted(VALID[route])))
        text = json.dumps(VALID[route])
        return (text[:-1] + f", {json.dumps(key)}: {json.dumps(draw(json_values))}}}").encode()
    return draw(st.binary(max_size=200))


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes, dict[str, str], bool]:
    route = draw(st.sampled_from(ROUTES))
    caller = draw(st.sampled_from(sorted(CALLERS)))
    content_type = draw(
        st.sampled_from(["application/json", None, "text/plain", "application/merge-patch+json"])
    )
    headers = dict(CALLERS[caller])
    if content_type is not None:
        headers["content-type"] = content_type
    return (*route, draw(bodies(route)), headers, draw(st.booleans()))


def _chunks(body: bytes) -> Iterator[bytes]:
    for i in range(0, len(body), 1000):
        yield body[i : i + 1000]


@given(requests())
@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_arbitrary_json_on_every_json_route_never_gets_a_server_error(
    running_app: TestClient, sent: tuple[str, str, bytes, dict[str, str], bool]
) -> None:
    method, path, body, headers, chunked = sent
    content: bytes | Iterator[bytes] = _chunks(body) if chunked else body
    r = running_app.request(method, path, content=content, headers=headers)
    event(f"{method} {path}: {r.status_code} {r.json().get('code', '')}")
    assert r.status_code < 500, (method, path, body[:300], r.status_code, r.text[:500])
    if r.status_code >= 400:
        got = r.json()
        assert isinstance(got["code"], str) and got["message"], r.text[:500]


def test_the_app_answers_health_after_the_fuzzing(running_app: TestClient) -> None:
    assert running_app.get("/health").status_code == 200


# ───────────────────────────── schemathesis: negative data ─────────────────────────────

NEGATIVE_CHECKS: list[schemathesis.CheckFunction] = [not_a_server_error, negative_data_rejection]
# Loaded from the document rather than with from_asgi, which would start the app's lifespan at
# import: schemathesis ends the lifespans it started after every test, and that one would own
# the services the module's client shares. This way schemathesis's lifespans start inside the
# tests and share the client's services (the app answers them as from_asgi would).
# Only the /v1 operations: the unversioned paths (deprecated) are the same routes.
schema = schemathesis.openapi.from_dict(APP.openapi()).exclude(deprecated=True)
schema.app = APP
schema.config.generation.update(modes=[GenerationMode.NEGATIVE])


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_schema_breaking_requests_are_refused_with_a_4xx(case: schemathesis.Case) -> None:
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
        # The broken part is the headers (a token missing or malformed): send them as generated.
        case.call_and_validate(checks=NEGATIVE_CHECKS)
        return
    for headers in CALLERS.values():
        case.call_and_validate(headers=headers, checks=NEGATIVE_CHECKS)
