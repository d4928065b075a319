"""``voisin audit``: the grid operator's audit from the command line (registered by
:func:`api.cli.build_parser`; kept in its own module so the composition root stays small).

It opens the chain and the database of a data dir read-only in effect (it never deploys,
indexes or writes), runs :func:`ledger.audit.run_audit` and writes the outputs asked for.
Exit codes: 0 no findings, 1 findings (or the chain refused to answer), 2 bad arguments (an
output path it cannot write to among them) or a data dir without a Voisin deployment, 3 an
embedded chain that another process holds (a running ``voisin serve``: its
``GET /audit/report`` answers the same audit). Heavy imports happen inside :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from api.settings import Settings
    from ledger.audit.report import AuditReport

__all__ = ["add_parser", "run", "served_audit_hint"]

#: ledger.audit.feeder.DEFAULT_NETWORK, repeated here so ``voisin --help`` imports nothing heavy.
_DEFAULT_NETWORK = "kerber_vorstadtnetz_kabel_1"
#: ledger.audit.open_data's MIN_HOUSEHOLDS, LICENCES (the default first) and DEFAULT_PUBLISHER,
#: repeated for the same reason (a test holds them equal).
_MIN_HOUSEHOLDS = 3
_LICENCES = ("ODbL-1.0", "CC-BY-4.0", "etalab-2.0", "CC0-1.0")
_PUBLISHER = "Voisin neighbourhood energy ledger operator"


def add_parser(sub: Any) -> None:
    """Add the ``audit`` subcommand to ``sub`` (the parser's subparsers)."""
    audit = sub.add_parser(
        "audit",
        help="audit settlements: provenance, energy, money, integrity, feeder limits",
        description=(
            "Audit a Voisin ledger from its stored signed readings, the chain's events and "
            "state, and the database. Exit code 0: no findings; 1: findings; 2: bad arguments; "
            "3: the data dir is in use by a running voisin serve (ask its GET /audit/report)."
        ),
    )
    audit.add_argument("--data-dir", help="data directory (default: VOISIN_DATA_DIR or ./data)")
    audit.add_argument(
        "--market",
        metavar="NAME",
        help="in a city's data directory, audit this market (docs/city.md)",
    )
    audit.add_argument(
        "--city",
        action="store_true",
        help=(
            "in a city's data directory, audit every market: --json writes them all in one "
            "file, --csv DIR and --open-data DIR one folder per market"
        ),
    )
    audit.add_argument("--chain", help="'embedded' or a JSON-RPC URL (default: VOISIN_CHAIN)")
    audit.add_argument("--from", dest="from_slot", type=int, metavar="SLOT", help="first slot")
    audit.add_argument("--to", dest="to_slot", type=int, metavar="SLOT", help="last slot")
    audit.add_argument("--json", metavar="FILE", help="write the report as JSON")
    audit.add_argument("--html", metavar="FILE", help="write the report as an HTML page")
    audit.add_argument(
        "--csv", metavar="DIR", help="write findings.csv, neighbourhood.csv (and feeder.csv)"
    )
    audit.add_argument(
        "--open-data",
        metavar="DIR",
        help=(
            "write the open-data package: per-slot neighbourhood aggregates, one CSV and one "
            "JSON file per local day, README.md, datapackage.json and dcat.jsonld"
        ),
    )
    audit.add_argument(
        "--open-data-min-households",
        type=int,
        default=_MIN_HOUSEHOLDS,
        metavar="K",
        help=(
            "withhold a slot's open-data figures when fewer than K households are behind one, or "
            f"when its households differ from a published slot's by fewer than K "
            f"(default {_MIN_HOUSEHOLDS})"
        ),
    )
    audit.add_argument(
        "--open-data-licence",
        default=_LICENCES[0],
        choices=_LICENCES,
        help=f"the open data's licence (default {_LICENCES[0]})",
    )
    audit.add_argument(
        "--open-data-publisher",
        default=_PUBLISHER,
        metavar="NAME",
        help=f"the operator's name as the open data's publisher (default {_PUBLISHER!r})",
    )
    audit.add_argument(
        "--open-data-base-url",
        metavar="URL",
        help="where the open-data files will be served, for dcat.jsonld (default: relative URLs)",
    )
    audit.add_argument(
        "--open-data-spatial",
        metavar="URI",
        help="the neighbourhood's place as a URI (e.g. a gazetteer's), for dcat.jsonld",
    )
    audit.add_argument(
        "--feeder",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="run the low-voltage feeder power flows (default: off)",
    )
    audit.add_argument(
        "--network",
        default=None,
        help="pandapower Kerber network for --feeder (default: the market's own, as the "
        f"server's settings give it, else {_DEFAULT_NETWORK})",
    )
    audit.set_defaults(func=run)


def _bad(message: str) -> int:
    print(f"voisin audit: {message}", file=sys.stderr)
    return 2


def served_audit_hint(args: argparse.Namespace, data_dir: Path) -> str:
    """The request that asks a running ``voisin serve`` for the audit these options ask for,
    at the URL the server recorded in ``data_dir`` when it started (``HOST:PORT`` when it did
    not: an older or a starting server)."""
    from api.paths import SERVED_AT

    try:
        base = (data_dir / SERVED_AT).read_text().strip().rstrip("/") or "http://HOST:PORT"
    except OSError:
        base = "http://HOST:PORT"
    query: dict[str, str | int] = {}
    if args.from_slot is not None:
        query["from"] = args.from_slot
    if args.to_slot is not None:
        query["to"] = args.to_slot
    if args.feeder and not args.city:
        query["feeder"] = "true"
    # A city answers a market's audit under the market's path, and every market's at its own.
    route = (
        "/v1/city/audit"
        if args.city
        else f"/markets/{args.market}/v1/audit/report"
        if args.market is not None
        else "/audit/report"
    )
    return f"GET {base}{route}" + (f"?{urlencode(query)}" if query else "")


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from api.city import market_meters, meters_in_several_markets
    from api.paths import absolute, unwritable_dir, unwritable_file
    from api.settings import Settings
    from ledger.audit import AuditError, run_audit
    from ledger.audit.feeder import NETWORKS
    from ledger.audit.open_data import OpenDataError, write_open_data
    from ledger.audit.render import report_html, report_json, write_csv
    from ledger.chain.backends import open_chain
    from ledger.contract.deploy import open_ledger
    from ledger.errors import ChainLockedError, LedgerError
    from ledger.mirror.engine import make_engine

    for name in ("from_slot", "to_slot"):
        value = getattr(args, name)
        if value is not None and not 0 <= value < 2**32:
            return _bad(f"--{name[:-5]} must be a slot between 0 and {2**32 - 1}, got {value}")
    if args.from_slot is not None and args.to_slot is not None and args.from_slot > args.to_slot:
        return _bad(f"--from {args.from_slot} is after --to {args.to_slot}")
    if args.open_data_min_households < 1:
        return _bad(
            f"--open-data-min-households must be at least 1, got {args.open_data_min_households}"
        )
    if args.network is not None and args.network not in NETWORKS:
        return _bad(f"unknown --network {args.network!r}; choose one of {', '.join(NETWORKS)}")
    try:
        settings = Settings()
    except ValidationError as exc:
        return _bad(f"invalid settings:\n{exc}")
    problem = (
        unwritable_file(args.json, "--json")
        or unwritable_file(args.html, "--html")
        or (unwritable_dir(absolute(args.csv), "--csv") if args.csv else None)
        or (unwritable_dir(absolute(args.open_data), "--open-data") if args.open_data else None)
    )
    if problem:
        return _bad(problem)
    data_dir = absolute(args.data_dir) if args.data_dir else settings.data_dir
    chain_spec = args.chain or settings.chain
    try:
        targets = _targets(args, settings.model_copy(update={"data_dir": data_dir}))
    except ValueError as exc:
        return _bad(str(exc))
    if chain_spec == "embedded" and not (data_dir / "chain").is_dir():
        return _bad(f"{data_dir} holds no embedded chain ({data_dir / 'chain'} is missing)")
    reports: list[tuple[str | None, AuditReport]] = []
    meters: dict[str, set[str]] = {}
    try:
        with open_chain(chain_spec, data_dir, settings.chain_key_value()) as chain:
            for target in targets:
                deployed = json.loads(target.records.read_text())
                if str(chain.chain_id) not in deployed:
                    return _bad(f"{target.records} records no deployment on chain {chain.chain_id}")
                client, deployment = open_ledger(chain, target.records.parent)
                engine = make_engine(target.database_url)
                try:
                    report = run_audit(
                        client,
                        engine,
                        deployment.block_number,
                        from_slot=args.from_slot,
                        to_slot=args.to_slot,
                        feeder=args.feeder,
                        network=args.network or target.network,
                    )
                    if target.market is not None:
                        meters[target.market] = market_meters(engine)
                finally:
                    engine.dispose()
                reports.append((target.market, report))
    except AuditError as exc:
        return _bad(str(exc))
    except ChainLockedError as exc:
        holder = re.search(r"held by pid (\d+)", str(exc))
        pid = f" (pid {holder[1]})" if holder else ""
        hint = served_audit_hint(args, data_dir)
        print(
            f"voisin audit: {data_dir} is in use: another process holds its chain{pid}, most "
            "likely a running voisin serve.\nAsk that server for the audit instead: "
            f"{hint} with the operator token (Authorization: Bearer TOKEN), "
            "or stop it and run voisin audit again.",
            file=sys.stderr,
        )
        return 3
    except (LedgerError, json.JSONDecodeError) as exc:
        print(f"voisin audit: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    city = bool(args.city)
    shared = meters_in_several_markets(meters) if city else []
    try:
        if args.json:
            if city:
                both = {
                    "ok": all(r.ok for _, r in reports) and not shared,
                    "markets": {str(m): r.as_dict() for m, r in reports},
                    "shared_meters": shared,
                }
                Path(args.json).write_text(json.dumps(both, indent=2, default=str) + "\n")
            else:
                Path(args.json).write_text(report_json(reports[0][1]))
        for market, report in reports:
            if args.html:
                Path(args.html).write_text(report_html(report, tz=settings.timezone))
            if args.csv:
                write_csv(
                    report, _beneath(args.csv, market if city else None), tz=settings.timezone
                )
            if args.open_data:
                write_open_data(
                    report,
                    _beneath(args.open_data, market if city else None),
                    tz=settings.timezone,
                    min_households=args.open_data_min_households,
                    licence=args.open_data_licence,
                    publisher=args.open_data_publisher,
                    base_url=_url_beneath(args.open_data_base_url, market if city else None),
                    spatial=args.open_data_spatial,
                )
    except OSError as exc:  # checked at the start; the disk changed since
        return _bad(f"cannot write to {exc.filename}: {exc.strerror or exc}")
    except OpenDataError as exc:  # a window that holds no whole local day
        return _bad(str(exc))
    for market, report in reports:
        s = report.as_dict()["summary"]
        print(
            (f"market {market}: " if market is not None else "")
            + f"audited {s['slots']} slots, {s['households']} households, {s['readings']} "
            f"readings, {s['fills']} fills (contract {s['contract']}, digest head "
            f"{s['digest_head']}); feeder "
            + ("checked" if report.feeder is not None else "not checked")
        )
        for finding in report.findings:
            print(f"  {finding.as_text(settings.timezone)}")
    for meter in shared:
        print(f"  city: {meter['message']}")
    failed = sum(len(r.findings) for _, r in reports) + len(shared)
    print("audit ok: no findings" if not failed else f"audit FAILED: {failed} finding(s)")
    return 0 if not failed else 1


@dataclass(frozen=True)
class _Target:
    """One ledger to audit: its market in a city (None: the data dir's own), where its
    deployment is recorded, and its database."""

    market: str | None
    records: Path
    database_url: str
    #: Its feeder's network, as the server's settings give it.
    network: str


def _targets(args: argparse.Namespace, settings: Settings) -> list[_Target]:
    """The ledgers these options audit: the data dir's own, one market of a city
    (``--market``), or every market (``--city``); ValueError says why one cannot be."""
    from api.city import (
        MARKETS_DIR,
        CityError,
        city_markets,
        market_database_url,
        market_dir,
    )
    from api.settings import MARKET_NAME
    from ledger.contract.deploy import DEPLOYMENTS_FILE

    data_dir = settings.data_dir
    if args.market is not None and args.city:
        raise ValueError("give --market NAME or --city, not both")
    if args.city:
        if args.html:
            raise ValueError("--html writes one market's page: give --market NAME with it")
        names = settings.market_names or city_markets(data_dir)
        if not names:
            raise ValueError(f"{data_dir} holds no city: {data_dir / MARKETS_DIR} has no market")
    elif args.market is not None:
        if not MARKET_NAME.fullmatch(args.market):
            raise ValueError(f"--market {args.market!r} is not a market's name")
        names = (args.market,)
    else:
        records = data_dir / DEPLOYMENTS_FILE
        if not records.is_file():
            hint = ""
            if (data_dir / MARKETS_DIR).is_dir():
                hint = "; it holds a city: give --market NAME or --city"
            raise ValueError(f"{data_dir} holds no Voisin deployment ({records} is missing){hint}")
        return [_Target(None, records, _database_url(settings, data_dir), settings.feeder_network)]
    targets = []
    for name in names:
        where = market_dir(settings, name)
        records = where / DEPLOYMENTS_FILE
        if not records.is_file():
            raise ValueError(f"{data_dir} holds no market {name!r} ({records} is missing)")
        try:
            url = market_database_url(settings, name)
        except CityError as exc:
            raise ValueError(str(exc)) from exc
        if url.startswith("sqlite") and not (where / "voisin.db").is_file():
            raise ValueError(
                f"market {name!r} holds no database ({where / 'voisin.db'} is missing)"
            )
        network = settings.market_networks.get(name, settings.feeder_network)
        targets.append(_Target(name, records, url, network))
    return targets


def _database_url(settings: Settings, data_dir: Path) -> str:
    if settings.database_url:
        return settings.database_url
    db_path = data_dir / "voisin.db"
    if not db_path.is_file():
        raise ValueError(f"{data_dir} holds no database ({db_path} is missing)")
    return f"sqlite:///{db_path}"


def _url_beneath(base_url: str | None, market: str | None) -> str | None:
    """Where one market's open data is served: as its files lie, ``<market>/`` beneath."""
    if base_url is None or market is None:
        return base_url
    return f"{base_url.rstrip('/')}/{market}"


def _beneath(folder: str, market: str | None) -> Path:
    """Where one market's files go: ``folder`` itself, or its ``<market>`` subfolder."""
    return Path(folder) if market is None else Path(folder) / market
