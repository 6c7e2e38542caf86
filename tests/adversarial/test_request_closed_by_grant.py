"""Issue 15, finding 10: a grant answers (closes) the provider's open access request.

An open access request lets the provider log care events for the patient (its note, a
prescription) for ``REQUEST_TTL`` (14 days). Before the fix a grant left the request open, so a
patient who granted and then revoked (or whose grant expired) still had a provider able to log
a prescription for up to 14 days. Now the ledger closes the request in the grant itself
(``AccessRequestClosed``, closed by the patient), whoever sends the grant (the API's relayer, the
patient's wallet), and the request's authority ends with it.

Against the real API (the patient grants and revokes through it, relayed and signed) and a real
anvil (the provider's transactions are its own wallet's)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import pytest

from kizuna.chain.models import CareEventKind
from kizuna.errors import ContractReverted
from kizuna.types import Commitment

if TYPE_CHECKING:
    from apienv import ChainEnv
    from participants import People

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test signs in its
own wallets."""

LAB = "Observation:laboratory"


def _request(env: ChainEnv, people: People) -> int:
    """The provider asks the patient for access from its own wallet; the request's end."""
    provider, patient = people.provider, people.patient
    env.fund(provider.address)
    env.chain.ledger.request_access(patient.address, Commitment(os.urandom(32)),
                                    signer=provider.signer)
    until = env.chain.ledger.request_open_until(patient.address, provider.address)
    assert until > env.chain.head().timestamp
    return until


def _prescribe(env: ChainEnv, people: People) -> None:
    """The provider logs a prescription for the patient (authority: none but the request)."""
    env.chain.ledger.log_care_event(people.patient.address, CareEventKind.PRESCRIPTION_ISSUED,
                                    Commitment(os.urandom(32)), signer=people.provider.signer,
                                    provider=people.provider.address)


def test_a_grant_then_a_revoke_leaves_the_provider_no_request_authority(
        chain_env: ChainEnv, people: People) -> None:
    patient, provider = people.patient, people.provider
    _request(chain_env, people)
    _prescribe(chain_env, people)  # the open request allows it: that is what requests are for
    granted = patient.grant(provider.address, provider.keys.public_key, [LAB])
    assert granted.status_code == 200, granted.text
    ledger = chain_env.chain.ledger
    assert ledger.request_open_until(patient.address, provider.address) == 0  # answered
    closed = ledger.contract.events.AccessRequestClosed.get_logs(
        from_block=granted.json()["block_number"], to_block=granted.json()["block_number"])
    assert [dict(e["args"]) for e in closed] == [
        {"patient": patient.address, "provider": provider.address, "closedBy": patient.address}]
    revoked = patient.revoke(provider.address, LAB)
    assert revoked.status_code == 200, revoked.text
    with pytest.raises(ContractReverted) as refused:
        _prescribe(chain_env, people)
    assert refused.value.name == "ConsentLedgerCareEventNotAllowed"


def test_an_expired_grant_leaves_the_provider_no_request_authority(
        chain_env: ChainEnv, people: People) -> None:
    patient, provider = people.patient, people.provider
    _request(chain_env, people)
    chain_env.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    granted = patient.grant(provider.address, provider.keys.public_key, [LAB], expires_in=4)
    assert granted.status_code == 200, granted.text
    ends = chain_env.chain.ledger.grant_of(patient.address, provider.address,
                                           patient.scope(LAB))
    assert ends is not None
    while time.time() <= ends.expires_at:
        time.sleep(0.1)
    chain_env.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    with pytest.raises(ContractReverted) as refused:
        _prescribe(chain_env, people)
    assert refused.value.name == "ConsentLedgerCareEventNotAllowed"


def test_a_grant_to_another_provider_leaves_the_request_open(
        chain_env: ChainEnv, people: People) -> None:
    """Only the matching request is answered: the patient's grant to someone else is no answer
    to this provider."""
    patient, provider = people.patient, people.provider
    until = _request(chain_env, people)
    other = chain_env.new_signer()
    chain_env.add_provider(other, provider.keys.public_key.to_bytes())
    granted = patient.grant(other.address, provider.keys.public_key, [LAB])
    assert granted.status_code == 200, granted.text
    assert chain_env.chain.ledger.request_open_until(patient.address, provider.address) == until
    _prescribe(chain_env, people)
