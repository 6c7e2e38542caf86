"""The access check's arrival mark (``AccessCheck.arrival`` / ``check_read(arrived=)``): a read
is decided at a head asked for after it arrived — possibly by a request another read sent while
it waited for a thread — and never at a head asked for before; so a revocation mined before a
read arrived refuses that read, on the very next read (kizuna/access/headrounds.py)."""

from __future__ import annotations

import pytest
from harness import Stack

from kizuna.access.check import GrantRevoked
from kizuna.services.read import serve_read

pytestmark = pytest.mark.anvil


def test_reads_that_arrived_before_a_head_request_share_it(anvil_stack: Stack) -> None:
    stack = anvil_stack
    patient, provider = stack.party(), stack.provider()
    record = stack.add_record(patient)
    stack.grant(patient, provider)
    access = stack.ctx.access
    rounds = access._head_rounds
    waiting = [access.arrival() for _ in range(3)]  # three reads queued for a thread
    sent = rounds.requests
    for arrived in waiting:
        request, signature = stack.request(provider, patient, record)
        serve_read(stack.ctx, request=request, signature=signature, arrived=arrived)
    assert rounds.requests == sent + 1  # the first asked the node; the others took its answer
    request, signature = stack.request(provider, patient, record)
    serve_read(stack.ctx, request=request, signature=signature)  # arrived now: asks again
    assert rounds.requests == sent + 2


def test_a_read_arriving_after_a_revoke_is_refused_though_an_older_answer_is_at_hand(
        anvil_stack: Stack) -> None:
    stack = anvil_stack
    patient, provider = stack.party(), stack.provider()
    record = stack.add_record(patient)
    scope_id = stack.grant(patient, provider)
    access = stack.ctx.access
    before = access.arrival()
    request, signature = stack.request(provider, patient, record)
    served = serve_read(stack.ctx, request=request, signature=signature, arrived=before)
    revoked = stack.chain.ledger.revoke(provider.address, scope_id, signer=patient.signer)
    assert revoked.block_number > served.head_block
    # The head asked before the revoke is the last answer the rounds hold; a read arriving now
    # must not be decided with it.
    after = access.arrival()
    request, signature = stack.request(provider, patient, record)
    with pytest.raises(GrantRevoked):
        serve_read(stack.ctx, request=request, signature=signature, arrived=after)
    # Nor with a default arrival (when the call begins).
    request, signature = stack.request(provider, patient, record)
    with pytest.raises(GrantRevoked):
        serve_read(stack.ctx, request=request, signature=signature)
    heads = [r.head_block for r in stack.ctx.receipts.select(patient=patient.address)]
    assert heads == [served.head_block] and all(h < revoked.block_number for h in heads)
