"""The ``voisin`` command: the composition root of Voisin.

Subcommands import what they need lazily, so ``voisin --help`` stays fast. Today:
``voisin demo`` walks one small neighbourhood through readings, agents' orders, clearing,
settlement, indexing and statements on the configured chain (the embedded one by default);
``voisin serve`` runs the API service; ``voisin simulate`` runs a simulated neighbourhood end
to end and writes a report; ``voisin audit`` audits the settlements (its options and handler
live in :mod:`api.audit_cli`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.paths import SERVED_AT, absolute, unwritable_dir, unwritable_file, write_output
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

if TYPE_CHECKING:
    from meter_sim.run import RunResult
    from meter_sim.scenario import Scenario


def _demo(args: argparse.Namespace) -> int:
    from api.settings import Settings
    from ledger.demo import run_demo
    from ledger.errors import LedgerError

    settings = Settings()
    data_dir = absolute(args.data_dir) if args.data_dir else settings.data_dir
    where = "--data-dir" if args.data_dir else "VOISIN_DATA_DIR"
    problem = unwritable_dir(data_dir, where) or unwritable_file(args.json, "--json")
    if problem:
        print(f"voisin demo: {problem}", file=sys.stderr)
        return 2
    chain = args.chain or settings.chain
    database_url = settings.database_url or f"sqlite:///{data_dir / 'voisin.db'}"
    print(f"Voisin demo — data in {data_dir}")
    try:
        report = run_demo(
            chain, data_dir, database_url, settings.chain_key_value(), mechanism=args.mechanism
        )
    except LedgerError as exc:
        print(f"voisin demo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print()
    print(
        f"{'household':<22}{'export Wh':>10}{'import Wh':>10}{'sold Wh':>9}"
        f"{'bought Wh':>10}{'bill EUR':>10}{'grid-only EUR':>14}{'savings EUR':>12}"
    )
    for h in report.households:
        print(
            f"{h['name']:<22}{h['exported_Wh']:>10}{h['imported_Wh']:>10}"
            f"{h['sold_locally_Wh']:>9}{h['bought_locally_Wh']:>10}"
            f"{h['net_cost_ueur'] / 1_000_000:>10.4f}"
            f"{h['grid_only_cost_ueur'] / 1_000_000:>14.4f}"
            f"{h['savings_ueur'] / 1_000_000:>12.4f}"
        )
    print()
    print(
        f"{report.readings} signed readings, {report.fills} fills, {report.local_Wh} Wh traded "
        f"locally, {report.gas_used} gas, {report.events_indexed} events indexed"
    )
    for name, ok in report.checks.items():
        print(f"  [{'ok' if ok else 'FAILED'}] {name}")
    if args.json:
        text = json.dumps(
            {**report.__dict__, "ok": report.ok}, indent=2, sort_keys=True, default=str
        )
        problem = write_output(Path(args.json), text + "\n", "--json")
        if problem:
            print(f"voisin demo: {problem}", file=sys.stderr)
            return 2
    return 0 if report.ok else 1


#: The scenarios ``voisin simulate`` knows by name (any other must be a scenario file).
_SCENARIOS = ("default", "quartierstrom")


# ───────────────────────────── Argument types ─────────────────────────────
# Each check of one option's value lives in its type, so that argparse refuses a bad value
# before anything runs, with the command's usage and exit status 2.


def _whole_number(text: str, least: int) -> int:
    try:
        value: int | None = int(text)
    except ValueError:
        value = None
    if value is None or value < least:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of at least {least}, got {text!r}"
        )
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1: households, days, slots."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """A whole number of at least 0: a seed, a slot of the period."""
    return _whole_number(text, 0)


def iso_date(text: str) -> date:
    """A calendar date written ``YYYY-MM-DD`` (ISO 8601)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a real date written YYYY-MM-DD, got {text!r}"
        ) from None


