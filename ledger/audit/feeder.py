"""Feeder: does local trading keep the low-voltage feeder within its limits?

The households are placed on a pandapower **Kerber** low-voltage reference network (by default
``kerber_vorstadtnetz_kabel_1``: a suburban cable feeder, one 630 kVA 10/0.4 kV transformer,
146 house connections on 10 branches). For each slot a power flow runs with each household's
metered withdrawal (import) as a load and its metered injection (export) as a static
generator, both as the slot's mean power: ``P_W = Wh * 4`` (a slot is a quarter of an hour).
Loads draw reactive power at cos phi = 0.97 inductive; PV injects at unity power factor. House
connections with no household mapped to them carry nothing.

**The mapping** (:func:`default_mapping`): household ids in ascending order take the house
connections interleaved across the branches, nearest the transformer first: the first house
of branch 1, the first of branch 2, ..., the first of branch 10, then the second house of each
branch that has one, and so on (branch and position come from the network's ``loadbus_<b>_<p>``
bus names). More households than connections wrap around (several on one connection). A
caller can pass any other mapping (household -> row of the network's load table), e.g.
:func:`branch_mapping` packs all households onto one branch.

**Limits**: EN 50160 voltage band, 0.90 to 1.10 pu of nominal at every low-voltage bus; line
and transformer loading at most 100 %. Each slot with a violation gives one finding per kind
(voltage, line, transformer) naming the worst element and how many were out of limits.
"""

from __future__ import annotations

import copy
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ledger.audit.findings import WARNING, Finding
from ledger.errors import LedgerError

__all__ = [
    "DEFAULT_NETWORK",
    "HOUSE_CONNECTIONS",
    "NETWORKS",
    "FeederError",
    "FeederResult",
    "branch_mapping",
    "default_mapping",
    "load_network",
    "run_feeder",
]

DEFAULT_NETWORK = "kerber_vorstadtnetz_kabel_1"
#: The Kerber networks pandapower ships, by name.
NETWORKS = (
    "kerber_landnetz_kabel_1",
    "kerber_landnetz_kabel_2",
    "kerber_dorfnetz",
    "kerber_vorstadtnetz_kabel_1",
    "kerber_vorstadtnetz_kabel_2",
)
#: House connections (load buses) of each network: a street of more households than its
#: feeder has connections puts several on one (checked against pandapower by the tests).
HOUSE_CONNECTIONS = {
    "kerber_landnetz_kabel_1": 8,
    "kerber_landnetz_kabel_2": 14,
    "kerber_dorfnetz": 57,
    "kerber_vorstadtnetz_kabel_1": 146,
    "kerber_vorstadtnetz_kabel_2": 144,
}
V_MIN_PU = 0.90
V_MAX_PU = 1.10
MAX_LOADING_PERCENT = 100.0
LOAD_COS_PHI = 0.97
#: A slot is 900 s: mean power in W is the slot's energy in Wh times 4.
W_PER_WH_PER_SLOT = 4

_LOADBUS = re.compile(r"^loadbus_(\d+)_(\d+)$")
_RECYCLE = {"trafo": False, "gen": False, "bus_pq": True}


class FeederError(LedgerError, ValueError):
    """Unknown network, or a mapping that names a house connection the network lacks."""


def load_network(name: str = DEFAULT_NETWORK) -> Any:
    """A fresh pandapower network by name (one of :data:`NETWORKS`): a copy of the one built
    the first time (building a Kerber network takes over a second, a copy a few hundredths:
    the operator's page runs one slot's power flow after each settlement)."""
    if name not in NETWORKS:
        raise FeederError(f"unknown feeder network {name!r}; choose one of {', '.join(NETWORKS)}")
    return copy.deepcopy(_built(name))


