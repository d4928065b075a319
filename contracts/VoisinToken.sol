// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.24;

import {VoisinAccess} from "./VoisinAccess.sol";

/// @title The payment token: an ERC-20 in micro-euro (6 decimals)
/// @notice The operator mints it when a household tops up; holders may transfer it. Settlement
///         moves it between households inside the same contract, so a fill costs no external call.
abstract contract VoisinToken is VoisinAccess {
    /// @notice ERC-20 transfer, also emitted for top-ups (from the zero address) and settlement.
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// @notice ERC-20 approval.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    string public constant name = "Voisin Euro";
    string public constant symbol = "vEUR";
    uint8 public constant decimals = 6;

    uint256 public totalSupply;
    mapping(address account => uint256) public balanceOf;
    mapping(address owner => mapping(address spender => uint256)) public allowance;

    // ───────────────────────────── ERC-20 ─────────────────────────────

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
    function topUp(address account, uint256 amountUeur) external onlyRole(OPERATOR_ROLE) whenNotPaused {
        if (amountUeur == 0) revert ZeroAmount();
        _update(address(0), account, amountUeur);
        emit ToppedUp(account, amountUeur);
    }

    // ───────────────────────────── Internal ─────────────────────────────

    /// @dev The only function that changes balances. `from == 0` mints. Burning is not offered:
    ///      money leaves Voisin off chain, through the operator, and is out of scope here.
    function _update(address from, address to, uint256 value) internal {
        if (to == address(0)) revert ZeroAddress();
        if (from == address(0)) {
            totalSupply += value;
        } else {
            uint256 balance = balanceOf[from];
            if (balance < value) revert InsufficientBalance(from, balance, value);
            // unchecked: balance >= value was just checked.
            unchecked {
                balanceOf[from] = balance - value;
            }
        }
        // unchecked: the sum of all balances is totalSupply, which the checked add above bounds.
        unchecked {
            balanceOf[to] += value;
        }
        emit Transfer(from, to, value);
    }
}
