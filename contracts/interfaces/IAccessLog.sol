// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Kizuna access log
/// @notice The Kizuna service keeps every provider's signed read request (a "receipt"), batches them
///         into a Merkle tree and anchors the tree's root here with the number of receipts and the
///         time range they cover. Anyone can then prove a single receipt against the chain.
/// @dev Trees use OpenZeppelin's `MerkleProof` convention: a parent is the keccak256 of its two
///      children sorted (commutative), and the contract takes the leaf hash as given. Kizuna's
///      off-chain code hashes a leaf as `keccak256(bytes.concat(keccak256(receipt)))` (double
///      hashing, so a leaf can never be mistaken for an inner node). Each anchorer (the service,
///      each threshold proxy node, anchoring its own receipts with its own key) has its own
///      sequence of batches, contiguous in time: each starts at or after the end of that
///      anchorer's previous batch, so a gap or an overlap shows; anchorers never block each other.
interface IAccessLog {
    // ----------------------------------------------------------------------------------------
    // Errors
    // ----------------------------------------------------------------------------------------

    /// @notice A root must not be zero.
    error AccessLogInvalidRoot(bytes32 root);

    /// @notice This root was anchored already (in batch `batchIndex`).
    error AccessLogRootExists(bytes32 root, uint64 batchIndex);

    /// @notice A batch must hold at least one receipt.
    error AccessLogEmptyBatch();

    /// @notice `fromTime` must not be after `toTime`, nor `toTime` after the current block time.
    error AccessLogInvalidTimeRange(uint64 fromTime, uint64 toTime);

    /// @notice A batch must start at or after the end of the anchorer's previous batch (`lastToTime`).
    error AccessLogTimeRangeOverlap(uint64 fromTime, uint64 lastToTime);

    // ----------------------------------------------------------------------------------------
    // Events
    // ----------------------------------------------------------------------------------------

    /// @notice `anchoredBy` anchored the root of its batch `batchIndex` of `count` receipts made
    ///         between `fromTime` and `toTime` (unix seconds, inclusive).
    event ReceiptRootAnchored(
        uint64 indexed batchIndex,
        bytes32 indexed root,
        address indexed anchoredBy,
        uint64 count,
        uint64 fromTime,
        uint64 toTime
    );

    // ----------------------------------------------------------------------------------------
    // Transactions
    // ----------------------------------------------------------------------------------------

    /// @notice Anchors the Merkle root of a batch of the caller's receipts. `ANCHOR_ROLE` only.
    /// @return batchIndex the batch's index in the caller's sequence (0, 1, 2, ...)
    function anchor(bytes32 root, uint64 count, uint64 fromTime, uint64 toTime) external returns (uint64 batchIndex);

    // ----------------------------------------------------------------------------------------
    // Calls
    // ----------------------------------------------------------------------------------------

    /// @notice The role allowed to anchor roots (the Kizuna service's and each proxy node's address).
    function ANCHOR_ROLE() external view returns (bytes32);

    /// @notice True when `leaf` is in the anchored tree `root` according to `proof`; false when the
    ///         root was never anchored or the proof does not lead to it.
    function verifyReceipt(bytes32 root, bytes32 leaf, bytes32[] calldata proof) external view returns (bool);

    /// @notice What was anchored under `root`; all zero (and `anchored` false) when never anchored.
    function batchOf(bytes32 root)
        external
        view
        returns (bool anchored, uint64 batchIndex, uint64 count, uint64 fromTime, uint64 toTime);

    /// @notice How many batches `anchorer` anchored so far, and the end time of its last one.
    function batchCount(address anchorer) external view returns (uint64 count, uint64 lastToTime);
}
