from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="ErasureOut")


@_attrs_define
class ErasureOut:
    """A household's erasure, done.

    Attributes:
        household (int):
        erased_at (datetime.datetime): When the personal data were removed (UTC).
        requested_by (str): `household` (its own token), `operator`, or `restore`: erased after the backup a restored
            database came from, and applied again from the chain's deactivation.
        deactivated_tx (None | str): The `deactivateHousehold` transaction (null: not mirrored yet then).
        refund_ueur (int): What was left on the account (µ€), moved to the operator's account: the operator pays it back
            to the household outside Voisin.
        kept (list[str]): What Voisin keeps, and why (docs/privacy.md).
    """

    household: int
    erased_at: datetime.datetime
    requested_by: str
    deactivated_tx: None | str
    refund_ueur: int
    kept: list[str]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        household = self.household

        erased_at = self.erased_at.isoformat()

        requested_by = self.requested_by

        deactivated_tx: None | str
        deactivated_tx = self.deactivated_tx

        refund_ueur = self.refund_ueur

        kept = self.kept

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "household": household,
                "erased_at": erased_at,
                "requested_by": requested_by,
                "deactivated_tx": deactivated_tx,
                "refund_ueur": refund_ueur,
                "kept": kept,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        household = d.pop("household")

        erased_at = datetime.datetime.fromisoformat(d.pop("erased_at"))

        requested_by = d.pop("requested_by")

        def _parse_deactivated_tx(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        deactivated_tx = _parse_deactivated_tx(d.pop("deactivated_tx"))

        refund_ueur = d.pop("refund_ueur")

        kept = cast(list[str], d.pop("kept"))

        erasure_out = cls(
            household=household,
            erased_at=erased_at,
            requested_by=requested_by,
            deactivated_tx=deactivated_tx,
            refund_ueur=refund_ueur,
            kept=kept,
        )

        erasure_out.additional_properties = d
        return erasure_out

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
