from enum import StrEnum


class ReadingVerdictStatus(StrEnum):
    ACCEPTED = "accepted"
    CONFLICT = "conflict"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"

    def __str__(self) -> str:
        return str(self.value)
