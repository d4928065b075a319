"""The household's downloads as CSV: its trades, and its bill for a month (one line per
metered slot, then the totals).

Figures are the ledger's integers (Wh, µ€), exact; each slot's local start is ISO 8601 with its
offset. Headers are in the reader's language (the column order is the same in both), and a
bill line says whether its slot is settled: on a pending line the grid's columns are empty,
because what came from and went to the grid is not known until the slot is settled.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from fastapi.responses import Response

from ledger.localtime import slot_iso
from ledger.market.statements import SETTLED, Statement
from ledger.mirror.models import FillRecord

#: Bill columns: (statement field, English header, French header). ``grid`` marks the columns a
#: pending line leaves empty.
BILL_COLUMNS: tuple[tuple[str, str, str, bool], ...] = (
    ("import_Wh", "import_Wh", "import_Wh", False),
    ("export_Wh", "export_Wh", "export_Wh", False),
    ("bought_Wh", "bought_Wh", "achete_voisins_Wh", False),
    ("sold_Wh", "sold_Wh", "vendu_voisins_Wh", False),
    ("grid_import_Wh", "grid_import_Wh", "pris_reseau_Wh", True),
    ("grid_export_Wh", "grid_export_Wh", "envoye_reseau_Wh", True),
    ("pending_import_Wh", "pending_import_Wh", "import_en_attente_Wh", False),
    ("pending_export_Wh", "pending_export_Wh", "export_en_attente_Wh", False),
    ("paid_local_ueur", "paid_local_ueur", "paye_voisins_ueur", False),
    ("fees_ueur", "fees_ueur", "frais_reseau_ueur", False),
    ("earned_local_ueur", "earned_local_ueur", "gagne_voisins_ueur", False),
    ("grid_import_cost_ueur", "grid_import_cost_ueur", "cout_reseau_ueur", True),
    ("grid_export_revenue_ueur", "grid_export_revenue_ueur", "revente_reseau_ueur", True),
    ("grid_only_cost_ueur", "grid_only_cost_ueur", "cout_reseau_seul_ueur", True),
    ("net_cost_ueur", "net_cost_ueur", "cout_net_ueur", False),
)

_BILL_HEAD = {
    "en": ("household", "month", "slot", "start_local", "status"),
    "fr": ("foyer", "mois", "tranche", "debut_local", "etat"),
}
_STATUS = {"en": {"settled": "settled", "pending": "pending"},
           "fr": {"settled": "reglee", "pending": "en_attente"}}  # fmt: skip
_SAVINGS = {"en": "savings_ueur", "fr": "economies_ueur"}

_TRADE_HEAD = {
    "en": ("slot", "start_local", "role", "counterparty", "energy_Wh", "price_ueur_per_kWh",
           "cost_ueur", "fee_ueur", "tx_hash"),
    "fr": ("tranche", "debut_local", "role", "contrepartie", "energie_Wh", "prix_ueur_par_kWh",
           "montant_ueur", "frais_ueur", "tx_hash"),
}  # fmt: skip
_ROLE = {"en": ("sold", "bought"), "fr": ("vendu", "achete")}


def trades_csv(household: int, fills: Iterable[FillRecord], tz: str, lang: str) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(_TRADE_HEAD[lang])
    sold, bought = _ROLE[lang]
    for f in sorted(fills, key=lambda f: (f.slot, f.block_number, f.log_index)):
        selling = f.seller == household
        w.writerow(
            [f.slot, slot_iso(f.slot, tz), sold if selling else bought,
             f.buyer if selling else f.seller, f.energy_Wh, f.price_ueur_per_kWh,
             f.cost_ueur, 0 if selling else f.fee_ueur, f.tx_hash]
        )  # fmt: skip
    return out.getvalue()


def bill_csv(household: int, month: str, statement: Statement | None, tz: str, lang: str) -> str:
    """The month's bill; with no statement (a future month, no data) only the header and a
    zero total, so the download always opens. The total line's savings cover settled slots."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    columns = [c[2] if lang == "fr" else c[1] for c in BILL_COLUMNS]
    w.writerow([*_BILL_HEAD[lang], *columns, _SAVINGS[lang]])
    total = "total"  # the same word in both languages
    if statement is not None:
        for line in statement.lines:
            settled = line.status == SETTLED
            values = [
                getattr(line, name) if settled or not grid else ""
                for name, _, _, grid in BILL_COLUMNS
            ]
            status = _STATUS[lang][line.status]
            w.writerow([household, month, line.slot, slot_iso(line.slot, tz), status, *values, ""])
        totals = [getattr(statement, name) for name, *_ in BILL_COLUMNS]
        status = _STATUS[lang]["pending" if statement.pending_slots else "settled"]
        w.writerow([household, month, total, "", status, *totals, statement.savings_ueur])
    else:
        w.writerow([household, month, total, "", "", *([0] * len(BILL_COLUMNS)), 0])
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
