"""The upload intake on its own (no chain): however the envelope is cut into chunks, the header
is checked, the size counted and the commitment equals the envelope's SHA-256; anything that is
not a whole envelope of this record is refused."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.crypto import pre
from kizuna.crypto.commitment import commitment_of
from kizuna.errors import EnvelopeFormatError, InputError
from kizuna.services.records import EnvelopeIntake
from kizuna.storage.envelope import MAX_PREAMBLE_SIZE, encrypt_bytes
from kizuna.types import RecordId
from kizuna.wire.records import EnvelopeTooLarge

OWNER = pre.UmbralSecretKey.random().public_key
RID = RecordId(bytes(range(32)))


def _envelope(size: int, *, content_type: str = "application/fhir+json",
              record_id: RecordId = RID) -> bytes:
    return bytes(encrypt_bytes(os.urandom(size), owner_key=OWNER, record_id=record_id,
                               content_type=content_type, segment_size=1024))


def _cut(data: bytes, sizes: list[int]) -> list[bytes]:
    pieces, pos = [], 0
    for size in sizes:
        if pos >= len(data):
            break
        pieces.append(data[pos:pos + size])
        pos += size
    if pos < len(data):
        pieces.append(data[pos:])
    return pieces


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 6000), sizes=st.lists(st.integers(0, 700), max_size=40))
def test_any_chunking_gives_the_same_commitment(size: int, sizes: list[int]) -> None:
    envelope = _envelope(size)
    intake = EnvelopeIntake(record_id=RID, max_size=1 << 20)
    out = b"".join(intake.chunks(_cut(envelope, sizes)))
    assert out == envelope
    assert intake.size == len(envelope)
    assert intake.commitment == commitment_of(envelope)
    assert intake.header is not None and intake.header.record_id == RID


def test_small_envelope_below_the_preamble_bound() -> None:
    envelope = _envelope(10)
    assert len(envelope) < MAX_PREAMBLE_SIZE
    intake = EnvelopeIntake(record_id=RID, max_size=1 << 20)
    assert b"".join(intake.chunks([envelope])) == envelope


@pytest.mark.parametrize("cut", [0, 10, 200])
def test_a_preamble_without_segments_is_refused(cut: int) -> None:
    envelope = _envelope(100)
    intake = EnvelopeIntake(record_id=RID, max_size=1 << 20)
    header_only = envelope[:cut] if cut else b""
    with pytest.raises(EnvelopeFormatError):
        b"".join(intake.chunks([header_only]))


def test_preamble_only_is_refused() -> None:
    envelope = _envelope(100)
    intake = EnvelopeIntake(record_id=RID, max_size=1 << 20)
    size = len(envelope) - 100 - 16
    with pytest.raises(EnvelopeFormatError, match="no segments"):
        b"".join(intake.chunks([envelope[:size]]))


def test_limit_counts_every_byte() -> None:
    envelope = _envelope(5000)
    exact = EnvelopeIntake(record_id=RID, max_size=len(envelope))
    assert b"".join(exact.chunks(_cut(envelope, [100] * 100))) == envelope
    over = EnvelopeIntake(record_id=RID, max_size=len(envelope) - 1)
    with pytest.raises(EnvelopeTooLarge) as raised:
        b"".join(over.chunks(_cut(envelope, [100] * 100)))
    assert raised.value.field == "envelope" and raised.value.limit == len(envelope) - 1


def test_wrong_record_and_content_type_are_named() -> None:
    other = _envelope(50, record_id=RecordId(b"\x01" * 32))
    with pytest.raises(InputError, match="names record 0x0101"):
        b"".join(EnvelopeIntake(record_id=RID, max_size=1 << 20).chunks([other]))
    script = _envelope(50, content_type="text/html")
    with pytest.raises(InputError, match="text/html"):
        b"".join(EnvelopeIntake(record_id=RID, max_size=1 << 20).chunks([script]))
    with_params = _envelope(50, content_type="application/fhir+json; fhirVersion=4.0")
    intake = EnvelopeIntake(record_id=RID, max_size=1 << 20)
    assert b"".join(intake.chunks([with_params])) == with_params


def test_not_an_envelope() -> None:
    with pytest.raises(EnvelopeFormatError, match="magic"):
        b"".join(EnvelopeIntake(record_id=RID, max_size=1 << 20).chunks([b"%PDF-1.4" * 400]))


def test_malformed_signed_actions_are_input_errors() -> None:
    from kizuna.chain.eip712 import SignedAction, TypedData, ledger_domain, revoke_typed_data
    from kizuna.services.onchain import signed_field

    domain = ledger_domain(chain_id=31337, ledger="0x" + "11" * 20)
    typed = revoke_typed_data(domain, patient="0x" + "22" * 20, provider="0x" + "33" * 20,
                              scope_id=b"\x01" * 32, nonce=0, deadline=10)
    action = SignedAction(typed, b"\x00" * 65)
    assert signed_field(action, "scopeId", "bytes32") == b"\x01" * 32
    assert signed_field(action, "deadline", "uint") == 10
    # A malformed field is refused when the action is made (issue #15: it used to pass and
    # crash the relay later), with the same field names signed_field uses.
    for name, value, reason in [("scopeId", "0x12", "64 hex"), ("deadline", "soon", "integer"),
                                ("provider", None, "missing")]:
        broken = {**typed.to_json()}
        broken["message"] = {**broken["message"], name: value}
        if value is None:
            del broken["message"][name]
        with pytest.raises(InputError, match=reason) as raised:
            SignedAction(TypedData.from_json(broken), b"\x00" * 65)
        assert raised.value.field == f"typed_data.message.{name}"
    other_types = {**typed.to_json()}
    other_types["types"] = {**other_types["types"],
                            "Revoke": [{"name": "patient", "type": "address"}]}
    with pytest.raises(InputError, match="types"):
        signed_field(SignedAction(TypedData.from_json(other_types), b"\x00" * 65), "patient",
                     "address")
