"""Take the README's screenshots of the dashboard: a small neighbourhood trades through the
last slots of today on a throwaway server, then headless Chromium (Debian's package) photographs
the household view and the operator view (each on a desktop and a phone) into docs/.

    .venv/bin/python scripts/dashboard_screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

# The browser tests' server and helpers (tests/web/conftest.py) drive the screenshots too.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.web import conftest as web


def _neighbourhood(server: web.Server, slots: list[int]) -> web.Member:
    """Two PV households and two without, a day's curve of PV surplus and evening demand."""
    amelie = server.register(prosumer=True, name="Amélie", topup_ueur=2_000_000)
    bruno = server.register(prosumer=True, name="Bruno", topup_ueur=2_000_000)
    chloe = server.register(prosumer=False, name="Chloé", topup_ueur=8_000_000)
    david = server.register(prosumer=False, name="David", topup_ueur=8_000_000)
    r = server.http.post(
        "/offers", json={"price_limit_ueur_per_kWh": 90_000, "first_slot": 1}, headers=amelie.auth
    )
    assert r.status_code == 202, r.text
    for i, slot in enumerate(slots):
        # Sunshine rises and sets across the slots; the PV households import at the edges.
        sun = math.sin(math.pi * (i + 0.5) / len(slots))
        flows = {
            amelie.id: (0, int(1000 * sun - 250)) if sun > 0.3 else (int(400 * (1 - sun)), 0),
            bruno.id: (0, int(600 * sun - 200)) if sun > 0.4 else (int(300 * (1 - sun)), 0),
            chloe.id: (int(300 + 200 * (i % 3)), 0),
            david.id: (int(250 + 150 * ((i + 1) % 4)), 0),
        }
        server.simulate([slot], flows)
    return amelie


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--slots", type=int, default=16)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    now = int(time.time()) // 900
    first = max(now - args.slots, now - now % 96)  # today's slots only (UTC)
    slots = list(range(first, now))

    with tempfile.TemporaryDirectory() as tmp, web.running_server(Path(tmp) / "data") as server:
        household = _neighbourhood(server, slots)
        # The operator's page shows the audit and power flows the keeper keeps after
        # settlement: let it catch up first.
        server.services.keeper.catch_up()
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=web.chromium_path(), headless=True)
            for name, token, size in (
                ("dashboard-household.png", household.token, (1280, 900)),
                ("dashboard-household-phone.png", household.token, (390, 844)),
                ("dashboard-operator.png", web.OPERATOR_TOKEN, (1280, 900)),
                ("dashboard-operator-phone.png", web.OPERATOR_TOKEN, (390, 844)),
            ):
                context = browser.new_context(
                    locale="en-GB", viewport={"width": size[0], "height": size[1]}
                )
                page = context.new_page()
                page.set_default_timeout(120_000)
                web.sign_in(page, server.url, token)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(args.out / name), full_page=True)
                print(f"wrote {args.out / name}")
                context.close()
            browser.close()


if __name__ == "__main__":
    main()
