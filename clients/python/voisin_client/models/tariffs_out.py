from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="TariffsOut")


@_attrs_define
class TariffsOut:
    """The tariffs every local price is bounded by (micro-euro per kWh).

    Attributes:
        feed_in_ueur_per_k_wh (int): What the grid pays for exported energy: the floor.
        retail_ueur_per_k_wh (int): What the grid charges for imported energy: the cap.
        grid_fee_ueur_per_k_wh (int): Paid by the buyer of a local kWh to the grid operator.
        current_slot (int): The slot now (unix_seconds // 900).
    """

    feed_in_ueur_per_k_wh: int
    retail_ueur_per_k_wh: int
    grid_fee_ueur_per_k_wh: int
    current_slot: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        feed_in_ueur_per_k_wh = self.feed_in_ueur_per_k_wh

        retail_ueur_per_k_wh = self.retail_ueur_per_k_wh

        grid_fee_ueur_per_k_wh = self.grid_fee_ueur_per_k_wh

        current_slot = self.current_slot

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "feed_in_ueur_per_kWh": feed_in_ueur_per_k_wh,
                "retail_ueur_per_kWh": retail_ueur_per_k_wh,
                "grid_fee_ueur_per_kWh": grid_fee_ueur_per_k_wh,
                "current_slot": current_slot,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        feed_in_ueur_per_k_wh = d.pop("feed_in_ueur_per_kWh")

        retail_ueur_per_k_wh = d.pop("retail_ueur_per_kWh")

        grid_fee_ueur_per_k_wh = d.pop("grid_fee_ueur_per_kWh")

        current_slot = d.pop("current_slot")

        tariffs_out = cls(
            feed_in_ueur_per_k_wh=feed_in_ueur_per_k_wh,
            retail_ueur_per_k_wh=retail_ueur_per_k_wh,
            grid_fee_ueur_per_k_wh=grid_fee_ueur_per_k_wh,
            current_slot=current_slot,
        )

        tariffs_out.additional_properties = d
        return tariffs_out

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
