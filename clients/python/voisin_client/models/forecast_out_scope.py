from enum import StrEnum


class ForecastOutScope(StrEnum):
    HOUSEHOLD = "household"
    NEIGHBOURHOOD = "neighbourhood"

    def __str__(self) -> str:
        return str(self.value)
