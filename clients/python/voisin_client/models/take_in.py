from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="TakeIn")


@_attrs_define
class TakeIn:
    """
    Attributes:
        slot (int):
        max_wh (int):
    """

    slot: int
    max_wh: int

    def to_dict(self) -> dict[str, Any]:
        slot = self.slot

        max_wh = self.max_wh

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "slot": slot,
                "max_Wh": max_wh,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        slot = d.pop("slot")

        max_wh = d.pop("max_Wh")

        take_in = cls(
            slot=slot,
            max_wh=max_wh,
        )

        return take_in
