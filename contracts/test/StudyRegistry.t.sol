// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {StudyRegistry} from "../StudyRegistry.sol";
import {IConsentLedger} from "../interfaces/IConsentLedger.sol";
import {IProviderRegistry} from "../interfaces/IProviderRegistry.sol";
import {IStudyRegistry} from "../interfaces/IStudyRegistry.sol";
import {ScopeId} from "../types/Ids.sol";
import {KizunaTest} from "./utils/KizunaTest.t.sol";

contract StudyRegistryTest is KizunaTest {
    StudyRegistry internal studies;
    address internal researcher;
    bytes32 internal studyId;
    ScopeId internal copy;

    function setUp() public override {
        super.setUp();
        researcher = provider; // verified in the registry by KizunaTest
        studies = new StudyRegistry(IProviderRegistry(address(registry)), IConsentLedger(address(ledger)));
        vm.prank(researcher);
        studyId = studies.registerStudy(bytes32("s1"), "Blood pressure in adults", _scopes(), _end());
        copy = scope("ResearchStudy:s1");
    }

    function _scopes() internal pure returns (string[] memory scopes) {
        scopes = new string[](2);
        scopes[0] = "Observation:vital-signs";
        scopes[1] = "Condition";
    }

    function _end() internal view returns (uint64) {
        return uint64(block.timestamp + 30 days);
    }

    function _grantAndConsent() internal {
        vm.startPrank(patient);
        ledger.grant(researcher, copy, _end());
        studies.consent(studyId, copy);
        vm.stopPrank();
    }

    function test_registerStudy_recordsTheStudy() public view {
        (address who, uint64 at, uint64 endsAt, bytes32 terms) = studies.studyOf(studyId);
        assertEq(who, researcher, "researcher");
        assertEq(at, block.timestamp, "registeredAt");
        assertEq(endsAt, _end(), "endsAt");
        assertEq(terms, keccak256(abi.encode("Blood pressure in adults", _scopes())), "terms");
        assertEq(studyId, keccak256(abi.encode(researcher, bytes32("s1"))), "id");
    }

    function testFuzz_registerStudy_unverifiedResearcherReverts(address caller) public {
        vm.assume(caller != provider);
        string[] memory scopes = _scopes();
        uint64 end = _end();
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(IStudyRegistry.StudyRegistryUnverifiedResearcher.selector, caller));
        studies.registerStudy(bytes32("s2"), "p", scopes, end);
    }

    function test_registerStudy_suspendedResearcherReverts() public {
        registry.suspendProvider(researcher);
        string[] memory scopes = _scopes();
        uint64 end = _end();
        vm.prank(researcher);
        vm.expectRevert(abi.encodeWithSelector(IStudyRegistry.StudyRegistryUnverifiedResearcher.selector, researcher));
        studies.registerStudy(bytes32("s2"), "p", scopes, end);
    }

    function test_registerStudy_rejectsBadFields() public {
        string[] memory none = new string[](0);
        string[] memory scopes = _scopes();
        uint64 end = _end();
        vm.startPrank(researcher);
        vm.expectRevert(abi.encodeWithSelector(IStudyRegistry.StudyRegistryInvalidStudy.selector, "purpose"));
        studies.registerStudy(bytes32("s2"), "", scopes, end);
        vm.expectRevert(abi.encodeWithSelector(IStudyRegistry.StudyRegistryInvalidStudy.selector, "scopes"));
        studies.registerStudy(bytes32("s2"), "p", none, end);
        vm.expectRevert(abi.encodeWithSelector(IStudyRegistry.StudyRegistryInvalidStudy.selector, "endsAt"));
        studies.registerStudy(bytes32("s2"), "p", scopes, uint64(block.timestamp));
        vm.expectRevert(abi.encodeWithSelector(IStudyRegistry.StudyRegistryStudyExists.selector, studyId));
        studies.registerStudy(bytes32("s1"), "p", scopes, end);
        vm.stopPrank();
    }

    function test_consent_needsALiveGrantToTheResearcher() public {
        vm.prank(patient);
        vm.expectRevert(abi.encodeWithSelector(IStudyRegistry.StudyRegistryNoGrant.selector, studyId, patient, copy));
        studies.consent(studyId, copy);
        _grantAndConsent();
        (ScopeId sid, bool consented) = studies.consentOf(studyId, patient);
        assertEq(ScopeId.unwrap(sid), ScopeId.unwrap(copy), "scope");
        assertTrue(consented, "consented");
    }

    function test_consent_afterTheEndReverts() public {
        vm.prank(patient);
        ledger.grant(researcher, copy, uint64(block.timestamp + 60 days));
        nextBlock(31 days);
        vm.prank(patient);
        vm.expectRevert(abi.encodeWithSelector(IStudyRegistry.StudyRegistryStudyEnded.selector, studyId, _endAt()));
        studies.consent(studyId, copy);
    }

    function _endAt() internal pure returns (uint64) {
        return uint64(1_700_000_000 + 30 days);
    }

    function test_withdraw_endsTheConsentOnce() public {
        _grantAndConsent();
        vm.startPrank(patient);
        ledger.revoke(researcher, copy);
        studies.withdraw(studyId);
        (, bool consented) = studies.consentOf(studyId, patient);
        assertFalse(consented, "withdrawn");
        vm.expectRevert(abi.encodeWithSelector(IStudyRegistry.StudyRegistryNotConsented.selector, studyId, patient));
        studies.withdraw(studyId);
        vm.stopPrank();
    }

    function test_events_sayWhoDidWhat() public {
        string[] memory scopes = _scopes();
        uint64 end = _end();
        bytes32 second = keccak256(abi.encode(researcher, bytes32("s2")));
        vm.expectEmit(true, true, true, true);
        emit IStudyRegistry.StudyRegistered(second, researcher, "p2", scopes, end);
        vm.prank(researcher);
        studies.registerStudy(bytes32("s2"), "p2", scopes, end);

        vm.startPrank(patient);
        ledger.grant(researcher, copy, end);
        vm.expectEmit(true, true, true, true);
        emit IStudyRegistry.StudyConsented(studyId, patient, copy, end);
        studies.consent(studyId, copy);
        ledger.revoke(researcher, copy);
        vm.expectEmit(true, true, true, true);
        emit IStudyRegistry.StudyConsentWithdrawn(studyId, patient, copy);
        studies.withdraw(studyId);
        vm.stopPrank();
    }

    function test_unknownStudyReverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStudyRegistry.StudyRegistryUnknownStudy.selector, bytes32("x")));
        studies.studyOf(bytes32("x"));
    }

    // ---------------------------------------------------------------------------- relayed consent

    function _consentSig(uint256 key, address who, bytes32 study, ScopeId sid, uint256 nonce, uint256 deadline)
        internal
        returns (bytes memory)
    {
        bytes32 structHash = keccak256(abi.encode(studies.STUDY_CONSENT_TYPEHASH(), who, study, sid, nonce, deadline));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", studies.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @dev Relays `sig` and expects `StudyRegistryInvalidSigner` (whatever address a wrong digest
    ///      recovers to).
    function _expectInvalidSigner(bytes32 study, ScopeId sid, uint256 deadline, bytes memory sig) internal {
        vm.prank(relayer);
        (bool ok, bytes memory reason) = address(studies)
            .call(abi.encodeCall(studies.consentBySig, (patient, study, sid, deadline, sig)));
        assertFalse(ok, "refused");
        assertEq(
            bytes32(bytes4(reason)), bytes32(IStudyRegistry.StudyRegistryInvalidSigner.selector), "invalid signer"
        );
    }

    function test_typehash_isTheDocumentedType() public view {
        assertEq(
            studies.STUDY_CONSENT_TYPEHASH(),
            keccak256("StudyConsent(address patient,bytes32 studyId,bytes32 scopeId,uint256 nonce,uint256 deadline)"),
            "type hash"
        );
    }

    function test_consentBySig_relayed_recordsThePatientsConsent() public {
        vm.prank(patient);
        ledger.grant(researcher, copy, _end());
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _consentSig(PATIENT_KEY, patient, studyId, copy, 0, deadline);
        vm.expectEmit(true, true, true, true);
        emit IStudyRegistry.StudyConsented(studyId, patient, copy, _end());
        vm.prank(relayer);
        studies.consentBySig(patient, studyId, copy, deadline, sig);
        (, bool consented) = studies.consentOf(studyId, patient);
        assertTrue(consented, "consented by the relayed signature");
        assertEq(studies.nonces(patient), 1, "nonce used");
        (, bool relayerConsented) = studies.consentOf(studyId, relayer);
        assertFalse(relayerConsented, "the relayer consented to nothing");
    }

    function test_consentBySig_replayRefused() public {
        vm.prank(patient);
        ledger.grant(researcher, copy, _end());
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _consentSig(PATIENT_KEY, patient, studyId, copy, 0, deadline);
        vm.prank(relayer);
        studies.consentBySig(patient, studyId, copy, deadline, sig);
        vm.prank(patient);
        studies.withdraw(studyId);
        // The same signature again (after a withdrawal it would re-consent): its nonce is used.
        _expectInvalidSigner(studyId, copy, deadline, sig);
        (, bool consented) = studies.consentOf(studyId, patient);
        assertFalse(consented, "the withdrawal stands");
    }

    function test_consentBySig_otherStudyOrScope_refused() public {
        vm.prank(researcher);
        bytes32 second = studies.registerStudy(bytes32("s2"), "p2", _scopes(), _end());
        vm.startPrank(patient);
        ledger.grant(researcher, copy, _end());
        vm.stopPrank();
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _consentSig(PATIENT_KEY, patient, studyId, copy, 0, deadline);
        _expectInvalidSigner(second, copy, deadline, sig);
        _expectInvalidSigner(studyId, scope("another"), deadline, sig);
        // Signed by someone else for the patient: refused.
        bytes memory forged = _consentSig(STRANGER_KEY, patient, studyId, copy, 0, deadline);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IStudyRegistry.StudyRegistryInvalidSigner.selector, stranger, patient));
        studies.consentBySig(patient, studyId, copy, deadline, forged);
    }

    function test_consentBySig_expiredDeadline_refused() public {
        vm.prank(patient);
        ledger.grant(researcher, copy, _end());
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _consentSig(PATIENT_KEY, patient, studyId, copy, 0, deadline);
        nextBlock(1 hours + 1);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(IStudyRegistry.StudyRegistrySignatureExpired.selector, deadline, block.timestamp)
        );
        studies.consentBySig(patient, studyId, copy, deadline, sig);
        assertEq(studies.nonces(patient), 0, "nothing used");
    }

    function test_consentBySig_stillNeedsTheGrant() public {
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _consentSig(PATIENT_KEY, patient, studyId, copy, 0, deadline);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IStudyRegistry.StudyRegistryNoGrant.selector, studyId, patient, copy));
        studies.consentBySig(patient, studyId, copy, deadline, sig);
    }

    function test_eip712Domain_isTheStudyRegistrysOwn() public view {
        (bytes1 fields, string memory name, string memory version, uint256 chainId, address verifying,,) =
            studies.eip712Domain();
        assertEq(bytes32(fields), bytes32(hex"0f"), "name, version, chain id, verifying contract");
        assertEq(bytes(name), bytes("Kizuna StudyRegistry"), "its own name: a ledger signature is no consent");
        assertEq(bytes(version), bytes("1"), "version");
        assertEq(chainId, block.chainid, "chain id");
        assertEq(verifying, address(studies), "verifying contract");
    }

    function test_consentBySig_malformedSignatures_refused() public {
        vm.prank(patient);
        ledger.grant(researcher, copy, _end());
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 structHash =
            keccak256(abi.encode(studies.STUDY_CONSENT_TYPEHASH(), patient, studyId, copy, uint256(0), deadline));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", studies.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(PATIENT_KEY, digest);
        // The malleable twin of the patient's own signature: s -> n - s, v flipped.
        bytes32 highS = bytes32(0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 - uint256(s));
        vm.startPrank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureLength.selector, 64));
        studies.consentBySig(patient, studyId, copy, deadline, abi.encodePacked(r, s));
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureS.selector, highS));
        studies.consentBySig(patient, studyId, copy, deadline, abi.encodePacked(r, highS, uint8(v == 27 ? 28 : 27)));
        vm.expectRevert(ECDSA.ECDSAInvalidSignature.selector);
        studies.consentBySig(patient, studyId, copy, deadline, new bytes(65));
        vm.stopPrank();
        assertEq(studies.nonces(patient), 0, "no refused signature used the nonce");
        vm.prank(relayer);
        studies.consentBySig(patient, studyId, copy, deadline, abi.encodePacked(r, s, v));
        (, bool consented) = studies.consentOf(studyId, patient);
        assertTrue(consented, "the well-formed signature still consents");
    }

    // ------------------------------------------------------------------------- relayed withdrawal

    function _withdrawSig(uint256 key, address who, bytes32 study, uint256 nonce, uint256 deadline)
        internal
        returns (bytes memory)
    {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, _withdrawDigest(who, study, nonce, deadline));
        return abi.encodePacked(r, s, v);
    }

    function _withdrawDigest(address who, bytes32 study, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(studies.STUDY_WITHDRAWAL_TYPEHASH(), who, study, nonce, deadline));
        return keccak256(abi.encodePacked("\x19\x01", studies.DOMAIN_SEPARATOR(), structHash));
    }

    /// @dev Relays a withdrawal `sig` and expects `StudyRegistryInvalidSigner`.
    function _expectWithdrawInvalidSigner(bytes32 study, uint256 deadline, bytes memory sig) internal {
        vm.prank(relayer);
        (bool ok, bytes memory reason) =
            address(studies).call(abi.encodeCall(studies.withdrawBySig, (patient, study, deadline, sig)));
        assertFalse(ok, "refused");
        assertEq(
            bytes32(bytes4(reason)), bytes32(IStudyRegistry.StudyRegistryInvalidSigner.selector), "invalid signer"
        );
    }

    function _consented() internal view returns (bool consented) {
        (, consented) = studies.consentOf(studyId, patient);
    }

    function test_withdrawalTypehash_isTheDocumentedType() public view {
        assertEq(
            studies.STUDY_WITHDRAWAL_TYPEHASH(),
            keccak256("StudyWithdrawal(address patient,bytes32 studyId,uint256 nonce,uint256 deadline)"),
            "type hash"
        );
    }

    function test_withdrawBySig_relayed_recordsThePatientsWithdrawal() public {
        _grantAndConsent();
        vm.prank(patient);
        ledger.revoke(researcher, copy);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _withdrawSig(PATIENT_KEY, patient, studyId, 0, deadline);
        // The very event of the patient's own withdraw.
        vm.expectEmit(true, true, true, true);
        emit IStudyRegistry.StudyConsentWithdrawn(studyId, patient, copy);
        vm.prank(relayer);
        studies.withdrawBySig(patient, studyId, deadline, sig);
        assertFalse(_consented(), "withdrawn by the relayed signature");
        assertEq(studies.nonces(patient), 1, "nonce used");
    }

    function test_withdrawBySig_replayRefused() public {
        _grantAndConsent();
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _withdrawSig(PATIENT_KEY, patient, studyId, 0, deadline);
        vm.prank(relayer);
        studies.withdrawBySig(patient, studyId, deadline, sig);
        // The patient consents again; the old withdrawal signature must not end the new consent.
        vm.prank(patient);
        studies.consent(studyId, copy);
        _expectWithdrawInvalidSigner(studyId, deadline, sig);
        assertTrue(_consented(), "the new consent stands");
    }

    function test_withdrawBySig_wrongSignerOrStudy_refused() public {
        _grantAndConsent();
        vm.prank(researcher);
        bytes32 second = studies.registerStudy(bytes32("s2"), "p2", _scopes(), _end());
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory forged = _withdrawSig(STRANGER_KEY, patient, studyId, 0, deadline);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IStudyRegistry.StudyRegistryInvalidSigner.selector, stranger, patient));
        studies.withdrawBySig(patient, studyId, deadline, forged);
        // The patient's signature for another study withdraws nothing here.
        _expectWithdrawInvalidSigner(studyId, deadline, _withdrawSig(PATIENT_KEY, patient, second, 0, deadline));
        assertTrue(_consented(), "still consented");
        assertEq(studies.nonces(patient), 0, "no refused signature used the nonce");
    }

    function test_withdrawBySig_expiredDeadline_refused() public {
        _grantAndConsent();
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _withdrawSig(PATIENT_KEY, patient, studyId, 0, deadline);
        nextBlock(1 hours + 1);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(IStudyRegistry.StudyRegistrySignatureExpired.selector, deadline, block.timestamp)
        );
        studies.withdrawBySig(patient, studyId, deadline, sig);
        assertTrue(_consented(), "still consented");
        assertEq(studies.nonces(patient), 0, "nothing used");
    }

    function test_withdrawBySig_withoutConsent_refused() public {
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _withdrawSig(PATIENT_KEY, patient, studyId, 0, deadline);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IStudyRegistry.StudyRegistryNotConsented.selector, studyId, patient));
        studies.withdrawBySig(patient, studyId, deadline, sig);
    }

    function test_withdrawBySig_sharesTheConsentsNonces() public {
        vm.prank(patient);
        ledger.grant(researcher, copy, _end());
        uint256 deadline = block.timestamp + 1 hours;
        // Both signed with nonce 0: whichever is relayed first uses it, the other is dead.
        bytes memory consentSig = _consentSig(PATIENT_KEY, patient, studyId, copy, 0, deadline);
        bytes memory withdrawSig = _withdrawSig(PATIENT_KEY, patient, studyId, 0, deadline);
        vm.prank(relayer);
        studies.consentBySig(patient, studyId, copy, deadline, consentSig);
        _expectWithdrawInvalidSigner(studyId, deadline, withdrawSig);
        assertTrue(_consented(), "the nonce-0 withdrawal was not accepted after the nonce-0 consent");
        // A consent signature is no withdrawal signature (another type), even with the right nonce.
        bytes memory consentAsWithdraw = _consentSig(PATIENT_KEY, patient, studyId, copy, 1, deadline);
        _expectWithdrawInvalidSigner(studyId, deadline, consentAsWithdraw);
        // Nonce 1 withdrawn, then a consent signature made for nonce 1 is refused too.
        bytes memory consentOne = _consentSig(PATIENT_KEY, patient, studyId, copy, 1, deadline);
        vm.prank(relayer);
        studies.withdrawBySig(patient, studyId, deadline, _withdrawSig(PATIENT_KEY, patient, studyId, 1, deadline));
        assertFalse(_consented(), "withdrawn with nonce 1");
        _expectInvalidSigner(studyId, copy, deadline, consentOne);
        assertFalse(_consented(), "the nonce-1 consent cannot undo the withdrawal");
        assertEq(studies.nonces(patient), 2, "one sequence for both actions");
    }

    function test_withdrawBySig_malformedSignatures_refused() public {
        _grantAndConsent();
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(PATIENT_KEY, _withdrawDigest(patient, studyId, 0, deadline));
        // The malleable twin of the patient's own signature: s -> n - s, v flipped.
        bytes32 highS = bytes32(0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 - uint256(s));
        vm.startPrank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureLength.selector, 64));
        studies.withdrawBySig(patient, studyId, deadline, abi.encodePacked(r, s));
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureS.selector, highS));
        studies.withdrawBySig(patient, studyId, deadline, abi.encodePacked(r, highS, uint8(v == 27 ? 28 : 27)));
        vm.expectRevert(ECDSA.ECDSAInvalidSignature.selector);
        studies.withdrawBySig(patient, studyId, deadline, new bytes(65));
        vm.stopPrank();
        assertEq(studies.nonces(patient), 0, "no refused signature used the nonce");
        assertTrue(_consented(), "still consented");
        vm.prank(relayer);
        studies.withdrawBySig(patient, studyId, deadline, abi.encodePacked(r, s, v));
        assertFalse(_consented(), "the well-formed signature still withdraws");
    }
}
