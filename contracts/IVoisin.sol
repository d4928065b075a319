// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.24;

/// @title Voisin ledger interface: types, events and custom errors
/// @notice Units are integers everywhere: energy in Wh, money in micro-euro (6 decimals),
///         prices in micro-euro per kWh, slots are `unix_seconds / 900` (15 minutes, UTC).
interface IVoisin {
    // ───────────────────────────── Types ─────────────────────────────

    /// @notice A meter's cumulative registers at the end of `slot`, EIP-712 signed by the meter key.
    struct Reading {
        address meter;
        uint32 slot;
        uint64 importWh;
        uint64 exportWh;
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    /// @notice One sale of `energyWh` of a slot from the owner of `offerId` to the owner of `bidId`.
    struct Fill {
        uint32 offerId;
        uint32 bidId;
        uint64 energyWh;
        uint64 priceUeurPerKWh;
    }

    /// @notice A household for `onboard`: its account, its meter's key and starting registers,
    ///         and what to top it up with (0 for no top-up).
    struct Onboarding {
        address account;
        address meter;
        bool prosumer;
        uint64 importBaselineWh;
        uint64 exportBaselineWh;
        uint256 topUpUeur;
    }

    /// @notice A limit order (offer to sell or bid to buy). Packed into one storage word:
    ///         32 + 64 + 64 + 32 + 32 + 8 = 232 bits.
    struct Order {
        uint32 household;
        uint64 priceLimitUeurPerKWh;
        uint64 maxWhPerSlot; // 0 means no cap
        uint32 firstSlot;
        uint32 lastSlot; // type(uint32).max for a standing order
        bool open;
    }

    /// @notice A position for `clearForwards`: `energyWh` of the batch's slot sold day-ahead by
    ///         household `seller` to household `buyer` at `priceUeurPerKWh`.
    struct Forward {
        uint32 seller;
        uint32 buyer;
        uint64 energyWh;
        uint64 priceUeurPerKWh;
    }

    /// @notice A cleared forward position for `settleForwards`, as its `ForwardCleared` event
    ///         gave it (the contract keeps a hash of these fields and the slot).
    struct ForwardPosition {
        uint32 forwardId;
        uint32 seller;
        uint32 buyer;
        uint64 energyWh;
        uint64 priceUeurPerKWh;
        uint256 reservedUeur;
    }

    /// @notice A household's metered energy for one slot and what it traded locally
    ///         (`slotEnergy`). The contract keeps it in word `slot % KEPT_SLOTS` of the
    ///         household's ring until a reading for a later slot of the same word overwrites it
    ///         (`slot + KEPT_SLOTS` for a meter that reads every slot); a slot overwritten reads
    ///         as zeros.
    ///         Credits left = exportWh - soldWh.
    struct SlotEnergy {
        uint64 importWh;
        uint64 exportWh;
        uint64 boughtWh;
        uint64 soldWh;
    }

    /// @notice A registered household. Word 1: account, active, prosumer and the household's
    ///         money balance (160 + 8 + 8 + 80 = 256 bits), so that a fill touches one word per
    ///         party for identity, state and money; word 2: the meter.
    struct Household {
        address account;
        bool active;
        bool prosumer;
        uint80 balanceUeur; // total supply is capped at type(uint80).max, so any balance fits
        address meter;
    }

    /// @notice Tariffs in micro-euro per kWh (one word: 3 x 64 bits).
    struct Tariffs {
        uint64 feedInUeurPerKWh;
        uint64 retailUeurPerKWh;
        uint64 gridFeeUeurPerKWh;
    }

    /// @notice The deployment this one continues, fixed when it is constructed (all zeros for
    ///         a first deployment). The previous deployment was paused at `snapshotBlock` after
    ///         its last slot settled, and its state there (households, meters' registers,
    ///         balances, tariffs, fee recipient, roles) was carried over by the operator's
    ///         ordinary, evented functions; `snapshotDigest` is that state's digest
    ///         (ledger.contract.upgrade), which the operator's audit recomputes on both sides.
    struct Predecessor {
        address deployment;
        uint64 snapshotBlock;
        bytes32 snapshotDigest;
        uint32 lastSlot; // the last slot metered there: every meter here starts after it
    }

