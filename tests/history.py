"""Days of metered history written straight into a mirror, for the tests of what reads the
past (the forecasts): each household exports around noon (UTC) and imports in the evening, a
little more each weekday."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from api.services import slot_now
from ledger.mirror.models import ReadingRecord


def write_metered_days(engine: Engine, members: Sequence[Any], days: int) -> None:
    """``days`` of readings up to the slot before now for ``members`` (each with ``id`` and
    ``meter.address``), in the mirror of ``engine``."""
    last = slot_now() - 1
    first = last - days * 96 + 1
    rows = []
    for n, m in enumerate(members):
        imported = exported = 0
        for slot in range(first, last + 1):
            hour = (slot % 96) / 4
            sun = max(0.0, math.cos((hour - 12) / 12 * math.pi)) ** 2
            evening = 1.0 if 17 <= hour < 22 else 0.2
            d_exp = int(300 * sun * (1 + n / 10))
            d_imp = int(200 * evening + 10 * ((slot // 96) % 7))
            imported += d_imp
            exported += d_exp
            rows.append(
                ReadingRecord(
                    household=m.id,
                    meter=m.meter.address,
                    slot=slot,
                    import_Wh=imported,
                    export_Wh=exported,
                    import_delta_Wh=d_imp,
                    export_delta_Wh=d_exp,
                    block_number=1,
                    tx_hash="0x" + "00" * 32,
                )
            )
    with Session(engine) as session:
        session.add_all(rows)
        session.commit()
