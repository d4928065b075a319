"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) render in Chromium with every request to
another host aborted, as on a machine without internet access, and under the pages' own
Content-Security-Policy (the context does not bypass it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.web.conftest import Server

pytestmark = pytest.mark.browser

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@dataclass
class Offline:
    """A page whose requests to other hosts are aborted, and what the page tried and said."""

    page: Any
    blocked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@pytest.fixture
def offline(browser: Any) -> Iterator[Offline]:
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    seen = Offline(context.new_page())

    def route(r: Any) -> None:
        url = r.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname in LOCAL_HOSTS:
            r.continue_()
        else:
            seen.blocked.append(url)
            r.abort()

    context.route("**/*", route)
    seen.page.on(
        "console",
        lambda m: seen.problems.append(m.text) if m.type in ("error", "warning") else None,
    )
    seen.page.on("pageerror", lambda e: seen.problems.append(f"page error: {e}"))
    seen.page.set_default_timeout(60_000)
    yield seen
    context.close()


#: ReDoc's sidebar credit ("API docs by Redocly") always tries its logo from Redocly's CDN and
#: hides the image when it cannot load: the policy refuses it before any request is made.
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def _csp_refusals(problems: list[str]) -> list[str]:
    """Errors and policy refusals, but the refusal of ReDoc's credit logo."""
    return [
        p
        for p in problems
        if ("Content Security Policy" in p or "page error" in p)
        and not (f"image '{REDOCLY_LOGO}'" in p and "img-src" in p)
    ]


def test_swagger_ui_lists_every_operation_offline(server: Server, offline: Offline) -> None:
    operations = [
        (method.upper(), path)
        for path, item in server.http.get("/openapi.json").json()["paths"].items()
        for method in item
    ]
    page = offline.page
    response = page.goto(server.url + "/docs")
    assert response is not None and response.status == 200
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() == len(operations)
    # The unversioned paths are listed too, as deprecated (docs/public-api.md).
    shown = page.locator(
        ".opblock-summary-path, .opblock-summary-path__deprecated"
    ).all_inner_texts()
    assert {p.replace("\u200b", "") for p in shown} == {path for _, path in operations}
    readings = page.locator(".opblock-post", has=page.locator('[data-path="/v1/readings"]'))
    assert readings.count() == 1
    assert page.locator(".opblock-deprecated", has=page.locator('[data-path="/readings"]')).count()
    # An operation opens on a click, with its answers' examples.
    register = page.locator(".opblock-post", has=page.locator('[data-path="/v1/households"]'))
    register.locator(".opblock-summary").first.click()
    answers = register.locator(".responses-wrapper")
    answers.get_by_text('"vsn_').first.wait_for()
    answers.get_by_text('"unauthorized"').first.wait_for()
    assert page.get_by_text("Signing readings").count() >= 1  # the description is rendered
    assert offline.blocked == []
    assert _csp_refusals(offline.problems) == [], offline.problems


def test_redoc_renders_the_title_and_operations_offline(server: Server, offline: Offline) -> None:
    page = offline.page
    response = page.goto(server.url + "/redoc")
    assert response is not None and response.status == 200
    title = page.locator("h1", has_text=re.compile(r"^Voisin"))
    title.first.wait_for()
    assert "0.1.0" in title.first.inner_text()
    page.locator("h2", has_text="Submit signed meter readings").first.wait_for()
    assert offline.blocked == []
    assert _csp_refusals(offline.problems) == [], offline.problems
