// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {IProviderRegistry} from "../interfaces/IProviderRegistry.sol";
import {KizunaTest} from "./utils/KizunaTest.t.sol";

contract ProviderRegistryTest is KizunaTest {
    function test_addProvider_recordsAnActiveEntry() public view {
        (bytes memory key, bytes32 credential, bool active, uint64 at) = registry.providerOf(provider);
        assertEq(key, UMBRAL_KEY, "umbral key");
        assertEq(credential, keccak256("credentials of provider"), "credential");
        assertTrue(active, "active");
        assertEq(at, block.timestamp, "registeredAt");
        assertTrue(registry.isActiveProvider(provider), "isActiveProvider");
        assertTrue(registry.isRegistered(provider), "isRegistered");
    }

    function testFuzz_addProvider_onlyRegistrars(address caller) public {
        vm.assume(caller != admin);
        bytes32 role = registry.REGISTRAR_ROLE(); // read before the prank: a call would consume it
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role));
        registry.addProvider(otherProvider, UMBRAL_KEY, bytes32("c"));
    }

    function test_addProvider_rejectsTheZeroAddress() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.ProviderRegistryInvalidProvider.selector, address(0)));
        registry.addProvider(address(0), UMBRAL_KEY, bytes32("c"));
    }

    function test_addProvider_twiceReverts() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.ProviderRegistryAlreadyRegistered.selector, provider));
        registry.addProvider(provider, UMBRAL_KEY, bytes32("c"));
    }

    function testFuzz_addProvider_rejectsMalformedUmbralKeys(bytes memory key) public {
        vm.assume(key.length != 33 || (key[0] != 0x02 && key[0] != 0x03));
        bytes1 prefix = key.length > 0 ? key[0] : bytes1(0);
        vm.expectRevert(
            abi.encodeWithSelector(IProviderRegistry.ProviderRegistryInvalidUmbralKey.selector, key.length, prefix)
        );
        registry.addProvider(otherProvider, key, bytes32("c"));
    }

    function test_suspendAndReinstate() public {
        vm.expectEmit(true, true, false, true);
        emit IProviderRegistry.ProviderSuspended(provider, admin);
        registry.suspendProvider(provider);
        assertFalse(registry.isActiveProvider(provider), "suspended");
        assertTrue(registry.isRegistered(provider), "still registered");
        vm.expectRevert(
            abi.encodeWithSelector(IProviderRegistry.ProviderRegistryStatusUnchanged.selector, provider, false)
        );
        registry.suspendProvider(provider);
        registry.reinstateProvider(provider);
        assertTrue(registry.isActiveProvider(provider), "reinstated");
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.ProviderRegistryUnknownProvider.selector, stranger));
        registry.suspendProvider(stranger);
    }

    function test_rotateUmbralKey_byTheProviderOnly() public {
        bytes memory fresh = hex"03000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        vm.expectEmit(true, false, false, true);
        emit IProviderRegistry.UmbralKeyRotated(provider, fresh);
        vm.prank(provider);
        registry.rotateUmbralKey(fresh);
        (bytes memory key,,,) = registry.providerOf(provider);
        assertEq(key, fresh, "rotated");
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.ProviderRegistryUnknownProvider.selector, stranger));
        registry.rotateUmbralKey(fresh);
    }
}
