"""Delivering readings: in-process to the ledger, or over HTTP to the API.

Both take the :class:`~meter_sim.faults.Envelope` list of a run and return a
:class:`DeliveryReport` with one :class:`Outcome` per envelope.

*In-process* (:func:`deliver_in_process`): the envelopes are taken one send slot at a time, as
the meters would send them at the end of each slot. Each round is pre-validated with
:func:`ledger.readings.intake.classify` against the meters' state (read from the chain once,
then carried along), because the contract reverts a whole batch for one bad reading. The
accepted readings are committed by :func:`ledger.market.slot_step.commit_and_settle` (without a
settlement worker: delivery settles nothing) in batches of up to ``batch_size`` (several rounds
may share a transaction: the contract needs only each meter's slots in increasing order).

*HTTP* (:func:`deliver_http`): ``POST {base_url}/readings`` with
``{"readings": [<wire form>]}``, one reading per request, one send slot after the other. Each
meter sends its own readings in order (a later slot accepted first would make an earlier one
stale); a semaphore bounds the requests in flight across meters. Connection errors, 5xx and
429 are retried with exponential backoff (honouring ``Retry-After``); the same body is sent
again, so a retry of a reading that the first attempt did deliver is answered as a duplicate
(``409`` with code ``duplicate``, or ``202`` counting it in ``duplicates``) and counts as
delivered. ``202`` is accepted; ``422``, or ``409`` with another code (a conflicting reading),
is a rejection ``{"code", "message"}`` and is reported, never retried.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import groupby
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount

from ledger.contract.client import VoisinClient
from ledger.errors import LedgerError
from ledger.market.slot_step import commit_and_settle
from ledger.readings.eip712 import SignedReading
from ledger.readings.intake import MeterRecord, classify, reading_to_json
from meter_sim.errors import DeliveryError
from meter_sim.faults import Envelope, Fault

_sleep = asyncio.sleep  # the backoff's clock (tests record the delays through it)


class Status(StrEnum):
    ACCEPTED = "accepted"
    ALREADY_DELIVERED = "already_delivered"
    """The ledger had this reading already (a retry after a lost answer, a copy)."""
    REJECTED = "rejected"
    NOT_SENT = "not_sent"
    """The envelope was dropped on the way (fault injection)."""
    FAILED = "failed"
    """Gave up after the retries (connection errors, 5xx, 429) or an unexpected answer."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one envelope; ``code`` and ``message`` say why it was rejected."""

    envelope: Envelope
    status: Status
    code: str | None = None
    message: str = ""
    flags: tuple[str, ...] = ()
    attempts: int = 0


@dataclass
class DeliveryReport:
    """One outcome per envelope, in the order the envelopes were given."""

    outcomes: list[Outcome] = field(default_factory=list)
    transactions: int = 0
    requests: int = 0

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status is status)

    def by_fault(self) -> dict[Fault | None, Counter[str]]:
        """Per injected fault (None: none), how many outcomes had each status or code."""
        table: dict[Fault | None, Counter[str]] = {}
        for o in self.outcomes:
            table.setdefault(o.envelope.fault, Counter())[o.code or o.status.value] += 1
        return table


# ───────────────────────────── In process ─────────────────────────────


def meter_records(client: VoisinClient, meters: Iterable[str]) -> dict[str, MeterRecord]:
    """The chain's state of ``meters`` (unregistered or retired ones are left out)."""
    out: dict[str, MeterRecord] = {}
    for meter in meters:
        state = client.meter_state(meter)
        if state.household == 0:
            continue
        active = client.household(state.household).active
        out[meter] = MeterRecord(
            state.household, state.last_slot, state.import_Wh, state.export_Wh, active
        )
    return out


