"""Requests whose headers could be read two ways are refused, and the OpenAPI document lists
the body guard's 413 on every route."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.conftest import OPERATOR_TOKEN, _settings


def test_two_authorization_headers_are_refused_even_if_one_is_valid(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path), background=False)
    with TestClient(app) as client:
        good = ("authorization", f"Bearer {OPERATOR_TOKEN}")
        assert client.get("/audit/report", headers=[good]).status_code == 200
        for pair in ([good, ("authorization", "Bearer nope")], [good, good]):
            r = client.get("/audit/report", headers=pair)
            assert r.status_code == 401, r.text
            assert r.json()["code"] == "unauthorized"
            assert "one Authorization header" in r.json()["message"]


def test_every_route_documents_the_body_limit(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path), background=False)
    paths = app.openapi()["paths"]
    assert paths
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert "413" in operation["responses"], (method, path)
