// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Vm} from "./Cheats.sol";

import {AccessLog} from "../../AccessLog.sol";
import {ConsentLedger} from "../../ConsentLedger.sol";
import {ProviderRegistry} from "../../ProviderRegistry.sol";
import {IProviderRegistry} from "../../interfaces/IProviderRegistry.sol";
import {ScopeId} from "../../types/Ids.sol";

/// @dev Base of Kizuna's Solidity tests (run by `forge test` and `npx hardhat test solidity`): the
///      deployed contracts, named actors, and the few assertions the tests need (npm's forge-std
///      is unusable here, see Cheats.sol). A failed assertion reverts: a failed test.
abstract contract KizunaTest {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint256 internal constant PATIENT_KEY = 0xA11CE;
    uint256 internal constant GUARDIAN_KEY = 0x6A4D;
    uint256 internal constant PROVIDER_KEY = 0xD0C;
    uint256 internal constant OTHER_PROVIDER_KEY = 0xD0C2;
    uint256 internal constant STRANGER_KEY = 0xBAD;

    address internal admin = address(this);
    address internal patient;
    address internal guardian;
    address internal provider;
    address internal otherProvider;
    address internal stranger;
    address internal relayer = address(0x5E1A7);
    address internal service = address(0x5E5F1CE);

    ProviderRegistry internal registry;
    ConsentLedger internal ledger;
    AccessLog internal accessLog;

    bytes internal constant UMBRAL_KEY = hex"02aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899";

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        vm.roll(100);
        patient = vm.addr(PATIENT_KEY);
        guardian = vm.addr(GUARDIAN_KEY);
        provider = vm.addr(PROVIDER_KEY);
        otherProvider = vm.addr(OTHER_PROVIDER_KEY);
        stranger = vm.addr(STRANGER_KEY);
        registry = new ProviderRegistry(admin, admin);
        ledger = new ConsentLedger(IProviderRegistry(address(registry)));
        accessLog = new AccessLog(admin, service);
        registry.addProvider(provider, UMBRAL_KEY, keccak256("credentials of provider"));
    }

    function scope(string memory label) internal pure returns (ScopeId) {
        return ScopeId.wrap(keccak256(bytes(label)));
    }

    /// @dev Advances to the next block, `dt` seconds later.
    function nextBlock(uint256 dt) internal {
        vm.roll(block.number + 1);
        vm.warp(block.timestamp + dt);
    }

    function assertTrue(bool value, string memory what) internal pure {
        if (!value) revert(string.concat("expected true: ", what));
    }

    function assertFalse(bool value, string memory what) internal pure {
        if (value) revert(string.concat("expected false: ", what));
    }

    function assertEq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": ", vm_toString(a), " != ", vm_toString(b)));
    }

    function assertEq(address a, address b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": addresses differ"));
    }

    function assertEq(bytes32 a, bytes32 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": bytes32 differ"));
    }

    function assertEq(bytes memory a, bytes memory b, string memory what) internal pure {
        if (keccak256(a) != keccak256(b)) revert(string.concat(what, ": bytes differ"));
    }

    function vm_toString(uint256 value) private pure returns (string memory) {
        if (value == 0) return "0";
        bytes memory digits;
        while (value != 0) {
            digits = abi.encodePacked(bytes1(uint8(48 + (value % 10))), digits);
            value /= 10;
        }
        return string(digits);
    }
}
