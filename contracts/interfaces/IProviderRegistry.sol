// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Kizuna provider registry
/// @notice Registrars (holders of `REGISTRAR_ROLE`) verify care providers: an entry binds a provider's
///         address to its Umbral public key (33 bytes, compressed secp256k1 point) and to a commitment
///         to its credentials (e.g. a hash of a licence document kept off-chain). A registrar may
///         suspend and reinstate a provider; a provider may rotate its own Umbral key.
/// @dev Patients may grant access to any address; only *emergency* access and access *requests*
///      need a verified, active provider (see IConsentLedger).
interface IProviderRegistry {
    // ----------------------------------------------------------------------------------------
    // Errors
    // ----------------------------------------------------------------------------------------

    /// @notice `provider` is already registered.
    error ProviderRegistryAlreadyRegistered(address provider);

    /// @notice `provider` is not registered.
    error ProviderRegistryUnknownProvider(address provider);

    /// @notice The zero address cannot be a provider.
    error ProviderRegistryInvalidProvider(address provider);

    /// @notice An Umbral public key must be 33 bytes starting with 0x02 or 0x03 (compressed point).
    /// @param length the length of the key given
    /// @param prefix its first byte (0 when empty)
    error ProviderRegistryInvalidUmbralKey(uint256 length, bytes1 prefix);

    /// @notice `provider` is already in the requested state (`active`).
    error ProviderRegistryStatusUnchanged(address provider, bool active);

    // ----------------------------------------------------------------------------------------
    // Events
    // ----------------------------------------------------------------------------------------

    /// @notice A registrar verified `provider`.
    event ProviderAdded(
        address indexed provider, address indexed registrar, bytes umbralPublicKey, bytes32 credentialCommitment
    );

    /// @notice A registrar suspended `provider` (it can no longer open emergency access or requests).
    event ProviderSuspended(address indexed provider, address indexed registrar);

    /// @notice A registrar reinstated a suspended `provider`.
    event ProviderReinstated(address indexed provider, address indexed registrar);

    /// @notice `provider` replaced its Umbral public key.
    event UmbralKeyRotated(address indexed provider, bytes umbralPublicKey);

    // ----------------------------------------------------------------------------------------
    // Transactions
    // ----------------------------------------------------------------------------------------

    /// @notice Registers a verified provider, active from now on. Registrars only.
    /// @param provider the provider's address
    /// @param umbralPublicKey its Umbral public key, 33 bytes compressed
    /// @param credentialCommitment a hash committing to its credentials (kept off-chain)
    function addProvider(address provider, bytes calldata umbralPublicKey, bytes32 credentialCommitment) external;

    /// @notice Suspends an active provider. Registrars only.
    function suspendProvider(address provider) external;

    /// @notice Reinstates a suspended provider. Registrars only.
    function reinstateProvider(address provider) external;

    /// @notice The calling provider replaces its Umbral public key (also while suspended).
    function rotateUmbralKey(bytes calldata umbralPublicKey) external;

    // ----------------------------------------------------------------------------------------
    // Calls
    // ----------------------------------------------------------------------------------------

    /// @notice The role allowed to add, suspend and reinstate providers.
    function REGISTRAR_ROLE() external view returns (bytes32);

    /// @notice True when `provider` is registered and not suspended.
    function isActiveProvider(address provider) external view returns (bool);

    /// @notice True when `provider` has ever been registered (active or suspended).
    function isRegistered(address provider) external view returns (bool);

    /// @notice The registry entry of `provider`; reverts `ProviderRegistryUnknownProvider` if none.
    /// @return umbralPublicKey 33 bytes, compressed
    /// @return credentialCommitment the commitment given at registration
    /// @return active false while suspended
    /// @return registeredAt block timestamp of the registration
    function providerOf(address provider)
        external
        view
        returns (bytes memory umbralPublicKey, bytes32 credentialCommitment, bool active, uint64 registeredAt);
}
