"""Abuse limits on the write endpoints: token buckets per household token and per meter.

A bucket holds up to ``burst`` tokens and refills at ``rate_per_s``; a request takes one token
per write (per reading for ``POST /readings``). An empty bucket answers 429 with
``Retry-After``: the whole seconds until the request would fit.

- **Per token**: the household writes (post, cancel, take). The operator's token is not
  limited: it is the party that would set the limits, and it registers whole neighbourhoods.
- **Per meter**: ``POST /readings``. A real meter sends one reading per 15-minute slot; the
  default burst lets a meter deliver weeks of backlog (or a simulation's history) at once.
  Only readings that only the meter could have sent are charged (accepted, conflicting, or
  refused for what the meter signed): not forgeries, and not copies of readings already held
  or committed (a committed reading is public in its transaction's call data), so nobody can
  exhaust a real meter's bucket by posting forgeries or replays in its name. The check comes
  before the intake, the charge after it.

- **Per API key** (:class:`KeyLimits`): every request a third-party app's key makes, at the
  key's own rate if the operator gave it one, else ``VOISIN_API_KEY_RATE_PER_S``.
- **Per client address, without a key**: the public market reads (``/market/...``), at
  ``VOISIN_PUBLIC_RATE_PER_S``, lower than a key's: a registered app reads more.

Buckets live in this process (each API worker limits on its own, like its caches); the table
is bounded, dropping full buckets first, which loses nothing since a full bucket is the
state of a key never seen.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from api.errors import ApiError

#: Most keys tracked per limiter before full buckets are dropped.
MAX_KEYS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets keyed by a string; ``rate_per_s <= 0`` turns the limiter off."""

    def __init__(
        self,
        name: str,
        rate_per_s: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_KEYS:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            elapsed = max(0.0, now - bucket.at)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_s)
            bucket.at = now
        return bucket

    def _prune(self, now: float) -> None:
        full = [
            k
            for k, b in self._buckets.items()
            if b.tokens + (now - b.at) * self.rate_per_s >= self.burst
        ]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= MAX_KEYS:  # everyone is busy: forget the lot, fail open
            self._buckets.clear()

    def wait_s(self, key: str, cost: int = 1) -> float:
        """Seconds until ``cost`` tokens are in ``key``'s bucket (0 if they are now)."""
        if not self.enabled:
            return 0.0
        with self._lock:
            bucket = self._refilled(key, self.clock())
            missing = min(cost, self.burst) - bucket.tokens
        return max(0.0, missing / self.rate_per_s)

    def take(self, key: str, cost: int = 1) -> float:
        """Take ``cost`` tokens if they are there (returns 0), else take none and return the
        seconds to wait."""
        if not self.enabled:
            return 0.0
        with self._lock:
            bucket = self._refilled(key, self.clock())
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return 0.0
            return (min(cost, self.burst) - bucket.tokens) / self.rate_per_s

    def charge(self, key: str, cost: int) -> None:
        """Take ``cost`` tokens even if that empties the bucket below zero (a debt the next
        requests wait out): for work already done, such as readings just stored."""
        if not self.enabled or cost <= 0:
            return
        with self._lock:
            bucket = self._refilled(key, self.clock())
            bucket.tokens = max(bucket.tokens - cost, -float(self.burst))


class KeyLimits:
    """Token buckets per API key, each at its key's own rate and burst (or the defaults):
    one :class:`RateLimiter` per distinct (rate, burst), keyed by the key's id."""

    def __init__(
        self,
        default_rate_per_s: float,
        default_burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default_rate_per_s = default_rate_per_s
        self.default_burst = default_burst
        self.clock = clock
        self._limiters: dict[tuple[float, int], RateLimiter] = {}
        self._lock = threading.Lock()

    def limiter(self, rate_per_s: float | None, burst: int | None) -> RateLimiter:
        """The limiter of keys with this rate and burst (None: the default)."""
        pair = (
            self.default_rate_per_s if rate_per_s is None else float(rate_per_s),
            self.default_burst if burst is None else burst,
        )
        with self._lock:
            found = self._limiters.get(pair)
            if found is None:
                found = self._limiters[pair] = RateLimiter("api_key", *pair, clock=self.clock)
            return found

    def take(self, key_id: int, rate_per_s: float | None, burst: int | None) -> None:
        """One request of key ``key_id``, or the 429 to answer (:func:`too_many`)."""
        limiter = self.limiter(rate_per_s, burst)
        wait = limiter.take(f"key:{key_id}")
        if wait > 0:
            raise too_many(f"API key {key_id}", wait, limiter)


def too_many(what: str, wait_s: float, limiter: RateLimiter) -> ApiError:
    """The 429 answer: ``Retry-After`` in whole seconds (at least 1)."""
    retry_after = max(1, math.ceil(wait_s))
    return ApiError(
        429,
        "rate_limited",
        f"too many requests for {what}: at most {limiter.burst} at once and "
        f"{limiter.rate_per_s:g} per second after that; retry after {retry_after} s",
        details={"retry_after_s": retry_after, "limit": limiter.name},
        headers={"Retry-After": str(retry_after)},
    )


def check_meters(limiter: RateLimiter, counts: Iterable[tuple[str, int]]) -> None:
    """Refuse a batch of readings if any of its meters has no room for its share of it."""
    worst: tuple[float, str] = (0.0, "")
    for meter, n in counts:
        wait = limiter.wait_s(meter, n)
        if wait > worst[0]:
            worst = (wait, meter)
    if worst[0] > 0:
        raise too_many(f"meter {worst[1]}", worst[0], limiter)
