"""Benchmark of Voisin's forecasts: accuracy over 14 days of the default street, and the time
to forecast 1,000 households every slot. Prints figures; asserts nothing.

    nice -n 10 .venv/bin/python scripts/bench_forecast.py             # speed and accuracy
    nice -n 10 .venv/bin/python scripts/bench_forecast.py --compare   # the load libraries
    nice -n 10 .venv/bin/python scripts/bench_forecast.py --overhead 3  # in voisin simulate

**Accuracy**: ``default_scenario`` (30 households, from 2026-05-04) over 14 days, with the 14
days before it as history (:func:`meter_sim.forecast.metered_with_history`). The
neighbourhood's figures are those ``voisin simulate`` reports (:func:`forecast_report`); the
household figures pool every household's day-ahead forecast (issued every hour, 1 to 96 slots
ahead) against its own seasonal-naive forecast.

**Speed**: 1,000 households of the default street (400 with PV), 16 days metered; forecasts
issued at consecutive slots of a day, 72 hours ahead each: the first of the day refits the
load model, the others only update it. Then the first slot of the next day: a refit in a
process that has refit before. Building the forecaster (set-up, once per process) loads the
load model's libraries; it is timed on its own.

``--compare`` measures the candidate load libraries on the same 30 households, day-ahead from
14 UTC midnights (each with the 14 days before it as history), each library in whatever
environment runs this script (a library that is not installed is skipped): mlforecast (the
one Voisin uses), statsforecast, skforecast and darts.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.forecast import seasonal_naive
from meter_sim.flows import simulate
from meter_sim.forecast import (
    HouseholdForecaster,
    SimulatedWeather,
    SolarGeometry,
    forecast_report,
    metered_with_history,
    pv_forecast_Wh,
)
from meter_sim.scenario import default_scenario

DAY = 96


def accuracy(days: int) -> None:
    scenario = default_scenario(30, days=days)
    window = simulate(scenario)
    started = time.perf_counter()
    report = forecast_report(scenario, window)
    took = time.perf_counter() - started
    print(f"## Accuracy: default scenario, 30 households, {days} days from {scenario.start}")
    print(f"neighbourhood: {report['issues']} issue times, evaluated in {took:.1f} s\n")
    print(
        "| quantity | horizon | n | MAE Wh | RMSE Wh | skill vs persistence "
        "| skill vs seasonal-naive |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for q in ("pv", "load", "net"):
        for horizon, f in report[q].items():
            print(
                f"| {q} | {horizon} | {f['n']} | {f['mae_Wh']} | {f['rmse_Wh']} "
                f"| {f['skill_vs_persistence']} | {f['skill_vs_seasonal_naive']} |"
            )
    households(scenario, window)


def households(scenario: Any, window: Any) -> None:
    """Day-ahead per household, pooled: the model against seasonal-naive."""
    metered = metered_with_history(scenario, window)
    weather = SimulatedWeather(scenario, window.first_slot)
    geometry = SolarGeometry.of(scenario, weather.first_slot, len(weather.kc))
    forecaster = HouseholdForecaster(scenario, metered, weather, geometry)
    w_lo = window.first_slot - metered.first_slot
    net = metered.export_Wh - metered.import_Wh
    actual = {"pv": metered.pv_Wh, "load": metered.load_Wh, "net": net}
    errors: dict[str, list[float]] = {f"{q}_{k}": [] for q in actual for k in ("model", "naive")}
    for at in range(w_lo - 1, w_lo + window.shape[1] - DAY, 4):
        fc = forecaster.forecast(metered.first_slot + at, DAY)
        made = {"pv": fc.pv_Wh, "load": fc.load_Wh, "net": fc.net_Wh}
        for q, series in actual.items():
            target = series[:, at + 1 : at + 1 + DAY]
            errors[f"{q}_model"].append(float(np.abs(made[q] - target).mean()))
            naive = seasonal_naive(series[:, : at + 1], DAY)
            errors[f"{q}_naive"].append(float(np.abs(naive - target).mean()))
    print("\nper household, day-ahead (1 to 96 slots), every hour:\n")
    print("| quantity | MAE Wh | seasonal-naive MAE Wh | skill vs seasonal-naive |")
    print("| --- | ---: | ---: | ---: |")
    for q in actual:
        model, naive = np.mean(errors[f"{q}_model"]), np.mean(errors[f"{q}_naive"])
        print(f"| {q} | {model:.1f} | {naive:.1f} | {1 - model / naive:.3f} |")


def speed(n_households: int, slots: int) -> None:
    print(f"\n## Speed: {n_households} households, {slots} consecutive slots, 72 h ahead")
    started = time.perf_counter()
    scenario = default_scenario(n_households, days=16)
    flows = simulate(scenario)
    print(f"simulating 16 days of metered history took {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    weather = SimulatedWeather(scenario, scenario.first_slot + 16 * DAY, history_days=16)
    geometry = SolarGeometry.of(scenario, weather.first_slot, len(weather.kc))
    print(f"weather and sun positions set up in {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    forecaster = HouseholdForecaster(scenario, flows, weather, geometry)
    print(
        f"the forecaster built (the load model's libraries loaded) in "
        f"{time.perf_counter() - started:.2f} s"
    )
    # The last slot of a UTC day: its forecast starts a new day, so it refits the load model;
    # the next slots are in the same UTC day and only update it.
    first_issue = (flows.first_slot + 14 * DAY) // DAY * DAY - 1
    times = []
    parts: dict[str, list[float]] = {"load": [], "pv": []}
    for k in range(slots):
        issue = first_issue + k
        t0 = time.perf_counter()
        forecaster.forecast(issue, 288)
        times.append(time.perf_counter() - t0)
        at = issue - flows.first_slot
        t0 = time.perf_counter()
        forecaster.load.forecast(flows.load_Wh[:, : at + 1], issue, 288)
        parts["load"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pv_forecast_Wh(scenario, weather.forecast(issue, 288), geometry)
        parts["pv"].append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    forecaster.forecast(first_issue + DAY, 288)  # the next day: its refit
    next_refit = time.perf_counter() - t0
    rest = np.array(times[1:])
    print(
        f"first slot of the day (refits the load model, the process's first fit): {times[0]:.2f} s"
    )
    print(f"first slot of the next day (refits again): {next_refit:.2f} s")
    print(
        f"the other {len(rest)} slots: median {np.median(rest):.3f} s, max {rest.max():.3f} s "
        f"(load update median {np.median(parts['load'][1:]):.3f} s, "
        f"PV median {np.median(parts['pv']):.3f} s, the rest is the batteries' dispatch)"
    )
    print(
        f"mean per slot over a day with one refit: "
        f"{(next_refit + np.median(rest) * (DAY - 1)) / DAY:.3f} s"
    )
    print(f"slowest slot: {max(times[0], next_refit, rest.max()):.2f} s")


# ───────────────────────────── Inside voisin simulate ─────────────────────────────

_SIMULATE = """
import contextlib, io, shutil, sys, time
started = time.perf_counter()
import meter_sim.run
from api.cli import main
if sys.argv[1] == "off":
    meter_sim.run.forecast_report_ahead = lambda *args: None
    meter_sim.run.add_forecast_report = lambda *args: None
