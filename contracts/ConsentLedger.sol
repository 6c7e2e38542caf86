// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

import {IConsentLedger} from "./interfaces/IConsentLedger.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {CareEventKind, RecordId, ScopeId} from "./types/Ids.sol";

/// @title Kizuna consent ledger
/// @notice See {IConsentLedger}.
/// @dev Storage layout (docs/contracts.md has the reasoning and the gas figures):
///      - `_grants[patient][provider][scopeId]`: ONE slot per grant, (expiresAt, grantedBlock).
///        A grant writes this slot and reads the pair slot (it answers an open request).
///      - `_pairs[patient][provider]`: ONE slot per relationship, (revokedAllBlock,
///        requestOpenUntil, emergencyUntil, emergencyReason). `revokeAll` writes only
///        `revokedAllBlock`; it is compared with `grantedBlock` when access is *read*, so a
///        grant never pays for revoke-all. Strictly greater: a grant from the revokeAll's own
///        block is dead (revokeAll wins inside a block, whatever the order of the transactions).
///      - `_records[recordId]`: ONE slot, (patient, registeredAt, superseded); the commitment and
///        the scope live in the `RecordRegistered` event only.
///      - `_batches[root]`: ONE slot per batch of records, (patient, registeredAt, count); the
///        leaves (recordId, scopeId, commitment) live off-chain in the batch's manifest
///        (kizuna/batch.py), the root commits to them.
///      - `_batchRecordSuperseded[patient][recordId]`: a batch record the patient superseded.
///        Keyed by the patient who supersedes, not by the id, so nobody can retire or block
///        another patient's batch record.
///      - `_guardians[patient][guardian]`: the guardian's end date.
///      - `_policies[patient]`: the emergency policy.
///      - `_dataRequests[patient][requestId]`: ONE slot per data request, (provider, closed):
///        the patient's `DataRequested` care event writes it, and it alone lets the named
///        provider log that request's answers (`answerDataRequest`) until one closes it. Keyed
///        by the patient, so nobody else's request id can collide with or pre-empt it.
contract ConsentLedger is IConsentLedger, EIP712, Nonces {
    /// @inheritdoc IConsentLedger
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(address patient,address provider,bytes32 scopeId,uint64 expiresAt,uint256 nonce,uint256 deadline)"
    );

    /// @inheritdoc IConsentLedger
    bytes32 public constant GRANT_BATCH_TYPEHASH = keccak256(
        "GrantBatch(address patient,address provider,bytes32[] scopeIds,uint64 expiresAt,uint256 nonce,uint256 deadline)"
    );

    /// @inheritdoc IConsentLedger
    bytes32 public constant REVOKE_TYPEHASH =
        keccak256("Revoke(address patient,address provider,bytes32 scopeId,uint256 nonce,uint256 deadline)");

    /// @inheritdoc IConsentLedger
    bytes32 public constant REGISTER_RECORD_TYPEHASH = keccak256(
        "RegisterRecord(address patient,bytes32 recordId,bytes32 commitment,bytes32 scopeId,bytes32 supersedes,uint256 nonce,uint256 deadline)"
    );

    /// @inheritdoc IConsentLedger
    bytes32 public constant REGISTER_BATCH_TYPEHASH =
        keccak256("RegisterBatch(address patient,bytes32 root,uint32 count,uint256 nonce,uint256 deadline)");

    /// @inheritdoc IConsentLedger
    uint64 public constant REQUEST_TTL = 14 days;

    /// @dev One slot: the grant's expiry (exclusive) and the block it was made in (0: no grant).
    struct Grant {
        uint64 expiresAt;
        uint64 grantedBlock;
    }

    /// @dev One slot per (patient, provider).
    struct Pair {
        uint64 revokedAllBlock;
        uint64 requestOpenUntil;
        uint64 emergencyUntil;
        uint16 emergencyReason;
    }

    /// @dev One slot per record.
    struct Record {
        address patient;
        uint64 registeredAt;
        bool superseded;
    }

    /// @dev One slot per batch of records (20 + 8 + 4 bytes).
    struct Batch {
        address patient;
        uint64 registeredAt;
        uint32 count;
    }

    /// @dev One slot per data request (20 + 1 bytes).
    struct DataRequest {
        address provider;
        bool closed;
    }

    struct Policy {
        bool allowed;
        uint64 maxDuration;
    }

    IProviderRegistry private immutable _registry;

    mapping(address patient => mapping(address provider => mapping(ScopeId scopeId => Grant))) private _grants;
    mapping(address patient => mapping(address provider => Pair)) private _pairs;
    mapping(RecordId recordId => Record) private _records;
    mapping(bytes32 root => Batch) private _batches;
    mapping(address patient => mapping(RecordId recordId => bool)) private _batchRecordSuperseded;
    mapping(address patient => mapping(address guardian => uint64 until)) private _guardians;
    mapping(address patient => Policy) private _policies;
    mapping(address patient => mapping(bytes32 requestId => DataRequest)) private _dataRequests;

    /// @param registry the provider registry that verifies providers for emergency access and requests
    constructor(IProviderRegistry registry) EIP712("Kizuna ConsentLedger", "1") {
        _registry = registry;
    }

    // ----------------------------------------------------------------------------------------
    // Records
    // ----------------------------------------------------------------------------------------

    /// @inheritdoc IConsentLedger
    function registerRecord(RecordId recordId, bytes32 commitment, ScopeId scopeId) external {
        _registerRecord(msg.sender, recordId, commitment, scopeId);
    }

    /// @inheritdoc IConsentLedger
    function registerRecordFor(address patient, RecordId recordId, bytes32 commitment, ScopeId scopeId) external {
        _authorize(patient);
        _registerRecord(patient, recordId, commitment, scopeId);
    }

    /// @inheritdoc IConsentLedger
    function supersedeRecord(RecordId oldRecordId, RecordId newRecordId, bytes32 commitment, ScopeId scopeId) external {
        _supersedeRecord(msg.sender, oldRecordId, newRecordId, commitment, scopeId);
    }

    /// @inheritdoc IConsentLedger
    function supersedeRecordFor(
        address patient,
        RecordId oldRecordId,
        RecordId newRecordId,
        bytes32 commitment,
        ScopeId scopeId
    ) external {
        _authorize(patient);
        _supersedeRecord(patient, oldRecordId, newRecordId, commitment, scopeId);
    }

    /// @inheritdoc IConsentLedger
    function registerRecordBySig(
        address patient,
        RecordId recordId,
        bytes32 commitment,
        ScopeId scopeId,
        RecordId supersedes,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkDeadline(deadline);
        bytes32 structHash = keccak256(
            abi.encode(
                REGISTER_RECORD_TYPEHASH,
                patient,
                recordId,
                commitment,
                scopeId,
                supersedes,
                _useNonce(patient),
                deadline
            )
        );
        _checkSigner(patient, structHash, signature);
        if (RecordId.unwrap(supersedes) == bytes32(0)) {
            _registerRecord(patient, recordId, commitment, scopeId);
        } else {
            _supersedeRecord(patient, supersedes, recordId, commitment, scopeId);
        }
    }

    /// @inheritdoc IConsentLedger
    function registerBatch(bytes32 root, uint32 count) external {
        _registerBatch(msg.sender, root, count);
    }

    /// @inheritdoc IConsentLedger
    function registerBatchFor(address patient, bytes32 root, uint32 count) external {
        _authorize(patient);
        _registerBatch(patient, root, count);
    }

    /// @inheritdoc IConsentLedger
    function registerBatchBySig(address patient, bytes32 root, uint32 count, uint256 deadline, bytes calldata signature)
        external
    {
        _checkDeadline(deadline);
        bytes32 structHash =
            keccak256(abi.encode(REGISTER_BATCH_TYPEHASH, patient, root, count, _useNonce(patient), deadline));
        _checkSigner(patient, structHash, signature);
        _registerBatch(patient, root, count);
    }

    // ----------------------------------------------------------------------------------------
    // Grants
    // ----------------------------------------------------------------------------------------

    /// @inheritdoc IConsentLedger
    function grant(address provider, ScopeId scopeId, uint64 expiresAt) external {
        _grant(msg.sender, provider, scopeId, expiresAt);
    }

    /// @inheritdoc IConsentLedger
    function grantFor(address patient, address provider, ScopeId scopeId, uint64 expiresAt) external {
        _authorize(patient);
        _grant(patient, provider, scopeId, expiresAt);
    }

    /// @inheritdoc IConsentLedger
    function grantBatch(address provider, ScopeId[] calldata scopeIds, uint64 expiresAt) external {
        _grantBatch(msg.sender, provider, scopeIds, expiresAt);
    }

    /// @inheritdoc IConsentLedger
    function grantBatchFor(address patient, address provider, ScopeId[] calldata scopeIds, uint64 expiresAt) external {
        _authorize(patient);
        _grantBatch(patient, provider, scopeIds, expiresAt);
    }

    /// @inheritdoc IConsentLedger
    function revoke(address provider, ScopeId scopeId) external {
        _revoke(msg.sender, provider, scopeId);
    }

    /// @inheritdoc IConsentLedger
    function revokeFor(address patient, address provider, ScopeId scopeId) external {
        _authorize(patient);
        _revoke(patient, provider, scopeId);
    }

    /// @inheritdoc IConsentLedger
    function revokeAll(address provider) external {
        _revokeAll(msg.sender, provider);
    }

    /// @inheritdoc IConsentLedger
    function revokeAllFor(address patient, address provider) external {
        _authorize(patient);
        _revokeAll(patient, provider);
    }

    /// @inheritdoc IConsentLedger
    function grantBySig(
        address patient,
        address provider,
        ScopeId scopeId,
        uint64 expiresAt,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkDeadline(deadline);
        bytes32 structHash =
            keccak256(abi.encode(GRANT_TYPEHASH, patient, provider, scopeId, expiresAt, _useNonce(patient), deadline));
        _checkSigner(patient, structHash, signature);
        _grant(patient, provider, scopeId, expiresAt);
    }

    /// @inheritdoc IConsentLedger
    function grantBatchBySig(
        address patient,
        address provider,
        ScopeId[] calldata scopeIds,
        uint64 expiresAt,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkDeadline(deadline);
        bytes32 structHash = keccak256(
            abi.encode(
                GRANT_BATCH_TYPEHASH,
                patient,
                provider,
                _hashScopeIds(scopeIds),
                expiresAt,
                _useNonce(patient),
                deadline
            )
        );
        _checkSigner(patient, structHash, signature);
        _grantBatch(patient, provider, scopeIds, expiresAt);
    }

    /// @inheritdoc IConsentLedger
    function revokeBySig(address patient, address provider, ScopeId scopeId, uint256 deadline, bytes calldata signature)
        external
    {
        _checkDeadline(deadline);
        bytes32 structHash =
            keccak256(abi.encode(REVOKE_TYPEHASH, patient, provider, scopeId, _useNonce(patient), deadline));
        _checkSigner(patient, structHash, signature);
        _revoke(patient, provider, scopeId);
    }

    // ----------------------------------------------------------------------------------------
    // Guardians
    // ----------------------------------------------------------------------------------------

    /// @inheritdoc IConsentLedger
    function appointGuardian(address guardian, uint64 until) external {
        if (guardian == address(0) || guardian == msg.sender) revert ConsentLedgerInvalidGuardian(guardian);
        if (until <= block.timestamp) revert ConsentLedgerInvalidExpiry(until, block.timestamp);
        _guardians[msg.sender][guardian] = until;
        emit GuardianAppointed(msg.sender, guardian, until);
    }

    /// @inheritdoc IConsentLedger
    function removeGuardian(address guardian) external {
        if (_guardians[msg.sender][guardian] == 0) revert ConsentLedgerNotGuardian(msg.sender, guardian);
        delete _guardians[msg.sender][guardian];
        emit GuardianRemoved(msg.sender, guardian);
    }

    // ----------------------------------------------------------------------------------------
    // Emergency (break-glass) access and access requests
    // ----------------------------------------------------------------------------------------

    /// @inheritdoc IConsentLedger
    function setEmergencyPolicy(bool allowed, uint64 maxDuration) external {
        _setEmergencyPolicy(msg.sender, allowed, maxDuration);
    }

    /// @inheritdoc IConsentLedger
    function setEmergencyPolicyFor(address patient, bool allowed, uint64 maxDuration) external {
        _authorize(patient);
        _setEmergencyPolicy(patient, allowed, maxDuration);
    }

    /// @inheritdoc IConsentLedger
    function openEmergencyAccess(address patient, uint64 duration, uint16 reasonCode) external {
        if (!_registry.isActiveProvider(msg.sender)) revert ConsentLedgerProviderNotVerified(msg.sender);
        Policy memory policy = _policies[patient];
        if (!policy.allowed) revert ConsentLedgerEmergencyNotAllowed(patient);
        if (duration == 0 || duration > policy.maxDuration) {
            revert ConsentLedgerInvalidEmergencyDuration(duration, policy.maxDuration);
        }
        // A policy may allow "forever" (maxDuration = 2^64 - 1): the end saturates instead of
        // overflowing.
        uint256 end = block.timestamp + duration;
        uint64 until = end > type(uint64).max ? type(uint64).max : uint64(end);
        Pair storage pair = _pairs[patient][msg.sender];
        pair.emergencyUntil = until;
        pair.emergencyReason = reasonCode;
        emit EmergencyAccessOpened(patient, msg.sender, until, reasonCode, true);
    }

    /// @inheritdoc IConsentLedger
    function closeEmergencyAccess(address patient, address provider) external {
        if (msg.sender != provider) _authorize(patient);
        Pair storage pair = _pairs[patient][provider];
        if (pair.emergencyUntil <= block.timestamp) revert ConsentLedgerNoEmergencyAccess(patient, provider);
        pair.emergencyUntil = 0;
        pair.emergencyReason = 0;
        emit EmergencyAccessClosed(patient, provider, msg.sender, true);
    }

    /// @inheritdoc IConsentLedger
    function requestAccess(address patient, bytes32 ref) external {
        if (!_registry.isActiveProvider(msg.sender)) revert ConsentLedgerProviderNotVerified(msg.sender);
        uint64 openUntil = uint64(block.timestamp) + REQUEST_TTL;
        _pairs[patient][msg.sender].requestOpenUntil = openUntil;
        emit AccessRequested(patient, msg.sender, openUntil, ref);
    }

    /// @inheritdoc IConsentLedger
    function closeRequest(address patient, address provider) external {
        if (msg.sender != provider) _authorize(patient);
        Pair storage pair = _pairs[patient][provider];
        if (pair.requestOpenUntil <= block.timestamp) revert ConsentLedgerNoOpenRequest(patient, provider);
        pair.requestOpenUntil = 0;
        emit AccessRequestClosed(patient, provider, msg.sender);
    }

    // ----------------------------------------------------------------------------------------
    // Care events
    // ----------------------------------------------------------------------------------------

    /// @inheritdoc IConsentLedger
    function logCareEvent(address patient, CareEventKind kind, bytes32 ref, address provider, ScopeId scopeId)
        external
    {
        // A data request's answers go through `answerDataRequest` only: the request's own
        // authority and state live there, and a grant must not bypass them.
        if (kind > CareEventKind.DataRequested) revert ConsentLedgerWrongCareEventKind(kind);
        bool flagged;
        if (msg.sender != patient) {
            if (msg.sender == provider) {
                // A request is the patient's word: the provider it names never writes one.
                if (kind == CareEventKind.DataRequested) revert ConsentLedgerCareEventNotAllowed(patient, provider);
                flagged = _providerCareAuthority(patient, provider, scopeId);
            } else if (_guardians[patient][msg.sender] <= block.timestamp) {
                revert ConsentLedgerCareEventNotAllowed(patient, msg.sender);
            }
        }
        if (kind == CareEventKind.DataRequested) _openDataRequest(patient, provider, ref);
        emit CareEventLogged(patient, provider, kind, msg.sender, ref, flagged);
    }

    /// @inheritdoc IConsentLedger
    function answerDataRequest(address patient, bytes32 requestId, CareEventKind kind, bytes32 ref) external {
        if (kind < CareEventKind.DataRequestAcknowledged) revert ConsentLedgerWrongCareEventKind(kind);
        DataRequest storage request = _dataRequests[patient][requestId];
        if (request.provider != msg.sender || request.closed) {
            revert ConsentLedgerDataRequestNotOpen(patient, requestId, msg.sender);
        }
        if (kind == CareEventKind.DataRequestFulfilled || kind == CareEventKind.DataRequestDeclined) {
            request.closed = true;
        }
        emit CareEventLogged(patient, msg.sender, kind, msg.sender, ref, false);
        emit DataRequestAnswered(patient, requestId, ref);
    }

    // ----------------------------------------------------------------------------------------
    // Calls
    // ----------------------------------------------------------------------------------------

    /// @inheritdoc IConsentLedger
    function providerRegistry() external view returns (address) {
        return address(_registry);
    }

    /// @inheritdoc IConsentLedger
    function hasAccess(address patient, address provider, ScopeId scopeId) external view returns (bool) {
        return _accessExpiry(patient, provider, scopeId) != 0;
    }

    /// @inheritdoc IConsentLedger
    function accessExpiry(address patient, address provider, ScopeId scopeId) external view returns (uint64) {
        return _accessExpiry(patient, provider, scopeId);
    }

    /// @inheritdoc IConsentLedger
    function grantOf(address patient, address provider, ScopeId scopeId)
        external
        view
        returns (uint64 expiresAt, uint64 grantedBlock, bool live)
    {
        Grant memory stored = _grants[patient][provider][scopeId];
        return (stored.expiresAt, stored.grantedBlock, _isLive(stored, _pairs[patient][provider].revokedAllBlock));
    }

    /// @inheritdoc IConsentLedger
    function revokedAllBlock(address patient, address provider) external view returns (uint64) {
        return _pairs[patient][provider].revokedAllBlock;
    }

    /// @inheritdoc IConsentLedger
    function recordOf(RecordId recordId) external view returns (address patient, uint64 registeredAt, bool superseded) {
        Record memory record = _records[recordId];
        return (record.patient, record.registeredAt, record.superseded);
    }

    /// @inheritdoc IConsentLedger
    function batchOf(bytes32 root) external view returns (address patient, uint64 registeredAt, uint32 count) {
        Batch memory batch = _batches[root];
        return (batch.patient, batch.registeredAt, batch.count);
    }

    /// @inheritdoc IConsentLedger
    function batchRecordOf(bytes32 root, RecordId recordId)
        external
        view
        returns (address patient, uint64 registeredAt, uint32 count, bool superseded)
    {
        Batch memory batch = _batches[root];
        // An unknown root has no patient: nothing of the zero address's namespace is read.
        superseded = batch.patient != address(0) && _batchRecordSuperseded[batch.patient][recordId];
        return (batch.patient, batch.registeredAt, batch.count, superseded);
    }

    /// @inheritdoc IConsentLedger
    function guardianUntil(address patient, address guardian) external view returns (uint64) {
        return _guardians[patient][guardian];
    }

    /// @inheritdoc IConsentLedger
    function isGuardian(address patient, address guardian) external view returns (bool) {
        return _guardians[patient][guardian] > block.timestamp;
    }

    /// @inheritdoc IConsentLedger
    function emergencyPolicy(address patient) external view returns (bool allowed, uint64 maxDuration) {
        Policy memory policy = _policies[patient];
        return (policy.allowed, policy.maxDuration);
    }

    /// @inheritdoc IConsentLedger
    function emergencyAccessUntil(address patient, address provider) external view returns (uint64) {
        return _pairs[patient][provider].emergencyUntil;
    }

    /// @inheritdoc IConsentLedger
    function requestOpenUntil(address patient, address provider) external view returns (uint64) {
        return _pairs[patient][provider].requestOpenUntil;
    }

    /// @inheritdoc IConsentLedger
    function dataRequestOf(address patient, bytes32 requestId) external view returns (address provider, bool closed) {
        DataRequest memory request = _dataRequests[patient][requestId];
        return (request.provider, request.closed);
    }

    /// @inheritdoc IConsentLedger
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc IConsentLedger
    function nonces(address patient) public view override(IConsentLedger, Nonces) returns (uint256) {
        return super.nonces(patient);
    }

    // ----------------------------------------------------------------------------------------
    // Internals
    // ----------------------------------------------------------------------------------------

    /// @dev `msg.sender` must be `patient` or one of its live guardians; a guardian's action is logged.
    function _authorize(address patient) private {
        if (msg.sender == patient) return;
        if (_guardians[patient][msg.sender] <= block.timestamp) {
            revert ConsentLedgerUnauthorized(patient, msg.sender);
        }
        emit GuardianActed(patient, msg.sender, msg.sig);
    }

    function _registerRecord(address patient, RecordId recordId, bytes32 commitment, ScopeId scopeId) private {
        if (RecordId.unwrap(recordId) == bytes32(0)) revert ConsentLedgerInvalidRecordId(recordId);
        Record storage record = _records[recordId];
        if (record.patient != address(0)) revert ConsentLedgerRecordExists(recordId);
        record.patient = patient;
        record.registeredAt = uint64(block.timestamp);
        emit RecordRegistered(patient, recordId, commitment, scopeId);
    }

    function _registerBatch(address patient, bytes32 root, uint32 count) private {
        if (root == bytes32(0) || count == 0) revert ConsentLedgerInvalidBatch(root);
        Batch storage batch = _batches[root];
        if (batch.patient != address(0)) revert ConsentLedgerBatchExists(root);
        _batches[root] = Batch(patient, uint64(block.timestamp), count);
        emit RecordBatchRegistered(patient, root, count);
    }

    /// @dev `oldRecordId` is either a record `patient` registered alone (`_records`) or, when it
    ///      is not, the id of one of `patient`'s batch records. The chain cannot check the latter
    ///      (the leaves are off-chain: a proof would cost calldata), so the flag lives in the
    ///      patient's own namespace: a bogus id retires nothing but a name of the patient's own,
    ///      and an id someone else registered alone (front-running it) neither blocks nor is
    ///      touched by the owner's supersede. The service checks the leaf and its proof first.
    function _supersedeRecord(
        address patient,
        RecordId oldRecordId,
        RecordId newRecordId,
        bytes32 commitment,
        ScopeId scopeId
    ) private {
        Record storage old = _records[oldRecordId];
        if (old.patient == patient) {
            if (old.superseded) revert ConsentLedgerRecordSuperseded(oldRecordId);
            old.superseded = true;
        } else {
            // A batch record's id is never zero, and is not both the old and the new version.
            if (RecordId.unwrap(oldRecordId) == bytes32(0)) revert ConsentLedgerInvalidRecordId(oldRecordId);
            if (RecordId.unwrap(oldRecordId) == RecordId.unwrap(newRecordId)) {
                revert ConsentLedgerRecordExists(newRecordId);
            }
            mapping(RecordId => bool) storage retired = _batchRecordSuperseded[patient];
            if (retired[oldRecordId]) revert ConsentLedgerRecordSuperseded(oldRecordId);
            retired[oldRecordId] = true;
        }
        _registerRecord(patient, newRecordId, commitment, scopeId);
        emit RecordSuperseded(patient, oldRecordId, newRecordId);
    }

    function _grant(address patient, address provider, ScopeId scopeId, uint64 expiresAt) private {
        _checkGrantArgs(provider, expiresAt);
        _grants[patient][provider][scopeId] = Grant(expiresAt, uint64(block.number));
        emit AccessGranted(patient, provider, scopeId, expiresAt);
        _answerRequest(patient, provider);
    }

    function _grantBatch(address patient, address provider, ScopeId[] calldata scopeIds, uint64 expiresAt) private {
        _checkGrantArgs(provider, expiresAt);
        uint256 count = scopeIds.length;
        if (count == 0) revert ConsentLedgerEmptyBatch();
        mapping(ScopeId => Grant) storage grants = _grants[patient][provider];
        Grant memory stored = Grant(expiresAt, uint64(block.number));
        for (uint256 i; i < count; ++i) {
            grants[scopeIds[i]] = stored;
        }
        emit AccessGrantedBatch(patient, provider, scopeIds, expiresAt);
        _answerRequest(patient, provider);
    }

    /// @dev A grant answers the provider's open request: the request's authority (care events)
    ///      must not outlive the answer, e.g. after the grant is revoked. One cold read of the
    ///      pair slot; a write (and `AccessRequestClosed`, closed by the patient) only when a
    ///      request is open.
    function _answerRequest(address patient, address provider) private {
        Pair storage pair = _pairs[patient][provider];
        if (pair.requestOpenUntil > block.timestamp) {
            pair.requestOpenUntil = 0;
            emit AccessRequestClosed(patient, provider, patient);
        }
    }

    /// @dev The patient's (or a guardian's) `DataRequested` names the provider that may answer;
    ///      `requestId` (the event's `ref`) is once per patient, closed or not, so an answer
    ///      can never be replayed onto a second request under the same id.
    function _openDataRequest(address patient, address provider, bytes32 requestId) private {
        if (provider == address(0) || provider == patient) revert ConsentLedgerInvalidProvider(provider);
        DataRequest storage request = _dataRequests[patient][requestId];
        if (request.provider != address(0)) revert ConsentLedgerDataRequestExists(patient, requestId);
        request.provider = provider;
    }

    function _checkGrantArgs(address provider, uint64 expiresAt) private view {
        if (provider == address(0)) revert ConsentLedgerInvalidProvider(provider);
        if (expiresAt <= block.timestamp) revert ConsentLedgerInvalidExpiry(expiresAt, block.timestamp);
    }

    function _revoke(address patient, address provider, ScopeId scopeId) private {
        Grant storage stored = _grants[patient][provider][scopeId];
        if (stored.grantedBlock == 0) revert ConsentLedgerNoGrant(patient, provider, scopeId);
        delete _grants[patient][provider][scopeId];
        emit AccessRevoked(patient, provider, scopeId);
    }

    function _revokeAll(address patient, address provider) private {
        if (provider == address(0)) revert ConsentLedgerInvalidProvider(provider);
        _pairs[patient][provider] = Pair(uint64(block.number), 0, 0, 0);
        emit AllAccessRevoked(patient, provider);
    }

    function _setEmergencyPolicy(address patient, bool allowed, uint64 maxDuration) private {
        if (allowed && maxDuration == 0) revert ConsentLedgerInvalidEmergencyDuration(0, maxDuration);
        _policies[patient] = Policy(allowed, maxDuration);
        emit EmergencyPolicySet(patient, allowed, maxDuration);
    }

    /// @dev Reverts unless `provider` holds a live grant on `scopeId`, an open request or an open
    ///      emergency access; returns true when only the emergency access authorises it. Reads two
    ///      slots (the grant, the pair) and never the registry.
    function _providerCareAuthority(address patient, address provider, ScopeId scopeId) private view returns (bool) {
        Pair memory pair = _pairs[patient][provider];
        if (_isLive(_grants[patient][provider][scopeId], pair.revokedAllBlock)) return false;
        if (pair.requestOpenUntil > block.timestamp) return false;
        if (pair.emergencyUntil > block.timestamp) return true;
        if (_guardians[patient][provider] > block.timestamp) return false;
        revert ConsentLedgerCareEventNotAllowed(patient, provider);
    }

    function _accessExpiry(address patient, address provider, ScopeId scopeId) private view returns (uint64 until) {
        Pair memory pair = _pairs[patient][provider];
        Grant memory stored = _grants[patient][provider][scopeId];
        if (_isLive(stored, pair.revokedAllBlock)) until = stored.expiresAt;
        if (pair.emergencyUntil > block.timestamp && pair.emergencyUntil > until) until = pair.emergencyUntil;
    }

    /// @dev Live: made after the last revokeAll's block, and not expired.
    function _isLive(Grant memory stored, uint64 revokedAll) private view returns (bool) {
        return stored.grantedBlock > revokedAll && stored.expiresAt > block.timestamp;
    }

    function _checkDeadline(uint256 deadline) private view {
        if (block.timestamp > deadline) revert ConsentLedgerSignatureExpired(deadline, block.timestamp);
    }

    function _checkSigner(address patient, bytes32 structHash, bytes calldata signature) private view {
        address signer = ECDSA.recoverCalldata(_hashTypedDataV4(structHash), signature);
        if (signer != patient) revert ConsentLedgerInvalidSigner(signer, patient);
    }

    /// @dev EIP-712 encoding of a `bytes32[]`: keccak256 of the concatenated elements.
    function _hashScopeIds(ScopeId[] calldata scopeIds) private pure returns (bytes32 digest) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            let size := shl(5, scopeIds.length)
            calldatacopy(ptr, scopeIds.offset, size)
            digest := keccak256(ptr, size)
        }
    }
}
