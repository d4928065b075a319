"""Neighbourhood scenarios as data: households, their PV and batteries, the place and the period.

A :class:`Scenario` is a plain frozen value. It can be built in code (:func:`default_scenario`,
:func:`quartierstrom_scenario`) or read from a JSON or TOML file (:func:`load_scenario`), and
written back with :meth:`Scenario.to_dict`. Everything random about a household that the file
does not state (its meter and account keys, its starting register values, the individual shape
of its load) is derived from the scenario's seed, so one seed gives one neighbourhood.

Units are in the names: energy in integer Wh, power in integer W, angles in degrees (azimuth
clockwise from north: 180 is south).
"""

from __future__ import annotations

import json
import random
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import cached_property
from pathlib import Path
from typing import Any

from eth_keys import keys  # type: ignore[attr-defined]  # eth_keys does not re-export
from eth_utils.crypto import keccak

from ledger.localtime import LocalTimeError, zone
from ledger.types import SLOT_SECONDS
from meter_sim.errors import ScenarioError

SLOTS_PER_DAY = 96
#: secp256k1 group order: a private key must be in [1, N).
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SKIES = ("clear", "cloudy")


# ───────────────────────────── Values ─────────────────────────────


@dataclass(frozen=True, slots=True)
class Location:
    """Where the neighbourhood is; ``country`` (ISO 3166 alpha-2) picks the national holidays."""

    name: str
    latitude: float
    longitude: float
    tz: str
    altitude_m: float = 0.0
    country: str = "FR"

    def __post_init__(self) -> None:
        if not -90 <= self.latitude <= 90 or not -180 <= self.longitude <= 180:
            raise ScenarioError(
                f"location {self.name!r}: latitude must be in [-90, 90] and longitude in "
                f"[-180, 180], got {self.latitude}, {self.longitude}"
            )
        try:
            zone(self.tz)
        except LocalTimeError as exc:
            raise ScenarioError(f"location {self.name!r}: tz: {exc}") from exc


LYON = Location("Lyon", 45.7640, 4.8357, "Europe/Paris", 173.0, "FR")
"""The default place: Lyon, France."""
WALENSTADT = Location("Walenstadt", 47.1236, 9.3124, "Europe/Zurich", 426.0, "CH")
"""Walenstadt, Switzerland: the Quartierstrom pilot's town."""


@dataclass(frozen=True, slots=True)
class PV:
    """A rooftop PV array: DC peak power, tilt from horizontal, azimuth clockwise from north."""

    peak_W: int
    tilt_deg: float = 30.0
    azimuth_deg: float = 180.0

    def __post_init__(self) -> None:
        _check_int("pv.peak_W", self.peak_W, 1, 1_000_000)
        if not 0 <= self.tilt_deg <= 90 or not 0 <= self.azimuth_deg < 360:
            raise ScenarioError(
                "pv: tilt_deg must be in [0, 90] and azimuth_deg in [0, 360), "
                f"got {self.tilt_deg}, {self.azimuth_deg}"
            )

    @property
    def kWp(self) -> float:
        return self.peak_W / 1000


@dataclass(frozen=True, slots=True)
class Battery:
    """A home battery: usable capacity, charge/discharge power limit, round-trip efficiency."""

    capacity_Wh: int
    power_W: int
    round_trip_efficiency: float = 0.9
    initial_Wh: int = 0

    def __post_init__(self) -> None:
        _check_int("battery.capacity_Wh", self.capacity_Wh, 1, 10_000_000)
        _check_int("battery.power_W", self.power_W, 4, 10_000_000)
        _check_int("battery.initial_Wh", self.initial_Wh, 0, self.capacity_Wh)
        if not 0 < self.round_trip_efficiency <= 1:
            raise ScenarioError(
                f"battery.round_trip_efficiency must be in (0, 1], got {self.round_trip_efficiency}"
            )