@lru_cache(maxsize=len(NETWORKS))
def _built(name: str) -> Any:
    """The network ``name`` as pandapower builds it; never handed out (copies are)."""
    import pandapower.networks as pn

    factory: Callable[[], Any] = getattr(pn, f"create_{name}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return factory()


def _branch_positions(net: Any) -> list[tuple[int, int, int]]:
    """(branch, position, load row) for every house connection; table order if unnamed."""
    out = []
    for row, bus in enumerate(net.load.bus.tolist()):
        match = _LOADBUS.match(str(net.bus.at[bus, "name"]))
        branch, position = (int(match[1]), int(match[2])) if match else (0, row)
        out.append((branch, position, row))
    return out


def default_mapping(households: Sequence[int], net: Any) -> dict[int, int]:
    """Household id -> load row: interleaved across branches, nearest the transformer first."""
    order = [row for _, _, row in sorted(_branch_positions(net), key=lambda t: (t[1], t[0]))]
    return {h: order[k % len(order)] for k, h in enumerate(sorted(households))}


def branch_mapping(households: Sequence[int], net: Any, branch: int) -> dict[int, int]:
    """Household id -> load row, every household on ``branch``'s house connections in turn."""
    rows = [row for b, _, row in sorted(_branch_positions(net)) if b == branch]
    if not rows:
        raise FeederError(f"the network has no branch {branch}")
    return {h: rows[k % len(rows)] for k, h in enumerate(sorted(households))}


@dataclass
class FeederResult:
    """Per-slot series (in slot order) and the findings. ``mapping`` is household -> bus name
    (empty when there was no slot to compute).

    A slot whose power flow did not converge has ``None`` in every series (JSON ``null``).
    """

    network: str
    mapping: dict[int, str]
    slots: list[int] = field(default_factory=list)
    vm_min_pu: list[float | None] = field(default_factory=list)
    vm_max_pu: list[float | None] = field(default_factory=list)
    max_line_loading_percent: list[float | None] = field(default_factory=list)
    trafo_loading_percent: list[float | None] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "limits": {
                "v_min_pu": V_MIN_PU,
                "v_max_pu": V_MAX_PU,
                "max_loading_percent": MAX_LOADING_PERCENT,
            },
            "mapping": {str(h): bus for h, bus in sorted(self.mapping.items())},
            "slots": self.slots,
            "vm_min_pu": self.vm_min_pu,
            "vm_max_pu": self.vm_max_pu,
            "max_line_loading_percent": self.max_line_loading_percent,
            "trafo_loading_percent": self.trafo_loading_percent,
        }


