// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.24;

import {VoisinAccess} from "./VoisinAccess.sol";
import {VoisinToken} from "./VoisinToken.sol";

/// @title Voisin: the neighbourhood energy ledger
/// @notice Registry of households and meters, EIP-712 signed meter readings that mint credits,
///         limit orders, batch settlement of fills and direct takes, under operator tariffs,
///         and the seals that anchor each settled slot's audit digest.
///         Energy in Wh, money in micro-euro, prices in micro-euro per kWh, slot = unix / 900.
/// @dev One contract so that a fill moves credits and money without external calls; the
///      token, roles and pause live in the abstract parents.
contract Voisin is VoisinToken {
    // ───────────────────────────── Constants ─────────────────────────────

    /// @notice The `fill` index that errors carry for a direct take (not part of a batch).
    uint32 public constant TAKE = type(uint32).max;
    /// @notice The last slot of a standing order.
    uint32 public constant OPEN_END = type(uint32).max;
    /// @notice Seconds per slot: slot = unix seconds / 900 (15 minutes, UTC).
    uint256 public constant SLOT_SECONDS = 900;
    /// @notice How many slots past the chain's own (block.timestamp / 900) a reading, or a
    ///         seal, may name.
    /// @dev A meter signs the reading of slot s when s ends, at (s + 1) * 900, so an honest
    ///      reading names a slot before the chain's. The API's intake
    ///      (ledger.readings.intake.classify) accepts up to the slot in progress by its own
    ///      clock, for meters a few seconds fast; one slot more here lets a block's timestamp lag
    ///      the intake's clock (a block proposed late, clocks apart) by up to 15 minutes without
    ///      refusing what the intake accepted. Without a bound, one signed reading for a far
    ///      slot parked the meter's last slot there, every real reading after it was stale, and
    ///      a rotated meter inherited that slot. With it, a reading signed ahead holds its meter
    ///      (or the meter that replaces it) up for two slots at most: the slot in progress and
    ///      the next, whose honest readings come as stale or duplicate.
    uint32 public constant MAX_SLOTS_AHEAD = 1;
    /// @notice How many of a household's latest metered slots the contract keeps, and so how
    ///         long a slot can be traded: its energy stays until the household's reading for
    ///         a slot KEPT_SLOTS later is committed (an hour of readings at four; longer if the
    ///         meter skipped that slot: the next reading of the same ring word ends it), then
    ///         reads as zeros, and a fill or take for it is refused (InsufficientCredits or
    ///         InsufficientDeficit, with 0 left).
    /// @dev The slot's energy lives in word `slot % KEPT_SLOTS` of the household's ring and is
    ///      overwritten in place by a later slot's reading: an update costs a fraction of a
    ///      fresh storage word, which is what a reading costs most. Settlement runs minutes
    ///      after a slot ends (the ledger's worker leaves a slot out of a plan for the
    ///      households whose energy for it has gone; ledger.market.data).
    uint32 public constant KEPT_SLOTS = 4;

    bytes32 public constant READING_TYPEHASH =
        keccak256("Reading(address meter,uint32 slot,uint64 importWh,uint64 exportWh)");
    bytes32 private constant _DOMAIN_TYPEHASH = keccak256(
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    );
    bytes32 private constant _NAME_HASH = keccak256("Voisin");
    bytes32 private constant _VERSION_HASH = keccak256("1");
    /// @dev secp256k1n / 2: signatures with a higher s are malleable copies and are refused.
    uint256 private constant _HALF_N =
        0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    // ───────────────────────────── Storage ─────────────────────────────

    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;
    /// @dev The Predecessor's fields, immutable: registration reads `_lastSlotBefore` from the
    ///      code, not from storage.
    address private immutable _previous;
    uint64 private immutable _snapshotBlock;
    bytes32 private immutable _snapshotDigest;
    uint32 private immutable _lastSlotBefore;

    Tariffs private _tariffs;
    /// @notice Receives the grid fee of every fill.
    address public feeRecipient;

    uint32 public householdCount;
    uint32 public offerCount;
    uint32 public bidCount;

    /// @dev A kept slot's energy, one word: the slot it belongs to (bits 0-31), then importWh,
    ///      exportWh, boughtWh and soldWh in 56 bits each (a reading refuses 2^56 Wh or more).
    struct KeptSlot {
        uint32 slot;
        uint56 importWh;
        uint56 exportWh;
        uint56 boughtWh;
        uint56 soldWh;
    }

    mapping(address meter => MeterState) private _meters;
    /// @dev The households' rings of kept slots. Key: household << 32 | slot % KEPT_SLOTS.
    mapping(uint256 key => KeptSlot) private _energy;
    mapping(uint32 offerId => Order) private _offers;
    mapping(uint32 bidId => Order) private _bids;
    /// @dev Wh used per (order, slot), tracked only for orders with a per-slot cap. Key: id << 32 | slot.
    mapping(uint256 key => uint64) private _offerUsedWh;
    mapping(uint256 key => uint64) private _bidUsedWh;
    /// @dev Key: slot << 32 | batch.
    mapping(uint256 key => bool) private _batchSettled;
    /// @dev Zero for a slot not sealed (a sealed head is never zero: ZeroDigest).
    mapping(uint32 slot => bytes32) private _sealedDigestHead;

    /// @notice How many forward positions were cleared (ids run from 1).
    uint32 public forwardCount;
    /// @dev Each open position's digest (_forwardDigest: 128 bits, never zero), two to a word:
    ///      position id in the high half of word id / 2 when id is odd, else the low half.
    ///      Settling zeroes the position's half (a word both of whose positions are settled is
    ///      deleted), so that the contract's storage holds the open positions only; a cleared
    ///      id (at most forwardCount) whose half is zero is settled.
    mapping(uint256 word => uint256) private _forwards;
    /// @dev Key: slot << 32 | batch.
    mapping(uint256 key => bool) private _forwardBatchCleared;

    /// @notice A ledger with `admin` holding every role, under the given tariffs; `previous`
    ///         names the deployment it continues (all zeros for a first deployment).
    /// @dev A continuation is declared here, once and before anything else can happen: no
    ///      meter exists yet, so no reading can precede it, and every meter ever registered
    ///      here starts after `previous.lastSlot` (see _register).
    constructor(
        address admin,
        uint64 feedIn,
        uint64 retail,
        uint64 gridFee,
        Predecessor memory previous
    ) VoisinAccess(admin) {
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
        if (previous.deployment == address(0)) {
            // A first deployment declares nothing: a floor or a digest without the deployment
            // they come from could not be audited.
            if (
                previous.snapshotBlock != 0 || previous.snapshotDigest != bytes32(0)
                    || previous.lastSlot != 0
            ) revert ZeroAddress();
        } else {
            // No meter here can be ahead of the clock (see _clearForwards): nor the slot every
            // meter starts after. A continuation's is a slot its predecessor metered.
            uint32 maxSlot = _maxSlot();
            if (previous.lastSlot > maxSlot) revert FutureSlot(previous.lastSlot, maxSlot);
            emit MigratedFrom(
                previous.deployment,
                previous.snapshotBlock,
                previous.snapshotDigest,
                previous.lastSlot
            );
        }
        _previous = previous.deployment;
        _snapshotBlock = previous.snapshotBlock;
        _snapshotDigest = previous.snapshotDigest;
        _lastSlotBefore = previous.lastSlot;
        feeRecipient = admin;
        emit FeeRecipientSet(admin);
        _setTariffs(feedIn, retail, gridFee);
    }

    // ───────────────────────────── Operator ─────────────────────────────

    /// @notice Register a household with its account and its meter's key and starting registers.
    function registerHousehold(
        address account,
        address meter,
        bool prosumer,
        uint64 importBaselineWh,
        uint64 exportBaselineWh
    ) external onlyRole(OPERATOR_ROLE) returns (uint32 household) {
        household = _register(account, meter, prosumer, importBaselineWh, exportBaselineWh);
    }

    /// @notice Register households, and top up those with a `topUpUeur`, in one transaction:
    ///         all of them or none. An operator onboarding a neighbourhood needs no transaction
    ///         (and no block) per household. Returns the first new household's id; the others
    ///         follow in order.
    /// @dev The same checks and events as `registerHousehold` and then `topUp` for each entry,
    ///      in order; a top-up, not a registration, is refused while paused.
    function onboard(Onboarding[] calldata households)
        external
        onlyRole(OPERATOR_ROLE)
        returns (uint32 first)
    {
        if (households.length == 0) revert EmptyBatch();
        first = householdCount + 1;
        for (uint256 i = 0; i < households.length; ++i) {
            Onboarding calldata h = households[i];
            _register(h.account, h.meter, h.prosumer, h.importBaselineWh, h.exportBaselineWh);
            if (h.topUpUeur != 0) _topUp(h.account, h.topUpUeur);
        }
    }

    function _register(
        address account,
        address meter,
        bool prosumer,
        uint64 importBaselineWh,
        uint64 exportBaselineWh
    ) private returns (uint32 household) {
        if (account == address(0) || meter == address(0)) revert ZeroAddress();
        if (householdOf[account] != 0) revert AccountAlreadyRegistered(account);
        _requireNewMeter(meter);
        household = ++householdCount;
        _households[household] = Household(account, true, prosumer, 0, meter);
        householdOf[account] = household;
        _adoptBalance(household, account);
        // A continuation's meters start after the previous deployment's last metered slot, so
        // no (meter, slot) counts on both; a first deployment's start at 0.
        _meters[meter] = MeterState(
            household, _lastSlotBefore, importBaselineWh, exportBaselineWh, false, true
        );
        emit HouseholdRegistered(
            household, account, meter, prosumer, importBaselineWh, exportBaselineWh
        );
    }

    /// @notice Replace a household's meter key; the old key is retired for good.
    /// @dev The new meter inherits the last committed slot, so no slot can be metered twice.
    ///      That slot is at most MAX_SLOTS_AHEAD after the chain's slot when it was committed,
    ///      and block time never goes back, so the new meter's readings are accepted from the
    ///      slot after it as soon as the chain's clock allows: a reading signed ahead with a
    ///      stolen key before the rotation costs the household two slots' readings at most,
    ///      never its place. Works on a deactivated household too; its readings stay refused,
    ///      as deactivation is final.
    function rotateMeter(
        uint32 household,
        address newMeter,
        uint64 importBaselineWh,
        uint64 exportBaselineWh
    ) external onlyRole(OPERATOR_ROLE) {
        Household storage h = _existingHousehold(household);
        if (newMeter == address(0)) revert ZeroAddress();
        _requireNewMeter(newMeter);
        address oldMeter = h.meter;
        MeterState storage old = _meters[oldMeter];
        _meters[newMeter] = MeterState(
            household, old.lastSlot, importBaselineWh, exportBaselineWh, false, h.active
        );
        old.household = 0;
        old.retired = true;
        old.active = false;
        h.meter = newMeter;
        emit MeterRotated(household, oldMeter, newMeter, importBaselineWh, exportBaselineWh);
    }

    /// @notice Replace a household's account key; the balance stays in the household's word.
    /// @dev Orders belong to the household id, not the account, so they stay open and valid.
    ///      The old account keeps nothing: it is no longer a household, and its balance is 0.
    function rotateAccount(uint32 household, address newAccount) external onlyRole(OPERATOR_ROLE) {
        Household storage h = _existingHousehold(household);
        if (newAccount == address(0)) revert ZeroAddress();
        if (householdOf[newAccount] != 0) revert AccountAlreadyRegistered(newAccount);
        address oldAccount = h.account;
        delete householdOf[oldAccount];
        householdOf[newAccount] = household;
        h.account = newAccount;
        _adoptBalance(household, newAccount);
        emit AccountRotated(household, oldAccount, newAccount);
    }

    /// @notice Deactivate a household: its readings, orders and trades are refused from now on.
    function deactivateHousehold(uint32 household) external onlyRole(OPERATOR_ROLE) {
        Household storage h = _existingHousehold(household);
        if (!h.active) revert HouseholdInactive(household);
        h.active = false;
        // The meter word carries it too: a reading reads that word only.
        _meters[h.meter].active = false;
        emit HouseholdDeactivated(household);
    }

    /// @notice Set the tariffs in micro-euro per kWh; requires feedIn + gridFee <= retail.
    function setTariffs(uint64 feedIn, uint64 retail, uint64 gridFee)
        external
        onlyRole(OPERATOR_ROLE)
    {
        _setTariffs(feedIn, retail, gridFee);
    }

    /// @notice Set the account that receives grid fees.
    function setFeeRecipient(address recipient) external onlyRole(OPERATOR_ROLE) {
        if (recipient == address(0)) revert ZeroAddress();
        feeRecipient = recipient;
        emit FeeRecipientSet(recipient);
    }

    // ───────────────────────────── Readings ─────────────────────────────

    /// @notice Commit a batch of signed readings; anyone may submit, the signatures are the credential.
    /// @dev The whole batch reverts on the first bad reading, with an error naming its index.
    ///      A reading may name a slot up to maxReadingSlot() (FutureReading beyond it).
    function commitReadings(Reading[] calldata readings) external whenNotPaused {
        bytes32 domain = domainSeparator();
        uint256 n = readings.length;
        uint256 i;
        while (i < n) {
            // The common case in assembly, as far as it goes; a reading it does not commit (a
            // failed check, a field out of its type's range) goes through the checked path,
            // which names the error.
            i = _commitReadingsFast(domain, readings, i);
            if (i < n) {
                _commitReadingChecked(i, domain, readings[i]);
                ++i;
            }
        }
    }

    /// @dev Commits readings[from], readings[from + 1], ... while every check of
    ///      _commitReadingChecked passes and every field is within its type; returns the index
    ///      of the first reading it did not commit (having changed nothing for it), or the
    ///      length. The same checks and writes as _commitReadingChecked, in assembly, because
    ///      this runs for every meter every slot and the interpreted EVM of the embedded chain
    ///      pays per opcode (a few hundred opcodes per reading here, about four times as many
    ///      in Solidity alone). A reading touches two storage words, both updated in place:
    ///      its meter's and its household's kept slot. Layouts, low to high bits: MeterState
    ///      household 0-31, lastSlot 32-63, importWh 64-127, exportWh 128-191, retired
    ///      192-199, active 200-207; KeptSlot slot 0-31, importWh 32-87, exportWh 88-143
    ///      (bought and sold 0 in a newly metered slot).
    function _commitReadingsFast(bytes32 domain, Reading[] calldata readings, uint256 from)
        private
        returns (uint256 next)
    {
        uint256 maxSlot = _maxSlot();
        bytes32 typeHash = READING_TYPEHASH;
        bytes32 topic = ReadingCommitted.selector;
        uint256 halfN = _HALF_N;
        uint256 kept = KEPT_SLOTS;
        assembly ("memory-safe") {
            let p := mload(0x40)
            let end := add(readings.offset, mul(readings.length, 0xe0))
            let r := add(readings.offset, mul(from, 0xe0))
            // `break` leaves at the first reading not committed, before anything of it is written.
            for {} lt(r, end) { r := add(r, 0xe0) } {
                // Reading: meter, slot, importWh, exportWh, v, r, s; copied once to memory.
                calldatacopy(add(p, 0x20), r, 0xe0)
                let meter := mload(add(p, 0x20))
                let slot := mload(add(p, 0x40))
                let v := mload(add(p, 0xa0))
                let wide := or(or(shr(160, meter), shr(32, slot)), shr(8, v))
                if or(wide, or(shr(64, mload(add(p, 0x60))), shr(64, mload(add(p, 0x80))))) {
                    break
                }
                if gt(slot, maxSlot) { break }
                if or(gt(mload(add(p, 0xe0)), halfN), iszero(or(eq(v, 27), eq(v, 28)))) { break }
                // EIP-712: keccak256("\x19\x01" || domain || keccak256(abi.encode(typeHash,
                // meter, slot, importWh, exportWh))), the struct hashed where it was copied.
                mstore(p, typeHash)
                let structHash := keccak256(p, 0xa0)
                mstore(add(p, 0x100), shl(240, 0x1901))
                mstore(add(p, 0x102), domain)
                mstore(add(p, 0x122), structHash)
                // ecrecover's input: digest, v, r, s (v, r and s are already in place).
                mstore(add(p, 0x80), keccak256(add(p, 0x100), 0x42))
                mstore(0x00, 0)
                // ecrecover writes nothing when it fails, and a registered meter is never zero.
                if iszero(staticcall(gas(), 0x01, add(p, 0x80), 0x80, 0x00, 0x20)) { break }
                if iszero(eq(mload(0x00), meter)) { break }
                mstore(0x00, meter)
                mstore(0x20, _meters.slot)
                let meterSlot := keccak256(0x00, 0x40)
                let m := sload(meterSlot)
                let household := and(m, 0xffffffff)
                // Registered, and its household active (a retired meter is neither).
                if or(iszero(household), iszero(and(shr(200, m), 0xff))) { break }
                if iszero(gt(slot, and(shr(32, m), 0xffffffff))) { break }
                let importWh := calldataload(add(r, 0x40))
                let exportWh := calldataload(add(r, 0x60))
                let importDelta := sub(importWh, and(shr(64, m), 0xffffffffffffffff))
                let exportDelta := sub(exportWh, and(shr(128, m), 0xffffffffffffffff))
                // A register that decreased wraps past 2^64 (both registers are below 2^64),
                // and a kept slot holds 56 bits per figure.
                if or(shr(56, importDelta), shr(56, exportDelta)) { break }
                let packed := or(or(household, shl(32, slot)), shl(64, importWh))
                sstore(meterSlot, or(or(packed, shl(128, exportWh)), shl(200, 1)))
                // The slot's word in the household's ring: what it held (a slot KEPT_SLOTS or
                // more before, whose trading is over) is overwritten.
                mstore(0x00, or(shl(32, household), mod(slot, kept)))
                mstore(0x20, _energy.slot)
                packed := or(or(slot, shl(32, importDelta)), shl(88, exportDelta))
                sstore(keccak256(0x00, 0x40), packed)
                mstore(p, importWh)
                mstore(add(p, 0x20), exportWh)
                mstore(add(p, 0x40), importDelta)
                mstore(add(p, 0x60), exportDelta)
                log4(p, 0x80, topic, household, meter, slot)
            }
            next := div(sub(r, readings.offset), 0xe0)
        }
    }

    /// @dev One reading, every check in Solidity, reverting with the first that fails.
    function _commitReadingChecked(uint256 i, bytes32 domain, Reading calldata r) private {
        MeterState memory m = _meters[r.meter];
        if (m.household == 0) revert UnknownMeter(i, r.meter);
        _verifyReading(i, domain, r);
        if (!m.active) revert HouseholdInactive(m.household);
        uint32 maxSlot = _maxSlot();
        if (r.slot > maxSlot) revert FutureReading(i, r.meter, r.slot, maxSlot);
        if (r.slot == m.lastSlot) revert DuplicateReading(i, r.meter, r.slot);
        if (r.slot < m.lastSlot) revert StaleReading(i, r.meter, r.slot, m.lastSlot);
        if (r.importWh < m.importWh || r.exportWh < m.exportWh) {
            revert RegisterDecreased(
                i, r.meter, r.slot, m.importWh, r.importWh, m.exportWh, r.exportWh
            );
        }
        // unchecked: both registers were just checked not to decrease.
        uint64 importDelta;
        uint64 exportDelta;
        unchecked {
            importDelta = r.importWh - m.importWh;
            exportDelta = r.exportWh - m.exportWh;
        }
        if (importDelta > type(uint56).max || exportDelta > type(uint56).max) {
            revert EnergyTooLarge(i, r.meter, r.slot, importDelta, exportDelta);
        }
        _meters[r.meter] = MeterState(m.household, r.slot, r.importWh, r.exportWh, false, true);
        // The slot is strictly after the meter's (and, after rotation, the household's) last
        // slot, so the word it takes holds a slot at least KEPT_SLOTS before, whose trading
        // is over: nothing still tradeable is overwritten.
        _energy[_keptKey(m.household, r.slot)] =
            KeptSlot(r.slot, uint56(importDelta), uint56(exportDelta), 0, 0);
        emit ReadingCommitted(
            m.household, r.meter, r.slot, r.importWh, r.exportWh, importDelta, exportDelta
        );
    }

    /// @notice The last slot a reading (or a seal) may name in this block:
    ///         block.timestamp / 900 + MAX_SLOTS_AHEAD.
    function maxReadingSlot() external view returns (uint32) {
        return _maxSlot();
    }

    /// @notice The EIP-712 digest a meter signs for a reading.
    function readingDigest(address meter, uint32 slot, uint64 importWh, uint64 exportWh)
        public
        view
        returns (bytes32)
    {
        return _digest(domainSeparator(), meter, slot, importWh, exportWh);
    }

    /// @notice The EIP-712 domain separator (name "Voisin", version "1", chain id, this contract).
    function domainSeparator() public view returns (bytes32) {
        if (block.chainid == _cachedChainId) return _cachedDomainSeparator;
        return _buildDomainSeparator();
    }

    // ───────────────────────────── Orders ─────────────────────────────

    /// @notice Post a sell offer for slots [firstSlot, lastSlot] at or above `priceLimit`.
    function postOffer(uint64 priceLimit, uint64 maxWhPerSlot, uint32 firstSlot, uint32 lastSlot)
        external
        whenNotPaused
        returns (uint32 offerId)
    {
        uint32 household = _activeHouseholdOf(msg.sender);
        if (firstSlot > lastSlot) revert InvalidSlotRange(firstSlot, lastSlot);
        Tariffs memory t = _tariffs;
        // An offer above retail - fee could never be bought without the buyer paying above retail.
        uint64 maxLocal = t.retailUeurPerKWh - t.gridFeeUeurPerKWh;
        if (priceLimit > maxLocal) {
            revert PriceLimitUnreachable(priceLimit, t.feedInUeurPerKWh, maxLocal);
        }
        offerId = ++offerCount;
        _offers[offerId] = Order(household, priceLimit, maxWhPerSlot, firstSlot, lastSlot, true);
        emit OfferPosted(offerId, household, priceLimit, maxWhPerSlot, firstSlot, lastSlot);
    }

    /// @notice Post a buy bid for slots [firstSlot, lastSlot] at or below `priceLimit` (fee excluded).
    function postBid(uint64 priceLimit, uint64 maxWhPerSlot, uint32 firstSlot, uint32 lastSlot)
        external
        whenNotPaused
        returns (uint32 bidId)
    {
        uint32 household = _activeHouseholdOf(msg.sender);
        if (firstSlot > lastSlot) revert InvalidSlotRange(firstSlot, lastSlot);
        Tariffs memory t = _tariffs;
        // A bid below feed-in could never be sold to: sellers always get at least feed-in.
        if (priceLimit < t.feedInUeurPerKWh) {
            revert PriceLimitUnreachable(
                priceLimit, t.feedInUeurPerKWh, t.retailUeurPerKWh - t.gridFeeUeurPerKWh
            );
        }
        bidId = ++bidCount;
        _bids[bidId] = Order(household, priceLimit, maxWhPerSlot, firstSlot, lastSlot, true);
        emit BidPosted(bidId, household, priceLimit, maxWhPerSlot, firstSlot, lastSlot);
    }

    /// @notice Cancel an offer (its owner or the operator).
    function cancelOffer(uint32 offerId) external {
        Order storage o = _offers[offerId];
        if (o.household == 0) revert UnknownOffer(offerId);
        _cancel(o, offerId);
        emit OfferCancelled(offerId, msg.sender);
    }

    /// @notice Cancel a bid (its owner or the operator).
    function cancelBid(uint32 bidId) external {
        Order storage o = _bids[bidId];
        if (o.household == 0) revert UnknownBid(bidId);
        _cancel(o, bidId);
        emit BidCancelled(bidId, msg.sender);
    }

    // ───────────────────────────── Settlement ─────────────────────────────

    /// @notice Settle a batch of fills for one slot; the batch is accepted whole or not at all.
    /// @dev (slot, batch) can be settled once, so a retried or replayed batch is refused.
    function settleBatch(uint32 slot, uint32 batch, Fill[] calldata fills)
        external
        onlyRole(SETTLER_ROLE)
        whenNotPaused
    {
        uint256 n = fills.length;
        if (n == 0) revert EmptyBatch();
        uint256 batchKey = _key(slot, batch);
        if (_batchSettled[batchKey]) revert BatchAlreadySettled(slot, batch);
        _batchSettled[batchKey] = true;
        Tariffs memory t = _tariffs;
        uint256 totalWh;
        uint256 totalFee;
        uint256 i;
        while (i < n) {
            // The common case in assembly, as far as it goes; a fill it does not settle goes
            // through the checked path, which names the failing check.
            (uint256 next, uint256 fastFees, uint256 fastWh) = _settleFillsFast(slot, fills, i, t);
            totalFee += fastFees;
            totalWh += fastWh;
            i = next;
            if (i < n) {
                Fill calldata f = fills[i];
                // A batch cannot hold 2^32 fills within any block gas limit.
                totalFee += _settleBatchFill(uint32(i), slot, f, t);
                totalWh += f.energyWh;
                ++i;
            }
        }
        // Fees were debited from each buyer fill by fill; the recipient is credited once.
        address fees = feeRecipient;
        if (totalFee != 0) _credit(householdOf[fees], fees, totalFee);
        // Total Wh is bounded by the sum of metered exports of one slot, far below 2^64.
        emit BatchSettled(slot, batch, uint32(n), uint64(totalWh));
    }

    /// @notice Buy up to `maxEnergyWh` of `slot` from an offer at its price limit; fills partially
    ///         as far as credits, own metered import, the offer's cap and funds allow.
    function takeOffer(uint32 offerId, uint32 slot, uint64 maxEnergyWh)
        external
        whenNotPaused
        returns (uint64 energyWh)
    {
        uint32 buyer = _activeHouseholdOf(msg.sender);
        Order memory offer = _offers[offerId];
        if (offer.household == 0) revert UnknownOffer(offerId);
        _checkOrder(TAKE, offerId, offer, slot);
        if (maxEnergyWh == 0) revert ZeroEnergy(TAKE);
        Tariffs memory t = _tariffs;
        uint64 price = offer.priceLimitUeurPerKWh;
        // An offer posted under older tariffs may now sit below feed-in: sell at feed-in then.
        if (price < t.feedInUeurPerKWh) price = t.feedInUeurPerKWh;

        energyWh = maxEnergyWh;
        SlotEnergy memory s = _slotEnergy(offer.household, slot);
        energyWh = _min(energyWh, s.exportWh - s.soldWh);
        SlotEnergy memory b = _slotEnergy(buyer, slot);
        energyWh = _min(energyWh, b.importWh - b.boughtWh);
        if (offer.maxWhPerSlot != 0) {
            uint64 used = _offerUsedWh[_key(offerId, slot)];
            energyWh = _min(energyWh, offer.maxWhPerSlot > used ? offer.maxWhPerSlot - used : 0);
        }
        uint256 perKWh = uint256(price) + t.gridFeeUeurPerKWh;
        if (perKWh != 0) {
            // floor(e*p/1000) + floor(e*f/1000) <= e*(p+f)/1000 <= balance: always affordable.
            uint256 affordable = uint256(_households[buyer].balanceUeur) * 1000 / perKWh;
            if (affordable < energyWh) energyWh = uint64(affordable);
        }
        // Nothing available: settle the requested amount so the failing check names itself.
        if (energyWh == 0) energyWh = maxEnergyWh;
        if (offer.maxWhPerSlot != 0) {
            _useCap(_offerUsedWh, TAKE, offerId, offer.maxWhPerSlot, slot, energyWh);
        }
        uint256 fee = _settleFill(TAKE, slot, offerId, 0, offer.household, buyer, energyWh, price, t);
        address fees = feeRecipient;
        if (fee != 0) _credit(householdOf[fees], fees, fee);
    }

    // ───────────────────────────── Day-ahead forwards ─────────────────────────────

    /// @notice Clear a batch of forward positions for `slot` ahead of it (settler only): each
    ///         moves its buyer's cost and grid fee, at today's tariffs, into the contract's
    ///         escrow, so that a forward is an obligation the buyer can pay. The batch is
    ///         accepted whole or not at all.
    /// @dev (slot, batch) can be cleared once, so a retried batch is refused. A position is
    ///      refused once either party's meter has committed a reading for the slot or a later
    ///      one: a slot is traded ahead before it is metered, never after (for a slot beyond
    ///      the clock's reach, so without reading the meters: see _clearForwards). The
    ///      contract keeps a digest of each position; `settleForwards` is given the fields back.
    function clearForwards(uint32 slot, uint32 batch, Forward[] calldata positions)
        external
        onlyRole(SETTLER_ROLE)
        whenNotPaused
    {
        uint256 n = positions.length;
        if (n == 0) revert EmptyBatch();
        uint256 batchKey = _key(slot, batch);
        if (_forwardBatchCleared[batchKey]) revert ForwardBatchAlreadyCleared(slot, batch);
        _forwardBatchCleared[batchKey] = true;
        Tariffs memory t = _tariffs;
        // A slot beyond the clock's reach: no meter can have read it (see _clearForwards).
        bool ahead = slot > _maxSlot();
        (uint256 next, uint256 lastId, uint256 escrow) =
            _clearForwards(slot, ahead, positions, forwardCount, t);
        if (next < n) _refuseClearing(uint32(next), slot, positions[next], t);
        // Ids are uint32; 2^32 positions are far beyond any ledger's life, but never wrap.
        require(lastId <= type(uint32).max);
        forwardCount = uint32(lastId);
        // To the escrow, the contract's own balance, once for the batch.
        _credit(householdOf[address(this)], address(this), escrow);
    }

    /// @notice Settle forward positions of `slot` against its metered energy (settler only),
    ///         before the slot's real-time fills. Each position releases its reservation to
    ///         the buyer, then delivers as much as the seller's credits and the buyer's metered
    ///         import left for the slot allow, as a fill at the position's price (offer and bid
    ///         id 0); what is not delivered is the shortfall, left to the real-time market and
    ///         the grid. A position of a deactivated household, or priced outside today's
    ///         tariffs, delivers nothing.
    /// @dev A position settles once (ForwardAlreadySettled), only with the fields it was
    ///      cleared with (UnknownForward), and only once both parties' meters have committed a
    ///      reading for the slot or a later one (ForwardNotDue), so that a position is never
    ///      settled as undelivered before its slot is metered.
    function settleForwards(uint32 slot, ForwardPosition[] calldata positions)
        external
        onlyRole(SETTLER_ROLE)
        whenNotPaused
    {
        uint256 n = positions.length;
        if (n == 0) revert EmptyBatch();
        (uint256 next, uint256 totalFee, uint256 escrow) = _settleForwards(slot, positions, _tariffs);
        if (next < n) _refuseSettlement(slot, positions[next]);
        // Out of the escrow, once for the batch: the reservations given back.
        _debit(householdOf[address(this)], address(this), escrow);
        address fees = feeRecipient;
        if (totalFee != 0) _credit(householdOf[fees], fees, totalFee);
    }

    /// @notice Whether the (slot, batch) pair of forward positions was cleared.
    function forwardBatchCleared(uint32 slot, uint32 batch) external view returns (bool) {
        return _forwardBatchCleared[_key(slot, batch)];
    }

    // ───────────────────────────── Seals ─────────────────────────────

    /// @notice Anchor `slot`'s head of the settled-slot digest chain on chain (settler only).
    /// @dev A seal is final: a different head for a sealed slot is refused (SlotAlreadySealed),
    ///      the same head again changes nothing and emits nothing, so a settlement worker that
    ///      stopped after sending can send again. Allowed while paused: a seal moves neither
    ///      energy nor money, and during an emergency stop the record of what was settled
    ///      before it is what should be anchored. A slot ahead of the chain's clock cannot have
    ///      been settled (FutureSlot), which also keeps a mistaken seal from taking a slot that
    ///      is still to come.
    function sealSlot(uint32 slot, bytes32 digestHead) external onlyRole(SETTLER_ROLE) {
        if (digestHead == bytes32(0)) revert ZeroDigest(slot);
        uint32 maxSlot = _maxSlot();
        if (slot > maxSlot) revert FutureSlot(slot, maxSlot);
        bytes32 current = _sealedDigestHead[slot];
        if (current == digestHead) return;
        if (current != bytes32(0)) revert SlotAlreadySealed(slot, current, digestHead);
        _sealedDigestHead[slot] = digestHead;
        emit SlotSealed(slot, digestHead);
    }

    // ───────────────────────────── Views ─────────────────────────────

    /// @notice The current tariffs in micro-euro per kWh.
    function tariffs() external view returns (Tariffs memory) {
        return _tariffs;
    }

    /// @notice The deployment this one continues, as declared at construction (all zeros
    ///         for a first deployment).
    function predecessor() external view returns (Predecessor memory) {
        return Predecessor(_previous, _snapshotBlock, _snapshotDigest, _lastSlotBefore);
    }

    /// @notice A household's record.
    function getHousehold(uint32 id) external view returns (Household memory) {
        return _households[id];
    }

    /// @notice A meter's last committed reading and owner.
    function meterState(address meter) external view returns (MeterState memory) {
        return _meters[meter];
    }

    /// @notice A household's metered and traded energy for a slot its ring still keeps (see
    ///         KEPT_SLOTS); zeros for any other slot (not metered, or overwritten).
    function slotEnergy(uint32 id, uint32 slot) external view returns (SlotEnergy memory) {
        return _slotEnergy(id, slot);
    }

    /// @notice An offer.
    function getOffer(uint32 offerId) external view returns (Order memory) {
        return _offers[offerId];
    }

    /// @notice A bid.
    function getBid(uint32 bidId) external view returns (Order memory) {
        return _bids[bidId];
    }

    /// @notice Wh of `slot` already sold through a capped offer.
    function offerUsedWh(uint32 offerId, uint32 slot) external view returns (uint64) {
        return _offerUsedWh[_key(offerId, slot)];
    }

    /// @notice Wh of `slot` already bought through a capped bid.
    function bidUsedWh(uint32 bidId, uint32 slot) external view returns (uint64) {
        return _bidUsedWh[_key(bidId, slot)];
    }

    /// @notice Whether batch `batch` of `slot` was settled.
    function batchSettled(uint32 slot, uint32 batch) external view returns (bool) {
        return _batchSettled[_key(slot, batch)];
    }

    /// @notice The digest head sealed for `slot` (sealSlot), or zero if it is not sealed.
    function sealedDigestHead(uint32 slot) external view returns (bytes32) {
        return _sealedDigestHead[slot];
    }

    // ───────────────────────────── Internal ─────────────────────────────

    /// @dev Settles fills[from], fills[from + 1], ... while every check of _settleBatchFill and
    ///      _settleFill passes and every field is within its type; returns the index of the
    ///      first fill it did not settle (having changed nothing for it), or the length, with
    ///      the fees taken from the buyers and the Wh sold. The same checks and writes, in
    ///      assembly, for the reason given at _commitReadingsFast. Layouts, low to high bits:
    ///      Order household 0-31, priceLimit 32-95, maxWhPerSlot 96-159, firstSlot 160-191,
    ///      lastSlot 192-223, open 224-231; Household word 1 active 160-167, balanceUeur
    ///      176-255; KeptSlot as at _consumeEnergy; a cap's used Wh is its word's low 64 bits.
    function _settleFillsFast(uint32 slot, Fill[] calldata fills, uint256 from, Tariffs memory t)
        private
        returns (uint256 next, uint256 fees, uint256 energyWh)
    {
        uint256 feedIn = t.feedInUeurPerKWh;
        uint256 retail = t.retailUeurPerKWh;
        uint256 gridFee = t.gridFeeUeurPerKWh;
        bytes32 topic = FillSettled.selector;
        uint256 kept = KEPT_SLOTS;
        assembly ("memory-safe") {
            let u64 := 0xffffffffffffffff
            let u56 := 0xffffffffffffff
            let p := mload(0x40)
            let end := add(fills.offset, mul(fills.length, 0x80))
            let f := add(fills.offset, mul(from, 0x80))
            // `break` leaves at the first fill not settled, before anything of it is written.
            for {} lt(f, end) { f := add(f, 0x80) } {
                // Fill: offerId, bidId, energyWh, price; copied once to memory, where it is
                // also the head of the FillSettled event's data.
                calldatacopy(p, f, 0x80)
                let energy := mload(add(p, 0x40))
                let price := mload(add(p, 0x60))
                let wide := or(shr(32, mload(p)), shr(32, mload(add(p, 0x20))))
                if or(wide, or(shr(64, energy), shr(64, price))) { break }
                if iszero(energy) { break }
                if or(lt(price, feedIn), gt(add(price, gridFee), retail)) { break }
                mstore(0x00, mload(p))
                mstore(0x20, _offers.slot)
                let o := sload(keccak256(0x00, 0x40))
                mstore(0x00, mload(add(p, 0x20)))
                mstore(0x20, _bids.slot)
                let b := sload(keccak256(0x00, 0x40))
                let seller := and(o, 0xffffffff)
                let buyer := and(b, 0xffffffff)
                if or(or(iszero(seller), iszero(buyer)), eq(seller, buyer)) { break }
                // Both open (bit 224; nothing is stored above it), the slot within both ranges.
                if iszero(and(shr(224, o), shr(224, b))) { break }
                if or(lt(slot, and(shr(160, o), 0xffffffff)), gt(slot, and(shr(192, o), 0xffffffff))) {
                    break
                }
                if or(lt(slot, and(shr(160, b), 0xffffffff)), gt(slot, and(shr(192, b), 0xffffffff))) {
                    break
                }
                if or(lt(price, and(shr(32, o), u64)), gt(price, and(shr(32, b), u64))) { break }
                // Caps: energy must fit cap - used (used never exceeds cap). Their new words
                // wait in memory (p + 0x80 .. p + 0xff) until every check has passed.
                let caps := 0
                let cap := and(shr(96, o), u64)
                if cap {
                    mstore(0x00, or(shl(32, mload(p)), slot))
                    mstore(0x20, _offerUsedWh.slot)
                    let at := keccak256(0x00, 0x40)
                    let used := add(and(sload(at), u64), energy)
                    if gt(used, cap) { break }
                    mstore(add(p, 0x80), at)
                    mstore(add(p, 0xa0), used)
                    caps := 1
                }
                cap := and(shr(96, b), u64)
                if cap {
                    mstore(0x00, or(shl(32, mload(add(p, 0x20))), slot))
                    mstore(0x20, _bidUsedWh.slot)
                    let at := keccak256(0x00, 0x40)
                    let used := add(and(sload(at), u64), energy)
                    if gt(used, cap) { break }
                    mstore(add(p, 0xc0), at)
                    mstore(add(p, 0xe0), used)
                    caps := or(caps, 2)
                }
                mstore(0x00, seller)
                mstore(0x20, _households.slot)
                let sellerAt := keccak256(0x00, 0x40)
                let sellerWord := sload(sellerAt)
                mstore(0x00, buyer)
                let buyerAt := keccak256(0x00, 0x40)
                let buyerWord := sload(buyerAt)
                if iszero(and(and(shr(160, sellerWord), shr(160, buyerWord)), 1)) { break }
                mstore(0x00, or(shl(32, seller), mod(slot, kept)))
                mstore(0x20, _energy.slot)
                let sellerEnergyAt := keccak256(0x00, 0x40)
                let se := sload(sellerEnergyAt)
                // The word must still hold this slot (else nothing is left of it to trade).
                // Credits: export - sold; deficit: import - bought (neither is ever negative).
                if iszero(eq(and(se, 0xffffffff), slot)) { break }
                if lt(sub(and(shr(88, se), u56), shr(200, se)), energy) { break }
                mstore(0x00, or(shl(32, buyer), mod(slot, kept)))
                let buyerEnergyAt := keccak256(0x00, 0x40)
                let be := sload(buyerEnergyAt)
                if iszero(eq(and(be, 0xffffffff), slot)) { break }
                if lt(sub(and(shr(32, be), u56), and(shr(144, be), u56)), energy) { break }
                let cost := div(mul(energy, price), 1000)
                let fee := div(mul(energy, gridFee), 1000)
                if lt(shr(176, buyerWord), add(cost, fee)) { break }
                // Every check passed: write. Sums stay within their fields (checked above, and
                // balances are bounded by the supply cap), as in the checked path.
                if and(caps, 1) { sstore(mload(add(p, 0x80)), mload(add(p, 0xa0))) }
                if and(caps, 2) { sstore(mload(add(p, 0xc0)), mload(add(p, 0xe0))) }
                sstore(sellerEnergyAt, add(se, shl(200, energy)))
                sstore(buyerEnergyAt, add(be, shl(144, energy)))
                sstore(buyerAt, sub(buyerWord, shl(176, add(cost, fee))))
                sstore(sellerAt, add(sellerWord, shl(176, cost)))
                mstore(add(p, 0x80), cost)
                mstore(add(p, 0xa0), fee)
                log4(p, 0xc0, topic, slot, seller, buyer)
                fees := add(fees, fee)
                energyWh := add(energyWh, energy)
            }
            next := div(sub(f, fills.offset), 0x80)
        }
    }

    /// @dev Clears positions[0], positions[1], ... up to the first that a check refuses;
    ///      returns its index (nothing of it written: the caller reverts with the check's error,
    ///      _refuseClearing), or the length, with the last id given (`id` before the first) and
    ///      the reservations taken, which the caller credits to the escrow. For each position:
    ///      every field within its type (else an empty revert, as the ABI decoder does), energy,
    ///      no self-trade, the price within today's tariffs, both households active, neither
    ///      meter past the slot, the buyer's funds; then the buyer's reservation, the stored
    ///      digest, Transfer(buyer, escrow) and ForwardCleared. In assembly, for the reason given
    ///      at _commitReadingsFast (a few hundred opcodes per position, several times as many
    ///      in Solidity). Layouts as at _settleFillsFast and _commitReadingsFast; a household's
    ///      meter is the word after its first.
    ///
    ///      `ahead`: `slot` is beyond _maxSlot(), so neither meter is read. Every meter's last
    ///      slot is at most _maxSlot() at all times (a reading's slot is, FutureReading; a
    ///      rotated meter inherits its predecessor's; a registered one starts at the declared
    ///      predecessor's last slot, which the constructor holds to the clock; and the clock
    ///      only moves forward), so no meter can have read a slot beyond it. A day-ahead
    ///      market clears tomorrow's slots: four storage reads fewer per position.
    function _clearForwards(
        uint32 slot,
        bool ahead,
        Forward[] calldata positions,
        uint256 id,
        Tariffs memory t
    ) private returns (uint256 next, uint256 lastId, uint256 escrow) {
        uint256 feedIn = t.feedInUeurPerKWh;
        uint256 retail = t.retailUeurPerKWh;
        uint256 gridFee = t.gridFeeUeurPerKWh;
        bytes32 transferTopic = Transfer.selector;
        bytes32 clearedTopic = ForwardCleared.selector;
        assembly ("memory-safe") {
            let p := mload(0x40)
            let end := add(positions.offset, mul(positions.length, 0x80))
            let f := positions.offset
            for {} lt(f, end) { f := add(f, 0x80) } {
                // Forward: seller, buyer, energyWh, price; copied to p + 0x40 so that p holds
                // the hashed fields (id, slot, seller, buyer, energyWh, price, reserved).
                calldatacopy(add(p, 0x40), f, 0x80)
                let seller := mload(add(p, 0x40))
                let buyer := mload(add(p, 0x60))
                let energy := mload(add(p, 0x80))
                let price := mload(add(p, 0xa0))
                if or(or(shr(32, seller), shr(32, buyer)), or(shr(64, energy), shr(64, price))) {
                    revert(0, 0)
                }
                if or(iszero(energy), eq(seller, buyer)) { break }
                if or(lt(price, feedIn), gt(add(price, gridFee), retail)) { break }
                // Both active (bit 160), so registered: an unknown household's word is zero.
                mstore(0x00, seller)
                mstore(0x20, _households.slot)
                let sellerAt := keccak256(0x00, 0x40)
                mstore(0x00, buyer)
                let buyerAt := keccak256(0x00, 0x40)
                let buyerWord := sload(buyerAt)
                if iszero(and(and(shr(160, sload(sellerAt)), shr(160, buyerWord)), 1)) { break }
                // Neither meter has read the slot: lastSlot (bits 32-63) is 0 or before it.
                if iszero(ahead) {
                    mstore(0x20, _meters.slot)
                    mstore(0x00, sload(add(sellerAt, 1)))
                    let last := and(shr(32, sload(keccak256(0x00, 0x40))), 0xffffffff)
                    if and(gt(last, 0), iszero(lt(last, slot))) { break }
                    mstore(0x00, sload(add(buyerAt, 1)))
                    last := and(shr(32, sload(keccak256(0x00, 0x40))), 0xffffffff)
                    if and(gt(last, 0), iszero(lt(last, slot))) { break }
                }
                let reserved := add(div(mul(energy, price), 1000), div(mul(energy, gridFee), 1000))
                if lt(shr(176, buyerWord), reserved) { break }
                // Every check passed: write.
                sstore(buyerAt, sub(buyerWord, shl(176, reserved)))
                escrow := add(escrow, reserved)
                id := add(id, 1)
                mstore(p, id)
                mstore(add(p, 0x20), slot)
                mstore(add(p, 0xc0), reserved)
                mstore(0x00, shr(1, id))
                mstore(0x20, _forwards.slot)
                let at := keccak256(0x00, 0x40)
                let digest := or(shr(128, keccak256(p, 0xe0)), 1)
                sstore(at, or(sload(at), shl(shl(7, and(id, 1)), digest)))
                let buyerAccount := and(buyerWord, sub(shl(160, 1), 1))
                log3(add(p, 0xc0), 0x20, transferTopic, buyerAccount, address())
                log4(add(p, 0x60), 0x80, clearedTopic, id, slot, seller)
            }
            next := div(sub(f, positions.offset), 0x80)
            lastId := id
        }
    }

    /// @dev Reverts with the error of the first check that refuses clearing `f`, in the order
    ///      _clearForwards checks them.
    function _refuseClearing(uint32 index, uint32 slot, Forward calldata f, Tariffs memory t)
        private
        view
    {
        if (f.energyWh == 0) revert ZeroEnergy(index);
        if (f.seller == f.buyer) revert SelfTrade(index, f.seller);
        _checkPrice(index, f.priceUeurPerKWh, t);
        Household storage s = _existingHousehold(f.seller);
        if (!s.active) revert HouseholdInactive(f.seller);
        Household storage b = _existingHousehold(f.buyer);
        if (!b.active) revert HouseholdInactive(f.buyer);
        _requireUnmetered(index, f.seller, s.meter, slot);
        _requireUnmetered(index, f.buyer, b.meter, slot);
        uint256 reserved = uint256(f.energyWh) * f.priceUeurPerKWh / 1000
            + uint256(f.energyWh) * t.gridFeeUeurPerKWh / 1000;
        revert InsufficientFunds(index, b.account, b.balanceUeur, reserved);
    }

    /// @dev Settles positions[0], positions[1], ... up to the first that is refused; returns
    ///      its index (nothing of it written: the caller reverts with the refusal's error,
    ///      _refuseSettlement), or the length, with the grid fees taken and the reservations
    ///      given back, which the caller debits from the escrow. For each position:
    ///      - every field within its type (else an empty revert, as the ABI decoder does), and
    ///        the stored digest of these very fields (refused if settled or unknown);
    ///      - the reservation goes back to the buyer (Transfer from the escrow);
    ///      - if both households are active and the price is within today's tariffs, it
    ///        delivers min(energy, the seller's credits, the buyer's import left) of the slot.
    ///        A party whose ring holds the slot has metered it; one whose ring does not has
    ///        nothing left of it if its meter has read the slot since, else the position is
    ///        refused (not due). The reservation pays the whole delivery at the grid fee of
    ///        its clearing; a fee raised since delivers what it covers, in whole Wh:
    ///        floor(e*p/1000) + floor(e*f/1000) <= e*(p+f)/1000 <= reserved;
    ///      - the delivered part is paid as a fill (FillSettled with offer and bid id 0), the
    ///        buyer's word taking the reservation back less its cost and fee in one write;
    ///      - ForwardSettled.
    ///      In assembly, for the reason given at _commitReadingsFast. Layouts as at
    ///      _settleFillsFast and _commitReadingsFast.
    function _settleForwards(uint32 slot, ForwardPosition[] calldata positions, Tariffs memory t)
        private
        returns (uint256 next, uint256 fees, uint256 escrow)
    {
        bytes32 transferTopic = Transfer.selector;
        bytes32 fillTopic = FillSettled.selector;
        bytes32 settledTopic = ForwardSettled.selector;
        uint256 ring = slot % KEPT_SLOTS;
        assembly ("memory-safe") {
            // Scratch above the free memory pointer, at p: the hashed fields (id, slot, seller,
            // buyer, energyWh, price, reserved) at 0x00-0xdf, an event's data at 0xe0-0x1bf,
            // the three topics at 0x1c0-0x21f, then the storage addresses of the position being
            // settled (its hash, both households' words, both kept slots) at 0x220-0x2bf. What
            // is read again later lives there, not on the stack, which stays shallow enough for
            // the compiler to keep every variable on it. Tariffs at t: feed-in, retail, fee.
            let p := mload(0x40)
            mstore(add(p, 0x20), slot)
            mstore(add(p, 0x1c0), transferTopic)
            mstore(add(p, 0x1e0), fillTopic)
            mstore(add(p, 0x200), settledTopic)
            let end := add(positions.offset, mul(positions.length, 0xc0))
            let f := positions.offset
            for {} lt(f, end) { f := add(f, 0xc0) } {
                // ForwardPosition: forwardId, seller, buyer, energyWh, price, reserved.
                mstore(p, calldataload(f))
                calldatacopy(add(p, 0x40), add(f, 0x20), 0xa0)
                let wide := or(shr(32, mload(p)), shr(32, mload(add(p, 0x40))))
                wide := or(wide, or(shr(32, mload(add(p, 0x60))), shr(64, mload(add(p, 0x80)))))
                if or(wide, shr(64, mload(add(p, 0xa0)))) { revert(0, 0) }
                // The open position's digest (zero once settled, or if never cleared), in
                // its half of the word: bits 128-255 for an odd id, else 0-127.
                mstore(0x00, shr(1, mload(p)))
                mstore(0x20, _forwards.slot)
                let at := keccak256(0x00, 0x40)
                let held := and(shr(shl(7, and(mload(p), 1)), sload(at)), 0xffffffffffffffffffffffffffffffff)
                if iszero(eq(held, or(shr(128, keccak256(p, 0xe0)), 1))) { break }
                mstore(add(p, 0x220), at)
                mstore(0x20, _households.slot)
                mstore(0x00, mload(add(p, 0x40)))
                at := keccak256(0x00, 0x40)
                mstore(add(p, 0x240), at)
                let sellerWord := sload(at)
                mstore(0x00, mload(add(p, 0x60)))
                at := keccak256(0x00, 0x40)
                mstore(add(p, 0x260), at)
                let buyerWord := sload(at)
                let delivered := 0
                let se := 0
                let be := 0
                let price := mload(add(p, 0xa0))
                let band := iszero(or(lt(price, mload(t)), gt(add(price, mload(add(t, 0x40))), mload(add(t, 0x20)))))
                if and(and(and(shr(160, sellerWord), shr(160, buyerWord)), 1), band) {
                    delivered := mload(add(p, 0x80))
                    mstore(0x20, _energy.slot)
                    mstore(0x00, or(shl(32, mload(add(p, 0x40))), ring))
                    at := keccak256(0x00, 0x40)
                    mstore(add(p, 0x280), at)
                    se := sload(at)
                    mstore(0x00, or(shl(32, mload(add(p, 0x60))), ring))
                    at := keccak256(0x00, 0x40)
                    mstore(add(p, 0x2a0), at)
                    be := sload(at)
                    // A party whose ring holds the slot metered it: delivered is at most its
                    // credits (export - sold) or import left (import - bought). One whose ring
                    // does not has nothing left of the slot, if its meter (lastSlot, bits 32-63)
                    // has read it since; else the position is not due.
                    switch eq(and(se, 0xffffffff), slot)
                    case 0 {
                        mstore(0x20, _meters.slot)
                        mstore(0x00, sload(add(mload(add(p, 0x240)), 1)))
                        if lt(and(shr(32, sload(keccak256(0x00, 0x40))), 0xffffffff), slot) { break }
                        delivered := 0
                    }
                    default {
                        at := sub(and(shr(88, se), 0xffffffffffffff), shr(200, se))
                        if lt(at, delivered) { delivered := at }
                    }
                    switch eq(and(be, 0xffffffff), slot)
                    case 0 {
                        mstore(0x20, _meters.slot)
                        mstore(0x00, sload(add(mload(add(p, 0x260)), 1)))
                        if lt(and(shr(32, sload(keccak256(0x00, 0x40))), 0xffffffff), slot) { break }
                        delivered := 0
                    }
                    default {
                        at := sub(and(shr(32, be), 0xffffffffffffff), and(shr(144, be), 0xffffffffffffff))
                        if lt(at, delivered) { delivered := at }
                    }
                    // What the reservation pays for at today's fee.
                    at := mload(add(t, 0x40))
                    if gt(add(div(mul(delivered, price), 1000), div(mul(delivered, at), 1000)), mload(add(p, 0xc0))) {
                        delivered := div(mul(mload(add(p, 0xc0)), 1000), add(price, at))
                    }
                }
                // Event data: FillSettled's (0, 0, delivered, price, cost, fee) at 0xe0.
                mstore(add(p, 0xe0), 0)
                mstore(add(p, 0x100), 0)
                mstore(add(p, 0x120), delivered)
                mstore(add(p, 0x140), price)
                mstore(add(p, 0x160), div(mul(delivered, price), 1000))
                mstore(add(p, 0x180), div(mul(delivered, mload(add(t, 0x40))), 1000))
                // The refund: the reservation less the delivery's cost and fee.
                mstore(add(p, 0x1a0), sub(mload(add(p, 0xc0)), add(mload(add(p, 0x160)), mload(add(p, 0x180)))))
                // Every check passed: write. Sums stay within their fields (delivered fits
                // both parties' energy; balances are bounded by the supply cap).
                // Settled: its digest goes (the word, with its other half zero too).
                at := mload(add(p, 0x220))
                sstore(at, and(sload(at), not(shl(shl(7, and(mload(p), 1)), 0xffffffffffffffffffffffffffffffff))))
                if delivered {
                    sstore(mload(add(p, 0x280)), add(se, shl(200, delivered)))
                    sstore(mload(add(p, 0x2a0)), add(be, shl(144, delivered)))
                    sstore(mload(add(p, 0x240)), add(sellerWord, shl(176, mload(add(p, 0x160)))))
                }
                sstore(mload(add(p, 0x260)), add(buyerWord, shl(176, mload(add(p, 0x1a0)))))
                escrow := add(escrow, mload(add(p, 0xc0)))
                fees := add(fees, mload(add(p, 0x180)))
                // Transfer(escrow, buyer, reserved); FillSettled(slot, seller, buyer; 0, 0,
                // delivered, price, cost, fee) if anything was delivered; ForwardSettled(id,
                // slot, seller; buyer, delivered, shortfall, cost, fee, refund).
                at := and(buyerWord, sub(shl(160, 1), 1))
                log3(add(p, 0xc0), 0x20, mload(add(p, 0x1c0)), address(), at)
                if delivered {
                    log4(add(p, 0xe0), 0xc0, mload(add(p, 0x1e0)), slot, mload(add(p, 0x40)), mload(add(p, 0x60)))
                }
                mstore(add(p, 0x100), mload(add(p, 0x60)))
                mstore(add(p, 0x140), sub(mload(add(p, 0x80)), delivered))
                log4(add(p, 0x100), 0xc0, mload(add(p, 0x200)), mload(p), slot, mload(add(p, 0x40)))
            }
            next := div(sub(f, positions.offset), 0xc0)
        }
    }

    /// @dev Reverts with the error that refuses settling `p`, in the order _settleForwards
    ///      checks: settled already, unknown (not cleared with these fields), not due.
    function _refuseSettlement(uint32 slot, ForwardPosition calldata p) private view {
        uint32 id = p.forwardId;
        uint256 held = (_forwards[id >> 1] >> ((id & 1) << 7)) & type(uint128).max;
        if (held == 0 && id != 0 && id <= forwardCount) revert ForwardAlreadySettled(id);
        if (
            held
                != _forwardDigest(
                    id, slot, p.seller, p.buyer, p.energyWh, p.priceUeurPerKWh, p.reservedUeur
                )
        ) revert UnknownForward(id);
        _requireMetered(id, p.seller, _households[p.seller].meter, slot);
        _requireMetered(id, p.buyer, _households[p.buyer].meter, slot);
        // _settleForwards refuses a position for no other reason; were one ever left
        // unnamed, the batch must still not settle in part.
        revert UnknownForward(id);
    }

    /// @dev The top 128 bits of the hash of a position's fields, with the lowest bit set so
    ///      that an open position's digest is never zero. A settler who would settle with other
    ///      fields needs a second preimage of 127 bits.
    function _forwardDigest(
        uint32 id,
        uint32 slot,
        uint32 seller,
        uint32 buyer,
        uint64 energyWh,
        uint64 price,
        uint256 reserved
    ) private pure returns (uint256) {
        return uint256(keccak256(abi.encode(id, slot, seller, buyer, energyWh, price, reserved)))
            >> 128 | 1;
    }

    /// @dev A forward for `slot` is refused once the household's meter has read that slot.
    function _requireUnmetered(uint32 index, uint32 household, address meter, uint32 slot)
        private
        view
    {
        uint32 last = _meters[meter].lastSlot;
        if (last != 0 && last >= slot) revert ForwardTooLate(index, household, slot, last);
    }

    /// @dev A forward for `slot` settles only once the household's meter has read that slot.
    function _requireMetered(uint32 id, uint32 household, address meter, uint32 slot)
        private
        view
    {
        uint32 last = _meters[meter].lastSlot;
        if (last < slot) revert ForwardNotDue(id, household, slot, last);
    }

    function _checkPrice(uint32 index, uint64 price, Tariffs memory t) private pure {
        if (
            price < t.feedInUeurPerKWh
                || uint256(price) + t.gridFeeUeurPerKWh > t.retailUeurPerKWh
        ) {
            revert PriceOutsideTariffs(
                index, price, t.feedInUeurPerKWh, t.retailUeurPerKWh, t.gridFeeUeurPerKWh
            );
        }
    }

    /// @dev Checks a batch fill against its offer and bid (state, slots, limits, caps), then settles it.
    function _settleBatchFill(
        uint32 index,
        uint32 slot,
        Fill calldata f,
        Tariffs memory t
    ) private returns (uint256 fee) {
        Order memory o = _offers[f.offerId];
        if (o.household == 0) revert UnknownOffer(f.offerId);
        Order memory b = _bids[f.bidId];
        if (b.household == 0) revert UnknownBid(f.bidId);
        _checkOrder(index, f.offerId, o, slot);
        _checkOrder(index, f.bidId, b, slot);
        uint64 price = f.priceUeurPerKWh;
        if (price < o.priceLimitUeurPerKWh) {
            revert PriceBelowOffer(index, price, o.priceLimitUeurPerKWh);
        }
        if (price > b.priceLimitUeurPerKWh) {
            revert PriceAboveBid(index, price, b.priceLimitUeurPerKWh);
        }
        if (o.maxWhPerSlot != 0) {
            _useCap(_offerUsedWh, index, f.offerId, o.maxWhPerSlot, slot, f.energyWh);
        }
        if (b.maxWhPerSlot != 0) {
            _useCap(_bidUsedWh, index, f.bidId, b.maxWhPerSlot, slot, f.energyWh);
        }
        fee = _settleFill(
            index, slot, f.offerId, f.bidId, o.household, b.household, f.energyWh, price, t
        );
    }

    /// @dev Re-checks one fill against credits, deficit, tariffs and funds, then moves energy
    ///      bookkeeping and money; returns the grid fee taken from the buyer, which the caller
    ///      credits to the fee recipient. Order limits and caps are checked by the caller.
    function _settleFill(
        uint32 index,
        uint32 slot,
        uint32 offerId,
        uint32 bidId,
        uint32 seller,
        uint32 buyer,
        uint64 energyWh,
        uint64 price,
        Tariffs memory t
    ) private returns (uint256 fee) {
        if (energyWh == 0) revert ZeroEnergy(index);
        if (seller == buyer) revert SelfTrade(index, seller);
        if (
            price < t.feedInUeurPerKWh
                || uint256(price) + t.gridFeeUeurPerKWh > t.retailUeurPerKWh
        ) {
            revert PriceOutsideTariffs(
                index, price, t.feedInUeurPerKWh, t.retailUeurPerKWh, t.gridFeeUeurPerKWh
            );
        }
        // Storage pointers, and only word 1 is read: account, active and balance share it.
        Household storage s = _households[seller];
        if (!s.active) revert HouseholdInactive(seller);
        Household storage b = _households[buyer];
        if (!b.active) revert HouseholdInactive(buyer);

        _consumeEnergy(index, seller, buyer, slot, energyWh);

        uint256 cost = uint256(energyWh) * price / 1000;
        fee = uint256(energyWh) * t.gridFeeUeurPerKWh / 1000;
        address buyerAccount = b.account;
        uint256 funds = b.balanceUeur;
        if (funds < cost + fee) revert InsufficientFunds(index, buyerAccount, funds, cost + fee);
        // The fee is debited now and credited to the fee recipient by the caller, once per batch.
        _debit(buyer, buyerAccount, cost + fee);
        _credit(seller, s.account, cost);
        emit FillSettled(slot, seller, buyer, offerId, bidId, energyWh, price, cost, fee);
    }

    /// @dev Sells `energyWh` of the seller's credits and the buyer's metered import for `slot`.
    ///      Each KeptSlot word is read once and written once, in assembly, because this runs
    ///      for every fill. Layout (KeptSlot, low to high bits): slot 0-31, importWh 32-87,
    ///      exportWh 88-143, boughtWh 144-199, soldWh 200-255. A word that holds another slot
    ///      has nothing left of `slot`.
    function _consumeEnergy(uint32 index, uint32 seller, uint32 buyer, uint32 slot, uint64 energyWh)
        private
    {
        KeptSlot storage se = _energy[_keptKey(seller, slot)];
        KeptSlot storage be = _energy[_keptKey(buyer, slot)];
        uint256 sw;
        uint256 bw;
        assembly ("memory-safe") {
            sw := sload(se.slot)
            bw := sload(be.slot)
        }
        // sold <= export and bought <= import always hold, so these never underflow.
        uint64 credits;
        if (uint32(sw) == slot) credits = uint64(uint56(sw >> 88)) - uint64(sw >> 200);
        if (credits < energyWh) revert InsufficientCredits(index, seller, slot, credits, energyWh);
        uint64 deficit;
        if (uint32(bw) == slot) deficit = uint64(uint56(bw >> 32)) - uint64(uint56(bw >> 144));
        if (deficit < energyWh) revert InsufficientDeficit(index, buyer, slot, deficit, energyWh);
        // Safe: after the checks sold + energy <= export < 2^56 and bought + energy <= import
        // < 2^56, so adding into their fields carries into nothing. The two words differ: the
        // caller refused a self-trade.
        assembly ("memory-safe") {
            sstore(se.slot, add(sw, shl(200, energyWh)))
            sstore(be.slot, add(bw, shl(144, energyWh)))
        }
    }

    /// @dev A household's energy for `slot` if its ring still holds that slot, else zeros.
    function _slotEnergy(uint32 household, uint32 slot) private view returns (SlotEnergy memory) {
        KeptSlot memory k = _energy[_keptKey(household, slot)];
        if (k.slot != slot) return SlotEnergy(0, 0, 0, 0);
        return SlotEnergy(k.importWh, k.exportWh, k.boughtWh, k.soldWh);
    }

    function _checkOrder(uint32 index, uint32 orderId, Order memory o, uint32 slot) private pure {
        if (!o.open) revert OrderClosed(index, orderId);
        if (slot < o.firstSlot || slot > o.lastSlot) revert SlotOutsideOrder(index, orderId, slot);
    }

    function _useCap(
        mapping(uint256 => uint64) storage used,
        uint32 index,
        uint32 orderId,
        uint64 cap,
        uint32 slot,
        uint64 energyWh
    ) private {
        uint256 k = _key(orderId, slot);
        uint64 u = used[k];
        uint64 left = cap > u ? cap - u : 0;
        if (energyWh > left) revert OrderCapExceeded(index, orderId, slot, left, energyWh);
        // unchecked: u + energyWh <= cap.
        unchecked {
            used[k] = u + energyWh;
        }
    }

    function _cancel(Order storage o, uint32 orderId) private {
        if (!o.open) revert OrderAlreadyClosed(orderId);
        if (_households[o.household].account != msg.sender && !hasRole(OPERATOR_ROLE, msg.sender)) {
            revert NotOrderOwner(orderId, msg.sender);
        }
        o.open = false;
    }

    function _verifyReading(uint256 index, bytes32 domain, Reading calldata r) private pure {
        if (uint256(r.s) > _HALF_N || (r.v != 27 && r.v != 28)) {
            revert InvalidSignature(index, r.meter, r.slot);
        }
        bytes32 digest = _digest(domain, r.meter, r.slot, r.importWh, r.exportWh);
        // ecrecover returns 0 on failure, and a registered meter is never the zero address.
        if (ecrecover(digest, r.v, r.r, r.s) != r.meter) {
            revert InvalidSignature(index, r.meter, r.slot);
        }
    }

    function _digest(bytes32 domain, address meter, uint32 slot, uint64 importWh, uint64 exportWh)
        private
        pure
        returns (bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(READING_TYPEHASH, meter, slot, importWh, exportWh));
        return keccak256(abi.encodePacked("\x19\x01", domain, structHash));
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(
            abi.encode(_DOMAIN_TYPEHASH, _NAME_HASH, _VERSION_HASH, block.chainid, address(this))
        );
    }

    function _setTariffs(uint64 feedIn, uint64 retail, uint64 gridFee) private {
        if (retail == 0 || uint256(feedIn) + gridFee > retail) {
            revert InvalidTariffs(feedIn, retail, gridFee);
        }
        _tariffs = Tariffs(feedIn, retail, gridFee);
        emit TariffsSet(feedIn, retail, gridFee);
    }

    /// @dev block.timestamp / 900 + MAX_SLOTS_AHEAD, capped at the largest uint32 (which only a
    ///      clock past the year 124,000 would reach), so the cast never truncates.
    function _maxSlot() private view returns (uint32) {
        uint256 m = block.timestamp / SLOT_SECONDS + MAX_SLOTS_AHEAD;
        return m > type(uint32).max ? type(uint32).max : uint32(m);
    }

    function _requireNewMeter(address meter) private view {
        MeterState memory m = _meters[meter];
        if (m.household != 0 || m.retired) revert MeterAlreadyRegistered(meter);
    }

    function _existingHousehold(uint32 id) private view returns (Household storage h) {
        h = _households[id];
        if (h.account == address(0)) revert UnknownHousehold(id);
    }

    function _activeHouseholdOf(address account) private view returns (uint32 id) {
        id = householdOf[account];
        if (id == 0 || !_households[id].active) revert NotHousehold(account);
    }

    function _key(uint32 a, uint32 b) private pure returns (uint256) {
        return (uint256(a) << 32) | b;
    }

    function _keptKey(uint32 household, uint32 slot) private pure returns (uint256) {
        return (uint256(household) << 32) | (slot % KEPT_SLOTS);
    }

    function _min(uint64 a, uint64 b) private pure returns (uint64) {
        return a < b ? a : b;
    }
}
