"""What a form says when the ledger refuses it, by the API's error code, in both languages.

Every contract error (its name in snake case, as the API's ``code``) and every refusal the
API itself makes has a text here, so that no English message from the chain reaches a French
page; a test holds this table to the contract's ABI. An unknown code falls back to
``refusal_other``, which names it.
"""

from __future__ import annotations

#: code: (English, French)
REFUSALS: dict[str, tuple[str, str]] = {
    # The contract's errors.
    "account_already_registered": (
        "This account is already registered to a household.",
        "Ce compte est déjà inscrit pour un foyer.",
    ),
    "batch_already_settled": (
        "This slot's settlement batch was already recorded.",
        "Ce lot de règlement de la tranche est déjà enregistré.",
    ),
    "duplicate_reading": (
        "The meter already sent a reading for this slot.",
        "Le compteur a déjà envoyé un relevé pour cette tranche.",
    ),
    "empty_batch": ("Nothing to settle in this batch.", "Rien à régler dans ce lot."),
    "energy_too_large": (
        "A meter cannot count that much energy in 15 minutes.",
        "Un compteur ne peut pas compter autant d'énergie en 15 minutes.",
    ),
    "enforced_pause": (
        "The ledger is paused by the grid operator; try again later.",
        "Le registre est suspendu par le gestionnaire de réseau ; réessayez plus tard.",
    ),
    "expected_pause": (
        "This needs the ledger to be paused first.",
        "Il faut d'abord suspendre le registre.",
    ),
    "forward_already_settled": (
        "This day-ahead position is already settled.",
        "Cette position de la veille est déjà réglée.",
    ),
    "forward_batch_already_cleared": (
        "These day-ahead positions were already recorded for this slot.",
        "Ces positions de la veille sont déjà enregistrées pour cette tranche.",
    ),
    "forward_not_due": (
        "This day-ahead position settles once both meters have reported its slot.",
        "Cette position de la veille se règle quand les deux compteurs ont relevé sa tranche.",
    ),
    "forward_too_late": (
        "This slot is already metered: it can no longer be traded a day ahead.",
        "Cette tranche est déjà relevée : elle ne peut plus s'échanger la veille.",
    ),
    "future_reading": (
        "A reading cannot be for a slot that has not begun.",
        "Un relevé ne peut pas porter sur une tranche pas encore commencée.",
    ),
    "future_slot": (
        "This slot has not begun yet.",
        "Cette tranche n'a pas encore commencé.",
    ),
    "household_inactive": ("This household is deactivated.", "Ce foyer est désactivé."),
    "insufficient_allowance": (
        "The account has not allowed this payment.",
        "Le compte n'a pas autorisé ce paiement.",
    ),
    "insufficient_balance": (
        "The balance is too low for this payment.",
        "Le solde est trop bas pour ce paiement.",
    ),
    "insufficient_credits": (
        "The seller has nothing left to sell in this slot.",
        "Le vendeur n'a plus rien à vendre dans cette tranche.",
    ),
    "insufficient_deficit": (
        "You have nothing left to buy in this slot: your meter's import is already covered.",
        "Vous n'avez plus rien à acheter dans cette tranche : l'import de votre compteur est "
        "déjà couvert.",
    ),
    "insufficient_funds": (
        "Your balance is too low for this purchase; ask your grid operator for a top-up.",
        "Votre solde est trop bas pour cet achat ; demandez un crédit à votre gestionnaire de "
        "réseau.",
    ),
    "invalid_signature": (
        "The meter's signature does not match its reading.",
        "La signature du compteur ne correspond pas à son relevé.",
    ),
    "invalid_slot_range": (
        "The last slot comes before the first.",
        "La dernière tranche précède la première.",
    ),
    "invalid_tariffs": (
        "These tariffs are not allowed: feed-in plus the grid fee must not exceed retail.",
        "Ces tarifs ne sont pas permis : le rachat plus les frais de réseau ne doivent pas "
        "dépasser le tarif de détail.",
    ),
    "meter_already_registered": (
        "This meter is already registered to a household.",
        "Ce compteur est déjà inscrit pour un foyer.",
    ),
    "not_household": (
        "This account is not a household's.",
        "Ce compte n'est pas celui d'un foyer.",
    ),
    "not_order_owner": (
        "This order belongs to another household.",
        "Cet ordre appartient à un autre foyer.",
    ),
    "order_already_closed": ("This order is already closed.", "Cet ordre est déjà fermé."),
    "order_cap_exceeded": (
        "This order's limit for the slot is used up.",
        "La limite de cet ordre pour la tranche est épuisée.",
    ),
    "order_closed": ("This order is closed.", "Cet ordre est fermé."),
    "price_above_bid": (
        "The price is above the buyer's limit.",
        "Le prix dépasse la limite de l'acheteur.",
    ),
    "price_below_offer": (
        "The price is below the seller's minimum.",
        "Le prix est sous le minimum du vendeur.",
    ),
    "price_limit_unreachable": (
        "This price can never trade under the current tariffs.",
        "Ce prix ne peut jamais s'échanger avec les tarifs actuels.",
    ),
    "price_outside_tariffs": (
        "The price is outside the tariff band.",
        "Le prix sort de la bande tarifaire.",
    ),
    "register_decreased": (
        "A meter's register cannot go down.",
        "L'index d'un compteur ne peut pas baisser.",
    ),
    "self_trade": (
        "A household cannot buy from its own offer.",
        "Un foyer ne peut pas acheter à sa propre offre.",
    ),
    "slot_already_sealed": ("This slot is already sealed.", "Cette tranche est déjà scellée."),
    "slot_outside_order": (
        "This slot is outside the order's slots.",
        "Cette tranche est hors des tranches de l'ordre.",
    ),
    "stale_reading": (
        "The meter already reported a later slot.",
        "Le compteur a déjà relevé une tranche plus récente.",
    ),
    "supply_cap_exceeded": (
        "This amount would exceed the ledger's money supply cap.",
        "Ce montant dépasserait le plafond de monnaie du registre.",
    ),
    "unauthorized": (
        "You are not allowed to do this.",
        "Vous n'avez pas le droit de faire cela.",
    ),
    "unknown_bid": ("This bid does not exist.", "Cette demande n'existe pas."),
    "unknown_forward": (
        "No day-ahead position matches this one.",
        "Aucune position de la veille ne correspond à celle-ci.",
    ),
    "unknown_household": ("This household does not exist.", "Ce foyer n'existe pas."),
    "unknown_meter": ("This meter is not registered.", "Ce compteur n'est pas inscrit."),
    "unknown_offer": ("This offer does not exist.", "Cette offre n'existe pas."),
    "zero_address": ("An address of all zeros is not allowed.", "L'adresse nulle est refusée."),
    "zero_amount": ("The amount must be more than zero.", "Le montant doit dépasser zéro."),
    "zero_digest": ("An empty seal is not allowed.", "Un sceau vide est refusé."),
    "zero_energy": ("The energy must be more than zero.", "L'énergie doit dépasser zéro."),
    # The API's own refusals.
    "chain_error": (
        "The ledger refused the transaction.",
        "Le registre a refusé la transaction.",
    ),
    "chain_unavailable": (
        "The ledger cannot be reached right now; try again in a moment.",
        "Le registre est injoignable pour l'instant ; réessayez dans un moment.",
    ),
    "database_unavailable": (
        "The database cannot be reached right now; try again in a moment.",
        "La base de données est injoignable pour l'instant ; réessayez dans un moment.",
    ),
    "forbidden": ("You are not allowed to do this.", "Vous n'avez pas le droit de faire cela."),
    "household_erased": (
        "This household was erased at its request: it gets no new key, token or meter.",
        "Ce foyer a été effacé à sa demande : il ne reçoit plus de clé, de jeton ni de compteur.",
    ),
    "idempotency_key_reused": (
        "This request was already sent with other content.",
        "Cette demande a déjà été envoyée avec un autre contenu.",
    ),
    "invalid_input": ("A value is not valid.", "Une valeur n'est pas valide."),
    "meter_readings_pending": (
        "The meter's last readings are still being recorded; try again in a moment.",
        "Les derniers relevés du compteur sont en cours d'enregistrement ; réessayez dans un "
        "moment.",
    ),
    "no_account_key": (
        "Your account has no key yet since the ledger was restored; your grid operator issues "
        "a new one, then try again.",
        "Votre compte n'a pas encore de clé depuis la restauration du registre ; votre "
        "gestionnaire de réseau en émet une nouvelle, puis réessayez.",
    ),
    "no_gas_money": (
        "The ledger's operator account cannot pay for transactions; tell your grid operator.",
        "Le compte d'exploitation du registre ne peut plus payer les transactions ; prévenez "
        "votre gestionnaire de réseau.",
    ),
    "offer_not_open": (
        "This offer is no longer open.",
        "Cette offre n'est plus ouverte.",
    ),
    "price_out_of_bounds": (
        "The price is outside the tariff bounds.",
        "Le prix sort des bornes du tarif.",
    ),
    "rate_limited": (
        "Too many changes at once; try again in a moment.",
        "Trop de changements d'un coup ; réessayez dans un moment.",
    ),
    "restore_recovering": (
        "The ledger is catching up after a restore; try again in a moment.",
        "Le registre se remet à jour après une restauration ; réessayez dans un moment.",
    ),
    "slot_not_closed": ("This slot is not over yet.", "Cette tranche n'est pas encore finie."),
    "slot_settled": (
        "This slot is already settled: choose a slot that is not settled yet.",
        "Cette tranche est déjà réglée : choisissez une tranche pas encore réglée.",
    ),
    "transaction_pending": (
        "An earlier request is still on its way to the ledger; look again in a moment.",
        "Une demande précédente est encore en route vers le registre ; regardez à nouveau dans "
        "un moment.",
    ),
    "unsent_at_backup": (
        "This request was not done before the ledger was restored, and is not done again now; "
        "check your balance and trades, then ask again if you still want it.",
        "Cette demande n'avait pas été faite avant la restauration du registre, et ne l'est pas "
        "maintenant ; vérifiez votre solde et vos échanges, puis redemandez si vous le voulez "
        "toujours.",
    ),
    "other": (
        "The ledger refused this (code {code}).",
        "Le registre a refusé cela (code {code}).",
    ),
}

#: The same texts as dashboard text keys (``refusal_<code>``).
TEXTS: dict[str, tuple[str, str]] = {f"refusal_{code}": pair for code, pair in REFUSALS.items()}
