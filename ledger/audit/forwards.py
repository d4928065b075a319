"""Forwards: the day-ahead book, from clearing to delivery, and the escrow that backs it.

``clearForwards`` clears positions a day ahead: each ``ForwardCleared`` reserves the buyer's
funds, ``reservedUeur = Wh * price // 1000 + Wh * grid_fee // 1000`` with the tariffs in force
at clearing, moved by a ``Transfer`` from the buyer's account to the contract's own address
(the escrow). ``settleForwards`` settles each position once its slot is metered: the whole
reservation goes back (a ``Transfer`` from the contract to the buyer), the delivered part is an
ordinary ``FillSettled`` with offer id 0 and bid id 0, and ``ForwardSettled`` says what was
delivered, what fell short and what the buyer effectively got back.

The money and energy checks already count the deliveries (they are fills and transfers). This
check keeps the book itself honest:

- every ``ForwardSettled`` names a ``ForwardCleared`` with the same id, slot, seller and buyer,
  and no position settles twice; no id is cleared twice;
- per position ``delivered + shortfall == energy``, ``cost == delivered * price // 1000``,
  ``cost + fee <= reserved`` and ``refund == reserved - cost - fee``; at clearing ``reserved``
  is the formula above;
- the reservation's and the release's ``Transfer`` (same transaction, just before the event)
  move exactly ``reserved`` between the buyer's account of the time and the escrow;
- a delivery (``delivered > 0``) has its ``FillSettled`` (offer id 0, bid id 0, same slot,
  seller, buyer, Wh, price, cost and fee) in the same transaction, after the previous
  position's event; such a fill that no ``ForwardSettled`` claims is a finding;
- the escrow's balance on chain equals the reservations of the positions still open;
- a position of a slot the chain sealed (``SlotSealed``) must have been settled.

A finding's household is the position's buyer, whose funds it concerns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.audit.findings import ERROR, Finding
from ledger.audit.inputs import AuditInputs, checksum
from ledger.audit.money import TariffTimeline
from ledger.types import Event

__all__ = [
    "FORWARD_EVENTS",
    "ForwardSummary",
    "Position",
    "check_forwards",
    "forward_positions",
    "forward_summary",
    "has_forwards",
    "is_forward_delivery",
]

FORWARD_EVENTS = ("ForwardCleared", "ForwardSettled")


def is_forward_delivery(args: dict[str, Any]) -> bool:
    """A ``FillSettled`` with offer id 0 and bid id 0 delivers a forward (bid id 0 alone, with
    an offer id, is a direct take)."""
    return int(args["offerId"]) == 0 and int(args["bidId"]) == 0


def has_forwards(inputs: AuditInputs) -> bool:
    """Whether the chain holds any day-ahead event: the check and its summary are left out of
    a report without one, which then reads as it always did."""
    return any(
        e.name in FORWARD_EVENTS or (e.name == "FillSettled" and is_forward_delivery(e.args))
        for e in inputs.events
    )


@dataclass
class Position:
    """One forward position as the chain's events leave it (Wh, micro-euro, ueur per kWh).
    ``delivered_Wh`` and the settlement's figures are ``None`` while it is open."""

    forward_id: int
    slot: int
    seller: int
    buyer: int
    energy_Wh: int
    price_ueur_per_kWh: int
    reserved_ueur: int
    cleared_block: int
    delivered_Wh: int | None = None
    shortfall_Wh: int | None = None
    cost_ueur: int | None = None
    fee_ueur: int | None = None
    refund_ueur: int | None = None
    settled_block: int | None = None

    @property
    def open(self) -> bool:
        return self.delivered_Wh is None


def forward_positions(inputs: AuditInputs) -> dict[int, Position]:
    """forward id -> its position: the first ``ForwardCleared`` of each id, settled by the
    first ``ForwardSettled`` that names it."""
    positions: dict[int, Position] = {}
    for e in inputs.named(*FORWARD_EVENTS):
        a = e.args
        fid = int(a["forwardId"])
        if e.name == "ForwardCleared":
            positions.setdefault(
                fid,
                Position(
                    fid,
                    int(a["slot"]),
                    int(a["seller"]),
                    int(a["buyer"]),
                    int(a["energyWh"]),
                    int(a["priceUeurPerKWh"]),
                    int(a["reservedUeur"]),
                    e.block_number,
                ),
            )
        else:
            p = positions.get(fid)
            if p is None or not p.open:
                continue
            p.delivered_Wh = int(a["deliveredWh"])
            p.shortfall_Wh = int(a["shortfallWh"])
            p.cost_ueur = int(a["costUeur"])
            p.fee_ueur = int(a["feeUeur"])
            p.refund_ueur = int(a["refundUeur"])
            p.settled_block = e.block_number
    return positions


