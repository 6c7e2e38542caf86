// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Kizuna proxy-node registry
/// @notice Registrars (holders of `REGISTRAR_ROLE`) list the proxy nodes that may hold a patient's key
///         fragments: an entry binds a node's Ethereum address to the endpoint its read route is served
///         at and to its verifying key (33 bytes, compressed secp256k1: the key the node signs with).
///         A registrar may suspend and reinstate a node; a node may move its own endpoint.
/// @dev Threshold reads (docs/proxies.md): a patient's client picks its proxy set among the active
///      nodes; a provider asks the nodes of that set at their listed endpoints. The consent ledger is
///      unchanged and does not read this registry.
interface IProxyRegistry {
    /// @notice `node` is already registered.
    error ProxyRegistryAlreadyRegistered(address node);

    /// @notice `node` is not registered.
    error ProxyRegistryUnknownNode(address node);

    /// @notice The zero address cannot be a node.
    error ProxyRegistryInvalidNode(address node);

    /// @notice A verifying key must be 33 bytes starting with 0x02 or 0x03 (compressed point).
    error ProxyRegistryInvalidVerifyingKey(uint256 length, bytes1 prefix);

    /// @notice An endpoint must be 1 to 256 bytes long.
    error ProxyRegistryInvalidEndpoint(uint256 length);

    /// @notice `node` is already in the requested state (`active`).
    error ProxyRegistryStatusUnchanged(address node, bool active);

    /// @notice A registrar listed `node`.
    event ProxyNodeAdded(address indexed node, address indexed registrar, string endpoint, bytes verifyingKey);

    /// @notice A registrar suspended `node` (clients no longer pick it for new grants).
    event ProxyNodeSuspended(address indexed node, address indexed registrar);

    /// @notice A registrar reinstated a suspended `node`.
    event ProxyNodeReinstated(address indexed node, address indexed registrar);

    /// @notice `node` moved its read route to `endpoint`.
    event ProxyNodeEndpointChanged(address indexed node, string endpoint);

    /// @notice Lists a node, active from now on. Registrars only.
    function addNode(address node, string calldata endpoint, bytes calldata verifyingKey) external;

    /// @notice Suspends an active node. Registrars only.
    function suspendNode(address node) external;

    /// @notice Reinstates a suspended node. Registrars only.
    function reinstateNode(address node) external;

    /// @notice The calling node moves its endpoint (also while suspended).
    function setEndpoint(string calldata endpoint) external;

    /// @notice The role allowed to add, suspend and reinstate nodes.
    function REGISTRAR_ROLE() external view returns (bytes32);

    /// @notice True when `node` is listed and not suspended.
    function isActiveNode(address node) external view returns (bool);

    /// @notice The entry of `node`; reverts `ProxyRegistryUnknownNode` if none.
    function nodeOf(address node)
        external
        view
        returns (string memory endpoint, bytes memory verifyingKey, bool active, uint64 registeredAt);

    /// @notice Every node ever listed (active or suspended), in the order they were added.
    function nodes() external view returns (address[] memory);
}
