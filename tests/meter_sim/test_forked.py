"""A job in a forked child computes with its arguments as they were at the call, whatever the
caller changes afterwards (the pool pickles in a thread of its own)."""

from __future__ import annotations

import threading
from typing import Any

from meter_sim.flows import simulate_ahead
from meter_sim.forked import in_forked_child
from meter_sim.scenario import default_scenario

_pickled_in: list[str] = []


class Witness:
    """Remembers, in this process, which thread pickled it."""

    def __init__(self, items: dict[str, int]) -> None:
        self.items = items

    def __reduce__(self) -> tuple[Any, ...]:
        _pickled_in.append(threading.current_thread().name)
        return (Witness, (dict(self.items),))


def _total(witness: Witness) -> int:
    return sum(witness.items.values())


def test_the_arguments_are_pickled_before_the_call_returns() -> None:
    _pickled_in.clear()
    witness = Witness({"a": 1, "b": 2})
    job = in_forked_child(_total, witness)
    here = threading.current_thread().name
    assert _pickled_in == [here]
    # Changed at once, while the pool's own thread would still be sending the job.
    witness.items.update({f"k{i}": 1000 for i in range(1000)})
    assert job.result(timeout=60) == 3


def test_the_flows_ahead_survive_a_scenario_property_filled_in_at_once() -> None:
    scenario = default_scenario(households=4)
    ahead = simulate_ahead(scenario, 44, 4)
    assert scenario.identities  # a cached property: it grows the scenario's __dict__
    flows = ahead.result()
    assert flows.shape == (4, 4) and flows.first_slot == scenario.first_slot + 44
