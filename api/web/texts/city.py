"""Texts of the city page (:mod:`api.city_app`): the neighbourhoods side by side.

Each text is ``key: (English, French)``, as in the other pages' texts."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    "city": ("City", "Ville"),
    "city_title": ("Neighbourhoods side by side", "Les quartiers côte à côte"),
    "city_span": ("Slots shown: {span}.", "Tranches affichées : {span}."),
    "city_day": ("Day", "Jour"),
    "city_show": ("Show", "Afficher"),
    "city_last_day": ("Last 24 hours", "Dernières 24 heures"),
    "city_market": ("Neighbourhood", "Quartier"),
    "city_households": ("Households", "Foyers"),
    "city_self_sufficiency": ("Self-sufficiency", "Autosuffisance"),
    "city_local_share": ("Surplus sold locally", "Surplus vendu localement"),
    "city_local_kWh": ("Traded locally (kWh)", "Échangé localement (kWh)"),
    "city_price": ("Average local price (c€/kWh)", "Prix local moyen (c€/kWh)"),
    "city_clearing": ("Clearing prices (c€/kWh)", "Prix d'équilibre (c€/kWh)"),
    "city_audit": ("Audit", "Audit"),
    "city_feeder": ("Feeder", "Réseau"),
    "city_total": ("City", "Ville"),
    "city_none": ("—", "—"),
    "city_audit_ok": ("clean", "conforme"),
    "city_audit_empty": ("nothing yet", "rien encore"),
    "city_audit_failed": ("{n} findings", "{n} constats"),
    "city_audit_pending": ("pending", "en attente"),
    "city_audit_unavailable": ("unavailable", "indisponible"),
    "city_feeder_ok": ("within limits", "dans les limites"),
    "city_feeder_over": ("beyond limits", "hors limites"),
    "city_feeder_none": ("not computed", "non calculé"),
    "city_feeder_detail": (
        "{lo} to {hi} pu, loading up to {l} %",
        "{lo} à {hi} pu, charge jusqu'à {l} %",
    ),
    "city_audits_failed": (
        "{n} neighbourhood audits have findings.",
        "{n} audits de quartier ont des constats.",
    ),
    "city_open": ("Open {name}'s operator page", "Ouvrir la page opérateur de {name}"),
    "city_intro": (
        "Each neighbourhood is its own market on the city's chain. Self-sufficiency needs the "
        "neighbourhood's load, which meters alone do not give.",
        "Chaque quartier est un marché à part sur la chaîne de la ville. L'autosuffisance "
        "demande la consommation du quartier, que les compteurs seuls ne donnent pas.",
    ),
}
