from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.order_out_side import OrderOutSide
from ..models.order_out_status import OrderOutStatus
from ..types import UNSET, Unset

T = TypeVar("T", bound="OrderOut")


@_attrs_define
class OrderOut:
    """
    Attributes:
        id (int):
        side (OrderOutSide):
        household (int):
        price_limit_ueur_per_k_wh (int):
        first_slot (int):
        last_slot (int | None):
        max_wh_per_slot (int | None):
        status (OrderOutStatus):
        cancel_requested (bool):
        chain_id (int | None): The order's id on chain once posted.
        source (str):
        reason (None | str | Unset):
    """

    id: int
    side: OrderOutSide
    household: int
    price_limit_ueur_per_k_wh: int
    first_slot: int
    last_slot: int | None
    max_wh_per_slot: int | None
    status: OrderOutStatus
    cancel_requested: bool
    chain_id: int | None
    source: str
    reason: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        side = self.side.value

        household = self.household

        price_limit_ueur_per_k_wh = self.price_limit_ueur_per_k_wh

        first_slot = self.first_slot

        last_slot: int | None
        last_slot = self.last_slot

        max_wh_per_slot: int | None
        max_wh_per_slot = self.max_wh_per_slot

        status = self.status.value

        cancel_requested = self.cancel_requested

        chain_id: int | None
        chain_id = self.chain_id

        source = self.source

        reason: None | str | Unset
        if isinstance(self.reason, Unset):
            reason = UNSET
        else:
            reason = self.reason

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "side": side,
                "household": household,
                "price_limit_ueur_per_kWh": price_limit_ueur_per_k_wh,
                "first_slot": first_slot,
                "last_slot": last_slot,
                "max_Wh_per_slot": max_wh_per_slot,
                "status": status,
                "cancel_requested": cancel_requested,
                "chain_id": chain_id,
                "source": source,
            }
        )
        if reason is not UNSET:
            field_dict["reason"] = reason

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = d.pop("id")

        side = OrderOutSide(d.pop("side"))

        household = d.pop("household")

        price_limit_ueur_per_k_wh = d.pop("price_limit_ueur_per_kWh")

        first_slot = d.pop("first_slot")

        def _parse_last_slot(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        last_slot = _parse_last_slot(d.pop("last_slot"))

        def _parse_max_wh_per_slot(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        max_wh_per_slot = _parse_max_wh_per_slot(d.pop("max_Wh_per_slot"))

        status = OrderOutStatus(d.pop("status"))

        cancel_requested = d.pop("cancel_requested")

        def _parse_chain_id(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        chain_id = _parse_chain_id(d.pop("chain_id"))

        source = d.pop("source")

        def _parse_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        reason = _parse_reason(d.pop("reason", UNSET))

        order_out = cls(
            id=id,
            side=side,
            household=household,
            price_limit_ueur_per_k_wh=price_limit_ueur_per_k_wh,
            first_slot=first_slot,
            last_slot=last_slot,
            max_wh_per_slot=max_wh_per_slot,
            status=status,
            cancel_requested=cancel_requested,
            chain_id=chain_id,
            source=source,
            reason=reason,
        )

        order_out.additional_properties = d
        return order_out

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
