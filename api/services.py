"""What the API holds while it runs: the chain, the ledger client, the database, the key vault,
and the background loop that drains the outbox and settles closed slots.

:class:`Services` is where the API's parts are composed: it opens the chain and the database,
then hands each part only what that part uses: the chain gate (:mod:`api.chain_gate`) and the
ledger's client, engine and worker to the outbox (:mod:`api.outbox`), the engine and the
domain to the intake writer (:mod:`api.intake`). Those modules import none of this one.

Every use of the chain goes through the gate (:meth:`Services.on_chain`), which serialises
calls (the embedded chain is one in-process EVM) and turns an unreachable node into a 503
while the intake keeps accepting into the database.

The actions that write the chain during a request (registration, top-up, key and meter
rotation, take) go through the intent runner (:mod:`api.intents`): recorded first, then done,
then confirmed. On start, before anything else uses the chain, every intent an earlier process
left unfinished is reconciled with the chain; the background loop does the same for intents a
failed request left behind, and deletes finished ones past their retention.

With PostgreSQL, several processes may serve the market (:mod:`api.cluster`): the gate's lock
also takes the processes' chain-writes lock, and the background loop, the keeper and the
webhooks run only in the process elected leader (:attr:`Services.leader`).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import SecretStr

import api.models  # noqa: F401  (registers the API's tables before the engine creates them)
from api.audit_process import AuditRun, ChainAccess, run_in_process, run_isolated
from api.chain_gate import WRITES_LOCK, ChainGate, ChainLock
from api.cluster import (
    AdvisoryLock,
    Leadership,
    chain_writes_lock_name,
    leader_lock_name,
)
from api.contract_upgrade import carry_orders
from api.custody import KeyVault, given_or_kept_secret, load_or_create_secret
from api.feeder_process import FeederWorker
from api.forecasts import Forecasts
from api.intake import IntakeWriter
from api.intents import FaultHook, IntentRunner
from api.keeper import Keeper
from api.metrics import Metrics
from api.outbox import Outbox
from api.ratelimit import RateLimiter
from api.recovery import (
    MONEY_INTENTS,
    Recovered,
    RecoveryIncomplete,
    adopt_households,
    adopt_orders,
    erase_again,
    forget_restored,
    registrations_unfinished,
    restored_from,
    restored_intents_up_to,
    sealed_unsettled,
    twin_orders,
    unsent_at_backup,
)
from api.schema import prepare as prepare_schema
from api.settings import Settings
from api.sqlite_pragmas import sqlite_pragmas
from api.webhooks import WebhookWorker
from ledger.chain.backends import Chain, open_chain
from ledger.contract.client import VoisinClient
from ledger.contract.deploy import Deployment, from_this_release, open_ledger
from ledger.errors import LedgerError
from ledger.market.settlement import SettlementWorker
from ledger.mirror.engine import make_engine
from ledger.mirror.indexer import IndexResult, index
from ledger.types import SLOT_SECONDS, Tariffs

log = logging.getLogger("voisin.api")
T = TypeVar("T")


#: Threads that run the API's blocking handlers (anyio's default is 40). The database pool is
#: sized to match, so that no request waits for a connection or opens one. In an ad hoc probe
#: with 50 paced clients, 8 and 40 threads gave the same p99 (66-150 ms, run-to-run noise
#: larger than any difference), so the choice is about the pool's size, not speed.
REQUEST_THREADS = 16
#: Connections beside the request threads': the outbox loop, the intake writer, the indexer.
BACKGROUND_CONNECTIONS = 4
#: The background loop finishes an intent a request left unfinished once nobody touched it for
#: this long (seconds): a request still driving its own intent is not raced.
INTENT_IDLE_S = 5.0
#: How often the background loop deletes intents past their retention (seconds).
PURGE_EVERY_S = 3600.0


def pool_kept(markets: int) -> int:
    """Database connections a market keeps open: all its threads may need, alone in its
    process; in a city of ``markets``, its background connections and its share of the
    request threads, so that the process keeps about as many as one market does."""
    if markets <= 1:
        return REQUEST_THREADS + BACKGROUND_CONNECTIONS
    return BACKGROUND_CONNECTIONS + -(-REQUEST_THREADS // markets)


def connections_per_process(markets: int) -> int:
    """The most database connections one serving process may hold at once: every market's
    background connections and its two lock connections (PostgreSQL, :mod:`api.cluster`),
    and the request threads' (shared by the markets)."""
    return markets * (BACKGROUND_CONNECTIONS + 2) + REQUEST_THREADS


