// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IConsentLedger} from "../interfaces/IConsentLedger.sol";
import {CareEventKind, ScopeId} from "../types/Ids.sol";
import {KizunaTest} from "./utils/KizunaTest.t.sol";

/// @notice The data-request care event kinds (8-12): appended, so the earlier kinds keep their
///         numbers. The patient asks (`logCareEvent` DataRequested), which opens the request for
///         the provider it names; that provider, and nobody else, answers it with
///         `answerDataRequest` (grant or none) until it is fulfilled or declined.
contract CareEventDataRequestsTest is KizunaTest {
    ScopeId internal lab;
    bytes32 internal constant ASK = bytes32("ask");

    function setUp() public override {
        super.setUp();
        lab = scope("Observation:laboratory");
    }

    function _ask(address to, bytes32 requestId) internal {
        vm.prank(patient);
        ledger.logCareEvent(patient, CareEventKind.DataRequested, requestId, to, ScopeId.wrap(0));
    }

    function test_kindNumbers_areAppended() public pure {
        assertEq(uint256(CareEventKind.DataSent), 7, "existing kinds keep their numbers");
        assertEq(uint256(CareEventKind.DataRequested), 8, "DataRequested");
        assertEq(uint256(CareEventKind.DataRequestAcknowledged), 9, "DataRequestAcknowledged");
        assertEq(uint256(CareEventKind.DataRequestFulfilledInPart), 10, "DataRequestFulfilledInPart");
        assertEq(uint256(CareEventKind.DataRequestFulfilled), 11, "DataRequestFulfilled");
        assertEq(uint256(CareEventKind.DataRequestDeclined), 12, "DataRequestDeclined");
    }

    function test_patientAsks_opensTheRequestForTheNamedProvider() public {
        vm.expectEmit(true, true, true, true);
        emit IConsentLedger.CareEventLogged(patient, provider, CareEventKind.DataRequested, patient, ASK, false);
        _ask(provider, ASK);
        (address to, bool closed) = ledger.dataRequestOf(patient, ASK);
        assertEq(to, provider, "addressed to the named provider");
        assertFalse(closed, "open");
        (to,) = ledger.dataRequestOf(stranger, ASK);
        assertEq(to, address(0), "another patient's namespace is untouched");
    }

    function test_providerWithoutGrant_answersItsRequest_andGetsNoAccess() public {
        _ask(provider, ASK);
        for (uint8 k = 9; k <= 11; k++) {
            vm.expectEmit(true, true, true, true);
            emit IConsentLedger.CareEventLogged(patient, provider, CareEventKind(k), provider, bytes32(uint256(k)), false);
            vm.expectEmit(true, true, false, true);
            emit IConsentLedger.DataRequestAnswered(patient, ASK, bytes32(uint256(k)));
            vm.prank(provider);
            ledger.answerDataRequest(patient, ASK, CareEventKind(k), bytes32(uint256(k)));
        }
        (, bool closed) = ledger.dataRequestOf(patient, ASK);
        assertTrue(closed, "fulfilled closes it");
        assertFalse(ledger.hasAccess(patient, provider, lab), "answering gives no read access");
        assertEq(ledger.accessExpiry(patient, provider, ScopeId.wrap(ASK)), 0, "not even on a scope named like the id");
        // The request is no care authority for anything else.
        vm.prank(provider);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerCareEventNotAllowed.selector, patient, provider)
        );
        ledger.logCareEvent(patient, CareEventKind.VisitReported, bytes32("r"), provider, ScopeId.wrap(ASK));
    }

    function test_anotherProvider_cannotAnswer() public {
        _ask(provider, ASK);
        // Even with a live grant of the patient: the request names one provider.
        vm.prank(patient);
        ledger.grant(otherProvider, lab, uint64(block.timestamp + 1 days));
        vm.prank(otherProvider);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerDataRequestNotOpen.selector, patient, ASK, otherProvider)
        );
        ledger.answerDataRequest(patient, ASK, CareEventKind.DataRequestDeclined, bytes32("no"));
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerDataRequestNotOpen.selector, patient, ASK, stranger)
        );
        ledger.answerDataRequest(patient, ASK, CareEventKind.DataRequestFulfilled, bytes32("yes"));
        (, bool closed) = ledger.dataRequestOf(patient, ASK);
        assertFalse(closed, "still open for the named provider");
    }

    function test_noAnswer_afterDecline_orFulfil() public {
        _ask(provider, ASK);
        vm.prank(provider);
        ledger.answerDataRequest(patient, ASK, CareEventKind.DataRequestDeclined, bytes32("no"));
        for (uint8 k = 9; k <= 12; k++) {
            vm.prank(provider);
            vm.expectRevert(
                abi.encodeWithSelector(IConsentLedger.ConsentLedgerDataRequestNotOpen.selector, patient, ASK, provider)
            );
            ledger.answerDataRequest(patient, ASK, CareEventKind(k), bytes32(uint256(k)));
        }
        bytes32 second = bytes32("ask 2");
        _ask(provider, second);
        vm.prank(provider);
        ledger.answerDataRequest(patient, second, CareEventKind.DataRequestFulfilled, bytes32("all"));
        vm.prank(provider);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerDataRequestNotOpen.selector, patient, second, provider)
        );
        ledger.answerDataRequest(patient, second, CareEventKind.DataRequestFulfilledInPart, bytes32("more"));
    }

    function test_answerFor_anotherRequestOrPatient_isRefused() public {
        // An answer names its request: the same call aimed at an id the patient never used, or
        // at another patient with the same id, finds no open request for this provider.
        _ask(provider, ASK);
        vm.prank(provider);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentLedger.ConsentLedgerDataRequestNotOpen.selector, patient, bytes32("other"), provider
            )
        );
        ledger.answerDataRequest(patient, bytes32("other"), CareEventKind.DataRequestFulfilled, bytes32("x"));
        vm.prank(provider);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerDataRequestNotOpen.selector, stranger, ASK, provider)
        );
        ledger.answerDataRequest(stranger, ASK, CareEventKind.DataRequestFulfilled, bytes32("x"));
    }

    function test_requestId_once_perPatient_noCollisionAcrossPatients() public {
        _ask(provider, ASK);
        // The same patient cannot reuse the id, not even once it is closed (a reopened id would
        // let a closed request's answers start again).
        vm.prank(patient);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerDataRequestExists.selector, patient, ASK)
        );
        ledger.logCareEvent(patient, CareEventKind.DataRequested, ASK, otherProvider, ScopeId.wrap(0));
        vm.prank(provider);
        ledger.answerDataRequest(patient, ASK, CareEventKind.DataRequestDeclined, bytes32("no"));
        vm.prank(patient);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerDataRequestExists.selector, patient, ASK)
        );
        ledger.logCareEvent(patient, CareEventKind.DataRequested, ASK, provider, ScopeId.wrap(0));
        // Another patient's request with the same id is its own: it neither blocks nor opens this one.
        vm.prank(stranger);
        ledger.logCareEvent(stranger, CareEventKind.DataRequested, ASK, otherProvider, ScopeId.wrap(0));
        vm.prank(otherProvider);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerDataRequestNotOpen.selector, patient, ASK, otherProvider)
        );
        ledger.answerDataRequest(patient, ASK, CareEventKind.DataRequestFulfilled, bytes32("x"));
        vm.prank(otherProvider);
        ledger.answerDataRequest(stranger, ASK, CareEventKind.DataRequestFulfilled, bytes32("x"));
    }

    function test_onlyThePatientOrAGuardianAsks() public {
        // The provider cannot open a request to itself, even with a live grant.
        vm.prank(patient);
        ledger.grant(provider, lab, uint64(block.timestamp + 1 days));
        vm.prank(provider);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerCareEventNotAllowed.selector, patient, provider)
        );
        ledger.logCareEvent(patient, CareEventKind.DataRequested, ASK, provider, lab);
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerCareEventNotAllowed.selector, patient, stranger)
        );
        ledger.logCareEvent(patient, CareEventKind.DataRequested, ASK, provider, ScopeId.wrap(0));
        // A live guardian asks for the patient.
        vm.prank(patient);
        ledger.appointGuardian(guardian, uint64(block.timestamp + 1 days));
        vm.prank(guardian);
        ledger.logCareEvent(patient, CareEventKind.DataRequested, ASK, provider, ScopeId.wrap(0));
        (address to,) = ledger.dataRequestOf(patient, ASK);
        assertEq(to, provider, "the guardian's request is the patient's");
        // Addressed to nobody, or to the patient: refused.
        vm.prank(patient);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerInvalidProvider.selector, address(0)));
        ledger.logCareEvent(patient, CareEventKind.DataRequested, bytes32("x"), address(0), ScopeId.wrap(0));
        vm.prank(patient);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerInvalidProvider.selector, patient));
        ledger.logCareEvent(patient, CareEventKind.DataRequested, bytes32("x"), patient, ScopeId.wrap(0));
    }

    function test_kinds_goThroughTheirOwnFunction() public {
        _ask(provider, ASK);
        vm.prank(patient);
        ledger.grant(provider, lab, uint64(block.timestamp + 1 days));
        // An answer kind through logCareEvent: refused even under a grant (it would bypass the
        // request's state), and for the patient too.
        for (uint8 k = 9; k <= 12; k++) {
            vm.prank(provider);
            vm.expectRevert(
                abi.encodeWithSelector(IConsentLedger.ConsentLedgerWrongCareEventKind.selector, CareEventKind(k))
            );
            ledger.logCareEvent(patient, CareEventKind(k), bytes32("x"), provider, lab);
        }
        vm.prank(patient);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentLedger.ConsentLedgerWrongCareEventKind.selector, CareEventKind.DataRequestFulfilled
            )
        );
        ledger.logCareEvent(patient, CareEventKind.DataRequestFulfilled, bytes32("x"), provider, lab);
        // Anything but an answer through answerDataRequest: refused.
        for (uint8 k = 0; k <= 8; k++) {
            vm.prank(provider);
            vm.expectRevert(
                abi.encodeWithSelector(IConsentLedger.ConsentLedgerWrongCareEventKind.selector, CareEventKind(k))
            );
            ledger.answerDataRequest(patient, ASK, CareEventKind(k), bytes32("x"));
        }
        (, bool closed) = ledger.dataRequestOf(patient, ASK);
        assertFalse(closed, "nothing refused changed the request");
    }

    function test_kindPastTheLast_isRefused() public {
        _ask(provider, ASK);
        vm.prank(patient);
        (bool ok,) = address(ledger)
            .call(
                abi.encodeWithSelector(
                    IConsentLedger.logCareEvent.selector, patient, uint8(13), bytes32("x"), provider, bytes32(0)
                )
            );
        assertFalse(ok, "kind 13 does not exist");
        vm.prank(provider);
        (ok,) = address(ledger)
            .call(abi.encodeWithSelector(IConsentLedger.answerDataRequest.selector, patient, ASK, uint8(13), bytes32("x")));
        assertFalse(ok, "kind 13 does not exist");
    }

    function testFuzz_onlyTheNamedProviderAnswers(address caller, bytes32 requestId) public {
        vm.assume(caller != provider);
        _ask(provider, requestId);
        vm.prank(caller);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerDataRequestNotOpen.selector, patient, requestId, caller)
        );
        ledger.answerDataRequest(patient, requestId, CareEventKind.DataRequestFulfilled, bytes32("x"));
    }
}