def deliver_in_process(
    client: VoisinClient,
    sender: LocalAccount,
    envelopes: Sequence[Envelope],
    *,
    meters: dict[str, MeterRecord] | None = None,
    batch_size: int = 200,
    future_tolerance_slots: int = 1,
) -> DeliveryReport:
    """Pre-validate and commit ``envelopes`` on chain as ``sender``; see the module docstring.

    ``meters`` is the known meters' state; by default it is read from the chain for every meter
    the envelopes name. Raises :class:`DeliveryError` if the contract still refuses a batch
    (the chain's state moved under us); the readings committed before it stay committed.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    domain = client.domain_separator()
    if meters is None:
        meters = meter_records(client, {e.signed.reading.meter for e in envelopes})
    state = dict(meters)
    outcomes: list[Outcome | None] = [None] * len(envelopes)
    report = DeliveryReport()
    pending: list[SignedReading] = []

    def flush() -> None:
        try:
            # At most batch_size readings: one transaction, sent without a dry run (the
            # intake check above accepted them); no database here, so nothing to settle.
            step = commit_and_settle(client, sender, pending, batch_size=batch_size)
        except LedgerError as exc:
            raise DeliveryError(
                f"the contract refused a batch of {len(pending)} pre-validated readings: {exc}"
            ) from exc
        report.transactions += len(step.transactions)
        pending.clear()

    order = sorted(range(len(envelopes)), key=lambda i: (envelopes[i].send_slot, i))
    for send_slot, group in groupby(order, key=lambda i: envelopes[i].send_slot):
        members = list(group)
        sent = [i for i in members if envelopes[i].sent]
        for i in members:
            if not envelopes[i].sent:
                outcomes[i] = Outcome(envelopes[i], Status.NOT_SENT, message="dropped on the way")
        result = classify(
            [envelopes[i].signed for i in sent],
            domain,
            state,
            now_slot=send_slot + 1,
            future_tolerance_slots=future_tolerance_slots,
        )
        state = result.meters
        for verdict in result.verdicts:
            i = sent[verdict.index]
            if verdict.accepted:
                flags = tuple(f.value for f in verdict.flags)
                outcomes[i] = Outcome(envelopes[i], Status.ACCEPTED, flags=flags, attempts=1)
            else:
                code = verdict.code.value if verdict.code else None
                outcomes[i] = Outcome(
                    envelopes[i], Status.REJECTED, code, verdict.message, attempts=1
                )
        for signed in result.accepted:
            pending.append(signed)
            if len(pending) >= batch_size:
                flush()
    flush()
    report.outcomes = [o for o in outcomes if o is not None]
    return report


# ───────────────────────────── HTTP ─────────────────────────────


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """At most ``attempts`` tries; the n-th retry waits ``backoff_s * 2**(n-1)`` (capped at
    ``max_backoff_s``) times a seeded jitter in [0.5, 1], or what ``Retry-After`` asks (capped)."""

    attempts: int = 6
    backoff_s: float = 0.25
    max_backoff_s: float = 10.0
    seed: int = 0


async def deliver_http(
    envelopes: Sequence[Envelope],
    base_url: str,
    *,
    client: httpx.AsyncClient | None = None,
    concurrency: int = 16,
    retry: RetryPolicy | None = None,
    timeout_s: float = 10.0,
    before_round: Callable[[int], Awaitable[None] | None] | None = None,
) -> DeliveryReport:
    """Send ``envelopes`` to ``POST {base_url}/readings``; see the module docstring.

    Envelopes go out one send slot at a time, as meters send at the end of each slot: a round
    finishes (retries included) before the next begins. ``before_round(send_slot)``, if given,
    runs before each round (a simulation advances its clock there; it may be a coroutine
    function). Pass ``client`` to reuse a connection pool or to send through another
    transport (tests use ``httpx.ASGITransport``); otherwise one is opened and closed here.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    policy = retry or RetryPolicy()
    url = base_url.rstrip("/") + "/readings"
    outcomes: list[Outcome | None] = [None] * len(envelopes)
    report = DeliveryReport()
    gate = asyncio.Semaphore(concurrency)
    jitter = random.Random(policy.seed)
    sent: list[int] = []
    for i in sorted(range(len(envelopes)), key=lambda i: (envelopes[i].send_slot, i)):
        if envelopes[i].sent:
            sent.append(i)
        else:
            outcomes[i] = Outcome(envelopes[i], Status.NOT_SENT, message="dropped on the way")

    async def meter_worker(http: httpx.AsyncClient, indices: list[int]) -> None:
        for i in indices:
            outcomes[i] = await _post_one(http, url, envelopes[i], gate, policy, jitter, report)

    own = client is None
    http = client if client is not None else httpx.AsyncClient(timeout=timeout_s)
    try:
        for send_slot, group in groupby(sent, key=lambda i: envelopes[i].send_slot):
            if before_round is not None:
                ready = before_round(send_slot)
                if ready is not None:
                    await ready
            queues: dict[str, list[int]] = {}
            for i in group:
                queues.setdefault(envelopes[i].signed.reading.meter, []).append(i)
            await asyncio.gather(*(meter_worker(http, q) for q in queues.values()))
    finally:
        if own:
            await http.aclose()
    report.outcomes = [o for o in outcomes if o is not None]
    return report


