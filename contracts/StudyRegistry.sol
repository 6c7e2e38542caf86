// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

import {IConsentLedger} from "./interfaces/IConsentLedger.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {IStudyRegistry} from "./interfaces/IStudyRegistry.sol";
import {ScopeId} from "./types/Ids.sol";

/// @title Kizuna study registry
/// @notice See {IStudyRegistry}.
/// @dev A study is two slots (researcher + registeredAt + endsAt packed; the terms hash); the purpose
///      and the scope labels live in the `StudyRegistered` event only. Access itself stays where it
///      is for everybody: the consent ledger's grant, checked on every read by the service.
contract StudyRegistry is IStudyRegistry, EIP712, Nonces {
    /// @inheritdoc IStudyRegistry
    bytes32 public constant STUDY_CONSENT_TYPEHASH =
        keccak256("StudyConsent(address patient,bytes32 studyId,bytes32 scopeId,uint256 nonce,uint256 deadline)");

    /// @inheritdoc IStudyRegistry
    bytes32 public constant STUDY_WITHDRAWAL_TYPEHASH =
        keccak256("StudyWithdrawal(address patient,bytes32 studyId,uint256 nonce,uint256 deadline)");

    uint256 private constant MAX_PURPOSE = 1024;
    uint256 private constant MAX_SCOPES = 64;
    uint256 private constant MAX_LABEL = 100;

    struct Study {
        address researcher;
        uint64 registeredAt;
        uint64 endsAt;
        bytes32 termsHash;
    }

    struct Consent {
        ScopeId scopeId;
        bool consented;
    }

    IProviderRegistry public immutable registry;
    IConsentLedger public immutable ledger;

    mapping(bytes32 studyId => Study) private _studies;
    mapping(bytes32 studyId => mapping(address patient => Consent)) private _consents;

    constructor(IProviderRegistry registry_, IConsentLedger ledger_) EIP712("Kizuna StudyRegistry", "1") {
        registry = registry_;
        ledger = ledger_;
    }

    /// @inheritdoc IStudyRegistry
    function registerStudy(bytes32 salt, string calldata purpose, string[] calldata scopes, uint64 endsAt)
        external
        returns (bytes32 studyId)
    {
        if (!registry.isActiveProvider(msg.sender)) revert StudyRegistryUnverifiedResearcher(msg.sender);
        uint256 purposeLength = bytes(purpose).length;
        if (purposeLength == 0 || purposeLength > MAX_PURPOSE) revert StudyRegistryInvalidStudy("purpose");
        if (scopes.length == 0 || scopes.length > MAX_SCOPES) revert StudyRegistryInvalidStudy("scopes");
        for (uint256 i; i < scopes.length; ++i) {
            uint256 length = bytes(scopes[i]).length;
            if (length == 0 || length > MAX_LABEL) revert StudyRegistryInvalidStudy("scopes");
        }
        if (endsAt <= block.timestamp) revert StudyRegistryInvalidStudy("endsAt");
        studyId = keccak256(abi.encode(msg.sender, salt));
        if (_studies[studyId].researcher != address(0)) revert StudyRegistryStudyExists(studyId);
        _studies[studyId] = Study({
            researcher: msg.sender,
            registeredAt: uint64(block.timestamp),
            endsAt: endsAt,
            termsHash: keccak256(abi.encode(purpose, scopes))
        });
        emit StudyRegistered(studyId, msg.sender, purpose, scopes, endsAt);
    }

    /// @inheritdoc IStudyRegistry
    function consent(bytes32 studyId, ScopeId scopeId) external {
        _consent(msg.sender, studyId, scopeId);
    }

    /// @inheritdoc IStudyRegistry
    function consentBySig(
        address patient,
        bytes32 studyId,
        ScopeId scopeId,
        uint256 deadline,
        bytes calldata signature
    ) external {
        if (block.timestamp > deadline) revert StudyRegistrySignatureExpired(deadline, block.timestamp);
        bytes32 structHash =
            keccak256(abi.encode(STUDY_CONSENT_TYPEHASH, patient, studyId, scopeId, _useNonce(patient), deadline));
        address signer = ECDSA.recoverCalldata(_hashTypedDataV4(structHash), signature);
        if (signer != patient) revert StudyRegistryInvalidSigner(signer, patient);
        _consent(patient, studyId, scopeId);
    }

    /// @inheritdoc IStudyRegistry
    function withdraw(bytes32 studyId) external {
        _withdraw(msg.sender, studyId);
    }

    /// @inheritdoc IStudyRegistry
    function withdrawBySig(address patient, bytes32 studyId, uint256 deadline, bytes calldata signature)
        external
    {
        // The consent's checks in the same order, and the same nonce: one signature, one use,
        // whichever of the two actions it was made for.
        if (block.timestamp > deadline) revert StudyRegistrySignatureExpired(deadline, block.timestamp);
        bytes32 structHash =
            keccak256(abi.encode(STUDY_WITHDRAWAL_TYPEHASH, patient, studyId, _useNonce(patient), deadline));
        address signer = ECDSA.recoverCalldata(_hashTypedDataV4(structHash), signature);
        if (signer != patient) revert StudyRegistryInvalidSigner(signer, patient);
        _withdraw(patient, studyId);
    }

    /// @inheritdoc IStudyRegistry
    function studyOf(bytes32 studyId)
        external
        view
        returns (address researcher, uint64 registeredAt, uint64 endsAt, bytes32 termsHash)
    {
        Study storage study = _study(studyId);
        return (study.researcher, study.registeredAt, study.endsAt, study.termsHash);
    }

    /// @inheritdoc IStudyRegistry
    function consentOf(bytes32 studyId, address patient) external view returns (ScopeId scopeId, bool consented) {
        _study(studyId);
        Consent storage given = _consents[studyId][patient];
        return (given.scopeId, given.consented);
    }

    /// @inheritdoc IStudyRegistry
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc IStudyRegistry
    function nonces(address patient) public view override(IStudyRegistry, Nonces) returns (uint256) {
        return super.nonces(patient);
    }

    function _consent(address patient, bytes32 studyId, ScopeId scopeId) private {
        Study storage study = _study(studyId);
        if (study.endsAt <= block.timestamp) revert StudyRegistryStudyEnded(studyId, study.endsAt);
        (uint64 expiresAt,, bool live) = ledger.grantOf(patient, study.researcher, scopeId);
        if (!live) revert StudyRegistryNoGrant(studyId, patient, scopeId);
        _consents[studyId][patient] = Consent({scopeId: scopeId, consented: true});
        emit StudyConsented(studyId, patient, scopeId, expiresAt);
    }

    function _withdraw(address patient, bytes32 studyId) private {
        _study(studyId);
        Consent storage given = _consents[studyId][patient];
        if (!given.consented) revert StudyRegistryNotConsented(studyId, patient);
        given.consented = false;
        emit StudyConsentWithdrawn(studyId, patient, given.scopeId);
    }

    function _study(bytes32 studyId) private view returns (Study storage study) {
        study = _studies[studyId];
        if (study.researcher == address(0)) revert StudyRegistryUnknownStudy(studyId);
    }
}
