from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.api_key_in_scopes_item import ApiKeyInScopesItem
from ..types import UNSET, Unset

T = TypeVar("T", bound="ApiKeyIn")


@_attrs_define
class ApiKeyIn:
    """A key to issue: what the app is called, what it may read, and from which browser
    origins (none: the app calls from a server, never from a page).

        Attributes:
            name (str): The app's name, as households see it on their page.
            scopes (list[ApiKeyInScopesItem]):
            origins (list[str] | Unset): Browser origins (scheme://host[:port]) answered with CORS headers.
            rate_per_s (int | None | Unset): Requests per second after the burst; default VOISIN_API_KEY_RATE_PER_S.
            burst (int | None | Unset): Requests the key may make at once; default VOISIN_API_KEY_BURST.
    """

    name: str
    scopes: list[ApiKeyInScopesItem]
    origins: list[str] | Unset = UNSET
    rate_per_s: int | None | Unset = UNSET
    burst: int | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        scopes = []
        for scopes_item_data in self.scopes:
            scopes_item = scopes_item_data.value
            scopes.append(scopes_item)

        origins: list[str] | Unset = UNSET
        if not isinstance(self.origins, Unset):
            origins = self.origins

        rate_per_s: int | None | Unset
        if isinstance(self.rate_per_s, Unset):
            rate_per_s = UNSET
        else:
            rate_per_s = self.rate_per_s

        burst: int | None | Unset
        if isinstance(self.burst, Unset):
            burst = UNSET
        else:
            burst = self.burst

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
                "scopes": scopes,
            }
        )
        if origins is not UNSET:
            field_dict["origins"] = origins
        if rate_per_s is not UNSET:
            field_dict["rate_per_s"] = rate_per_s
        if burst is not UNSET:
            field_dict["burst"] = burst

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        name = d.pop("name")

        scopes = []
        _scopes = d.pop("scopes")
        for scopes_item_data in _scopes:
            scopes_item = ApiKeyInScopesItem(scopes_item_data)

            scopes.append(scopes_item)

        origins = cast(list[str], d.pop("origins", UNSET))

        def _parse_rate_per_s(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        rate_per_s = _parse_rate_per_s(d.pop("rate_per_s", UNSET))

        def _parse_burst(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        burst = _parse_burst(d.pop("burst", UNSET))

        api_key_in = cls(
            name=name,
            scopes=scopes,
            origins=origins,
            rate_per_s=rate_per_s,
            burst=burst,
        )

        return api_key_in
