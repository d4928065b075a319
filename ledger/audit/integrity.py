"""Integrity: the records are unique, monotone, and the database says what the chain says.

- **Unique readings**: no (meter, slot) pair twice, on chain, in the mirror or in the evidence.
- **Registers only grow**: per meter, in slot order, on chain and in the evidence store.
- **Mirror == chain**: what the mirror must hold is derived from the chain's events from the
  deployment block on, whatever the database's own bookkeeping says. Up to the block its
  indexer cursor claims, every contract event is in ``chain_event`` with the same name,
  transaction and arguments, nothing missing and nothing extra; the typed projections
  (readings, fills, forward positions, top-ups, tariffs, households, and balances at that
  block) match the
  events and the chain's state; each settled slot's outcome matches the fills its batches
  settled. A missing cursor, one behind the rows it covers, and a mirror that lags the head
  are findings.
- **Digest chain**: each sealed slot's link follows the previous one, and its leaves,
  recomputed from the database as it is now, are the ones sealed (:mod:`ledger.audit.digest`).
  A settled slot without a seal is flagged too. Every link must equal the head the chain
  sealed for its slot (``SlotSealed``), which the database writer cannot reach.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledger.audit.digest import GENESIS_DIGEST, compute_leaves, link_digest
from ledger.audit.findings import ERROR, WARNING, Finding
from ledger.audit.inputs import AuditInputs, checksum
from ledger.types import Event

__all__ = ["check_integrity"]


def _where(args: dict[str, Any], household_of: dict[str, int]) -> tuple[int | None, int | None]:
    """The slot and household an event concerns, when it names them."""
    slot = args.get("slot")
    household = args.get("household", args.get("seller"))
    if household is None:
        for key in ("account", "to", "from"):
            if key in args:
                household = household_of.get(checksum(args[key]))
                if household is not None:
                    break
    return (None if slot is None else int(slot)), (None if household is None else int(household))


def check_integrity(inputs: AuditInputs) -> list[Finding]:
    findings: list[Finding] = []
    add = findings.append
    household_of: dict[str, int] = {
        checksum(e.args["account"]): int(e.args["household"])
        for e in inputs.named("HouseholdRegistered")
    }
    meter_owner = {r.meter: r.household for r in inputs.registrations}
    _unique_and_growing(inputs, meter_owner, add)
    _mirror(inputs, household_of, add)
    _digests(inputs, add)
    return findings


def _unique_and_growing(
    inputs: AuditInputs, meter_owner: dict[str, int], add: Callable[[Finding], None]
) -> None:
    sources: dict[str, list[tuple[str, int, int, int]]] = {
        "chain": [
            (
                checksum(e.args["meter"]),
                int(e.args["slot"]),
                int(e.args["importWh"]),
                int(e.args["exportWh"]),
            )
            for e in inputs.named("ReadingCommitted")
        ],
        "database mirror": [
            (checksum(r.meter), r.slot, r.import_Wh, r.export_Wh) for r in inputs.db_readings
        ],
        "evidence store": [
            (checksum(s.meter), s.slot, s.import_Wh, s.export_Wh) for s in inputs.signed
        ],
    }
    for source, rows in sources.items():
        for (meter, slot), n in sorted(Counter((m, s) for m, s, _, _ in rows).items()):
            if n > 1:
                add(
                    Finding(
                        "integrity",
                        ERROR,
                        slot,
                        meter_owner.get(meter),
                        f"{n} readings of meter {meter} for one slot in the {source}",
                        {"meter": meter, "source": source, "count": n},
                    )
                )
        if source == "database mirror":
            continue  # its order and values are compared with the chain below
        per_meter: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for meter, slot, imp, exp in rows:
            per_meter[meter].append((slot, imp, exp))
        for meter, series in sorted(per_meter.items()):
            series.sort()
            for (_, imp0, exp0), (slot, imp, exp) in itertools.pairwise(series):
                if imp < imp0 or exp < exp0:
                    add(
                        Finding(
                            "integrity",
                            ERROR,
                            slot,
                            meter_owner.get(meter),
                            f"a register of meter {meter} decreased in the {source}",
                            {
                                "meter": meter,
                                "source": source,
                                "previous_registers_Wh": [imp0, exp0],
                                "registers_Wh": [imp, exp],
                            },
                        )
                    )


def _event_key(e: Event) -> tuple[int, int]:
    return (e.block_number, e.log_index)


def _mirror(
    inputs: AuditInputs, household_of: dict[str, int], add: Callable[[Finding], None]
) -> None:
    """The mirror against the chain, from the deployment block on.

    What the mirror must hold is derived from the chain's events, whatever the database's own
    bookkeeping says: the indexer cursor only tells how far the mirror claims to be complete.
    A missing cursor, one beyond the head or behind rows the database holds, and a mirror that
    lags the head are findings of their own.
    """
    horizon = _horizon(inputs, add)
    _raw_events(inputs, horizon, household_of, add)
    mirrored = [e for e in inputs.events if e.block_number <= horizon]
    for projection in _PROJECTIONS:
        _compare(
            projection.kind,
            projection.chain(mirrored),
            projection.database(inputs),
            functools.partial(_locate, projection, household_of),
            horizon,
            add,
        )
    _balances(inputs, horizon, household_of, add)
    _outcomes(inputs, add)


def _locate(
    projection: _Projection, household_of: dict[str, int], row: tuple[Any, ...]
) -> tuple[int | None, int | None]:
    return projection.where(row, household_of)


def _horizon(inputs: AuditInputs, add: Callable[[Finding], None]) -> int:
    """The block up to which the mirror must match the chain exactly, with findings about the
    indexer cursor that claims it."""
    head, cursor = inputs.head_block, inputs.mirror_block
    evidence = {"cursor_block": cursor, "head_block": head}
    if cursor is None:
        if inputs.events or inputs.db_events:
            add(
                Finding(
                    "integrity",
                    ERROR,
                    None,
                    None,
                    f"the database has no indexer cursor, so nothing says how far it mirrors the "
                    f"chain; it is compared with all {len(inputs.events)} contract events up to "
                    f"the head (block {head})",
                    {**evidence, "database_events": len(inputs.db_events)},
                )
            )
        return head
    if cursor > head:
        add(
            Finding(
                "integrity",
                ERROR,
                None,
                None,
                f"the indexer cursor claims block {cursor}, beyond the chain's head (block "
                f"{head}); the mirror is compared with the chain up to the head",
                evidence,
            )
        )
        return head
    pending = [e for e in inputs.events if e.block_number > cursor]
    if pending:
        add(
            Finding(
                "integrity",
                WARNING,
                None,
                None,
                f"the database mirrors the chain up to block {cursor} but the head is block "
                f"{head}: {len(pending)} contract events after block {cursor} are not mirrored "
                "yet and were compared with nothing",
                {**evidence, "events_not_mirrored": len(pending)},
            )
        )
    return cursor


def _raw_events(
    inputs: AuditInputs, horizon: int, household_of: dict[str, int], add: Callable[[Finding], None]
) -> None:
    """Every contract event up to ``horizon`` is in ``chain_event`` as the chain has it, and
    the database holds no event the chain does not have."""
    chain = {_event_key(e): e for e in inputs.events}
    db = {(r.block_number, r.log_index): r for r in inputs.db_events}
    ahead: list[tuple[int, int]] = []
    for key in sorted(set(chain) | set(db)):
        e, r = chain.get(key), db.get(key)
        if e is not None:
            slot, household = _where(e.args, household_of)
            if r is None:
                if key[0] <= horizon:
                    add(
                        Finding(
                            "integrity",
                            ERROR,
                            slot,
                            household,
                            f"{e.name} event at block {key[0]} log {key[1]} is missing from the "
                            f"database mirror, which claims to mirror the chain up to block "
                            f"{horizon}",
                            {"event": e.name, "block": key[0], "log_index": key[1], "args": e.args},
                        )
                    )
                continue
            args_json = json.dumps(e.args, sort_keys=True, default=str)
            if (r.name, r.tx_hash.lower(), r.args_json) != (e.name, e.tx_hash.lower(), args_json):
                add(
                    Finding(
                        "integrity",
                        ERROR,
                        slot,
                        household,
                        f"the mirrored {r.name} event at block {key[0]} log {key[1]} differs "
                        "from the chain's",
                        {"chain": {"name": e.name, "args": e.args}, "database": r.args_json},
                    )
                )
            elif key[0] > horizon:
                ahead.append(key)
        elif r is not None:
            args = json.loads(r.args_json) if r.args_json.startswith("{") else {}
            slot, household = _where(args, household_of)
            beyond = (
                f", beyond the chain's head (block {inputs.head_block})"
                if key[0] > inputs.head_block
                else ""
            )
            add(
                Finding(
                    "integrity",
                    ERROR,
                    slot,
                    household,
                    f"the database mirror holds a {r.name} event at block {key[0]} log {key[1]} "
                    f"that the chain does not have{beyond}",
                    {"event": r.name, "block": key[0], "log_index": key[1], "args": r.args_json},
                )
            )
    if ahead:
        add(
            Finding(
                "integrity",
                ERROR,
                None,
                None,
                f"the indexer cursor (block {horizon}) is behind the events the database holds: "
                f"{len(ahead)} mirrored events lie in blocks {ahead[0][0]} to {ahead[-1][0]}",
                {"cursor_block": horizon, "events_ahead": len(ahead)},
            )
        )


def _compare(
    kind: str,
    chain: dict[Any, tuple[Any, ...]],
    db: dict[Any, tuple[Any, ...]],
    where: Callable[[tuple[Any, ...]], tuple[int | None, int | None]],
    horizon: int,
    add: Callable[[Finding], None],
) -> None:
    """Flag rows missing from, extra in, or different in the database's ``kind`` table, against
    the rows the chain's events up to block ``horizon`` imply."""
    for key in sorted(set(chain) | set(db), key=str):
        c, d = chain.get(key), db.get(key)
        if c == d:
            continue
        row = d if c is None else c
        assert row is not None
        slot, household = where(row)
        if c is None:
            message = (
                f"the database's {kind} table holds a row that the chain's events up to block "
                f"{horizon} do not imply"
            )
        elif d is None:
            message = (
                f"a {kind} row that the chain's events up to block {horizon} imply is missing "
                "from the database"
            )
        else:
            message = f"a {kind} row in the database differs from the chain's events"
        add(
            Finding(
                "integrity",
                ERROR,
                slot,
                household,
                message,
                {"table": kind, "key": list(key), "chain": c, "database": d},
            )
        )


