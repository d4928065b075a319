from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.reading_verdict import ReadingVerdict


T = TypeVar("T", bound="ReadingsAccepted")


@_attrs_define
class ReadingsAccepted:
    """
    Attributes:
        accepted (int):
        duplicates (int):
        rejected (int):
        results (list[ReadingVerdict]):
        flags (list[str] | Unset): Flags of the accepted readings (gap, late).
    """

    accepted: int
    duplicates: int
    rejected: int
    results: list[ReadingVerdict]
    flags: list[str] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        accepted = self.accepted

        duplicates = self.duplicates

        rejected = self.rejected

        results = []
        for results_item_data in self.results:
            results_item = results_item_data.to_dict()
            results.append(results_item)

        flags: list[str] | Unset = UNSET
        if not isinstance(self.flags, Unset):
            flags = self.flags

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "accepted": accepted,
                "duplicates": duplicates,
                "rejected": rejected,
                "results": results,
            }
        )
        if flags is not UNSET:
            field_dict["flags"] = flags

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.reading_verdict import ReadingVerdict  # noqa: PLC0415

        d = dict(src_dict)
        accepted = d.pop("accepted")

        duplicates = d.pop("duplicates")

        rejected = d.pop("rejected")

        results = []
        _results = d.pop("results")
        for results_item_data in _results:
            results_item = ReadingVerdict.from_dict(results_item_data)

            results.append(results_item)

        flags = cast(list[str], d.pop("flags", UNSET))

        readings_accepted = cls(
            accepted=accepted,
            duplicates=duplicates,
            rejected=rejected,
            results=results,
            flags=flags,
        )

        readings_accepted.additional_properties = d
        return readings_accepted

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
