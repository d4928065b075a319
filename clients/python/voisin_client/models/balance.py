from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.credit_line import CreditLine


T = TypeVar("T", bound="Balance")


@_attrs_define
class Balance:
    """
    Attributes:
        household (int):
        balance_ueur (int): Payment token held (micro-euro).
        as_of_block (int): Last block mirrored into the database.
        credits_ (list[CreditLine]): Credits per metered slot with export.
    """

    household: int
    balance_ueur: int
    as_of_block: int
    credits_: list[CreditLine]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        household = self.household

        balance_ueur = self.balance_ueur

        as_of_block = self.as_of_block

        credits_ = []
        for credits_item_data in self.credits_:
            credits_item = credits_item_data.to_dict()
            credits_.append(credits_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "household": household,
                "balance_ueur": balance_ueur,
                "as_of_block": as_of_block,
                "credits": credits_,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.credit_line import CreditLine  # noqa: PLC0415

        d = dict(src_dict)
        household = d.pop("household")

        balance_ueur = d.pop("balance_ueur")

        as_of_block = d.pop("as_of_block")

        credits_ = []
        _credits_ = d.pop("credits")
        for credits_item_data in _credits_:
            credits_item = CreditLine.from_dict(credits_item_data)

            credits_.append(credits_item)

        balance = cls(
            household=household,
            balance_ueur=balance_ueur,
            as_of_block=as_of_block,
            credits_=credits_,
        )

        balance.additional_properties = d
        return balance

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
