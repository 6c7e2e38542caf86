"""The read path on a real node (anvil over HTTP, batched eth_calls), at the module level:
grant → kfrags → serve_read → the provider decrypts → the receipt is anchored and proves
on-chain; revoke → the next read is refused and the kfrags are deleted; the revocation race."""

from __future__ import annotations

import threading
import time

import pytest
from harness import REGISTERED, Stack

from kizuna.access.check import GrantRevoked
from kizuna.errors import AccessDenied
from kizuna.receipts.anchorer import Anchorer
from kizuna.services.follower import IndexFollower
from kizuna.services.read import serve_read

pytestmark = pytest.mark.anvil
BOTH = pytest.mark.parametrize("anvil_stack", REGISTERED, indirect=True)
"""The test runs on records registered alone and on records registered in a batch."""


@BOTH
def test_read_decrypt_anchor_prove_revoke(anvil_stack: Stack) -> None:
    stack = anvil_stack
    assert stack.ctx.access._batching, "anvil is an HTTP node: the access check batches"
    patient, provider = stack.party(), stack.provider()
    record = stack.add_record(patient)
    scope_id = stack.grant(patient, provider)
    request, signature = stack.request(provider, patient, record)
    answer = serve_read(stack.ctx, request=request, signature=signature)
    assert stack.open(provider, answer) == record.plaintext

    batches = Anchorer(db=stack.db, chain=stack.chain, signer=stack.env.admin).run_once()
    assert [b.count for b in batches] == [1]
    proof = stack.ctx.receipts.proof(request.request_id)
    assert proof is not None
    assert stack.chain.access_log.verify_receipt(proof.batch.root, proof.receipt.leaf,
                                                 list(proof.proof))

    revoked = stack.chain.ledger.revoke(provider.address, scope_id, signer=patient.signer)
    request, signature = stack.request(provider, patient, record)
    with pytest.raises(GrantRevoked):
        serve_read(stack.ctx, request=request, signature=signature)
    IndexFollower(stack.ctx).tick()
    assert stack.ctx.kfrags.count(patient=patient.address, provider=provider.address) == 0
    assert all(r.head_block < revoked.block_number
               for r in stack.ctx.receipts.select(patient=patient.address))


def test_revocation_race(anvil_stack: Stack) -> None:
    """Providers read in a loop on threads while the patient revokes: no receipt has a head
    block at or after the revoking block, and every read begun after the revoke was mined
    is refused."""
    stack = anvil_stack
    patient = stack.party()
    providers = [stack.provider() for _ in range(4)]
    record = stack.add_record(patient)
    scope_id = stack.scope(patient)
    for provider in providers:
        stack.grant(patient, provider)
    second = stack.second_context()  # two instances serve the reads
    stop = threading.Event()
    revoked_mined = threading.Event()
    served: list[int] = []
    refused_after: list[bool] = []
    errors: list[BaseException] = []

    def reader(index: int) -> None:
        provider = providers[index % len(providers)]
        ctx = stack.ctx if index % 2 == 0 else second
        while not stop.is_set():
            began_after_revoke = revoked_mined.is_set()
            request, signature = stack.request(provider, patient, record, ctx=ctx)
            try:
                answer = serve_read(ctx, request=request, signature=signature)
            except AccessDenied:
                if began_after_revoke:
                    refused_after.append(True)
                continue
            except BaseException as error:  # reported by the test below
                errors.append(error)
                return
            served.append(answer.head_block)
            if began_after_revoke:
                refused_after.append(False)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    def wait_for(condition, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 60
        while not condition() and not errors:
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.02)

    for thread in threads:
        thread.start()
    wait_for(lambda: len(served) >= 20, "reads before the revoke")
    receipts = [stack.chain.ledger.revoke(p.address, scope_id, signer=patient.signer)
                for p in providers]
    revoking_blocks = [r.block_number for r in receipts]
    revoked_mined.set()
    wait_for(lambda: len(refused_after) >= 20, "reads after the revoke")
    stop.set()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert served, "reads were served before the revoke"
    assert refused_after and all(refused_after), "every read begun after the revoke is refused"
    stored = stack.ctx.receipts.select(patient=patient.address, limit=1_000_000)
    assert len(stored) == len(served)
    by_provider = dict(zip([p.address for p in providers], revoking_blocks, strict=True))
    late = [r for r in stored if r.head_block >= by_provider[r.request.provider]]
    assert not late, f"{len(late)} receipts at or after their revoking block"


@BOTH
def test_batched_check_refuses_unregistered_readers_and_expired_grants(
        anvil_stack: Stack) -> None:
    from kizuna.access.check import GrantExpired, ProviderNotRegistered

    stack = anvil_stack
    patient, provider, stranger = stack.party(), stack.provider(), stack.party()
    record = stack.add_record(patient)
    stack.chain.ledger.grant(stranger.address, record.scope_id, stack.env.now() + 3600,
                             signer=patient.signer)
    request, signature = stack.request(stranger, patient, record)
    with pytest.raises(ProviderNotRegistered):  # providerOf reverts inside the batch
        serve_read(stack.ctx, request=request, signature=signature)
    stack.grant(patient, provider, expires_in=60)
    stack.env.advance(120)
    request, signature = stack.request(provider, patient, record)
    with pytest.raises(GrantExpired):
        serve_read(stack.ctx, request=request, signature=signature)


@BOTH
def test_reads_at_one_head_share_one_round_of_views_and_a_new_block_reads_afresh(
    anvil_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chain state at a block hash never changes: reads of one record at the same head
    reuse the views read for the first; the revoking block is a new head, read afresh."""
    stack = anvil_stack
    patient, provider = stack.party(), stack.provider()
    record = stack.add_record(patient)
    scope_id = stack.grant(patient, provider)
    access = stack.ctx.access
    reads_of_state: list[int] = []
    real = access._read_state

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        reads_of_state.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(access, "_read_state", counted)
    for _ in range(3):
        request, signature = stack.request(provider, patient, record)
        serve_read(stack.ctx, request=request, signature=signature)
    assert len(reads_of_state) == 1
    stack.chain.ledger.revoke(provider.address, scope_id, signer=patient.signer)
    request, signature = stack.request(provider, patient, record)
    with pytest.raises(GrantRevoked):
        serve_read(stack.ctx, request=request, signature=signature)
    assert len(reads_of_state) == 2


def test_states_of_an_older_head_or_another_fork_are_never_served() -> None:
    from kizuna.access.check import _StateAtHead
    from kizuna.chain.models import BlockRef

    cache = _StateAtHead()
    head_a, fork_a = BlockRef(10, b"\x0a" * 32, 100), BlockRef(10, b"\xfa" * 32, 100)
    older, newer = BlockRef(9, b"\x09" * 32, 99), BlockRef(11, b"\x0b" * 32, 101)
    key, state = (b"\x01" * 32, "0xprovider"), object()
    cache.put(head_a, key, state)  # type: ignore[arg-type]
    assert cache.get(head_a, key) is state
    assert cache.get(fork_a, key) is None and cache.get(newer, key) is None
    cache.put(older, key, object())  # type: ignore[arg-type]
    assert cache.get(older, key) is None and cache.get(head_a, key) is state
    cache.put(fork_a, key, object())  # type: ignore[arg-type]
    assert cache.get(head_a, key) is None  # a reorg at the same height replaces the head
