"""What a market's database takes back from the chain when it starts behind it.

A database restored from a backup (a whole data directory on a JSON-RPC node, or one market of
a city, ``voisin restore --market``) lacks what happened on chain after the backup was taken.
The mirror catches up by itself (:mod:`ledger.mirror.indexer`), and a slot settled meanwhile
gets back its sealed digest link when the settlement worker reaches it. ``voisin restore``
marks such a database (:data:`RESTORED_KEY`); what else is taken back here, once, when the
market's leader starts on a marked database (:meth:`api.services.Services.recover_from_chain`;
an unmarked one costs its start one read of the mark):

- the signed readings of the readings committed since, from their ``commitReadings``
  transactions (:mod:`ledger.readings.recovery`);
- the households registered since, which the chain knows and the API does not: each gets its
  API record back from the chain (account, meter, prosumer flag, the meter's registers), so
  that its meter's readings are taken again and its standing orders keep trading. Its bearer
  token and its account key were only in the lost database: it has no usable token and no key
  until the operator issues a token (``POST /households/{id}/token``) and a new account key
  (``POST /households/{id}/rotate-key``). A household erased at its request (deactivated on
  chain) is not taken back;
- the erasures done since: a household the chain deactivated whose erasure the database has
  no record of has its personal data, back with the backup, removed again;
- the slots settled since: each slot the chain sealed that the database has no settled
  outcome of is settled again by the settlement worker, in the order they were sealed, which
  sends nothing (:mod:`ledger.market.settlement`): its outcome is recounted from the chain's
  fills and its digest link rebuilt, so that the audit, the webhooks and the live feed find it
  as it was.

Before any of these, the intents the backup held unfinished are finished (a registration
records its household and queues its default orders, which the steps below then match with
the chain); a registration that cannot be finished yet keeps the mark.

The mark holds the block the backup was taken at. What the database had queued then may have
been done on chain since, and the database cannot tell. So:

- as a process starts, before it finishes the intents an earlier one left, a top-up or a take
  recorded and never sent (a crash before the backup) is finished as refused instead of being
  sent: it may have been done since, and a money action is done once. Other actions check the
  chain before acting, so they are finished as usual;
- as the leader starts, before its outbox sends anything, a queued order the chain holds an
  unlinked twin of (same household, side, limit, slots and cap: posted after the backup) is
  recorded as that order instead of being posted again: open, or cancelled if the twin was
  cancelled since. An open order posted after the backup that the database never had is
  recorded too, so that its household sees it and can cancel it (not one a post the backup
  held in flight stands for, which the outbox records, nor one of an erased household). Then
  the mark goes, once every step is done: a step that fails leaves it, and the next pass
  tries them again (each takes back only what is still missing).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from api.errors import ApiError
from api.intents import UNFINISHED
from api.models import ApiHousehold, ApiIntent, ApiOrder, ApiOrderPost, HouseholdErasure
from ledger.contract.client import VoisinClient
from ledger.mirror.engine import make_engine
from ledger.mirror.models import (
    ChainEvent,
    HouseholdRecord,
    IndexerState,
    OrderRecord,
    SlotOutcomeRecord,
)

__all__ = [
    "MONEY_INTENTS",
    "RESTORED_INTENTS_KEY",
    "RESTORED_KEY",
    "Recovered",
    "RecoveryIncomplete",
    "adopt_households",
    "adopt_orders",
    "erase_again",
    "forget_restored",
    "lost_households",
    "mark_restored",
    "refuse_while_restoring",
    "registrations_unfinished",
    "restored_from",
    "restored_intents_up_to",
    "sealed_unsettled",
    "twin_orders",
    "unsent_at_backup",
]

#: The kinds of intent whose pending ones a restored database refuses rather than drives:
#: money actions, which cannot tell from the chain whether they were done.
MONEY_INTENTS = ("topup", "take")

#: The ``indexer_state`` key ``voisin restore`` writes into a database it restored: the chain's
#: head block when the backup was taken. Removed once the next start has handled it.
RESTORED_KEY = "restored_from_block"
#: Beside it: the newest intent id the backup held (0: none), so that only intents recorded
#: before the backup are refused, never one a request made since the restore.
RESTORED_INTENTS_KEY = "restored_intents_up_to"


class RecoveryIncomplete(RuntimeError):
    """A step of taking back from the chain failed; the mark stays for the next try."""


@dataclass(frozen=True, slots=True)
class Recovered:
    """What a market took back from the chain as it started."""

    signed_readings: int
    households: tuple[int, ...]
    #: Queued orders recorded as the on-chain orders posted for them after the backup, and
    #: orders posted after it that the database never had (API order ids).
    orders_found: tuple[int, ...] = ()
    #: Households erased after the backup, whose personal data were removed again.
    erased: tuple[int, ...] = ()
    #: Slots settled and sealed on chain after the backup, whose outcomes were recounted.
    slots: tuple[int, ...] = ()


def refuse_while_restoring(engine: Engine, what: str) -> None:
    """Refuse ``what`` (503 ``restore_recovering``, with ``Retry-After``) while the database is
    marked restored: until its leader has taken back what the chain did since the backup, a
    slot settled by hand would be planned on a database that lacks the seals after it, and a
    live feed opened would start past slots not yet settled here again."""
    if restored_from(engine) is not None:
        raise ApiError(
            503,
            "restore_recovering",
            f"{what} waits until this market has taken back from the chain what happened since "
            "its backup (the server's log says how it goes); try again in a moment",
            headers={"Retry-After": "10"},
        )


def sealed_unsettled(engine: Engine, contract: str, after_block: int) -> list[tuple[int, str, int]]:
    """The slots the chain sealed after ``after_block`` (mirrored ``SlotSealed`` events) that
    the database has no settled outcome of, in the order they were sealed: (slot, the head
    sealed, the block that sealed it)."""
    with Session(engine) as session:
        seals = [
            (int(args["slot"]), str(args["digestHead"]), block)
            for block, args in (
                (block, json.loads(text))
                for block, text in session.exec(
                    select(ChainEvent.block_number, ChainEvent.args_json)
                    .where(
                        ChainEvent.contract == contract,
                        ChainEvent.name == "SlotSealed",
                        col(ChainEvent.block_number) > after_block,
                    )
                    .order_by(col(ChainEvent.block_number), col(ChainEvent.log_index))
                )
            )
        ]
        settled = set(
            session.exec(
                select(SlotOutcomeRecord.slot).where(
                    col(SlotOutcomeRecord.slot).in_([slot for slot, _, _ in seals]),
                    SlotOutcomeRecord.status == "settled",
                )
            ).all()
        )
    return [seal for seal in seals if seal[0] not in settled]


def _unfinished(session: Session, kind: str) -> list[ApiIntent]:
    """The intents of ``kind`` not finished yet: their own drive records what they did."""
    return list(
        session.exec(
            select(ApiIntent).where(ApiIntent.kind == kind, col(ApiIntent.state).in_(UNFINISHED))
        )
    )


def registrations_unfinished(engine: Engine) -> int:
    """How many registrations are recorded and not finished yet."""
    with Session(engine) as session:
        return len(_unfinished(session, "register"))


def lost_households(engine: Engine) -> list[HouseholdRecord]:
    """The active households the mirror has from the chain and the API has no record of (nor
    an erasure, nor a registration still being finished, which records its own), by id."""
    with Session(engine) as session:
        known = set(session.exec(select(ApiHousehold.id)).all())
        erased = set(session.exec(select(HouseholdErasure.household)).all())
        registering = {
            str(i.subject).lower() for i in _unfinished(session, "register") if i.subject
        }
        rows = session.exec(
            select(HouseholdRecord)
            .where(col(HouseholdRecord.active))
            .order_by(col(HouseholdRecord.id))
        ).all()
        return [
            r
            for r in rows
            if r.id not in known and r.id not in erased and r.meter.lower() not in registering
        ]


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
                    # Not the hash of any token (those are 64 hex digits): the operator
                    # issues the household's.
                    token_hash=f"taken-back:{household.id}:{secrets.token_hex(16)}",
                    key_json="",
                    meter_last_slot=state.last_slot,
                    meter_import_Wh=state.import_Wh,
                    meter_export_Wh=state.export_Wh,
                )
            )
            adopted.append(household.id)
    return adopted


def mark_restored(database_url: str, head_block: int) -> None:
    """Mark the database of ``database_url`` restored from a backup taken at ``head_block``,
    with the newest intent it holds."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            newest = session.exec(select(func.max(ApiIntent.id))).one() or 0
            session.merge(IndexerState(key=RESTORED_KEY, value=str(head_block)))
            session.merge(IndexerState(key=RESTORED_INTENTS_KEY, value=str(newest)))
    finally:
        engine.dispose()


