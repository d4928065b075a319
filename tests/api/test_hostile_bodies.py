"""Pathological request bodies get a 4xx before anything parses them, on every route, with or
without a token, and the server stays up: too large (Content-Length or chunked), nested too
deep, brackets that never close, not UTF-8, duplicate keys. Also the recursion limit the
process runs with, and the bracket scan itself against a real parser."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.process import ServeProcess
from ledger.jsonscan import RECURSION_LIMIT, json_depth_problem
from tests.api.conftest import OP, OPERATOR_TOKEN, Api

#: The body that killed `voisin serve`: 80,000 nested arrays (160 kB).
DEEP = b"[" * 80_000 + b"]" * 80_000
#: Every route whose operation takes a JSON body, with ids that exist in the fixture below.
JSON_ROUTES = [
    ("POST", "/households"),
    ("POST", "/households/1/meter"),
    ("POST", "/topups"),
    ("POST", "/readings"),
    ("POST", "/offers"),
    ("POST", "/bids"),
    ("POST", "/offers/1/take"),
]
#: Routes without a body: a body sent anyway is checked the same way.
OTHER_ROUTES = [
    ("GET", "/health"),
    ("GET", "/households/1/balance"),
    ("DELETE", "/offers/1"),
    ("POST", "/market/slots/5/settle"),
    ("GET", "/unknown/path"),
]
JSON = {"content-type": "application/json"}


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


def _chunks(body: bytes, size: int = 4096) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


# ───────────────────────────── The bracket scan ─────────────────────────────

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n\u00e9\u202e'),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\:,a'), children, max_size=3)
    ),
    max_leaves=30,
)


@given(json_values, st.integers(1, 12), st.booleans())
@settings(max_examples=300, deadline=None)
def test_the_scan_finds_exactly_the_bodies_nested_deeper_than_the_limit(
    value: Any, limit: int, ascii_only: bool
) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    problem = json_depth_problem(body, limit)
    if _depth(value) > limit:
        assert problem is not None and problem[0] == "json_too_deep"
    else:
        assert problem is None


def test_brackets_inside_strings_do_not_count_and_unclosed_ones_are_not_json() -> None:
    assert json_depth_problem(b'{"name": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', 4) is None
    assert json_depth_problem(b'["a\\"[[[[[[[[[[[[[[[[[[[[[[[[[\\\\", 1]', 2) is None
    assert json_depth_problem(b"[[[[]]]]", 4) is None
    assert json_depth_problem(b'[{"a": [{}]}]', 3) == (
        "json_too_deep",
        "JSON bodies nest at most 3 arrays and objects deep",
    )
    code, message = json_depth_problem(b"[" * 160_000, 32) or ("", "")
    assert code == "invalid_input" and "160000 unclosed" in message
    assert json_depth_problem(b"{not json", 32) is not None  # the parser would say the same


def test_the_process_runs_with_voisins_recursion_limit(embedded_api: Api) -> None:
    """py_ecc raises the limit to 100,000 when imported; the app sets its own back, also after
    the lifespan has opened the chain."""
    assert "py_ecc" in sys.modules
    assert sys.getrecursionlimit() == RECURSION_LIMIT
    assert embedded_api.client.get("/health").status_code == 200
    assert sys.getrecursionlimit() == RECURSION_LIMIT


# ───────────────────────────── Every route, in process ─────────────────────────────


@pytest.fixture
def hostile(embedded_api: Api) -> Api:
    """A household (id 1, a prosumer) with an offer (id 1), so that the ids in the routes exist."""
    member = embedded_api.register(prosumer=True, topup_ueur=1_000)
    r = embedded_api.client.post(
        "/offers", json={"price_limit_ueur_per_kWh": 90_000, "first_slot": 1}, headers=member.auth
    )
    assert r.status_code == 202, r.text
    return embedded_api


def _callers(api: Api) -> list[dict[str, str]]:
    return [{}, OP, api.members[0].auth]


def test_deep_bodies_are_refused_on_every_route_with_or_without_a_token(hostile: Api) -> None:
    c = hostile.client
    before = hostile.snapshot()
    wrong = []
    for method, path in JSON_ROUTES + OTHER_ROUTES:
        for headers in _callers(hostile):
            for name, content in (("length", DEEP), ("chunked", _chunks(DEEP))):
                r = c.request(method, path, content=content, headers={**headers, **JSON})
                if (r.status_code, r.json().get("code")) != (422, "json_too_deep"):
                    wrong.append(f"{method} {path} {name} {headers}: {r.status_code} {r.text}")
    assert not wrong, "\n".join(wrong)
    assert hostile.snapshot() == before
    assert c.get("/health").status_code == 200


def test_too_large_bodies_get_the_same_413_chunked_or_not(hostile: Api) -> None:
    c = hostile.client
    big = b"[" + b"1," * 600_000 + b"1]"  # 1.2 MB, shallow
    for method, path in JSON_ROUTES + OTHER_ROUTES:
        answers = [
            c.request(method, path, content=content, headers={**OP, **JSON})
            for content in (big, _chunks(big))
        ]
        for r in answers:
            assert r.status_code == 413, (method, path, r.text)
            assert r.json() == {
                "code": "payload_too_large",
                "message": "request bodies are limited to 1000000 bytes",
            }
    # A form too: the limit holds before any parser, whatever the content type.
    form = {"content-type": "application/x-www-form-urlencoded"}
    r = c.post("/ui/signin", content=b"token=" + b"a" * 1_000_000, headers=form)
    assert r.status_code == 413
    assert c.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(b"[" * 160_000, "invalid_input", id="brackets that never close"),
        pytest.param('{"household": 1}'.encode("utf-16"), "invalid_input", id="utf-16"),
        pytest.param(b'{"household": 1,\x00 "amount_ueur": 5}', "invalid_input", id="nul"),
        pytest.param(b"\x00[\x00[\x00]\x00]", "invalid_input", id="utf-16 without a bom"),
        pytest.param(b'{"a": ' * 33 + b"1" + b"}" * 33, "json_too_deep", id="33 objects deep"),
        pytest.param(b'{"household": ' + b"9" * 5000 + b"}", "invalid_input", id="5000 digits"),
    ],
)
def test_bodies_that_are_not_plain_utf8_json_are_refused_before_parsing(
    hostile: Api, body: bytes, code: str
) -> None:
    before = hostile.snapshot()
    for method, path in JSON_ROUTES:
        r = hostile.client.request(method, path, content=body, headers={**OP, **JSON})
        assert (r.status_code, r.json()["code"]) == (422, code), (method, path, r.text)
        assert r.json()["message"]
    assert hostile.snapshot() == before


def test_duplicate_keys_are_refused_naming_the_key_on_every_json_route(hostile: Api) -> None:
    """The parser would keep the last value: {"amount_ueur": 1, "amount_ueur": 999999}
    minted 999,999."""
    c = hostile.client
    before = hostile.snapshot()
    balance = c.get("/households/1/balance", headers=OP).json()["balance_ueur"]
    r = c.post(
        "/topups",
        content=b'{"household": 1, "amount_ueur": 1, "amount_ueur": 999999}',
        headers={**OP, **JSON},
    )
    assert r.status_code == 422
    assert r.json() == {
        "code": "duplicate_key",
        "message": "the key 'amount_ueur' appears twice in one JSON object; give each key once",
        "details": [{"field": "amount_ueur", "problem": "duplicate key"}],
    }
    assert c.get("/households/1/balance", headers=OP).json()["balance_ueur"] == balance
    # Nested objects too, and on every route, whatever the caller.
    nested = b'{"readings": [{"slot": 5, "meter": "0x1", "slot": 6}]}'
    for method, path in JSON_ROUTES:
        for headers in _callers(hostile):
            r = c.request(method, path, content=nested, headers={**headers, **JSON})
            assert (r.status_code, r.json()["code"]) == (422, "duplicate_key"), (method, path)
            assert "'slot'" in r.json()["message"]
    assert hostile.snapshot() == before


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded+json",
        "multipart/form-data+json; charset=utf-8",
        "application/merge-patch+json",
        " Application/JSON ; charset=utf-8",
    ],
)
def test_a_body_parsed_as_json_is_checked_as_json_whatever_its_content_type_says(
    hostile: Api, content_type: str
) -> None:
    """FastAPI parses any ``application/...+json`` as JSON: one named like a form is no
    form, and its duplicate key is refused as on ``application/json``."""
    before = hostile.snapshot()
    r = hostile.client.post(
        "/topups",
        content=b'{"household": 1, "amount_ueur": 1, "amount_ueur": 999999}',
        headers={**OP, "content-type": content_type},
    )
    assert (r.status_code, r.json()["code"]) == (422, "duplicate_key"), r.text
    assert hostile.snapshot() == before


def test_form_bodies_are_not_scanned_as_json(hostile: Api) -> None:
    """Brackets in a form field are just text: the sign-in form answers as usual."""
    r = hostile.client.post(
        "/ui/signin",
        content=b"token=" + b"%5B" * 100,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 401


# ───────────────────────────── A real server ─────────────────────────────


@pytest.mark.slow
def test_a_real_server_refuses_the_deep_body_chunked_or_not_and_stays_up(tmp_path: Path) -> None:
    """`voisin serve` as a subprocess: the body that crashed it with a segmentation fault, sent
    without a token to JSON routes, with Content-Length and chunked."""
    env = {"VOISIN_OPERATOR_TOKEN": OPERATOR_TOKEN, "VOISIN_AUTO_SETTLE": "false"}
    with ServeProcess(tmp_path / "data", env, log_path=tmp_path / "serve.log") as server:
        assert server.proc is not None
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            for path in ("/topups", "/readings", "/households", "/offers"):
                for content in (DEEP, _chunks(DEEP)):
                    r = http.post(path, content=content, headers=JSON)
                    assert r.status_code == 422, r.text
                    assert r.json()["code"] == "json_too_deep"
                    assert server.proc.poll() is None, "the server died"
            chunked_big = http.post("/topups", content=_chunks(b"[" * 2_000_000), headers=JSON)
            length_big = http.post("/topups", content=b"[" * 2_000_000, headers=JSON)
            assert chunked_big.status_code == length_big.status_code == 413
            assert chunked_big.json() == length_big.json()
        # A new connection: the refusals closed theirs where the body was left unread.
        assert httpx.get(f"{server.base_url}/health", timeout=10).status_code == 200
        assert server.proc.poll() is None