def slot_now(seconds: int = SLOT_SECONDS) -> int:
    return int(time.time()) // seconds


@dataclass(frozen=True)
class CityPart:
    """What a market served in a city (:mod:`api.city_app`) shares with the city's others."""

    #: The market's name: its path is ``/markets/<name>``.
    name: str
    #: The city's one chain, opened and closed by the city (each market deploys its contract).
    chain: Chain
    #: The city's chain-writes lock file: the markets send from one operator account, so one
    #: of them at a time writes the chain.
    writes_lock: Path
    #: The city's operator token, which holds every market (each also has its own).
    operator_token: str
    #: How many markets the city serves (their database pools share the process's threads).
    markets: int
    #: The power-flow worker process every market of the city sends its slots to.
    feeder: FeederWorker
    #: Held by a market while its audit runs in a child process (a few at once in the city).
    audits: threading.BoundedSemaphore
    #: The other market with a household whose ``field`` (``token_hash`` or ``meter``) is the
    #: value given, if one has: said in a refusal, so that a client sent to the wrong market
    #: learns where to go.
    market_of: Callable[[str, Collection[str]], dict[str, str]]
    #: The other market that holds a meter key (registered in its database, or registered or
    #: retired on its contract), if one does: a meter belongs to one market, once.
    meter_elsewhere: Callable[[str], str | None]


