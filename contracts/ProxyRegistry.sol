// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

import {IProxyRegistry} from "./interfaces/IProxyRegistry.sol";

/// @title Kizuna proxy-node registry
/// @notice See {IProxyRegistry}.
/// @dev Managed like the provider registry (a registrar role under an admin). Nodes are few (a
///      handful per deployment), so `nodes()` returns the whole list.
contract ProxyRegistry is AccessControl, IProxyRegistry {
    /// @inheritdoc IProxyRegistry
    bytes32 public constant REGISTRAR_ROLE = keccak256("KIZUNA_REGISTRAR_ROLE");

    uint256 private constant MAX_ENDPOINT_BYTES = 256;

    struct Entry {
        bytes1 keyPrefix; // 0x02 or 0x03 once registered, 0 when unknown
        bool active;
        uint64 registeredAt;
        bytes32 keyX;
        string endpoint;
    }

    mapping(address node => Entry) private _entries;
    address[] private _nodes;

    /// @param admin receives DEFAULT_ADMIN_ROLE (grants and revokes registrars)
    /// @param registrar receives REGISTRAR_ROLE (may be the zero address: none yet)
    constructor(address admin, address registrar) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        if (registrar != address(0)) _grantRole(REGISTRAR_ROLE, registrar);
    }

    /// @inheritdoc IProxyRegistry
    function addNode(address node, string calldata endpoint, bytes calldata verifyingKey)
        external
        onlyRole(REGISTRAR_ROLE)
    {
        if (node == address(0)) revert ProxyRegistryInvalidNode(node);
        Entry storage entry = _entries[node];
        if (entry.keyPrefix != 0) revert ProxyRegistryAlreadyRegistered(node);
        (bytes1 prefix, bytes32 x) = _parseKey(verifyingKey);
        _checkEndpoint(endpoint);
        entry.keyPrefix = prefix;
        entry.active = true;
        entry.registeredAt = uint64(block.timestamp);
        entry.keyX = x;
        entry.endpoint = endpoint;
        _nodes.push(node);
        emit ProxyNodeAdded(node, msg.sender, endpoint, verifyingKey);
    }

    /// @inheritdoc IProxyRegistry
    function suspendNode(address node) external onlyRole(REGISTRAR_ROLE) {
        _setActive(node, false);
        emit ProxyNodeSuspended(node, msg.sender);
    }

    /// @inheritdoc IProxyRegistry
    function reinstateNode(address node) external onlyRole(REGISTRAR_ROLE) {
        _setActive(node, true);
        emit ProxyNodeReinstated(node, msg.sender);
    }

    /// @inheritdoc IProxyRegistry
    function setEndpoint(string calldata endpoint) external {
        Entry storage entry = _entries[msg.sender];
        if (entry.keyPrefix == 0) revert ProxyRegistryUnknownNode(msg.sender);
        _checkEndpoint(endpoint);
        entry.endpoint = endpoint;
        emit ProxyNodeEndpointChanged(msg.sender, endpoint);
    }

    /// @inheritdoc IProxyRegistry
    function isActiveNode(address node) external view returns (bool) {
        return _entries[node].active;
    }

    /// @inheritdoc IProxyRegistry
    function nodeOf(address node)
        external
        view
        returns (string memory endpoint, bytes memory verifyingKey, bool active, uint64 registeredAt)
    {
        Entry storage entry = _entries[node];
        if (entry.keyPrefix == 0) revert ProxyRegistryUnknownNode(node);
        return (entry.endpoint, abi.encodePacked(entry.keyPrefix, entry.keyX), entry.active, entry.registeredAt);
    }

    /// @inheritdoc IProxyRegistry
    function nodes() external view returns (address[] memory) {
        return _nodes;
    }

    function _setActive(address node, bool active) private {
        Entry storage entry = _entries[node];
        if (entry.keyPrefix == 0) revert ProxyRegistryUnknownNode(node);
        if (entry.active == active) revert ProxyRegistryStatusUnchanged(node, active);
        entry.active = active;
    }

    function _checkEndpoint(string calldata endpoint) private pure {
        uint256 length = bytes(endpoint).length;
        if (length == 0 || length > MAX_ENDPOINT_BYTES) revert ProxyRegistryInvalidEndpoint(length);
    }

    /// @dev A compressed secp256k1 point: 0x02 or 0x03, then the 32-byte x coordinate.
    function _parseKey(bytes calldata key) private pure returns (bytes1 prefix, bytes32 x) {
        prefix = key.length > 0 ? key[0] : bytes1(0);
        if (key.length != 33 || (prefix != 0x02 && prefix != 0x03)) {
            revert ProxyRegistryInvalidVerifyingKey(key.length, prefix);
        }
        x = bytes32(key[1:33]);
    }
}
