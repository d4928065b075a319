"""The API docs need nothing but this server: ``/docs`` and ``/redoc`` reference only its own
URLs, every asset they reference is served (from the pinned fastapi-offline package) with its
media type, and their Content-Security-Policy allows exactly their inline scripts. The OpenAPI
document carries examples for the main answers and the error body, true to the models, and
says where a meter finds the EIP-712 signing domain."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tomllib
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api import docs_ui, schemas
from api.app import create_app
from api.schemas import PROBLEM_EXAMPLES, Problem
from ledger.readings.eip712 import domain_separator
from tests.api.conftest import OP, _settings

ROOT = Path(__file__).resolve().parents[2]
MEDIA_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(_settings(tmp_path_factory.mktemp("docs")), background=False)
    with TestClient(app) as c:
        yield c


class _Refs(HTMLParser):
    """Every URL a page makes the browser load: src, href, spec-url, and Swagger UI's url."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value is not None:
                self.urls.append(value)
        self._in_script = tag == "script" and not any(n == "src" for n, _ in attrs)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline.append(data)
            self.urls += re.findall(r"\burl: '([^']*)'", data)


def _refs(html: str) -> _Refs:
    parser = _Refs()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_reference_only_this_server(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert not re.search(r"(https?:)?//", r.text), "a URL to another host"
    refs = _refs(r.text)
    assert "/openapi.json" in refs.urls
    assert any(u.endswith(".js") for u in refs.urls)
    for url in refs.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        expected = MEDIA_TYPES[Path(url).suffix]
        assert asset.headers["content-type"].split(";")[0] == expected, url
        assert asset.content


def test_the_assets_are_fastapi_offline_s_at_the_pinned_version(client: TestClient) -> None:
    """Served as installed, from the package pinned in pyproject.toml (so an install is
    reproducible), and nothing else under the assets' prefix."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if d.startswith("fastapi-offline")]
    assert pins == [f"fastapi-offline=={version('fastapi-offline')}"]
    for name in docs_ui.STATIC_FILES:
        r = client.get(f"{docs_ui.STATIC_URL}/{name}")
        assert r.content == (docs_ui.ASSETS / name).read_bytes(), name
        assert r.headers["x-content-type-options"] == "nosniff"
    for wrong in ("core.py", "..%2Fcore.py", "swagger-ui.css.map", ""):
        assert client.get(f"{docs_ui.STATIC_URL}/{wrong}").status_code == 404, wrong


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_policy_allows_the_page_s_inline_scripts_and_nothing_outside(
    client: TestClient, page: str
) -> None:
    r = client.get(page)
    policy = {}
    for directive in r.headers["content-security-policy"].split("; "):
        name, _, sources = directive.partition(" ")
        policy[name] = sources
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    scripts = policy["script-src"].split()
    assert scripts[0] == "'self'"
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _refs(r.text).inline
    }
    assert set(scripts[1:]) == hashes
    assert (page == "/docs") == bool(hashes)  # Swagger UI's start script; ReDoc has none
    for directive, sources in policy.items():
        assert "http" not in sources and "*" not in sources, directive
    assert r.headers["x-frame-options"] == "DENY"


# ───────────────────────────── The OpenAPI document ─────────────────────────────

#: (method, path, status) of the main answers, each with an example in the document.
KEY_RESPONSES = [
    ("post", "/households", "201"),
    ("post", "/topups", "201"),
    ("post", "/readings", "202"),
    ("post", "/offers", "202"),
    ("post", "/bids", "202"),
    ("post", "/offers/{order_id}/take", "200"),
    ("get", "/households/{household}/balance", "200"),
    ("get", "/market/tariffs", "200"),
    ("get", "/health", "200"),
]


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = doc["components"]["schemas"][name]
    return schema


def _examples(doc: dict[str, Any], response: dict[str, Any]) -> list[Any]:
    media = response.get("content", {}).get("application/json", {})
    found = [media["example"]] if "example" in media else []
    found += [e["value"] for e in media.get("examples", {}).values()]
    schema = _resolve(doc, media.get("schema", {}))
    return found + list(schema.get("examples", []))


@pytest.mark.parametrize(("method", "path", "status"), KEY_RESPONSES)
def test_the_main_answers_have_examples(
    client: TestClient, method: str, path: str, status: str
) -> None:
    doc = client.get("/openapi.json").json()
    response = doc["paths"][path][method]["responses"][status]
    assert _examples(doc, response), (method, path, status)


def test_every_error_answer_shows_the_error_body(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    errors = 0
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and "content" in response:
                    examples = _examples(doc, response)
                    assert examples, (method, path, status)
                    assert all({"code", "message"} <= set(e) for e in examples)
                    errors += 1
    assert errors > 20


def _models_with_examples() -> list[type[BaseModel]]:
    models = [
        m
        for m in vars(schemas).values()
        if isinstance(m, type)
        and issubclass(m, BaseModel)
        and m.__module__ == schemas.__name__
        and not m.__pydantic_generic_metadata__["parameters"]
    ]
    return [m for m in models if "examples" in m.model_json_schema()]


@pytest.mark.parametrize("model", _models_with_examples(), ids=lambda m: m.__name__)
def test_each_example_is_a_valid_instance_with_every_field(model: type[BaseModel]) -> None:
    """An example is what the API sends or takes: the model accepts it (as JSON, so strict
    models are held to their wire form) and, for an answer, it names every field."""
    for example in model.model_json_schema()["examples"]:
        parsed = model.model_validate_json(json.dumps(example))
        if model.model_config.get("extra") != "forbid":  # an answer, not a request body
            every = set(model.model_fields)
            # An error has `details` only where there is more to say (api/errors.py).
            required = every - {"details"} if model is schemas.Problem else every
            assert required <= set(example) <= every, model.__name__
            assert parsed.model_dump(mode="json", exclude_unset=True) == example


def test_the_health_example_has_the_live_answer_s_shape(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    (example,) = _examples(doc, doc["paths"]["/health"]["get"]["responses"]["200"])
    live = client.get("/health").json()

    def shape(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items()}
        return type(value).__name__

    assert shape(example) == shape(live)


def test_the_document_says_where_the_signing_domain_comes_from(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    readings = doc["paths"]["/readings"]["post"]["description"]
    for text in (doc["info"]["description"], readings):
        assert 'EIP712Domain(name="Voisin", version="1", chainId, verifyingContract)' in text
        assert "GET /health" in text
        assert "chain.chain_id" in text and "chain.contract" in text
    health = doc["paths"]["/health"]["get"]["responses"]["200"]
    assert "chain.chain_id" in health["description"]
    # What /health gives is the domain the server checks signatures in.
    live = client.get("/health").json()["chain"]
    services = client.app.state.services  # type: ignore[attr-defined]
    assert domain_separator(live["chain_id"], live["contract"]) == services.domain


def test_each_error_example_is_the_answer_of_its_status(client: TestClient) -> None:
    """The documented error of each status validates as the error body, and those that a
    request here can provoke are exactly what the API answers."""
    doc = client.get("/openapi.json").json()
    documented = doc["paths"]["/households/{household}/balance"]["get"]["responses"]
    assert documented["404"]["content"]["application/json"]["example"] == PROBLEM_EXAMPLES[404]
    for status, example in PROBLEM_EXAMPLES.items():
        assert Problem.model_validate(example).model_dump(exclude_unset=True) == example, status
    live = {
        401: client.get("/trades"),
        404: client.get("/households/7/balance", headers=OP),
        413: client.post("/topups", content=b" " * 1_000_001, headers=OP),
    }
    for status, r in live.items():
        assert r.status_code == status and r.json() == PROBLEM_EXAMPLES[status], status
    invalid = client.post("/topups", json={"household": 1, "amount_ueur": "x"}, headers=OP)
    assert invalid.status_code == 422
    example = PROBLEM_EXAMPLES[422]
    assert invalid.json()["code"] == example["code"]
    assert invalid.json()["details"] == [
        {"field": "amount_ueur", "problem": example["details"][0]["problem"]}
    ]
    assert invalid.json()["message"] == f"amount_ueur: {example['details'][0]['problem']}"
