from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="ForecastSlotOut")


@_attrs_define
class ForecastSlotOut:
    """
    Attributes:
        slot (int):
        starts_at (str): local time (the neighbourhood's time zone), ISO 8601
        import_wh (int):
        export_wh (int):
        net_wh (int): export minus import: > 0 a surplus, < 0 a deficit
    """

    slot: int
    starts_at: str
    import_wh: int
    export_wh: int
    net_wh: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        slot = self.slot

        starts_at = self.starts_at

        import_wh = self.import_wh

        export_wh = self.export_wh

        net_wh = self.net_wh

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "slot": slot,
                "starts_at": starts_at,
                "import_Wh": import_wh,
                "export_Wh": export_wh,
                "net_Wh": net_wh,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        slot = d.pop("slot")

        starts_at = d.pop("starts_at")

        import_wh = d.pop("import_Wh")

        export_wh = d.pop("export_Wh")

        net_wh = d.pop("net_Wh")

        forecast_slot_out = cls(
            slot=slot,
            starts_at=starts_at,
            import_wh=import_wh,
            export_wh=export_wh,
            net_wh=net_wh,
        )

        forecast_slot_out.additional_properties = d
        return forecast_slot_out

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
