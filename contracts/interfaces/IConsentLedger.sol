// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {RecordId, ScopeId, CareEventKind} from "../types/Ids.sol";

/// @title Kizuna consent ledger
/// @notice The patient's consent, on-chain: which records exist (random ids and commitments to their
///         ciphertext, never content), which provider may read which scope until when, who may act
///         for the patient (guardians), when a verified provider may break the glass in an
///         emergency, and the care events between patients and providers.
/// @dev Every patient action exists in three forms:
///      - `action(...)`: the patient is `msg.sender`;
///      - `actionFor(patient, ...)`: the patient or a live guardian of the patient is `msg.sender`;
///      - `actionBySig(patient, ..., deadline, signature)` (grant, grantBatch, revoke,
///        registerRecord and registerBatch): anyone relays an EIP-712 signature of the patient (ERC20Permit style:
///        the nonce is the patient's current `nonces(patient)` and is consumed).
///      EIP-712 domain: name "Kizuna ConsentLedger", version "1", the chain id and this contract.
///      Access decisions read `hasAccess`/`accessExpiry` at the chain head: a grant is live while
///      `block.timestamp < expiresAt`, it was not revoked, and it was made in a block *after* the
///      last `revokeAll` for the same (patient, provider). Within one block, `revokeAll` wins: a
///      grant made in the same block as a revokeAll (before or after it) is not live.
interface IConsentLedger {
    // ----------------------------------------------------------------------------------------
    // Errors
    // ----------------------------------------------------------------------------------------

    /// @notice `caller` is neither `patient` nor a live guardian of `patient`.
    error ConsentLedgerUnauthorized(address patient, address caller);

    /// @notice The zero address cannot receive a grant or be named as a provider.
    error ConsentLedgerInvalidProvider(address provider);

    /// @notice An expiry must be in the future (`expiresAt > block.timestamp`).
    error ConsentLedgerInvalidExpiry(uint64 expiresAt, uint256 currentTime);

    /// @notice A batch grant needs at least one scope.
    error ConsentLedgerEmptyBatch();

    /// @notice There is no stored grant for (patient, provider, scopeId) to revoke.
    error ConsentLedgerNoGrant(address patient, address provider, ScopeId scopeId);

    /// @notice A record id must not be zero.
    error ConsentLedgerInvalidRecordId(RecordId recordId);

    /// @notice This record id is registered already (ids are never reused).
    error ConsentLedgerRecordExists(RecordId recordId);

    /// @notice This record was superseded already; supersede its newest version instead.
    error ConsentLedgerRecordSuperseded(RecordId recordId);

    /// @notice A batch needs a non-zero Merkle root and at least one record.
    error ConsentLedgerInvalidBatch(bytes32 root);

    /// @notice A batch with this root is registered already (roots are never reused).
    error ConsentLedgerBatchExists(bytes32 root);

    /// @notice The signed action's deadline has passed.
    error ConsentLedgerSignatureExpired(uint256 deadline, uint256 currentTime);

    /// @notice The signature was made by `signer`, not by `patient` (wrong key, wrong nonce, wrong
    ///         chain or contract, or altered fields all recover to another address).
    error ConsentLedgerInvalidSigner(address signer, address patient);

    /// @notice A guardian must not be the zero address or the patient.
    error ConsentLedgerInvalidGuardian(address guardian);

    /// @notice `guardian` is not (or no longer) a guardian of `patient`.
    error ConsentLedgerNotGuardian(address patient, address guardian);

    /// @notice `patient` has no emergency policy allowing break-glass access.
    error ConsentLedgerEmergencyNotAllowed(address patient);

    /// @notice An emergency duration must be positive and at most the policy's `maxDuration`
    ///         (when setting a policy that allows emergencies, `maxDuration` must be positive).
    error ConsentLedgerInvalidEmergencyDuration(uint64 duration, uint64 maxDuration);

    /// @notice `provider` is not a verified, active provider in the registry.
    error ConsentLedgerProviderNotVerified(address provider);

    /// @notice There is no open emergency access of `provider` to `patient`.
    error ConsentLedgerNoEmergencyAccess(address patient, address provider);

    /// @notice There is no open access request of `provider` to `patient`.
    error ConsentLedgerNoOpenRequest(address patient, address provider);

    /// @notice `caller` may not log a care event for `patient`: it is not the patient, a live
    ///         guardian, nor the named provider holding a live grant on the named scope, an open
    ///         request or an open emergency access.
    error ConsentLedgerCareEventNotAllowed(address patient, address caller);

