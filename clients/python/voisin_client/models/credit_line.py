from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="CreditLine")


@_attrs_define
class CreditLine:
    """
    Attributes:
        slot (int):
        export_wh (int):
        sold_wh (int):
        credits_wh (int):
    """

    slot: int
    export_wh: int
    sold_wh: int
    credits_wh: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        slot = self.slot

        export_wh = self.export_wh

        sold_wh = self.sold_wh

        credits_wh = self.credits_wh

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "slot": slot,
                "export_Wh": export_wh,
                "sold_Wh": sold_wh,
                "credits_Wh": credits_wh,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        slot = d.pop("slot")

        export_wh = d.pop("export_Wh")

        sold_wh = d.pop("sold_Wh")

        credits_wh = d.pop("credits_Wh")

        credit_line = cls(
            slot=slot,
            export_wh=export_wh,
            sold_wh=sold_wh,
            credits_wh=credits_wh,
        )

        credit_line.additional_properties = d
        return credit_line

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
