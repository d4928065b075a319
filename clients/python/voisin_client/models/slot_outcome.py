from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="SlotOutcome")


@_attrs_define
class SlotOutcome:
    """What the settlement worker decided for one slot, then what happened: the one shape of a
    slot's outcome, shared by the table below, the market and the API.

    ``status`` is ``planned`` once the fills are decided and written (before any transaction),
    then ``settled`` when every batch is on chain. Energy in Wh, money in micro-euro.
    ``surplus_Wh`` and ``deficit_Wh`` are what was left to trade when the slot was cleared
    (metered export and import minus direct takes); the unmatched parts go to and come from the
    grid.

        Attributes:
            slot (int):
            status (str):
            mechanism (str):
            households (int):
            surplus_wh (int):
            deficit_wh (int):
            matched_wh (int):
            unmatched_surplus_wh (int):
            unmatched_deficit_wh (int):
            fills (int):
            batches (int):
            clearing_price_ueur_per_k_wh (int | None | Unset):
            cost_ueur (int | Unset):  Default: 0.
            fees_ueur (int | Unset):  Default: 0.
            gas_used (int | Unset):  Default: 0.
    """

    slot: int
    status: str
    mechanism: str
    households: int
    surplus_wh: int
    deficit_wh: int
    matched_wh: int
    unmatched_surplus_wh: int
    unmatched_deficit_wh: int
    fills: int
    batches: int
    clearing_price_ueur_per_k_wh: int | None | Unset = UNSET
    cost_ueur: int | Unset = 0
    fees_ueur: int | Unset = 0
    gas_used: int | Unset = 0
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        slot = self.slot

        status = self.status

        mechanism = self.mechanism

        households = self.households

        surplus_wh = self.surplus_wh

        deficit_wh = self.deficit_wh

        matched_wh = self.matched_wh

        unmatched_surplus_wh = self.unmatched_surplus_wh

        unmatched_deficit_wh = self.unmatched_deficit_wh

        fills = self.fills

        batches = self.batches

        clearing_price_ueur_per_k_wh: int | None | Unset
        if isinstance(self.clearing_price_ueur_per_k_wh, Unset):
            clearing_price_ueur_per_k_wh = UNSET
        else:
            clearing_price_ueur_per_k_wh = self.clearing_price_ueur_per_k_wh

        cost_ueur = self.cost_ueur

        fees_ueur = self.fees_ueur

        gas_used = self.gas_used

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "slot": slot,
                "status": status,
                "mechanism": mechanism,
                "households": households,
                "surplus_Wh": surplus_wh,
                "deficit_Wh": deficit_wh,
                "matched_Wh": matched_wh,
                "unmatched_surplus_Wh": unmatched_surplus_wh,
                "unmatched_deficit_Wh": unmatched_deficit_wh,
                "fills": fills,
                "batches": batches,
            }
        )
        if clearing_price_ueur_per_k_wh is not UNSET:
            field_dict["clearing_price_ueur_per_kWh"] = clearing_price_ueur_per_k_wh
        if cost_ueur is not UNSET:
            field_dict["cost_ueur"] = cost_ueur
        if fees_ueur is not UNSET:
            field_dict["fees_ueur"] = fees_ueur
        if gas_used is not UNSET:
            field_dict["gas_used"] = gas_used

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        slot = d.pop("slot")

        status = d.pop("status")

        mechanism = d.pop("mechanism")

        households = d.pop("households")

        surplus_wh = d.pop("surplus_Wh")

        deficit_wh = d.pop("deficit_Wh")

        matched_wh = d.pop("matched_Wh")

        unmatched_surplus_wh = d.pop("unmatched_surplus_Wh")

        unmatched_deficit_wh = d.pop("unmatched_deficit_Wh")

        fills = d.pop("fills")

        batches = d.pop("batches")

        def _parse_clearing_price_ueur_per_k_wh(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        clearing_price_ueur_per_k_wh = _parse_clearing_price_ueur_per_k_wh(d.pop("clearing_price_ueur_per_kWh", UNSET))

        cost_ueur = d.pop("cost_ueur", UNSET)

        fees_ueur = d.pop("fees_ueur", UNSET)

        gas_used = d.pop("gas_used", UNSET)

        slot_outcome = cls(
            slot=slot,
            status=status,
            mechanism=mechanism,
            households=households,
            surplus_wh=surplus_wh,
            deficit_wh=deficit_wh,
            matched_wh=matched_wh,
            unmatched_surplus_wh=unmatched_surplus_wh,
            unmatched_deficit_wh=unmatched_deficit_wh,
            fills=fills,
            batches=batches,
            clearing_price_ueur_per_k_wh=clearing_price_ueur_per_k_wh,
            cost_ueur=cost_ueur,
            fees_ueur=fees_ueur,
            gas_used=gas_used,
        )

        slot_outcome.additional_properties = d
        return slot_outcome

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