    /// @notice `kind` does not go through this function: a data request's answers (kinds 9-12)
    ///         go through `answerDataRequest` only, and nothing else does.
    error ConsentLedgerWrongCareEventKind(CareEventKind kind);

    /// @notice `patient` already made a data request with this id (open or closed).
    error ConsentLedgerDataRequestExists(address patient, bytes32 requestId);

    /// @notice `patient` has no open data request `requestId` addressed to `provider` (none, another
    ///         provider's, or closed: fulfilled or declined).
    error ConsentLedgerDataRequestNotOpen(address patient, bytes32 requestId, address provider);

    // ----------------------------------------------------------------------------------------
    // Events
    // ----------------------------------------------------------------------------------------

    /// @notice `patient` registered a record: `commitment` is a hash of its ciphertext.
    event RecordRegistered(address indexed patient, RecordId indexed recordId, bytes32 commitment, ScopeId scopeId);

    /// @notice `patient` registered `count` records at once: `root` is the Merkle root of their
    ///         leaves `keccak256(bytes.concat(keccak256(abi.encode(recordId, scopeId, commitment))))`
    ///         (OpenZeppelin `MerkleProof` rules, sorted pairs); the leaves live off-chain in the
    ///         batch's manifest.
    event RecordBatchRegistered(address indexed patient, bytes32 indexed root, uint32 count);

    /// @notice `newRecordId` (registered in the same transaction) supersedes `oldRecordId`.
    event RecordSuperseded(address indexed patient, RecordId indexed oldRecordId, RecordId indexed newRecordId);

    /// @notice `patient` granted `provider` access to `scopeId` until `expiresAt` (unix seconds, exclusive).
    event AccessGranted(address indexed patient, address indexed provider, ScopeId scopeId, uint64 expiresAt);

    /// @notice `patient` granted `provider` access to every scope of `scopeIds` until `expiresAt`.
    event AccessGrantedBatch(address indexed patient, address indexed provider, ScopeId[] scopeIds, uint64 expiresAt);

    /// @notice `patient` revoked `provider`'s grant on `scopeId`.
    event AccessRevoked(address indexed patient, address indexed provider, ScopeId scopeId);

    /// @notice `patient` revoked every grant, the open request and the emergency access of `provider`.
    event AllAccessRevoked(address indexed patient, address indexed provider);

    /// @notice `guardian` performed the current transaction's action for `patient` (emitted only when
    ///         a guardian, not the patient, acts). `action` is the selector of the function called.
    event GuardianActed(address indexed patient, address indexed guardian, bytes4 action);

    /// @notice `patient` appointed `guardian` until `until` (unix seconds, exclusive).
    event GuardianAppointed(address indexed patient, address indexed guardian, uint64 until);

    /// @notice `patient` removed `guardian`.
    event GuardianRemoved(address indexed patient, address indexed guardian);

    /// @notice The emergency policy of `patient` is now (`allowed`, `maxDuration` seconds).
    event EmergencyPolicySet(address indexed patient, bool allowed, uint64 maxDuration);

    /// @notice `provider` opened break-glass access to `patient` until `until`, giving `reasonCode`.
    ///         Always flagged for review.
    event EmergencyAccessOpened(
        address indexed patient, address indexed provider, uint64 until, uint16 reasonCode, bool flaggedForReview
    );

    /// @notice `closedBy` closed `provider`'s emergency access to `patient` before it expired.
    event EmergencyAccessClosed(
        address indexed patient, address indexed provider, address closedBy, bool flaggedForReview
    );

    /// @notice Verified `provider` asked `patient` for access; the request is open until `openUntil`.
    ///         `ref` commits to an encrypted payload (what is asked, and why).
    event AccessRequested(address indexed patient, address indexed provider, uint64 openUntil, bytes32 ref);

    /// @notice `closedBy` closed `provider`'s open request to `patient` (`closeRequest`, or a grant
    ///         to `provider`, which answers it: then `closedBy` is the patient).
    event AccessRequestClosed(address indexed patient, address indexed provider, address closedBy);

    /// @notice `actor` logged a care event of `kind` between `patient` and `provider` (zero when none);
    ///         `ref` commits to an encrypted payload. `flaggedForReview` is set when the provider's only
    ///         authority was an emergency access.
    event CareEventLogged(
        address indexed patient,
        address indexed provider,
        CareEventKind indexed kind,
        address actor,
        bytes32 ref,
        bool flaggedForReview
    );