    /// @notice The last committed reading of a meter, and whether its household is active
    ///         (208 bits, one word: a reading reads and writes this word only, besides the
    ///         slot's energy).
    struct MeterState {
        uint32 household; // 0 for an unknown or retired meter
        uint32 lastSlot; // 0 before the first reading
        uint64 importWh;
        uint64 exportWh;
        bool retired;
        bool active; // the household is active: false once it is deactivated, or retired
    }

    // ───────────────────────────── Events ─────────────────────────────

    /// @notice A household and its meter were registered by the operator; the meter starts at
    ///         the given registers.
    event HouseholdRegistered(
        uint32 indexed household,
        address indexed account,
        address indexed meter,
        bool prosumer,
        uint64 importBaselineWh,
        uint64 exportBaselineWh
    );
    /// @notice This deployment continues `previous`, whose state at `snapshotBlock` (digest
    ///         `snapshotDigest`) is carried over; no slot up to `lastSlot` can be metered here.
    ///         Emitted once, by the constructor.
    event MigratedFrom(
        address indexed previous, uint64 snapshotBlock, bytes32 snapshotDigest, uint32 lastSlot
    );
    /// @notice A household was deactivated: its meter, orders and trades are refused from now on.
    event HouseholdDeactivated(uint32 indexed household);
    /// @notice A household's meter key was replaced; the new meter starts at the given registers.
    event MeterRotated(
        uint32 indexed household,
        address indexed oldMeter,
        address indexed newMeter,
        uint64 importBaselineWh,
        uint64 exportBaselineWh
    );
    /// @notice A household's account key was replaced; its balance, orders and history stay
    ///         with the household, and the old account no longer acts for it.
    event AccountRotated(
        uint32 indexed household, address indexed oldAccount, address indexed newAccount
    );
    /// @notice A signed reading was committed; `exportDeltaWh` was minted as credits for `slot`.
    event ReadingCommitted(
        uint32 indexed household,
        address indexed meter,
        uint32 indexed slot,
        uint64 importWh,
        uint64 exportWh,
        uint64 importDeltaWh,
        uint64 exportDeltaWh
    );
    /// @notice A sell offer was posted.
    event OfferPosted(
        uint32 indexed offerId,
        uint32 indexed household,
        uint64 priceLimitUeurPerKWh,
        uint64 maxWhPerSlot,
        uint32 firstSlot,
        uint32 lastSlot
    );
    /// @notice A buy bid was posted.
    event BidPosted(
        uint32 indexed bidId,
        uint32 indexed household,
        uint64 priceLimitUeurPerKWh,
        uint64 maxWhPerSlot,
        uint32 firstSlot,
        uint32 lastSlot
    );
    /// @notice An offer was cancelled by its owner or the operator.
    event OfferCancelled(uint32 indexed offerId, address indexed by);
    /// @notice A bid was cancelled by its owner or the operator.
    event BidCancelled(uint32 indexed bidId, address indexed by);
    /// @notice Energy of `slot` was sold; `bidId` is 0 for a direct take of an offer.
    event FillSettled(
        uint32 indexed slot,
        uint32 indexed seller,
        uint32 indexed buyer,
        uint32 offerId,
        uint32 bidId,
        uint64 energyWh,
        uint64 priceUeurPerKWh,
        uint256 costUeur,
        uint256 feeUeur
    );
    /// @notice A forward position was cleared ahead of `slot`: the buyer's `reservedUeur`
    ///         (cost and grid fee at the tariffs of the time) moved to the contract's escrow.
    event ForwardCleared(
        uint32 indexed forwardId,
        uint32 indexed slot,
        uint32 indexed seller,
        uint32 buyer,
        uint64 energyWh,
        uint64 priceUeurPerKWh,
        uint256 reservedUeur
    );
    /// @notice A forward position was settled against the slot's metered energy: its
    ///         `deliveredWh` went as a fill (`FillSettled` with offer and bid id 0, just before
    ///         this event), `shortfallWh` was not delivered, and the buyer kept `refundUeur` of
    ///         its reservation.
    event ForwardSettled(
        uint32 indexed forwardId,
        uint32 indexed slot,
        uint32 indexed seller,
        uint32 buyer,
        uint64 deliveredWh,
        uint64 shortfallWh,
        uint256 costUeur,
        uint256 feeUeur,
        uint256 refundUeur
    );
    /// @notice A settlement batch of `fills` fills for `slot` was accepted whole.
    event BatchSettled(uint32 indexed slot, uint32 indexed batch, uint32 fills, uint64 energyWh);
    /// @notice The settlement worker anchored `slot`'s head of the digest chain over settled
    ///         slots (ledger.audit.digest), so that the database cannot rewrite the slot's
    ///         readings, fills or outcome without the audit noticing. Emitted once per slot.
    event SlotSealed(uint32 indexed slot, bytes32 digestHead);
    /// @notice The operator set the tariffs (micro-euro per kWh).
    event TariffsSet(uint64 feedInUeurPerKWh, uint64 retailUeurPerKWh, uint64 gridFeeUeurPerKWh);
    /// @notice The account that receives grid fees changed.
    event FeeRecipientSet(address indexed recipient);
    /// @notice The operator minted payment token for a household's top-up.
    event ToppedUp(address indexed account, uint256 amountUeur);
    /// @notice `role` was granted to `account` by `sender`.
    event RoleGranted(bytes32 indexed role, address indexed account, address indexed sender);
    /// @notice `role` was revoked from `account` by `sender`.
    event RoleRevoked(bytes32 indexed role, address indexed account, address indexed sender);
    /// @notice The operator paused the ledger (emergency stop).
    event Paused(address account);
    /// @notice The operator lifted the pause.
    event Unpaused(address account);

