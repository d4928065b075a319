from enum import StrEnum


class WebhookInEventTypesItem(StrEnum):
    AUDIT_FAILED = "audit_failed"
    HOUSEHOLD_DEACTIVATED = "household_deactivated"
    HOUSEHOLD_REGISTERED = "household_registered"
    SLOT_SETTLED = "slot_settled"
    TOPUP = "topup"
    TRADE_SETTLED = "trade_settled"

    def __str__(self) -> str:
        return str(self.value)
