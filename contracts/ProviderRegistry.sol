// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";

/// @title Kizuna provider registry
/// @notice See {IProviderRegistry}.
/// @dev An entry is three slots: (key prefix, active, registered-at) packed, the Umbral key's 32-byte
///      x coordinate, and the credential commitment. Registrations are rare; the hot read
///      (`isActiveProvider`, used by the consent ledger) touches only the packed first slot.
contract ProviderRegistry is AccessControl, IProviderRegistry {
    /// @inheritdoc IProviderRegistry
    bytes32 public constant REGISTRAR_ROLE = keccak256("KIZUNA_REGISTRAR_ROLE");

    /// @dev `prefix` is 0x02 or 0x03 for a registered provider, 0 when unknown.
    struct Entry {
        bytes1 keyPrefix;
        bool active;
        uint64 registeredAt;
        bytes32 keyX;
        bytes32 credentialCommitment;
    }

    mapping(address provider => Entry) private _entries;

    /// @param admin receives DEFAULT_ADMIN_ROLE (grants and revokes registrars)
    /// @param registrar receives REGISTRAR_ROLE (may be the zero address: none yet)
    constructor(address admin, address registrar) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        if (registrar != address(0)) _grantRole(REGISTRAR_ROLE, registrar);
    }

    /// @inheritdoc IProviderRegistry
    function addProvider(address provider, bytes calldata umbralPublicKey, bytes32 credentialCommitment)
        external
        onlyRole(REGISTRAR_ROLE)
    {
        if (provider == address(0)) revert ProviderRegistryInvalidProvider(provider);
        Entry storage entry = _entries[provider];
        if (entry.keyPrefix != 0) revert ProviderRegistryAlreadyRegistered(provider);
        (bytes1 prefix, bytes32 x) = _parseKey(umbralPublicKey);
        entry.keyPrefix = prefix;
        entry.active = true;
        entry.registeredAt = uint64(block.timestamp);
        entry.keyX = x;
        entry.credentialCommitment = credentialCommitment;
        emit ProviderAdded(provider, msg.sender, umbralPublicKey, credentialCommitment);
    }

    /// @inheritdoc IProviderRegistry
    function suspendProvider(address provider) external onlyRole(REGISTRAR_ROLE) {
        _setActive(provider, false);
        emit ProviderSuspended(provider, msg.sender);
    }

    /// @inheritdoc IProviderRegistry
    function reinstateProvider(address provider) external onlyRole(REGISTRAR_ROLE) {
        _setActive(provider, true);
        emit ProviderReinstated(provider, msg.sender);
    }

    /// @inheritdoc IProviderRegistry
    function rotateUmbralKey(bytes calldata umbralPublicKey) external {
        Entry storage entry = _entries[msg.sender];
        if (entry.keyPrefix == 0) revert ProviderRegistryUnknownProvider(msg.sender);
        (bytes1 prefix, bytes32 x) = _parseKey(umbralPublicKey);
        entry.keyPrefix = prefix;
        entry.keyX = x;
        emit UmbralKeyRotated(msg.sender, umbralPublicKey);
    }

    /// @inheritdoc IProviderRegistry
    function isActiveProvider(address provider) external view returns (bool) {
        return _entries[provider].active;
    }

    /// @inheritdoc IProviderRegistry
    function isRegistered(address provider) external view returns (bool) {
        return _entries[provider].keyPrefix != 0;
    }

    /// @inheritdoc IProviderRegistry
    function providerOf(address provider)
        external
        view
        returns (bytes memory umbralPublicKey, bytes32 credentialCommitment, bool active, uint64 registeredAt)
    {
        Entry storage entry = _entries[provider];
        if (entry.keyPrefix == 0) revert ProviderRegistryUnknownProvider(provider);
        return
            (
                abi.encodePacked(entry.keyPrefix, entry.keyX),
                entry.credentialCommitment,
                entry.active,
                entry.registeredAt
            );
    }

    function _setActive(address provider, bool active) private {
        Entry storage entry = _entries[provider];
        if (entry.keyPrefix == 0) revert ProviderRegistryUnknownProvider(provider);
        if (entry.active == active) revert ProviderRegistryStatusUnchanged(provider, active);
        entry.active = active;
    }

    /// @dev A compressed secp256k1 point: 0x02 or 0x03, then the 32-byte x coordinate. Whether x is on
    ///      the curve is checked off-chain (Umbral refuses such keys); the chain checks the shape.
    function _parseKey(bytes calldata key) private pure returns (bytes1 prefix, bytes32 x) {
        prefix = key.length > 0 ? key[0] : bytes1(0);
        if (key.length != 33 || (prefix != 0x02 && prefix != 0x03)) {
            revert ProviderRegistryInvalidUmbralKey(key.length, prefix);
        }
        x = bytes32(key[1:33]);
    }
}
