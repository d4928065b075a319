from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Trade")


@_attrs_define
class Trade:
    """
    Attributes:
        slot (int):
        seller (int):
        buyer (int):
        offer_chain_id (int):
        bid_chain_id (int): 0 for a direct take
        energy_wh (int):
        price_ueur_per_k_wh (int):
        cost_ueur (int):
        fee_ueur (int):
        tx_hash (str):
    """

    slot: int
    seller: int
    buyer: int
    offer_chain_id: int
    bid_chain_id: int
    energy_wh: int
    price_ueur_per_k_wh: int
    cost_ueur: int
    fee_ueur: int
    tx_hash: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        slot = self.slot

        seller = self.seller

        buyer = self.buyer

        offer_chain_id = self.offer_chain_id

        bid_chain_id = self.bid_chain_id

        energy_wh = self.energy_wh

        price_ueur_per_k_wh = self.price_ueur_per_k_wh

        cost_ueur = self.cost_ueur

        fee_ueur = self.fee_ueur

        tx_hash = self.tx_hash

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "slot": slot,
                "seller": seller,
                "buyer": buyer,
                "offer_chain_id": offer_chain_id,
                "bid_chain_id": bid_chain_id,
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
        slot = d.pop("slot")

        seller = d.pop("seller")

        buyer = d.pop("buyer")

        offer_chain_id = d.pop("offer_chain_id")

        bid_chain_id = d.pop("bid_chain_id")

        energy_wh = d.pop("energy_Wh")

        price_ueur_per_k_wh = d.pop("price_ueur_per_kWh")

        cost_ueur = d.pop("cost_ueur")

        fee_ueur = d.pop("fee_ueur")

        tx_hash = d.pop("tx_hash")

        trade = cls(
            slot=slot,
            seller=seller,
            buyer=buyer,
            offer_chain_id=offer_chain_id,
            bid_chain_id=bid_chain_id,
            energy_wh=energy_wh,
            price_ueur_per_k_wh=price_ueur_per_k_wh,
            cost_ueur=cost_ueur,
            fee_ueur=fee_ueur,
            tx_hash=tx_hash,
        )

        trade.additional_properties = d
        return trade

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
