"""The py-evm speedups change no result of a simulation: the same run with and without them.

Runs ``voisin simulate`` twice with the same arguments, first as it runs by default (the
embedded chain installs the speedups) and then with ``VOISIN_PYEVM_SPEEDUPS=0`` (py-evm, py-trie
and eth-hash as they ship), and compares the two ``report.json`` files field by field. Only the
run's own time, memory and disk may differ (:data:`TIMING_FIELDS`); any other difference is
printed and the exit status is 1 (2 if a run failed, or if the first run did not have the
speedups installed, so that nothing was compared).

Both runs get the same operator key: a simulation derives it from the scenario's seed, so the
contract's address, and with it every EIP-712 signature and its calldata gas, is the same.

Usage: ``.venv/bin/python scripts/compare_speedups.py [--out DIR] [simulate options]``. Without
simulate options it runs :data:`DEFAULT_SIMULATE`. ``--out`` keeps both runs' folders there
(``on/`` and ``off/``); by default they go to a temporary folder that is removed afterwards.
Prints each run's command wall time and its own ``wall_s``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from meter_sim.report import RUN_RESOURCES

ROOT: Final = Path(__file__).resolve().parent.parent
SWITCH: Final = "VOISIN_PYEVM_SPEEDUPS"

#: Six households over eight midday slots (slot 44 is 11:00 local time) with seed 3: solar
#: surplus, so readings, clearing, fills and settlement all run, in a few seconds per run.
DEFAULT_SIMULATE: Final = ("--households", "6", "--first-slot", "44", "--slots", "8", "--seed", "3")

#: report.json's fields about the run's own time, memory and disk (meter_sim.report's
#: RUN_RESOURCES: ``wall_s``, ``disk_bytes``, ``peak_rss_bytes``). Every other field is a count,
#: an energy, money, gas, a ratio of those, a finding or a name, and must not change with the
#: speedups.
TIMING_FIELDS: Final = RUN_RESOURCES

#: What the speedups log when the version gate keeps them out (ledger.chain.pyevm_speedups).
NOT_INSTALLED: Final = "py-evm speedups not installed"


class RunFailed(Exception):
    """A run could not be compared: it failed, or its folder is already taken."""


def simulate(out: Path, args: list[str], speedups: bool) -> tuple[dict[str, Any], float, str]:
    """Run ``voisin simulate`` into ``out``; returns its report, the command's wall time in
    seconds and its stderr."""
    env = {k: v for k, v in os.environ.items() if k != SWITCH}
    if not speedups:
        env[SWITCH] = "0"
    command = [str(ROOT / ".venv/bin/voisin"), "simulate", *args, "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    (out / "simulate.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        label = "with" if speedups else "without"
        raise RunFailed(
            f"voisin simulate {label} the speedups exited with {done.returncode}:\n{tail}"
        )
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report, wall_s, done.stderr


def differences(on: dict[str, Any], off: dict[str, Any]) -> list[str]:
    """One line per field, timing fields aside, whose value differs between the two reports
    (or that only one of them has)."""
    lines = []
    missing = object()
    for field in sorted(set(on) | set(off)):
        if field in TIMING_FIELDS:
            continue
        a, b = on.get(field, missing), off.get(field, missing)
        if a != b:
            shown_a = "(absent)" if a is missing else json.dumps(a)
            shown_b = "(absent)" if b is missing else json.dumps(b)
            lines.append(f"  {field}: with speedups {shown_a}, without {shown_b}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="voisin simulate with and without the py-evm speedups: same report?"
    )
    parser.add_argument("--out", type=Path, help="keep both runs here (on/ and off/)")
    own, rest = parser.parse_known_args(argv)
    args = rest or list(DEFAULT_SIMULATE)
    # Absolute: the runs start in the repository's folder, not in the caller's.
    base = (
        own.out.resolve() if own.out else Path(tempfile.mkdtemp(prefix="voisin-compare-speedups-"))
    )
    try:
        for sub in ("on", "off"):
            if (base / sub).exists():
                raise RunFailed(f"{base / sub} exists: give a fresh --out")
        print(f"voisin simulate {' '.join(args)}", flush=True)
        on, on_s, on_log = simulate(base / "on", args, speedups=True)
        if NOT_INSTALLED in on_log:
            print(
                "the speedups were not installed in the first run, so nothing was compared:\n"
                + "\n".join(line for line in on_log.splitlines() if NOT_INSTALLED in line),
                file=sys.stderr,
            )
            return 2
        print(f"  with speedups:    {on_s:7.1f} s (report wall_s {on['wall_s']})", flush=True)
        off, off_s, _ = simulate(base / "off", args, speedups=False)
        print(f"  without speedups: {off_s:7.1f} s (report wall_s {off['wall_s']})", flush=True)
    except RunFailed as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        if own.out is None:
            shutil.rmtree(base, ignore_errors=True)
    found = differences(on, off)
    compared = len((set(on) | set(off)) - TIMING_FIELDS)
    if found:
        print(f"the reports differ in {len(found)} of {compared} fields:")
        print("\n".join(found))
        return 1
    but = ", ".join(sorted(TIMING_FIELDS))
    print(f"the reports are identical in all {compared} fields but {but}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