def _marked(engine: Engine, key: str) -> int | None:
    with Session(engine) as session:
        row = session.get(IndexerState, key)
    return None if row is None else int(row.value)


def restored_from(engine: Engine) -> int | None:
    """The block of the backup this database was restored from, until handled; else None."""
    return _marked(engine, RESTORED_KEY)


def restored_intents_up_to(engine: Engine) -> int | None:
    """The newest intent id the restored backup held (None: no bound was marked, so every
    intent recorded is the backup's)."""
    return _marked(engine, RESTORED_INTENTS_KEY)


def forget_restored(engine: Engine) -> None:
    """Remove the mark :func:`mark_restored` wrote, once what it asks for is done."""
    with Session(engine) as session, session.begin():
        for key in (RESTORED_KEY, RESTORED_INTENTS_KEY):
            row = session.get(IndexerState, key)
            if row is not None:
                session.delete(row)


def _unlinked_orders(session: Session) -> list[OrderRecord]:
    """The on-chain orders (the mirror's), open or closed, that no API order stands for, by
    chain id."""
    linked = {
        (o.side, o.chain_id)
        for o in session.exec(select(ApiOrder).where(col(ApiOrder.chain_id).is_not(None)))
    }
    rows = session.exec(select(OrderRecord).order_by(col(OrderRecord.order_id)))
    return [r for r in rows if (r.side, r.order_id) not in linked]


