// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {IAccessLog} from "../interfaces/IAccessLog.sol";
import {KizunaTest} from "./utils/KizunaTest.t.sol";

contract AccessLogTest is KizunaTest {
    function _leaf(uint256 i) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode("receipt", i))));
    }

    function _parent(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encodePacked(a, b)) : keccak256(abi.encodePacked(b, a));
    }

    /// @dev A 4-leaf tree: root and the proof of leaf `i`.
    function _tree(uint256 salt, uint256 i) internal pure returns (bytes32 root, bytes32 leaf, bytes32[] memory proof) {
        bytes32[4] memory leaves = [_leaf(salt), _leaf(salt + 1), _leaf(salt + 2), _leaf(salt + 3)];
        bytes32 left = _parent(leaves[0], leaves[1]);
        bytes32 right = _parent(leaves[2], leaves[3]);
        root = _parent(left, right);
        leaf = leaves[i];
        proof = new bytes32[](2);
        proof[0] = leaves[i ^ 1];
        proof[1] = i < 2 ? right : left;
    }

    function testFuzz_anchor_thenEveryReceiptVerifies(uint256 salt, uint8 index) public {
        salt = salt % type(uint128).max;
        uint256 i = index % 4;
        (bytes32 root, bytes32 leaf, bytes32[] memory proof) = _tree(salt, i);
        assertFalse(accessLog.verifyReceipt(root, leaf, proof), "not anchored yet");
        vm.expectEmit(true, true, true, true);
        emit IAccessLog.ReceiptRootAnchored(0, root, service, 4, uint64(block.timestamp - 60), uint64(block.timestamp));
        vm.prank(service);
        accessLog.anchor(root, 4, uint64(block.timestamp - 60), uint64(block.timestamp));
        assertTrue(accessLog.verifyReceipt(root, leaf, proof), "receipt verifies");
        assertFalse(accessLog.verifyReceipt(root, _leaf(salt + 9), proof), "foreign receipt");
        proof[0] = bytes32(uint256(proof[0]) ^ 1);
        assertFalse(accessLog.verifyReceipt(root, leaf, proof), "altered proof");
        (bool anchored, uint64 batchIndex, uint64 count,,) = accessLog.batchOf(root);
        assertTrue(anchored, "anchored");
        assertEq(batchIndex, 0, "index");
        assertEq(count, 4, "count");
    }

    function testFuzz_anchor_onlyTheService(address caller) public {
        vm.assume(caller != service);
        bytes32 role = accessLog.ANCHOR_ROLE(); // read before the prank: a call would consume it
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role));
        accessLog.anchor(bytes32("root"), 1, 0, uint64(block.timestamp));
    }

    function test_anchor_batchesAreContiguousAndUnique() public {
        uint64 t = uint64(block.timestamp);
        vm.startPrank(service);
        accessLog.anchor(bytes32("r1"), 3, t - 100, t - 50);
        vm.expectRevert(abi.encodeWithSelector(IAccessLog.AccessLogTimeRangeOverlap.selector, t - 60, t - 50));
        accessLog.anchor(bytes32("r2"), 3, t - 60, t);
        vm.expectRevert(abi.encodeWithSelector(IAccessLog.AccessLogRootExists.selector, bytes32("r1"), 0));
        accessLog.anchor(bytes32("r1"), 3, t - 50, t);
        vm.expectRevert(abi.encodeWithSelector(IAccessLog.AccessLogInvalidTimeRange.selector, t, t - 1));
        accessLog.anchor(bytes32("r2"), 3, t, t - 1);
        vm.expectRevert(abi.encodeWithSelector(IAccessLog.AccessLogInvalidTimeRange.selector, t, t + 1));
        accessLog.anchor(bytes32("r2"), 3, t, t + 1);
        vm.expectRevert(IAccessLog.AccessLogEmptyBatch.selector);
        accessLog.anchor(bytes32("r2"), 0, t - 50, t);
        vm.expectRevert(abi.encodeWithSelector(IAccessLog.AccessLogInvalidRoot.selector, bytes32(0)));
        accessLog.anchor(bytes32(0), 1, t - 50, t);
        uint64 index = accessLog.anchor(bytes32("r2"), 3, t - 50, t);
        vm.stopPrank();
        assertEq(index, 1, "second batch");
        (uint64 count, uint64 last) = accessLog.batchCount(service);
        assertEq(count, 2, "batch count");
        assertEq(last, t, "last toTime");
    }

    /// @dev A proxy node given ANCHOR_ROLE by the admin, as `kizuna up --proxies` does.
    function _node(uint256 i) internal returns (address node) {
        node = address(uint160(0xA0DE0000 + i));
        bytes32 role = accessLog.ANCHOR_ROLE();
        vm.prank(admin);
        accessLog.grantRole(role, node);
    }

    function test_anchor_twoAnchorersInterleaveTimes() public {
        address node = _node(1);
        uint64 t = uint64(block.timestamp);
        vm.prank(service);
        assertEq(accessLog.anchor(bytes32("s1"), 2, t - 100, t - 40), 0, "service's first");
        // The node's batch starts before the service's last toTime: its own sequence.
        vm.expectEmit(true, true, true, true);
        emit IAccessLog.ReceiptRootAnchored(0, bytes32("n1"), node, 1, t - 90, t - 60);
        vm.prank(node);
        assertEq(accessLog.anchor(bytes32("n1"), 1, t - 90, t - 60), 0, "node's first");
        vm.prank(service);
        assertEq(accessLog.anchor(bytes32("s2"), 1, t - 40, t - 10), 1, "service's second");
        vm.prank(node);
        assertEq(accessLog.anchor(bytes32("n2"), 4, t - 60, t - 20), 1, "node's second");
        (uint64 sCount, uint64 sLast) = accessLog.batchCount(service);
        (uint64 nCount, uint64 nLast) = accessLog.batchCount(node);
        assertEq(sCount, 2, "service batches");
        assertEq(sLast, t - 10, "service last");
        assertEq(nCount, 2, "node batches");
        assertEq(nLast, t - 20, "node last");
        (bool anchored, uint64 index,,,) = accessLog.batchOf(bytes32("n2"));
        assertTrue(anchored, "node root anchored");
        assertEq(index, 1, "node's index");
        // Within one anchorer the sequence still holds; a root stays unique across anchorers.
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(IAccessLog.AccessLogTimeRangeOverlap.selector, t - 30, t - 20));
        accessLog.anchor(bytes32("n3"), 1, t - 30, t);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(IAccessLog.AccessLogRootExists.selector, bytes32("s1"), 0));
        accessLog.anchor(bytes32("s1"), 1, t - 20, t);
    }

    function test_anchor_oneAnchorersLastToTimeDoesNotBlockAnother() public {
        address node1 = _node(1);
        address node2 = _node(2);
        uint64 t = uint64(block.timestamp);
        // node 1 anchors up to "now" ...
        vm.prank(node1);
        accessLog.anchor(bytes32("a"), 5, t - 10, t);
        // ... and node 2's and the service's earlier receipts are still anchorable.
        vm.prank(node2);
        accessLog.anchor(bytes32("b"), 5, t - 300, t - 200);
        vm.prank(service);
        accessLog.anchor(bytes32("c"), 5, t - 500, t - 100);
        (uint64 count, uint64 last) = accessLog.batchCount(node2);
        assertEq(count, 1, "node 2 batches");
        assertEq(last, t - 200, "node 2 last");
        (count, last) = accessLog.batchCount(address(0xBEEF));
        assertEq(count, 0, "never anchored");
        assertEq(last, 0, "never anchored: no last");
    }

    function test_anchor_withoutTheRoleRefused() public {
        address node = _node(1);
        bytes32 role = accessLog.ANCHOR_ROLE();
        vm.prank(admin);
        accessLog.revokeRole(role, node);
        address stranger = address(0xD00D);
        uint64 t = uint64(block.timestamp);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, node, role));
        accessLog.anchor(bytes32("x"), 1, t - 1, t);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role));
        accessLog.anchor(bytes32("x"), 1, t - 1, t);
        (uint64 count,) = accessLog.batchCount(node);
        assertEq(count, 0, "nothing anchored");
    }
}
