"""The dashboard's two languages: texts by key, and numbers written the way each reads them.

French is the default for French browsers (the neighbourhoods this comes from are French),
English otherwise; the choice is kept in a cookie. Amounts stay integers until they are
written: micro-euro become euros with two decimals, prices c€/kWh, energy Wh or kWh.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ledger.types import SLOT_SECONDS

LANGS = ("en", "fr")

_TEXT: dict[str, tuple[str, str]] = {
    # key: (English, French)
    "app_title": ("Voisin — neighbourhood energy", "Voisin — énergie entre voisins"),
    "skip": ("Skip to content", "Aller au contenu"),
    "language": ("Language", "Langue"),
    "signin_title": ("Sign in", "Connexion"),
    "signin_intro": (
        "Sign in with the token your grid operator gave you (a household's token starts "
        "with vsn_), or with the operator's token.",
        "Connectez-vous avec le jeton donné par votre gestionnaire de réseau (le jeton d'un "
        "foyer commence par vsn_), ou avec celui du gestionnaire.",
    ),
    "token": ("Access token", "Jeton d'accès"),
    "signin": ("Sign in", "Se connecter"),
    "signout": ("Sign out", "Se déconnecter"),
    "err_token_empty": ("Enter your access token.", "Saisissez votre jeton d'accès."),
    "err_token_wrong": (
        "This token is not valid. Check that it was copied whole; a household's token starts "
        "with vsn_. Ask your grid operator if it was lost.",
        "Ce jeton n'est pas valide. Vérifiez qu'il a été copié en entier ; le jeton d'un foyer "
        "commence par vsn_. Demandez-le à votre gestionnaire de réseau s'il est perdu.",
    ),
    "err_session": (
        "The form expired; please send it again.",
        "Le formulaire a expiré ; envoyez-le à nouveau.",
    ),
    "live": ("Live: refreshed at", "En direct : mis à jour à"),
    "household": ("Household", "Foyer"),
    "prosumer": ("producer (PV)", "producteur (PV)"),
    "consumer": ("consumer", "consommateur"),
    # Household view
    "today": ("Today", "Aujourd'hui"),
    "today_intro": (
        "Per 15-minute slot (UTC): what your meter took from the network, split into the part "
        "bought from neighbours and the part from the grid, and what it sent out, split into "
        "the part sold to neighbours and the part sent to the grid. Energy made and used behind "
        "the meter is not measured.",
        "Par tranche de 15 minutes (UTC) : ce que votre compteur a pris au réseau, partagé entre "
        "l'achat aux voisins et le réseau, et ce qu'il a envoyé, partagé entre la vente aux "
        "voisins et le réseau. L'énergie produite et consommée derrière le compteur n'est pas "
        "mesurée.",
    ),
    "bought_local": ("Bought from neighbours", "Acheté aux voisins"),
    "from_grid": ("From the grid", "Pris au réseau"),
    "sold_local": ("Sold to neighbours", "Vendu aux voisins"),
    "to_grid": ("Sent to the grid", "Envoyé au réseau"),
    "consumption": ("Taken from the network", "Pris au réseau"),
    "production": ("Sent to the network", "Envoyé au réseau"),
    "no_readings_today": ("No meter reading yet today.", "Pas encore de relevé aujourd'hui."),
    "chart_today_alt": (
        "Bars per slot today: {imp} Wh taken ({bought} Wh from neighbours, {grid} Wh from the "
        "grid) and {exp} Wh sent out ({sold} Wh sold to neighbours, {out} Wh to the grid).",
        "Barres par tranche aujourd'hui : {imp} Wh pris ({bought} Wh des voisins, {grid} Wh du "
        "réseau) et {exp} Wh envoyés ({sold} Wh vendus aux voisins, {out} Wh au réseau).",
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
    "current": ("Current", "Actuel"),
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
    "no_slots": ("No reported slot to buy for yet.", "Pas encore de tranche relevée."),
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
    # Form errors
    "err_required": ("This field is required.", "Ce champ est obligatoire."),
    "err_number": (
        "Enter a number, e.g. 12.5 (digits only).",
        "Saisissez un nombre, par exemple 12,5 (chiffres uniquement).",
    ),
    "err_whole": (
        "Enter a whole number, e.g. 500.",
        "Saisissez un nombre entier, par exemple 500.",
    ),
    "err_negative": ("This cannot be negative.", "Cette valeur ne peut pas être négative."),
    "err_zero": ("This must be more than zero.", "Cette valeur doit être supérieure à zéro."),
    "err_decimals": ("Use at most {n} decimals.", "Utilisez au plus {n} décimales."),
    "err_band": (
        "The price must be between {lo} and {hi} c€/kWh (the tariff bounds).",
        "Le prix doit être entre {lo} et {hi} c€/kWh (les bornes du tarif).",
    ),
    "err_too_big": (
        "This is more than allowed (at most {max}).",
        "C'est plus que permis (au plus {max}).",
    ),
    "err_address": (
        "Enter the meter's address: 0x followed by 40 hexadecimal characters.",
        "Saisissez l'adresse du compteur : 0x suivi de 40 caractères hexadécimaux.",
    ),
    "err_month": ("Choose a month (YYYY-MM).", "Choisissez un mois (AAAA-MM)."),
    "err_choice": ("Choose one of the listed values.", "Choisissez une des valeurs proposées."),
    "err_too_fast": (
        "Too many changes at once; try again in {s} s.",
        "Trop de changements d'un coup ; réessayez dans {s} s.",
    ),
    "err_server": ("The ledger refused: {m}", "Le registre a refusé : {m}"),
    # A form sent again (api/web/once.py): what happened the first time, and nothing more.
    "already_done": (
        "This form was already sent, and done then: {first}",
        "Ce formulaire a déjà été envoyé, et exécuté alors : {first}",
    ),
    "already_refused": (
        "This form was already sent, and refused then: {first}",
        "Ce formulaire a déjà été envoyé, et refusé alors : {first}",
    ),
    "already_sent": (
        "This form was already sent; what came of it is not known yet. Look at the page before "
        "sending it again.",
        "Ce formulaire a déjà été envoyé ; son résultat n'est pas encore connu. Regardez la page "
        "avant de l'envoyer à nouveau.",
    ),
    # Operator view
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


def text(lang: str) -> dict[str, str]:
    """Every text in ``lang`` (``en`` or ``fr``), by key."""
    i = 1 if lang == "fr" else 0
    return {key: pair[i] for key, pair in _TEXT.items()}


def pick_lang(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's choice, else French when the browser prefers it, else English."""
    if cookie in LANGS:
        return cookie
    first = (accept_language or "").split(",")[0].strip().lower()
    return "fr" if first.startswith("fr") else "en"


