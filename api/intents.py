"""Intents: every action that writes the chain is recorded before it is done, and done once.

An *intent* (a row of ``api_intent``, :class:`api.models.ApiIntent`) is written for every
registration, top-up, account-key rotation, meter rotation, direct take and erasure, once the
request has been validated completely and before anything irreversible happens. It holds what
will be done (the new account and its encrypted key, the meter, the amount, the offer...) and
moves through four states:

``pending``
    recorded; nothing sent to the chain yet.
``sending``
    a transaction is about to be sent, or was: its sender, the nonce it takes, the head block
    before it and its call data were recorded first.
``done``
    the chain holds the effect and the database agrees; the answer is stored.
``failed``
    the chain refused it, or a re-check under the chain lock did, so nothing was applied; the
    refusal is stored as the answer.

Driving an intent (:meth:`IntentRunner.drive`) starts by asking the chain whether its effect
is already there, so a request, its retry, the next start of the server and the background
pass may all drive the same intent and it still happens once:

- a registration and a key rotation create a fresh account first: whether the chain knows it
  as a household (``householdOf``) says whether the transaction went through, and its ether
  balance whether it was funded for gas;
- a meter rotation names a meter new to the chain: its ``meterState`` says whether it is in use;
- an erasure deactivates the household: whether it is still active says whether it went through;
- a top-up and a take carry nothing unique on chain, so their transaction is found by sender
  and nonce (:func:`api.sent.find_sent`, which the outbox's order posts share): the first
  block after ``block_before`` where the sender's nonce passed the recorded one holds it, and
  it is ours if its call data is the recorded call data (a nonce is used once: another call
  data there means ours never went).

Then the database is brought in line (the household row and its token, the new key, the new
meter) in the transaction that stores the answer. Every drive holds the chain gate
(:class:`api.chain_gate.ChainGate`), as every chain write of the API does, so one intent is
driven at a time and the nonce read before a transaction is the one it takes. A household's
intents are driven oldest first, so that a take after an interrupted key rotation signs with
the new key.

If the chain stops answering before anything was sent, the intent is deleted and the answer is
503: nothing happened, and the request may be sent again. Once a transaction may have been
sent, the intent stays ``sending`` until the chain answers again; a retry with the same key,
the background pass or the next start finishes it.

Actions the database alone carries out (posting an order, which the outbox sends later, and
issuing a token) record their intent, already ``done``, in the transaction that applies them:
that row is their idempotency record.

The fault hook (:class:`FaultHook`) is for tests only. ``VOISIN_TEST_FAULT=<kind>.<step>``
(optionally ``:kill``) makes the server raise (or kill itself with SIGKILL) once, right after
that step (:data:`FAULT_POINTS`), to show that every interruption converges; the outbox reads
the same variable for its order posts and cancels (:data:`OUTBOX_FAULT_POINTS`). It is read
from the environment when the server starts and is off unless set; no request can reach it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from sqlalchemy import Engine, delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api import privacy
from api.chain_gate import CHAIN_DOWN, ChainGate
from api.custody import KeyVault
from api.errors import ApiError, chain_unavailable, from_ledger
from api.idempotency import KEY_RETENTION, Ask
from api.models import ApiHousehold, ApiIntent, ApiOrder, HouseholdErasure, IntakeReading
from api.schemas import HouseholdCreated, KeyRotated, MeterRotated, TakeOut, TopUpOut
from api.sent import Sending, TransactionPending, about_to_send, find_sent
from api.sqlite_pragmas import begin_writing
from ledger.chain.backends import Chain
from ledger.contract.client import VoisinClient
from ledger.errors import ContractError, LedgerError, NoGasMoney
from ledger.market.agents import AgentSettings, default_orders
from ledger.types import OPEN_END, Tariffs

log = logging.getLogger("voisin.intents")

PENDING, SENDING, DONE, FAILED = "pending", "sending", "done", "failed"
UNFINISHED = (PENDING, SENDING)
FINISHED = (DONE, FAILED)

#: Where the fault hook can interrupt each kind: right after each of these steps, in order.
#: ``recorded``: the intent row is committed; ``sending``: the transaction's sender and nonce
#: are committed; ``funded``: the new account's gas money is mined; ``sent``: the action's
#: transaction is mined; ``mirrored``: the chain's events are in the database; ``confirmed``:
#: the database row and the answer are committed (the answer is not yet sent).
FAULT_POINTS: dict[str, tuple[str, ...]] = {
    "register": ("recorded", "sending", "funded", "sent", "mirrored", "confirmed"),
    "rotate_key": ("recorded", "sending", "funded", "sent", "mirrored", "confirmed"),
    "rotate_meter": ("recorded", "sending", "sent", "mirrored", "confirmed"),
    "topup": ("recorded", "sending", "sent", "mirrored", "confirmed"),
    "take": ("recorded", "sending", "sent", "mirrored", "confirmed"),
}
#: Where the hook can interrupt the outbox (:mod:`api.outbox`) as it sends an order on chain:
#: right after ``sending`` (the post's sender, nonce, head block and call data are committed)
#: and ``sent`` (the post or the cancel is mined; nothing of it is in the database yet).
OUTBOX_FAULT_POINTS: dict[str, tuple[str, ...]] = {
    "post_offer": ("sending", "sent"),
    "post_bid": ("sending", "sent"),
    "cancel_offer": ("sent",),
    "cancel_bid": ("sent",),
}
#: The environment variable that arms the fault hook (tests only).
FAULT_ENV = "VOISIN_TEST_FAULT"

#: A take's refusals that mean "someone got there first": a conflict, not bad input.
NOTHING_LEFT = frozenset(
    {
        "insufficient_credits",
        "insufficient_deficit",
        "order_cap_exceeded",
        "insufficient_funds",
        "order_closed",
    }
)


class InjectedFault(RuntimeError):
    """Raised by the armed fault hook (tests only)."""


@dataclass
class FaultHook:
    """Interrupts the server once, right after one step of one kind of intent (tests only)."""

    point: str | None = None
    action: str = "raise"

    @classmethod
    def from_environment(cls) -> FaultHook:
        """The hook ``VOISIN_TEST_FAULT`` asks for (``<kind>.<step>[:raise|:kill]``), else off."""
        spec = os.environ.get(FAULT_ENV, "").strip()
        if not spec:
            return cls()
        point, _, action = spec.partition(":")
        kind, _, step = point.partition(".")
        action = action or "raise"
        known = FAULT_POINTS | OUTBOX_FAULT_POINTS
        if step not in known.get(kind, ()) or action not in ("raise", "kill"):
            points = ", ".join(f"{k}.{s}" for k, steps in known.items() for s in steps)
            raise ValueError(
                f"{FAULT_ENV}={spec!r}: expected <kind>.<step>[:raise|:kill], the point one of "
                f"{points}"
            )
        log.warning("TEST FAULT HOOK ARMED: %s after %s (%s)", action, point, FAULT_ENV)
        return cls(point, action)

    def at(self, kind: str, step: str) -> None:
        """Interrupt here if armed for ``kind.step``; fires once."""
        if self.point is None or self.point != f"{kind}.{step}":
            return
        self.point = None
        log.warning("test fault hook: %s after %s.%s", self.action, kind, step)
        if self.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise InjectedFault(f"fault injected after {kind}.{step} (a test's {FAULT_ENV})")


@dataclass(frozen=True, slots=True)
class Answer:
    """What a request answers: a status and its JSON body (an error's ``code`` and
    ``message`` when the status is 400 or more)."""

    status: int
    body: dict[str, Any]

    @classmethod
    def of_error(cls, error: ApiError) -> Answer:
        body: dict[str, Any] = {"code": error.code, "message": error.message}
        if error.details is not None:
            body["details"] = error.details
        return cls(error.status, body)

    def unwrap(self) -> dict[str, Any]:
        """The body of a success; an error is raised as the :class:`ApiError` it was."""
        if self.status >= 400:
            raise ApiError(
                self.status,
                str(self.body.get("code", "error")),
                str(self.body.get("message", "")),
                self.body.get("details"),
            )
        return self.body


@dataclass
class Plan:
    """What a validated request will do: the intent's payload and what it is about."""

    payload: dict[str, Any]
    household: int | None = None
    #: A unique thing the action claims until it is finished (a meter address).
    subject: str | None = None
    #: For an action the database alone carries out: applied in the transaction that records
    #: the intent, which is then finished at once with the answer this returns.
    apply: Callable[[Session, ApiIntent], Answer] | None = field(default=None, repr=False)


