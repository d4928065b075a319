"""The household's downloads as CSV: its trades, and its bill for a month (one line per
metered slot, then the totals). Figures are the ledger's integers (Wh, µ€), exact."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from fastapi.responses import Response

from ledger.localtime import slot_iso
from ledger.market.statements import Statement
from ledger.mirror.models import FillRecord

BILL_COLUMNS = (
    "import_Wh",
    "export_Wh",
    "bought_Wh",
    "sold_Wh",
    "grid_import_Wh",
    "grid_export_Wh",
    "paid_local_ueur",
    "fees_ueur",
    "earned_local_ueur",
    "grid_import_cost_ueur",
    "grid_export_revenue_ueur",
    "grid_only_cost_ueur",
    "net_cost_ueur",
)


def trades_csv(household: int, fills: Iterable[FillRecord], tz: str) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(
        ["slot", "start_local", "role", "counterparty", "energy_Wh", "price_ueur_per_kWh",
         "cost_ueur", "fee_ueur", "tx_hash"]
    )  # fmt: skip
    for f in sorted(fills, key=lambda f: (f.slot, f.block_number, f.log_index)):
        selling = f.seller == household
        w.writerow(
            [f.slot, slot_iso(f.slot, tz), "sold" if selling else "bought",
             f.buyer if selling else f.seller, f.energy_Wh, f.price_ueur_per_kWh,
             f.cost_ueur, 0 if selling else f.fee_ueur, f.tx_hash]
        )  # fmt: skip
    return out.getvalue()


def bill_csv(household: int, month: str, statement: Statement | None, tz: str) -> str:
    """The month's bill; with no statement (a future month, no data) only the header and a
    zero total, so the download always opens."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["household", "month", "slot", "start_local", *BILL_COLUMNS, "savings_ueur"])
    if statement is not None:
        for line in statement.lines:
            values = [getattr(line, c) for c in BILL_COLUMNS]
            w.writerow([household, month, line.slot, slot_iso(line.slot, tz), *values, ""])
        totals = [getattr(statement, c) for c in BILL_COLUMNS]
        w.writerow([household, month, "total", "", *totals, statement.savings_ueur])
    else:
        w.writerow([household, month, "total", "", *([0] * len(BILL_COLUMNS)), 0])
    return out.getvalue()


def csv_response(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
