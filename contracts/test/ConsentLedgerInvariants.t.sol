// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ConsentLedger} from "../ConsentLedger.sol";
import {ScopeId} from "../types/Ids.sol";
import {Vm} from "./utils/Cheats.sol";
import {KizunaTest} from "./utils/KizunaTest.t.sol";

/// @notice Drives one patient's consent with random sequences of grant, batch grant, revoke,
///         revokeAll and time/block jumps, and keeps a model of the *documented* rules:
///         a grant gives access until its expiry; revoke and revokeAll take it away; a grant made
///         in the block of a revokeAll of the same provider is dead.
contract ConsentHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    struct Expected {
        uint64 expiresAt;
        bool revoked;
    }

    ConsentLedger public immutable ledger;
    address public immutable patient;
    address[2] public providers;
    ScopeId[3] public scopes;

    mapping(uint256 provider => mapping(uint256 scope => Expected)) internal _model;
    mapping(uint256 provider => uint256 blockNumber) internal _revokedAllIn;
    uint256 public calls;

    constructor(ConsentLedger ledger_, address patient_, address providerA, address providerB) {
        ledger = ledger_;
        patient = patient_;
        providers = [providerA, providerB];
        scopes = [ScopeId.wrap(keccak256("s0")), ScopeId.wrap(keccak256("s1")), ScopeId.wrap(keccak256("s2"))];
    }

    function grant(uint256 p, uint256 s, uint32 duration) external {
        (p, s) = (p % 2, s % 3);
        uint64 expiresAt = uint64(block.timestamp) + 1 + (duration % 30 days);
        vm.prank(patient);
        ledger.grant(providers[p], scopes[s], expiresAt);
        _model[p][s] = Expected(expiresAt, _revokedAllIn[p] == block.number);
        ++calls;
    }

    function grantBatch(uint256 p, uint32 duration) external {
        p %= 2;
        uint64 expiresAt = uint64(block.timestamp) + 1 + (duration % 30 days);
        ScopeId[] memory batch = new ScopeId[](3);
        (batch[0], batch[1], batch[2]) = (scopes[0], scopes[1], scopes[2]);
        vm.prank(patient);
        ledger.grantBatch(providers[p], batch, expiresAt);
        for (uint256 s; s < 3; ++s) {
            _model[p][s] = Expected(expiresAt, _revokedAllIn[p] == block.number);
        }
        ++calls;
    }

    function revoke(uint256 p, uint256 s) external {
        (p, s) = (p % 2, s % 3);
        (, uint64 grantedBlock,) = ledger.grantOf(patient, providers[p], scopes[s]);
        if (grantedBlock == 0) return; // nothing stored: revoke would revert (tested elsewhere)
        vm.prank(patient);
        ledger.revoke(providers[p], scopes[s]);
        _model[p][s].revoked = true;
        ++calls;
    }

    function revokeAll(uint256 p) external {
        p %= 2;
        vm.prank(patient);
        ledger.revokeAll(providers[p]);
        for (uint256 s; s < 3; ++s) {
            _model[p][s].revoked = true;
        }
        _revokedAllIn[p] = block.number;
        ++calls;
    }

    function advance(uint32 seconds_, bool newBlock) external {
        if (newBlock) vm.roll(block.number + 1);
        vm.warp(block.timestamp + (seconds_ % 10 days));
    }

    function expected(uint256 p, uint256 s) external view returns (bool live, uint64 expiresAt) {
        Expected memory e = _model[p][s];
        live = !e.revoked && e.expiresAt > block.timestamp;
        expiresAt = live ? e.expiresAt : 0;
    }
}

contract ConsentLedgerInvariantsTest is KizunaTest {
    ConsentHandler internal handler;

    function setUp() public override {
        super.setUp();
        handler = new ConsentHandler(ledger, patient, provider, otherProvider);
    }

    /// @dev Only the handler is called by the invariant fuzzer (forge reads this by selector).
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function invariant_everyViewAgreesWithTheModel() public view {
        for (uint256 p; p < 2; ++p) {
            for (uint256 s; s < 3; ++s) {
                (bool live, uint64 expiresAt) = handler.expected(p, s);
                address prov = handler.providers(p);
                ScopeId scopeId = handler.scopes(s);
                if (ledger.hasAccess(patient, prov, scopeId) != live) revert("hasAccess disagrees with the model");
                assertEq(ledger.accessExpiry(patient, prov, scopeId), expiresAt, "accessExpiry");
                (,, bool stored) = ledger.grantOf(patient, prov, scopeId);
                if (stored != live) revert("grantOf.live disagrees with the model");
            }
        }
    }

    function invariant_nobodyElseEverGainsAccess() public view {
        for (uint256 s; s < 3; ++s) {
            assertFalse(ledger.hasAccess(patient, stranger, handler.scopes(s)), "stranger");
            assertFalse(ledger.hasAccess(stranger, provider, handler.scopes(s)), "other patient");
        }
    }
}
