"""Exceptions of the meter simulator, rooted at :class:`MeterSimError`."""

from __future__ import annotations


class MeterSimError(Exception):
    """Root of every error raised by the meter simulator."""


class ScenarioError(MeterSimError, ValueError):
    """A scenario (given as code or read from a file) has a value the simulator cannot use."""


class WeatherError(MeterSimError, ValueError):
    """The weather source is unknown or does not fit the scenario's location."""


class SimulationError(MeterSimError):
    """A run cannot start or go on (bad arguments, a used data dir, a refused reading)."""


class DeliveryError(MeterSimError):
    """Readings could not be delivered (the ledger or the API refused the batch as a whole)."""
