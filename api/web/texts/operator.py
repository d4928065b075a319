"""Texts of the grid operator's page and the evidence page.

Each text is ``key: (English, French)``. French is written with plain spaces before ``: ; ! ?``;
:func:`api.web.i18n.text` turns them into the no-break spaces French typography wants."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    "operator": ("Grid operator", "Gestionnaire de réseau"),
    "flows": ("Neighbourhood flows per slot", "Flux du quartier par tranche"),
    "flows_intro": (
        "Per settled slot: the surplus and deficit the meters reported, and the part matched "
        "between neighbours; the rest went to or came from the grid.",
        "Par tranche réglée : le surplus et le déficit relevés, et la part échangée entre "
        "voisins ; le reste est allé au réseau ou en est venu.",
    ),
    "flows_alt": (
        "Bars for {n} settled slots: {s} Wh surplus, {d} Wh deficit, {m} Wh matched locally.",
        "Barres pour {n} tranches réglées : {s} Wh de surplus, {d} Wh de déficit, {m} Wh "
        "échangés localement.",
    ),
    "surplus": ("Surplus", "Surplus"),
    "deficit": ("Deficit", "Déficit"),
    "matched": ("Matched locally", "Échangé localement"),
    "no_slots_settled": ("No slot settled yet.", "Aucune tranche réglée pour l'instant."),
    "prices": ("Clearing prices and the tariff band", "Prix d'équilibre et bande tarifaire"),
    "prices_alt": (
        "Clearing prices of {n} slots, from {lo} to {hi} c€/kWh, within the band from the "
        "feed-in tariff {fi} to retail minus the grid fee {ce} c€/kWh.",
        "Prix d'équilibre de {n} tranches, de {lo} à {hi} c€/kWh, dans la bande du tarif de "
        "rachat {fi} au tarif de détail moins les frais de réseau {ce} c€/kWh.",
    ),
    "no_prices": ("No clearing price yet.", "Pas encore de prix d'équilibre."),
    "clearing_price": ("Clearing price", "Prix d'équilibre"),
    "band": ("Tariff band", "Bande tarifaire"),
    "feed_in": ("Feed-in tariff", "Tarif de rachat"),
    "retail": ("Retail tariff", "Tarif de détail"),
    "grid_fee": ("Grid fee", "Frais de réseau"),
    "audit": ("Audit", "Audit"),
    "audit_ok": (
        "Audit passed: energy and money are conserved, every settled kWh traces to a signed "
        "reading.",
        "Audit réussi : énergie et argent conservés, chaque kWh réglé remonte à un relevé signé.",
    ),
    "audit_failed": ("Audit failed: {n} finding(s).", "Audit en échec : {n} constat(s)."),
    "audit_unavailable": (
        "Audit unavailable: the audit service did not answer ({why}).",
        "Audit indisponible : le service d'audit n'a pas répondu ({why}).",
    ),
    "check": ("Check", "Contrôle"),
    "severity": ("Severity", "Gravité"),
    "evidence": ("Evidence", "Preuve"),
    "see_evidence": ("see the evidence", "voir la preuve"),
    "feeder": ("Feeder check", "Contrôle du départ BT"),
    "feeder_intro": (
        "Per slot: the lowest and highest voltage on the feeder (per unit, allowed band "
        "0.90-1.10) and the highest line loading.",
        "Par tranche : la tension la plus basse et la plus haute du départ (en unité réduite, "
        "bande permise 0,90-1,10) et la charge de ligne la plus forte.",
    ),
    "feeder_alt": (
        "Voltage per slot for {n} slots, from {lo} to {hi} pu, against the band 0.90 to 1.10 "
        "pu; highest loading {load} %.",
        "Tension par tranche pour {n} tranches, de {lo} à {hi} pu, face à la bande 0,90 à 1,10 "
        "pu ; charge maximale {load} %.",
    ),
    "feeder_not_run": (
        "The feeder check has not been run.",
        "Le contrôle du départ n'a pas été lancé.",
    ),
    "v_min": ("Lowest voltage (pu)", "Tension min (pu)"),
    "v_max": ("Highest voltage (pu)", "Tension max (pu)"),
    "loading": ("Highest loading (%)", "Charge max (%)"),
    "register": ("Register a household", "Inscrire un foyer"),
    "meter_address": ("Meter address (0x…)", "Adresse du compteur (0x…)"),
    "name": ("Name (optional)", "Nom (facultatif)"),
    "name_col": ("Name", "Nom"),
    "has_pv": ("Has PV (may sell)", "A du PV (peut vendre)"),
    "register_btn": ("Register", "Inscrire"),
    "registered": (
        "Household {id} registered. Its token, shown only now: {token}",
        "Foyer {id} inscrit. Son jeton, affiché une seule fois : {token}",
    ),
    "registered_earlier": (
        "Household {id} was registered by this form; its token was shown only once, then.",
        "Le foyer {id} a été inscrit par ce formulaire ; son jeton n'a été affiché qu'une "
        "fois, à ce moment-là.",
    ),
    "import_baseline": (
        "Import register now (Wh, empty for 0)",
        "Index import actuel (Wh, vide pour 0)",
    ),
    "export_baseline": (
        "Export register now (Wh, empty for 0)",
        "Index export actuel (Wh, vide pour 0)",
    ),
    "replace_meter": ("Replace a household's meter", "Remplacer le compteur d'un foyer"),
    "replace_intro": (
        "The new meter takes over after the old one's last accepted slot, from the registers "
        "it shows now.",
        "Le nouveau compteur prend le relais après la dernière tranche acceptée de l'ancien, "
        "à partir des index qu'il affiche maintenant.",
    ),
    "new_meter": ("New meter address (0x…)", "Adresse du nouveau compteur (0x…)"),
    "replace_btn": ("Replace the meter", "Remplacer le compteur"),
    "replaced": (
        "Household {id} now reads from meter {meter}; its readings follow slot {slot}.",
        "Le foyer {id} lit maintenant le compteur {meter} ; ses relevés suivent la tranche {slot}.",
    ),
    "topup": ("Top up a household", "Créditer un foyer"),
    "topup_amount": ("Amount (€)", "Montant (€)"),
    "topup_btn": ("Top up", "Créditer"),
    "topped_up": ("{a} added to household {id}.", "{a} ajoutés au foyer {id}."),
    "households": ("Households", "Foyers"),
    "evidence_title": ("Evidence", "Preuves"),
    "back": ("Back to the overview", "Retour à la vue d'ensemble"),
    "readings": ("Signed meter readings", "Relevés signés des compteurs"),
    "meter": ("Meter", "Compteur"),
    "import_wh": ("Import register (Wh)", "Index import (Wh)"),
    "export_wh": ("Export register (Wh)", "Index export (Wh)"),
    "delta": ("In the slot (Wh)", "Dans la tranche (Wh)"),
    "signature": ("Signature", "Signature"),
    "tx": ("Transaction", "Transaction"),
    "fills": ("Settled fills", "Échanges réglés"),
    "outcome": ("Slot outcome", "Résultat de la tranche"),
    "none": ("None.", "Aucun."),
    "status": ("Status", "État"),
}
