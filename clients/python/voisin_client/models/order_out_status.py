from enum import StrEnum


class OrderOutStatus(StrEnum):
    CANCELLED = "cancelled"
    OPEN = "open"
    QUEUED = "queued"
    REJECTED = "rejected"

    def __str__(self) -> str:
        return str(self.value)