    /// @notice The provider named by `patient`'s data request `requestId` answered it; `ref` (also in
    ///         the answer's `CareEventLogged`) commits to the answer.
    event DataRequestAnswered(address indexed patient, bytes32 indexed requestId, bytes32 ref);

    // ----------------------------------------------------------------------------------------
    // Transactions: records
    // ----------------------------------------------------------------------------------------

    /// @notice Registers a record of `msg.sender`. Ids are random, never reused, never edited.
    /// @param recordId 32 random bytes (not zero)
    /// @param commitment a hash of the record's ciphertext
    /// @param scopeId the record's blinded scope
    function registerRecord(RecordId recordId, bytes32 commitment, ScopeId scopeId) external;

    /// @notice `registerRecord` for `patient`, by the patient or a live guardian.
    function registerRecordFor(address patient, RecordId recordId, bytes32 commitment, ScopeId scopeId) external;

    /// @notice Registers `newRecordId` as the new version of `oldRecordId`, a record of `msg.sender`
    ///         that was not superseded yet. The old record stays registered, marked superseded.
    ///         When `oldRecordId` is not a record `msg.sender` registered alone, it names one of
    ///         `msg.sender`'s batch records: it is marked superseded in `msg.sender`'s own
    ///         namespace (`batchRecordOf`). The chain does not check that the id is in one of the
    ///         patient's batches (the leaves are off-chain); a bogus id only retires a name of the
    ///         patient's own, never another patient's record.
    function supersedeRecord(RecordId oldRecordId, RecordId newRecordId, bytes32 commitment, ScopeId scopeId) external;

    /// @notice `supersedeRecord` for `patient`, by the patient or a live guardian.
    function supersedeRecordFor(
        address patient,
        RecordId oldRecordId,
        RecordId newRecordId,
        bytes32 commitment,
        ScopeId scopeId
    ) external;

