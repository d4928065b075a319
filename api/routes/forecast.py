"""``GET /forecast`` (anyone: the neighbourhood's aggregate) and
``GET /households/{household}/forecast`` (the household itself, the operator, or an app the
household consented to): expected import, export and net position per slot and per hour, with
a suggested price per hour (:mod:`api.forecasts`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.auth import Caller
from api.deps import Svc, problems
from api.errors import ApiError, forbidden, not_found
from api.forecasts import (
    AGGREGATE_MIN_HOUSEHOLDS,
    MAX_HOURS,
    MODEL,
    IssuedForecast,
    NotEnoughHistory,
    Series,
    hours_ahead,
)
from api.models import ApiHousehold
from api.schemas import HouseholdPath
from api.services import Services, slot_now
from api.web import views
from ledger.localtime import slot_iso

router = APIRouter(tags=["forecast"])


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
    area = issued.neighbourhood()
    if area.households < AGGREGATE_MIN_HOUSEHOLDS:
        raise ApiError(
            409,
            "too_few_households",
            f"the neighbourhood's forecast is published once {AGGREGATE_MIN_HOUSEHOLDS} "
            f"households have readings; {area.households} have",
        )
    return _answer(services, issued, None, area, hours)


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
    with Session(services.engine) as session:
        if session.get(ApiHousehold, household) is None:
            raise not_found("unknown_household", f"household {household} is not registered")
    issued = _issued(services)
    try:
        own = issued.household(household)
    except NotEnoughHistory as exc:
        raise ApiError(409, "not_enough_history", str(exc)) from exc
    if own is None:
        raise ApiError(
            409,
            "household_inactive",
            f"household {household} is deactivated: it imports and exports no more, so it has "
            "no forecast",
        )
    return _answer(services, issued, household, own, hours)


def _issued(services: Services) -> IssuedForecast:
    try:
        return services.forecasts.latest(slot_now())
    except NotEnoughHistory as exc:
        raise ApiError(409, "not_enough_history", str(exc)) from exc


def _answer(
    services: Services, issued: IssuedForecast, household: int | None, series: Series, hours: int
) -> ForecastOut:
    tz = services.settings.timezone
    n = hours * 4
    first = issued.issue_slot + 1
    imports, exports = series.import_Wh[:n], series.export_Wh[:n]
    # The tariffs in force as the mirror holds them: a read, never a wait on the chain's lock.
    tariffs = views.band(services.engine, services.tariffs_at_deploy).tariffs
    ahead = hours_ahead(first, series, issued.pricing_area(household), tariffs, n)
    return ForecastOut(
        scope="neighbourhood" if household is None else "household",
        household=household,
        households=series.households,
        issued_after_slot=issued.issue_slot,
        issued_after=slot_iso(issued.issue_slot, tz),
        model=MODEL,
        slots=[
            ForecastSlotOut(
                slot=first + k,
                starts_at=slot_iso(first + k, tz),
                import_Wh=int(imports[k]),
                export_Wh=int(exports[k]),
                net_Wh=int(exports[k] - imports[k]),
            )
            for k in range(n)
        ],
        hours=[
            ForecastHourOut(
                starts_at=slot_iso(h.first_slot, tz),
                first_slot=h.first_slot,
                import_Wh=h.import_Wh,
                export_Wh=h.export_Wh,
                net_Wh=h.net_Wh,
                suggested_price_ueur_per_kWh=h.suggested_price_ueur_per_kWh,
            )
            for h in ahead
        ],
    )
