from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="ApiKeyOut")


@_attrs_define
class ApiKeyOut:
    """A key as listed: never its secret.

    Attributes:
        id (int):
        name (str):
        prefix (str): The key's first characters, to tell keys apart.
        scopes (list[str]):
        origins (list[str]):
        rate_per_s (int | None):
        burst (int | None):
        created_at (datetime.datetime):
        revoked_at (datetime.datetime | None):
    """

    id: int
    name: str
    prefix: str
    scopes: list[str]
    origins: list[str]
    rate_per_s: int | None
    burst: int | None
    created_at: datetime.datetime
    revoked_at: datetime.datetime | None
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        name = self.name

        prefix = self.prefix

        scopes = self.scopes

        origins = self.origins

        rate_per_s: int | None
        rate_per_s = self.rate_per_s

        burst: int | None
        burst = self.burst

        created_at = self.created_at.isoformat()

        revoked_at: None | str
        if isinstance(self.revoked_at, datetime.datetime):
            revoked_at = self.revoked_at.isoformat()
        else:
            revoked_at = self.revoked_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "name": name,
                "prefix": prefix,
                "scopes": scopes,
                "origins": origins,
                "rate_per_s": rate_per_s,
                "burst": burst,
                "created_at": created_at,
                "revoked_at": revoked_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = d.pop("id")

        name = d.pop("name")

        prefix = d.pop("prefix")

        scopes = cast(list[str], d.pop("scopes"))

        origins = cast(list[str], d.pop("origins"))

        def _parse_rate_per_s(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        rate_per_s = _parse_rate_per_s(d.pop("rate_per_s"))

        def _parse_burst(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        burst = _parse_burst(d.pop("burst"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        def _parse_revoked_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                revoked_at_type_0 = datetime.datetime.fromisoformat(data)

                return revoked_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        revoked_at = _parse_revoked_at(d.pop("revoked_at"))

        api_key_out = cls(
            id=id,
            name=name,
            prefix=prefix,
            scopes=scopes,
            origins=origins,
            rate_per_s=rate_per_s,
            burst=burst,
            created_at=created_at,
            revoked_at=revoked_at,
        )

        api_key_out.additional_properties = d
        return api_key_out

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
