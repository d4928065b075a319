"""A small test world on one chain backend: a fresh Voisin deployment and helpers to register
households, sign and commit readings, and fund accounts, shared by the contract test suites."""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger import Chain
from ledger.contract.client import VoisinClient
from ledger.contract.compile import load_artifact
from ledger.contract.deploy import DEFAULT_TARIFFS, deploy
from ledger.readings.eip712 import Reading, SignedReading, sign_reading
from ledger.types import Tariffs

#: A slot in November 2026 (unix seconds // 900).
SLOT = 1_995_000


@dataclass
class Member:
    """A registered household: its account, its meter key and its id."""

    id: int
    account: LocalAccount
    meter: LocalAccount
    import_Wh: int = 0
    export_Wh: int = 0


@dataclass
class World:
    chain: Chain
    client: VoisinClient
    domain: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.domain = self.client.domain_separator()

    @property
    def operator(self) -> LocalAccount:
        return self.chain.operator

    def account(self, funded: bool = True) -> LocalAccount:
        acct: LocalAccount = Account.create()
        if funded:
            self.chain.fund(acct.address)
        return acct

    def household(self, *, prosumer: bool = True, topup_ueur: int = 0) -> Member:
        account = self.account()
        meter: LocalAccount = Account.create()
        hid = self.client.register_household(
            self.operator, account.address, meter.address, prosumer=prosumer
        )
        if topup_ueur:
            self.client.top_up(self.operator, account.address, topup_ueur)
        return Member(hid, account, meter)

    def sign(self, member: Member, slot: int, import_Wh: int, export_Wh: int) -> SignedReading:
        return sign_reading(
            member.meter.key, Reading(member.meter.address, slot, import_Wh, export_Wh), self.domain
        )

    def meter(self, member: Member, slot: int, *, import_Wh: int = 0, export_Wh: int = 0) -> None:
        """Commit a reading that adds the given deltas to the member's registers."""
        member.import_Wh += import_Wh
        member.export_Wh += export_Wh
        self.client.commit_readings(
            self.operator, [self.sign(member, slot, member.import_Wh, member.export_Wh)]
        )


def new_world(chain: Chain, tariffs: Tariffs = DEFAULT_TARIFFS) -> World:
    """A fresh deployment on ``chain`` (never the recorded one: tests must not share state)."""
    deployment = deploy(chain, tariffs)
    abi = load_artifact("Voisin")["abi"]
    client = VoisinClient(chain.w3, deployment.address, abi, estimate_gas=chain.estimates_gas)
    return World(chain, client)
