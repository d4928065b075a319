from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="HouseholdCreated")


@_attrs_define
class HouseholdCreated:
    """
    Attributes:
        id (int):
        account (str): The household's account on chain (its key is held here).
        meter (str):
        prosumer (bool):
        name (None | str):
        token (str): Bearer token of the household. Shown once, stored hashed.
    """

    id: int
    account: str
    meter: str
    prosumer: bool
    name: None | str
    token: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        account = self.account

        meter = self.meter

        prosumer = self.prosumer

        name: None | str
        name = self.name

        token = self.token

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "account": account,
                "meter": meter,
                "prosumer": prosumer,
                "name": name,
                "token": token,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = d.pop("id")

        account = d.pop("account")

        meter = d.pop("meter")

        prosumer = d.pop("prosumer")

        def _parse_name(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        name = _parse_name(d.pop("name"))

        token = d.pop("token")

        household_created = cls(
            id=id,
            account=account,
            meter=meter,
            prosumer=prosumer,
            name=name,
            token=token,
        )

        household_created.additional_properties = d
        return household_created

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
