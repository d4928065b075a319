// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.24;

import {VoisinAccess} from "./VoisinAccess.sol";

/// @title The payment token: an ERC-20 in micro-euro (6 decimals), and the household accounts
/// @notice The operator mints it when a household tops up; holders may transfer it. A
///         household's balance lives in its registry word (see IVoisin.Household), so settling
///         a fill reads and writes one storage word per party for identity, state and money.
///         Accounts that are not households (the fee recipient, anyone else) hold theirs in an
///         ordinary mapping.
/// @dev Settlement moves money with `_debit`/`_credit` and records it in FillSettled (cost and
///      fee), not
///      in Transfer events: three logs per fill would cost more than the rest of the fill's
///      accounting. Transfers, approvals and top-ups emit the standard ERC-20 events.
abstract contract VoisinToken is VoisinAccess {
    /// @notice ERC-20 transfer, also emitted for top-ups (from the zero address).
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// @notice ERC-20 approval.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    string public constant name = "Voisin Euro";
    string public constant symbol = "vEUR";
    uint8 public constant decimals = 6;
    /// @notice The supply cap: 2^80 - 1 micro-euro (about 1.2e18 euro), so balances fit in 80 bits.
    uint256 public constant MAX_SUPPLY = type(uint80).max;

    uint256 public totalSupply;
    mapping(address owner => mapping(address spender => uint256)) public allowance;

    mapping(uint32 household => Household) internal _households;
    /// @notice The household id of an account (0 for none).
    mapping(address account => uint32) public householdOf;
    mapping(address account => uint256) private _otherBalances;

    // ───────────────────────────── ERC-20 ─────────────────────────────

    /// @notice The micro-euro balance of `account`.
    function balanceOf(address account) public view returns (uint256) {
        uint32 id = householdOf[account];
        return id == 0 ? _otherBalances[account] : _households[id].balanceUeur;
    }

    /// @notice Transfer `value` micro-euro to `to`.
    function transfer(address to, uint256 value) external whenNotPaused returns (bool) {
        _update(msg.sender, to, value);
        return true;
    }

    /// @notice Allow `spender` to transfer up to `value` micro-euro of the caller's.
    function approve(address spender, uint256 value) external returns (bool) {
        if (spender == address(0)) revert ZeroAddress();
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    /// @notice Transfer `value` micro-euro from `from` to `to` within the caller's allowance.
    function transferFrom(address from, address to, uint256 value)
        external
        whenNotPaused
        returns (bool)
    {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < value) revert InsufficientAllowance(msg.sender, allowed, value);
            // unchecked: allowed >= value was just checked.
            unchecked {
                allowance[from][msg.sender] = allowed - value;
            }
        }
        _update(from, to, value);
        return true;
    }

    // ───────────────────────────── Top-up ─────────────────────────────

    /// @notice Mint `amountUeur` to `account` for a top-up paid to the operator (operator only).
    function topUp(address account, uint256 amountUeur) external onlyRole(OPERATOR_ROLE) {
        _topUp(account, amountUeur);
    }

    // ───────────────────────────── Internal ─────────────────────────────

    /// @dev A top-up: mints `amountUeur` to `account` within the supply cap, unless paused.
    function _topUp(address account, uint256 amountUeur) internal whenNotPaused {
        if (amountUeur == 0) revert ZeroAmount();
        if (amountUeur > MAX_SUPPLY - totalSupply) {
            revert SupplyCapExceeded(amountUeur, MAX_SUPPLY);
        }
        _update(address(0), account, amountUeur);
        emit ToppedUp(account, amountUeur);
    }

    /// @dev Moves `value` from `from` to `to` (minting when `from` is zero); emits Transfer.
    function _update(address from, address to, uint256 value) internal {
        if (to == address(0)) revert ZeroAddress();
        if (from == address(0)) totalSupply += value;
        else _debit(householdOf[from], from, value);
        _credit(householdOf[to], to, value);
        emit Transfer(from, to, value);
    }

    // Balances change only in _debit and _credit. `id` is the account's household id, 0 for an
    // account that is not a household.

    /// @dev Takes `value` from `account`; reverts if its balance is short.
    function _debit(uint32 id, address account, uint256 value) internal {
        uint256 balance = id == 0 ? _otherBalances[account] : _households[id].balanceUeur;
        if (balance < value) revert InsufficientBalance(account, balance, value);
        // unchecked: balance >= value was just checked; the result fits 80 bits as it is
        // below a balance that did.
        unchecked {
            if (id == 0) _otherBalances[account] = balance - value;
            else _households[id].balanceUeur = uint80(balance - value);
        }
    }

    /// @dev Gives `value` to `account`: money taken by _debit or minted within the supply cap.
    function _credit(uint32 id, address account, uint256 value) internal {
        // unchecked: every balance is at most totalSupply <= MAX_SUPPLY = 2^80 - 1, and `value`
        // comes out of that supply, so neither the sum nor the narrowing to uint80 overflows.
        unchecked {
            if (id == 0) _otherBalances[account] += value;
            else _households[id].balanceUeur = uint80(_households[id].balanceUeur + value);
        }
    }

    /// @dev Moves money an account held before it became a household's into the household word
    ///      (added to what the household holds: a rotated-in account joins a funded household).
    function _adoptBalance(uint32 id, address account) internal {
        uint256 held = _otherBalances[account];
        if (held != 0) {
            _otherBalances[account] = 0;
            _credit(id, account, held);
        }
    }
}