def run_feeder(
    metered: Mapping[int, Mapping[int, tuple[int, int]]],
    households: Sequence[int],
    network: str = DEFAULT_NETWORK,
    mapping: Mapping[int, int] | None = None,
) -> FeederResult:
    """Power flow per slot of ``metered``: slot -> household -> (import_Wh, export_Wh).

    ``households`` are every household to place (those without a reading in a slot carry
    nothing in it); ``mapping`` overrides :func:`default_mapping`.
    """
    if network not in NETWORKS:
        raise FeederError(
            f"unknown feeder network {network!r}; choose one of {', '.join(NETWORKS)}"
        )
    if not metered:
        # Nothing to compute: skip importing pandapower (several seconds) and the network.
        return FeederResult(network, {})
    import numpy as np
    import pandapower as pp

    net = load_network(network)
    n_loads = len(net.load)
    placed = dict(mapping) if mapping is not None else default_mapping(households, net)
    for h, row in placed.items():
        if not 0 <= row < n_loads:
            raise FeederError(
                f"household {h} is mapped to house connection {row}; {network} has 0 to "
                f"{n_loads - 1}"
            )
    buses = net.load.bus.to_numpy()
    result = FeederResult(
        network, {h: str(net.bus.at[int(buses[row]), "name"]) for h, row in placed.items()}
    )
    # One static generator per house connection for the PV injections.
    pp.create_sgens(net, buses, p_mw=0.0, q_mvar=0.0, name="pv")
    lv = net.bus.vn_kv.to_numpy() < 1.0
    bus_names = net.bus.name.astype(str).to_numpy()
    line_names = net.line.name.astype(str).to_numpy()
    at_bus: dict[int, list[int]] = {}
    for h, row in sorted(placed.items()):
        at_bus.setdefault(int(buses[row]), []).append(h)
    tan_phi = math.tan(math.acos(LOAD_COS_PHI))
    for slot in sorted(metered):
        load_w = np.zeros(n_loads)
        pv_w = np.zeros(n_loads)
        for h, (imp, exp) in metered[slot].items():
            at = placed.get(h)
            if at is None:
                continue
            load_w[at] += imp * W_PER_WH_PER_SLOT
            pv_w[at] += exp * W_PER_WH_PER_SLOT
        net.load["p_mw"] = load_w / 1e6
        net.load["q_mvar"] = load_w * tan_phi / 1e6
        net.sgen["p_mw"] = pv_w / 1e6
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # The network's structure is the same in every slot: recycle pandapower's
                # internal model and only refresh the bus powers (about 40 % faster here).
                pp.runpp(net, numba=False, recycle=_RECYCLE)
        except pp.LoadflowNotConverged:
            result.findings.append(
                Finding(
                    "feeder",
                    WARNING,
                    slot,
                    None,
                    "the power flow did not converge: the feeder cannot carry this slot",
                    {"load_W": float(load_w.sum()), "pv_W": float(pv_w.sum())},
                )
            )
            for series in (
                result.vm_min_pu,
                result.vm_max_pu,
                result.max_line_loading_percent,
                result.trafo_loading_percent,
            ):
                series.append(None)
            result.slots.append(slot)
            continue
        vm = net.res_bus.vm_pu.to_numpy()
        lines = net.res_line.loading_percent.to_numpy()
        trafo = net.res_trafo.loading_percent.to_numpy()
        result.slots.append(slot)
        result.vm_min_pu.append(round(float(vm[lv].min()), 5))
        result.vm_max_pu.append(round(float(vm[lv].max()), 5))
        result.max_line_loading_percent.append(round(float(lines.max()), 3))
        result.trafo_loading_percent.append(round(float(trafo.max()), 3))
        result.findings += _slot_findings(slot, vm, lv, bus_names, at_bus, lines, line_names, trafo)
    return result


def _slot_findings(
    slot: int,
    vm: Any,
    lv: Any,
    bus_names: Any,
    at_bus: dict[int, list[int]],
    lines: Any,
    line_names: Any,
    trafo: Any,
) -> list[Finding]:
    import numpy as np

    out: list[Finding] = []
    outside = lv & ((vm < V_MIN_PU) | (vm > V_MAX_PU))
    if outside.any():
        deviation = np.where(outside, np.abs(vm - 1.0), -1.0)
        worst = int(deviation.argmax())
        here = at_bus.get(worst, [])
        out.append(
            Finding(
                "feeder",
                WARNING,
                slot,
                here[0] if here else None,
                f"voltage {vm[worst]:.3f} pu at {bus_names[worst]} is outside "
                f"{V_MIN_PU:.2f}-{V_MAX_PU:.2f} pu (EN 50160); {int(outside.sum())} bus(es) out",
                {
                    "bus": str(bus_names[worst]),
                    "vm_pu": round(float(vm[worst]), 5),
                    "buses_outside": int(outside.sum()),
                    "households_at_bus": here,
                },
            )
        )
    over = lines > MAX_LOADING_PERCENT
    if over.any():
        worst = int(lines.argmax())
        out.append(
            Finding(
                "feeder",
                WARNING,
                slot,
                None,
                f"line {line_names[worst]} loaded at {lines[worst]:.1f} % (limit "
                f"{MAX_LOADING_PERCENT:.0f} %); {int(over.sum())} line(s) overloaded",
                {
                    "line": str(line_names[worst]),
                    "loading_percent": round(float(lines[worst]), 3),
                    "lines_overloaded": int(over.sum()),
                },
            )
        )
    if (trafo > MAX_LOADING_PERCENT).any():
        out.append(
            Finding(
                "feeder",
                WARNING,
                slot,
                None,
                f"transformer loaded at {trafo.max():.1f} % (limit {MAX_LOADING_PERCENT:.0f} %)",
                {"loading_percent": round(float(trafo.max()), 3)},
            )
        )
    return out
