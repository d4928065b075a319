from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.finding_out_evidence import FindingOutEvidence


T = TypeVar("T", bound="FindingOut")


@_attrs_define
class FindingOut:
    """
    Attributes:
        check (str):
        severity (str):
        slot (int | None):
        household (int | None):
        message (str):
        evidence (FindingOutEvidence):
    """

    check: str
    severity: str
    slot: int | None
    household: int | None
    message: str
    evidence: FindingOutEvidence
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        check = self.check

        severity = self.severity

        slot: int | None
        slot = self.slot

        household: int | None
        household = self.household

        message = self.message

        evidence = self.evidence.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "check": check,
                "severity": severity,
                "slot": slot,
                "household": household,
                "message": message,
                "evidence": evidence,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.finding_out_evidence import FindingOutEvidence  # noqa: PLC0415

        d = dict(src_dict)
        check = d.pop("check")

        severity = d.pop("severity")

        def _parse_slot(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        slot = _parse_slot(d.pop("slot"))

        def _parse_household(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        household = _parse_household(d.pop("household"))

        message = d.pop("message")

        evidence = FindingOutEvidence.from_dict(d.pop("evidence"))

        finding_out = cls(
            check=check,
            severity=severity,
            slot=slot,
            household=household,
            message=message,
            evidence=evidence,
        )

        finding_out.additional_properties = d
        return finding_out

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
