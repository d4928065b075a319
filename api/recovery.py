"""What a market's database takes back from the chain when it starts behind it.

A database restored from a backup (a whole data directory on a JSON-RPC node, or one market of
a city, ``voisin restore --market``) lacks what happened on chain after the backup was taken.
The mirror catches up by itself (:mod:`ledger.mirror.indexer`), and a slot settled meanwhile
gets back its sealed digest link when the settlement worker reaches it. What else is taken back
here, when a market's leader starts (:meth:`api.services.Services.recover_from_chain`):

- the signed readings of the readings committed since, from their ``commitReadings``
  transactions (:mod:`ledger.readings.recovery`);
- the households registered since, which the chain knows and the API does not: each gets its
  API record back from the chain (account, meter, prosumer flag, the meter's registers), so
  that its meter's readings are taken again and its standing orders keep trading. Its bearer
  token and its account key were only in the lost database: it has no usable token and no key
  until the operator issues a token (``POST /households/{id}/token``) and a new account key
  (``POST /households/{id}/rotate-key``). A household erased at its request (deactivated on
  chain) is not taken back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.auth import hash_token
from api.models import ApiHousehold, HouseholdErasure
from ledger.contract.client import VoisinClient
from ledger.mirror.models import HouseholdRecord

__all__ = ["Recovered", "adopt_households", "lost_households"]


@dataclass(frozen=True, slots=True)
class Recovered:
    """What a market took back from the chain as it started."""

    signed_readings: int
    households: tuple[int, ...]


def lost_households(engine: Engine) -> list[HouseholdRecord]:
    """The active households the mirror has from the chain and the API has no record of (nor
    an erasure), by id."""
    with Session(engine) as session:
        known = set(session.exec(select(ApiHousehold.id)).all())
        erased = set(session.exec(select(HouseholdErasure.household)).all())
        rows = session.exec(
            select(HouseholdRecord)
            .where(col(HouseholdRecord.active))
            .order_by(col(HouseholdRecord.id))
        ).all()
        return [r for r in rows if r.id not in known and r.id not in erased]


def adopt_households(client: VoisinClient, engine: Engine) -> list[int]:
    """Give each lost household (:func:`lost_households`) its API record back from the chain,
    with a token no one holds and no key; returns their ids."""
    lost = lost_households(engine)
    adopted: list[int] = []
    with Session(engine) as session, session.begin():
        for household in lost:
            state = client.meter_state(household.meter)
            session.add(
                ApiHousehold(
                    id=household.id,
                    name=None,
                    account=household.account,
                    meter=household.meter,
                    prosumer=household.prosumer,
                    # A token no one was ever given: the operator issues the household's.
                    token_hash=hash_token(secrets.token_urlsafe(32)),
                    key_json="",
                    meter_last_slot=state.last_slot,
                    meter_import_Wh=state.import_Wh,
                    meter_export_Wh=state.export_Wh,
                )
            )
            adopted.append(household.id)
    return adopted
