"""In headless Chromium, the first run: ``voisin serve`` started from a folder of one's own
with the default data directory, then the operator signs in with the token from the file the
server named, and sees the operator's page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.api.test_first_run import voisin_serve_in
from tests.web.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_operator_signs_in_with_the_token_voisin_serve_points_to(
    tmp_path: Path, page: Any
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with voisin_serve_in(home, tmp_path / "serve.log") as run:
        assert run.token_file == home / "data" / "operator.token"
        sign_in(page, run.base_url, run.token_file.read_text().strip())
        expect(page).to_have_url(run.dashboard + "ui/operator")
        expect(page.get_by_role("heading", level=1)).to_have_text("Grid operator")
        expect(page.get_by_role("button", name="Register")).to_be_visible()
    assert sorted(p.name for p in home.iterdir()) == ["data"]
