// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {IAccessLog} from "./interfaces/IAccessLog.sol";

/// @title Kizuna access log
/// @notice See {IAccessLog}.
/// @dev Storage: one slot per anchored root, packing (count, fromTime, toTime, batchIndex) as four
///      uint64 (a root is anchored iff its count is not zero), plus one slot per anchorer for its
///      (batch count, last toTime, time the role was first granted). An anchor writes one new
///      slot and updates one. Each anchorer (the service, each threshold proxy node) has its own
///      sequence of batches: one anchorer's batches never block or interleave with another's.
contract AccessLog is AccessControl, IAccessLog {
    /// @inheritdoc IAccessLog
    bytes32 public constant ANCHOR_ROLE = keccak256("KIZUNA_ANCHOR_ROLE");

    struct Batch {
        uint64 count;
        uint64 fromTime;
        uint64 toTime;
        uint64 batchIndex;
    }

    /// @dev `grantedAt` keeps an anchorer's slot non-zero from the moment it gets ANCHOR_ROLE,
    ///      so that even its first anchor updates the slot (5,000 gas) instead of creating it
    ///      (22,100 gas): the grant pays for it.
    struct Head {
        uint64 batchCount;
        uint64 lastToTime;
        uint64 grantedAt;
    }

    mapping(bytes32 root => Batch) private _batches;
    mapping(address anchorer => Head) private _heads;

    /// @param admin receives DEFAULT_ADMIN_ROLE (grants and revokes anchoring services)
    /// @param anchorer receives ANCHOR_ROLE (may be the zero address: none yet)
    constructor(address admin, address anchorer) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        if (anchorer != address(0)) _grantRole(ANCHOR_ROLE, anchorer);
    }

    /// @dev Opens an anchorer's head slot when it first gets ANCHOR_ROLE (see {Head}); a head
    ///      once opened is kept across revocations, so a re-granted anchorer continues its
    ///      sequence (its batch indices and lastToTime) instead of starting over.
    function _grantRole(bytes32 role, address account) internal override returns (bool granted) {
        granted = super._grantRole(role, account);
        if (role == ANCHOR_ROLE && _heads[account].grantedAt == 0) {
            _heads[account].grantedAt = uint64(block.timestamp);
        }
    }

    /// @inheritdoc IAccessLog
    function anchor(bytes32 root, uint64 count, uint64 fromTime, uint64 toTime)
        external
        onlyRole(ANCHOR_ROLE)
        returns (uint64 batchIndex)
    {
        if (root == bytes32(0)) revert AccessLogInvalidRoot(root);
        if (count == 0) revert AccessLogEmptyBatch();
        if (fromTime > toTime || toTime > block.timestamp) revert AccessLogInvalidTimeRange(fromTime, toTime);
        Head memory head = _heads[msg.sender];
        if (fromTime < head.lastToTime) revert AccessLogTimeRangeOverlap(fromTime, head.lastToTime);
        Batch storage batch = _batches[root];
        if (batch.count != 0) revert AccessLogRootExists(root, batch.batchIndex);
        batchIndex = head.batchCount;
        _batches[root] = Batch(count, fromTime, toTime, batchIndex);
        _heads[msg.sender] = Head(batchIndex + 1, toTime, head.grantedAt);
        emit ReceiptRootAnchored(batchIndex, root, msg.sender, count, fromTime, toTime);
    }

    /// @inheritdoc IAccessLog
    function verifyReceipt(bytes32 root, bytes32 leaf, bytes32[] calldata proof) external view returns (bool) {
        if (_batches[root].count == 0) return false;
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @inheritdoc IAccessLog
    function batchOf(bytes32 root)
        external
        view
        returns (bool anchored, uint64 batchIndex, uint64 count, uint64 fromTime, uint64 toTime)
    {
        Batch memory batch = _batches[root];
        return (batch.count != 0, batch.batchIndex, batch.count, batch.fromTime, batch.toTime);
    }

    /// @inheritdoc IAccessLog
    function batchCount(address anchorer) external view returns (uint64 count, uint64 lastToTime) {
        Head memory head = _heads[anchorer];
        return (head.batchCount, head.lastToTime);
    }
}