    /// @notice `registerRecord` (when `supersedes` is zero) or `supersedeRecord(supersedes, ...)` signed
    ///         by `patient` (EIP-712 `RegisterRecord`), relayed by anyone.
    function registerRecordBySig(
        address patient,
        RecordId recordId,
        bytes32 commitment,
        ScopeId scopeId,
        RecordId supersedes,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice Registers a batch of `count` records of `msg.sender` under one Merkle root: O(1)
    ///         storage and gas whatever the batch's size. Roots are never reused.
    /// @param root the Merkle root of the batch's leaves (not zero), see `RecordBatchRegistered`
    /// @param count how many records (leaves) the batch holds (not zero)
    function registerBatch(bytes32 root, uint32 count) external;

    /// @notice `registerBatch` for `patient`, by the patient or a live guardian.
    function registerBatchFor(address patient, bytes32 root, uint32 count) external;

    /// @notice `registerBatch` signed by `patient` (EIP-712 `RegisterBatch`), relayed by anyone.
    function registerBatchBySig(address patient, bytes32 root, uint32 count, uint256 deadline, bytes calldata signature)
        external;

    // ----------------------------------------------------------------------------------------
    // Transactions: grants
    // ----------------------------------------------------------------------------------------

    /// @notice `msg.sender` grants `provider` access to `scopeId` until `expiresAt` (replacing any
    ///         earlier grant on the same scope, and re-activating it after a revokeAll). A grant
    ///         answers `provider`'s open request, if any: it is closed (`AccessRequestClosed`,
    ///         `closedBy` = the patient), so a later revoke leaves the provider no request authority.
    function grant(address provider, ScopeId scopeId, uint64 expiresAt) external;

    /// @notice `grant` for `patient`, by the patient or a live guardian.
    function grantFor(address patient, address provider, ScopeId scopeId, uint64 expiresAt) external;

    /// @notice `grant` for every scope in `scopeIds` (one event for the batch).
    function grantBatch(address provider, ScopeId[] calldata scopeIds, uint64 expiresAt) external;

    /// @notice `grantBatch` for `patient`, by the patient or a live guardian.
    function grantBatchFor(address patient, address provider, ScopeId[] calldata scopeIds, uint64 expiresAt) external;

    /// @notice `msg.sender` revokes `provider`'s grant on `scopeId` (reverts when none is stored; an
    ///         expired or revoked-by-revokeAll grant that is still stored is cleared).
    function revoke(address provider, ScopeId scopeId) external;

    /// @notice `revoke` for `patient`, by the patient or a live guardian.
    function revokeFor(address patient, address provider, ScopeId scopeId) external;

    /// @notice `msg.sender` revokes, in O(1), every grant to `provider` made in or before this
    ///         block (a grant later in the same block is dead too: revokeAll wins its block), and
    ///         closes the provider's open request and emergency access.
    function revokeAll(address provider) external;

    /// @notice `revokeAll` for `patient`, by the patient or a live guardian.
    function revokeAllFor(address patient, address provider) external;

    /// @notice `grant` signed by `patient` (EIP-712 `Grant`), relayed by anyone.
    function grantBySig(
        address patient,
        address provider,
        ScopeId scopeId,
        uint64 expiresAt,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice `grantBatch` signed by `patient` (EIP-712 `GrantBatch`), relayed by anyone.
    function grantBatchBySig(
        address patient,
        address provider,
        ScopeId[] calldata scopeIds,
        uint64 expiresAt,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice `revoke` signed by `patient` (EIP-712 `Revoke`), relayed by anyone.
    function revokeBySig(address patient, address provider, ScopeId scopeId, uint256 deadline, bytes calldata signature)
        external;

    // ----------------------------------------------------------------------------------------
    // Transactions: guardians, emergency access, requests, care events
    // ----------------------------------------------------------------------------------------

    /// @notice `msg.sender` appoints (or re-appoints) `guardian` until `until` (in the future).
    ///         Only the patient, never a guardian, appoints guardians.
    function appointGuardian(address guardian, uint64 until) external;

    /// @notice `msg.sender` removes `guardian` (reverts when not appointed; an expired one is removed too).
    function removeGuardian(address guardian) external;

    /// @notice `msg.sender` sets its emergency policy: whether verified providers may open break-glass
    ///         access, and for at most how many seconds.
    function setEmergencyPolicy(bool allowed, uint64 maxDuration) external;

    /// @notice `setEmergencyPolicy` for `patient`, by the patient or a live guardian.
    function setEmergencyPolicyFor(address patient, bool allowed, uint64 maxDuration) external;

    /// @notice A verified, active provider (`msg.sender`) opens break-glass access to every scope of
    ///         `patient` for `duration` seconds (at most the policy's maximum), giving `reasonCode`.
    ///         It expires by itself; its events are flagged for review.
    function openEmergencyAccess(address patient, uint64 duration, uint16 reasonCode) external;

    /// @notice Closes `provider`'s emergency access to `patient` early: by the patient, a live
    ///         guardian, or the provider itself.
    function closeEmergencyAccess(address patient, address provider) external;

    /// @notice A verified, active provider (`msg.sender`) asks `patient` for access; the request stays
    ///         open `REQUEST_TTL` seconds (or until answered by a grant, `closeRequest` or
    ///         `revokeAll`) and lets the provider log care events for the patient.
    function requestAccess(address patient, bytes32 ref) external;

    /// @notice Closes `provider`'s open request to `patient`: by the patient, a guardian or the provider.
    function closeRequest(address patient, address provider) external;

    /// @notice Logs a care event (events only, no storage). Allowed for the patient and live guardians
    ///         (with any `provider`, zero for none), and for `provider == msg.sender` holding a live
    ///         grant on `scopeId`, an open request or an open emergency access (then flagged).
    ///         `DataRequested` (kind 8) is the patient's or a guardian's only: it opens data request
    ///         `ref` (one slot) addressed to `provider` (not zero, not the patient; an id once per
    ///         patient). The answers (kinds 9-12) are refused here: see `answerDataRequest`.
    /// @param patient the patient concerned
    /// @param kind what happened
    /// @param ref a commitment to the encrypted payload (report, prescription, booking, ...)
    /// @param provider the provider concerned
    /// @param scopeId for a provider acting under a grant: the granted scope that authorises it
    function logCareEvent(address patient, CareEventKind kind, bytes32 ref, address provider, ScopeId scopeId) external;

    /// @notice The provider named by `patient`'s open data request `requestId` (`msg.sender`) logs an
    ///         answer: `CareEventLogged(patient, msg.sender, kind, msg.sender, ref, false)` and
    ///         `DataRequestAnswered`. The request is its authority, grant or none, and it gives no
    ///         read access. `DataRequestFulfilled` and `DataRequestDeclined` close the request: no
    ///         answer after that.
    /// @param kind one of the answers: `DataRequestAcknowledged`, `DataRequestFulfilledInPart`,
    ///        `DataRequestFulfilled`, `DataRequestDeclined`
    /// @param ref a commitment to the answer document held off-chain (it names the request)
    function answerDataRequest(address patient, bytes32 requestId, CareEventKind kind, bytes32 ref) external;

    // ----------------------------------------------------------------------------------------
    // Calls
    // ----------------------------------------------------------------------------------------

    /// @notice `patient`'s data request `requestId`: the provider it is addressed to (zero: no such
    ///         request) and whether it is closed (fulfilled or declined).
    function dataRequestOf(address patient, bytes32 requestId) external view returns (address provider, bool closed);

    /// @notice How long an access request stays open (seconds).
    function REQUEST_TTL() external view returns (uint64);

    /// @notice The provider registry used to verify providers.
    function providerRegistry() external view returns (address);

    /// @notice True when `provider` may read `scopeId` of `patient` now: a live grant, or an open
    ///         emergency access (which covers every scope).
    function hasAccess(address patient, address provider, ScopeId scopeId) external view returns (bool);

    /// @notice Until when (unix seconds, exclusive) `provider` may read `scopeId` of `patient`: the
    ///         later of a live grant's expiry and an open emergency access's end; 0 when no access.
    function accessExpiry(address patient, address provider, ScopeId scopeId) external view returns (uint64);

    /// @notice The stored grant, raw: its expiry and the block it was made in (both 0 when none), and
    ///         whether it is live (not expired and made after the last revokeAll).
    function grantOf(address patient, address provider, ScopeId scopeId)
        external
        view
        returns (uint64 expiresAt, uint64 grantedBlock, bool live);

    /// @notice The block of the last `revokeAll(provider)` by `patient` (0 when never).
    function revokedAllBlock(address patient, address provider) external view returns (uint64);

    /// @notice The owner of a record, when it was registered, and whether it was superseded.
    ///         `patient` is the zero address for an unknown id.
    function recordOf(RecordId recordId) external view returns (address patient, uint64 registeredAt, bool superseded);

    /// @notice The owner of a batch, when it was registered and how many records it holds.
    ///         `patient` is the zero address for an unknown root.
    function batchOf(bytes32 root) external view returns (address patient, uint64 registeredAt, uint32 count);

    /// @notice `batchOf(root)` and whether the batch's owner superseded `recordId` (the access
    ///         check of a batch record reads this one call). It does not say that `recordId` is
    ///         in the batch: a Merkle proof against `root` does. All zero for an unknown root.
    function batchRecordOf(bytes32 root, RecordId recordId)
        external
        view
        returns (address patient, uint64 registeredAt, uint32 count, bool superseded);

    /// @notice Until when `guardian` may act for `patient` (0 when not appointed; may be in the past).
    function guardianUntil(address patient, address guardian) external view returns (uint64);

    /// @notice True when `guardian` may act for `patient` now.
    function isGuardian(address patient, address guardian) external view returns (bool);

    /// @notice The emergency policy of `patient`.
    function emergencyPolicy(address patient) external view returns (bool allowed, uint64 maxDuration);

    /// @notice Until when `provider`'s emergency access to `patient` is open (0 or past: closed).
    function emergencyAccessUntil(address patient, address provider) external view returns (uint64);

    /// @notice Until when `provider`'s access request to `patient` is open (0 or past: closed).
    function requestOpenUntil(address patient, address provider) external view returns (uint64);

    /// @notice The EIP-712 domain separator of this contract (for wallets and relayers).
    function DOMAIN_SEPARATOR() external view returns (bytes32);

    /// @notice The next nonce of `patient` for signed actions (OpenZeppelin `Nonces`).
    function nonces(address patient) external view returns (uint256);

    /// @notice keccak256("Grant(address patient,address provider,bytes32 scopeId,uint64 expiresAt,uint256 nonce,uint256 deadline)")
    function GRANT_TYPEHASH() external view returns (bytes32);

    /// @notice keccak256("GrantBatch(address patient,address provider,bytes32[] scopeIds,uint64 expiresAt,uint256 nonce,uint256 deadline)")
    function GRANT_BATCH_TYPEHASH() external view returns (bytes32);

    /// @notice keccak256("Revoke(address patient,address provider,bytes32 scopeId,uint256 nonce,uint256 deadline)")
    function REVOKE_TYPEHASH() external view returns (bytes32);

    /// @notice keccak256("RegisterRecord(address patient,bytes32 recordId,bytes32 commitment,bytes32 scopeId,bytes32 supersedes,uint256 nonce,uint256 deadline)")
    function REGISTER_RECORD_TYPEHASH() external view returns (bytes32);

    /// @notice keccak256("RegisterBatch(address patient,bytes32 root,uint32 count,uint256 nonce,uint256 deadline)")
    function REGISTER_BATCH_TYPEHASH() external view returns (bytes32);
}