class Services:
    """Opened once per process by the app's lifespan (once per market in a city)."""

    def __init__(self, settings: Settings, city: CityPart | None = None) -> None:
        self.settings = settings
        self.city = city
        data_dir = settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        if city is None:
            self.operator_token = self._secret(settings.operator_token, "operator.token")
            #: The operator tokens this market accepts.
            self.operator_tokens: tuple[str, ...] = (self.operator_token,)
        else:
            # The city's token holds every market; the market's own (kept in its data
            # directory, mode 0600) holds this one only.
            self.operator_token = load_or_create_secret(data_dir / "operator.token")
            self.operator_tokens = (city.operator_token, self.operator_token)
        key_secret = self._secret(settings.key_secret, "key.secret")
        self.vault = KeyVault(key_secret)
        self.tariffs_at_deploy = Tariffs(
            settings.feed_in_ueur_per_kWh,
            settings.retail_ueur_per_kWh,
            settings.grid_fee_ueur_per_kWh,
        )
        kept = pool_kept(city.markets if city is not None else 1)
        self.engine = make_engine(
            settings.resolved_database_url(),
            pool_size=kept,
            # The request threads are the process's, shared by a city's markets: a market
            # may borrow up to all of them at once, and gives the extra connections back.
            overflow=REQUEST_THREADS + BACKGROUND_CONNECTIONS - kept,
            create=False,
        )
        sqlite_pragmas(self.engine)
        try:
            # First, before the chain (where a first start deploys the contract): an empty
            # database gets the schema, one at another revision is refused (SchemaError).
            prepare_schema(self.engine)
        finally:
            self.engine.dispose()  # reconnect with the pragmas
        self.chain: Chain = (
            city.chain
            if city is not None
            else open_chain(
                settings.chain,
                data_dir,
                settings.chain_key_value(),
                process=settings.chain_process,
            )
        )
        url = settings.resolved_database_url()
        #: Whether other processes may serve this market from the same database
        #: (PostgreSQL, api/cluster.py): they write the chain one at a time, one of them,
        #: elected, runs the background work, and none caches what another may change
        #: (tokens).
        self.shared_database = self.engine.dialect.name == "postgresql"
        self._writes_lock = (
            AdvisoryLock(
                url, chain_writes_lock_name(self.chain.chain_id, self.chain.operator.address)
            )
            if self.shared_database
            else None
        )
        try:
            self.client: VoisinClient
            self.deployment: Deployment
            if self._writes_lock is not None:
                # Two processes starting on a fresh chain deploy once (the second finds it).
                self._writes_lock.acquire()
            try:
                self.client, self.deployment = open_ledger(
                    self.chain, data_dir, tariffs=self.tariffs_at_deploy
                )
            finally:
                if self._writes_lock is not None:
                    self._writes_lock.release()
            self.domain = self.client.domain_separator()
            self.chain_id = self.chain.chain_id
            #: Whether the market's contract is this release's (GET /health says it).
            self.contract_current = from_this_release(self.deployment)
            if not self.contract_current:
                log.warning(
                    "the contract at %s was deployed from another release's bytecode than "
                    "this one's; it keeps working, and `voisin upgrade-contract --plan` shows "
                    "what moving to this release's contract would carry over",
                    self.deployment.address,
                )
            if self.deployment.migrated_from is not None:
                # The orders the upgrade's freeze cancelled, queued again for this deployment
                # (once; `voisin upgrade-contract` normally did it already).
                carry_orders(
                    self.engine, self.deployment.address, self.client.predecessor_last_slot()
                )
        except BaseException:
            if city is None:
                self.chain.close()
            if self._writes_lock is not None:
                self._writes_lock.close()
            raise
        # Its lock also holds the data directory's chain-writes file lock, which
        # `voisin backup` takes to copy the chain and the database between two writes.
        self.gate = ChainGate(
            city.writes_lock if city is not None else data_dir / WRITES_LOCK,
            shared=self._writes_lock,
            evm_here=self.chain.kind in ("embedded", "memory") and self.chain.node is None,
        )
        self.leadership = Leadership(
            AdvisoryLock(url, leader_lock_name(self.chain_id, self.client.address))
            if self.shared_database
            else None,
            on_elected=self._lead,
            on_lost=self._step_down,
        )
        self.worker = SettlementWorker(
            self.client,
            self.engine,
            self.chain.operator,
            settings.mechanism,
            start_block=self.deployment.block_number,
        )
        self.metrics = Metrics()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.outbox = Outbox(
            self.gate,
            client=self.client,
            engine=self.engine,
            operator=self.chain.operator,
            vault=self.vault,
            worker=self.worker,
            mirror=self.mirror,
            settle_after_s=settings.settle_after_s,
        )
        # The feeder's power flows and the audit, kept after settlement for the operator's page.
        # Out of this process when the chain has a URL (the audit's child needs one): the
        # power flows' leftovers then stay in a worker that is replaced now and then.
        #: The worker process the power flows run in (a city's markets share the city's).
        self.feeder_worker = (
            (city.feeder if city is not None else FeederWorker())
            if self.chain_access() is not None
            else None
        )
        self.keeper = Keeper(
            self.gate,
            engine=self.engine,
            audit=self.audit,
            feeder=(
                self.feeder_worker.for_market(
                    settings.resolved_database_url(), settings.feeder_network
                )
                if self.feeder_worker is not None
                else None
            ),
            network=settings.feeder_network,
            whole=lambda: restored_from(self.engine) is None,
        )
        # Events POSTed to the operator's systems (api/webhooks.py), in their own threads.
        self.webhooks = WebhookWorker(self.engine, self.vault, settings)
        self.intake = IntakeWriter(self.engine, self.domain)
        # Forecasts from the mirror's readings, issued once per metered slot and kept.
        self.forecasts = Forecasts(self.engine)
        self.intents = IntentRunner(
            self.gate,
            chain=self.chain,
            client=self.client,
            engine=self.engine,
            vault=self.vault,
            mirror=self.mirror,
            forget_meter=self.intake.forget,
            token_secret=key_secret,
            forget_tokens=self.forget_tokens_of,
            meter_elsewhere=self.meter_elsewhere,
            fault=FaultHook.from_environment(),
        )
        self.token_cache: dict[str, int] = {}
        #: How many times tokens were dropped from the cache (:meth:`forget_tokens_of`).
        self.token_forgets = 0
        self.token_limiter = RateLimiter("token", settings.token_rate_per_s, settings.token_burst)
        self.meter_limiter = RateLimiter("meter", settings.meter_rate_per_s, settings.meter_burst)
        self._purged_at = 0.0
        self._settle_intents()

    def _settle_intents(self) -> None:
        """Finish what an earlier process left unfinished, before anything else signs with a
        key an unfinished rotation replaces; then drop finished intents past retention. In a
        database restored while its chain went on, the top-ups and takes its backup held
        unsent are refused first (:mod:`api.recovery`): they may have been done since."""
        try:
            self._refuse_unsent_at_backup(restored_from(self.engine))
            left = self.intents.unfinished()
            if left:
                finished = self.intents.reconcile()
                log.warning("reconciled %d of %d unfinished intent(s) at start", finished, left)
            self.intents.purge()
            self._purged_at = time.monotonic()
        except Exception:  # the server still starts; the background loop tries again
            log.exception("reconciling the intents at start failed")

    def _refuse_unsent_at_backup(self, backup_block: int | None) -> None:
        """In a database restored (while its chain went on) from a backup taken at
        ``backup_block``, finish the top-ups and takes the backup held unsent as refused
        (:mod:`api.recovery`); idempotent. Nothing if ``backup_block`` is None."""
        if backup_block is None:
            return
        refused = self.intents.refuse_unsent(
            MONEY_INTENTS, unsent_at_backup(backup_block), restored_intents_up_to(self.engine)
        )
        if refused:
            log.warning(
                "refused intents %s: top-ups and takes left unsent at the backup this database "
                "was restored from",
                _ids(refused),
            )

    def forget_tokens_of(self, household: int) -> None:
        """Drop ``household``'s tokens from this process's cache (a token rotation, an
        erasure), and count it: a lookup that began before cannot cache what it found
        (:func:`api.auth._remember`)."""
        self.token_forgets += 1
        for digest in [d for d, h in list(self.token_cache.items()) if h == household]:
            self.token_cache.pop(digest, None)

    def token_elsewhere(self, digest: str) -> str | None:
        """The other market of the city that issued the household token of ``digest``."""
        if self.city is None:
            return None
        return self.city.market_of("token_hash", [digest]).get(digest)

    def meters_elsewhere(self, meters: Collection[str]) -> dict[str, str]:
        """The other market of the city where each of ``meters`` is registered, if one is."""
        return {} if self.city is None or not meters else self.city.market_of("meter", meters)

    def meter_elsewhere(self, meter: str) -> str | None:
        """The other market of the city that holds ``meter`` (:attr:`CityPart.meter_elsewhere`)."""
        return None if self.city is None else self.city.meter_elsewhere(meter)

    def _secret(self, given: SecretStr | None, filename: str) -> str:
        return given_or_kept_secret(given, self.settings.data_dir / filename)

    # ───────────────────────────── The chain ─────────────────────────────

    def on_chain(self, action: Callable[[], T]) -> T:
        """Run ``action`` with the chain to ourselves; a dead node becomes a 503."""
        return self.gate.on_chain(action)

    def mark_down(self, exc: BaseException) -> None:
        self.gate.mark_down(exc)

    # The routes and the app's middleware read and set the gate's state through these names.

    @property
    def chain_lock(self) -> ChainLock:
        return self.gate.lock

    @property
    def chain_up(self) -> bool:
        return self.gate.up

    @chain_up.setter
    def chain_up(self, up: bool) -> None:
        self.gate.up = up

    @property
    def last_chain_error(self) -> str | None:
        return self.gate.last_error

    @property
    def last_request(self) -> float:
        """When the last HTTP request started (monotonic seconds): background chain work
        yields to requests (:meth:`ChainGate.yield_to_requests`)."""
        return self.gate.last_request

    @last_request.setter
    def last_request(self, started: float) -> None:
        self.gate.last_request = started

    def mirror(self) -> IndexResult:
        """Mirror this deployment's new events into the database (the caller holds the chain,
        e.g. inside :meth:`on_chain`): after a write, so the next read shows it."""
        return index(self.client, self.engine, start_block=self.deployment.block_number)

    def tariffs(self) -> Tariffs:
        return self.on_chain(self.client.tariffs)

    def recover_from_chain(self) -> Recovered:
        """In a database ``voisin restore`` marked (its chain went on after the backup): mirror
        the chain, take back from it what the database lacks, and settle once what it had
        queued (:mod:`api.recovery`); in any other, nothing (a start costs one read of the
        mark). A step that fails is logged and the others go on; then, if one failed, this
        raises and the mark stays, so that the caller's next try does them again (each takes
        back only what is still missing). A signed reading the chain does not hold as the
        mirror says is not tried again: that is the audit's to report."""
        from ledger.readings.recovery import UnrecoverableReading, recover_signed_readings

        backup_block = restored_from(self.engine)
        if backup_block is None:
            return Recovered(0, ())
        # Again here, in case the attempt at this process's start failed: before the mark goes.
        self._refuse_unsent_at_backup(backup_block)
        self.on_chain(self.mirror)
        failed: list[str] = []
        # What the backup held unfinished (a registration, a rotation: each checks the chain
        # before acting) is finished first, so that what it records (a household and its
        # default orders) is matched with the chain below rather than added after it.
        if self.intents.unfinished():
            self.intents.reconcile(idle_s=INTENT_IDLE_S)
        if registrations_unfinished(self.engine):
            failed.append("the registrations the backup held unfinished")

        def step(name: str, action: Callable[[], T], otherwise: T) -> T:
            try:
                return self.on_chain(action)
            except Exception:
                log.exception("taking back %s from the chain failed; tried again later", name)
                failed.append(name)
            return otherwise

        def signed_readings() -> int:
            try:
                return recover_signed_readings(self.client, self.engine)
            except UnrecoverableReading:
                log.exception("taking back signed readings failed; the audit names what is amiss")
                return 0

        none: list[int] = []
        erased = step("erasures", lambda: erase_again(self.engine), none)
        for household in erased:
            self.forget_tokens_of(household)
        households = step("households", lambda: adopt_households(self.client, self.engine), none)
        readings = step("signed readings", signed_readings, 0)
        # The posts in flight at the backup first: each is its own order's, never a new one.
        self.outbox.settle_posts_in_flight()
        orders = self.outbox.adopt_posted(twin_orders(self.engine))
        orders += self.on_chain(lambda: adopt_orders(self.engine))

        def settled_again() -> list[int]:
            # In the order they were sealed: each slot's digest link follows the one before.
            seals = sealed_unsettled(self.engine, self.client.address, backup_block)
            for slot, head, block in seals:
                self.worker.settle_sealed(slot, head, block)
            return [slot for slot, _, _ in seals]

        slots = step("the slots settled since the backup", settled_again, none)
        if failed:
            raise RecoveryIncomplete(
                f"taking back {', '.join(failed)} from the chain failed; the database stays "
                "marked as restored, and the next pass tries again"
            )
        forget_restored(self.engine)
        for count, what in (
            (readings, f"{readings} signed readings the evidence store lacked"),
            (len(households), f"households {_ids(households)}, which the database had no "
             "record of: issue each a token and a new account key (POST /households/{id}/token "
             "and /rotate-key)"),
            (len(orders), f"orders {_ids(orders)}, posted on chain after the backup"),
            (len(slots), f"the outcomes of slots {_ids(slots)}, settled after the backup"),
        ):  # fmt: skip
            if count:
                log.warning("took back from the chain: %s", what)
        if erased:
            log.warning(
                "erased households %s again: the chain deactivated them after the backup",
                _ids(erased),
            )
        return Recovered(readings, tuple(households), tuple(orders), tuple(erased), tuple(slots))

    # ───────────────────────────── The audit ─────────────────────────────

    def chain_access(self) -> ChainAccess | None:
        """How another process reaches this chain (``None``: an embedded chain inside this
        process, or the in-memory one). Asked on every audit: a restarted node has a new
        port."""
        account = self.chain.operator.address
        if self.chain.node is not None:
            return ChainAccess(self.chain.node.url, self.chain.node.headers, account)
        if self.chain.anvil is not None:
            return ChainAccess(self.chain.anvil.url, {}, account)
        if self.chain.kind == "rpc":
            return ChainAccess(self.settings.chain, {}, account)
        return None

    def audit(
        self,
        *,
        from_slot: int | None = None,
        to_slot: int | None = None,
        feeder: bool = False,
        started: Callable[[subprocess.Popen[bytes]], None] | None = None,
    ) -> AuditRun:
        """The operator's audit over the slots ``from_slot``..``to_slot``: in a child process
        when the chain has a URL, so that its working set (which grows with the history) is
        not kept by this one (:mod:`api.audit_process`); here otherwise."""
        access = self.chain_access()
        if access is None:
            return run_in_process(
                client=self.client,
                engine=self.engine,
                deployment_block=self.deployment.block_number,
                on_chain=self.on_chain,
                mirror=self.mirror,
                from_slot=from_slot,
                to_slot=to_slot,
                feeder=feeder,
                network=self.settings.feeder_network,
            )
        if self.city is not None:
            # A city's markets take turns: K audit children at once would each hold their
            # working set (their keepers all audit after start-up and after settlements).
            with self.city.audits:
                return self._audit_isolated(access, from_slot, to_slot, feeder, started)
        return self._audit_isolated(access, from_slot, to_slot, feeder, started)

    def _audit_isolated(
        self,
        access: ChainAccess,
        from_slot: int | None,
        to_slot: int | None,
        feeder: bool,
        started: Callable[[subprocess.Popen[bytes]], None] | None,
    ) -> AuditRun:
        return run_isolated(
            access=access,
            database_url=self.settings.resolved_database_url(),
            contract=self.client.address,
            abi=[dict(item) for item in self.client.contract.abi],
            deployment_block=self.deployment.block_number,
            on_chain=self.on_chain,
            mirror=self.mirror,
            from_slot=from_slot,
            to_slot=to_slot,
            feeder=feeder,
            network=self.settings.feeder_network,
            started=started,
        )

    # ───────────────────────────── Background ─────────────────────────────

    def start(self) -> None:
        # Requests hop between the event loop and worker threads, beside the outbox's thread
        # (and the EVM's, when the embedded chain runs in this process). With CPython's
        # default 5 ms switch interval, a thread that gives up the interpreter for I/O waits
        # up to 5 ms to get it back, at every database or socket call (the convoy effect).
        sys.setswitchinterval(0.0005)
        self.leadership.start()

    @property
    def leader(self) -> bool:
        """Whether this process runs the market's background work (:mod:`api.cluster`)."""
        return self.leadership.leader

    def _lead(self) -> None:
        """Elected: drain the outbox, settle, keep audits and send webhooks from here on."""
        if self._stop.is_set():
            return
        self._thread = threading.Thread(target=self._loop, name="voisin-outbox", daemon=True)
        self._thread.start()
        self.keeper.start()
        self.webhooks.start()

    def _step_down(self) -> None:
        """Another process holds the leader's lock now (this one's session ended): stop this
        one (gracefully, as on SIGTERM; its supervisor starts it again, as a follower until
        elected) rather than run the background work beside the new leader's."""
        log.error("stopping: another process leads the market now")
        os.kill(os.getpid(), signal.SIGTERM)

    def _recovered(self) -> bool:
        """Take back from the chain what the database lacks (:meth:`recover_from_chain`);
        whether the outbox may go on: not while a restored database's queue is unsettled."""
        try:
            self.recover_from_chain()
        except Exception:
            log.exception("taking back from the chain what the database lacks failed")
            return restored_from(self.engine) is None
        return True

    def _loop(self) -> None:
        recovered = self._recovered()
        while not self._stop.wait(self.settings.outbox_interval_s):
            self._revive_node()
            if not recovered:
                recovered = self._recovered()
                if not recovered:
                    continue
            try:
                self._intents_pass()
            except Exception:  # keep the loop alive; the next pass retries
                log.exception("intent pass failed")
            try:
                done = self.outbox.run_once(auto_settle=self.settings.auto_settle)
            except Exception:  # keep the loop alive; the next pass retries
                log.exception("outbox pass failed")
            else:
                if done.settled_slots:
                    self.keeper.wake()

    def _intents_pass(self) -> None:
        """Finish intents left unfinished by a failed request (before the outbox signs with a
        key they replace); hourly, delete finished ones past retention."""
        self.intents.reconcile(idle_s=INTENT_IDLE_S)
        if time.monotonic() - self._purged_at >= PURGE_EVERY_S:
            self.intents.purge()
            self._purged_at = time.monotonic()

    def _revive_node(self) -> None:
        """Restart the embedded chain's node process if it died (its store is crash-safe).

        The kernel ties a child's parent-death signal to the thread that started it, so a node
        restarted here is killed when this loop's thread ends at shutdown rather than stopped
        gracefully; every block it acknowledged is already on disk, so nothing is lost.
        """
        node = self.chain.node
        if node is None or node.alive or self._stop.is_set():
            return
        log.error("the embedded chain node exited (code %s); restarting it", node.process.poll())
        with self.gate.lock:
            if node.alive:  # another market of the city restarted it meanwhile
                return
            try:
                node.restart()
            except LedgerError as exc:
                self.gate.mark_down(exc)

    def close(self) -> None:
        self.intake.close()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.keeper.stop()
        if self.feeder_worker is not None and self.city is None:  # a city's is the city's
            self.feeder_worker.close()
        self.webhooks.stop()
        self.leadership.close()
        if self.city is None:  # a city's chain is the city's to close
            with self.gate.lock:
                self.chain.close()
        if self._writes_lock is not None:
            self._writes_lock.close()
        self.engine.dispose()


def _ids(ids: Sequence[int]) -> str:
    return ", ".join(str(i) for i in ids)