    // ───────────────────────────── Errors ─────────────────────────────

    /// @notice `account` lacks `role`.
    error Unauthorized(address account, bytes32 role);
    /// @notice The ledger is paused.
    error EnforcedPause();
    /// @notice The ledger is not paused.
    error ExpectedPause();
    /// @notice The zero address is not allowed here.
    error ZeroAddress();
    /// @notice `account` is already a household's account.
    error AccountAlreadyRegistered(address account);
    /// @notice `meter` is (or was) already registered.
    error MeterAlreadyRegistered(address meter);
    /// @notice No household has id `household`.
    error UnknownHousehold(uint32 household);
    /// @notice Household `household` is deactivated.
    error HouseholdInactive(uint32 household);
    /// @notice `account` is not an active household's account.
    error NotHousehold(address account);
    /// @notice Reading `index` names a meter that is not registered (or was retired).
    error UnknownMeter(uint256 index, address meter);
    /// @notice Reading `index`'s signature does not recover to its meter (or is malleable).
    error InvalidSignature(uint256 index, address meter, uint32 slot);
    /// @notice Reading `index` repeats the last committed (meter, slot).
    error DuplicateReading(uint256 index, address meter, uint32 slot);
    /// @notice Reading `index` is for a slot at or before the meter's last committed slot.
    error StaleReading(uint256 index, address meter, uint32 slot, uint32 lastSlot);
    /// @notice Reading `index` is for a slot ahead of the chain's clock: at most `maxSlot`
    ///         (block.timestamp / 900 + MAX_SLOTS_AHEAD) is accepted now.
    error FutureReading(uint256 index, address meter, uint32 slot, uint32 maxSlot);
    /// @notice Reading `index` meters 2^56 Wh or more in one slot (an import or export delta
    ///         no household can draw or feed in 15 minutes: a faulty or forged meter).
    error EnergyTooLarge(
        uint256 index, address meter, uint32 slot, uint64 importDeltaWh, uint64 exportDeltaWh
    );
    /// @notice Reading `index` has a register lower than the last committed one.
    error RegisterDecreased(
        uint256 index,
        address meter,
        uint32 slot,
        uint64 lastImportWh,
        uint64 importWh,
        uint64 lastExportWh,
        uint64 exportWh
    );
    /// @notice An order's slot range is empty.
    error InvalidSlotRange(uint32 firstSlot, uint32 lastSlot);
    /// @notice An order's price limit can never trade inside the tariff band.
    error PriceLimitUnreachable(uint64 priceLimit, uint64 feedIn, uint64 maxLocalPrice);
    /// @notice No offer has id `offerId`.
    error UnknownOffer(uint32 offerId);
    /// @notice No bid has id `bidId`.
    error UnknownBid(uint32 bidId);
    /// @notice Order `orderId` is already cancelled.
    error OrderAlreadyClosed(uint32 orderId);
    /// @notice `account` may not cancel order `orderId`.
    error NotOrderOwner(uint32 orderId, address account);
    /// @notice Tariffs must satisfy feedIn + gridFee <= retail.
    error InvalidTariffs(uint64 feedIn, uint64 retail, uint64 gridFee);
    /// @notice The (slot, batch) pair of forward positions was already cleared.
    error ForwardBatchAlreadyCleared(uint32 slot, uint32 batch);
    /// @notice Forward `index` comes too late: `household`'s meter has committed a reading for
    ///         `slot` or a later slot (`lastSlot`), so the slot can no longer be traded ahead.
    error ForwardTooLate(uint32 index, uint32 household, uint32 slot, uint32 lastSlot);
    /// @notice No forward position has id `forwardId` with these fields and slot.
    error UnknownForward(uint32 forwardId);
    /// @notice Forward position `forwardId` is settled already.
    error ForwardAlreadySettled(uint32 forwardId);
    /// @notice Forward position `forwardId` cannot settle yet: `household`'s meter has not
    ///         committed a reading for `slot` (its last is `lastSlot`).
    error ForwardNotDue(uint32 forwardId, uint32 household, uint32 slot, uint32 lastSlot);
    /// @notice A zero amount is not allowed here.
    error ZeroAmount();
    /// @notice Minting `amount` would take the total supply above `max` micro-euro.
    error SupplyCapExceeded(uint256 amount, uint256 max);
    /// @notice The (slot, batch) pair was already settled.
    error BatchAlreadySettled(uint32 slot, uint32 batch);
    /// @notice A settlement batch must hold at least one fill, an onboarding one household.
    error EmptyBatch();
    /// @notice Fill `fill` has zero energy. `fill` is the index in the batch, TAKE for a direct take.
    error ZeroEnergy(uint32 fill);
    /// @notice Fill `fill` uses an order that is cancelled.
    error OrderClosed(uint32 fill, uint32 orderId);
    /// @notice Fill `fill` is for a slot outside order `orderId`'s range.
    error SlotOutsideOrder(uint32 fill, uint32 orderId, uint32 slot);
    /// @notice Fill `fill` sells and buys for the same household.
    error SelfTrade(uint32 fill, uint32 household);
    /// @notice Fill `fill`'s price is below the offer's limit.
    error PriceBelowOffer(uint32 fill, uint64 price, uint64 offerLimit);
    /// @notice Fill `fill`'s price is above the bid's limit.
    error PriceAboveBid(uint32 fill, uint64 price, uint64 bidLimit);
    /// @notice Fill `fill`'s price breaks feedIn <= price and price + gridFee <= retail.
    error PriceOutsideTariffs(uint32 fill, uint64 price, uint64 feedIn, uint64 retail, uint64 gridFee);
    /// @notice Fill `fill` sells more than the seller's credits left for the slot (none once
    ///         the seller's ring no longer keeps the slot: see SlotEnergy).
    error InsufficientCredits(uint32 fill, uint32 seller, uint32 slot, uint64 haveWh, uint64 wantWh);
    /// @notice Fill `fill` buys more than the buyer's metered import left for the slot (none
    ///         once the buyer's ring no longer keeps the slot: see SlotEnergy).
    error InsufficientDeficit(uint32 fill, uint32 buyer, uint32 slot, uint64 haveWh, uint64 wantWh);
    /// @notice Fill `fill` exceeds order `orderId`'s per-slot cap.
    error OrderCapExceeded(uint32 fill, uint32 orderId, uint32 slot, uint64 leftWh, uint64 wantWh);
    /// @notice Fill `fill`'s buyer cannot pay cost plus grid fee.
    error InsufficientFunds(uint32 fill, address buyer, uint256 haveUeur, uint256 wantUeur);
    /// @notice A token transfer exceeds the sender's balance.
    error InsufficientBalance(address account, uint256 balance, uint256 needed);
    /// @notice A transferFrom exceeds the spender's allowance.
    error InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
    /// @notice `slot` is ahead of the chain's clock and cannot have been settled: at most
    ///         `maxSlot` (block.timestamp / 900 + MAX_SLOTS_AHEAD) can be sealed now.
    error FutureSlot(uint32 slot, uint32 maxSlot);
    /// @notice `slot` is already sealed with `sealedDigestHead`, and a seal is final;
    ///         `digestHead` is the different head that was refused.
    error SlotAlreadySealed(uint32 slot, bytes32 sealedDigestHead, bytes32 digestHead);
    /// @notice A slot's digest head cannot be zero (zero reads back as "not sealed").
    error ZeroDigest(uint32 slot);
}
