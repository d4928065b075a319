"""Exceptions of the ledger package, rooted at :class:`LedgerError`.

Every custom error of the Voisin contract has a Python class of the same name here, so that a
revert is raised as a typed exception carrying the values that failed (``err.values``). The
classes also inherit a category that callers (the API) map to a status code:

- :class:`InputRejected` (``ValueError``): the request breaks a rule (price, energy, register);
- :class:`Conflict`: the request repeats or races something already recorded;
- :class:`NotFound` (``LookupError``): an id or address the contract does not know;
- :class:`AccessDenied` (``PermissionError``): the sender lacks the role or ownership;
- :class:`LedgerPaused`: the operator paused the ledger.
"""

from __future__ import annotations

from typing import Any, ClassVar


class LedgerError(Exception):
    """Root of every error raised by the ledger package."""


class ConfigError(LedgerError, ValueError):
    """The ledger was configured with a value it cannot use."""


class ChainUnavailable(LedgerError, ConnectionError):
    """The chain cannot be reached (node down, embedded chain locked by another process)."""


class ChainLockedError(ChainUnavailable, RuntimeError):
    """The embedded chain's data directory is already open, in this or another process.

    One writer per store: a second opener is refused rather than corrupting it. It is a
    :class:`ChainUnavailable` (the API answers 503) and still the ``RuntimeError`` it has
    always been for code that opens :class:`ledger.chain.embedded.EmbeddedChain` directly.
    """


class DeploymentError(LedgerError):
    """The recorded deployment does not match the chain (wrong chain, code missing)."""


class InvalidArgument(LedgerError, ValueError):
    """An argument is not an integer in the range its contract parameter takes."""


class UnsupportedEvent(LedgerError, ValueError):
    """An ABI event the event codec cannot decode (an anonymous event, or a dynamic or
    struct indexed input); decoders are built only for the events it supports."""


class NoGasMoney(LedgerError, ValueError):
    """The sender's account holds too little ether to pay for the transaction's gas."""


class TransactionFailed(LedgerError):
    """A transaction was mined but reverted without a reason the contract declares."""


class ContractError(LedgerError):
    """A custom error raised by the Voisin contract, decoded with its values.

    ``values`` maps each of the error's parameter names (as in the Solidity source) to the
    value the contract reported. ``str(err)`` says what was wrong and what is allowed.
    """

    #: What the rule is, written for the user who broke it.
    rule: ClassVar[str] = ""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = dict(values or {})
        shown = ", ".join(_shown(k, v) for k, v in self.values.items())
        message = f"{type(self).__name__}({shown})"
        if self.rule:
            message = f"{message}: {self.rule}"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.values,))


#: The ``fill`` index the contract's errors carry for a direct take (not a batch's fill).
TAKE = 2**32 - 1


def _shown(name: str, value: Any) -> str:
    """One value of an error's message, as a user should read it."""
    if name == "fill" and value == TAKE:
        return "direct take"
    return f"{name}={_show(value)}"


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


class InputRejected(ContractError, ValueError):
    """The contract refused the input as breaking one of its rules."""


class Conflict(ContractError):
    """The input repeats or races something the contract already recorded."""


class NotFound(ContractError, LookupError):
    """The input names an id or address the contract does not know."""


class AccessDenied(ContractError, PermissionError):
    """The sender may not do this."""


class LedgerPaused(ContractError):
    """The ledger is paused by the operator, or the action needs it paused."""


# ─────────────────────── One class per custom error of the contract ───────────────────────
# The names, and the parameter names in ``values``, are those of contracts/IVoisin.sol.
# tests/ledger/test_errors.py checks that every error in the ABI has its class here.


class Unauthorized(AccessDenied):
    rule = "the account lacks the role this function needs"


class EnforcedPause(LedgerPaused):
    rule = "the ledger is paused by the operator; try again once it is unpaused"


class ExpectedPause(LedgerPaused):
    rule = "the ledger is not paused"


class ZeroAddress(InputRejected):
    rule = "the zero address is not a valid account, meter or recipient"


class AccountAlreadyRegistered(Conflict):
    rule = "an account can belong to one household only"


class MeterAlreadyRegistered(Conflict):
    rule = "a meter key can be registered once; retired keys cannot come back"


class UnknownHousehold(NotFound):
    rule = "no household has this id"


class HouseholdInactive(InputRejected):
    rule = "the household is deactivated; its readings, orders and trades are refused"


class NotHousehold(AccessDenied):
    rule = "only an active household's account may do this"


class UnknownMeter(NotFound):
    rule = "the reading's meter is not registered to any household"


class InvalidSignature(InputRejected):
    rule = "the signature must recover to the reading's meter (EIP-712, low-s, v 27 or 28)"


