// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {IConsentLedger} from "../interfaces/IConsentLedger.sol";
import {RecordId, ScopeId} from "../types/Ids.sol";
import {KizunaTest} from "./utils/KizunaTest.t.sol";

/// @notice Batches of records under one Merkle root (#12): registration by the patient, a
///         guardian or a relayed signature, the views, and superseding a batch record.
contract ConsentLedgerBatchTest is KizunaTest {
    bytes32 internal constant ROOT = keccak256("root");
    ScopeId internal lab;

    /// @dev The root kizuna/batch.py builds for `_leaf(0..4)` (BatchManifest.of(...).root);
    ///      tests/chain/test_chain_batches.py checks the Python side against the same constant.
    bytes32 internal constant PYTHON_ROOT = 0xe77657e73605ea276b281d4a8bad170653b9e954b4a31293944f42220d9edc6d;

    function setUp() public override {
        super.setUp();
        lab = scope("lab");
    }

    function _sign(uint256 key, bytes32 structHash) internal returns (bytes memory) {
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", ledger.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _batchSig(uint256 key, address p, bytes32 root, uint32 count, uint256 nonce, uint256 deadline)
        internal
        returns (bytes memory)
    {
        return _sign(key, keccak256(abi.encode(ledger.REGISTER_BATCH_TYPEHASH(), p, root, count, nonce, deadline)));
    }

    // ---------------------------------------------------------------------------- registering

    function test_typeHash_matchesTheDocumentedTypeString() public view {
        assertEq(
            ledger.REGISTER_BATCH_TYPEHASH(),
            keccak256("RegisterBatch(address patient,bytes32 root,uint32 count,uint256 nonce,uint256 deadline)"),
            "RegisterBatch"
        );
    }

    function testFuzz_registerBatch_storesOwnerTimeAndCount_neverTwice(bytes32 root, uint32 count) public {
        vm.assume(root != bytes32(0) && count != 0);
        vm.expectEmit(true, true, false, true);
        emit IConsentLedger.RecordBatchRegistered(patient, root, count);
        vm.prank(patient);
        ledger.registerBatch(root, count);
        (address owner, uint64 at, uint32 stored) = ledger.batchOf(root);
        assertEq(owner, patient, "owner");
        assertEq(at, block.timestamp, "registeredAt");
        assertEq(stored, count, "count");
        // Nobody, not even the owner, registers the same root again.
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerBatchExists.selector, root));
        ledger.registerBatch(root, count);
        vm.prank(patient);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerBatchExists.selector, root));
        ledger.registerBatch(root, 1);
    }

    function test_registerBatch_rejectsZeroRootOrCount() public {
        vm.startPrank(patient);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerInvalidBatch.selector, bytes32(0)));
        ledger.registerBatch(bytes32(0), 3);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerInvalidBatch.selector, ROOT));
        ledger.registerBatch(ROOT, 0);
        vm.stopPrank();
        (address owner,,) = ledger.batchOf(ROOT);
        assertEq(owner, address(0), "nothing stored");
    }

    function test_batchOf_unknownRoot_isAllZero() public view {
        (address owner, uint64 at, uint32 count) = ledger.batchOf(ROOT);
        assertEq(owner, address(0), "owner");
        assertEq(at, 0, "registeredAt");
        assertEq(count, 0, "count");
    }

    function test_registerBatchFor_byLiveGuardian_logsTheGuardian_strangerReverts() public {
        vm.prank(patient);
        ledger.appointGuardian(guardian, uint64(block.timestamp + 1 days));
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerUnauthorized.selector, patient, stranger)
        );
        ledger.registerBatchFor(patient, ROOT, 7);
        vm.expectEmit(true, true, false, true);
        emit IConsentLedger.GuardianActed(patient, guardian, IConsentLedger.registerBatchFor.selector);
        vm.expectEmit(true, true, false, true);
        emit IConsentLedger.RecordBatchRegistered(patient, ROOT, 7);
        vm.prank(guardian);
        ledger.registerBatchFor(patient, ROOT, 7);
        (address owner,, uint32 count) = ledger.batchOf(ROOT);
        assertEq(owner, patient, "the patient's, not the guardian's");
        assertEq(count, 7, "count");
    }

    function test_registerBatchBySig_relayed_consumesTheNonce_replayReverts() public {
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _batchSig(PATIENT_KEY, patient, ROOT, 1000, 0, deadline);
        vm.expectEmit(true, true, false, true);
        emit IConsentLedger.RecordBatchRegistered(patient, ROOT, 1000);
        vm.prank(relayer);
        ledger.registerBatchBySig(patient, ROOT, 1000, deadline, sig);
        (address owner,, uint32 count) = ledger.batchOf(ROOT);
        assertEq(owner, patient, "owner is the signer, not the relayer");
        assertEq(count, 1000, "count");
        assertEq(ledger.nonces(patient), 1, "nonce consumed");
        // The same signature again: the nonce moved on, so it recovers to another address.
        vm.prank(relayer);
        vm.expectRevert(); // ConsentLedgerInvalidSigner(<some address>, patient)
        ledger.registerBatchBySig(patient, ROOT, 1000, deadline, sig);
    }

    function test_registerBatchBySig_revertsWhenExpired() public {
        uint256 deadline = block.timestamp + 10;
        bytes memory sig = _batchSig(PATIENT_KEY, patient, ROOT, 5, 0, deadline);
        vm.warp(deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentLedger.ConsentLedgerSignatureExpired.selector, deadline, deadline + 1
            )
        );
        ledger.registerBatchBySig(patient, ROOT, 5, deadline, sig);
        assertEq(ledger.nonces(patient), 0, "nonce untouched");
    }

    function test_registerBatchBySig_revertsForAnotherSignerOrAlteredFields() public {
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory byStranger = _batchSig(STRANGER_KEY, patient, ROOT, 5, 0, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentLedger.ConsentLedgerInvalidSigner.selector, stranger, patient)
        );
        ledger.registerBatchBySig(patient, ROOT, 5, deadline, byStranger);
        // The patient's signature over 5 records does not register 6 (nor another root).
        bytes memory sig = _batchSig(PATIENT_KEY, patient, ROOT, 5, 0, deadline);
        vm.expectRevert();
        ledger.registerBatchBySig(patient, ROOT, 6, deadline, sig);
        vm.expectRevert();
        ledger.registerBatchBySig(patient, keccak256("other root"), 5, deadline, sig);
        (address owner,,) = ledger.batchOf(ROOT);
        assertEq(owner, address(0), "nothing registered");
        ledger.registerBatchBySig(patient, ROOT, 5, deadline, sig);
        (owner,,) = ledger.batchOf(ROOT);
        assertEq(owner, patient, "the untampered one registers");
    }

    function test_registerBatchBySig_rejectsZeroCountAfterTheSignatureCheck() public {
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _batchSig(PATIENT_KEY, patient, ROOT, 0, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerInvalidBatch.selector, ROOT));
        ledger.registerBatchBySig(patient, ROOT, 0, deadline, sig);
    }

    // ---------------------------------------------------------------------------- batch records

    function test_batchRecordOf_readsTheBatchAndTheOwnersSupersededFlag() public {
        RecordId rid = RecordId.wrap(keccak256("in the batch"));
        (address owner, uint64 at, uint32 count, bool superseded) = ledger.batchRecordOf(ROOT, rid);
        assertEq(owner, address(0), "unknown root");
        assertEq(at + count, 0, "all zero");
        assertFalse(superseded, "unknown root: not superseded");
        vm.prank(patient);
        ledger.registerBatch(ROOT, 3);
        (owner, at, count, superseded) = ledger.batchRecordOf(ROOT, rid);
        assertEq(owner, patient, "owner");
        assertEq(at, block.timestamp, "registeredAt");
        assertEq(count, 3, "count");
        assertFalse(superseded, "live");
    }

    function test_supersedeBatchRecord_once_twiceReverts() public {
        RecordId old = RecordId.wrap(keccak256("in the batch"));
        RecordId next = RecordId.wrap(keccak256("v2"));
        RecordId third = RecordId.wrap(keccak256("v3"));
        vm.startPrank(patient);
        ledger.registerBatch(ROOT, 3);
        vm.expectEmit(true, true, false, true);
        emit IConsentLedger.RecordRegistered(patient, next, bytes32("c2"), lab);
        vm.expectEmit(true, true, true, true);
        emit IConsentLedger.RecordSuperseded(patient, old, next);
        ledger.supersedeRecord(old, next, bytes32("c2"), lab);
        (,,, bool superseded) = ledger.batchRecordOf(ROOT, old);
        assertTrue(superseded, "retired");
        (address owner,, bool nextSuperseded) = ledger.recordOf(next);
        assertEq(owner, patient, "the new version is a record of its own");
        assertFalse(nextSuperseded, "new version live");
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerRecordSuperseded.selector, old));
        ledger.supersedeRecord(old, third, bytes32("c3"), lab);
        // The chain of versions continues from the newest one (a record registered alone).
        ledger.supersedeRecord(next, third, bytes32("c3"), lab);
        vm.stopPrank();
    }

    function test_supersedeBatchRecord_rejectsZeroOrSameId() public {
        RecordId old = RecordId.wrap(keccak256("in the batch"));
        vm.startPrank(patient);
        ledger.registerBatch(ROOT, 3);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerInvalidRecordId.selector, bytes32(0)));
        ledger.supersedeRecord(RecordId.wrap(0), old, bytes32("c"), lab);
        vm.expectRevert(abi.encodeWithSelector(IConsentLedger.ConsentLedgerRecordExists.selector, old));
        ledger.supersedeRecord(old, old, bytes32("c"), lab);
        vm.stopPrank();
        (,,, bool superseded) = ledger.batchRecordOf(ROOT, old);
        assertFalse(superseded, "untouched");
    }

    function test_supersedeBatchRecord_byAnotherPatient_cannotTouchIt() public {
        RecordId old = RecordId.wrap(keccak256("in the batch"));
        vm.prank(patient);
        ledger.registerBatch(ROOT, 3);
        // The stranger "supersedes" the id: it retires a name in the stranger's namespace only.
        vm.prank(stranger);
        ledger.supersedeRecord(old, RecordId.wrap(keccak256("stranger v2")), bytes32("c"), lab);
        (,,, bool superseded) = ledger.batchRecordOf(ROOT, old);
        assertFalse(superseded, "the patient's batch record is still live");
        // ...and the owner can still supersede it.
        vm.prank(patient);
        ledger.supersedeRecord(old, RecordId.wrap(keccak256("v2")), bytes32("c"), lab);
        (,,, superseded) = ledger.batchRecordOf(ROOT, old);
        assertTrue(superseded, "the owner retired it");
    }

    function test_supersedeBatchRecord_frontRunnerRegisteringTheIdAlone_doesNotBlockTheOwner() public {
        RecordId old = RecordId.wrap(keccak256("in the batch"));
        vm.prank(patient);
        ledger.registerBatch(ROOT, 3);
        // A front-runner registers the batch record's id as a record of its own, and retires it.
        vm.startPrank(stranger);
        ledger.registerRecord(old, bytes32("junk"), lab);
        ledger.supersedeRecord(old, RecordId.wrap(keccak256("junk v2")), bytes32("junk"), lab);
        vm.stopPrank();
        (,,, bool superseded) = ledger.batchRecordOf(ROOT, old);
        assertFalse(superseded, "the front-runner's own record is not the patient's batch record");
        vm.prank(patient);
        ledger.supersedeRecord(old, RecordId.wrap(keccak256("v2")), bytes32("c"), lab);
        (,,, superseded) = ledger.batchRecordOf(ROOT, old);
        assertTrue(superseded, "the owner's supersede went through");
    }

    function test_supersedeBatchRecord_bySignature_withSupersedes() public {
        RecordId old = RecordId.wrap(keccak256("in the batch"));
        RecordId next = RecordId.wrap(keccak256("v2"));
        vm.prank(patient);
        ledger.registerBatch(ROOT, 3);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _sign(
            PATIENT_KEY,
            keccak256(
                abi.encode(ledger.REGISTER_RECORD_TYPEHASH(), patient, next, bytes32("c2"), lab, old, 0, deadline)
            )
        );
        vm.prank(relayer);
        ledger.registerRecordBySig(patient, next, bytes32("c2"), lab, old, deadline, sig);
        (,,, bool superseded) = ledger.batchRecordOf(ROOT, old);
        assertTrue(superseded, "retired by the signed RegisterRecord");
    }

    // ---------------------------------------------------------------------------- leaves and proofs

    function _leaf(uint256 i) internal view returns (bytes32) {
        bytes32 recordId = keccak256(abi.encodePacked("record:", bytes1(uint8(48 + i))));
        bytes32 commitment = keccak256(abi.encodePacked("commit:", bytes1(uint8(48 + i))));
        return keccak256(bytes.concat(keccak256(abi.encode(recordId, ScopeId.unwrap(lab), commitment))));
    }

    /// @dev The tree of kizuna/merkle.py: pairs hashed commutatively, an odd node carried
    ///      up unchanged. Returns the root and the proof of `index`.
    function _rootAndProof(bytes32[] memory level, uint256 index)
        internal
        pure
        returns (bytes32 root, bytes32[] memory proof)
    {
        bytes32[] memory path = new bytes32[](8);
        uint256 depth;
        while (level.length > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < level.length) path[depth++] = level[sibling];
            bytes32[] memory up = new bytes32[]((level.length + 1) / 2);
            for (uint256 i; i < up.length; ++i) {
                up[i] = 2 * i + 1 < level.length ? Hashes.commutativeKeccak256(level[2 * i], level[2 * i + 1]) : level[2 * i];
            }
            level = up;
            index /= 2;
        }
        proof = new bytes32[](depth);
        for (uint256 i; i < depth; ++i) {
            proof[i] = path[i];
        }
        return (level[0], proof);
    }

    function test_merkleProof_ofEveryLeaf_verifiesAgainstTheStoredRoot_builtLikePython() public {
        bytes32[] memory leaves = new bytes32[](5);
        for (uint256 i; i < 5; ++i) {
            leaves[i] = _leaf(i);
        }
        (bytes32 root,) = _rootAndProof(leaves, 0);
        assertEq(root, PYTHON_ROOT, "the Solidity tree and kizuna/batch.py agree");
        vm.prank(patient);
        ledger.registerBatch(root, 5);
        (address owner,, uint32 count) = ledger.batchOf(root);
        assertEq(owner, patient, "stored");
        for (uint256 i; i < 5; ++i) {
            (bytes32 stored, bytes32[] memory proof) = _rootAndProof(leaves, i);
            assertEq(stored, root, "same root");
            assertTrue(MerkleProof.verify(proof, root, leaves[i]), "the leaf's proof verifies");
            // Any other word does not.
            assertFalse(MerkleProof.verify(proof, root, keccak256(abi.encode(leaves[i]))), "altered leaf");
        }
        assertEq(count, 5, "count");
    }
}
