"""``GET /forecast`` (anyone: the neighbourhood's aggregate) and
``GET /households/{household}/forecast`` (the household itself, the operator, or an app the
household consented to): expected import, export and net position per slot and per hour, with
a suggested price per hour (:mod:`api.forecasts`)."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Query
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from api.auth import Caller
from api.deps import Svc, problems
from api.errors import ApiError, forbidden, not_found
from api.forecasts import (
    AGGREGATE_MIN_HOUSEHOLDS,
    MAX_HOURS,
    MODEL,
    IssuedForecast,
    NotEnoughHistory,
    hourly,
)
from api.schemas import HouseholdPath
from api.services import Services, slot_now
from ledger.localtime import slot_iso
from ledger.market.strategies import ForecastAware

router = APIRouter(tags=["forecast"])

#: Expected neighbourhood net position per household (Wh a slot) at which the suggested price
#: reaches the end of the band, as the forecast-aware agents of a simulation price.
SCARCITY_WH_PER_HOUSEHOLD = 100


class ForecastSlotOut(BaseModel):
    slot: int
    starts_at: str = Field(description="local time (the neighbourhood's time zone), ISO 8601")
    import_Wh: int
    export_Wh: int
    net_Wh: int = Field(description="export minus import: > 0 a surplus, < 0 a deficit")


class ForecastHourOut(BaseModel):
    starts_at: str = Field(description="local time (the neighbourhood's time zone), ISO 8601")
    first_slot: int
    import_Wh: int
    export_Wh: int
    net_Wh: int
    suggested_price_ueur_per_kWh: int = Field(
        description=(
            "a price limit for the hour, from the neighbourhood's expected scarcity: a sell "
            "limit where net_Wh > 0 (the surplus to sell), a buy limit otherwise"
        )
    )


class ForecastOut(BaseModel):
    scope: Literal["neighbourhood", "household"]
    household: int | None
    households: int = Field(description="households behind the figures")
    issued_after_slot: int = Field(description="the newest metered slot the forecast read")
    issued_after: str = Field(description="that slot's start, local time")
    model: str
    slots: list[ForecastSlotOut]
    hours: list[ForecastHourOut]


Hours = Annotated[int, Query(ge=1, le=MAX_HOURS, description="hours ahead (1 to 72)")]


@router.get(
    "/forecast",
    response_model=ForecastOut,
    responses=problems(409, 422),
    summary="The neighbourhood's expected import, export and net position (anyone)",
)
def neighbourhood_forecast(services: Svc, hours: Hours = 24) -> ForecastOut:
    issued = _issued(services)
    count, imports, exports = issued.neighbourhood()
    if count < AGGREGATE_MIN_HOUSEHOLDS:
        raise ApiError(
            409,
            "too_few_households",
            f"the neighbourhood's forecast is published once {AGGREGATE_MIN_HOUSEHOLDS} "
            f"households have readings; {count} have",
        )
    area = (count, imports, exports)
    return _answer(services, issued.issue_slot, None, count, imports, exports, hours, area)


@router.get(
    "/households/{household}/forecast",
    response_model=ForecastOut,
    responses=problems(401, 403, 404, 409, 422),
    summary="A household's expected import, export and net position (itself or the operator)",
)
def household_forecast(
    household: HouseholdPath, caller: Caller, services: Svc, hours: Hours = 24
) -> ForecastOut:
    if not caller.may_see(household):
        raise forbidden(f"household {household}'s data is visible to itself and the operator only")
    issued = _issued(services)
    row = issued.row(household)
    if row is None:
        raise not_found("unknown_household", f"household {household} is not registered")
    imports, exports = issued.import_Wh[row], issued.export_Wh[row]
    area = issued.neighbourhood()
    if area[0] < AGGREGATE_MIN_HOUSEHOLDS:
        # Too few neighbours to price by without showing theirs: the household's own.
        area = (1, imports, exports)
    return _answer(services, issued.issue_slot, household, 1, imports, exports, hours, area)


def _issued(services: Services) -> IssuedForecast:
    try:
        return services.forecasts.latest(slot_now())
    except NotEnoughHistory as exc:
        raise ApiError(409, "not_enough_history", str(exc)) from exc


def _answer(
    services: Services,
    issue: int,
    household: int | None,
    count: int,
    imports: NDArray[np.int64],
    exports: NDArray[np.int64],
    hours: int,
    area: tuple[int, NDArray[np.int64], NDArray[np.int64]],
) -> ForecastOut:
    """The answer for ``hours`` of ``imports`` and ``exports``; ``area`` (households, imports,
    exports) is what the suggested prices follow."""
    tz = services.settings.timezone
    n = hours * 4
    first = issue + 1
    imports, exports = imports[:n], exports[:n]
    slots = [
        ForecastSlotOut(
            slot=first + k,
            starts_at=slot_iso(first + k, tz),
            import_Wh=int(imports[k]),
            export_Wh=int(exports[k]),
            net_Wh=int(exports[k] - imports[k]),
        )
        for k in range(n)
    ]
    # The suggested price follows the neighbourhood's expected scarcity in every hour.
    area_count, area_imports, area_exports = area
    area_net = (area_exports[:n] - area_imports[:n]).astype(np.int64)
    pricing = ForecastAware(
        expected_net_Wh=dict(hourly(first, area_net)),
        scale_Wh=max(1, SCARCITY_WH_PER_HOUSEHOLD * 4 * area_count),
    )
    tariffs = services.tariffs()
    in_hours = dict(hourly(first, imports))
    out_hours = dict(hourly(first, exports))
    hour_rows = []
    for start in sorted(in_hours):
        net = out_hours[start] - in_hours[start]
        side = "offer" if net > 0 else "bid"
        begins = max(start, first)  # the first hour may have begun before the forecast
        hour_rows.append(
            ForecastHourOut(
                starts_at=slot_iso(begins, tz),
                first_slot=begins,
                import_Wh=in_hours[start],
                export_Wh=out_hours[start],
                net_Wh=net,
                suggested_price_ueur_per_kWh=pricing.limit(side, start, tariffs, 0, 1),
            )
        )
    return ForecastOut(
        scope="neighbourhood" if household is None else "household",
        household=household,
        households=count,
        issued_after_slot=issue,
        issued_after=slot_iso(issue, tz),
        model=MODEL,
        slots=slots,
        hours=hour_rows,
    )