@dataclass(frozen=True, slots=True)
class ForwardSummary:
    """The day-ahead book's figures for a report: positions cleared (of the slots audited),
    how many settled and are still open, the Wh cleared, delivered and short, and the funds
    the open ones hold in escrow. ``escrow_ueur`` is the escrow's whole balance on chain."""

    positions: int
    settled: int
    open_positions: int
    cleared_Wh: int
    delivered_Wh: int
    shortfall_Wh: int
    reserved_open_ueur: int
    escrow_ueur: int

    def as_dict(self) -> dict[str, int]:
        return {
            "positions": self.positions,
            "settled": self.settled,
            "open_positions": self.open_positions,
            "cleared_Wh": self.cleared_Wh,
            "delivered_Wh": self.delivered_Wh,
            "shortfall_Wh": self.shortfall_Wh,
            "reserved_open_ueur": self.reserved_open_ueur,
            "escrow_ueur": self.escrow_ueur,
        }


def forward_summary(
    inputs: AuditInputs, from_slot: int | None = None, to_slot: int | None = None
) -> ForwardSummary:
    """The book's figures over the positions whose slot lies in ``[from_slot, to_slot]``."""
    kept = [
        p
        for p in forward_positions(inputs).values()
        if (from_slot is None or p.slot >= from_slot) and (to_slot is None or p.slot <= to_slot)
    ]
    settled = [p for p in kept if not p.open]
    return ForwardSummary(
        positions=len(kept),
        settled=len(settled),
        open_positions=len(kept) - len(settled),
        cleared_Wh=sum(p.energy_Wh for p in kept),
        delivered_Wh=sum(p.delivered_Wh or 0 for p in settled),
        shortfall_Wh=sum(p.shortfall_Wh or 0 for p in settled),
        reserved_open_ueur=sum(p.reserved_ueur for p in kept if p.open),
        escrow_ueur=inputs.balances.get(checksum(inputs.contract), 0),
    )


def _account(address: Any) -> str | None:
    text = str(address)
    return None if int(text, 16) == 0 else checksum(text)


