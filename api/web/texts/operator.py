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
    "forecast_review": ("Forecast against metered", "Prévision et relevés"),
    "forecast_review_intro": (
        "The neighbourhood's forecast made a day before the newest reading, per hour (local "
        "time), against what the meters then recorded. The error is per 15-minute slot, on the "
        "net position (sent out minus taken); the day-before forecast repeats each slot of the "
        "previous day.",
        "La prévision du quartier faite un jour avant le relevé le plus récent, par heure (heure "
        "locale), et ce que les compteurs ont relevé ensuite. L'erreur est par tranche de 15 "
        "minutes, sur la position nette (envoyé moins pris) ; la prévision « veille » répète "
        "chaque tranche de la veille.",
    ),
    "expected_export": ("Expected sent out", "Envoi prévu"),
    "metered_export": ("Metered sent out", "Envoi relevé"),
    "expected_import": ("Expected taken", "Prise prévue"),
    "metered_import": ("Metered taken", "Prise relevée"),
    "forecast_error": (
        "Forecast error (mean, per slot)",
        "Erreur de la prévision (moyenne, par tranche)",
    ),
    "naive_error": (
        "Day-before error (mean, per slot)",
        "Erreur de la veille (moyenne, par tranche)",
    ),
    "forecast_skill": ("Better than the day before by", "Meilleure que la veille de"),
    "no_forecast_review": (
        "No forecast to review yet: forecasts start once the meters have recorded {days} whole "
        "days, and are reviewed a day later.",
        "Pas encore de prévision à comparer : les prévisions commencent quand les compteurs ont "
        "relevé {days} jours entiers, et se comparent un jour plus tard.",
    ),
    "forecast_review_alt": (
        "Bars per hour: energy the neighbourhood was expected to send out and what it sent "
        "out, {exp} Wh expected and {met} Wh metered over the day.",
        "Barres par heure : l'énergie que le quartier devait envoyer et celle qu'il a envoyée, "
        "{exp} Wh prévus et {met} Wh relevés sur la journée.",
    ),
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
        "Audit unavailable: the audit could not run ({why}).",
        "Audit indisponible : l'audit n'a pas pu tourner ({why}).",
    ),
    "audit_empty": (
        "Nothing to audit yet: no meter reading has reached the ledger and no slot is settled.",
        "Rien à auditer pour l'instant : aucun relevé n'a atteint le registre et aucune "
        "tranche n'est réglée.",
    ),
    "audit_pending": (
        "The audit has not run yet: it runs in the background after each settlement.",
        "L'audit n'a pas encore tourné : il tourne en arrière-plan après chaque règlement.",
    ),
    "audited_as_of": (
        "Audited as of {t}, up to the slot of {s}.",
        "Audité le {t}, jusqu'à la tranche de {s}.",
    ),
    "audited_as_of_no_slot": ("Audited as of {t}.", "Audité le {t}."),
    "audit_behind": (
        "Slots settled since then are being audited.",
        "Les tranches réglées depuis sont en cours d'audit.",
    ),
    "audit_last_failed": (
        "The latest run could not finish ({why}); the result shown is the one before.",
        "La dernière exécution n'a pas pu aboutir ({why}) ; le résultat affiché est le précédent.",
    ),
    "findings_more": (
        "The first {n} of {total} findings; the downloads hold them all.",
        "Les {n} premiers des {total} constats ; les téléchargements les contiennent tous.",
    ),
    "message_col": ("Finding", "Constat"),
    "op_downloads": ("Download the audit", "Télécharger l'audit"),
    "downloads_intro": (
        "The audit shown above, with the feeder check of every settled slot it covers.",
        "L'audit affiché ci-dessus, avec le contrôle du départ de chaque tranche réglée "
        "qu'il couvre.",
    ),
    "download_json": ("Report (JSON)", "Rapport (JSON)"),
    "download_csv": ("Findings (CSV)", "Constats (CSV)"),
    "download_html": ("Report page (HTML)", "Page du rapport (HTML)"),
    "no_download": (
        "No audit to download yet.",
        "Pas encore d'audit à télécharger.",
    ),
    "op_fees": ("Grid fees collected", "Frais de réseau perçus"),
    "fees_shown": ("Over the slots shown ({a} to {b})", "Sur les tranches affichées ({a} à {b})"),
    "fees_all": ("Since the ledger started", "Depuis le début du registre"),
    "op_silent": ("Meters not reporting", "Compteurs muets"),
    "silent_intro": (
        "Meters that have missed at least {n} closed slots (the last closed slot began at {t}).",
        "Compteurs qui ont manqué au moins {n} tranches closes (la dernière tranche close a "
        "commencé à {t}).",
    ),
    "silent_none": (
        "Every meter reported within the last {n} closed slots.",
        "Chaque compteur a transmis dans les {n} dernières tranches closes.",
    ),
    "last_reading": ("Last reading", "Dernier relevé"),
    "never_since": ("never (registered {t})", "jamais (inscrit le {t})"),
    "op_missed": ("Slots missed", "Tranches manquées"),
    "op_webhooks": ("Webhooks", "Webhooks"),
    "webhooks_failed": (
        "Deliveries to your systems that failed after every attempt: {n}. The newest:",
        "Envois à vos systèmes en échec après toutes leurs tentatives : {n}. Les derniers :",
    ),
    "webhooks_none": (
        "No failed delivery; webhooks subscribed: {n}.",
        "Aucun envoi en échec ; webhooks abonnés : {n}.",
    ),
    "webhook_delivery": ("Delivery", "Envoi"),
    "webhook_event": ("Event", "Événement"),
    "webhook_receiver": ("Receiver", "Destinataire"),
    "webhook_attempts": ("Attempts", "Tentatives"),
    "webhook_last": ("Last attempt", "Dernière tentative"),
    "webhook_error": ("Last error", "Dernière erreur"),
    "webhooks_retry": (
        "Once the receiver answers again, retry a delivery with POST "
        "/webhooks/deliveries/{id}/retry (docs/webhooks.md).",
        "Une fois le destinataire de nouveau joignable, relancez un envoi avec POST "
        "/webhooks/deliveries/{id}/retry (docs/webhooks.md).",
    ),
    "op_copy": ("Copy", "Copier"),
    "op_copy_meter": (
        "Copy the meter address of household {id}",
        "Copier l'adresse du compteur du foyer {id}",
    ),
    "op_copied": ("Copied", "Copié"),
    "op_settle": ("Settle a closed slot", "Régler une tranche close"),
    "settle_intro": (
        "Closed slots with meter readings and no settlement yet. Settling sends what is "
        "queued to the ledger, then clears and settles the slot, once.",
        "Tranches closes avec des relevés et pas encore réglées. Régler envoie au registre ce "
        "qui attend, puis apparie et règle la tranche, une seule fois.",
    ),
    "settle_slot": ("Slot to settle", "Tranche à régler"),
    "settle_btn": ("Settle the slot", "Régler la tranche"),
    "settle_none": (
        "No closed slot is waiting for settlement.",
        "Aucune tranche close n'attend de règlement.",
    ),
    "op_settled": (
        "Slot of {slot} settled: {e} Wh matched between neighbours in {n} trade(s).",
        "Tranche de {slot} réglée : {e} Wh échangés entre voisins en {n} échange(s).",
    ),
    "err_slot_open": (
        "This slot has not ended yet; it can be settled once it is closed.",
        "Cette tranche n'est pas encore finie ; elle pourra être réglée une fois close.",
    ),
    "tip_flows": (
        "{t}: surplus {s} Wh, deficit {d} Wh, matched {m} Wh",
        "{t} : surplus {s} Wh, déficit {d} Wh, échangé {m} Wh",
    ),
    "tip_price": ("{t}: {p} c€/kWh", "{t} : {p} c€/kWh"),
    "tip_no_price": ("{t}: no local trade", "{t} : aucun échange local"),
    "tip_voltage": ("{t}: {lo} to {hi} pu", "{t} : de {lo} à {hi} pu"),
    "tip_loading": (
        "{t}: most loaded line {l} %, transformer {r} %",
        "{t} : ligne la plus chargée {l} %, transformateur {r} %",
    ),
    "tip_no_flow": (
        "{t}: the power flow did not converge",
        "{t} : le calcul de répartition n'a pas convergé",
    ),
    "voltage_chart": ("Voltage band", "Plage de tension"),
    "loading_chart": ("Line and transformer loading", "Charge des lignes et du transformateur"),
    "loading_alt": (
        "Loading per slot for {n} slots: most loaded line up to {line} %, transformer up to "
        "{trafo} %, against the limit of 100 %.",
        "Charge par tranche pour {n} tranches : ligne la plus chargée jusqu'à {line} %, "
        "transformateur jusqu'à {trafo} %, face à la limite de 100 %.",
    ),
    "line_loading": ("Most loaded line (%)", "Ligne la plus chargée (%)"),
    "trafo_loading": ("Transformer (%)", "Transformateur (%)"),
    "loading_limit": ("Limit 100 %", "Limite 100 %"),
    "v_band": ("Allowed band {lo} to {hi} pu", "Plage permise de {lo} à {hi} pu"),
    "feeder_warnings": (
        "{n} slot(s) shown outside the feeder's limits.",
        "{n} tranche(s) affichée(s) hors des limites du départ.",
    ),
    "feeder_missing": (
        "The power flow of {n} slot(s) shown is computed after their settlement; it is on its way.",
        "Le calcul de répartition de {n} tranche(s) affichée(s) suit leur règlement ; il est "
        "en cours.",
    ),
    "chart_scroll": (
        "Scroll the chart sideways to see every slot.",
        "Faites défiler le graphique de côté pour voir chaque tranche.",
    ),
    "feeder_col_findings": ("Out of limits", "Hors limites"),
    "check": ("Check", "Contrôle"),
    "severity": ("Severity", "Gravité"),
    "evidence": ("Evidence", "Preuve"),
    "see_evidence": ("see the evidence", "voir la preuve"),
    "feeder": ("Feeder check", "Contrôle du départ BT"),
    "feeder_intro": (
        "Per settled slot, a power flow of the metered flows on the low-voltage feeder: the "
        "lowest and highest voltage (per unit, allowed band 0.90 to 1.10) and the loading of the "
        "most loaded line and of the transformer (at most 100 %).",
        "Par tranche réglée, un calcul de répartition des flux relevés sur le départ basse "
        "tension : la tension la plus basse et la plus haute (en unité réduite, bande permise "
        "0,90 à 1,10) et la charge de la ligne la plus chargée et du transformateur (au plus "
        "100 %).",
    ),
    "feeder_alt": (
        "Voltage per slot for {n} slots, from {lo} to {hi} pu, against the band {blo} to {bhi} "
        "pu; highest loading {load} %.",
        "Tension par tranche pour {n} tranches, de {lo} à {hi} pu, face à la bande {blo} à "
        "{bhi} pu ; charge maximale {load} %.",
    ),
    "feeder_not_run": (
        "No power flow kept yet: one is computed after each settlement.",
        "Aucun calcul de répartition pour l'instant : il en est fait un après chaque règlement.",
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
