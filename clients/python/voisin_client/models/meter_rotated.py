from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="MeterRotated")


@_attrs_define
class MeterRotated:
    """
    Attributes:
        id (int):
        meter (str):
        previous_meter (str):
        import_baseline_wh (int):
        export_baseline_wh (int):
        last_slot (int): The new meter's readings must come after this slot.
    """

    id: int
    meter: str
    previous_meter: str
    import_baseline_wh: int
    export_baseline_wh: int
    last_slot: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        meter = self.meter

        previous_meter = self.previous_meter

        import_baseline_wh = self.import_baseline_wh

        export_baseline_wh = self.export_baseline_wh

        last_slot = self.last_slot

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "meter": meter,
                "previous_meter": previous_meter,
                "import_baseline_Wh": import_baseline_wh,
                "export_baseline_Wh": export_baseline_wh,
                "last_slot": last_slot,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = d.pop("id")

        meter = d.pop("meter")

        previous_meter = d.pop("previous_meter")

        import_baseline_wh = d.pop("import_baseline_Wh")

        export_baseline_wh = d.pop("export_baseline_Wh")

        last_slot = d.pop("last_slot")

        meter_rotated = cls(
            id=id,
            meter=meter,
            previous_meter=previous_meter,
            import_baseline_wh=import_baseline_wh,
            export_baseline_wh=export_baseline_wh,
            last_slot=last_slot,
        )

        meter_rotated.additional_properties = d
        return meter_rotated

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