def _order_key(o: ApiOrder | OrderRecord) -> tuple[object, ...]:
    """What a queued order and the on-chain order posted for it have in common."""
    return (o.household, o.side, o.price_limit_ueur_per_kWh, o.first_slot, o.last_slot,
            o.max_Wh_per_slot)  # fmt: skip


def twin_orders(engine: Engine) -> list[tuple[int, int, bool]]:
    """(API order id, chain order id, whether it is open) of each queued order, not being
    sent, that an unlinked on-chain order of the same household, side, limit, slots and cap
    stands for, open or cancelled since (the mirror must be caught up); each chain order
    stands for one API order, oldest first."""
    with Session(engine) as session:
        queued = session.exec(
            select(ApiOrder).where(ApiOrder.status == "queued").order_by(col(ApiOrder.id))
        ).all()
        sending = set(session.exec(select(ApiOrderPost.order_id)).all())
        on_chain = _unlinked_orders(session)
    free: dict[tuple[object, ...], list[OrderRecord]] = {}
    for r in on_chain:
        free.setdefault(_order_key(r), []).append(r)
    pairs: list[tuple[int, int, bool]] = []
    for o in queued:
        if o.id is None or o.id in sending:
            continue
        twins = free.get(_order_key(o))
        if twins:
            twin = twins.pop(0)
            pairs.append((o.id, twin.order_id, twin.open))
    return pairs


def adopt_orders(engine: Engine) -> list[int]:
    """Record each open on-chain order of a household the API knows that no API order stands
    for (posted after the backup, and not queued in it) as an open order of that household,
    so that the household sees it and can cancel it; returns the new API order ids. Run after
    the posts in flight are settled and :func:`twin_orders`' pairs recorded. An erased
    household's orders are not taken back (its cancels are the erasure's)."""
    with Session(engine) as session, session.begin():
        erased = set(session.exec(select(HouseholdErasure.household)).all())
        known = set(session.exec(select(ApiHousehold.id)).all()) - erased
        adopted = [
            ApiOrder(
                side=r.side,
                household=r.household,
                price_limit_ueur_per_kWh=r.price_limit_ueur_per_kWh,
                max_Wh_per_slot=r.max_Wh_per_slot,
                first_slot=r.first_slot,
                last_slot=r.last_slot,
                status="open",
                chain_id=r.order_id,
            )
            for r in _unlinked_orders(session)
            if r.open and r.household in known
        ]
        session.add_all(adopted)
        session.flush()
        return [o.id for o in adopted if o.id is not None]


def erase_again(engine: Engine) -> list[int]:
    """Erase again each household the chain deactivated whose erasure the database has no
    record of (erased after the backup it was restored from): its personal data, back with
    the backup, go again (:func:`api.privacy.wipe`); returns their ids."""
    from api.privacy import deactivation_tx, wipe

    with Session(engine) as session, session.begin():
        erased = set(session.exec(select(HouseholdErasure.household)).all())
        # An erasure still being finished records itself, with what it moved.
        erased |= {i.household for i in _unfinished(session, "erase") if i.household is not None}
        known = set(session.exec(select(ApiHousehold.id)).all())
        inactive = [
            h.id
            for h in session.exec(
                select(HouseholdRecord).where(col(HouseholdRecord.active).is_(False))
            )
            if h.id in known and h.id not in erased
        ]
        for household in inactive:
            wipe(
                session,
                household,
                requested_by="restore",
                deactivated_tx=deactivation_tx(session, household),
            )
    return inactive


def unsent_at_backup(backup_block: int) -> ApiError:
    """The answer a money intent a restored database held unsent is finished with."""
    return ApiError(
        409,
        "unsent_at_backup",
        f"this request was recorded and not yet done when the backup restored here was taken "
        f"(block {backup_block}), and the chain went on since: whether it was done after "
        "cannot be told here, so it is not done again; check the household's balance and "
        "trades, and ask again with a new Idempotency-Key if it is still wanted",
    )