shutil.rmtree(sys.argv[2], ignore_errors=True)
with contextlib.redirect_stdout(io.StringIO()):
    assert main(["simulate", "--out", sys.argv[2]]) == 0
print(time.perf_counter() - started)
"""


def overhead(pairs: int) -> None:
    """``voisin simulate`` (its defaults) with the forecast entry and with it switched off,
    alternately, each in a fresh interpreter."""
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parents[1]
    times: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(pairs):
            for mode in ("on", "off"):
                done = subprocess.run(
                    [sys.executable, "-c", _SIMULATE, mode, str(Path(tmp) / mode)],
                    cwd=root,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                times[mode].append(float(done.stdout.strip().splitlines()[-1]))
    print("## voisin simulate (30 households, a day) with and without the forecast entry")
    for mode, values in times.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        print(f"{mode}: {shown} s (median {np.median(values):.1f} s)")


# ───────────────────────────── The load libraries ─────────────────────────────


def compare(midnights: int, skip: set[str]) -> None:
    warnings.filterwarnings("ignore")
    import pandas as pd

    scenario = default_scenario(30, days=29, start=date(2026, 4, 20))
    y = simulate(scenario).load_Wh.astype(np.float64)
    n_h, n_t = y.shape
    stamps = pd.date_range(scenario.start_utc, periods=n_t, freq="15min").tz_localize(None)
    print(
        f"## Load libraries: 30 households, day-ahead from {midnights} UTC midnights, "
        "14 days of history each"
    )
    print("| model | MAE Wh | skill vs seasonal-naive | s per fit and forecast (30 households) |")
    print("| --- | ---: | ---: | ---: |")
    baseline: list[float] = []

    def run(name: str, model: Any) -> None:
        errors, took = [], []
        for day in range(15, 15 + midnights):
            at = day * DAY - (scenario.first_slot % DAY)  # index of a UTC midnight
            t0 = time.perf_counter()
            try:
                made = model(at)
            except Exception as exc:  # a library's failure is a result too
                print(f"| {name} | failed: {type(exc).__name__}: {exc} | | |")
                return
            took.append(time.perf_counter() - t0)
            errors.append(float(np.abs(made - y[:, at : at + DAY]).mean()))
        if not baseline:
            baseline.append(float(np.mean(errors)))
        err = float(np.mean(errors))
        print(f"| {name} | {err:.2f} | {1 - err / baseline[0]:.3f} | {np.mean(took):.3f} |")

    run("seasonal-naive (a day earlier)", lambda at: y[:, at - DAY : at])
    run("seasonal-naive (a week earlier)", lambda at: y[:, at - 7 * DAY : at - 6 * DAY])
    run(
        "numpy: mean of the same slot over 7 days",
        lambda at: y[:, at - 7 * DAY : at].reshape(n_h, 7, DAY).mean(axis=1),
    )

    def frame(at: int) -> Any:
        """The last 14 days before ``at``, as Nixtla's long frame."""
        lo = at - 14 * DAY
        return pd.DataFrame(
            {
                "unique_id": np.repeat(np.arange(n_h), at - lo),
                "ds": np.tile(stamps[lo:at], n_h),
                "y": y[:, lo:at].ravel(),
            }
        )

    lags = [DAY * d for d in range(1, 8)]
    if _has("mlforecast"):
        from ledger.forecast import LoadForecaster

        first = scenario.first_slot

        def voisin(at: int) -> NDArray[np.float64]:
            window = y[:, at - 14 * DAY : at]
            return LoadForecaster().forecast(window, first + at - 1, DAY)

        run("mlforecast least squares, lags 1-7 days (Voisin's model)", voisin)
    if _has("statsforecast"):
        from statsforecast import StatsForecast
        from statsforecast.models import MSTL, SeasonalWindowAverage

        def stats(models: list[Any]) -> Any:
            def fit(at: int) -> NDArray[np.float64]:
                sf = StatsForecast(models=models, freq="15min", n_jobs=1)
                out = sf.forecast(df=frame(at), h=DAY)
                column = next(c for c in out.columns if c not in ("unique_id", "ds"))
                return np.asarray(out[column], dtype=np.float64).reshape(n_h, DAY)

            return fit

        run(
            "statsforecast SeasonalWindowAverage(96, 7)",
            stats([SeasonalWindowAverage(season_length=DAY, window_size=7)]),
        )
        if "mstl" not in skip:
            run("statsforecast MSTL(96, 672)", stats([MSTL(season_length=[DAY, 7 * DAY])]))
    if _has("skforecast"):
        from skforecast.recursive import ForecasterRecursiveMultiSeries
        from sklearn.linear_model import LinearRegression

        def sk(at: int) -> NDArray[np.float64]:
            lo = at - 14 * DAY
            series = pd.DataFrame(
                y[:, lo:at].T, index=pd.DatetimeIndex(stamps[lo:at], freq="15min"),
                columns=[f"h{k}" for k in range(n_h)],
            )  # fmt: skip
            model = ForecasterRecursiveMultiSeries(estimator=LinearRegression(), lags=lags)
            model.fit(series=series)
            out = model.predict(steps=DAY)
            table = out.pivot_table(index=out.index, columns="level", values="pred")
            return np.asarray(table[series.columns], dtype=np.float64).T

        run("skforecast RecursiveMultiSeries LinearRegression, lags 1-7 days", sk)
    if _has("darts"):
        from darts import TimeSeries
        from darts.models import LinearRegressionModel

        def dr(at: int) -> NDArray[np.float64]:
            lo = at - 14 * DAY
            series = [
                TimeSeries.from_times_and_values(stamps[lo:at], y[k, lo:at]) for k in range(n_h)
            ]
            # One step ahead, so that lag -96 is the same slot a day earlier for every target
            # (lags count from the first slot of the output chunk); predict then iterates.
            model = LinearRegressionModel(lags=[-lag for lag in lags], output_chunk_length=1)
            model.fit(series)
            return np.array([p.values().ravel() for p in model.predict(n=DAY, series=series)])

        run("darts LinearRegressionModel, lags 1-7 days, recursive", dr)


