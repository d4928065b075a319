from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="MeterIn")


@_attrs_define
class MeterIn:
    """
    Attributes:
        meter (str): The new meter's address (its signing key's).
        import_baseline_wh (int | Unset):  Default: 0.
        export_baseline_wh (int | Unset):  Default: 0.
    """

    meter: str
    import_baseline_wh: int | Unset = 0
    export_baseline_wh: int | Unset = 0

    def to_dict(self) -> dict[str, Any]:
        meter = self.meter

        import_baseline_wh = self.import_baseline_wh

        export_baseline_wh = self.export_baseline_wh

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "meter": meter,
            }
        )
        if import_baseline_wh is not UNSET:
            field_dict["import_baseline_Wh"] = import_baseline_wh
        if export_baseline_wh is not UNSET:
            field_dict["export_baseline_Wh"] = export_baseline_wh

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        meter = d.pop("meter")

        import_baseline_wh = d.pop("import_baseline_Wh", UNSET)

        export_baseline_wh = d.pop("export_baseline_Wh", UNSET)

        meter_in = cls(
            meter=meter,
            import_baseline_wh=import_baseline_wh,
            export_baseline_wh=export_baseline_wh,
        )

        return meter_in
