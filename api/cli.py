"""The ``voisin`` command: the composition root of Voisin.

Subcommands import what they need lazily, so ``voisin --help`` stays fast. Today:
``voisin demo`` walks one small neighbourhood through readings, agents' orders, clearing,
settlement, indexing and statements on the configured chain (the embedded one by default);
``voisin serve`` runs the API service. Later issues add ``simulate`` and ``audit``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from api.settings import Settings
    from ledger.demo import run_demo
    from ledger.errors import LedgerError

    settings = Settings()
    data_dir = Path(args.data_dir) if args.data_dir else settings.data_dir
    chain = args.chain or settings.chain
    database_url = settings.database_url or f"sqlite:///{(data_dir / 'voisin.db').resolve()}"
    print(f"Voisin demo — data in {data_dir.resolve()}")
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
        Path(args.json).write_text(
            json.dumps({**report.__dict__, "ok": report.ok}, indent=2, sort_keys=True, default=str)
            + "\n"
        )
    return 0 if report.ok else 1


def _serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn
    from pydantic import ValidationError

    from api.app import create_app
    from api.settings import Settings
    from ledger.errors import LedgerError

    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"voisin serve: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    print(
        f"Voisin API on http://{args.host}:{args.port} — chain {settings.chain}, "
        f"data in {settings.data_dir.resolve()}",
        flush=True,
    )
    try:
        # Keep-alive beyond the default 5 s: meters and gateways reuse their connections.
        uvicorn.run(
            create_app(settings),
            host=args.host,
            port=args.port,
            log_level="info",
            timeout_keep_alive=30,
        )
    except LedgerError as exc:
        print(f"voisin serve: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voisin", description="Voisin: peer-to-peer neighbourhood energy trading ledger."
    )
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
    serve = sub.add_parser(
        "serve",
        help="run the API service (embedded chain and SQLite in VOISIN_DATA_DIR by default)",
        description="Run the Voisin API. Settings come from VOISIN_* environment variables.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(func=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
