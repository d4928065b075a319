from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.forecast_out_scope import ForecastOutScope

if TYPE_CHECKING:
    from ..models.forecast_hour_out import ForecastHourOut
    from ..models.forecast_slot_out import ForecastSlotOut


T = TypeVar("T", bound="ForecastOut")


@_attrs_define
class ForecastOut:
    """
    Attributes:
        scope (ForecastOutScope):
        household (int | None):
        households (int): households behind the figures
        issued_after_slot (int): the newest metered slot the forecast read
        issued_after (str): that slot's start, local time
        model (str):
        slots (list[ForecastSlotOut]):
        hours (list[ForecastHourOut]):
    """

    scope: ForecastOutScope
    household: int | None
    households: int
    issued_after_slot: int
    issued_after: str
    model: str
    slots: list[ForecastSlotOut]
    hours: list[ForecastHourOut]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        scope = self.scope.value

        household: int | None
        household = self.household

        households = self.households

        issued_after_slot = self.issued_after_slot

        issued_after = self.issued_after

        model = self.model

        slots = []
        for slots_item_data in self.slots:
            slots_item = slots_item_data.to_dict()
            slots.append(slots_item)

        hours = []
        for hours_item_data in self.hours:
            hours_item = hours_item_data.to_dict()
            hours.append(hours_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "scope": scope,
                "household": household,
                "households": households,
                "issued_after_slot": issued_after_slot,
                "issued_after": issued_after,
                "model": model,
                "slots": slots,
                "hours": hours,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.forecast_hour_out import ForecastHourOut  # noqa: PLC0415
        from ..models.forecast_slot_out import ForecastSlotOut  # noqa: PLC0415

        d = dict(src_dict)
        scope = ForecastOutScope(d.pop("scope"))

        def _parse_household(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        household = _parse_household(d.pop("household"))

        households = d.pop("households")

        issued_after_slot = d.pop("issued_after_slot")

        issued_after = d.pop("issued_after")

        model = d.pop("model")

        slots = []
        _slots = d.pop("slots")
        for slots_item_data in _slots:
            slots_item = ForecastSlotOut.from_dict(slots_item_data)

            slots.append(slots_item)

        hours = []
        _hours = d.pop("hours")
        for hours_item_data in _hours:
            hours_item = ForecastHourOut.from_dict(hours_item_data)

            hours.append(hours_item)

        forecast_out = cls(
            scope=scope,
            household=household,
            households=households,
            issued_after_slot=issued_after_slot,
            issued_after=issued_after,
            model=model,
            slots=slots,
            hours=hours,
        )

        forecast_out.additional_properties = d
        return forecast_out

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