class DuplicateReading(Conflict):
    rule = "each (meter, slot) counts once"


class StaleReading(Conflict):
    rule = "a meter's readings must come in increasing slot order"


class FutureReading(InputRejected):
    rule = (
        "a reading may name a slot at most MAX_SLOTS_AHEAD (1) after the chain's clock "
        "(block time // 900): a meter signs a slot's reading when the slot ends"
    )


class RegisterDecreased(InputRejected):
    rule = "cumulative import and export registers may never decrease"


class EnergyTooLarge(InputRejected):
    rule = "one reading may meter less than 2^56 Wh each way in a slot"


class InvalidSlotRange(InputRejected):
    rule = "an order needs firstSlot <= lastSlot"


class PriceLimitUnreachable(InputRejected):
    rule = (
        "an offer's limit must be at most retail - grid fee, and a bid's at least feed-in, "
        "or it could never trade"
    )


class UnknownOffer(NotFound):
    rule = "no offer has this id"


class UnknownBid(NotFound):
    rule = "no bid has this id"


class OrderAlreadyClosed(Conflict):
    rule = "the order is already cancelled"


class NotOrderOwner(AccessDenied):
    rule = "only the order's household or the operator may cancel it"


class InvalidTariffs(InputRejected):
    rule = "tariffs need retail > 0 and feed-in + grid fee <= retail"


class ZeroAmount(InputRejected):
    rule = "the amount must be positive"


class SupplyCapExceeded(InputRejected):
    rule = "the total supply may not exceed 2^80 - 1 micro-euro"


class BatchAlreadySettled(Conflict):
    rule = "each (slot, batch) is settled once"


class EmptyBatch(InputRejected):
    rule = "a settlement batch needs at least one fill"


class ZeroEnergy(InputRejected):
    rule = "a fill must move at least 1 Wh"


class OrderClosed(InputRejected):
    rule = "the order is cancelled and cannot trade"


class SlotOutsideOrder(InputRejected):
    rule = "the slot is outside the order's [firstSlot, lastSlot]"


class SelfTrade(InputRejected):
    rule = "a household cannot sell to itself"


class PriceBelowOffer(InputRejected):
    rule = "the price must be at least the offer's limit"


class PriceAboveBid(InputRejected):
    rule = "the price must be at most the bid's limit"


class PriceOutsideTariffs(InputRejected):
    rule = "the price must satisfy feed-in <= price and price + grid fee <= retail"


class InsufficientCredits(InputRejected):
    rule = "a seller can sell at most its metered export left for the slot"


class InsufficientDeficit(InputRejected):
    rule = "a buyer can buy at most its metered import left for the slot"


class OrderCapExceeded(InputRejected):
    rule = "the order's maximum Wh per slot would be exceeded"


class InsufficientFunds(InputRejected):
    rule = "the buyer's balance must cover cost plus grid fee; top up first"


class InsufficientBalance(InputRejected):
    rule = "the transfer exceeds the sender's balance"


class InsufficientAllowance(InputRejected):
    rule = "the transfer exceeds the spender's allowance"


class FutureSlot(InputRejected):
    rule = (
        "a slot can be sealed once it can have been settled: at most MAX_SLOTS_AHEAD (1) "
        "after the chain's clock (block time // 900)"
    )


class SlotAlreadySealed(Conflict):
    rule = "a slot's digest head is sealed once; sealing the same head again changes nothing"


class ZeroDigest(InputRejected):
    rule = "a slot's digest head cannot be 32 zero bytes (that reads back as not sealed)"


class ForwardBatchAlreadyCleared(Conflict):
    rule = "each (slot, batch) of forward positions is cleared once"


class ForwardTooLate(InputRejected):
    rule = (
        "a slot is traded ahead only before it is metered: neither party's meter may have "
        "committed a reading for the slot or a later one"
    )


class UnknownForward(NotFound):
    rule = "a forward position settles only with the id, slot and fields it was cleared with"


class ForwardAlreadySettled(Conflict):
    rule = "a forward position is settled once"


class ForwardNotDue(InputRejected):
    rule = (
        "a forward position settles once both parties' meters have committed a reading for "
        "its slot (or a later one)"
    )


def contract_error_classes() -> dict[str, type[ContractError]]:
    """Every custom-error class above, by contract error name."""
    found: dict[str, type[ContractError]] = {}
    pending: list[type[ContractError]] = [ContractError]
    categories = {ContractError, InputRejected, Conflict, NotFound, AccessDenied, LedgerPaused}
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            pending.append(sub)
            if sub not in categories:
                found[sub.__name__] = sub
    return found
