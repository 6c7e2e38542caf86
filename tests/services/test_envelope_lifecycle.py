"""The envelope lifecycle (kizuna.services.records.keep_stored) that record uploads, care messages
and batch staging share: a failure releases the blob unless a row uses it, and the row's write
transaction pins it again — so of two identical envelopes sent at once, the one that fails never
leaves the winner's envelope unpinned (which the garbage collector would then delete)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest
from hexbytes import HexBytes
from local_stack import LocalStack

from kizuna.chain.signers import Signer
from kizuna.crypto.commitment import commitment_of
from kizuna.errors import InputError
from kizuna.services import care
from kizuna.storage.envelope import encrypt_bytes
from kizuna.types import RecordId
from kizuna.wire.onchain import PreparedAction, SentTransaction


def _send_unmined(stack: LocalStack, signer: Signer, prepared: PreparedAction) -> bytes:
    """What a wallet does with ``eth_sendTransaction`` params; returns at once (not mined)."""
    params = prepared.transaction
    w3 = stack.chain.w3
    tx = {"to": params["to"], "data": params["data"], "value": int(params["value"], 16),
          "gas": int(params["gas"], 16), "maxFeePerGas": int(params["maxFeePerGas"], 16),
          "maxPriorityFeePerGas": int(params["maxPriorityFeePerGas"], 16),
          "chainId": int(params["chainId"], 16), "type": 2,
          "nonce": w3.eth.get_transaction_count(signer.address, "pending")}
    return bytes(w3.eth.send_raw_transaction(HexBytes(signer.sign_transaction(tx))))


def _mined_tx(stack: LocalStack) -> bytes:
    """A transaction of the latest block: mined, and no care message's announcement."""
    (tx, *_) = stack.chain.w3.eth.get_block("latest")["transactions"]
    assert isinstance(tx, bytes)
    return bytes(tx)


def _automine(stack: LocalStack, on: bool) -> None:
    stack.chain.w3.provider.make_request("evm_setAutomine", [on])  # type: ignore[arg-type]


def test_a_failed_twin_of_a_care_message_leaves_the_winners_envelope_pinned(
        stack: LocalStack) -> None:
    patient, provider = stack.patient(), stack.provider()
    patient.grant(provider.address, ["MedicationRequest"], expires_at=stack.now() + 600)
    scope = stack.ctx.index.grants_to(provider.address)[0].scope_id
    mined_before = _mined_tx(stack)
    inbox_key = care.inbox_key_of(stack.ctx, patient.address)
    message_id = RecordId(os.urandom(32))
    envelope = bytes(encrypt_bytes(b'{"resourceType":"MedicationRequest"}',
                                   owner_key=inbox_key.public_key, record_id=message_id,
                                   content_type="application/fhir+json"))
    prepared = care.prepare_care_event(stack.ctx, sender=provider.address,
                                       patient=patient.address, kind="prescription",
                                       ref=commitment_of(envelope), provider=provider.address,
                                       scope_id=scope)
    sent: dict[str, Any] = {}

    def winner(tx_hash: bytes) -> None:
        try:
            sent["message"] = care.send_message(
                stack.ctx, sender=provider.address, patient=patient.address,
                provider=provider.address, kind="prescription", message_id=message_id,
                envelope=envelope, transaction=SentTransaction(tx_hash))
        except BaseException as exc:  # reported by the assertion below
            sent["error"] = exc

    pins_before = set(stack.store.pins())
    _automine(stack, False)
    try:
        # The winner stores the envelope, then waits for its announcement to be mined.
        thread = threading.Thread(target=winner, args=(_send_unmined(stack, provider.signer,
                                                                     prepared),))
        thread.start()
        deadline = time.monotonic() + 30
        while not set(stack.store.pins()) - pins_before:
            assert time.monotonic() < deadline and thread.is_alive(), sent
            time.sleep(0.02)
        (cid,) = set(stack.store.pins()) - pins_before
        # Meanwhile the same envelope again, naming a transaction that did not announce it:
        # refused, and its blob — the same CID — released.
        with pytest.raises(InputError, match="CareEventLogged"):
            care.send_message(stack.ctx, sender=provider.address, patient=patient.address,
                              provider=provider.address, kind="prescription",
                              message_id=message_id, envelope=envelope,
                              transaction=SentTransaction(mined_before))
        assert cid not in stack.store.pins()  # the loser unpinned it: nothing used it yet
    finally:
        stack.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        _automine(stack, True)
    thread.join(60)
    assert "error" not in sent, sent
    message = sent["message"]
    assert message.cid == cid
    # The winner's row came with its envelope pinned again: the collector keeps it.
    assert cid in stack.store.pins()
    assert patient.open_message(message.ref) == b'{"resourceType":"MedicationRequest"}'


def test_a_failed_care_message_keeps_nothing(stack: LocalStack) -> None:
    patient, provider = stack.patient(), stack.provider()
    inbox_key = care.inbox_key_of(stack.ctx, patient.address)
    message_id = RecordId(os.urandom(32))
    envelope = bytes(encrypt_bytes(b"note", owner_key=inbox_key.public_key,
                                   record_id=message_id, content_type="text/plain"))
    mined = _mined_tx(stack)
    pins_before = set(stack.store.pins())
    with pytest.raises(InputError, match="CareEventLogged"):
        care.send_message(stack.ctx, sender=provider.address, patient=patient.address,
                          provider=provider.address, kind="report", message_id=message_id,
                          envelope=envelope, transaction=SentTransaction(mined))
    assert set(stack.store.pins()) == pins_before
