"""Smart meters: cumulative registers and EIP-712 signed readings.

A meter adds each slot's import and export to its two registers (integer Wh, starting from the
seeded baselines of :attr:`Scenario.identities`) and signs, at the end of slot ``s``,
``Reading(meter, s, import_Wh, export_Wh)`` with its key, through
:func:`ledger.readings.eip712.sign_reading`: exactly what the contract verifies.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from concurrent.futures import Future
from itertools import islice, pairwise

import numpy as np
from eth_keys.datatypes import PrivateKey
from numpy.typing import NDArray

from ledger.readings.eip712 import Reading, SignedReading, sign_reading
from meter_sim.flows import Flows
from meter_sim.forked import helper_pool
from meter_sim.scenario import Scenario


def registers(scenario: Scenario, flows: Flows) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The import and export registers at the end of each slot, (households, slots) int64."""
    ids = scenario.identities
    import_base = np.array([i.import_baseline_Wh for i in ids], dtype=np.int64)[:, None]
    export_base = np.array([i.export_baseline_Wh for i in ids], dtype=np.int64)[:, None]
    return (
        import_base + np.cumsum(flows.import_Wh, axis=1),
        export_base + np.cumsum(flows.export_Wh, axis=1),
    )


def sign_readings(
    scenario: Scenario, flows: Flows, domain: bytes, *, processes: int = 1
) -> list[SignedReading]:
    """Every meter's signed reading for every slot, slot by slot (the order meters send them).

    ``domain`` is the deployment's EIP-712 domain separator
    (:meth:`ledger.VoisinClient.domain_separator` or
    :func:`ledger.readings.eip712.domain_separator`).
    Signing dominates the cost of a run (one secp256k1 signature per meter and slot);
    ``processes`` > 1 splits the meters over that many worker processes. ECDSA signatures here
    are deterministic (RFC 6979), so the result is the same either way.
    """
    imports, exports = registers(scenario, flows)
    ids = scenario.identities
    slots = flows.slots.tolist()
    jobs = [
        ([(i.meter_key, i.meter) for i in ids[lo:hi]], slots, imports[lo:hi].tolist(),
         exports[lo:hi].tolist(), domain)
        for lo, hi in _chunks(len(ids), max(1, processes))
    ]  # fmt: skip
    if processes <= 1:
        blocks = [_sign_block(*job) for job in jobs]
    else:
        with helper_pool(processes) as pool:
            blocks = list(pool.map(_sign_block, *zip(*jobs, strict=True)))
    per_meter = [row for block in blocks for row in block]
    return [per_meter[h][t] for t in range(len(slots)) for h in range(len(ids))]


#: Signing jobs queued ahead of the slot loop (each ``slots_per_job`` slots): enough to keep
#: the signing process busy, few enough that signed readings never pile up in memory while
#: the chain is the slower side (a year has 35,040 slots).
JOBS_AHEAD = 8


def signed_slots(
    scenario: Scenario,
    flows: Flows,
    domain: bytes,
    *,
    start: int = 0,
    slots_per_job: int = 8,
    jobs_ahead: int = JOBS_AHEAD,
) -> Generator[list[SignedReading], None, None]:
    """Each slot's signed readings (every meter's, in meter order), slot after slot from the
    ``start``-th slot of ``flows``, signed ahead by one background process while the caller
    works on the slots already handed out.

    The same readings as :func:`sign_readings`, in the same order (the registers count from
    the baselines over every slot of ``flows``, also those before ``start``). A run spends
    most of its time on the chain in its own process: signing on the second core, a few slots
    ahead, takes the signing off the run's wall time. The first job is one slot, so the caller
    can start at once; the others are ``slots_per_job`` slots each, and at most
    ``jobs_ahead`` jobs are queued or done but not yet handed out, so memory stays flat
    however long the run.
    """
    if slots_per_job < 1 or jobs_ahead < 1:
        raise ValueError(
            f"slots_per_job and jobs_ahead must be at least 1, got {slots_per_job}, {jobs_ahead}"
        )
    imports, exports = registers(scenario, flows)
    meters = [(i.meter_key, i.meter) for i in scenario.identities]
    slots = flows.slots.tolist()
    if not 0 <= start <= len(slots):
        raise ValueError(f"start {start} is outside the {len(slots)} slots")
    starts = [start, *range(start + 1, len(slots), slots_per_job)] if start < len(slots) else []
    spans = iter(pairwise([*starts, len(slots)]))
    pool = helper_pool(1)

    def submit(lo: int, hi: int) -> tuple[int, Future[list[list[SignedReading]]]]:
        block = (meters, slots[lo:hi], imports[:, lo:hi].tolist(), exports[:, lo:hi].tolist())
        return hi - lo, pool.submit(_sign_block, *block, domain)

    try:
        queued = deque(submit(lo, hi) for lo, hi in islice(spans, jobs_ahead))
        while queued:
            width, job = queued.popleft()
            more = next(spans, None)
            if more is not None:
                queued.append(submit(*more))
            per_meter = job.result()
            del job  # the queue no longer holds the job's readings once handed out
            for t in range(width):
                yield [row[t] for row in per_meter]
    finally:
        # Also when the caller stops early: queued jobs are dropped, not signed.
        pool.shutdown(wait=True, cancel_futures=True)


def _chunks(n: int, parts: int) -> list[tuple[int, int]]:
    bounds = [n * k // parts for k in range(parts + 1)]
    return [(lo, hi) for lo, hi in pairwise(bounds) if hi > lo]


def _sign_block(
    meters: list[tuple[bytes, str]],
    slots: list[int],
    imports: list[list[int]],
    exports: list[list[int]],
    domain: bytes,
) -> list[list[SignedReading]]:
    """Each meter's readings of every slot (a top-level function, so a process pool can run it)."""
    out: list[list[SignedReading]] = []
    for (key, meter), imp, exp in zip(meters, imports, exports, strict=True):
        private_key = PrivateKey(key)
        out.append(
            [
                sign_reading(private_key, Reading(meter, slot, imp[t], exp[t]), domain)
                for t, slot in enumerate(slots)
            ]
        )
    return out
