"""The client's sign-in text is the ``siwe`` library's EIP-4361 message, field for field."""

from __future__ import annotations

import pytest
from siwe import siwe as siwe_lib

from kizuna.client.http import siwe_message

FIELDS = {
    "domain": "127.0.0.1:8000", "address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "uri": "http://127.0.0.1:8000", "chain_id": 31337, "nonce": "a1B2c3D4e5F6g7H8i",
    "statement": "Sign in to Kizuna.", "issued_at": "2026-12-07T01:30:00.000Z",
}


def test_the_text_is_the_librarys_prepared_message() -> None:
    expected = siwe_lib.SiweMessage(version="1", **FIELDS).prepare_message()
    assert siwe_message(**FIELDS) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("chain_id", [1, 31337])
def test_the_service_parser_reads_back_every_field(chain_id: int) -> None:
    fields = {**FIELDS, "chain_id": chain_id}
    parsed = siwe_lib.SiweMessage.from_message(message=siwe_message(**fields),  # type: ignore[arg-type]
                                               abnf=True)
    assert (parsed.domain, parsed.address, parsed.uri, parsed.chain_id, parsed.nonce,
            parsed.statement, parsed.issued_at, parsed.version) == (
        FIELDS["domain"], FIELDS["address"], FIELDS["uri"], chain_id, FIELDS["nonce"],
        FIELDS["statement"], FIELDS["issued_at"], "1")
