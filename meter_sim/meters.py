"""Smart meters: cumulative registers and EIP-712 signed readings.

A meter adds each slot's import and export to its two registers (integer Wh, starting from the
seeded baselines of :attr:`Scenario.identities`) and signs, at the end of slot ``s``,
``Reading(meter, s, import_Wh, export_Wh)`` with its key, through
:func:`ledger.eip712.sign_reading`: exactly what the contract verifies.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ledger.eip712 import Reading, SignedReading, sign_reading
from meter_sim.flows import Flows
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


def sign_readings(scenario: Scenario, flows: Flows, domain: bytes) -> list[SignedReading]:
    """Every meter's signed reading for every slot, slot by slot (the order meters send them).

    ``domain`` is the deployment's EIP-712 domain separator
    (:meth:`ledger.VoisinClient.domain_separator` or :func:`ledger.eip712.domain_separator`).
    """
    imports, exports = registers(scenario, flows)
    ids = scenario.identities
    slots = flows.slots.tolist()
    imp = imports.tolist()
    exp = exports.tolist()
    out: list[SignedReading] = []
    for t, slot in enumerate(slots):
        for h, ident in enumerate(ids):
            reading = Reading(ident.meter, slot, imp[h][t], exp[h][t])
            out.append(sign_reading(ident.meter_key, reading, domain))
    return out
