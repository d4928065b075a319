"""``voisin simulate --neighbourhoods K``: a city of K neighbourhoods on one chain.

The chain is opened once (the embedded one in its node process, so that the flows' and the
plots' children forked meanwhile hold nothing of it). Each neighbourhood then runs as
``voisin simulate`` runs one, in ``OUT/neighbourhoods/<name>/``: its flows computed in a child,
its own contract deployed on the shared chain and recorded in its data dir with its mirror,
its settlement, its audit, its ``report.json`` and its page with the plots. The city's
``OUT/report.json`` sums them (:func:`meter_sim.city.city_report`).

The neighbourhoods run one after the other, so the command's memory is one neighbourhood's
working set plus what the city keeps (the chain's client and the reports).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from api.paths import absolute
from api.simulate_parts import (
    SIMULATE_START,
    keep_for_good,
    output_problem,
    prepare_mirror,
    refuse,
    run_paths,
    start_flows,
    summary,
    write_report,
)

__all__ = ["simulate_city"]


def _why_not(args: argparse.Namespace) -> str | None:
    """Which option a city run cannot take, said as the refusal."""
    k = args.neighbourhoods
    if args.scenario != "default":
        return f"--neighbourhoods {k} builds default streets: --scenario must be 'default'"
    if args.via != "direct":
        return f"--neighbourhoods {k} runs only with --via direct"
    if args.market != "real-time":
        return f"--neighbourhoods {k} runs only the real-time market (--market real-time)"
    if args.resume is not None:
        return "a city run cannot be resumed (--resume): run it again in a fresh --out"
    return None


def simulate_city(args: argparse.Namespace) -> int:
    from api.settings import Settings
    from ledger.localtime import span_label
    from meter_sim.city import city_networks, city_report, city_scenarios, scenario_summary
    from meter_sim.errors import MeterSimError
    from meter_sim.flows import check_window, check_window_is_over
    from meter_sim.plots import BackgroundPlots

    problem = _why_not(args)
    if problem:
        return refuse(problem)
    seed = 1 if args.seed is None else args.seed
    try:
        scenarios = city_scenarios(
            args.neighbourhoods,
            args.households or 30,
            args.days or 1,
            args.start or SIMULATE_START,
            seed,
        )
        check_window_is_over(scenarios[0], args.first_slot, args.slots)
    except MeterSimError as exc:
        return refuse(str(exc))
    out, data_dir = run_paths(args)
    if (data_dir / "chain").exists():
        return refuse(f"{data_dir} already holds a chain: give a fresh --data-dir")
    if (out / "neighbourhoods").exists():
        return refuse(f"{out} already holds a city's neighbourhoods: give a fresh --out")
    problem = output_problem(args, out, data_dir)
    if problem:
        return refuse(problem)
    chain_spec = args.chain or "embedded"
    from api.city import CityError, create_schemas, market_database_url, market_dir

    names = [s.name for s in scenarios]
    networks = city_networks(len(scenarios), len(scenarios[0].households), seed)
    # The city as `voisin serve --markets` serves it: each neighbourhood a market of the data
    # dir, with its feeder; with PostgreSQL one database, a schema per neighbourhood.
    city_settings = Settings().model_copy(
        update={
            "data_dir": data_dir,
            "markets": ",".join(f"{n}:{w}" for n, w in zip(names, networks, strict=True)),
        }
    )
    try:
        urls = {name: market_database_url(city_settings, name) for name in names}
    except CityError as exc:
        return refuse(str(exc))
    # The city's operator: the first neighbourhood's, on a chain of the run's own.
    operator_key = (
        scenarios[0].operator_key
        if chain_spec in ("embedded", "anvil")
        else Settings().chain_key_value()
    )
    first = scenarios[0].first_slot + args.first_slot
    count = check_window(scenarios[0].n_slots, args.first_slot, args.slots)
    tz = scenarios[0].location.tz
    print(
        f"Voisin simulate: a city of {len(scenarios)} neighbourhoods of "
        f"{len(scenarios[0].households)} households, {span_label(first, first + count - 1, tz)}, "
        f"{args.mechanism}, chain {chain_spec}; data in {data_dir}",
        file=sys.stderr,
    )
    from ledger.chain.backends import open_chain
    from ledger.errors import LedgerError
    from meter_sim.run import disk_bytes, peak_rss_bytes, run_simulation, stderr_progress

    try:
        create_schemas(city_settings)
        for name in names:
            market_dir(city_settings, name).mkdir(parents=True)
            prepare_mirror(urls[name])
    except Exception as exc:  # a database that does not answer, or one not empty
        return refuse(f"cannot prepare the neighbourhoods' databases: {exc}")
    keep_for_good(args.own_process)
    started = time.perf_counter()
    reports: list[dict[str, Any]] = []
    try:
        with open_chain(
            chain_spec, data_dir, operator_key, process=chain_spec == "embedded"
        ) as chain:
            for k, scenario in enumerate(scenarios):
                shape = scenario_summary(scenario)
                print(
                    f"[{k + 1}/{len(scenarios)}] {scenario.name}: {shape['households']} "
                    f"households, {shape['prosumers']} with PV, {shape['batteries']} "
                    f"with a battery, feeder {networks[k]}",
                    file=sys.stderr,
                )
                place = out / "neighbourhoods" / scenario.name
                place.mkdir(parents=True)
                plots = BackgroundPlots(place)
                result = run_simulation(
                    scenario,
                    args.mechanism,
                    chain_spec,
                    market_dir(city_settings, scenario.name),
                    operator_key=operator_key,
                    database_url=urls[scenario.name],
                    first_slot=args.first_slot,
                    slots=args.slots,
                    progress=stderr_progress(tz=tz),
                    before_audit=plots.start,
                    flows_ahead=start_flows(args, scenario),
                    agents=args.agents,
                    market=args.market,
                    chain=chain,
                )
                result.report["feeder_network"] = networks[k]
                write_report(result.report, place, None)
                plots.write_report_html(result)
                print(summary(result.report), file=sys.stderr)
                reports.append(result.report)
    except KeyboardInterrupt:
        print("\nvoisin simulate: stopped", file=sys.stderr)
        return 130
    except MeterSimError as exc:
        return refuse(str(exc))
    except LedgerError as exc:
        print(f"voisin simulate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    city = city_report(
        reports,
        [s.name for s in scenarios],
        wall_s=time.perf_counter() - started,
        peak_rss=peak_rss_bytes(),
    )
    # The whole data dir: the shared chain and every neighbourhood's own (which their reports
    # counted one by one).
    city["disk_bytes"] = disk_bytes(data_dir)
    try:
        path = write_report(city, out, args.json)
    except OSError as exc:
        return refuse(f"cannot write the report to {exc.filename}: {exc.strerror or exc}")
    print(f"city of {len(scenarios)} neighbourhoods:\n{summary(city)}")
    print(f"report: {path}\nneighbourhoods: {absolute(out / 'neighbourhoods')}")
    if chain_spec != "anvil":  # anvil's chain went with the node the run started
        chain_env = "" if chain_spec == "embedded" else f"VOISIN_CHAIN={chain_spec} "
        print(
            f"serve it: {chain_env}VOISIN_DATA_DIR={data_dir} voisin serve "
            f"--markets {city_settings.markets}"
        )
    return 0 if city["audit_ok"] else 1
