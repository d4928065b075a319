from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="ErasureIn")


@_attrs_define
class ErasureIn:
    """An erasure request: ``confirm`` repeats ``erase household <id>`` word for word.

    Attributes:
        confirm (str): Exactly `erase household <id>`, the id of the household erased.
    """

    confirm: str

    def to_dict(self) -> dict[str, Any]:
        confirm = self.confirm

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "confirm": confirm,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        confirm = d.pop("confirm")

        erasure_in = cls(
            confirm=confirm,
        )

        return erasure_in
