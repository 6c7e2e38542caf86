// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IConsentLedger} from "../interfaces/IConsentLedger.sol";
import {CareEventKind, ScopeId} from "../types/Ids.sol";
import {KizunaTest} from "./utils/KizunaTest.t.sol";

/// @notice The data-request care event kinds (8-12): appended, so the earlier kinds keep their
///         numbers; the patient asks, a provider with care authority answers, nobody else.
contract CareEventDataRequestsTest is KizunaTest {
    ScopeId internal lab;

    function setUp() public override {
        super.setUp();
        lab = scope("Observation:laboratory");
    }

    function test_kindNumbers_areAppended() public pure {
        assertEq(uint256(CareEventKind.DataSent), 7, "existing kinds keep their numbers");
        assertEq(uint256(CareEventKind.DataRequested), 8, "DataRequested");
        assertEq(uint256(CareEventKind.DataRequestAcknowledged), 9, "DataRequestAcknowledged");
        assertEq(uint256(CareEventKind.DataRequestFulfilledInPart), 10, "DataRequestFulfilledInPart");
        assertEq(uint256(CareEventKind.DataRequestFulfilled), 11, "DataRequestFulfilled");
        assertEq(uint256(CareEventKind.DataRequestDeclined), 12, "DataRequestDeclined");
    }

    function test_patientAsks_providerWithGrantAnswers() public {
        vm.expectEmit(true, true, true, true);
        emit IConsentLedger.CareEventLogged(
            patient, provider, CareEventKind.DataRequested, patient, bytes32("ask"), false
        );
        vm.prank(patient);
        ledger.logCareEvent(patient, CareEventKind.DataRequested, bytes32("ask"), provider, ScopeId.wrap(0));

        vm.prank(patient);
        ledger.grant(provider, lab, uint64(block.timestamp + 1 days));
        for (uint8 k = 9; k <= 12; k++) {
            vm.expectEmit(true, true, true, true);
            emit IConsentLedger.CareEventLogged(
                patient, provider, CareEventKind(k), provider, bytes32(uint256(k)), false
            );
            vm.prank(provider);
            ledger.logCareEvent(patient, CareEventKind(k), bytes32(uint256(k)), provider, lab);
        }
    }

    function test_providerWithoutAuthority_cannotAnswer() public {
        vm.prank(patient);
        ledger.logCareEvent(patient, CareEventKind.DataRequested, bytes32("ask"), otherProvider, ScopeId.wrap(0));
        vm.prank(otherProvider);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerCareEventNotAllowed.selector, patient, otherProvider)
        );
        ledger.logCareEvent(patient, CareEventKind.DataRequestDeclined, bytes32("no"), otherProvider, lab);
    }

    function test_kindPastTheLast_isRefused() public {
        vm.prank(patient);
        (bool ok,) = address(ledger)
            .call(
                abi.encodeWithSelector(
                    IConsentLedger.logCareEvent.selector, patient, uint8(13), bytes32("x"), provider, bytes32(0)
                )
            );
        assertFalse(ok, "kind 13 does not exist");
    }
}
