"""Texts of the household's page.

Each text is ``key: (English, French)``. French is written with plain spaces before ``: ; ! ?``;
:func:`api.web.i18n.text` turns them into the no-break spaces French typography wants."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    "today": ("Today", "Aujourd'hui"),
    "today_intro": (
        "Per 15-minute slot (local time): what your meter took from the network, split into "
        "the part bought from neighbours and the part from the grid, and what it sent out, "
        "split into the part sold to neighbours and the part sent to the grid. Until a slot "
        "is settled, what is not yet split shows as not settled. Energy made and used behind "
        "the meter is not measured.",
        "Par tranche de 15 minutes (heure locale) : ce que votre compteur a pris au réseau, "
        "partagé entre l'achat aux voisins et le réseau, et ce qu'il a envoyé, partagé entre la "
        "vente aux voisins et le réseau. Tant qu'une tranche n'est pas réglée, ce qui n'est pas "
        "encore partagé apparaît comme pas encore réglé. L'énergie produite et consommée "
        "derrière le compteur n'est pas mesurée.",
    ),
    "bought_local": ("Bought from neighbours", "Acheté aux voisins"),
    "from_grid": ("From the grid", "Pris au réseau"),
    "sold_local": ("Sold to neighbours", "Vendu aux voisins"),
    "to_grid": ("Sent to the grid", "Envoyé au réseau"),
    "consumption": ("Taken from the network", "Pris au réseau"),
    "production": ("Sent to the network", "Envoyé au réseau"),
    "no_readings_today": ("No meter reading yet today.", "Pas encore de relevé aujourd'hui."),
    "tomorrow": ("Tomorrow, expected", "Demain, prévu"),
    "tomorrow_intro": (
        "Per hour (local time): what your meter is expected to take from the network and send "
        "to it tomorrow, forecast from what it recorded on the same hours of the last days, "
        "and a price limit suggested by how short or long of energy the neighbourhood is "
        "expected to be: a minimum to sell at in the hours you should have a surplus, a "
        "maximum to buy at in the others.",
        "Par heure (heure locale) : ce que votre compteur devrait prendre au réseau et lui "
        "envoyer demain, prévu d'après ce qu'il a relevé aux mêmes heures des derniers jours, "
        "et une limite de prix suggérée selon le manque ou le surplus d'énergie attendu dans le "
        "quartier : un minimum de vente aux heures où vous devriez avoir un surplus, un maximum "
        "d'achat aux autres.",
    ),
    "expected_in": ("Expected from the network", "Prévu pris au réseau"),
    "expected_out": ("Expected to the network", "Prévu envoyé au réseau"),
    "hour": ("Hour", "Heure"),
    "expected_net": ("Surplus (+) or deficit (-)", "Surplus (+) ou manque (-)"),
    "suggested_price": ("Suggested price limit", "Limite de prix suggérée"),
    "sell_at_least": ("sell at {p} c€/kWh or more", "vendre à {p} c€/kWh ou plus"),
    "buy_at_most": ("buy at {p} c€/kWh or less", "acheter à {p} c€/kWh ou moins"),
    "no_forecast": (
        "No forecast yet: it starts once the meters have recorded {days} whole days.",
        "Pas encore de prévision : elle commence quand les compteurs ont relevé {days} jours "
        "entiers.",
    ),
    "chart_tomorrow_alt": (
        "Bars per hour tomorrow: {imp} Wh expected from the network, {exp} Wh expected to it.",
        "Barres par heure demain : {imp} Wh prévus pris au réseau, {exp} Wh prévus envoyés.",
    ),
    "chart_today_alt": (
        "Bars per slot today: {imp} Wh taken ({bought} Wh from neighbours, {grid} Wh from the "
        "grid, {pin} Wh not settled yet) and {exp} Wh sent out ({sold} Wh sold to neighbours, "
        "{out} Wh to the grid, {pout} Wh not settled yet).",
        "Barres par tranche aujourd'hui : {imp} Wh pris ({bought} Wh des voisins, {grid} Wh du "
        "réseau, {pin} Wh pas encore réglés) et {exp} Wh envoyés ({sold} Wh vendus aux voisins, "
        "{out} Wh au réseau, {pout} Wh pas encore réglés).",
    ),
    "data_table": ("Figures as a table", "Les chiffres en tableau"),
    "slot": ("Slot", "Tranche"),
    "money": ("Money", "Argent"),
    "balance": ("Balance", "Solde"),
    "this_month": ("This month", "Ce mois-ci"),
    "earned": ("Earned from neighbours", "Gagné auprès des voisins"),
    "spent": (
        "Spent with neighbours (grid fee included)",
        "Dépensé chez les voisins (frais de réseau compris)",
    ),
    "grid_bill": ("Grid supply, net of feed-in", "Fourniture du réseau, moins la revente"),
    "savings": ("Savings against grid-only supply", "Économies par rapport au seul réseau"),
    "orders": ("My prices", "Mes prix"),
    "orders_intro": (
        "Your standing prices apply to every slot not yet settled. Prices are in c€/kWh and "
        "must stay within the tariff bounds.",
        "Vos prix permanents s'appliquent à toutes les tranches pas encore réglées. Les prix "
        "sont en c€/kWh et restent dans les bornes du tarif.",
    ),
    "bounds": ("Allowed: from {lo} to {hi} c€/kWh", "Autorisé : de {lo} à {hi} c€/kWh"),
    "sell_price": ("Lowest price I sell at (c€/kWh)", "Prix minimum de vente (c€/kWh)"),
    "buy_price": (
        "Highest price I buy at, before the grid fee (c€/kWh)",
        "Prix maximum d'achat, hors frais de réseau (c€/kWh)",
    ),
    "set_sell": ("Set my selling price", "Fixer mon prix de vente"),
    "set_buy": ("Set my buying price", "Fixer mon prix d'achat"),
    "current": ("Current: {p}", "Actuel : {p}"),
    "default_price": ("automatic", "automatique"),
    "saved_sell": ("Selling price saved: {p} c€/kWh.", "Prix de vente enregistré : {p} c€/kWh."),
    "saved_buy": ("Buying price saved: {p} c€/kWh.", "Prix d'achat enregistré : {p} c€/kWh."),
    "open_offers": ("Open offers from neighbours", "Offres ouvertes des voisins"),
    "take_intro": (
        "Buy directly from an offer, for a slot your meter has already reported; you get at "
        "most what you imported in that slot.",
        "Achetez directement à une offre, pour une tranche déjà relevée par votre compteur ; "
        "vous recevez au plus ce que vous avez importé dans cette tranche.",
    ),
    "no_offers": ("No open offer from a neighbour.", "Aucune offre ouverte d'un voisin."),
    "offer": ("Offer", "Offre"),
    "seller": ("Seller", "Vendeur"),
    "buyer": ("Buyer", "Acheteur"),
    "price": ("Price (c€/kWh)", "Prix (c€/kWh)"),
    "take_slot": ("Slot to buy for", "Tranche achetée"),
    "take_qty": ("At most (Wh)", "Au plus (Wh)"),
    "take": ("Take this offer", "Prendre cette offre"),
    "took": (
        "Bought {e} Wh at {p} c€/kWh for {c}.",
        "Acheté {e} Wh à {p} c€/kWh pour {c}.",
    ),
    "no_slots": (
        "No slot to buy for from this offer: a direct take needs a slot your meter reported an "
        "import in and the seller an export in, not settled yet.",
        "Aucune tranche à acheter à cette offre : un achat direct demande une tranche où votre "
        "compteur a relevé un import et celui du vendeur un export, pas encore réglée.",
    ),
    "trades": ("Recent trades", "Échanges récents"),
    "no_trades": ("No trade yet.", "Aucun échange pour l'instant."),
    "direction": ("Sold or bought", "Vendu ou acheté"),
    "energy_wh": ("Energy (Wh)", "Énergie (Wh)"),
    "amount": ("Amount", "Montant"),
    "fee": ("Grid fee", "Frais de réseau"),
    "download_trades": ("Download all my trades (CSV)", "Télécharger tous mes échanges (CSV)"),
    "bill": ("Monthly bill", "Facture du mois"),
    "month": ("Month", "Mois"),
    "download_bill": ("Download the bill (CSV)", "Télécharger la facture (CSV)"),
    "sold": ("sold", "vendu"),
    "bought": ("bought", "acheté"),
    # Settled or pending
    "pending": ("Not settled yet", "Pas encore réglé"),
    "pending_hint": (
        "{n} slot(s) not settled yet: {imp} Wh taken and {exp} Wh sent out are not yet split "
        "between neighbours and the grid; the figures above count settled slots only.",
        "{n} tranche(s) pas encore réglée(s) : {imp} Wh pris et {exp} Wh envoyés ne sont pas "
        "encore partagés entre voisins et réseau ; les chiffres ci-dessus ne comptent que les "
        "tranches réglées.",
    ),
    "all_settled": ("Every slot shown is settled.", "Toutes les tranches affichées sont réglées."),
    "status_settled": ("settled", "réglée"),
    "status_pending": ("pending", "en attente"),
    "settled_only": ("settled slots", "tranches réglées"),
    # Decisions
    "decide": ("What the figures say", "Ce que disent les chiffres"),
    "recent_prices": ("Recent clearing prices (c€/kWh)", "Prix d'équilibre récents (c€/kWh)"),
    "no_recent_prices": ("No slot cleared yet.", "Aucune tranche équilibrée pour l'instant."),
    "bid_depth": (
        "{above} neighbour bid(s) at or above your minimum of {p} c€/kWh, {below} below; "
        "highest {hi} c€/kWh.",
        "{above} demande(s) de voisins au niveau de votre minimum de {p} c€/kWh ou au-dessus, "
        "{below} en dessous ; la plus haute {hi} c€/kWh.",
    ),
    "no_bids": ("No open bid from a neighbour.", "Aucune demande ouverte d'un voisin."),
    "sold_vs_grid": (
        "This month: {sold} Wh sold to neighbours, {grid} Wh sent to the grid.",
        "Ce mois-ci : {sold} Wh vendus aux voisins, {grid} Wh envoyés au réseau.",
    ),
    "earned_vs_feed_in": (
        "Neighbours paid {earned} for it; at the feed-in tariff alone it would have earned "
        "{feed_in}.",
        "Les voisins l'ont payé {earned} ; au seul tarif de rachat, il aurait rapporté {feed_in}.",
    ),
    "all_in": (
        "This month you bought {bought} Wh from neighbours for {paid} all in (grid fee "
        "included): {avg} c€/kWh on average, against {retail} c€/kWh retail. The same energy "
        "from the grid would have cost {at_retail}.",
        "Ce mois-ci vous avez acheté {bought} Wh aux voisins pour {paid} tout compris (frais "
        "de réseau inclus) : {avg} c€/kWh en moyenne, contre {retail} c€/kWh au tarif de "
        "détail. La même énergie prise au réseau aurait coûté {at_retail}.",
    ),
    "none_bought": (
        "No energy bought from neighbours this month yet; retail is {retail} c€/kWh, and your "
        "highest buying price plus the grid fee is {all_in} c€/kWh.",
        "Pas encore d'énergie achetée aux voisins ce mois-ci ; le tarif de détail est de "
        "{retail} c€/kWh, et votre prix d'achat maximum plus les frais de réseau font "
        "{all_in} c€/kWh.",
    ),
    "take_rule": (
        "A neighbour who takes your offer directly pays this minimum, even when the slot later "
        "clears higher; the market pays the clearing price.",
        "Un voisin qui prend votre offre directement paie ce minimum, même si la tranche "
        "s'équilibre plus haut ensuite ; le marché paie le prix d'équilibre.",
    ),
    "rows_total": ("Total of these trades", "Total de ces échanges"),
    # Apps (the public API's keys) and the household's consents to them.
    "apps": ("Apps", "Applications"),
    "apps_intro": (
        "Apps registered by the operator that can read a household's balance, bill, trades "
        "and prices, only if the household allows it. You can withdraw it at any time; it "
        "takes effect at once.",
        "Applications enregistrées par l'opérateur qui peuvent lire le solde, la facture, les "
        "échanges et les prix d'un foyer, seulement si le foyer l'autorise. Vous pouvez "
        "retirer cette autorisation à tout moment ; le retrait prend effet immédiatement.",
    ),
    "no_apps": ("No app is registered.", "Aucune application n'est enregistrée."),
    "app_allowed": ("Allowed since {at}", "Autorisée depuis le {at}"),
    "app_not_allowed": ("Not allowed", "Non autorisée"),
    "app_allow": ("Allow", "Autoriser"),
    "app_withdraw": ("Withdraw", "Retirer"),
    "consent_granted": (
        "{app} may now read your balance, bill, trades and prices.",
        "{app} peut désormais lire votre solde, votre facture, vos échanges et vos prix.",
    ),
    "consent_withdrawn": (
        "{app} can no longer read your data.",
        "{app} ne peut plus lire vos données.",
    ),
}
