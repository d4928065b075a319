// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.24;

import {IVoisin} from "./IVoisin.sol";

/// @title Roles and the emergency pause
/// @notice Minimal role-based access control in the style of OpenZeppelin's AccessControl:
///         roles are bytes32 constants and only DEFAULT_ADMIN_ROLE grants or revokes them.
abstract contract VoisinAccess is IVoisin {
    // ───────────────────────────── Roles ─────────────────────────────

    bytes32 public constant DEFAULT_ADMIN_ROLE = 0x00;
    /// @notice Registers households and meters, sets tariffs, mints top-ups, pauses.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    /// @notice Submits settlement batches (the settlement worker of a market).
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");

    mapping(bytes32 role => mapping(address account => bool)) private _roles;
    bool private _paused;

    constructor(address admin) {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, admin);
        _grantRole(SETTLER_ROLE, admin);
    }

    modifier onlyRole(bytes32 role) {
        if (!_roles[role][msg.sender]) revert Unauthorized(msg.sender, role);
        _;
    }

    modifier whenNotPaused() {
        if (_paused) revert EnforcedPause();
        _;
    }

    // ───────────────────────────── Role admin ─────────────────────────────

    /// @notice Whether `account` holds `role`.
    function hasRole(bytes32 role, address account) public view returns (bool) {
        return _roles[role][account];
    }

    /// @notice Grant `role` to `account` (admin only).
    function grantRole(bytes32 role, address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (account == address(0)) revert ZeroAddress();
        _grantRole(role, account);
    }

    /// @notice Revoke `role` from `account` (admin only).
    function revokeRole(bytes32 role, address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (_roles[role][account]) {
            _roles[role][account] = false;
            emit RoleRevoked(role, account, msg.sender);
        }
    }

    function _grantRole(bytes32 role, address account) internal {
        if (!_roles[role][account]) {
            _roles[role][account] = true;
            emit RoleGranted(role, account, msg.sender);
        }
    }

    // ───────────────────────────── Pause ─────────────────────────────

    /// @notice Whether the ledger is paused.
    function paused() public view returns (bool) {
        return _paused;
    }

    /// @notice Stop readings, orders, settlement, takes and transfers (operator only).
    function pause() external onlyRole(OPERATOR_ROLE) {
        if (_paused) revert EnforcedPause();
        _paused = true;
        emit Paused(msg.sender);
    }

    /// @notice Lift the pause (operator only).
    function unpause() external onlyRole(OPERATOR_ROLE) {
        if (!_paused) revert ExpectedPause();
        _paused = false;
        emit Unpaused(msg.sender);
    }
}
