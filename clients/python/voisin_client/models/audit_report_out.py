from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.audit_report_out_checks import AuditReportOutChecks
    from ..models.audit_report_out_feeder_type_0 import AuditReportOutFeederType0
    from ..models.audit_report_out_neighbourhood_item import AuditReportOutNeighbourhoodItem
    from ..models.audit_report_out_summary import AuditReportOutSummary
    from ..models.finding_out import FindingOut


T = TypeVar("T", bound="AuditReportOut")


@_attrs_define
class AuditReportOut:
    """
    Attributes:
        ok (bool):
        summary (AuditReportOutSummary):
        checks (AuditReportOutChecks):
        findings (list[FindingOut]):
        neighbourhood (list[AuditReportOutNeighbourhoodItem]):
        feeder (AuditReportOutFeederType0 | None):
    """

    ok: bool
    summary: AuditReportOutSummary
    checks: AuditReportOutChecks
    findings: list[FindingOut]
    neighbourhood: list[AuditReportOutNeighbourhoodItem]
    feeder: AuditReportOutFeederType0 | None
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.audit_report_out_feeder_type_0 import AuditReportOutFeederType0  # noqa: PLC0415

        ok = self.ok

        summary = self.summary.to_dict()

        checks = self.checks.to_dict()

        findings = []
        for findings_item_data in self.findings:
            findings_item = findings_item_data.to_dict()
            findings.append(findings_item)

        neighbourhood = []
        for neighbourhood_item_data in self.neighbourhood:
            neighbourhood_item = neighbourhood_item_data.to_dict()
            neighbourhood.append(neighbourhood_item)

        feeder: dict[str, Any] | None
        if isinstance(self.feeder, AuditReportOutFeederType0):
            feeder = self.feeder.to_dict()
        else:
            feeder = self.feeder

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "ok": ok,
                "summary": summary,
                "checks": checks,
                "findings": findings,
                "neighbourhood": neighbourhood,
                "feeder": feeder,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.audit_report_out_checks import AuditReportOutChecks  # noqa: PLC0415
        from ..models.audit_report_out_feeder_type_0 import AuditReportOutFeederType0  # noqa: PLC0415
        from ..models.audit_report_out_neighbourhood_item import AuditReportOutNeighbourhoodItem  # noqa: PLC0415
        from ..models.audit_report_out_summary import AuditReportOutSummary  # noqa: PLC0415
        from ..models.finding_out import FindingOut  # noqa: PLC0415

        d = dict(src_dict)
        ok = d.pop("ok")

        summary = AuditReportOutSummary.from_dict(d.pop("summary"))

        checks = AuditReportOutChecks.from_dict(d.pop("checks"))

        findings = []
        _findings = d.pop("findings")
        for findings_item_data in _findings:
            findings_item = FindingOut.from_dict(findings_item_data)

            findings.append(findings_item)

        neighbourhood = []
        _neighbourhood = d.pop("neighbourhood")
        for neighbourhood_item_data in _neighbourhood:
            neighbourhood_item = AuditReportOutNeighbourhoodItem.from_dict(neighbourhood_item_data)

            neighbourhood.append(neighbourhood_item)

        def _parse_feeder(data: object) -> AuditReportOutFeederType0 | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                feeder_type_0 = AuditReportOutFeederType0.from_dict(data)

                return feeder_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(AuditReportOutFeederType0 | None, data)

        feeder = _parse_feeder(d.pop("feeder"))

        audit_report_out = cls(
            ok=ok,
            summary=summary,
            checks=checks,
            findings=findings,
            neighbourhood=neighbourhood,
            feeder=feeder,
        )

        audit_report_out.additional_properties = d
        return audit_report_out

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
