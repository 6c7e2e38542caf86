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
        (uint64 count, uint64 last) = accessLog.batchCount();
        assertEq(count, 2, "batch count");
        assertEq(last, t, "last toTime");
    }
}
