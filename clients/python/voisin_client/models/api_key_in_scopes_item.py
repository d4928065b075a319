from enum import StrEnum


class ApiKeyInScopesItem(StrEnum):
    HOUSEHOLDREAD = "household:read"
    PUBLICREAD = "public:read"

    def __str__(self) -> str:
        return str(self.value)
