"""Forecasts of what each household and the neighbourhood will import and export, from what
their meters recorded: what ``GET /forecast`` and ``GET /households/{id}/forecast`` answer.

A live deployment knows each household's metered import and export per slot (the mirror's
readings), not its PV and load apart, and it has no weather source unless one is plugged in.
So the server forecasts the two metered series themselves, each with the household-load model
(:class:`ledger.forecast.LoadForecaster`: one linear regression over every household, on the
same slot 1 to 7 days earlier, refit once a UTC day, updated every slot with the latest
residual). Net position is export minus import.

- **Issue slot**: the newest slot the mirror holds readings for (at most the slot that just
  ended), so the forecast moves on as readings arrive. A slot a meter has not reported counts
  zero. With no reading for more than a day (:data:`MAX_LAG_SLOTS`), there is no forecast: its
  "next hours" would all be past.
- **History**: the :data:`ledger.forecast.load.FIT_DAYS` days before the issue slot's UTC day
  (from the first whole UTC day with readings, if that is later), read once per issue slot and
  set of active households and kept (:class:`Forecasts`). Fewer than
  :data:`ledger.forecast.load.MIN_HISTORY_DAYS` days of readings and there is no forecast
  (:class:`NotEnoughHistory`, a 409): for the neighbourhood, and for a household, of its own.
- **The neighbourhood's aggregate** sums every active household with a reading in the history
  (a deactivated or erased one imports and exports no more) and is withheld when fewer than
  :data:`MIN_HOUSEHOLDS` are behind it (as the open data is).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from ledger.audit.open_data import MIN_HOUSEHOLDS
from ledger.forecast import SLOTS_PER_DAY, ForecastError, LoadForecaster, mae, skill
from ledger.forecast.load import FIT_DAYS, MIN_HISTORY_DAYS
from ledger.market.strategies import SCARCITY_WH_PER_HOUSEHOLD, ForecastAware
from ledger.mirror.models import HouseholdRecord, ReadingRecord
from ledger.types import Tariffs

__all__ = [
    "AGGREGATE_MIN_HOUSEHOLDS",
    "MAX_HOURS",
    "MODEL",
    "Forecasts",
    "HourAhead",
    "IssuedForecast",
    "NotEnoughHistory",
    "Review",
    "Series",
    "hourly",
    "hours_ahead",
]

#: The longest forecast asked for (hours).
MAX_HOURS: Final = 72
#: The newest reading may be at most this many slots before the slot that just ended.
MAX_LAG_SLOTS: Final = SLOTS_PER_DAY
#: Fewest households behind a published aggregate.
AGGREGATE_MIN_HOUSEHOLDS: Final = MIN_HOUSEHOLDS

MODEL: Final = (
    "metered import and export, each forecast by a linear regression on the same slot 1 to 7 "
    "days earlier over every household (mlforecast), refit daily, updated every slot"
)


class NotEnoughHistory(ForecastError):
    """Too few days of readings to forecast from."""


@dataclass(frozen=True)
class IssuedForecast:
    """Every household's forecast issued after ``issue_slot``: ``import_Wh[i, k]`` and
    ``export_Wh[i, k]`` for household ``households[i]`` in slot ``issue_slot + 1 + k``."""

    issue_slot: int
    households: tuple[int, ...]
    #: Households with at least one reading in the history (the aggregate's contributors).
    metered: tuple[bool, ...]
    import_Wh: NDArray[np.int64]
    export_Wh: NDArray[np.int64]
    #: Each household's whole UTC days of readings before the issue slot's day.
    history_days: tuple[int, ...]

    def row(self, household: int) -> int | None:
        try:
            return self.households.index(household)
        except ValueError:
            return None

    def neighbourhood(self) -> Series:
        """The aggregate of every household with readings."""
        rows = np.array(self.metered, dtype=bool)
        return Series(
            int(rows.sum()), self.import_Wh[rows].sum(axis=0), self.export_Wh[rows].sum(axis=0)
        )

    def household(self, household: int) -> Series | None:
        """``household``'s own forecast; None if it is not an active household. Raises
        :class:`NotEnoughHistory` if its own readings are too few to forecast from."""
        row = self.row(household)
        if row is None:
            return None
        have = self.history_days[row]
        if have < MIN_HISTORY_DAYS:
            raise NotEnoughHistory(
                f"a forecast needs {MIN_HISTORY_DAYS} whole days of readings before today "
                f"(UTC); household {household} has {have}"
            )
        return Series(1, self.import_Wh[row], self.export_Wh[row])

    def pricing_area(self, household: int | None) -> Series:
        """What suggested prices follow: the neighbourhood, or for a household whose
        neighbourhood is too small to show, its own figures."""
        area = self.neighbourhood()
        if household is not None and area.households < AGGREGATE_MIN_HOUSEHOLDS:
            row = self.row(household)
            if row is not None:
                return Series(1, self.import_Wh[row], self.export_Wh[row])
        return area


@dataclass(frozen=True)
class Review:
    """A day-ahead forecast of the neighbourhood's net position against what was metered:
    the 96 slots after ``issue_slot``, forecast from the readings up to it."""

    issue_slot: int
    first_slot: int
    households: int
    expected_import_Wh: NDArray[np.int64]
    expected_export_Wh: NDArray[np.int64]
    metered_import_Wh: NDArray[np.int64]
    metered_export_Wh: NDArray[np.int64]
    #: Mean absolute error of the net position per slot (Wh), the model's and the
    #: seasonal-naive forecast's (each slot as it was metered the day before).
    mae_Wh: float
    seasonal_naive_mae_Wh: float
    skill_vs_seasonal_naive: float | None


@dataclass(frozen=True)
class Series:
    """Expected import and export (Wh per slot from the issue slot's next) of ``households``."""

    households: int
    import_Wh: NDArray[np.int64]
    export_Wh: NDArray[np.int64]


@dataclass(frozen=True)
class HourAhead:
    """One hour of a forecast (its slots from ``first_slot`` on; the first hour may be
    partial) and the price limit suggested for it."""

    first_slot: int
    import_Wh: int
    export_Wh: int
    suggested_price_ueur_per_kWh: int

    @property
    def net_Wh(self) -> int:
        return self.export_Wh - self.import_Wh


def hours_ahead(
    first_slot: int, series: Series, area: Series, tariffs: Tariffs, n_slots: int
) -> list[HourAhead]:
    """The hours of ``series``'s first ``n_slots`` slots (from ``first_slot``), each with a
    price limit from ``area``'s expected scarcity in that hour (the forecast-aware agents'
    rule, :class:`ledger.market.strategies.ForecastAware`): a sell limit for an hour the
    series expects a surplus, a buy limit otherwise."""
    area_net = (area.export_Wh[:n_slots] - area.import_Wh[:n_slots]).astype(np.int64)
    pricing = ForecastAware(
        expected_net_Wh=dict(hourly(first_slot, area_net)),
        scale_Wh=max(1, SCARCITY_WH_PER_HOUSEHOLD * 4 * area.households),
    )
    imports = dict(hourly(first_slot, series.import_Wh[:n_slots]))
    exports = dict(hourly(first_slot, series.export_Wh[:n_slots]))
    out = []
    for hour in sorted(imports):
        side = "offer" if exports[hour] > imports[hour] else "bid"
        out.append(
            HourAhead(
                first_slot=max(hour, first_slot),
                import_Wh=imports[hour],
                export_Wh=exports[hour],
                suggested_price_ueur_per_kWh=pricing.limit(side, hour, tariffs, 0, 1),
            )
        )
    return out


class Forecasts:
    """Forecasts for a served neighbourhood, issued once per issue slot and kept."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._model = LoadForecaster()
        self._lock = threading.Lock()
        self._issued: IssuedForecast | None = None
        self._review: Review | None = None

    def latest(self, now_slot: int) -> IssuedForecast:
        """The forecast after the newest metered slot up to ``now_slot - 1`` (72 hours of it)."""
        issue = self._newest_metered(now_slot)
        if now_slot - 1 - issue > MAX_LAG_SLOTS:
            raise NotEnoughHistory(
                f"the newest reading is of slot {issue}, more than a day before now: a forecast "
                "starts after the newest metered slot, so there is none until readings come in"
            )
        households = self._households()
        with self._lock:
            issued = self._issued
            if issued is None or (issued.issue_slot, issued.households) != (issue, households):
                issued = self._issued = self._issue(issue, households)
            return issued

    def review(self, now_slot: int) -> Review:
        """The neighbourhood's forecast made a day before the newest metered slot, against
        what was metered since, with the seasonal-naive forecast (the day before) beside it."""
        issue = self._newest_metered(now_slot) - SLOTS_PER_DAY
        with self._lock:
            if self._review is None or self._review.issue_slot != issue:
                self._review = self._reviewed(issue)
            return self._review

    def _reviewed(self, issue: int) -> Review:
        made = self._issue(issue, self._households())  # the readings up to ``issue`` only
        area = made.neighbourhood()
        first = issue + 1
        with Session(self.engine) as session:
            rows = session.exec(
                select(
                    ReadingRecord.slot,
                    func.sum(ReadingRecord.import_delta_Wh),
                    func.sum(ReadingRecord.export_delta_Wh),
                )
                .where(
                    col(ReadingRecord.slot) > issue - SLOTS_PER_DAY,
                    col(ReadingRecord.slot) <= issue + SLOTS_PER_DAY,
                )
                .group_by(col(ReadingRecord.slot))
            ).all()
        metered = np.zeros((2, 2 * SLOTS_PER_DAY), dtype=np.int64)  # import, export
        for slot, imported, exported in rows:
            metered[:, slot - (issue - SLOTS_PER_DAY + 1)] = (int(imported), int(exported))
        day_before, day = metered[:, :SLOTS_PER_DAY], metered[:, SLOTS_PER_DAY:]
        expected = area.export_Wh[:SLOTS_PER_DAY] - area.import_Wh[:SLOTS_PER_DAY]
        actual = day[1] - day[0]
        naive = day_before[1] - day_before[0]
        model_mae = mae(expected, actual)
        naive_mae = mae(naive, actual)
        return Review(
            issue_slot=issue,
            first_slot=first,
            households=area.households,
            expected_import_Wh=area.import_Wh[:SLOTS_PER_DAY],
            expected_export_Wh=area.export_Wh[:SLOTS_PER_DAY],
            metered_import_Wh=day[0],
            metered_export_Wh=day[1],
            mae_Wh=model_mae,
            seasonal_naive_mae_Wh=naive_mae,
            skill_vs_seasonal_naive=skill(model_mae, naive_mae),
        )

    def _newest_metered(self, now_slot: int) -> int:
        """The newest slot before ``now_slot`` with a reading in the mirror."""
        with Session(self.engine) as session:
            newest = session.exec(
                select(func.max(ReadingRecord.slot)).where(ReadingRecord.slot < now_slot)
            ).one()
        if newest is None:
            raise NotEnoughHistory(
                f"no reading has been recorded yet; a forecast needs {MIN_HISTORY_DAYS} days "
                "of readings"
            )
        return int(newest)

    def _households(self) -> tuple[int, ...]:
        """The active households, as the mirror holds them."""
        with Session(self.engine) as session:
            query = select(HouseholdRecord.id).where(col(HouseholdRecord.active).is_(True))
            return tuple(sorted(session.exec(query)))

    def _issue(self, issue: int, households: tuple[int, ...]) -> IssuedForecast:
        """The forecast issued after ``issue`` for ``households`` (the active ones)."""
        day_start = (issue + 1) // SLOTS_PER_DAY * SLOTS_PER_DAY
        need = day_start - MIN_HISTORY_DAYS * SLOTS_PER_DAY
        with Session(self.engine) as session:
            oldest = session.exec(select(func.min(ReadingRecord.slot))).one()
            firsts = dict(
                session.exec(
                    select(ReadingRecord.household, func.min(ReadingRecord.slot)).group_by(
                        col(ReadingRecord.household)
                    )
                ).all()
            )
            # The history starts with the first whole UTC day of readings: the slots before
            # the first reading are not zeros the model should learn from.
            first = max(
                day_start - FIT_DAYS * SLOTS_PER_DAY,
                -(-int(oldest if oldest is not None else day_start) // SLOTS_PER_DAY)
                * SLOTS_PER_DAY,
            )
            if oldest is None or first > need or not households:
                have = max(0, (day_start - first) // SLOTS_PER_DAY)
                raise NotEnoughHistory(
                    f"a forecast needs {MIN_HISTORY_DAYS} whole days of readings before today "
                    f"(UTC); this neighbourhood has {have}"
                )
            rows = session.exec(
                select(
                    ReadingRecord.household,
                    ReadingRecord.slot,
                    ReadingRecord.import_delta_Wh,
                    ReadingRecord.export_delta_Wh,
                ).where(col(ReadingRecord.slot) >= first, col(ReadingRecord.slot) <= issue)
            ).all()
        width = issue + 1 - first
        index = {h: i for i, h in enumerate(households)}
        imports = np.zeros((len(households), width))
        exports = np.zeros((len(households), width))
        seen = np.zeros(len(households), dtype=bool)
        for household, slot, imported, exported in rows:
            i = index.get(household)
            if i is None:
                continue
            imports[i, slot - first] = imported
            exports[i, slot - first] = exported
            seen[i] = True
        horizon = MAX_HOURS * 4
        return IssuedForecast(
            issue_slot=issue,
            households=households,
            metered=tuple(bool(s) for s in seen),
            import_Wh=_to_Wh(self._model.forecast(imports, issue, horizon)),
            export_Wh=_to_Wh(self._model.forecast(exports, issue, horizon)),
            history_days=tuple(_whole_days(firsts.get(h), day_start) for h in households),
        )


def _whole_days(first_slot: int | None, day_start: int) -> int:
    """The whole UTC days from the first one on or after ``first_slot`` to ``day_start``."""
    if first_slot is None:
        return 0
    first_day = -(-first_slot // SLOTS_PER_DAY) * SLOTS_PER_DAY
    return max(0, (day_start - first_day) // SLOTS_PER_DAY)


def _to_Wh(values: NDArray[np.float64]) -> NDArray[np.int64]:
    return np.rint(np.maximum(values, 0.0)).astype(np.int64)


def hourly(first_slot: int, values: NDArray[np.int64]) -> list[tuple[int, int]]:
    """``values`` (one per slot from ``first_slot``) summed per whole hour: (the hour's first
    slot, its sum). A partial hour at either end is summed as far as it goes."""
    out: dict[int, int] = {}
    for k, value in enumerate(values.tolist()):
        slot = first_slot + k
        hour = slot - slot % 4
        out[hour] = out.get(hour, 0) + int(value)
    return sorted(out.items())
