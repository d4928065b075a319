"""``voisin upgrade-contract``: move a ledger to a new deployment of the contract by migration
(:func:`ledger.contract.upgrade.migrate`), show what a migration would carry (``--plan``), or
audit across the last one (``--audit``, :func:`ledger.audit.across.audit_recorded`).

Register it with :func:`add_parser` on the ``voisin`` command's subparsers. The migration
freezes (cancels the open orders of, then pauses) the current deployment, deploys the
committed contract continuing it, carries households, meters' registers, balances, tariffs,
fee recipient and roles over, archives the old database mirror and records both deployments
in ``deployments.json``. Exit codes: 0 done (or no findings), 1 refused or findings, 2 bad
arguments or a data dir without a deployment, 3 a data dir another process holds (stop
``voisin serve`` first: a migration needs the ledger to itself). Heavy imports happen inside
:func:`run`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

_COMMAND = "upgrade-contract"


def add_parser(sub: Any) -> None:
    """Add the ``upgrade-contract`` subcommand to ``sub`` (the parser's subparsers)."""
    parser = sub.add_parser(
        _COMMAND,
        help="migrate the ledger to a new deployment of the contract (freeze, carry over)",
        description=(
            "Freeze the current Voisin deployment (open orders cancelled, then paused) once its "
            "last slots are settled, deploy the committed contract continuing it, carry "
            "households, meter registers, balances, tariffs, fee recipient and roles over, and "
            "record both deployments. --plan only shows what would be carried; --audit audits "
            "across the last migration. Exit code 0: done or no findings; 1: refused or "
            "findings; 2: bad arguments; 3: the data dir is in use."
        ),
    )
    parser.add_argument("--data-dir", help="data directory (default: VOISIN_DATA_DIR or ./data)")
    parser.add_argument("--chain", help="'embedded' or a JSON-RPC URL (default: VOISIN_CHAIN)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--plan", action="store_true", help="show what would be carried over; change nothing"
    )
    mode.add_argument(
        "--audit", action="store_true", help="audit the old deployment, the carry-over, the new"
    )
    parser.add_argument(
        "--allow-unsettled",
        action="store_true",
        help="freeze even if a slot that can still be traded is not settled (an emergency)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=50,
        metavar="N",
        help="households per onboarding transaction of the carry-over (default 50)",
    )
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON")
    parser.set_defaults(func=run)


def _bad(message: str) -> int:
    print(f"voisin {_COMMAND}: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from api.paths import absolute, unwritable_file
    from api.settings import Settings
    from ledger.contract.deploy import DEPLOYMENTS_FILE
    from ledger.errors import ChainLockedError, LedgerError

    if args.batch_size < 1:
        return _bad(f"--batch-size must be at least 1, got {args.batch_size}")
    try:
        settings = Settings()
    except ValidationError as exc:
        return _bad(f"invalid settings:\n{exc}")
    problem = unwritable_file(args.json, "--json")
    if problem:
        return _bad(problem)
    data_dir = absolute(args.data_dir) if args.data_dir else settings.data_dir
    chain_spec = args.chain or settings.chain
    if not (data_dir / DEPLOYMENTS_FILE).is_file():
        return _bad(f"{data_dir} holds no Voisin deployment ({data_dir / DEPLOYMENTS_FILE})")
    database_url = settings.database_url or f"sqlite:///{data_dir / 'voisin.db'}"
    try:
        outcome, lines, ok = _run(args, chain_spec, data_dir, database_url, settings)
    except ChainLockedError as exc:
        print(
            f"voisin {_COMMAND}: {data_dir} is in use by another process ({exc}); stop "
            "voisin serve first: a migration needs the ledger to itself.",
            file=sys.stderr,
        )
        return 3
    except LedgerError as exc:
        print(f"voisin {_COMMAND}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(outcome, indent=2, sort_keys=True, default=str))
    return 0 if ok else 1


def _run(
    args: argparse.Namespace, chain_spec: str, data_dir: Path, database_url: str, settings: Any
) -> tuple[dict[str, Any], list[str], bool]:
    """Open the chain and the database and do what ``args`` ask: (JSON report, lines, ok)."""
    from api.contract_upgrade import backlog, carry_orders, serves_households
    from ledger.audit.across import audit_recorded
    from ledger.chain.backends import open_chain
    from ledger.contract.client import VoisinClient
    from ledger.contract.compile import load_artifact
    from ledger.contract.deploy import recorded_deployments
    from ledger.contract.upgrade import (
        MigrationError,
        migrate,
        open_orders,
        plan_carry_over,
        read_state,
    )
    from ledger.mirror.engine import make_engine

    engine = make_engine(database_url)
    with open_chain(chain_spec, data_dir, settings.chain_key_value()) as chain:
        if args.audit:
            report = audit_recorded(chain, data_dir, engine)
            if report is None:
                raise MigrationError(f"{data_dir} records no migration on chain {chain.chain_id}")
            lines = [f"  {f.as_text()}" for f in report.findings]
            lines.append(
                "audit across the upgrade ok: no findings"
                if report.ok
                else f"audit across the upgrade FAILED: {len(report.findings)} finding(s)"
            )
            return report.as_dict(), lines, report.ok
        if args.plan:
            current, _ = recorded_deployments(data_dir, chain.chain_id)
            if current is None:
                raise MigrationError(f"{data_dir} records no deployment on chain {chain.chain_id}")
            client = VoisinClient(chain.w3, current.address, load_artifact("Voisin")["abi"])
            head = int(chain.w3.eth.block_number)
            state = read_state(client, current.block_number, head)
            orders = open_orders(client, current.block_number, head)
            plan = plan_carry_over(state, chain.operator.address, args.batch_size)
            lines = [
                f"would freeze {current.address} (paused: {client.paused()}) and carry over "
                f"{len(state.households)} households ({len(plan.deactivate)} deactivated), "
                f"{state.total_supply_ueur} ueur, {len(state.other_balances)} other holders, "
                f"in {len(plan.onboarding)} onboarding transaction(s)",
                f"meters would start after slot {state.last_slot}; {len(orders)} open orders "
                "would be cancelled, to be re-posted by their households",
            ]
            return {"state": state.as_dict(), "open_orders": len(orders)}, lines, True
        served = serves_households(engine)
        if served:
            waiting = backlog(engine)
            if not waiting.empty:
                raise MigrationError(
                    f"voisin serve has not yet sent {waiting.describe()} to the chain: start it "
                    "until GET /health shows an empty backlog, stop it, then migrate"
                )
        migrated = migrate(
            chain,
            data_dir,
            engine=engine,
            batch_size=args.batch_size,
            allow_unsettled=args.allow_unsettled,
        )
        lines = migrated.lines()
        if served:
            carried = carry_orders(engine, migrated.new, migrated.last_slot)
            if carried is not None:
                lines.append(
                    f"the API's open orders: {carried.closed} closed, {carried.queued} queued "
                    "again for the new deployment (voisin serve posts them at its next start)"
                )
        return migrated.as_dict(), lines, True
