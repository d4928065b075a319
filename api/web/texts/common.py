"""Texts every dashboard page shares: sign-in, the page frame, form errors, forms sent again.

Each text is ``key: (English, French)``. French is written with plain spaces before ``: ; ! ?``;
:func:`api.web.i18n.text` turns them into the no-break spaces French typography wants."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
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
    "err_cross_site": (
        "This form was sent from another site. Open this page here and try again.",
        "Ce formulaire a été envoyé depuis un autre site. Ouvrez cette page ici et réessayez.",
    ),
    "err_session": (
        "The form expired; please send it again.",
        "Le formulaire a expiré ; envoyez-le à nouveau.",
    ),
    "live": ("Live: refreshed at", "En direct : mis à jour à"),
    "household": ("Household", "Foyer"),
    "prosumer": ("producer (PV)", "producteur (PV)"),
    "consumer": ("consumer", "consommateur"),
    # Form errors
    "err_required": ("This field is required.", "Ce champ est obligatoire."),
    "err_number": (
        "Enter a number, e.g. 12.5 (digits only).",
        "Saisissez un nombre, par exemple 12,5 (chiffres uniquement).",
    ),
    "err_comma": (
        "Here a comma separates thousands (1,000.50): write decimals with a point.",
        "Ici une virgule sépare les milliers (1,000.50) : écrivez les décimales avec un point.",
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
    "err_unsafe_text": (
        "Remove the control or text-direction character {ch} (character {at}) from this text.",
        "Retirez le caractère de contrôle ou de sens d'écriture {ch} (caractère {at}) de ce texte.",
    ),
    # Refusals recorded by forms sent before refusals had texts of their own (refusals.py).
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
}
