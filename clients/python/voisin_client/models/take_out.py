from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="TakeOut")


@_attrs_define
class TakeOut:
    """
    Attributes:
        offer (int):
        slot (int):
        energy_wh (int):
        price_ueur_per_k_wh (int):
        cost_ueur (int):
        fee_ueur (int):
        tx_hash (str):
    """

    offer: int
    slot: int
    energy_wh: int
    price_ueur_per_k_wh: int
    cost_ueur: int
    fee_ueur: int
    tx_hash: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        offer = self.offer

        slot = self.slot

        energy_wh = self.energy_wh

        price_ueur_per_k_wh = self.price_ueur_per_k_wh

        cost_ueur = self.cost_ueur

        fee_ueur = self.fee_ueur

        tx_hash = self.tx_hash

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "offer": offer,
                "slot": slot,
                "energy_Wh": energy_wh,
                "price_ueur_per_kWh": price_ueur_per_k_wh,
                "cost_ueur": cost_ueur,
                "fee_ueur": fee_ueur,
                "tx_hash": tx_hash,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        offer = d.pop("offer")

        slot = d.pop("slot")

        energy_wh = d.pop("energy_Wh")

        price_ueur_per_k_wh = d.pop("price_ueur_per_kWh")

        cost_ueur = d.pop("cost_ueur")

        fee_ueur = d.pop("fee_ueur")

        tx_hash = d.pop("tx_hash")

        take_out = cls(
            offer=offer,
            slot=slot,
            energy_wh=energy_wh,
            price_ueur_per_k_wh=price_ueur_per_k_wh,
            cost_ueur=cost_ueur,
            fee_ueur=fee_ueur,
            tx_hash=tx_hash,
        )

        take_out.additional_properties = d
        return take_out

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