def _has(module: str) -> bool:
    import importlib.util

    found = importlib.util.find_spec(module) is not None
    if not found:
        print(f"| {module} | not installed here | | |")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", action="store_true", help="compare the load libraries")
    parser.add_argument(
        "--compare-days", type=int, default=14, help="UTC midnights each library forecasts from"
    )
    parser.add_argument(
        "--skip", action="append", default=[], help="a slow candidate to leave out (mstl)"
    )
    parser.add_argument("--days", type=int, default=14, help="days evaluated (accuracy)")
    parser.add_argument("--households", type=int, default=1000, help="households (speed)")
    parser.add_argument("--slots", type=int, default=12, help="consecutive slots (speed)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument(
        "--overhead", type=int, metavar="PAIRS", help="time voisin simulate with and without"
    )
    args = parser.parse_args()
    if args.compare:
        if not 1 <= args.compare_days <= 14:
            parser.error("--compare-days must be between 1 and 14")
        compare(args.compare_days, set(args.skip))
        return
    if args.overhead:
        overhead(args.overhead)
        return
    # Speed first, in a process that has not loaded the load model's libraries yet.
    if not args.skip_speed:
        speed(args.households, args.slots)
    if not args.skip_accuracy:
        accuracy(args.days)


if __name__ == "__main__":
    main()
