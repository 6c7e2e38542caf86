// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {ConsentLedger} from "../ConsentLedger.sol";
import {IConsentLedger} from "../interfaces/IConsentLedger.sol";
import {IProviderRegistry} from "../interfaces/IProviderRegistry.sol";
import {CareEventKind, RecordId, ScopeId} from "../types/Ids.sol";
import {KizunaTest} from "./utils/KizunaTest.t.sol";

/// @notice Unit and fuzz tests of the consent ledger. Names read as specs: `test_<what>_<expectation>`.
contract ConsentLedgerTest is KizunaTest {
    uint64 internal constant DAY = 1 days;
    ScopeId internal lab;
    ScopeId internal imaging;

    function setUp() public override {
        super.setUp();
        lab = scope("lab");
        imaging = scope("imaging");
    }

    // ---------------------------------------------------------------------------- signatures

    function _sign(uint256 key, bytes32 structHash) internal returns (bytes memory) {
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", ledger.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _grantSig(uint256 key, address p, address prov, ScopeId s, uint64 exp, uint256 nonce, uint256 deadline)
        internal
        returns (bytes memory)
    {
        return _sign(key, keccak256(abi.encode(ledger.GRANT_TYPEHASH(), p, prov, s, exp, nonce, deadline)));
    }

    // ---------------------------------------------------------------------------- type hashes

    function test_typeHashes_matchTheDocumentedTypeStrings() public view {
        assertEq(
            ledger.GRANT_TYPEHASH(),
            keccak256(
                "Grant(address patient,address provider,bytes32 scopeId,uint64 expiresAt,uint256 nonce,uint256 deadline)"
            ),
            "Grant"
        );
        assertEq(
            ledger.GRANT_BATCH_TYPEHASH(),
            keccak256(
                "GrantBatch(address patient,address provider,bytes32[] scopeIds,uint64 expiresAt,uint256 nonce,uint256 deadline)"
            ),
            "GrantBatch"
        );
        assertEq(
            ledger.REVOKE_TYPEHASH(),
            keccak256("Revoke(address patient,address provider,bytes32 scopeId,uint256 nonce,uint256 deadline)"),
            "Revoke"
        );
        assertEq(
            ledger.REGISTER_RECORD_TYPEHASH(),
            keccak256(
                "RegisterRecord(address patient,bytes32 recordId,bytes32 commitment,bytes32 scopeId,bytes32 supersedes,uint256 nonce,uint256 deadline)"
            ),
            "RegisterRecord"
        );
    }

    function test_domainSeparator_bindsNameVersionChainAndContract() public view {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("Kizuna ConsentLedger"),
                keccak256("1"),
                block.chainid,
                address(ledger)
            )
        );
        assertEq(ledger.DOMAIN_SEPARATOR(), expected, "domain separator");
    }

    // ---------------------------------------------------------------------------- grants

    function test_grant_givesAccessUntilExpiry() public {
        uint64 expiresAt = uint64(block.timestamp + DAY);
        vm.expectEmit(true, true, false, true);
        emit IConsentLedger.AccessGranted(patient, provider, lab, expiresAt);
        vm.prank(patient);
        ledger.grant(provider, lab, expiresAt);
        assertTrue(ledger.hasAccess(patient, provider, lab), "granted scope");
        assertFalse(ledger.hasAccess(patient, provider, imaging), "other scope");
        assertFalse(ledger.hasAccess(patient, otherProvider, lab), "other provider");
        assertEq(ledger.accessExpiry(patient, provider, lab), expiresAt, "expiry");
        (uint64 e, uint64 b, bool live) = ledger.grantOf(patient, provider, lab);
        assertEq(e, expiresAt, "stored expiry");
        assertEq(b, block.number, "stored block");
        assertTrue(live, "live");
    }

    function testFuzz_grant_expired_meansNoAccess(uint32 duration, uint32 afterExpiry) public {
        vm.assume(duration > 0);
        uint64 expiresAt = uint64(block.timestamp) + duration;
        vm.prank(patient);
        ledger.grant(provider, lab, expiresAt);
        vm.warp(uint256(expiresAt) + afterExpiry);
        assertFalse(ledger.hasAccess(patient, provider, lab), "expired grant");
        assertEq(ledger.accessExpiry(patient, provider, lab), 0, "expiry of expired grant");
        vm.warp(uint256(expiresAt) - 1);
        assertTrue(ledger.hasAccess(patient, provider, lab), "one second before expiry");
    }

    function test_grant_revertsWhenExpiryNotInFuture() public {
        vm.prank(patient);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentLedger.ConsentLedgerInvalidExpiry.selector, uint64(block.timestamp), block.timestamp
            )
        );
        ledger.grant(provider, lab, uint64(block.timestamp));
    }

    function test_grant_revertsForZeroProvider() public {
        vm.prank(patient);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerInvalidProvider.selector, address(0)));
        ledger.grant(address(0), lab, uint64(block.timestamp + DAY));
    }

    function testFuzz_grantBatch_grantsEveryScope(bytes32[] memory raw, uint32 duration) public {
        vm.assume(raw.length > 0 && raw.length < 40 && duration > 0);
        ScopeId[] memory scopes = new ScopeId[](raw.length);
        for (uint256 i; i < raw.length; ++i) {
            scopes[i] = ScopeId.wrap(raw[i]);
        }
        uint64 expiresAt = uint64(block.timestamp) + duration;
        vm.prank(patient);
        ledger.grantBatch(provider, scopes, expiresAt);
        for (uint256 i; i < scopes.length; ++i) {
            assertTrue(ledger.hasAccess(patient, provider, scopes[i]), "batch scope");
        }
    }

    function test_grantBatch_revertsWhenEmpty() public {
        vm.prank(patient);
        vm.expectRevert(IConsentLedger.ConsentLedgerEmptyBatch.selector);
        ledger.grantBatch(provider, new ScopeId[](0), uint64(block.timestamp + DAY));
    }

    function testFuzz_revoke_meansNoAccess(bytes32 rawScope, uint32 duration) public {
        vm.assume(duration > 0);
        ScopeId s = ScopeId.wrap(rawScope);
        vm.startPrank(patient);
        ledger.grant(provider, s, uint64(block.timestamp) + duration);
        vm.expectEmit(true, true, false, true);
        emit IConsentLedger.AccessRevoked(patient, provider, s);
        ledger.revoke(provider, s);
        vm.stopPrank();
        assertFalse(ledger.hasAccess(patient, provider, s), "revoked");
        (uint64 e, uint64 b,) = ledger.grantOf(patient, provider, s);
        assertEq(e + b, 0, "slot cleared");
    }

    function test_revoke_revertsWithoutGrant() public {
        vm.prank(patient);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerNoGrant.selector, patient, provider, lab));
        ledger.revoke(provider, lab);
    }

    function testFuzz_revokeAll_revokesEveryScopeInOneWrite(bytes32[] memory raw) public {
        vm.assume(raw.length > 0 && raw.length < 30);
        ScopeId[] memory scopes = new ScopeId[](raw.length);
        for (uint256 i; i < raw.length; ++i) {
            scopes[i] = ScopeId.wrap(raw[i]);
        }
        vm.prank(patient);
        ledger.grantBatch(provider, scopes, uint64(block.timestamp + DAY));
        vm.prank(patient);
        ledger.grant(otherProvider, scopes[0], uint64(block.timestamp + DAY));
        nextBlock(12);
        vm.prank(patient);
        ledger.revokeAll(provider);
        for (uint256 i; i < scopes.length; ++i) {
            assertFalse(ledger.hasAccess(patient, provider, scopes[i]), "revoked by revokeAll");
        }
        assertTrue(ledger.hasAccess(patient, otherProvider, scopes[0]), "other provider untouched");
        assertEq(ledger.revokedAllBlock(patient, provider), block.number, "marker");
    }

    function test_revokeAll_winsInsideItsBlock_evenOverALaterGrant() public {
        vm.startPrank(patient);
        ledger.grant(provider, lab, uint64(block.timestamp + DAY));
        ledger.revokeAll(provider);
        ledger.grant(provider, imaging, uint64(block.timestamp + DAY)); // same block, after revokeAll
        vm.stopPrank();
        assertFalse(ledger.hasAccess(patient, provider, lab), "grant before revokeAll");
        assertFalse(ledger.hasAccess(patient, provider, imaging), "grant after revokeAll, same block");
        nextBlock(12);
        vm.prank(patient);
        ledger.grant(provider, imaging, uint64(block.timestamp + DAY));
        assertTrue(ledger.hasAccess(patient, provider, imaging), "grant in a later block is live");
        assertFalse(ledger.hasAccess(patient, provider, lab), "old grant stays dead");
    }

    // ---------------------------------------------------------------------------- authorisation

    function testFuzz_onlyPatientOrGuardian_mayActForPatient(address caller) public {
        vm.assume(caller != patient && caller != guardian);
        vm.prank(patient);
        ledger.appointGuardian(guardian, uint64(block.timestamp + DAY));
        vm.startPrank(caller);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerUnauthorized.selector, patient, caller));
        ledger.grantFor(patient, provider, lab, uint64(block.timestamp + DAY));
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerUnauthorized.selector, patient, caller));
        ledger.revokeAllFor(patient, provider);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerUnauthorized.selector, patient, caller));
        ledger.registerRecordFor(patient, RecordId.wrap(bytes32(uint256(1))), bytes32(0), lab);
        vm.stopPrank();
        // A stranger's own grant is its own business: it never touches the patient's.
        vm.prank(caller);
        ledger.grant(provider, lab, uint64(block.timestamp + DAY));
        assertFalse(ledger.hasAccess(patient, provider, lab), "stranger cannot grant for patient");
    }

    function test_guardian_actsUntilEndDate_thenNoMore() public {
        uint64 until = uint64(block.timestamp + 10 * DAY);
        vm.expectEmit(true, true, false, true);
        emit IConsentLedger.GuardianAppointed(patient, guardian, until);
        vm.prank(patient);
        ledger.appointGuardian(guardian, until);
        assertTrue(ledger.isGuardian(patient, guardian), "guardian");
        vm.expectEmit(true, true, false, true);
        emit IConsentLedger.GuardianActed(patient, guardian, IConsentLedger.grantFor.selector);
        vm.prank(guardian);
        ledger.grantFor(patient, provider, lab, uint64(block.timestamp + 20 * DAY));
        assertTrue(ledger.hasAccess(patient, provider, lab), "granted by guardian");
        vm.warp(until);
        assertFalse(ledger.isGuardian(patient, guardian), "guardian past end date");
        vm.prank(guardian);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerUnauthorized.selector, patient, guardian));
        ledger.revokeFor(patient, provider, lab);
    }

    function test_removeGuardian_endsItsPower() public {
        vm.startPrank(patient);
        ledger.appointGuardian(guardian, uint64(block.timestamp + DAY));
        ledger.removeGuardian(guardian);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerNotGuardian.selector, patient, guardian));
        ledger.removeGuardian(guardian);
        vm.stopPrank();
        vm.prank(guardian);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerUnauthorized.selector, patient, guardian));
        ledger.grantFor(patient, provider, lab, uint64(block.timestamp + DAY));
    }

    function test_appointGuardian_rejectsSelfAndZero() public {
        vm.startPrank(patient);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerInvalidGuardian.selector, patient));
        ledger.appointGuardian(patient, uint64(block.timestamp + DAY));
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerInvalidGuardian.selector, address(0)));
        ledger.appointGuardian(address(0), uint64(block.timestamp + DAY));
        vm.stopPrank();
    }

    // ---------------------------------------------------------------------------- gasless

    function test_grantBySig_relayedByAnyone() public {
        uint64 exp = uint64(block.timestamp + DAY);
        uint256 deadline = block.timestamp + 600;
        bytes memory sig = _grantSig(PATIENT_KEY, patient, provider, lab, exp, 0, deadline);
        vm.prank(relayer);
        ledger.grantBySig(patient, provider, lab, exp, deadline, sig);
        assertTrue(ledger.hasAccess(patient, provider, lab), "granted by signature");
        assertEq(ledger.nonces(patient), 1, "nonce used");
    }

    function testFuzz_grantBySig_nonceNeverReusable(uint8 actions) public {
        actions = uint8(bound(actions, 1, 8));
        uint64 exp = uint64(block.timestamp + DAY);
        uint256 deadline = block.timestamp + 600;
        bytes memory first;
        for (uint256 i; i < actions; ++i) {
            ScopeId s = ScopeId.wrap(bytes32(i));
            bytes memory sig = _grantSig(PATIENT_KEY, patient, provider, s, exp, i, deadline);
            if (i == 0) first = sig;
            ledger.grantBySig(patient, provider, s, exp, deadline, sig);
        }
        assertEq(ledger.nonces(patient), actions, "one nonce per action");
        // Replaying the first signature: the nonce it signed is spent, so it recovers another signer.
        vm.expectRevert();
        ledger.grantBySig(patient, provider, ScopeId.wrap(bytes32(0)), exp, deadline, first);
    }

    function test_grantBySig_replayReverts() public {
        uint64 exp = uint64(block.timestamp + DAY);
        uint256 deadline = block.timestamp + 600;
        bytes memory sig = _grantSig(PATIENT_KEY, patient, provider, lab, exp, 0, deadline);
        ledger.grantBySig(patient, provider, lab, exp, deadline, sig);
        bytes32 digest = keccak256(
            abi.encodePacked(
                "\x19\x01",
                ledger.DOMAIN_SEPARATOR(),
                keccak256(abi.encode(ledger.GRANT_TYPEHASH(), patient, provider, lab, exp, uint256(1), deadline))
            )
        );
        address recovered = ECDSA.recover(digest, sig);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerInvalidSigner.selector, recovered, patient));
        ledger.grantBySig(patient, provider, lab, exp, deadline, sig);
    }

    function test_grantBySig_revertsAfterDeadline() public {
        uint64 exp = uint64(block.timestamp + DAY);
        uint256 deadline = block.timestamp + 600;
        bytes memory sig = _grantSig(PATIENT_KEY, patient, provider, lab, exp, 0, deadline);
        vm.warp(deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerSignatureExpired.selector, deadline, deadline + 1)
        );
        ledger.grantBySig(patient, provider, lab, exp, deadline, sig);
    }

    function test_grantBySig_revertsForAStrangersSignature() public {
        uint64 exp = uint64(block.timestamp + DAY);
        uint256 deadline = block.timestamp + 600;
        bytes memory sig = _grantSig(STRANGER_KEY, patient, provider, lab, exp, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerInvalidSigner.selector, stranger, patient));
        ledger.grantBySig(patient, provider, lab, exp, deadline, sig);
    }

    function test_grantBySig_signatureForAnotherChainOrContract_isRefused() public {
        uint64 exp = uint64(block.timestamp + DAY);
        uint256 deadline = block.timestamp + 600;
        // Signed for a second ledger: valid there, refused here.
        ConsentLedger other = new ConsentLedger(IProviderRegistry(address(registry)));
        bytes32 structHash = keccak256(abi.encode(ledger.GRANT_TYPEHASH(), patient, provider, lab, exp, 0, deadline));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", other.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(PATIENT_KEY, digest);
        bytes memory sig = abi.encodePacked(r, s, v);
        vm.expectRevert();
        ledger.grantBySig(patient, provider, lab, exp, deadline, sig);
        other.grantBySig(patient, provider, lab, exp, deadline, sig);
        assertTrue(other.hasAccess(patient, provider, lab), "valid on its own contract");
        // Signed on this chain, relayed after a fork to another chain id: refused.
        bytes memory sig2 = _grantSig(PATIENT_KEY, patient, provider, imaging, exp, 0, deadline);
        vm.chainId(block.chainid + 1);
        vm.expectRevert();
        ledger.grantBySig(patient, provider, imaging, exp, deadline, sig2);
    }

    function test_grantBatchBySig_and_revokeBySig() public {
        ScopeId[] memory scopes = new ScopeId[](2);
        scopes[0] = lab;
        scopes[1] = imaging;
        uint64 exp = uint64(block.timestamp + DAY);
        uint256 deadline = block.timestamp + 600;
        bytes memory sig = _sign(
            PATIENT_KEY,
            keccak256(
                abi.encode(
                    ledger.GRANT_BATCH_TYPEHASH(),
                    patient,
                    provider,
                    keccak256(abi.encodePacked(lab, imaging)),
                    exp,
                    uint256(0),
                    deadline
                )
            )
        );
        ledger.grantBatchBySig(patient, provider, scopes, exp, deadline, sig);
        assertTrue(ledger.hasAccess(patient, provider, imaging), "batch by signature");
        sig = _sign(
            PATIENT_KEY, keccak256(abi.encode(ledger.REVOKE_TYPEHASH(), patient, provider, lab, uint256(1), deadline))
        );
        ledger.revokeBySig(patient, provider, lab, deadline, sig);
        assertFalse(ledger.hasAccess(patient, provider, lab), "revoked by signature");
        assertTrue(ledger.hasAccess(patient, provider, imaging), "other scope kept");
    }

    function test_registerRecordBySig_registersAndSupersedes() public {
        RecordId first = RecordId.wrap(keccak256("r1"));
        RecordId second = RecordId.wrap(keccak256("r2"));
        uint256 deadline = block.timestamp + 600;
        bytes memory sig = _sign(
            PATIENT_KEY,
            keccak256(
                abi.encode(
                    ledger.REGISTER_RECORD_TYPEHASH(), patient, first, bytes32("c1"), lab, bytes32(0), 0, deadline
                )
            )
        );
        ledger.registerRecordBySig(patient, first, bytes32("c1"), lab, RecordId.wrap(0), deadline, sig);
        sig = _sign(
            PATIENT_KEY,
            keccak256(
                abi.encode(ledger.REGISTER_RECORD_TYPEHASH(), patient, second, bytes32("c2"), lab, first, 1, deadline)
            )
        );
        ledger.registerRecordBySig(patient, second, bytes32("c2"), lab, first, deadline, sig);
        (address owner,, bool superseded) = ledger.recordOf(first);
        assertEq(owner, patient, "owner");
        assertTrue(superseded, "first superseded");
    }

    // ---------------------------------------------------------------------------- records

    function testFuzz_registerRecord_ownedByCaller_neverTwice(bytes32 rawId, bytes32 commitment) public {
        vm.assume(rawId != bytes32(0));
        RecordId id = RecordId.wrap(rawId);
        vm.expectEmit(true, true, false, true);
        emit IConsentLedger.RecordRegistered(patient, id, commitment, lab);
        vm.prank(patient);
        ledger.registerRecord(id, commitment, lab);
        (address owner, uint64 at, bool superseded) = ledger.recordOf(id);
        assertEq(owner, patient, "owner");
        assertEq(at, block.timestamp, "registeredAt");
        assertFalse(superseded, "fresh");
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerRecordExists.selector, id));
        ledger.registerRecord(id, commitment, lab);
    }

    function test_registerRecord_rejectsZeroId() public {
        vm.prank(patient);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerInvalidRecordId.selector, bytes32(0)));
        ledger.registerRecord(RecordId.wrap(0), bytes32("c"), lab);
    }

    /// A stranger's supersede of the patient's record no longer reverts (NotRecordOwner and
    /// UnknownRecord are gone by design, #12): an id that is not the caller's own record names one
    /// of the caller's batch records, so it is retired in the stranger's own namespace only and the
    /// patient's record is untouched. Superseding twice still reverts.
    function test_supersedeRecord_onlyTheOwnersRecord_onlyOnce() public {
        RecordId a = RecordId.wrap(keccak256("a"));
        RecordId b = RecordId.wrap(keccak256("b"));
        RecordId c = RecordId.wrap(keccak256("c"));
        RecordId d = RecordId.wrap(keccak256("d"));
        vm.prank(patient);
        ledger.registerRecord(a, bytes32("ca"), lab);
        vm.prank(stranger);
        ledger.supersedeRecord(a, d, bytes32("cd"), lab);
        (address owner,, bool superseded) = ledger.recordOf(a);
        assertEq(owner, patient, "still the patient's");
        assertFalse(superseded, "a stranger cannot retire the patient's record");
        vm.startPrank(patient);
        vm.expectEmit(true, true, true, true);
        emit IConsentLedger.RecordSuperseded(patient, a, b);
        ledger.supersedeRecord(a, b, bytes32("cb"), lab);
        (, , superseded) = ledger.recordOf(a);
        assertTrue(superseded, "the owner retired it");
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerRecordSuperseded.selector, a));
        ledger.supersedeRecord(a, c, bytes32("cc"), lab);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------------------- emergency

    function test_emergency_revertsWithoutPolicy() public {
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerEmergencyNotAllowed.selector, patient));
        ledger.openEmergencyAccess(patient, 3600, 1);
    }

    function test_emergency_revertsForUnverifiedOrSuspendedProvider() public {
        vm.prank(patient);
        ledger.setEmergencyPolicy(true, 1 days);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerProviderNotVerified.selector, stranger));
        ledger.openEmergencyAccess(patient, 3600, 1);
        registry.suspendProvider(provider);
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerProviderNotVerified.selector, provider));
        ledger.openEmergencyAccess(patient, 3600, 1);
    }

    function testFuzz_emergency_boundedByPolicy_expiresByItself(uint64 maxDuration, uint64 duration) public {
        maxDuration = uint64(bound(maxDuration, 1, 30 days));
        vm.prank(patient);
        ledger.setEmergencyPolicy(true, maxDuration);
        if (duration == 0 || duration > maxDuration) {
            vm.prank(provider);
            vm.expectRevert(
                abi.encodeWithSelector(
                    IConsentLedger.ConsentLedgerInvalidEmergencyDuration.selector, duration, maxDuration
                )
            );
            ledger.openEmergencyAccess(patient, duration, 9);
            return;
        }
        uint64 until = uint64(block.timestamp) + duration;
        vm.expectEmit(true, true, false, true);
        emit IConsentLedger.EmergencyAccessOpened(patient, provider, until, 9, true);
        vm.prank(provider);
        ledger.openEmergencyAccess(patient, duration, 9);
        assertTrue(ledger.hasAccess(patient, provider, scope("any scope at all")), "break-glass covers all");
        assertEq(ledger.accessExpiry(patient, provider, lab), until, "until");
        vm.warp(until);
        assertFalse(ledger.hasAccess(patient, provider, lab), "expired by itself");
    }

    function test_emergency_unboundedPolicy_saturatesInsteadOfOverflowing() public {
        vm.prank(patient);
        ledger.setEmergencyPolicy(true, type(uint64).max);
        vm.prank(provider);
        ledger.openEmergencyAccess(patient, type(uint64).max, 1);
        assertEq(ledger.emergencyAccessUntil(patient, provider), type(uint64).max, "saturated");
        assertTrue(ledger.hasAccess(patient, provider, lab), "open");
    }

    function test_emergency_closedEarlyByGuardian() public {
        vm.startPrank(patient);
        ledger.setEmergencyPolicy(true, 1 days);
        ledger.appointGuardian(guardian, uint64(block.timestamp + 30 days));
        vm.stopPrank();
        vm.prank(provider);
        ledger.openEmergencyAccess(patient, 3600, 2);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerUnauthorized.selector, patient, stranger));
        ledger.closeEmergencyAccess(patient, provider);
        vm.expectEmit(true, true, false, true);
        emit IConsentLedger.EmergencyAccessClosed(patient, provider, guardian, true);
        vm.prank(guardian);
        ledger.closeEmergencyAccess(patient, provider);
        assertFalse(ledger.hasAccess(patient, provider, lab), "closed");
        vm.prank(patient);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerNoEmergencyAccess.selector, patient, provider)
        );
        ledger.closeEmergencyAccess(patient, provider);
    }

    function test_setEmergencyPolicy_allowedNeedsADuration() public {
        vm.prank(patient);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerInvalidEmergencyDuration.selector, 0, 0));
        ledger.setEmergencyPolicy(true, 0);
    }

    // ---------------------------------------------------------------------------- care events

    function test_careEvent_byProviderWithLiveGrant_thenRefusedAfterRevoke() public {
        vm.prank(patient);
        ledger.grant(provider, lab, uint64(block.timestamp + DAY));
        vm.expectEmit(true, true, true, true);
        emit IConsentLedger.CareEventLogged(
            patient, provider, CareEventKind.VisitReported, provider, bytes32("r"), false
        );
        vm.prank(provider);
        ledger.logCareEvent(patient, CareEventKind.VisitReported, bytes32("r"), provider, lab);
        vm.prank(patient);
        ledger.revoke(provider, lab);
        vm.prank(provider);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerCareEventNotAllowed.selector, patient, provider)
        );
        ledger.logCareEvent(patient, CareEventKind.VisitReported, bytes32("r"), provider, lab);
    }

    function testFuzz_careEvent_byUnrelatedAddress_reverts(address caller, uint8 kind) public {
        vm.assume(caller != patient);
        CareEventKind k = CareEventKind(bound(kind, 0, 7));
        vm.prank(caller);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerCareEventNotAllowed.selector, patient, caller)
        );
        ledger.logCareEvent(patient, k, bytes32("x"), caller, lab);
    }

    function test_careEvent_underOpenRequest_andFlaggedUnderEmergency() public {
        vm.prank(provider);
        ledger.requestAccess(patient, bytes32("what and why"));
        assertEq(ledger.requestOpenUntil(patient, provider), block.timestamp + ledger.REQUEST_TTL(), "open");
        vm.prank(provider);
        ledger.logCareEvent(patient, CareEventKind.AccessRequested, bytes32("q"), provider, ScopeId.wrap(0));
        vm.prank(patient);
        ledger.closeRequest(patient, provider);
        vm.prank(patient);
        ledger.setEmergencyPolicy(true, 1 days);
        vm.prank(provider);
        ledger.openEmergencyAccess(patient, 600, 3);
        vm.expectEmit(true, true, true, true);
        emit IConsentLedger.CareEventLogged(patient, provider, CareEventKind.DataSent, provider, bytes32("d"), true);
        vm.prank(provider);
        ledger.logCareEvent(patient, CareEventKind.DataSent, bytes32("d"), provider, ScopeId.wrap(0));
    }

    function test_requestAccess_onlyVerifiedProviders() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerProviderNotVerified.selector, stranger));
        ledger.requestAccess(patient, bytes32("spam"));
    }

    function test_grant_answersTheOpenRequest_soARevokeLeavesNoRequestAuthority() public {
        vm.prank(provider);
        ledger.requestAccess(patient, bytes32("q"));
        vm.expectEmit(true, true, false, true);
        emit IConsentLedger.AccessRequestClosed(patient, provider, patient);
        vm.prank(patient);
        ledger.grant(provider, lab, uint64(block.timestamp + 1 days));
        assertEq(ledger.requestOpenUntil(patient, provider), 0, "answered by the grant");
        vm.prank(patient);
        ledger.revoke(provider, lab);
        vm.prank(provider);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerCareEventNotAllowed.selector, patient, provider)
        );
        ledger.logCareEvent(patient, CareEventKind.PrescriptionIssued, bytes32("rx"), provider, ScopeId.wrap(0));
    }

    function test_grantBatch_answersTheOpenRequest_andOtherProvidersKeepTheirs() public {
        vm.prank(provider);
        ledger.requestAccess(patient, bytes32("q"));
        registry.addProvider(otherProvider, UMBRAL_KEY, keccak256("credentials of the other"));
        vm.prank(otherProvider);
        ledger.requestAccess(patient, bytes32("q2"));
        ScopeId[] memory scopes = new ScopeId[](2);
        scopes[0] = lab;
        scopes[1] = imaging;
        vm.prank(patient);
        ledger.grantBatch(provider, scopes, uint64(block.timestamp + 1 days));
        assertEq(ledger.requestOpenUntil(patient, provider), 0, "answered by the batch");
        assertEq(
            ledger.requestOpenUntil(patient, otherProvider), block.timestamp + ledger.REQUEST_TTL(), "not answered"
        );
    }

    function test_revokeAll_closesRequestAndEmergency() public {
        vm.prank(patient);
        ledger.setEmergencyPolicy(true, 1 days);
        vm.startPrank(provider);
        ledger.requestAccess(patient, bytes32("q"));
        ledger.openEmergencyAccess(patient, 600, 3);
        vm.stopPrank();
        vm.prank(patient);
        ledger.revokeAll(provider);
        assertFalse(ledger.hasAccess(patient, provider, lab), "no emergency after revokeAll");
        vm.prank(provider);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerCareEventNotAllowed.selector, patient, provider)
        );
        ledger.logCareEvent(patient, CareEventKind.AdviceRequested, bytes32("q"), provider, lab);
    }

    function bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return lo + (x % (hi - lo + 1));
    }
}
