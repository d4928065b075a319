from enum import StrEnum


class OrderOutSide(StrEnum):
    BID = "bid"
    OFFER = "offer"

    def __str__(self) -> str:
        return str(self.value)
