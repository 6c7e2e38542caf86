"""AccessLog: anchor, batchOf, batchCount, the anchoring role, and verifyReceipt against trees built
by kizuna.merkle (which proves the Python tree matches OpenZeppelin's MerkleProof)."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from ledger_harness import Actors, Bench, b32

from kizuna.merkle import MerkleTree, hash_pair, leaf_hash

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ANCHOR_ROLE = bytes(keccak(text="KIZUNA_ANCHOR_ROLE"))
ROOT = b32("root:1")
ROOT2 = b32("root:2")


def _receipt(i: int, actors: Actors) -> bytes:
    """A read receipt as the service would encode it (the chain only ever sees its hash)."""
    return abi_encode(["address", "address", "bytes32", "uint64", "bytes32"],
                      [actors.provider, actors.patient, b32(f"scope:{i % 3}"), 2_000_000_000 + i,
                       b32(f"request:{i}")])


def _anchor(bench: Bench, root: bytes, count: int, start: int, end: int) -> object:
    return bench.tx(bench.access_log.functions.anchor(root, count, start, end),
                    bench.actors.anchorer)


def test_anchorRole_isTheDocumentedConstant(bench: Bench, actors: Actors) -> None:
    log = bench.access_log.functions
    assert bytes(log.ANCHOR_ROLE().call()) == ANCHOR_ROLE
    assert log.hasRole(ANCHOR_ROLE, actors.anchorer).call() is True
    assert log.hasRole(ANCHOR_ROLE, actors.admin).call() is False


def test_batchCount_startsAtZero(bench: Bench, actors: Actors) -> None:
    assert bench.access_log.functions.batchCount(actors.anchorer).call() == [0, 0]
    assert bench.access_log.functions.batchOf(ROOT).call() == [False, 0, 0, 0, 0]


def test_anchor_recordsBatchesInOrder(bench: Bench, actors: Actors) -> None:
    log = bench.access_log.functions
    now = bench.now()
    assert log.anchor(ROOT, 5, now - 100, now - 50).call({"from": actors.anchorer}) == 0
    receipt = _anchor(bench, ROOT, 5, now - 100, now - 50)
    assert bench.event_list(receipt) == [
        ("ReceiptRootAnchored", {"batchIndex": 0, "root": ROOT, "anchoredBy": actors.anchorer,
                                 "count": 5, "fromTime": now - 100, "toTime": now - 50}),
    ]
    assert log.batchOf(ROOT).call() == [True, 0, 5, now - 100, now - 50]
    assert log.batchCount(actors.anchorer).call() == [1, now - 50]
    # The next batch may start exactly where the previous one ended, and end at block time.
    end = bench.next_time()
    assert log.anchor(ROOT2, 1, now - 50, end - 1).call({"from": actors.anchorer}) == 1
    receipt = _anchor(bench, ROOT2, 1, now - 50, end)
    assert bench.events(receipt)[0].args["batchIndex"] == 1
    assert log.batchOf(ROOT2).call() == [True, 1, 1, now - 50, end]
    assert log.batchCount(actors.anchorer).call() == [2, end]


@pytest.mark.parametrize("who", ["admin", "stranger", "registrar", "patient"])
def test_anchor_revertsForNonServiceAccount(bench: Bench, actors: Actors, who: str) -> None:
    caller = getattr(actors, who)
    now = bench.now()
    bench.reverts(bench.access_log.functions.anchor(ROOT, 1, now - 10, now), caller,
                  "AccessControlUnauthorizedAccount", account=caller, neededRole=ANCHOR_ROLE)
    assert bench.access_log.functions.batchCount(caller).call() == [0, 0]
    assert bench.access_log.functions.batchCount(actors.anchorer).call() == [0, 0]


def test_anchor_revertsForZeroRootOrEmptyBatch(bench: Bench, actors: Actors) -> None:
    now = bench.now()
    bench.reverts(bench.access_log.functions.anchor(bytes(32), 1, now - 10, now),
                  actors.anchorer, "AccessLogInvalidRoot", root=bytes(32))
    bench.reverts(bench.access_log.functions.anchor(ROOT, 0, now - 10, now),
                  actors.anchorer, "AccessLogEmptyBatch")


def test_anchor_revertsForInvalidTimeRange(bench: Bench, actors: Actors) -> None:
    now = bench.next_time()
    for start, end in ((now - 5, now - 6), (now - 5, now + 1), (now + 1, now + 1)):
        bench.reverts(bench.access_log.functions.anchor(ROOT, 1, start, end), actors.anchorer,
                      "AccessLogInvalidTimeRange", fromTime=start, toTime=end)
    _anchor(bench, ROOT, 1, now - 5, now - 5)  # a single instant is a valid range


def test_anchor_revertsWhenOverlappingThePreviousBatch(bench: Bench, actors: Actors) -> None:
    now = bench.now()
    _anchor(bench, ROOT, 3, now - 100, now - 50)
    bench.reverts(bench.access_log.functions.anchor(ROOT2, 1, now - 51, now), actors.anchorer,
                  "AccessLogTimeRangeOverlap", fromTime=now - 51, lastToTime=now - 50)


def test_anchor_revertsWhenRootAnchoredTwice(bench: Bench, actors: Actors) -> None:
    now = bench.now()
    _anchor(bench, ROOT2, 1, now - 100, now - 90)
    _anchor(bench, ROOT, 1, now - 90, now - 80)
    bench.reverts(bench.access_log.functions.anchor(ROOT, 2, now - 80, now), actors.anchorer,
                  "AccessLogRootExists", root=ROOT, batchIndex=1)


def test_anchorRole_grantedByAdmin(bench: Bench, actors: Actors) -> None:
    log = bench.access_log.functions
    receipt = bench.tx(log.grantRole(ANCHOR_ROLE, actors.stranger), actors.admin)
    assert bench.event_list(receipt) == [
        ("RoleGranted", {"role": ANCHOR_ROLE, "account": actors.stranger, "sender": actors.admin}),
    ]
    now = bench.now()
    receipt = bench.tx(log.anchor(ROOT, 1, now, now), actors.stranger)
    assert bench.events(receipt)[0].args["anchoredBy"] == actors.stranger
    # Each anchorer keeps its own sequence: the stranger's batch is not the service's.
    assert log.batchCount(actors.stranger).call() == [1, now]
    assert log.batchCount(actors.anchorer).call() == [0, 0]
    bench.tx(log.revokeRole(ANCHOR_ROLE, actors.anchorer), actors.admin)
    bench.reverts(log.anchor(ROOT2, 1, now, now), actors.anchorer,
                  "AccessControlUnauthorizedAccount", account=actors.anchorer,
                  neededRole=ANCHOR_ROLE)


def test_constructor_withoutAnchorerHasNone(bench: Bench, actors: Actors) -> None:
    log = bench.deploy_contract("AccessLog", actors.admin, ZERO_ADDRESS)
    now = bench.now()
    bench.reverts(log.functions.anchor(ROOT, 1, now, now), actors.admin,
                  "AccessControlUnauthorizedAccount", account=actors.admin,
                  neededRole=ANCHOR_ROLE)
    assert log.functions.batchCount(actors.admin).call() == [0, 0]


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 16, 33])
def test_verifyReceipt_acceptsEveryProofOfAPythonTree(bench: Bench, actors: Actors,
                                                      size: int) -> None:
    receipts = [_receipt(i, actors) for i in range(size)]
    leaves = [leaf_hash(r) for r in receipts]
    assert leaves[0] == bytes(keccak(bytes(keccak(receipts[0]))))  # double hashing
    tree = MerkleTree.build(leaves)
    now = bench.now()
    _anchor(bench, tree.root, size, now - 10, now)
    verify = bench.access_log.functions.verifyReceipt
    for index, leaf in enumerate(leaves):
        assert verify(tree.root, leaf, tree.proof(index)).call() is True, index


def test_verifyReceipt_rejectsTamperedProofs(bench: Bench, actors: Actors) -> None:
    receipts = [_receipt(i, actors) for i in range(6)]
    leaves = [leaf_hash(r) for r in receipts]
    tree = MerkleTree.build(leaves)
    now = bench.now()
    _anchor(bench, tree.root, len(leaves), now - 10, now)
    verify = bench.access_log.functions.verifyReceipt
    proof = tree.proof(2)
    assert verify(tree.root, leaves[2], proof).call() is True

    def flip(word: bytes) -> bytes:
        return bytes([word[0] ^ 1]) + word[1:]

    tampered_receipt = receipts[2][:-1] + bytes([receipts[2][-1] ^ 1])
    cases = {
        "altered receipt": (tree.root, leaf_hash(tampered_receipt), proof),
        "single-hashed leaf": (tree.root, bytes(keccak(receipts[2])), proof),
        "altered leaf": (tree.root, flip(leaves[2]), proof),
        "another leaf's proof": (tree.root, leaves[2], tree.proof(3)),
        "altered sibling": (tree.root, leaves[2], [flip(proof[0]), *proof[1:]]),
        "dropped sibling": (tree.root, leaves[2], proof[:-1]),
        "extra sibling": (tree.root, leaves[2], [*proof, leaves[0]]),
        "empty proof": (tree.root, leaves[2], []),
        "unanchored root": (flip(tree.root), leaves[2], proof),
    }
    for label, (root, leaf, bad_proof) in cases.items():
        assert verify(root, leaf, bad_proof).call() is False, label


def test_verifyReceipt_falseForAValidProofOfAnUnanchoredRoot(bench: Bench,
                                                            actors: Actors) -> None:
    leaves = [leaf_hash(_receipt(i, actors)) for i in range(4)]
    tree = MerkleTree.build(leaves)
    verify = bench.access_log.functions.verifyReceipt
    assert verify(tree.root, leaves[0], tree.proof(0)).call() is False
    # A one-leaf tree's root is the leaf itself: unanchored, even the empty proof fails.
    assert verify(leaves[0], leaves[0], []).call() is False
    now = bench.now()
    _anchor(bench, tree.root, 4, now - 1, now)
    assert verify(tree.root, leaves[0], tree.proof(0)).call() is True


def test_verifyReceipt_usesTheCommutativePairHash(bench: Bench, actors: Actors) -> None:
    a, b = leaf_hash(_receipt(0, actors)), leaf_hash(_receipt(1, actors))
    root = hash_pair(a, b)
    assert root == hash_pair(b, a) == bytes(keccak(min(a, b) + max(a, b)))
    now = bench.now()
    _anchor(bench, root, 2, now, now)
    verify = bench.access_log.functions.verifyReceipt
    assert verify(root, a, [b]).call() is True
    assert verify(root, b, [a]).call() is True


def test_accessControl_surfaceOfTheAccessLog(bench: Bench, actors: Actors) -> None:
    log = bench.access_log.functions
    admin_role = bytes(log.DEFAULT_ADMIN_ROLE().call())
    assert admin_role == bytes(32)
    assert bytes(log.getRoleAdmin(ANCHOR_ROLE).call()) == admin_role
    assert log.hasRole(admin_role, actors.admin).call() is True
    assert log.supportsInterface(bytes.fromhex("7965db0b")).call() is True
    assert log.supportsInterface(bytes.fromhex("01ffc9a7")).call() is True
    assert log.supportsInterface(bytes.fromhex("12345678")).call() is False
    bench.reverts(log.grantRole(ANCHOR_ROLE, actors.stranger), actors.anchorer,
                  "AccessControlUnauthorizedAccount", account=actors.anchorer,
                  neededRole=admin_role)
    bench.reverts(log.renounceRole(ANCHOR_ROLE, actors.anchorer), actors.admin,
                  "AccessControlBadConfirmation")
    receipt = bench.tx(log.renounceRole(ANCHOR_ROLE, actors.anchorer), actors.anchorer)
    assert bench.event_list(receipt) == [
        ("RoleRevoked", {"role": ANCHOR_ROLE, "account": actors.anchorer,
                         "sender": actors.anchorer}),
    ]
    assert log.hasRole(ANCHOR_ROLE, actors.anchorer).call() is False
