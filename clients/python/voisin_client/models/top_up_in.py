from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="TopUpIn")


@_attrs_define
class TopUpIn:
    """
    Attributes:
        household (int):
        amount_ueur (int):
    """

    household: int
    amount_ueur: int

    def to_dict(self) -> dict[str, Any]:
        household = self.household

        amount_ueur = self.amount_ueur

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "household": household,
                "amount_ueur": amount_ueur,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        household = d.pop("household")

        amount_ueur = d.pop("amount_ueur")

        top_up_in = cls(
            household=household,
            amount_ueur=amount_ueur,
        )

        return top_up_in