class _Refused(Exception):
    """An action found not done and refused: nothing was applied."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _loads(text: str | None) -> dict[str, Any]:
    value = json.loads(text or "{}")
    assert isinstance(value, dict)
    return value


def require_active(household: int, active: bool) -> None:
    """Refuse to top up a deactivated household: the money could never be spent."""
    if not active:
        raise ApiError(
            422,
            "household_inactive",
            f"household {household} is deactivated: money minted to it could never be spent; "
            "only an active household can be topped up",
        )


def claimed(session: Session, subject: str) -> bool:
    """Whether an unfinished intent claims ``subject`` (e.g. a meter being registered)."""
    found = session.exec(
        select(ApiIntent.id).where(
            ApiIntent.subject == subject, col(ApiIntent.state).in_(UNFINISHED)
        )
    ).first()
    return found is not None


def meter_in_another_market(meter: str, market: str) -> ApiError:
    return ApiError(
        409,
        "meter_already_registered",
        f"meter {meter} belongs to market {market!r} of this city (a meter key is used in one "
        "market, once)",
    )


class IntentRunner:
    """Records, drives and reconciles intents; composed by :class:`api.services.Services`."""

    def __init__(
        self,
        gate: ChainGate,
        *,
        chain: Chain,
        client: VoisinClient,
        engine: Engine,
        vault: KeyVault,
        mirror: Callable[[], object],
        forget_meter: Callable[[str], None],
        token_secret: str,
        forget_tokens: Callable[[int], None] = lambda household: None,
        meter_elsewhere: Callable[[str], str | None] = lambda meter: None,
        fault: FaultHook | None = None,
    ) -> None:
        """``mirror`` brings the database up to the chain (the caller holds the gate);
        ``forget_meter`` drops the intake's cached state of a retired meter; household
        tokens are derived from ``token_secret`` (:meth:`token_for`); ``forget_tokens`` drops
        a household's tokens from the process's token cache once it is erased, whoever
        finishes the erasure (a request, or the background pass after the chain was down);
        ``meter_elsewhere`` names the other market of a city that holds a meter key."""
        self.gate = gate
        self.chain = chain
        self.client = client
        self.engine = engine
        self.vault = vault
        self.mirror = mirror
        self.forget_meter = forget_meter
        self.fault = fault if fault is not None else FaultHook()
        self.forget_tokens = forget_tokens
        self.meter_elsewhere = meter_elsewhere
        # A bearer token is derived from a per-intent salt under a key the database never
        # holds, so that an answer given again carries the same token while only its hash
        # and the salt are stored.
        self._token_key = hmac.new(
            token_secret.encode(), b"voisin household bearer token", hashlib.sha256
        ).digest()
        self._steps: dict[str, Callable[[ApiIntent], Answer]] = {
            "register": self._register,
            "rotate_key": self._rotate_key,
            "rotate_meter": self._rotate_meter,
            "topup": self._top_up,
            "take": self._take,
            "erase": self._erase,
        }

    # ───────────────────────────── Tokens ─────────────────────────────

    @staticmethod
    def new_salt() -> str:
        return secrets.token_hex(16)

    def token_for(self, salt: str) -> str:
        """The household bearer token of ``salt``: ``vsn_`` and 32 bytes, URL-safe base64."""
        digest = hmac.new(self._token_key, salt.encode(), hashlib.sha256).digest()
        return "vsn_" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    # ───────────────────────────── Requests ─────────────────────────────

    def submit(self, ask: Ask, plan: Callable[[], Plan]) -> Answer:
        """Answer ``ask``: again if its key was seen (after finishing what it started), else
        validate it (``plan``, which raises :class:`ApiError` and records nothing when it
        refuses), record its intent and drive it."""
        if ask.key is not None:
            known = self._by_key(ask)
            if known is not None:
                return self._again(known, ask)
        planned = plan()
        try:
            intent_id, answer = self._record(ask, planned)
        except IntegrityError:
            known = self._by_key(ask) if ask.key is not None else None
            if known is None:
                raise
            # A concurrent request with the same key recorded it first: answer as its retry.
            return self._again(known, ask)
        if answer is not None:
            return answer
        self.fault.at(ask.kind, "recorded")
        return self.drive(intent_id)

    def _by_key(self, ask: Ask) -> ApiIntent | None:
        with Session(self.engine) as session:
            return session.exec(
                select(ApiIntent).where(
                    ApiIntent.scope == ask.scope, ApiIntent.idempotency_key == ask.key
                )
            ).first()

    def _again(self, intent: ApiIntent, ask: Ask) -> Answer:
        if intent.fingerprint != ask.fingerprint or intent.kind != ask.kind:
            raise ApiError(
                409,
                "idempotency_key_reused",
                f"Idempotency-Key {ask.key!r} was already used for another request (another "
                "operation or body); send the same request to get its answer again, or use a "
                "new key for a new request",
            )
        if intent.state in FINISHED:
            return self._stored(intent)
        assert intent.id is not None
        return self.drive(intent.id)

    def _record(self, ask: Ask, planned: Plan) -> tuple[int, Answer | None]:
        with Session(self.engine) as session, session.begin():
            intent = ApiIntent(
                kind=ask.kind,
                scope=ask.scope,
                idempotency_key=ask.key,
                fingerprint=ask.fingerprint,
                household=planned.household,
                subject=planned.subject,
                payload=_dumps(planned.payload),
                updated_s=int(time.time()),
            )
            session.add(intent)
            session.flush()
            answer = None
            if planned.apply is not None:
                answer = planned.apply(session, intent)
                self._store(intent, answer)
                session.add(intent)
            assert intent.id is not None
            return intent.id, answer

    # ───────────────────────────── Answers ─────────────────────────────

    def _store(self, intent: ApiIntent, answer: Answer) -> None:
        """Finish ``intent`` with ``answer`` (a bearer token in it is stored as null)."""
        body = dict(answer.body)
        if body.get("token") is not None:
            body["token"] = None
        intent.state = DONE if answer.status < 400 else FAILED
        intent.status_code = answer.status
        intent.response = _dumps(body)
        intent.updated_s = int(time.time())

    def _stored(self, intent: ApiIntent) -> Answer:
        body = _loads(intent.response)
        salt = _loads(intent.payload).get("token_salt")
        if "token" in body and body["token"] is None and salt:
            body["token"] = self.token_for(str(salt))
        return Answer(intent.status_code or 500, body)

    def _finish(self, intent_id: int, answer: Answer, **columns: Any) -> Answer:
        with Session(self.engine) as session, session.begin():
            self._finish_in(session, intent_id, answer, **columns)
        return answer

    def _finish_in(self, session: Session, intent_id: int, answer: Answer, **columns: Any) -> None:
        row = session.get(ApiIntent, intent_id)
        assert row is not None
        for name, value in columns.items():
            setattr(row, name, value)
        self._store(row, answer)
        session.add(row)

    # ───────────────────────────── Driving ─────────────────────────────

    def drive(self, intent_id: int) -> Answer:
        """Finish intent ``intent_id`` (if it is not) and return its answer."""
        return self.gate.on_chain(lambda: self._drive(intent_id))

    def _drive(self, intent_id: int) -> Answer:
        intent = self._load(intent_id)
        if intent.state in FINISHED:
            return self._stored(intent)
        if intent.household is not None:
            try:
                for older in self._unfinished(household=intent.household, before=intent_id):
                    self._drive(older)
            except ApiError as exc:
                # The chain stopped answering while finishing an older one: this one was not
                # started, so nothing of it happens later behind the 503's back.
                if exc.status >= 500:
                    self._drop_if_pending(intent_id)
                raise
        step = self._steps.get(intent.kind)
        if step is None:
            raise RuntimeError(f"intent {intent_id} of kind {intent.kind} cannot be driven")
        try:
            return step(intent)
        except _Refused as refused:
            log.info("intent %d (%s) refused: %s", intent_id, intent.kind, refused.error.message)
            return self._finish(intent_id, Answer.of_error(refused.error))
        except CHAIN_DOWN as exc:
            raise self._chain_down(intent_id, exc) from exc

    def _load(self, intent_id: int) -> ApiIntent:
        with Session(self.engine) as session:
            intent = session.get(ApiIntent, intent_id)
        if intent is None:
            # Deleted by another drive that found the chain down before anything was sent.
            raise ApiError(
                503,
                "chain_unavailable",
                "the chain could not be reached and nothing was done; send the request again",
            )
        return intent

    def _unfinished(self, *, household: int | None = None, before: int | None = None) -> list[int]:
        query = select(ApiIntent.id).where(col(ApiIntent.state).in_(UNFINISHED))
        if household is not None:
            query = query.where(ApiIntent.household == household)
        if before is not None:
            query = query.where(col(ApiIntent.id) < before)
        with Session(self.engine) as session:
            return [i for i in session.exec(query.order_by(col(ApiIntent.id))) if i is not None]

    def _chain_down(self, intent_id: int, exc: BaseException) -> ApiError:
        """The answer when the node stopped answering: nothing done (the intent is dropped)
        if nothing was sent yet, else an outcome that the next drive settles."""
        self.gate.mark_down(exc)
        if self._drop_if_pending(intent_id):
            return chain_unavailable(exc)
        return ApiError(
            503,
            "chain_unavailable",
            f"the chain stopped answering while this request was being carried out ({exc}); "
            "it is completed, or found not done, as soon as the chain answers. Send it again "
            "with the same Idempotency-Key for the outcome; without one, check before sending "
            "it again",
        )

    def _drop_if_pending(self, intent_id: int) -> bool:
        """Delete the intent if nothing of it was sent (its key is free again); whether it did."""
        with Session(self.engine) as session, session.begin():
            row = session.get(ApiIntent, intent_id)
            if row is None or row.state != PENDING:
                return False
            session.delete(row)
            return True

    @contextmanager
    def _refusals(self) -> Iterator[None]:
        """Errors that mean "refused, nothing applied": the chain's typed refusal of a dry run
        or of a mined transaction, or a re-check's 4xx. Not: the node down, anything else."""
        try:
            yield
        except CHAIN_DOWN:
            raise
        except LedgerError as exc:
            raise _Refused(from_ledger(exc)) from exc
        except ApiError as exc:
            if exc.status >= 500:
                raise
            raise _Refused(exc) from exc

    def _mark_sending(
        self, intent: ApiIntent, sender: str, calldata: bytes | None, **updates: Any
    ) -> dict[str, Any]:
        """Record the transaction about to be sent (and ``updates`` to the payload) before
        sending it; returns the payload."""
        # The gate is held: nothing else sends as ``sender`` until this transaction is sent.
        sending = about_to_send(self.chain.w3, sender, calldata)
        assert intent.id is not None
        with Session(self.engine) as session, session.begin():
            row = session.get(ApiIntent, intent.id)
            assert row is not None
            payload = _loads(row.payload) | updates
            row.state = SENDING
            row.sender, row.nonce, row.block_before = sender, sending.nonce, sending.block_before
            row.calldata = sending.calldata
            row.payload = _dumps(payload)
            row.updated_s = int(time.time())
            session.add(row)
        self.fault.at(intent.kind, "sending")
        return payload

    def _find_sent(self, intent: ApiIntent) -> Mapping[str, Any] | None:
        """The receipt of the intent's recorded transaction if it was mined and succeeded;
        None if it was never mined, or reverted (nothing applied either way)."""
        if intent.state != SENDING or intent.sender is None or intent.calldata is None:
            return None
        if intent.nonce is None or intent.block_before is None:
            return None
        sending = Sending(intent.sender, intent.nonce, intent.block_before, intent.calldata)
        try:
            return find_sent(self.chain.w3, self.client.address, sending)
        except TransactionPending as exc:
            raise ApiError(
                503,
                "transaction_pending",
                f"this request's transaction (from {exc.sender}, nonce {exc.nonce}) waits to be "
                "mined; send the request again with the same Idempotency-Key",
            ) from exc

    def _mirror(self, kind: str) -> None:
        """Mirror the chain now so that the next read shows the action; the action is done
        whatever happens here (the outbox mirrors on its next pass)."""
        try:
            self.mirror()
        except CHAIN_DOWN as exc:
            self.gate.mark_down(exc)
            log.warning("%s mirrored later: %s: %s", kind, type(exc).__name__, exc)
        except Exception as exc:
            log.warning("%s mirrored later: %s: %s", kind, type(exc).__name__, exc)
        self.fault.at(kind, "mirrored")

    def _require_new_meter(self, meter: str) -> None:
        """Under the chain's lock (one for a whole city): the meter is on no contract yet."""
        state = self.client.meter_state(meter)
        if state.household != 0 or state.retired:
            raise ApiError(
                409,
                "meter_already_registered",
                f"meter {meter} is already registered on chain (household {state.household}"
                f"{', retired' if state.retired else ''}); a meter key is used once",
            )
        elsewhere = self.meter_elsewhere(meter)
        if elsewhere is not None:
            raise meter_in_another_market(meter, elsewhere)

    def _fund(self, kind: str, account: str) -> None:
        """Gas money for a new account, once: a funded account is not funded again."""
        if int(self.chain.w3.eth.get_balance(to_checksum_address(account))) == 0:
            self.chain.fund(account)
            self.fault.at(kind, "funded")

    # ───────────────────────────── The actions ─────────────────────────────

    def _register(self, intent: ApiIntent) -> Answer:
        payload = _loads(intent.payload)
        account, meter = payload["account"], payload["meter"]
        operator = self.chain.operator
        household = self.client.household_of(account)
        if household == 0:
            with self._refusals():
                self._require_new_meter(meter)
                tariffs = self.client.tariffs()
                payload = self._mark_sending(
                    intent,
                    operator.address,
                    None,
                    tariffs=[
                        tariffs.feed_in_ueur_per_kWh,
                        tariffs.retail_ueur_per_kWh,
                        tariffs.grid_fee_ueur_per_kWh,
                    ],
                )
                self._fund(intent.kind, account)
                household = self.client.register_household(
                    operator,
                    account,
                    meter,
                    prosumer=payload["prosumer"],
                    import_baseline_Wh=payload["import_baseline_Wh"],
                    export_baseline_Wh=payload["export_baseline_Wh"],
                )
            self.fault.at(intent.kind, "sent")
        self._mirror(intent.kind)
        tariffs = Tariffs(*payload["tariffs"]) if "tariffs" in payload else self.client.tariffs()
        token = self.token_for(payload["token_salt"])
        answer = Answer(
            201,
            HouseholdCreated(
                id=household,
                account=account,
                meter=meter,
                prosumer=payload["prosumer"],
                name=payload["name"],
                token=token,
            ).model_dump(mode="json"),
        )
        assert intent.id is not None
        with Session(self.engine) as session, session.begin():
            if session.get(ApiHousehold, household) is None:
                session.add(
                    ApiHousehold(
                        id=household,
                        name=payload["name"],
                        account=account,
                        meter=meter,
                        prosumer=payload["prosumer"],
                        token_hash=payload["token_hash"],
                        key_json=payload["key_json"],
                        meter_import_Wh=payload["import_baseline_Wh"],
                        meter_export_Wh=payload["export_baseline_Wh"],
                    )
                )
                # Standing from the first slot: the agent trades whatever the meter reports.
                for order in default_orders(
                    {household: (payload["prosumer"], AgentSettings())}, set(), set(), tariffs
                ):
                    session.add(
                        ApiOrder(
                            side=order.side,
                            household=household,
                            price_limit_ueur_per_kWh=order.price_limit_ueur_per_kWh,
                            first_slot=1,
                            last_slot=OPEN_END,
                            source="agent",
                        )
                    )
            self._finish_in(session, intent.id, answer, household=household)
        self.fault.at(intent.kind, "confirmed")
        return answer

    def _rotate_key(self, intent: ApiIntent) -> Answer:
        payload = _loads(intent.payload)
        household, account = intent.household, payload["account"]
        assert household is not None and intent.id is not None
        operator = self.chain.operator
        if self.client.household_of(account) != household:
            with self._refusals():
                self._require_not_erased(household)
                current = self.client.household(household)
                payload = self._mark_sending(
                    intent, operator.address, None, previous_account=current.account
                )
                self._fund(intent.kind, account)
                self.client.rotate_account(operator, household, account)
            self.fault.at(intent.kind, "sent")
        self._mirror(intent.kind)
        answer = Answer(
            200,
            KeyRotated(
                id=household,
                account=account,
                previous_account=to_checksum_address(payload["previous_account"]),
            ).model_dump(mode="json"),
        )
        with Session(self.engine) as session, session.begin():
            record = session.get(ApiHousehold, household)
            assert record is not None
            if record.account != account:
                record.account, record.key_json = account, payload["key_json"]
                session.add(record)
            self._finish_in(session, intent.id, answer)
        self.fault.at(intent.kind, "confirmed")
        return answer

    def _rotate_meter(self, intent: ApiIntent) -> Answer:
        payload = _loads(intent.payload)
        household, meter = intent.household, payload["meter"]
        assert household is not None and intent.id is not None
        imported, exported = payload["import_baseline_Wh"], payload["export_baseline_Wh"]
        state = self.client.meter_state(meter)
        # The meter was new to the chain when the intent was recorded, and the intent claims
        # it: the meter in use (or retired by a later rotation) means that this rotation went
        # through, unless another request's rotation, finished, took the meter first (two
        # requests checked at once): then the checks below refuse this one. (A database
        # restored from before this rotation was sent holds it pending, though it went
        # through: it is done here, the previous meter read from the household's row.)
        went_through = state.household == household or state.retired
        if not went_through or self._rotated_by_another(intent, meter):
            with self._refusals():
                self._require_not_erased(household)
                current = self.client.household(household)
                self._require_committed(current.meter)
                self._require_new_meter(meter)
                payload = self._mark_sending(
                    intent, self.chain.operator.address, None, previous_meter=current.meter
                )
                self.client.rotate_meter(self.chain.operator, household, meter, imported, exported)
            self.fault.at(intent.kind, "sent")
        self._mirror(intent.kind)
        if "previous_meter" not in payload:
            with Session(self.engine) as session:
                row = session.get(ApiHousehold, household)
                assert row is not None
                payload["previous_meter"] = row.meter
        previous = to_checksum_address(payload["previous_meter"])
        # The new meter starts after the old one's last slot on chain: what the intake holds.
        # A reading of the old meter the intake accepted while the rotation was on its way
        # (after the check above) is not on chain, and the chain refuses it now: it is
        # rejected here, saying why, and the old meter's state goes with it.
        took_over = self.client.meter_state(meter).last_slot
        with Session(self.engine) as session, session.begin():
            row = session.get(ApiHousehold, household)
            assert row is not None
            if row.meter != meter:
                row.meter, row.meter_import_Wh, row.meter_export_Wh = meter, imported, exported
                row.meter_last_slot = took_over
                session.add(row)
                late = session.execute(
                    update(IntakeReading)
                    .where(
                        col(IntakeReading.meter) == previous,
                        col(IntakeReading.status) == "queued",
                    )
                    .values(
                        status="rejected",
                        reason=f"meter {previous} was replaced by {meter} before this reading "
                        "reached the chain; send it again signed by the new meter",
                    )
                )
                if late.rowcount:  # type: ignore[attr-defined]
                    log.warning(
                        "household %d: %d reading(s) of meter %s accepted during its rotation "
                        "were rejected",
                        household,
                        late.rowcount,  # type: ignore[attr-defined]
                        previous,
                    )
            answer = Answer(
                200,
                MeterRotated(
                    id=household,
                    meter=meter,
                    previous_meter=previous,
                    import_baseline_Wh=imported,
                    export_baseline_Wh=exported,
                    last_slot=row.meter_last_slot,
                ).model_dump(mode="json"),
            )
            self._finish_in(session, intent.id, answer)
        self.forget_meter(previous)
        self.fault.at(intent.kind, "confirmed")
        return answer

    def _rotated_by_another(self, intent: ApiIntent, meter: str) -> bool:
        """Whether another rotation to ``meter`` is done: this one did not take it."""
        with Session(self.engine) as session:
            found = session.exec(
                select(ApiIntent.id).where(
                    ApiIntent.kind == "rotate_meter",
                    ApiIntent.subject == meter,
                    ApiIntent.state == DONE,
                    ApiIntent.id != intent.id,
                )
            ).first()
        return found is not None

    def _require_not_erased(self, household: int) -> None:
        """Refuse a new key or meter for a household erased since the request was checked (an
        erasure finished in between): its erasure removed them for good."""
        with Session(self.engine) as session:
            erased = session.get(HouseholdErasure, household) is not None
        if erased:
            raise privacy.erased_error(household)

    def _require_committed(self, meter: str) -> None:
        """Refuse while readings of ``meter`` wait for the chain: it would refuse them once
        the meter is retired."""
        with Session(self.engine) as session:
            waiting = session.exec(
                select(func.count())
                .select_from(IntakeReading)
                .where(IntakeReading.meter == meter, IntakeReading.status == "queued")
            ).one()
        if waiting:
            raise ApiError(
                409,
                "meter_readings_pending",
                f"{waiting} reading(s) of meter {meter} are not on chain yet; retry once the "
                "outbox has committed them (GET /health shows the backlog)",
            )

    def _top_up(self, intent: ApiIntent) -> Answer:
        payload = _loads(intent.payload)
        household, amount = intent.household, int(payload["amount_ueur"])
        assert household is not None and intent.id is not None
        receipt = self._find_sent(intent)
        if receipt is not None:
            tx_hash = HexBytes(receipt["transactionHash"]).to_0x_hex()
        else:
            with self._refusals():
                # The household's account now, from the chain: a key rotation moves it.
                on_chain = self.client.household(household)
                require_active(household, on_chain.active)
                account = to_checksum_address(on_chain.account)
                operator = self.chain.operator
                calldata = self.client.calldata("topUp", account, amount)
                self._mark_sending(intent, operator.address, calldata)
                tx_hash = self.client.top_up(operator, account, amount).tx_hash
            self.fault.at(intent.kind, "sent")
        self._mirror(intent.kind)
        answer = Answer(
            201,
            TopUpOut(household=household, amount_ueur=amount, tx_hash=tx_hash).model_dump(
                mode="json"
            ),
        )
        self._finish(intent.id, answer, tx_hash=tx_hash)
        self.fault.at(intent.kind, "confirmed")
        return answer

    def _take(self, intent: ApiIntent) -> Answer:
        payload = _loads(intent.payload)
        buyer = intent.household
        assert buyer is not None and intent.id is not None
        chain_id, slot, max_Wh = payload["chain_id"], payload["slot"], payload["max_Wh"]
        receipt = self._find_sent(intent)
        if receipt is not None:
            events = self.client.decode_logs(receipt["logs"])
            tx_hash = HexBytes(receipt["transactionHash"]).to_0x_hex()
        else:
            with self._refusals():
                with Session(self.engine) as session:
                    order = session.get(ApiOrder, payload["offer"])
                    record = session.get(ApiHousehold, buyer)
                assert order is not None and record is not None
                if order.status != "open" or order.cancel_requested:
                    raise ApiError(
                        409,
                        "offer_not_open",
                        f"offer {payload['offer']} is {order.status}"
                        f"{' (cancel requested)' if order.cancel_requested else ''}: only "
                        "open offers can be taken",
                    )
                if not record.key_json:
                    raise ApiError(
                        409,
                        "no_account_key",
                        f"household {buyer} has no account key (taken back from the chain "
                        "after a restore): the operator issues it one first (POST "
                        f"/households/{buyer}/rotate-key)",
                    )
                account = self.vault.account(record.key_json)
                calldata = self.client.calldata("takeOffer", chain_id, slot, max_Wh)
                self._mark_sending(intent, account.address, calldata)
                try:
                    result = self.client.take_offer(account, chain_id, slot, max_Wh)
                except ContractError as exc:
                    error = from_ledger(exc)
                    if error.code in NOTHING_LEFT:
                        # Another take (or the settlement) got there first: a conflict.
                        raise ApiError(
                            409, error.code, f"nothing left to buy: {error.message}"
                        ) from exc
                    raise
                events, tx_hash = result.events, result.tx_hash
            self.fault.at(intent.kind, "sent")
        self._mirror(intent.kind)
        fill = next(e for e in events if e.name == "FillSettled").args
        answer = Answer(
            200,
            TakeOut(
                offer=payload["offer"],
                slot=slot,
                energy_Wh=int(fill["energyWh"]),
                price_ueur_per_kWh=int(fill["priceUeurPerKWh"]),
                cost_ueur=int(fill["costUeur"]),
                fee_ueur=int(fill["feeUeur"]),
                tx_hash=tx_hash,
            ).model_dump(mode="json"),
        )
        self._finish(intent.id, answer, tx_hash=tx_hash)
        self.fault.at(intent.kind, "confirmed")
        return answer

    def _erase(self, intent: ApiIntent) -> Answer:
        """A household's erasure (:mod:`api.privacy`): deactivated on chain unless it is
        already, then the money left on its account moved to the operator's with its key
        (while there is any), then its personal data removed in the transaction that stores
        the answer. The chain's state is what makes a second drive skip a step: an inactive
        household, an empty account (whose refund the payload recorded before it was sent)."""
        payload = _loads(intent.payload)
        household = intent.household
        assert household is not None and intent.id is not None
        operator = self.chain.operator
        with Session(self.engine) as session:
            record = session.get(ApiHousehold, household)
        assert record is not None
        if self.client.household(household).active:
            with self._refusals():
                # Checked again under the chain's lock: nothing moved in since the request.
                refusal = privacy.blockers(
                    household, privacy.holdings(self.engine, household, record.meter)
                )
                if refusal is not None:
                    raise refusal
                payload = self._mark_sending(intent, operator.address, None)
                self.client.deactivate_household(operator, household)
            self.fault.at(intent.kind, "sent")
        account = self.client.household(household).account
        balance = self.client.balance_of(account)
        if balance > 0 and record.key_json:
            # Deactivated: nothing can pay in or out any more but this refund.
            key = self.vault.account(record.key_json)
            calldata = self.client.calldata("transfer", operator.address, balance)
            payload = self._mark_sending(intent, key.address, calldata, refund_ueur=balance)
            try:
                self.client.transfer(key, operator.address, balance)
            except NoGasMoney:
                # The account spent its gas money (refused before anything was sent): the
                # operator gives it some, as it did at registration, and the refund goes.
                self.chain.fund(key.address)
                self.client.transfer(key, operator.address, balance)
            self.fault.at(intent.kind, "refunded")
        self._mirror(intent.kind)
        with Session(self.engine) as session, session.begin():
            begin_writing(session)
            row = privacy.wipe(
                session,
                household,
                requested_by=str(payload.get("requested_by", "household")),
                deactivated_tx=privacy.deactivation_tx(session, household),
                refund_ueur=int(payload.get("refund_ueur", 0)),
            )
            answer = Answer(200, privacy.erasure_out(row).model_dump(mode="json"))
            self._finish_in(session, intent.id, answer)
        self.forget_tokens(household)
        self.fault.at(intent.kind, "confirmed")
        return answer

    # ───────────────────────────── Reconciliation ─────────────────────────────

    def refuse_unsent(
        self, kinds: Collection[str], error: ApiError, up_to: int | None = None
    ) -> list[int]:
        """Finish every pending intent of ``kinds`` (recorded, nothing of it sent), of id at
        most ``up_to`` if given, with ``error`` instead of driving it; returns their ids
        (:mod:`api.recovery`)."""

        def refuse() -> list[int]:
            query = select(ApiIntent).where(
                ApiIntent.state == PENDING, col(ApiIntent.kind).in_(list(kinds))
            )
            if up_to is not None:
                query = query.where(col(ApiIntent.id) <= up_to)
            with Session(self.engine) as session, session.begin():
                rows = session.exec(query.order_by(col(ApiIntent.id))).all()
                for row in rows:
                    self._store(row, Answer.of_error(error))
                    session.add(row)
                return [row.id for row in rows if row.id is not None]

        return self.gate.on_chain(refuse)

    def reconcile(self, *, idle_s: float = 0.0) -> int:
        """Drive every unfinished intent untouched for ``idle_s`` seconds, oldest first (at
        start: all of them, before the outbox signs anything with a key they replace).
        Returns how many were finished; stops at the first one the chain cannot take now."""
        cutoff = time.time() - idle_s
        with Session(self.engine) as session:
            ids = list(
                session.exec(
                    select(ApiIntent.id)
                    .where(col(ApiIntent.state).in_(UNFINISHED), ApiIntent.updated_s <= cutoff)
                    .order_by(col(ApiIntent.id))
                )
            )
        finished = 0
        for intent_id in ids:
            if intent_id is None:
                continue
            try:
                answer = self.drive(intent_id)
            except ApiError as exc:
                log.warning("intent %d not finished yet: %s", intent_id, exc.message)
                if exc.status >= 500:
                    break
                continue
            except Exception:
                log.exception("intent %d could not be finished", intent_id)
                continue
            finished += 1
            log.info("intent %d finished: %d", intent_id, answer.status)
        return finished

    def unfinished(self) -> int:
        """How many intents are not finished (in flight, or waiting for the chain)."""
        with Session(self.engine) as session:
            return int(
                session.exec(select(func.count()).where(col(ApiIntent.state).in_(UNFINISHED))).one()
            )

    def purge(self, now: float | None = None) -> int:
        """Delete the intents finished more than :data:`KEY_RETENTION` ago (their keys and
        answers with them); returns how many."""
        cutoff = int((time.time() if now is None else now) - KEY_RETENTION.total_seconds())
        with Session(self.engine) as session, session.begin():
            result = session.exec(
                delete(ApiIntent).where(
                    col(ApiIntent.state).in_(FINISHED), col(ApiIntent.updated_s) < cutoff
                )
            )
            return int(result.rowcount or 0)