class _Book:
    """The replay: positions as cleared and settled, the buyers' accounts over time, and the
    deliveries waiting for their ``ForwardSettled`` in each transaction."""

    def __init__(self, inputs: AuditInputs) -> None:
        self.inputs = inputs
        self.escrow = checksum(inputs.contract)
        self.timeline = TariffTimeline(inputs)
        self.findings: list[Finding] = []
        self.cleared: dict[int, Event] = {}
        self.settled: dict[int, Event] = {}
        self.account_of: dict[int, str] = {}
        self.last_transfer: dict[str, Event] = {}
        """Per transaction, its latest ``Transfer`` so far."""
        self.delivery: dict[str, Event] = {}
        """Per transaction, a forward delivery not yet claimed by a ``ForwardSettled``."""

    def add(self, slot: int | None, buyer: int | None, message: str, **evidence: Any) -> None:
        self.findings.append(Finding("forwards", ERROR, slot, buyer, message, evidence))

    def run(self) -> list[Finding]:
        for e in self.inputs.events:
            a = e.args
            if e.name == "HouseholdRegistered":
                self.account_of[int(a["household"])] = checksum(a["account"])
            elif e.name == "AccountRotated":
                self.account_of[int(a["household"])] = checksum(a["newAccount"])
            elif e.name == "Transfer":
                self.last_transfer[e.tx_hash] = e
            elif e.name == "FillSettled" and is_forward_delivery(a):
                self._unclaimed(self.delivery.pop(e.tx_hash, None))
                self.delivery[e.tx_hash] = e
            elif e.name == "ForwardCleared":
                self._cleared(e)
            elif e.name == "ForwardSettled":
                self._settled(e)
        for fill in self.delivery.values():
            self._unclaimed(fill)
        self._escrow()
        self._sealed_open()
        return self.findings

    def _unclaimed(self, fill: Event | None) -> None:
        if fill is None:
            return
        a = fill.args
        self.add(
            int(a["slot"]),
            int(a["buyer"]),
            f"a forward delivery of {int(a['energyWh'])} Wh (a fill with offer id 0 and bid id "
            "0) that no ForwardSettled claims",
            fill=_fill_evidence(fill),
        )

    def _transfer(
        self, e: Event, what: str, source: str | None, target: str | None, value: int
    ) -> None:
        """The ``Transfer`` just before ``e`` in its transaction moves ``value`` from
        ``source`` to ``target``."""
        t = self.last_transfer.pop(e.tx_hash, None)
        a = e.args
        want = {"from": source, "to": target, "value": value}
        have = (
            None
            if t is None
            else {
                "from": _account(t.args["from"]),
                "to": _account(t.args["to"]),
                "value": int(t.args["value"]),
            }
        )
        if have != want:
            self.add(
                int(a["slot"]),
                int(a["buyer"]),
                f"forward {int(a['forwardId'])}: the {what} is not a transfer of {value} ueur "
                f"from {source} to {target} in the same transaction",
                forward_id=int(a["forwardId"]),
                expected_transfer=want,
                transfer=have,
                tx_hash=e.tx_hash,
            )

    def _cleared(self, e: Event) -> None:
        a = e.args
        fid, slot, buyer = int(a["forwardId"]), int(a["slot"]), int(a["buyer"])
        energy, price = int(a["energyWh"]), int(a["priceUeurPerKWh"])
        reserved = int(a["reservedUeur"])
        if fid in self.cleared:
            self.add(
                slot,
                buyer,
                f"forward {fid} cleared twice",
                forward_id=fid,
                first=_block_log(self.cleared[fid]),
                again=_block_log(e),
            )
            return
        self.cleared[fid] = e
        tariffs = self.timeline.at(e.block_number, e.log_index)
        if tariffs is None:
            self.add(slot, buyer, f"forward {fid} cleared with no tariffs in force", forward_id=fid)
        else:
            fee = tariffs.grid_fee_ueur_per_kWh
            want = energy * price // 1000 + energy * fee // 1000
            if reserved != want:
                self.add(
                    slot,
                    buyer,
                    f"forward {fid} reserved {reserved} ueur; Wh x (price, grid fee at clearing) "
                    f"/ 1000 = {want} ueur",
                    forward_id=fid,
                    energy_Wh=energy,
                    price_ueur_per_kWh=price,
                    grid_fee_ueur_per_kWh=fee,
                    reserved_ueur=reserved,
                    expected_reserved_ueur=want,
                )
        self._transfer(e, "reservation", self.account_of.get(buyer), self.escrow, reserved)

    def _settled(self, e: Event) -> None:
        a = e.args
        fid, slot, buyer = int(a["forwardId"]), int(a["slot"]), int(a["buyer"])
        delivered, shortfall = int(a["deliveredWh"]), int(a["shortfallWh"])
        cost, fee, refund = int(a["costUeur"]), int(a["feeUeur"]), int(a["refundUeur"])
        fill = self.delivery.pop(e.tx_hash, None)
        settled = {
            "forward_id": fid,
            "delivered_Wh": delivered,
            "shortfall_Wh": shortfall,
            "cost_ueur": cost,
            "fee_ueur": fee,
            "refund_ueur": refund,
            "tx_hash": e.tx_hash,
        }
        if fid in self.settled:
            self.add(
                slot,
                buyer,
                f"forward {fid} settled twice",
                **settled,
                first=_block_log(self.settled[fid]),
                again=_block_log(e),
            )
            self._unclaimed(fill)
            return
        cleared = self.cleared.get(fid)
        if cleared is None:
            self.add(slot, buyer, f"forward {fid} settled but never cleared", **settled)
            self._unclaimed(fill)
            return
        self.settled[fid] = e
        c = cleared.args
        names = {
            k: (int(c[k]), int(a[k])) for k in ("slot", "seller", "buyer") if int(c[k]) != int(a[k])
        }
        if names:
            self.add(
                slot,
                buyer,
                f"forward {fid} settled for another position than it cleared "
                f"({', '.join(sorted(names))})",
                **settled,
                cleared_vs_settled=names,
            )
        energy, price = int(c["energyWh"]), int(c["priceUeurPerKWh"])
        reserved = int(c["reservedUeur"])
        position = {**settled, "energy_Wh": energy, "price_ueur_per_kWh": price}
        if delivered + shortfall != energy:
            self.add(
                slot,
                buyer,
                f"forward {fid}: delivered {delivered} + short {shortfall} Wh != the "
                f"{energy} Wh cleared",
                **position,
            )
        if cost != delivered * price // 1000:
            self.add(
                slot,
                buyer,
                f"forward {fid}: cost {cost} ueur != delivered Wh x price / 1000 = "
                f"{delivered * price // 1000} ueur",
                **position,
            )
        if cost + fee > reserved:
            self.add(
                slot,
                buyer,
                f"forward {fid}: cost + fee {cost + fee} ueur exceed the {reserved} ueur reserved",
                **position,
                reserved_ueur=reserved,
            )
        if refund != reserved - cost - fee:
            self.add(
                slot,
                buyer,
                f"forward {fid}: refund {refund} ueur != reserved - cost - fee = "
                f"{reserved - cost - fee} ueur",
                **position,
                reserved_ueur=reserved,
            )
        self._transfer(e, "release", self.escrow, self.account_of.get(buyer), reserved)
        self._delivery(e, fill, price)

    def _delivery(self, e: Event, fill: Event | None, price: int) -> None:
        """The ``FillSettled`` that delivers a settled position, if it delivered anything."""
        a = e.args
        fid, slot, buyer = int(a["forwardId"]), int(a["slot"]), int(a["buyer"])
        delivered = int(a["deliveredWh"])
        if delivered == 0:
            self._unclaimed(fill)
            return
        want = {
            "slot": slot,
            "seller": int(a["seller"]),
            "buyer": buyer,
            "energyWh": delivered,
            "priceUeurPerKWh": price,
            "costUeur": int(a["costUeur"]),
            "feeUeur": int(a["feeUeur"]),
        }
        if fill is None:
            self.add(
                slot,
                buyer,
                f"forward {fid} delivered {delivered} Wh without its fill (offer id 0, bid id 0) "
                "in the same transaction",
                forward_id=fid,
                expected_fill=want,
                tx_hash=e.tx_hash,
            )
            return
        wrong = sorted(k for k, v in want.items() if int(fill.args[k]) != v)
        if wrong:
            self.add(
                slot,
                buyer,
                f"forward {fid}: its delivery fill differs from the position ({', '.join(wrong)})",
                forward_id=fid,
                expected_fill=want,
                fill=_fill_evidence(fill),
            )

    def _escrow(self) -> None:
        open_ids = sorted(set(self.cleared) - set(self.settled))
        reserved = sum(int(self.cleared[f].args["reservedUeur"]) for f in open_ids)
        have = self.inputs.balances.get(self.escrow, 0)
        # Anyone may transfer tokens to the contract's address (a Transfer on chain, which
        # the money check counts): they stay there for good, beside the reservations, and
        # are no reason for the escrow to fail the audit.
        into = sum(
            int(e.args["value"])
            for e in self.inputs.named("Transfer")
            if checksum(e.args["to"]) == self.escrow
        )
        stray = into - sum(int(e.args["reservedUeur"]) for e in self.cleared.values())
        if have != reserved + max(stray, 0):
            self.add(
                None,
                None,
                f"the escrow ({self.escrow}) holds {have} ueur; the {len(open_ids)} open "
                f"forward(s) reserved {reserved} ueur"
                + (f", and {stray} ueur came in outside them" if stray > 0 else ""),
                escrow_ueur=have,
                reserved_open_ueur=reserved,
                stray_ueur=max(stray, 0),
                open_forwards=open_ids,
            )

    def _sealed_open(self) -> None:
        sealed = {int(e.args["slot"]): e.block_number for e in self.inputs.named("SlotSealed")}
        for fid, e in sorted(self.cleared.items()):
            slot = int(e.args["slot"])
            if fid not in self.settled and slot in sealed:
                self.add(
                    slot,
                    int(e.args["buyer"]),
                    f"forward of slot {slot} neither delivered nor settled (forward {fid}), though "
                    f"the chain sealed the slot at block {sealed[slot]}",
                    forward_id=fid,
                    reserved_ueur=int(e.args["reservedUeur"]),
                    sealed_block=sealed[slot],
                )


def _block_log(e: Event) -> dict[str, Any]:
    return {"block": e.block_number, "log_index": e.log_index, "tx_hash": e.tx_hash}


def _fill_evidence(fill: Event) -> dict[str, Any]:
    return {**{k: int(v) for k, v in fill.args.items()}, **_block_log(fill)}


def check_forwards(inputs: AuditInputs) -> list[Finding]:
    return _Book(inputs).run()