def _group(digits: str, sep: str) -> str:
    out: list[str] = []
    while len(digits) > 3:
        out.insert(0, digits[-3:])
        digits = digits[:-3]
    out.insert(0, digits)
    return sep.join(out)


def integer(value: int, lang: str) -> str:
    """An integer with thousands separators (a narrow no-break space in French)."""
    sign = "-" if value < 0 else ""
    return sign + _group(str(abs(value)), "\u202f" if lang == "fr" else ",")


def euros(ueur: int, lang: str) -> str:
    """Micro-euro as euros and cents, truncated toward zero (exact figures are in the CSV)."""
    sign = "-" if ueur < 0 else ""
    cents = abs(ueur) // 10_000
    whole, frac = divmod(cents, 100)
    if lang == "fr":
        return f"{sign}{integer(whole, lang)},{frac:02d}\u00a0€"
    return f"{sign}€{integer(whole, lang)}.{frac:02d}"


def cents_per_kWh(price_ueur_per_kWh: int, lang: str) -> str:
    """A price in micro-euro per kWh as c€/kWh, with only the decimals it needs (up to 4)."""
    whole, frac = divmod(price_ueur_per_kWh, 10_000)
    digits = f"{frac:04d}".rstrip("0")
    if not digits:
        return str(whole)
    return f"{whole}{',' if lang == 'fr' else '.'}{digits}"


def slot_time(slot: int) -> str:
    """The slot's start as HH:MM (UTC)."""
    return datetime.fromtimestamp(slot * SLOT_SECONDS, UTC).strftime("%H:%M")


def slot_label(slot: int) -> str:
    """The slot's date and span, e.g. ``2026-11-26 14:15-14:30 UTC``."""
    start = datetime.fromtimestamp(slot * SLOT_SECONDS, UTC)
    end = datetime.fromtimestamp((slot + 1) * SLOT_SECONDS, UTC)
    return f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC"
