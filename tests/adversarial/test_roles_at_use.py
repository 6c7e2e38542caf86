"""Issue 15, finding 3: roles are read at use, not at login.

Against the real API (``kizuna serve`` under uvicorn): a provider signs in and reads; the
registrar suspends it on chain; its very next read and its next provider route are refused
(403), and its session is ended. An auditor signs in and reads ``/auditor/log``; the admin
revokes the role on chain; the next ``/auditor/log`` and ``/auditor/export`` are refused (403).
On the code before the fix the roles were fixed at login for the session's 8 hours and a read
under a live grant never looked at the provider's registry status: all of these answered 200.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from apienv import ChainEnv
from participants import HttpProvider, Participant, People

from kizuna.chain.agents.access_log import AUDITOR_ROLE
from kizuna.chain.signers import LocalKeySigner

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test suspends or
revokes only its own provider and auditor."""


def _refusal(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 403, answer.text
    error: dict[str, Any] = answer.json()["error"]
    return error


def test_a_suspended_provider_is_refused_at_its_next_request(chain_env: ChainEnv,
                                                             people: People) -> None:
    patient, provider = people.patient, people.provider
    sealed = patient.add(b'{"resourceType":"Observation","status":"final"}',
                         label="Observation:laboratory", content_type="application/fhir+json")
    granted = patient.grant(provider.address, provider.keys.public_key,
                            ["Observation:laboratory"])
    assert granted.status_code == 200, granted.text
    assert provider.read(patient.address, sealed) == sealed.content
    assert provider.get("/provider/patients").json() == [patient.address]

    chain_env.chain.registry.suspend_provider(provider.address, signer=chain_env.admin)

    # The next read: refused by the access check at the head, although the grant is live.
    refused = _refusal(provider.request_read(patient.address, sealed.record_id))
    assert refused["kind"] == "ProviderSuspended"
    assert "suspended in the provider registry" in refused["message"]
    # The session was opened as a provider (and is nothing else): it is ended, so the next
    # provider route (and any other) is refused, saying why.
    refused = _refusal(provider.get("/provider/patients"))
    assert refused["kind"] == "SessionEnded"
    assert "lost the provider role" in refused["message"]
    assert _refusal(provider.get("/provider/inbox"))["kind"] == "SessionEnded"
    assert _refusal(provider.get("/auth/me"))["kind"] == "SessionEnded"

    # Signing in again gives a session with the roles the chain gives now (patient only),
    # and the provider routes stay closed to it.
    provider.login()
    assert provider.roles == ["patient"]
    refused = _refusal(provider.get("/provider/patients"))
    assert refused["kind"] == "RoleMissing"
    assert "not an active provider" in refused["message"]
    assert _refusal(provider.request_read(patient.address, sealed.record_id))["kind"] == \
        "ProviderSuspended"

    # Reinstated, it reads again at its next request (no new sign-in needed: roles at use).
    chain_env.chain.registry.reinstate_provider(provider.address, signer=chain_env.admin)
    assert provider.get("/provider/patients").json() == [patient.address]
    assert provider.read(patient.address, sealed) == sealed.content


def test_a_suspended_provider_route_is_refused_before_any_read(chain_env: ChainEnv,
                                                                people: People) -> None:
    """The same through a provider route first (not the read route): refused with the role
    named, and the session ended."""
    provider = people.provider
    assert provider.get("/provider/records").status_code == 200
    chain_env.chain.registry.suspend_provider(provider.address, signer=chain_env.admin)
    refused = _refusal(provider.get("/provider/records"))
    assert refused["kind"] == "RoleMissing"
    assert "no longer an active provider" in refused["message"]
    assert "this session is ended" in refused["message"]
    assert _refusal(provider.get("/provider/patients"))["kind"] == "SessionEnded"


def test_an_auditor_whose_role_is_revoked_is_refused(chain_env: ChainEnv,
                                                    people: People) -> None:
    auditor = people.auditor
    assert auditor.roles == ["patient", "auditor"]
    assert auditor.get("/auditor/log").status_code == 200
    assert auditor.get("/auditor/export").status_code == 200

    chain_env.chain.access_log.revoke_role(AUDITOR_ROLE, auditor.address,
                                           signer=chain_env.admin)

    refused = _refusal(auditor.get("/auditor/log"))
    assert "no longer holds the auditor role" in refused["message"]
    refused = _refusal(auditor.get("/auditor/export"))
    assert refused["kind"] == "SessionEnded"
    assert "lost the auditor role" in refused["message"]
    # A new session has the patient role only; the auditor routes stay closed.
    auditor.login()
    assert auditor.roles == ["patient"]
    assert _refusal(auditor.get("/auditor/export"))["kind"] == "RoleMissing"


def test_a_session_with_another_role_keeps_it(chain_env: ChainEnv, people: People,
                                              http: httpx.Client) -> None:
    """A provider that is also an auditor loses only the provider role on suspension: its
    session goes on for the auditor routes, and no longer names the provider role."""
    both = HttpProvider(signer=LocalKeySigner.generate(), chain=chain_env.chain, http=http)
    chain_env.add_provider(both.signer, both.keys.public_key.to_bytes())
    chain_env.grant_auditor(both.address)
    both.login()
    assert both.roles == ["patient", "provider", "auditor"]
    chain_env.chain.registry.suspend_provider(both.address, signer=chain_env.admin)
    refused = _refusal(both.get("/provider/patients"))
    assert "the session keeps its other roles" in refused["message"]
    assert both.get("/auditor/log").status_code == 200
    assert both.get("/auth/me").json()["roles"] == ["patient", "auditor"]


def test_a_role_granted_after_login_is_honoured(chain_env: ChainEnv,
                                                http: httpx.Client) -> None:
    """The other side of roles at use: a wallet that signed in as a plain patient and was
    made an auditor afterwards reaches the auditor routes without signing in again."""
    later = Participant(signer=LocalKeySigner.generate(), chain=chain_env.chain,
                        http=http).login()
    assert later.roles == ["patient"]
    assert _refusal(later.get("/auditor/log"))["kind"] == "RoleMissing"
    chain_env.grant_auditor(later.address)
    assert later.get("/auditor/log").status_code == 200
