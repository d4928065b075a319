from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="HouseholdIn")


@_attrs_define
class HouseholdIn:
    """
    Attributes:
        meter (str): The meter's address (its signing key's).
        prosumer (bool): Whether the household has PV and may sell.
        name (None | str | Unset):
        import_baseline_wh (int | Unset):  Default: 0.
        export_baseline_wh (int | Unset):  Default: 0.
    """

    meter: str
    prosumer: bool
    name: None | str | Unset = UNSET
    import_baseline_wh: int | Unset = 0
    export_baseline_wh: int | Unset = 0

    def to_dict(self) -> dict[str, Any]:
        meter = self.meter

        prosumer = self.prosumer

        name: None | str | Unset
        if isinstance(self.name, Unset):
            name = UNSET
        else:
            name = self.name

        import_baseline_wh = self.import_baseline_wh

        export_baseline_wh = self.export_baseline_wh

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "meter": meter,
                "prosumer": prosumer,
            }
        )
        if name is not UNSET:
            field_dict["name"] = name
        if import_baseline_wh is not UNSET:
            field_dict["import_baseline_Wh"] = import_baseline_wh
        if export_baseline_wh is not UNSET:
            field_dict["export_baseline_Wh"] = export_baseline_wh

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        meter = d.pop("meter")

        prosumer = d.pop("prosumer")

        def _parse_name(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        name = _parse_name(d.pop("name", UNSET))

        import_baseline_wh = d.pop("import_baseline_Wh", UNSET)

        export_baseline_wh = d.pop("export_baseline_Wh", UNSET)

        household_in = cls(
            meter=meter,
            prosumer=prosumer,
            name=name,
            import_baseline_wh=import_baseline_wh,
            export_baseline_wh=export_baseline_wh,
        )

        return household_in