@dataclass(frozen=True, slots=True)
class HouseholdSpec:
    """One household: its yearly consumption, and optionally PV and a battery."""

    name: str
    annual_Wh: int
    pv: PV | None = None
    battery: Battery | None = None

    def __post_init__(self) -> None:
        _check_int(f"{self.name}.annual_Wh", self.annual_Wh, 1, 10**9)

    @property
    def prosumer(self) -> bool:
        return self.pv is not None


@dataclass(frozen=True, slots=True)
class Identity:
    """The keys and starting registers that the seed gives a household's meter and account."""

    index: int
    meter_key: bytes
    meter: str
    account_key: bytes
    account: str
    import_baseline_Wh: int
    export_baseline_Wh: int


@dataclass(frozen=True)
class Scenario:
    """A neighbourhood over ``days`` days from local midnight of ``start`` at ``location``.

    ``sky`` picks the irradiance: ``"cloudy"`` (clear-sky model with a seeded cloud process,
    the default), ``"clear"`` (clear-sky model alone) or ``"tmy:<file>"`` (a TMY3 file bundled
    with pvlib, e.g. ``"tmy:723170TYA.CSV"``, or a path to one).
    """

    name: str
    households: tuple[HouseholdSpec, ...]
    location: Location = LYON
    start: date = date(2026, 5, 4)
    days: int = 1
    seed: int = 0
    sky: str = "cloudy"

    def __post_init__(self) -> None:
        if not self.households:
            raise ScenarioError(f"scenario {self.name!r} needs at least one household")
        _check_int("days", self.days, 1, 3660)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        if self.sky not in _SKIES and not self.sky.startswith("tmy:"):
            raise ScenarioError(f"sky must be 'clear', 'cloudy' or 'tmy:<file>', got {self.sky!r}")
        names = [h.name for h in self.households]
        if len(set(names)) != len(names):
            raise ScenarioError(f"scenario {self.name!r}: household names must be unique")
        if self.first_slot <= 0:
            raise ScenarioError("start must be after 1970-01-01 (slot 0 is never metered)")

    # ── time axis ──

    @property
    def start_utc(self) -> datetime:
        """Local midnight of ``start``, in UTC."""
        local = datetime.combine(self.start, time(0), tzinfo=zone(self.location.tz))
        return local.astimezone(UTC)

    @property
    def first_slot(self) -> int:
        return int(self.start_utc.timestamp()) // SLOT_SECONDS

    @property
    def n_slots(self) -> int:
        return self.days * SLOTS_PER_DAY

    @property
    def slots(self) -> range:
        """The simulated slots (unix seconds // 900, UTC)."""
        return range(self.first_slot, self.first_slot + self.n_slots)

    # ── identities (derived from the seed) ──

    @cached_property
    def identities(self) -> tuple[Identity, ...]:
        """Each household's meter and account keys and starting registers, from the seed."""
        return tuple(self._derive(i) for i in range(len(self.households)))

    @property
    def operator_key(self) -> str:
        """The operator key of a simulation on a chain of its own (the embedded chain), from the
        seed like every other key: the same scenario and seed give the same deployment, gas and
        report. A simulation's keys are public knowledge; a live ledger's operator key is not."""
        return "0x" + derive_key(self.name, self.seed, "operator", 0).hex()

    def _derive(self, index: int) -> Identity:
        meter_key = derive_key(self.name, self.seed, "meter", index)
        account_key = derive_key(self.name, self.seed, "account", index)
        rng = random.Random(f"{self.name}/{self.seed}/baseline/{index}")
        spec = self.households[index]
        # A meter installed some years ago: a few years of consumption on the import register
        # and, for a prosumer, a few years of feed-in on the export register.
        years_import = rng.uniform(0.5, 12.0)
        import_baseline = int(spec.annual_Wh * years_import * rng.uniform(0.55, 0.95))
        export_baseline = 0
        if spec.pv is not None:
            export_baseline = int(spec.pv.peak_W * rng.uniform(0.3, 8.0) * rng.uniform(500, 700))
        return Identity(
            index=index,
            meter_key=meter_key,
            meter=_address(meter_key),
            account_key=account_key,
            account=_address(account_key),
            import_baseline_Wh=import_baseline,
            export_baseline_Wh=export_baseline,
        )

    # ── as data ──

    def to_dict(self) -> dict[str, Any]:
        """The scenario as plain data (what :func:`scenario_from_dict` reads)."""
        loc = self.location
        return {
            "name": self.name,
            "seed": self.seed,
            "start": self.start.isoformat(),
            "days": self.days,
            "sky": self.sky,
            "location": {
                "name": loc.name,
                "latitude": loc.latitude,
                "longitude": loc.longitude,
                "tz": loc.tz,
                "altitude_m": loc.altitude_m,
                "country": loc.country,
            },
            "households": [_household_dict(h) for h in self.households],
        }