async def _post_one(
    http: httpx.AsyncClient,
    url: str,
    env: Envelope,
    gate: asyncio.Semaphore,
    policy: RetryPolicy,
    jitter: random.Random,
    report: DeliveryReport,
) -> Outcome:
    body = {"readings": [reading_to_json(env.signed)]}
    # Same key on every retry: an API may use it to recognise a repeat without decoding.
    headers = {"Idempotency-Key": "0x" + env.signed.signature.hex()}
    last_error = ""
    for attempt in range(1, policy.attempts + 1):
        retry_after: float | None = None
        async with gate:
            report.requests += 1
            try:
                response = await http.post(url, json=body, headers=headers)
            except httpx.TransportError as exc:
                response = None
                last_error = f"{type(exc).__name__}: {exc}"
        if response is not None:
            status = response.status_code
            if status == 202:
                detail = _json(response)
                flags = tuple(str(f) for f in detail.get("flags", ()))
                if detail.get("accepted") == 0 and detail.get("duplicates", 0) > 0:
                    # An API that answers an identical resend 202 and counts it a duplicate.
                    return Outcome(env, Status.ALREADY_DELIVERED, "duplicate", attempts=attempt)
                return Outcome(env, Status.ACCEPTED, flags=flags, attempts=attempt)
            if status == 409:
                detail = _json(response)
                code = str(detail.get("code", "duplicate"))
                message = str(detail.get("message", ""))
                # A duplicate is delivered already; any other conflict (a different reading
                # for a slot the ledger holds) is a rejection.
                kind = Status.ALREADY_DELIVERED if code == "duplicate" else Status.REJECTED
                return Outcome(env, kind, code, message, attempts=attempt)
            if status == 422:
                detail = _json(response)
                return Outcome(
                    env,
                    Status.REJECTED,
                    str(detail.get("code", "rejected")),
                    str(detail.get("message", response.text)),
                    attempts=attempt,
                )
            if status != 429 and status < 500:
                return Outcome(
                    env, Status.FAILED, f"http_{status}", response.text[:500], attempts=attempt
                )
            last_error = f"HTTP {status}"
            retry_after = _retry_after(response)
        if attempt == policy.attempts:
            break
        delay = min(policy.max_backoff_s, policy.backoff_s * 2 ** (attempt - 1))
        delay *= jitter.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = min(policy.max_backoff_s, max(delay, retry_after))
        await _sleep(delay)
    return Outcome(
        env,
        Status.FAILED,
        "unreachable",
        f"gave up after {policy.attempts} attempts; last error: {last_error}",
        attempts=policy.attempts,
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
