from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="OrderIn")


@_attrs_define
class OrderIn:
    """
    Attributes:
        price_limit_ueur_per_k_wh (int):
        first_slot (int):
        last_slot (int | None | Unset): Last slot (inclusive); omit for a standing order.
        max_wh_per_slot (int | None | Unset):
    """

    price_limit_ueur_per_k_wh: int
    first_slot: int
    last_slot: int | None | Unset = UNSET
    max_wh_per_slot: int | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        price_limit_ueur_per_k_wh = self.price_limit_ueur_per_k_wh

        first_slot = self.first_slot

        last_slot: int | None | Unset
        if isinstance(self.last_slot, Unset):
            last_slot = UNSET
        else:
            last_slot = self.last_slot

        max_wh_per_slot: int | None | Unset
        if isinstance(self.max_wh_per_slot, Unset):
            max_wh_per_slot = UNSET
        else:
            max_wh_per_slot = self.max_wh_per_slot

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "price_limit_ueur_per_kWh": price_limit_ueur_per_k_wh,
                "first_slot": first_slot,
            }
        )
        if last_slot is not UNSET:
            field_dict["last_slot"] = last_slot
        if max_wh_per_slot is not UNSET:
            field_dict["max_Wh_per_slot"] = max_wh_per_slot

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        price_limit_ueur_per_k_wh = d.pop("price_limit_ueur_per_kWh")

        first_slot = d.pop("first_slot")

        def _parse_last_slot(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        last_slot = _parse_last_slot(d.pop("last_slot", UNSET))

        def _parse_max_wh_per_slot(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_wh_per_slot = _parse_max_wh_per_slot(d.pop("max_Wh_per_slot", UNSET))

        order_in = cls(
            price_limit_ueur_per_k_wh=price_limit_ueur_per_k_wh,
            first_slot=first_slot,
            last_slot=last_slot,
            max_wh_per_slot=max_wh_per_slot,
        )

        return order_in
