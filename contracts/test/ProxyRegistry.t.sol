// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {ProxyRegistry} from "../ProxyRegistry.sol";
import {IProxyRegistry} from "../interfaces/IProxyRegistry.sol";
import {KizunaTest} from "./utils/KizunaTest.t.sol";

contract ProxyRegistryTest is KizunaTest {
    ProxyRegistry internal proxies;
    address internal nodeA = address(0xA0DE1);
    address internal nodeB = address(0xA0DE2);
    bytes internal constant NODE_KEY = hex"03aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899";

    event ProxyNodeAdded(address indexed node, address indexed registrar, string endpoint, bytes verifyingKey);

    function setUp() public override {
        super.setUp();
        proxies = new ProxyRegistry(admin, admin);
        proxies.addNode(nodeA, "http://127.0.0.1:8801", NODE_KEY);
    }

    function test_addNode_recordsAnActiveEntryAndListsIt() public {
        (string memory endpoint, bytes memory key, bool active, uint64 at) = proxies.nodeOf(nodeA);
        assertEq(bytes(endpoint), bytes("http://127.0.0.1:8801"), "endpoint");
        assertEq(key, NODE_KEY, "verifying key");
        assertTrue(active, "active");
        assertEq(at, block.timestamp, "registeredAt");
        assertTrue(proxies.isActiveNode(nodeA), "isActiveNode");
        vm.expectEmit(true, true, false, true);
        emit ProxyNodeAdded(nodeB, admin, "https://b.example", NODE_KEY);
        proxies.addNode(nodeB, "https://b.example", NODE_KEY);
        address[] memory listed = proxies.nodes();
        assertEq(listed.length, 2, "two nodes");
        assertEq(listed[0], nodeA, "first");
        assertEq(listed[1], nodeB, "second");
    }

    function testFuzz_addNode_onlyRegistrars(address caller) public {
        vm.assume(caller != admin);
        bytes32 role = proxies.REGISTRAR_ROLE();
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role));
        proxies.addNode(nodeB, "http://b", NODE_KEY);
    }

    function test_addNode_refusesZeroTwiceBadKeyAndBadEndpoint() public {
        vm.expectRevert(abi.encodeWithSelector(IProxyRegistry.ProxyRegistryInvalidNode.selector, address(0)));
        proxies.addNode(address(0), "http://x", NODE_KEY);
        vm.expectRevert(abi.encodeWithSelector(IProxyRegistry.ProxyRegistryAlreadyRegistered.selector, nodeA));
        proxies.addNode(nodeA, "http://x", NODE_KEY);
        vm.expectRevert(abi.encodeWithSelector(IProxyRegistry.ProxyRegistryInvalidVerifyingKey.selector, 2, bytes1(0x04)));
        proxies.addNode(nodeB, "http://x", hex"04aa");
        vm.expectRevert(abi.encodeWithSelector(IProxyRegistry.ProxyRegistryInvalidEndpoint.selector, 0));
        proxies.addNode(nodeB, "", NODE_KEY);
    }

    function test_suspendAndReinstate() public {
        proxies.suspendNode(nodeA);
        assertFalse(proxies.isActiveNode(nodeA), "suspended");
        vm.expectRevert(abi.encodeWithSelector(IProxyRegistry.ProxyRegistryStatusUnchanged.selector, nodeA, false));
        proxies.suspendNode(nodeA);
        proxies.reinstateNode(nodeA);
        assertTrue(proxies.isActiveNode(nodeA), "reinstated");
        vm.expectRevert(abi.encodeWithSelector(IProxyRegistry.ProxyRegistryUnknownNode.selector, nodeB));
        proxies.suspendNode(nodeB);
    }

    function test_suspend_onlyRegistrars() public {
        bytes32 role = proxies.REGISTRAR_ROLE();
        vm.prank(nodeA);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, nodeA, role));
        proxies.suspendNode(nodeA);
    }

    function test_setEndpoint_byTheNodeOnly() public {
        vm.prank(nodeA);
        proxies.setEndpoint("https://a.example");
        (string memory endpoint,,,) = proxies.nodeOf(nodeA);
        assertEq(bytes(endpoint), bytes("https://a.example"), "moved");
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IProxyRegistry.ProxyRegistryUnknownNode.selector, stranger));
        proxies.setEndpoint("https://evil.example");
    }
}
