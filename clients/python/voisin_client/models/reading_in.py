from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="ReadingIn")


@_attrs_define
class ReadingIn:
    """
    Attributes:
        meter (str):
        slot (int):
        import_wh (int):
        export_wh (int):
        v (int):
        r (str):
        s (str):
    """

    meter: str
    slot: int
    import_wh: int
    export_wh: int
    v: int
    r: str
    s: str

    def to_dict(self) -> dict[str, Any]:
        meter = self.meter

        slot = self.slot

        import_wh = self.import_wh

        export_wh = self.export_wh

        v = self.v

        r = self.r

        s = self.s

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "meter": meter,
                "slot": slot,
                "import_Wh": import_wh,
                "export_Wh": export_wh,
                "v": v,
                "r": r,
                "s": s,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        meter = d.pop("meter")

        slot = d.pop("slot")

        import_wh = d.pop("import_Wh")

        export_wh = d.pop("export_Wh")

        v = d.pop("v")

        r = d.pop("r")

        s = d.pop("s")

        reading_in = cls(
            meter=meter,
            slot=slot,
            import_wh=import_wh,
            export_wh=export_wh,
            v=v,
            r=r,
            s=s,
        )

        return reading_in
