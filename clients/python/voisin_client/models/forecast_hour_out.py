from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="ForecastHourOut")


@_attrs_define
class ForecastHourOut:
    """
    Attributes:
        starts_at (str): local time (the neighbourhood's time zone), ISO 8601
        first_slot (int):
        import_wh (int):
        export_wh (int):
        net_wh (int):
        suggested_price_ueur_per_k_wh (int): a price limit for the hour, from the neighbourhood's expected scarcity: a
            sell limit where net_Wh > 0 (the surplus to sell), a buy limit otherwise
    """

    starts_at: str
    first_slot: int
    import_wh: int
    export_wh: int
    net_wh: int
    suggested_price_ueur_per_k_wh: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        starts_at = self.starts_at

        first_slot = self.first_slot

        import_wh = self.import_wh

        export_wh = self.export_wh

        net_wh = self.net_wh

        suggested_price_ueur_per_k_wh = self.suggested_price_ueur_per_k_wh

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "starts_at": starts_at,
                "first_slot": first_slot,
                "import_Wh": import_wh,
                "export_Wh": export_wh,
                "net_Wh": net_wh,
                "suggested_price_ueur_per_kWh": suggested_price_ueur_per_k_wh,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        starts_at = d.pop("starts_at")

        first_slot = d.pop("first_slot")

        import_wh = d.pop("import_Wh")

        export_wh = d.pop("export_Wh")

        net_wh = d.pop("net_Wh")

        suggested_price_ueur_per_k_wh = d.pop("suggested_price_ueur_per_kWh")

        forecast_hour_out = cls(
            starts_at=starts_at,
            first_slot=first_slot,
            import_wh=import_wh,
            export_wh=export_wh,
            net_wh=net_wh,
            suggested_price_ueur_per_k_wh=suggested_price_ueur_per_k_wh,
        )

        forecast_hour_out.additional_properties = d
        return forecast_hour_out

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
