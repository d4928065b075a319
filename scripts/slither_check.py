"""Run Slither on contracts/ and fail on any high or medium finding not justified in
contracts/slither-triage.json. Started by scripts/slither, inside the Slither tool venv.

The contracts are compiled the way scripts/compile does (same settings, passed in by the
launcher from ledger.contract.compile) through crytic-compile's SolcStandardJson platform, with
``solc=`` pointing at scripts/solc, the solc-js adapter: no native solc, no download.

A finding is named by its detector (``check``) and where it is (``where``: Slither's
description up to the source location, e.g. ``Voisin.settleBatch(...).totalFee``), so line
moves do not invalidate the triage. A triage entry that matches nothing any more fails the run
too: the file only ever holds findings that exist.

The decision (:func:`verdict`) is a pure function, tested without Slither in
tests/contracts/test_slither_triage.py.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TRIAGE = REPO / "contracts" / "slither-triage.json"
#: Impacts that fail the run unless triaged; Low, Informational and Optimization are printed.
BLOCKING = ("High", "Medium")


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    impact: str
    confidence: str
    where: str
    description: str


@dataclass(frozen=True, slots=True)
class Verdict:
    untriaged: list[Finding]
    triaged: list[Finding]
    stale: list[dict[str, str]]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not (self.untriaged or self.stale or self.problems)


def finding_from_result(result: dict[str, Any]) -> Finding:
    """One Slither detector result as a :class:`Finding`."""
    description = str(result["description"]).strip()
    where = description.split(" (", 1)[0].strip()
    return Finding(
        check=str(result["check"]),
        impact=str(result["impact"]),
        confidence=str(result["confidence"]),
        where=where,
        description=description.splitlines()[0],
    )


def verdict(findings: list[Finding], triage: dict[str, Any]) -> Verdict:
    """Which blocking findings are justified, which are not, and which entries are stale."""
    entries = triage.get("findings")
    problems: list[str] = []
    if not isinstance(entries, list):
        return Verdict([], [], [], ['the triage file needs a "findings" list'])
    justified: dict[tuple[str, str], dict[str, str]] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) and entry[k].strip()
            for k in ("check", "where", "justification")
        ):
            problems.append(f"triage entry {i} needs non-empty check, where and justification")
            continue
        justified[(entry["check"], entry["where"])] = entry
    blocking = [f for f in findings if f.impact in BLOCKING]
    untriaged = [f for f in blocking if (f.check, f.where) not in justified]
    triaged = [f for f in blocking if (f.check, f.where) in justified]
    found = {(f.check, f.where) for f in blocking}
    stale = [e for key, e in justified.items() if key not in found]
    return Verdict(untriaged, triaged, stale, problems)


def run_slither(settings: dict[str, Any]) -> list[Finding]:
    """Compile contracts/*.sol through the solc-js adapter and run every Slither detector."""
    from crytic_compile import CryticCompile
    from crytic_compile.platform.solc_standard_json import SolcStandardJson
    from slither import Slither
    from slither.detectors import all_detectors
    from slither.detectors.abstract_detector import AbstractDetector

    standard = SolcStandardJson({"language": "Solidity", "sources": {}, "settings": settings})
    for path in sorted((REPO / "contracts").glob("*.sol")):
        standard.add_source_file(str(path.relative_to(REPO)))
    compiled = CryticCompile(
        standard, solc=str(REPO / "scripts" / "solc"), solc_working_dir=str(REPO)
    )
    slither = Slither(compiled)
    for detector in vars(all_detectors).values():
        if inspect.isclass(detector) and issubclass(detector, AbstractDetector):
            slither.register_detector(detector)
    return [finding_from_result(r) for results in slither.run_detectors() for r in results]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", required=True, help="solc standard-JSON settings (JSON)")
    parser.add_argument("--triage", type=Path, default=TRIAGE)
    args = parser.parse_args(argv)
    triage = json.loads(args.triage.read_text())
    findings = run_slither(json.loads(args.settings))
    result = verdict(findings, triage)
    # High and medium first, the rest in Slither's order.
    for f in sorted(findings, key=lambda f: f.impact not in BLOCKING):
        mark = ""
        if f.impact in BLOCKING:
            mark = " [triaged]" if f in result.triaged else " [NOT TRIAGED]"
        print(f"slither: {f.impact}/{f.confidence} {f.check}: {f.description}{mark}")
    for problem in result.problems:
        print(f"slither: {args.triage}: {problem}", file=sys.stderr)
    for entry in result.stale:
        print(
            f"slither: stale triage entry {entry['check']} at {entry['where']}: no such finding "
            "any more; remove it",
            file=sys.stderr,
        )
    for f in result.untriaged:
        print(
            f"slither: {f.impact} finding {f.check} at {f.where} is not justified in "
            f"{args.triage.relative_to(REPO) if args.triage.is_relative_to(REPO) else args.triage}",
            file=sys.stderr,
        )
    blocking = len(result.triaged) + len(result.untriaged)
    print(
        f"slither: {len(findings)} findings, {blocking} high/medium "
        f"({len(result.triaged)} triaged, {len(result.untriaged)} not)"
        + ("" if result.ok else ": FAIL")
    )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