Rows = dict[Any, tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class _Projection:
    """One typed table of the mirror: its rows as the chain's events imply them, its rows as
    the database holds them (both keyed alike), and the slot and household a row concerns."""

    kind: str
    chain: Callable[[list[Event]], Rows]
    database: Callable[[AuditInputs], Rows]
    where: Callable[[tuple[Any, ...], dict[str, int]], tuple[int | None, int | None]]


def _reading_rows(events: list[Event]) -> Rows:
    return {
        (checksum(e.args["meter"]), int(e.args["slot"])): (
            int(e.args["household"]),
            int(e.args["slot"]),
            int(e.args["importWh"]),
            int(e.args["exportWh"]),
            int(e.args["importDeltaWh"]),
            int(e.args["exportDeltaWh"]),
            e.block_number,
            e.tx_hash.lower(),
        )
        for e in events
        if e.name == "ReadingCommitted"
    }


def _db_reading_rows(inputs: AuditInputs) -> Rows:
    return {
        (checksum(r.meter), r.slot): (
            r.household,
            r.slot,
            r.import_Wh,
            r.export_Wh,
            r.import_delta_Wh,
            r.export_delta_Wh,
            r.block_number,
            r.tx_hash.lower(),
        )
        for r in inputs.db_readings
    }


def _fill_rows(events: list[Event]) -> Rows:
    return {
        _event_key(e): (
            int(e.args["slot"]),
            int(e.args["seller"]),
            int(e.args["buyer"]),
            int(e.args["offerId"]),
            int(e.args["bidId"]),
            int(e.args["energyWh"]),
            int(e.args["priceUeurPerKWh"]),
            int(e.args["costUeur"]),
            int(e.args["feeUeur"]),
            e.tx_hash.lower(),
        )
        for e in events
        if e.name == "FillSettled"
    }


def _db_fill_rows(inputs: AuditInputs) -> Rows:
    return {
        (f.block_number, f.log_index): (
            f.slot,
            f.seller,
            f.buyer,
            f.offer_id,
            f.bid_id,
            f.energy_Wh,
            f.price_ueur_per_kWh,
            f.cost_ueur,
            f.fee_ueur,
            f.tx_hash.lower(),
        )
        for f in inputs.db_fills
    }


def _forward_rows(events: list[Event]) -> Rows:
    """Each day-ahead position as its events leave it: cleared, then settled (the settled
    fields are ``None`` while it is open)."""
    rows: dict[Any, list[Any]] = {}
    for e in events:
        a = e.args
        if e.name == "ForwardCleared":
            rows[(int(a["forwardId"]),)] = [
                int(a["slot"]),
                int(a["seller"]),
                int(a["buyer"]),
                int(a["energyWh"]),
                int(a["priceUeurPerKWh"]),
                int(a["reservedUeur"]),
                e.block_number,
                e.tx_hash.lower(),
                *[None] * 7,
            ]
        elif e.name == "ForwardSettled" and (int(a["forwardId"]),) in rows:
            rows[(int(a["forwardId"]),)][8:] = [
                int(a["deliveredWh"]),
                int(a["shortfallWh"]),
                int(a["costUeur"]),
                int(a["feeUeur"]),
                int(a["refundUeur"]),
                e.block_number,
                e.tx_hash.lower(),
            ]
    return {key: tuple(row) for key, row in rows.items()}


def _db_forward_rows(inputs: AuditInputs) -> Rows:
    return {
        (f.forward_id,): (
            f.slot,
            f.seller,
            f.buyer,
            f.energy_Wh,
            f.price_ueur_per_kWh,
            f.reserved_ueur,
            f.cleared_block,
            f.cleared_tx.lower(),
            f.delivered_Wh,
            f.shortfall_Wh,
            f.cost_ueur,
            f.fee_ueur,
            f.refund_ueur,
            f.settled_block,
            None if f.settled_tx is None else f.settled_tx.lower(),
        )
        for f in inputs.db_forwards
    }


def _topup_rows(events: list[Event]) -> Rows:
    return {
        _event_key(e): (checksum(e.args["account"]), int(e.args["amountUeur"]), e.tx_hash.lower())
        for e in events
        if e.name == "ToppedUp"
    }


def _db_topup_rows(inputs: AuditInputs) -> Rows:
    return {
        (t.block_number, t.log_index): (checksum(t.account), t.amount_ueur, t.tx_hash.lower())
        for t in inputs.db_topups
    }


def _order_rows(events: list[Event]) -> Rows:
    """Each offer and bid as its events leave it: posted, and open until cancelled."""
    orders: dict[tuple[str, int], list[Any]] = {}
    for e in events:
        a = e.args
        if e.name in ("OfferPosted", "BidPosted"):
            side = "offer" if e.name == "OfferPosted" else "bid"
            key = (side, int(a["offerId" if side == "offer" else "bidId"]))
            orders[key] = [
                int(a["household"]),
                int(a["priceLimitUeurPerKWh"]),
                int(a["maxWhPerSlot"]),
                int(a["firstSlot"]),
                int(a["lastSlot"]),
                True,
            ]
        elif e.name in ("OfferCancelled", "BidCancelled"):
            side = "offer" if e.name == "OfferCancelled" else "bid"
            key = (side, int(a["offerId" if side == "offer" else "bidId"]))
            if key in orders:
                orders[key][5] = False
    return {key: tuple(row) for key, row in orders.items()}


def _db_order_rows(inputs: AuditInputs) -> Rows:
    return {
        (o.side, o.order_id): (
            o.household,
            o.price_limit_ueur_per_kWh,
            o.max_Wh_per_slot,
            o.first_slot,
            o.last_slot,
            o.open,
        )
        for o in inputs.db_orders
    }


def _tariff_rows(events: list[Event]) -> Rows:
    return {
        _event_key(e): (
            int(e.args["feedInUeurPerKWh"]),
            int(e.args["retailUeurPerKWh"]),
            int(e.args["gridFeeUeurPerKWh"]),
        )
        for e in events
        if e.name == "TariffsSet"
    }


def _db_tariff_rows(inputs: AuditInputs) -> Rows:
    return {
        (t.block_number, t.log_index): (
            t.feed_in_ueur_per_kWh,
            t.retail_ueur_per_kWh,
            t.grid_fee_ueur_per_kWh,
        )
        for t in inputs.db_tariffs
    }


def _household_rows(events: list[Event]) -> Rows:
    """Each household as its events leave it: account (rotations included), meter (rotations
    included), prosumer, active."""
    households: dict[int, list[Any]] = {}
    for e in events:
        a = e.args
        if e.name == "HouseholdRegistered":
            households[int(a["household"])] = [
                checksum(a["account"]),
                checksum(a["meter"]),
                bool(a["prosumer"]),
                True,
            ]
        elif e.name == "AccountRotated" and int(a["household"]) in households:
            households[int(a["household"])][0] = checksum(a["newAccount"])
        elif e.name == "MeterRotated" and int(a["household"]) in households:
            households[int(a["household"])][1] = checksum(a["newMeter"])
        elif e.name == "HouseholdDeactivated" and int(a["household"]) in households:
            households[int(a["household"])][3] = False
    return {(h,): (h, *row) for h, row in households.items()}


def _db_household_rows(inputs: AuditInputs) -> Rows:
    return {
        (h.id,): (h.id, checksum(h.account), checksum(h.meter), h.prosumer, h.active)
        for h in inputs.db_households
    }


_PROJECTIONS: tuple[_Projection, ...] = (
    _Projection("reading", _reading_rows, _db_reading_rows, lambda row, _: (row[1], row[0])),
    _Projection("fill", _fill_rows, _db_fill_rows, lambda row, _: (row[0], row[1])),
    _Projection("forward", _forward_rows, _db_forward_rows, lambda row, _: (row[0], row[2])),
    _Projection("topup", _topup_rows, _db_topup_rows, lambda row, owner: (None, owner.get(row[0]))),
    _Projection("tariff", _tariff_rows, _db_tariff_rows, lambda row, _: (None, None)),
    _Projection("order", _order_rows, _db_order_rows, lambda row, _: (None, int(row[0]))),
    _Projection(
        "household", _household_rows, _db_household_rows, lambda row, _: (None, int(row[0]))
    ),
)


def _balances(
    inputs: AuditInputs, horizon: int, household_of: dict[str, int], add: Callable[[Finding], None]
) -> None:
    """The mirrored balances against the chain's state at the block the mirror is complete to
    (at the head when it has caught up)."""
    chain = inputs.balances if horizon >= inputs.head_block else inputs.mirror_balances
    _compare(
        "balance",
        {(a,): (a, v) for a, v in chain.items() if v},
        # Keyed as stored, not checksummed: a second row for an account, spelled otherwise,
        # is a row the chain does not have, not one that hides the first.
        {(b.account,): (b.account, b.balance_ueur) for b in inputs.db_balances if b.balance_ueur},
        lambda row: (None, household_of.get(str(row[0]))),
        horizon,
        add,
    )


def _outcomes(inputs: AuditInputs, add: Callable[[Finding], None]) -> None:
    """Each settled slot's recorded outcome against the fills its batches settled on chain
    (every fill of the slot but direct takes, whose bid id is 0)."""
    fills: dict[int, list[Event]] = defaultdict(list)
    for e in inputs.named("FillSettled"):
        if int(e.args["bidId"]) != 0:
            fills[int(e.args["slot"])].append(e)
    for o in inputs.db_outcomes:
        if o.status != "settled":
            continue
        slot_fills = fills.get(o.slot, [])
        chain = {
            "fills": len(slot_fills),
            "matched_Wh": sum(int(e.args["energyWh"]) for e in slot_fills),
            "cost_ueur": sum(int(e.args["costUeur"]) for e in slot_fills),
            "fees_ueur": sum(int(e.args["feeUeur"]) for e in slot_fills),
        }
        recorded = {k: getattr(o, k) for k in chain}
        wrong = sorted(k for k in chain if chain[k] != recorded[k])
        prices = sorted({int(e.args["priceUeurPerKWh"]) for e in slot_fills})
        if o.clearing_price_ueur_per_kWh is not None and prices not in (
            [],
            [o.clearing_price_ueur_per_kWh],
        ):
            wrong.append("clearing_price_ueur_per_kWh")
        if o.unmatched_surplus_Wh != o.surplus_Wh - o.matched_Wh:
            wrong.append("unmatched_surplus_Wh")
        if o.unmatched_deficit_Wh != o.deficit_Wh - o.matched_Wh:
            wrong.append("unmatched_deficit_Wh")
        if wrong:
            add(
                Finding(
                    "integrity",
                    ERROR,
                    o.slot,
                    None,
                    f"the slot's recorded outcome disagrees with the fills settled on chain "
                    f"({', '.join(wrong)})",
                    {
                        "chain": {**chain, "fill_prices_ueur_per_kWh": prices},
                        "recorded": {
                            **recorded,
                            "clearing_price_ueur_per_kWh": o.clearing_price_ueur_per_kWh,
                            "surplus_Wh": o.surplus_Wh,
                            "deficit_Wh": o.deficit_Wh,
                            "unmatched_surplus_Wh": o.unmatched_surplus_Wh,
                            "unmatched_deficit_Wh": o.unmatched_deficit_Wh,
                        },
                    },
                )
            )


def _digests(inputs: AuditInputs, add: Callable[[Finding], None]) -> None:
    readings: dict[int, list[Any]] = defaultdict(list)
    fills: dict[int, list[Any]] = defaultdict(list)
    for r in inputs.db_readings:
        readings[r.slot].append(r)
    for f in inputs.db_fills:
        fills[f.slot].append(f)
    outcomes = {o.slot: o for o in inputs.db_outcomes}
    prev = GENESIS_DIGEST
    sealed: set[int] = set()
    for link in inputs.db_digests:
        sealed.add(link.slot)
        evidence = {"seq": link.seq, "digest": link.digest}
        if link.prev_digest != prev:
            add(
                Finding(
                    "integrity",
                    ERROR,
                    link.slot,
                    None,
                    "the digest chain is broken: this link does not follow the previous one",
                    {**evidence, "prev_digest": link.prev_digest, "expected_prev_digest": prev},
                )
            )
        try:
            stored: dict[str, str] = json.loads(link.leaves_json)
        except json.JSONDecodeError:
            stored = {}
        if link_digest(link.prev_digest, link.slot, link.sealed_block, stored) != link.digest:
            add(
                Finding(
                    "integrity",
                    ERROR,
                    link.slot,
                    None,
                    "a sealed link was rewritten: its digest does not match its leaves",
                    evidence,
                )
            )
        now = compute_leaves(
            link.slot,
            link.sealed_block,
            readings.get(link.slot, []),
            fills.get(link.slot, []),
            outcomes.get(link.slot),
        )
        for leaf in sorted(set(stored) | set(now)):
            if stored.get(leaf) != now.get(leaf):
                household = None if leaf == "slot" else int(leaf)
                what = "outcome" if leaf == "slot" else "readings or fills"
                add(
                    Finding(
                        "integrity",
                        ERROR,
                        link.slot,
                        household,
                        f"the slot's {what} changed in the database after the slot was sealed",
                        {**evidence, "sealed_leaf": stored.get(leaf), "leaf_now": now.get(leaf)},
                    )
                )
        prev = link.digest
    _anchors(inputs, add)
    for o in inputs.db_outcomes:
        if o.status == "settled" and o.slot not in sealed:
            add(
                Finding(
                    "integrity",
                    WARNING,
                    o.slot,
                    None,
                    "a settled slot has no seal in the digest chain",
                    {"slot": o.slot},
                )
            )


def _hex32(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return str(value).lower()


def _anchors(inputs: AuditInputs, add: Callable[[Finding], None]) -> None:
    """Each database link against the head the chain sealed for its slot (``SlotSealed``).

    The chain's seals are out of the database writer's reach: a link recomputed after a
    rewrite differs from its seal, and so does every later link (each chains the previous).
    A link the chain has not sealed yet is only pending if no later link is sealed.
    """
    anchored = {
        int(e.args["slot"]): (_hex32(e.args["digestHead"]), e.block_number)
        for e in inputs.named("SlotSealed")
    }
    links = {link.slot: link for link in inputs.db_digests}
    last_anchored_seq = max(
        (link.seq for link in inputs.db_digests if link.slot in anchored and link.seq is not None),
        default=-1,
    )
    for link in inputs.db_digests:
        seal = anchored.get(link.slot)
        evidence = {"seq": link.seq, "database_digest": link.digest}
        if seal is None:
            gap = link.seq is not None and link.seq < last_anchored_seq
            add(
                Finding(
                    "integrity",
                    ERROR if gap else WARNING,
                    link.slot,
                    None,
                    "the slot is sealed in the database but its link was never anchored on "
                    "chain, though later links were"
                    if gap
                    else "the slot is sealed in the database but not anchored on chain yet",
                    evidence,
                )
            )
        elif seal[0] != link.digest.lower():
            add(
                Finding(
                    "integrity",
                    ERROR,
                    link.slot,
                    None,
                    f"the slot's digest link differs from the head sealed on chain at block "
                    f"{seal[1]}: the database's records of this slot or an earlier one were "
                    "rewritten after sealing",
                    {**evidence, "chain_digest": seal[0], "sealed_block": seal[1]},
                )
            )
    for slot, (digest, block) in sorted(anchored.items()):
        if slot not in links:
            add(
                Finding(
                    "integrity",
                    ERROR,
                    slot,
                    None,
                    f"the chain sealed this slot at block {block} but the database holds no "
                    "digest link for it",
                    {"chain_digest": digest, "sealed_block": block},
                )
            )