def _household_dict(h: HouseholdSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": h.name, "annual_Wh": h.annual_Wh}
    if h.pv is not None:
        out["pv"] = {
            "peak_W": h.pv.peak_W,
            "tilt_deg": h.pv.tilt_deg,
            "azimuth_deg": h.pv.azimuth_deg,
        }
    if h.battery is not None:
        b = h.battery
        out["battery"] = {
            "capacity_Wh": b.capacity_Wh,
            "power_W": b.power_W,
            "round_trip_efficiency": b.round_trip_efficiency,
            "initial_Wh": b.initial_Wh,
        }
    return out


def derive_key(scenario: str, seed: int, role: str, index: int) -> bytes:
    """A secp256k1 private key for ``role`` ("meter", "account") of household ``index``.

    keccak of a label naming the scenario, the seed, the role and the index: the same
    scenario and seed always give the same keys, and two scenarios never share one.
    """
    counter = 0
    while True:
        key = keccak(text=f"voisin/meter_sim/{scenario}/{seed}/{role}/{index}/{counter}")
        if 0 < int.from_bytes(key, "big") < _SECP256K1_N:
            return key
        counter += 1  # probability about 2^-128


def _address(private_key: bytes) -> str:
    return str(keys.PrivateKey(private_key).public_key.to_checksum_address())


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{name} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise ScenarioError(f"{name} must be between {low} and {high}, got {value}")


# ───────────────────────────── Built-in scenarios ─────────────────────────────


def default_scenario(
    households: int = 30,
    days: int = 1,
    start: date = date(2026, 5, 4),
    seed: int = 0,
    *,
    prosumer_share: float = 0.4,
    battery_share: float = 0.3,
    location: Location = LYON,
    sky: str = "cloudy",
    name: str = "default",
) -> Scenario:
    """A French suburban street: about 40 % PV households, some of them with a battery.

    Yearly consumption is log-normal around 3.5 MWh (1.5 to 9 MWh), arrays are 3 to 9 kWp
    facing south-east to south-west at 15-40 degrees (a few east or west), batteries 5 to
    13.5 kWh. ``battery_share`` is the share of PV households with a battery.
    """
    _check_int("households", households, 1, 100_000)
    if not 0 <= prosumer_share <= 1 or not 0 <= battery_share <= 1:
        raise ScenarioError("prosumer_share and battery_share must be in [0, 1]")
    rng = random.Random(f"{name}/{seed}/households")
    n_pv = round(households * prosumer_share)
    with_pv = set(rng.sample(range(households), n_pv))
    specs = [
        _random_household(
            rng,
            f"h{i:04d}",
            pv=i in with_pv,
            battery_share=battery_share,
            pv_range_W=(3_000, 9_000),
            median_Wh=3_500_000,
        )
        for i in range(households)
    ]
    return Scenario(name, tuple(specs), location, start, days, seed, sky)


def quartierstrom_scenario(
    days: int = 1,
    start: date = date(2019, 6, 3),
    seed: int = 0,
    *,
    sky: str = "cloudy",
) -> Scenario:
    """Shaped like the Quartierstrom pilot in Walenstadt (2019): 37 households, 27 with PV.

    The pilot's own household data is not public; sizes here are plausible Swiss values
    (4.5 MWh median consumption, 5 to 20 kWp arrays), with four home batteries.
    """
    rng = random.Random(f"quartierstrom/{seed}/households")
    with_pv = set(rng.sample(range(37), 27))
    with_battery = set(rng.sample(sorted(with_pv), 4))
    specs = [
        _random_household(
            rng,
            f"q{i:02d}",
            pv=i in with_pv,
            battery_share=1.0 if i in with_battery else 0.0,
            pv_range_W=(5_000, 20_000),
            median_Wh=4_500_000,
        )
        for i in range(37)
    ]
    return Scenario("quartierstrom", tuple(specs), WALENSTADT, start, days, seed, sky)


def _random_household(
    rng: random.Random,
    name: str,
    *,
    pv: bool,
    battery_share: float,
    pv_range_W: tuple[int, int],
    median_Wh: int,
) -> HouseholdSpec:
    annual = int(min(max(rng.lognormvariate(0, 0.4) * median_Wh, 1_500_000), 9_000_000))
    array: PV | None = None
    battery: Battery | None = None
    if pv:
        azimuth = rng.choice([90.0, 270.0]) if rng.random() < 0.15 else rng.uniform(135, 225)
        array = PV(
            peak_W=int(round(rng.uniform(*pv_range_W) / 100) * 100),
            tilt_deg=round(rng.uniform(15, 40), 1),
            azimuth_deg=round(azimuth, 1),
        )
        if rng.random() < battery_share:
            capacity = rng.choice([5_000, 7_000, 10_000, 13_500])
            battery = Battery(
                capacity_Wh=capacity,
                power_W=rng.choice([2_500, 3_300, 5_000]),
                round_trip_efficiency=round(rng.uniform(0.88, 0.94), 3),
                initial_Wh=int(capacity * rng.uniform(0.1, 0.6)),
            )
    return HouseholdSpec(name, annual, array, battery)


# ───────────────────────────── Files ─────────────────────────────


def scenario_from_dict(data: dict[str, Any]) -> Scenario:
    """Build a scenario from plain data (the shape :meth:`Scenario.to_dict` writes).

    ``households`` is either a list of households or a count, in which case the default
    street is generated (``prosumer_share`` and ``battery_share`` may be given).
    """
    try:
        location = LYON
        if "location" in data:
            location = Location(**data["location"])
        start = date.fromisoformat(str(data.get("start", "2026-05-04")))
        name = str(data.get("name", "scenario"))
        seed = data.get("seed", 0)
        days = data.get("days", 1)
        sky = str(data.get("sky", "cloudy"))
        listed = data.get("households", 30)
        if isinstance(listed, int):
            return default_scenario(
                listed,
                days,
                start,
                seed,
                prosumer_share=float(data.get("prosumer_share", 0.4)),
                battery_share=float(data.get("battery_share", 0.3)),
                location=location,
                sky=sky,
                name=name,
            )
        specs = tuple(_household_from_dict(h) for h in listed)
        return Scenario(name, specs, location, start, days, seed, sky)
    except (TypeError, KeyError, ValueError) as exc:
        if isinstance(exc, ScenarioError):
            raise
        raise ScenarioError(f"scenario data is not valid: {exc}") from exc


def _household_from_dict(h: dict[str, Any]) -> HouseholdSpec:
    annual = h["annual_Wh"] if "annual_Wh" in h else int(h["annual_kWh"]) * 1000
    pv = None
    if h.get("pv"):
        raw = dict(h["pv"])
        if "kWp" in raw:
            raw["peak_W"] = round(float(raw.pop("kWp")) * 1000)
        pv = PV(**raw)
    battery = Battery(**h["battery"]) if h.get("battery") else None
    return HouseholdSpec(str(h["name"]), annual, pv, battery)


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario from a ``.json`` or ``.toml`` file."""
    path = Path(path)
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
    elif path.suffix == ".toml":
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    else:
        raise ScenarioError(f"scenario files are .json or .toml, got {path.name!r}")
    if not isinstance(data, dict):
        raise ScenarioError(f"{path.name}: the top level must be a table/object")
    return scenario_from_dict(data)