def scenario_name(text: str) -> str:
    """A scenario ``voisin simulate`` knows by name, or a scenario file that exists."""
    if text in _SCENARIOS or Path(text).is_file():
        return text
    known = ", ".join(repr(name) for name in _SCENARIOS)
    missing = "no such file; " if text.endswith((".json", ".toml")) else ""
    raise argparse.ArgumentTypeError(
        f"unknown scenario {text!r}: {missing}use {known} or a .json/.toml scenario file"
    )


def port_number(text: str) -> int:
    """A TCP port to listen on: a whole number from 1 to 65535."""
    try:
        value: int | None = int(text)
    except ValueError:
        value = None
    if value is None or not 1 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {text!r}")
    return value


def voisin_version() -> str:
    """The installed package's version (its metadata), as ``voisin --version`` prints it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("voisin")
    except PackageNotFoundError:
        return "unknown (not installed as a package)"


# ───────────────────────────── voisin simulate ─────────────────────────────


def _simulate(args: argparse.Namespace) -> int:
    from api.settings import Settings
    from ledger.localtime import span_label
    from meter_sim.errors import MeterSimError
    from meter_sim.flows import check_window, check_window_is_over
    from meter_sim.plots import BackgroundPlots

    if getattr(args, "neighbourhoods", None) is not None:
        from api.city_cli import simulate_city

        return simulate_city(args)
    if args.resume is not None:
        try:
            args = _resumed_args(args)
        except _CannotResume as exc:
            return refuse(str(exc))
    parser: argparse.ArgumentParser = args.parser
    if args.via == "api" and args.agents != "default":
        parser.error(
            f"argument --agents: {args.agents!r} runs only with --via direct (a run through the "
            "API posts the default standing orders)"
        )
    if args.via == "api" and args.market != "real-time":
        parser.error(
            f"argument --market: {args.market!r} runs only with --via direct (a run through the "
            "API trades in the real-time market)"
        )
    if args.households is not None and args.scenario != "default":
        parser.error(
            f"argument --households: cannot change the households of {args.scenario!r} "
            "(only the default scenario takes --households)"
        )
    try:
        scenario = _scenario_of(args)
        check_window_is_over(scenario, args.first_slot, args.slots)
    except MeterSimError as exc:
        return refuse(str(exc))
    except OverflowError:  # a --start near the calendar's ends
        return refuse(f"--start {args.start}: give a date between the years 2 and 9998")
    out, data_dir = run_paths(args)
    resuming = args.resume is not None
    if resuming and not data_dir.is_dir():
        return refuse(
            f"the run's data dir {data_dir} is gone (moved or deleted): put it back there to "
            "go on, or start a new run"
        )
    if not resuming and (data_dir / "chain").exists():
        # Not an option's form but the disk's state, checked when the run starts.
        return refuse(f"{data_dir} already holds a chain: give a fresh --data-dir")
    problem = output_problem(args, out, data_dir)
    if problem:
        return refuse(problem)
    settings = Settings()
    chain = args.chain or "embedded"
    count = check_window(scenario.n_slots, args.first_slot, args.slots)
    first = scenario.first_slot + args.first_slot
    print(
        f"Voisin simulate: {'resuming ' if resuming else ''}{scenario.name}, "
        f"{len(scenario.households)} households, "
        f"{span_label(first, first + count - 1, scenario.location.tz)}, {args.mechanism}, "
        f"{args.market} market, chain {chain}; data in {data_dir}",
        file=sys.stderr,
    )
    try:
        # Before the first transaction: what the run is, so that --resume OUT can go on; and
        # its data dir, so that --resume can tell a data dir moved away from one not begun.
        data_dir.mkdir(parents=True, exist_ok=True)
        _record_run(args, out, data_dir)
    except OSError as exc:
        return refuse(f"cannot write {out / RUN_RECORD}: {exc.strerror or exc}")
    # A chain of the run's own gets the scenario's operator (run_simulation gives it to the
    # embedded one): on anvil the contract, the signatures and the gas are then the same.
    operator_key = (
        None
        if chain == "embedded"
        else scenario.operator_key
        if chain == "anvil"
        else settings.chain_key_value()
    )
    try:
        flows_ahead = start_flows(args, scenario)
    except MeterSimError as exc:
        return refuse(str(exc))
    # Only now the ledger (web3, py-evm), while the flows are computed in a child; it loads
    # before keep_for_good, so that the collector sets its objects aside with the rest.
    from api.schema import SchemaError
    from ledger.errors import LedgerError
    from meter_sim.memory import AnonPeak
    from meter_sim.run import run_simulation, stderr_progress

    if args.via == "direct":
        # Resumed too: a run stopped before this point has no mirror yet.
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            prepare_mirror(f"sqlite:///{(data_dir / 'voisin.db').resolve()}")
        except SchemaError as exc:
            return refuse(str(exc))
    keep_for_good(args.own_process)
    # The plots are drawn in a child process while the run's audit goes on in this one.
    plots = BackgroundPlots(out)
    memory = AnonPeak().start()
    try:
        if args.via == "api":
            result = _simulate_via_api(
                args, scenario, chain, operator_key, data_dir, out, plots.start
            )
        else:
            result = run_simulation(
                scenario,
                args.mechanism,
                chain,
                data_dir,
                operator_key=operator_key,
                first_slot=args.first_slot,
                slots=args.slots,
                progress=stderr_progress(tz=scenario.location.tz),
                before_audit=plots.start,
                flows_ahead=flows_ahead,
                resume=resuming,
                agents=args.agents,
                market=args.market,
            )
    except KeyboardInterrupt:
        print(
            f"\nvoisin simulate: stopped; what is settled is kept: go on with "
            f"voisin simulate --resume {out}",
            file=sys.stderr,
        )
        return 130
    except MeterSimError as exc:
        return refuse(str(exc))
    except LedgerError as exc:
        print(f"voisin simulate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        peak_anon = memory.stop()
    result.report["peak_anon_bytes"] = peak_anon
    try:
        report_path = write_report(result.report, out, args.json)
        page = plots.write_report_html(result)
        # Finished once its report and page are written: stopped before, it is resumed (its
        # slots all settled, only the audit and the report again).
        _record_finished(out)
    except OSError as exc:  # the folder checked at the start went away or turned read-only
        return refuse(f"cannot write the report to {exc.filename}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        print(
            f"\nvoisin simulate: stopped while writing the report; every slot is settled: "
            f"voisin simulate --resume {out} writes it",
            file=sys.stderr,
        )
        return 130
    print(summary(result.report))
    print(f"report: {report_path}\npage with the plots: {page}")
    return 0 if result.report["audit_ok"] else 1


#: The run's record in its output folder: the options it was started with and when it
#: started, was resumed and finished (UTC). ``--resume OUT`` reads it.
RUN_RECORD = "run.json"
#: The options a run is defined by, as run.json stores them.
_RUN_OPTIONS = (
    "scenario", "households", "days", "start", "seed", "mechanism", "via", "chain", "data_dir",
    "out", "json", "first_slot", "slots", "agents", "market",
)  # fmt: skip


class _CannotResume(Exception):
    """Why ``--resume OUT`` cannot go on (said as the command's refusal)."""


def _stored_option(name: str, value: Any) -> Any:
    """An option's value as run.json stores it: dates in ISO 8601, paths absolute."""
    if value is None:
        return None
    if name == "start":
        return value.isoformat() if isinstance(value, date) else str(value)
    if name in ("data_dir", "out", "json") or (name == "scenario" and value not in _SCENARIOS):
        return str(absolute(value))
    return value


def _record_run(args: argparse.Namespace, out: Path, data_dir: Path) -> None:
    """Write (or, resuming, update) ``OUT/run.json`` durably."""
    from datetime import UTC, datetime

    from ledger.files import write_durably

    now = datetime.now(UTC).isoformat(timespec="seconds")
    path = out / RUN_RECORD
    if args.resume is not None:
        record = json.loads(path.read_text())
        record["resumed_utc"] = [*record.get("resumed_utc", []), now]
    else:
        options = {name: _stored_option(name, getattr(args, name)) for name in _RUN_OPTIONS}
        options.update(out=str(out), data_dir=str(data_dir))
        record = {
            "command": "voisin simulate",
            "options": options,
            "started_utc": now,
            "resumed_utc": [],
            "finished_utc": None,
        }
    write_durably(path, json.dumps(record, indent=2) + "\n")


def _record_finished(out: Path) -> None:
    from datetime import UTC, datetime

    from ledger.files import write_durably

    path = out / RUN_RECORD
    record = json.loads(path.read_text())
    record["finished_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_durably(path, json.dumps(record, indent=2) + "\n")


def _given_options(args: argparse.Namespace) -> set[str]:
    """The options of ``voisin simulate`` that the command line gave (its defaults aside)."""
    argv = list(sys.argv[1:] if args.argv is None else args.argv)
    words = argv[argv.index("simulate") + 1 :] if "simulate" in argv else argv
    parser: argparse.ArgumentParser = args.parser
    unset = object()
    # argparse fills in a default only for what the namespace lacks.
    probe = argparse.Namespace(**{a.dest: unset for a in parser._actions})
    parser.parse_args(words, probe)
    return {name for name, value in vars(probe).items() if value is not unset}


def _resumed_args(args: argparse.Namespace) -> argparse.Namespace:
    """The options of the run in ``--resume OUT``; the options given beside ``--resume`` must
    be the run's own."""
    out = absolute(args.resume)
    path = out / RUN_RECORD
    if not path.is_file():
        raise _CannotResume(f"{out} holds no run to resume (no {RUN_RECORD})")
    try:
        record = json.loads(path.read_text())
        # A run recorded before --agents or --market existed ran the default agents in the
        # real-time market.
        options = {"agents": "default", "market": "real-time", **record["options"]}
        stored = {name: options[name] for name in _RUN_OPTIONS}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _CannotResume(f"{path} is not a run record ({exc})") from None
    if record.get("finished_utc"):
        raise _CannotResume(
            f"the run in {out} finished at {record['finished_utc']} (UTC): its report is "
            f"{out / 'report.json'}; start a new run with another --out"
        )
    if stored["via"] != "direct":
        raise _CannotResume(
            f"the run in {out} went through the API (--via api), which cannot be resumed: "
            "start it again"
        )
    clashes = [
        f"--{name.replace('_', '-')} {_stored_option(name, getattr(args, name))} (the run "
        f"was started with {stored[name]})"
        for name in sorted(_given_options(args) & set(_RUN_OPTIONS))
        if _stored_option(name, getattr(args, name)) != stored[name]
    ]
    if clashes:
        raise _CannotResume(
            f"--resume {out} goes on with the run's own options; these differ: "
            + "; ".join(clashes)
        )
    resumed = argparse.Namespace(**vars(args))
    for name, value in stored.items():
        setattr(resumed, name, date.fromisoformat(value) if name == "start" and value else value)
    resumed.resume = str(out)
    return resumed


def _scenario_of(args: argparse.Namespace) -> Scenario:
    """The scenario the options name, with their days, seed and start (a file's own hold
    unless given); raises :class:`meter_sim.errors.MeterSimError` for a bad scenario."""
    import dataclasses

    from meter_sim import default_scenario, load_scenario, quartierstrom_scenario

    seed = 1 if args.seed is None else args.seed
    if args.scenario == "default":
        return default_scenario(
            args.households or 30, args.days or 1, args.start or SIMULATE_START, seed
        )
    if args.scenario == "quartierstrom":
        scenario = quartierstrom_scenario(seed=seed)
    else:
        scenario = load_scenario(args.scenario)
    return dataclasses.replace(
        scenario,
        days=args.days or scenario.days,
        seed=scenario.seed if args.seed is None else args.seed,
        start=args.start or scenario.start,
    )


def _simulate_via_api(
    args: argparse.Namespace,
    scenario: Scenario,
    chain: str,
    operator_key: str | None,
    data_dir: Path,
    out: Path,
    before_audit: Callable[[RunResult], object],
) -> RunResult:
    """Start ``voisin serve`` on loopback over ``data_dir`` and run the scenario through it."""
    import secrets

    from api.process import ServeProcess, ServerStartError
    from meter_sim.run import SimulationError, stderr_progress
    from meter_sim.via_api import run_via_api

    token = secrets.token_urlsafe(32)
    env = {
        "VOISIN_OPERATOR_TOKEN": token,
        "VOISIN_ENVIRONMENT": "development",
        "VOISIN_AUTO_SETTLE": "false",
        "VOISIN_MECHANISM": args.mechanism,
        "VOISIN_CHAIN": chain,
    }
    if operator_key:
        env["VOISIN_CHAIN_KEY"] = operator_key
    server = ServeProcess(data_dir, env, log_path=out / "serve.log", stop_with_parent=True)
    print(f"starting voisin serve on {server.base_url} (log: {server.log_path})", file=sys.stderr)
    try:
        server.start()
    except ServerStartError as exc:
        raise SimulationError(str(exc)) from exc
    try:
        return run_via_api(
            scenario,
            server.base_url,
            token,
            chain_spec=chain,
            data_dir=data_dir,
            mechanism=args.mechanism,
            operator_key=operator_key,
            first_slot=args.first_slot,
            slots=args.slots,
            progress=stderr_progress(tz=scenario.location.tz),
            before_report=server.stop,
            before_audit=before_audit,
        )
    finally:
        server.stop()


def dashboard_url(host: str, port: int) -> str:
    """The address a browser on this machine opens for a server listening on ``host``:``port``
    (loopback for the wildcard addresses, brackets around an IPv6 address)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def _connections_warning(settings: Any, workers: int) -> str | None:
    """With PostgreSQL, whether it takes as many connections as ``workers`` processes serving
    ``settings``' markets may hold at once (:func:`api.services.connections_per_process`)."""
    from api.cluster import connections_shortfall
    from api.services import connections_per_process

    needed = workers * connections_per_process(max(1, len(settings.market_names)))
    return connections_shortfall(settings.resolved_database_url(), needed)


def _page_url(settings: Any, host: str, port: int) -> str:
    """The page ``voisin serve`` points to: a market's dashboard, or a city's page."""
    return dashboard_url(host, port) + ("city" if settings.market_names else "")


def operator_token_source(settings: Any) -> str:
    """Where the operator's token comes from, as ``voisin serve`` says it (never the token):
    ``VOISIN_OPERATOR_TOKEN``, or the file the server generates in development."""
    token = settings.operator_token
    if token is not None and token.get_secret_value():
        return "from VOISIN_OPERATOR_TOKEN"
    return f"in {settings.data_dir / 'operator.token'}"


def _schema_problem(settings: Any) -> str | None:
    """Why the database cannot be served by this release (its schema is at another revision),
    or None: it is at this release's revision, or empty (the server creates it). A database
    that does not answer is the server's start-up to report."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    from api.schema import SchemaError, check

    engine = create_engine(settings.resolved_database_url())
    try:
        check(engine)
    except SchemaError as exc:
        return str(exc)
    except OperationalError:
        return None
    finally:
        engine.dispose()
    return None


def workers_problem(settings: Any, workers: int) -> str | None:
    """Why ``workers`` processes cannot serve with ``settings``, or None. Each process opens
    the chain and the database itself: an embedded chain is one process's, and SQLite is a
    file that one writer at a time may change, so more than one needs a node and PostgreSQL."""
    from api.cluster import is_postgres

    if workers == 1:
        return None
    if not settings.chain.startswith(("http://", "https://")):
        return (
            f"--workers {workers} needs a JSON-RPC chain every process can reach "
            f"(VOISIN_CHAIN=http://...), not {settings.chain!r}"
        )
    if not is_postgres(settings.resolved_database_url()):
        return (
            f"--workers {workers} needs a PostgreSQL database every process can reach "
            "(VOISIN_DATABASE_URL=postgresql+psycopg://...), not SQLite"
        )
    return None


def _serve_workers(args: argparse.Namespace, settings: Any, log_config: Any) -> int:
    """``voisin serve --workers N``: uvicorn's supervisor runs N processes on one socket and
    starts a new one whenever one dies. Each is a whole server (:func:`api.app.create_app`
    from the same ``VOISIN_*`` settings); PostgreSQL elects the one that runs the background
    work (:mod:`api.cluster`)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from api.services import Services

    # Create the schema and deploy (or find) the contract once, before the workers start.
    try:
        if settings.market_names:
            from api.city_app import prepare_city

            prepare_city(settings)
        else:
            Services(settings).close()
    except Exception as exc:
        print(f"voisin serve: could not open the market: {exc}", file=sys.stderr)
        return 3
    url = _page_url(settings, args.host, args.port)
    bind = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"Voisin API on http://{bind}:{args.port} with {args.workers} workers — chain "
        f"{settings.chain}, database {_redacted_url(settings.resolved_database_url())}\n"
        f"Dashboard: {url}\nOperator token: {operator_token_source(settings)}",
        flush=True,
    )
    config = uvicorn.Config(
        "api.city_app:create_city_app" if settings.market_names else "api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=log_config,
        log_level="info",
        timeout_keep_alive=30,
    )
    (settings.data_dir / SERVED_AT).write_text(url)
    try:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        (settings.data_dir / SERVED_AT).unlink(missing_ok=True)
    return 0


def _redacted_url(url: str) -> str:
    """A database URL without its password, to print."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _restore_problem(settings: Any) -> str | None:
    """Why the server must not start: a restore into its data directory, or one of its
    markets' folders, began and did not finish (api.backup)."""
    from api.backup import unfinished_restore
    from api.city import MARKETS_DIR

    folders = [settings.data_dir]
    folders += [settings.data_dir / MARKETS_DIR / name for name in settings.market_names]
    return next((p for f in folders if (p := unfinished_restore(f)) is not None), None)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from api.app import create_app
    from api.logs import configure_logging
    from api.settings import Settings

    if args.markets is not None:
        # In the environment, so that --workers' processes serve the same city.
        os.environ["VOISIN_MARKETS"] = args.markets
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"voisin serve: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    problem = unwritable_dir(settings.data_dir, "VOISIN_DATA_DIR")
    if problem:
        print(f"voisin serve: {problem}", file=sys.stderr)
        return 2
    problem = _restore_problem(settings)
    if settings.market_names:
        from api.city import city_problem

        problem = problem or city_problem(settings)
    else:
        problem = problem or _schema_problem(settings)
    problem = problem or workers_problem(settings, args.workers)
    if problem:
        print(f"voisin serve: {problem}", file=sys.stderr)
        return 2
    warning = _connections_warning(settings, args.workers)
    if warning:
        print(f"voisin serve: warning: {warning}", file=sys.stderr)
    # Voisin's lines and uvicorn's go out in VOISIN_LOG_FORMAT (api/logs.py).
    log_config = configure_logging(settings.log_format)
    if args.workers > 1:
        return _serve_workers(args, settings, log_config)
    url = _page_url(settings, args.host, args.port)
    bind = f"[{args.host}]" if ":" in args.host else args.host
    markets = settings.market_names
    print(
        f"Voisin API on http://{bind}:{args.port} — chain {settings.chain}, "
        f"data in {settings.data_dir}"
        + (f"; a city of {len(markets)} markets under /markets/<name>" if markets else ""),
        flush=True,
    )
    if markets:
        from api.city_app import create_city_app

        app = create_city_app(settings)
    else:
        app = create_app(settings)

    class Server(uvicorn.Server):
        """Says where to go once the server listens (the token file exists by then)."""

        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                print(
                    f"Dashboard: {url}\nOperator token: {operator_token_source(settings)}",
                    flush=True,
                )
                # Where this server answers, for `voisin audit` to point at while it runs.
                (settings.data_dir / SERVED_AT).write_text(url)

        async def shutdown(self, sockets: list[Any] | None = None) -> None:
            # Here rather than after run(): on SIGTERM uvicorn raises the signal again once
            # shut down, and the process ends there, before run() returns.
            try:
                await super().shutdown(sockets)
            finally:
                (settings.data_dir / SERVED_AT).unlink(missing_ok=True)

    # Keep-alive beyond the default 5 s: meters and gateways reuse their connections.
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=log_config,
        log_level="info",
        timeout_keep_alive=30,
    )
    server = Server(config)
    try:
        server.run()
    finally:
        (settings.data_dir / SERVED_AT).unlink(missing_ok=True)
    if not server.started:
        # The start-up failed (chain unreachable, database down, port taken): uvicorn logged
        # why. A non-zero exit lets a supervisor (systemd's Restart=on-failure) try again.
        print("voisin serve: the server did not start (see the log above)", file=sys.stderr)
        return 3
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voisin", description="Voisin: peer-to-peer neighbourhood energy trading ledger."
    )
    parser.add_argument("--version", action="version", version=f"voisin {voisin_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="walk four households through readings, orders, clearing, settlement and bills",
        description="Run a small end-to-end demo on the chain (embedded by default).",
    )
    demo.add_argument("--data-dir", help="data directory (default: VOISIN_DATA_DIR or ./data)")
    demo.add_argument("--chain", help="'embedded' or a JSON-RPC URL (default: VOISIN_CHAIN)")
    demo.add_argument(
        "--mechanism",
        choices=["pay-as-clear", "midpoint", "pay-as-offer"],
        default="pay-as-clear",
        help="clearing mechanism (default: pay-as-clear)",
    )
    demo.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    demo.set_defaults(func=_demo)
    simulate = sub.add_parser(
        "simulate",
        help="run a neighbourhood end to end on the chain and write report.json",
        description=(
            "Simulate a neighbourhood slot by slot: signed readings, clearing, settlement, "
            "statements; writes report.json in --out."
        ),
    )
    simulate.add_argument(
        "--scenario",
        type=scenario_name,
        default="default",
        metavar="NAME|FILE",
        help="'default' (a Lyon street), 'quartierstrom', or a .json/.toml scenario file",
    )
    simulate.add_argument(
        "--households",
        type=positive_int,
        metavar="N",
        help="households of the default scenario, at least 1 (default 30)",
    )
    simulate.add_argument(
        "--neighbourhoods",
        type=positive_int,
        default=None,
        metavar="K",
        help=(
            "a city of K default streets of --households each, seeded, each its own market "
            "(contract, database, audit) on one chain, one after the other; the report sums "
            "them and lists each (default: one neighbourhood, not a city)"
        ),
    )
    simulate.add_argument(
        "--days", type=positive_int, metavar="N", help="days to simulate, at least 1 (default 1)"
    )
    simulate.add_argument(
        "--start",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help=f"first day (default {SIMULATE_START}; quartierstrom: 2019-06-03)",
    )
    simulate.add_argument(
        "--seed", type=non_negative_int, metavar="N", help="scenario seed, 0 or more (default 1)"
    )
    simulate.add_argument(
        "--mechanism",
        choices=["pay-as-clear", "midpoint", "pay-as-offer"],
        default="pay-as-clear",
        help="clearing mechanism (default: pay-as-clear)",
    )
    simulate.add_argument(
        "--agents",
        choices=["default", "mixed", "forecast"],
        default="default",
        help="the households' pricing agents: 'default' (every household the same default "
        "standing orders), 'mixed' (drawn, adaptive, forecast-aware and battery-owner "
        "strategies, seeded) or 'forecast' (forecast-aware and battery owners); see "
        "docs/agents.md",
    )
    simulate.add_argument(
        "--market",
        choices=["real-time", "day-ahead"],
        default="real-time",
        help="'real-time' (default: each slot cleared on its metered energy) or 'day-ahead' "
        "(each day's slots cleared ahead from the households' forecasts into forward "
        "positions, the deviations then in the real-time market); see docs/market.md",
    )
    simulate.add_argument(
        "--via",
        choices=["direct", "api"],
        default="direct",
        help="how readings reach the ledger: 'direct' (in process, default) or 'api' (through "
        "a voisin serve process this command starts on loopback, logging to OUT/serve.log)",
    )
    simulate.add_argument(
        "--chain",
        help="'embedded' (default), 'anvil' (a local anvil node started for the run, with its "
        "state in the data dir) or a JSON-RPC URL",
    )
    simulate.add_argument(
        "--data-dir", help="chain and database of the run (default: OUT/data, must be fresh)"
    )
    simulate.add_argument("--out", help="output folder (default ./out/<timestamp>)")
    simulate.add_argument("--json", metavar="FILE", help="also write the report to FILE")
    simulate.add_argument(
        "--first-slot",
        type=non_negative_int,
        default=0,
        metavar="K",
        help="start at slot K of the period, 0 or more (0 = local midnight of --start)",
    )
    simulate.add_argument(
        "--slots",
        type=positive_int,
        metavar="N",
        help="run only N slots, at least 1 (default: the whole period)",
    )
    simulate.add_argument(
        "--resume",
        metavar="OUT",
        help="go on with the stopped run in output folder OUT (its options are in "
        "OUT/run.json) from the slot after the last one settled",
    )
    # The parser comes along for the one check across options (--households with a scenario
    # that has its own), so that it too is a usage error.
    simulate.set_defaults(func=_simulate, parser=simulate)
    serve = sub.add_parser(
        "serve",
        help="run the API service (embedded chain and SQLite in VOISIN_DATA_DIR by default)",
        description="Run the Voisin API. Settings come from VOISIN_* environment variables.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=port_number, default=8000, help="port, 1 to 65535 (default 8000)"
    )
    serve.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help=(
            "processes serving requests (default 1); more than one needs PostgreSQL "
            "(VOISIN_DATABASE_URL) and a JSON-RPC chain (VOISIN_CHAIN): see docs/operations.md"
        ),
    )
    serve.add_argument(
        "--markets",
        metavar="NAMES",
        help=(
            "serve a city: these neighbourhood markets, comma-separated (e.g. n01,n02), each "
            "under /markets/<name> with its own contract, and the city page at /city "
            "(default: VOISIN_MARKETS; none: one market at the root): see docs/city.md"
        ),
    )
    serve.set_defaults(func=_serve)
    from api.audit_cli import add_parser as add_audit_parser
    from api.backup_cli import add_parser as add_backup_parser
    from api.db_cli import add_parser as add_db_parser
    from api.privacy_cli import add_parser as add_privacy_parser
    from api.upgrade_cli import add_parser as add_upgrade_parser

    add_audit_parser(sub)
    add_backup_parser(sub)
    add_db_parser(sub)
    add_privacy_parser(sub)
    add_upgrade_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, own_process: bool = False) -> int:
    """Run the command line ``argv`` (default: ``sys.argv``); returns the exit status.

    ``own_process`` says that the process ends with this command (:func:`program`), so the
    command may trade the garbage collector's work on what lives until then for speed (see
    :func:`keep_for_good`). Tests call :func:`main` in their own process and leave it off.
    """
    args = build_parser().parse_args(argv)
    args.own_process = own_process
    args.argv = None if argv is None else list(argv)
    code: int = args.func(args)
    return code


def program() -> None:
    """The ``voisin`` program: :func:`main` on ``sys.argv``, owning the process, then exit."""
    status = main(own_process=True)
    keep_for_good(True)
    sys.exit(status)


if __name__ == "__main__":
    program()
