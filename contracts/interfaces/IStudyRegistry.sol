// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ScopeId} from "../types/Ids.sol";

/// @title Kizuna study registry
/// @notice Research studies and the patients' research consents. A researcher verified (and active) in
///         the provider registry registers a study: its purpose, the scope labels it asks for (plain
///         labels such as `Observation:laboratory`: what a study wants is public, a patient's data is
///         not) and an end date. A patient consents by granting the researcher, in the consent ledger,
///         one blinded scope holding the de-identified copy they made for the study, and then calls
///         `consent` here: the registry checks that grant is live and records the consent with
///         purpose "research". Withdrawing is the ledger's `revoke` (reads stop there) and `withdraw`
///         here (the research consent's end, on record).
interface IStudyRegistry {
    /// @notice `researcher` is not an active provider of the provider registry.
    error StudyRegistryUnverifiedResearcher(address researcher);

    /// @notice The study's fields are unusable (`reason` says which: purpose, scopes, endsAt).
    error StudyRegistryInvalidStudy(string reason);

    /// @notice A study with this id exists already.
    error StudyRegistryStudyExists(bytes32 studyId);

    /// @notice No study has this id.
    error StudyRegistryUnknownStudy(bytes32 studyId);

    /// @notice The study ended at `endsAt`: no new consent.
    error StudyRegistryStudyEnded(bytes32 studyId, uint64 endsAt);

    /// @notice `patient` has no live grant of `scopeId` to the study's researcher in the consent ledger.
    error StudyRegistryNoGrant(bytes32 studyId, address patient, ScopeId scopeId);

    /// @notice `patient` has no current consent to the study.
    error StudyRegistryNotConsented(bytes32 studyId, address patient);

    /// @notice The signature's deadline passed (`consentBySig`, `withdrawBySig`).
    error StudyRegistrySignatureExpired(uint256 deadline, uint256 currentTime);

    /// @notice The signature was made by `signer`, not by `patient` (or for another study, scope or
    ///         nonce: a used signature recovers to some other address).
    error StudyRegistryInvalidSigner(address signer, address patient);

    /// @notice `researcher` registered study `studyId`.
    event StudyRegistered(
        bytes32 indexed studyId, address indexed researcher, string purpose, string[] scopes, uint64 endsAt
    );

    /// @notice `patient` consented to `studyId` with purpose "research": the researcher may read the
    ///         patient's study copy, blinded scope `scopeId`, under the consent ledger's grant.
    event StudyConsented(bytes32 indexed studyId, address indexed patient, ScopeId scopeId, uint64 expiresAt);

    /// @notice `patient` withdrew the consent to `studyId` (reads stop with the ledger's revoke; what the
    ///         study read before is in the audit log).
    event StudyConsentWithdrawn(bytes32 indexed studyId, address indexed patient, ScopeId scopeId);

    /// @notice Registers a study of the calling (verified, active) researcher; its id is
    ///         `keccak256(abi.encode(msg.sender, salt))`.
    /// @param salt any value making the id unique for the researcher
    /// @param purpose what the data is for, as shown to patients (1..1024 bytes)
    /// @param scopes the scope labels asked for (1..64 labels, each 1..100 bytes)
    /// @param endsAt when the study ends (in the future): consents given end then too
    function registerStudy(bytes32 salt, string calldata purpose, string[] calldata scopes, uint64 endsAt)
        external
        returns (bytes32 studyId);

    /// @notice The calling patient consents to `studyId`, whose researcher holds a live grant of
    ///         `scopeId` (the study copy's scope) in the consent ledger.
    function consent(bytes32 studyId, ScopeId scopeId) external;

    /// @notice `consent` for `patient`, relayed by anyone: `signature` is the patient's EIP-712
    ///         `StudyConsent(address patient,bytes32 studyId,bytes32 scopeId,uint256 nonce,uint256 deadline)`
    ///         (domain "Kizuna StudyRegistry", version "1"), with the patient's next nonce here.
    function consentBySig(
        address patient,
        bytes32 studyId,
        ScopeId scopeId,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice The EIP-712 type hash of a relayed consent.
    function STUDY_CONSENT_TYPEHASH() external view returns (bytes32);

    /// @notice The EIP-712 domain separator ("Kizuna StudyRegistry", "1", this chain, this contract).
    function DOMAIN_SEPARATOR() external view returns (bytes32);

    /// @notice The EIP-712 type hash of a relayed withdrawal.
    function STUDY_WITHDRAWAL_TYPEHASH() external view returns (bytes32);

    /// @notice The patient's next signature nonce for `consentBySig` and `withdrawBySig` (one
    ///         sequence: a signature is used once, whichever action it signs).
    function nonces(address patient) external view returns (uint256);

    /// @notice The calling patient withdraws the consent to `studyId`.
    function withdraw(bytes32 studyId) external;

    /// @notice `withdraw` for `patient`, relayed by anyone (withdrawing needs no ether, as
    ///         consenting does not): `signature` is the patient's EIP-712
    ///         `StudyWithdrawal(address patient,bytes32 studyId,uint256 nonce,uint256 deadline)`
    ///         (domain "Kizuna StudyRegistry", version "1"), with the patient's next nonce here (the
    ///         same sequence as `consentBySig`'s).
    function withdrawBySig(address patient, bytes32 studyId, uint256 deadline, bytes calldata signature)
        external;

    /// @notice The study: its researcher, end, and the hash of its purpose and scopes
    ///         (`keccak256(abi.encode(purpose, scopes))`; the texts are in `StudyRegistered`).
    function studyOf(bytes32 studyId)
        external
        view
        returns (address researcher, uint64 registeredAt, uint64 endsAt, bytes32 termsHash);

    /// @notice The patient's consent to `studyId`: the scope of the study copy, and whether the consent
    ///         is current (given, not withdrawn). A live ledger grant is still needed for any read.
    function consentOf(bytes32 studyId, address patient) external view returns (ScopeId scopeId, bool consented);
}
