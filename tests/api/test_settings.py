"""Settings fail fast: production refuses placeholder secrets, tariffs must leave a band."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
REAL = "a-real-secret-with-enough-characters-42"


@pytest.mark.parametrize("token", [None, "change-me", "secret", "short-but-real"])
def test_production_refuses_a_missing_or_placeholder_operator_token(token: str | None) -> None:
    with pytest.raises(ValidationError, match="OPERATOR_TOKEN"):
        Settings(environment="production", operator_token=token, key_secret=REAL)


def test_production_needs_a_key_secret_too() -> None:
    with pytest.raises(ValidationError, match="KEY_SECRET"):
        Settings(environment="production", operator_token=REAL)
    assert Settings(environment="production", operator_token=REAL, key_secret=REAL)


def test_tariffs_must_leave_room_for_a_local_price() -> None:
    with pytest.raises(ValidationError, match="feed_in"):
        Settings(feed_in_ueur_per_kWh=200_000, retail_ueur_per_kWh=210_000)
    with pytest.raises(ValidationError, match="slot_seconds"):
        Settings(slot_seconds=600)


def test_the_time_zone_is_an_iana_zone_paris_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOISIN_TIMEZONE", raising=False)
    assert Settings().timezone == "Europe/Paris"
    monkeypatch.setenv("VOISIN_TIMEZONE", "America/New_York")
    assert Settings().timezone == "America/New_York"
    for bad in ("Mars/Olympus", "../etc/passwd", ""):
        with pytest.raises(ValidationError, match="VOISIN_TIMEZONE: unknown time zone"):
            Settings(timezone=bad)


def test_voisin_serve_exits_with_a_clear_message_on_bad_settings(tmp_path: Path) -> None:
    env = {
        "VOISIN_ENVIRONMENT": "production",
        "VOISIN_OPERATOR_TOKEN": "change-me",
        "VOISIN_DATA_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve", "--port", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "VOISIN_OPERATOR_TOKEN must be set to a real secret" in done.stderr
