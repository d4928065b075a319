"""Money: every micro-euro accounted for, every fill priced by the rules of its slot.

- **Totals.** The households' balances plus every other holder's (the fee recipient's grid fees,
  mostly) equal the sum of the top-ups, and so does the token's total supply.
- **Per account.** Replaying the events (top-ups and transfers, then per fill the buyer pays
  cost + fee, the seller earns the cost, the fee recipient of the time earns the fee) gives
  each account's balance on chain exactly.
- **Per fill.** ``cost == Wh * price // 1000`` and ``fee == Wh * grid_fee // 1000``, and
  ``feed_in <= price`` and ``price + grid_fee <= retail``, with the tariffs **of the slot**:
  those in force when the slot's first reading was committed on chain (the slot was closed
  and metered under them). A tariff changed between metering and settlement, e.g. a grid fee
  mis-set for one slot, is flagged on that slot's fills.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

from ledger.audit.findings import ERROR, Finding
from ledger.audit.inputs import AuditInputs, checksum
from ledger.types import Tariffs

__all__ = ["TariffTimeline", "check_money"]


class TariffTimeline:
    """The tariffs in force at any (block, log index), from the ``TariffsSet`` events."""

    def __init__(self, inputs: AuditInputs) -> None:
        sets = inputs.named("TariffsSet")
        self._at = [(e.block_number, e.log_index) for e in sets]
        self._tariffs = [
            Tariffs(
                int(e.args["feedInUeurPerKWh"]),
                int(e.args["retailUeurPerKWh"]),
                int(e.args["gridFeeUeurPerKWh"]),
            )
            for e in sets
        ]
        self._slot_start: dict[int, tuple[int, int]] = {}
        for e in inputs.named("ReadingCommitted"):
            self._slot_start.setdefault(e.args["slot"], (e.block_number, e.log_index))

    def at(self, block: int, log_index: int) -> Tariffs | None:
        i = bisect.bisect_right(self._at, (block, log_index)) - 1
        return self._tariffs[i] if i >= 0 else None

    def of_slot(self, slot: int, fallback: tuple[int, int]) -> Tariffs | None:
        """The slot's tariffs: in force at its first committed reading (else at ``fallback``)."""
        return self.at(*self._slot_start.get(slot, fallback))


def check_money(inputs: AuditInputs) -> list[Finding]:
    findings: list[Finding] = []
    timeline = TariffTimeline(inputs)
    account_of: dict[int, str] = {}
    household_of: dict[str, int] = {}
    expected: dict[str, int] = defaultdict(int)
    fee_recipient: str | None = None
    top_ups = 0
    for e in inputs.events:
        a = e.args
        if e.name == "HouseholdRegistered":
            account = checksum(a["account"])
            account_of[a["household"]] = account
            household_of[account] = a["household"]
        elif e.name == "AccountRotated":
            old, new = (
                (checksum(a["oldAccount"])),
                (checksum(a["newAccount"])),
            )
            account_of[a["household"]] = new
            household_of[new] = a["household"]
            expected[new] += expected.pop(old, 0)
        elif e.name == "FeeRecipientSet":
            fee_recipient = checksum(a["recipient"])
        elif e.name == "ToppedUp":
            top_ups += int(a["amountUeur"])
        elif e.name == "Transfer":
            if int(a["from"], 16) != 0:
                expected[checksum(a["from"])] -= int(a["value"])
            if int(a["to"], 16) != 0:
                expected[checksum(a["to"])] += int(a["value"])
        elif e.name == "FillSettled":
            findings += _check_fill(e.args, timeline, (e.block_number, e.log_index), e.tx_hash)
            cost, fee = int(a["costUeur"]), int(a["feeUeur"])
            expected[account_of.get(a["buyer"], f"household {a['buyer']}")] -= cost + fee
            expected[account_of.get(a["seller"], f"household {a['seller']}")] += cost
            if fee:
                expected[fee_recipient or "no fee recipient"] += fee
    for account in sorted(set(expected) | set(inputs.balances)):
        want, have = expected.get(account, 0), inputs.balances.get(account)
        if have != want:
            findings.append(
                Finding(
                    "money",
                    ERROR,
                    None,
                    household_of.get(account),
                    f"balance of {account} is {have} ueur on chain; the events imply {want} ueur",
                    {"account": account, "chain_balance_ueur": have, "replayed_ueur": want},
                )
            )
    households = sum(v for k, v in inputs.balances.items() if k in household_of)
    others = sum(v for k, v in inputs.balances.items() if k not in household_of)
    if households + others != top_ups or inputs.total_supply_ueur != top_ups:
        findings.append(
            Finding(
                "money",
                ERROR,
                None,
                None,
                f"balances {households} + fees and other holders {others} ueur, total supply "
                f"{inputs.total_supply_ueur} ueur, top-ups {top_ups} ueur: must all be equal",
                {
                    "household_balances_ueur": households,
                    "fees_and_other_holders_ueur": others,
                    "total_supply_ueur": inputs.total_supply_ueur,
                    "top_ups_ueur": top_ups,
                },
            )
        )
    return findings


def _check_fill(
    a: dict[str, object], timeline: TariffTimeline, at: tuple[int, int], tx_hash: str
) -> list[Finding]:
    slot, buyer = int(str(a["slot"])), int(str(a["buyer"]))
    energy, price = int(str(a["energyWh"])), int(str(a["priceUeurPerKWh"]))
    cost, fee = int(str(a["costUeur"])), int(str(a["feeUeur"]))
    fill = {
        "seller": int(str(a["seller"])),
        "buyer": buyer,
        "energy_Wh": energy,
        "price_ueur_per_kWh": price,
        "cost_ueur": cost,
        "fee_ueur": fee,
        "tx_hash": tx_hash,
    }
    out: list[Finding] = []

    def add(message: str, **evidence: object) -> None:
        out.append(Finding("money", ERROR, slot, buyer, message, {**fill, **evidence}))

    if cost != energy * price // 1000:
        add(f"fill cost {cost} ueur != Wh x price / 1000 = {energy * price // 1000} ueur")
    tariffs = timeline.of_slot(slot, at)
    if tariffs is None:
        add("no tariffs were in force for this slot")
        return out
    grid_fee = tariffs.grid_fee_ueur_per_kWh
    if fee != energy * grid_fee // 1000:
        charged = timeline.at(*at)
        add(
            f"fill fee {fee} ueur != Wh x the slot's grid fee / 1000 = "
            f"{energy * grid_fee // 1000} ueur",
            slot_grid_fee_ueur_per_kWh=grid_fee,
            grid_fee_at_settlement_ueur_per_kWh=None
            if charged is None
            else charged.grid_fee_ueur_per_kWh,
        )
    if not tariffs.feed_in_ueur_per_kWh <= price <= tariffs.retail_ueur_per_kWh - grid_fee:
        add(
            f"price {price} ueur/kWh outside the slot's bounds [{tariffs.feed_in_ueur_per_kWh}, "
            f"{tariffs.retail_ueur_per_kWh - grid_fee}] (feed-in, retail - grid fee)",
            feed_in_ueur_per_kWh=tariffs.feed_in_ueur_per_kWh,
            retail_ueur_per_kWh=tariffs.retail_ueur_per_kWh,
            slot_grid_fee_ueur_per_kWh=grid_fee,
        )
    return out
