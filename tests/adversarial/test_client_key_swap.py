"""Issue 15, finding 4: the client trusts no server it did not have to.

A man in the middle (a real HTTP front: an httpx transport that forwards every request to the
real API under uvicorn and rewrites the answers) hands the provider's client a patient's inbox
key it holds itself. Before the fix the client checked only that the statement in the answer
was signed by the address in the answer, then encrypted to the answer's ``public_key``: the
front decrypted the report and the access-request note it relayed. Now the client takes the key
only from the patient's own statement, rebuilt and checked on its side
(``kizuna.client.chainview.patient_encryption_key``): it refuses to send, naming the mismatch,
and nothing the front relays opens with its key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from apienv import ApiServer, ChainEnv
from eth_utils.crypto import keccak

from kizuna.chain.eip712 import Eip712Domain
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.api_service import ApiService
from kizuna.client.http import ApiClient
from kizuna.client.keys import derivation_domain, participant_keys
from kizuna.client.provider import ProviderClient
from kizuna.crypto import pre
from kizuna.errors import KizunaError
from kizuna.receipts.request import proxy_domain
from kizuna.storage.envelope import decrypt_bytes
from kizuna.types import ScopeId
from kizuna.wire.care import UntrustedKey, inbox_key_typed_data

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test's patient
and providers are its own."""

Rewrite = Callable[[dict[str, Any]], dict[str, Any]]


class Front(httpx.BaseTransport):
    """A man in the middle: forwards to the real API over a real connection, rewrites the
    JSON answers of ``GET /patients/{p}/inbox-key`` with ``rewrite``, and keeps every request
    body it relays (what it could read)."""

    def __init__(self, rewrite: Rewrite) -> None:
        self.inner = httpx.HTTPTransport()
        self.rewrite = rewrite
        self.relayed: list[tuple[str, bytes]] = []
        self.swapped = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        if body:
            self.relayed.append((request.url.path, body))
        answer = self.inner.handle_request(request)
        if (request.method == "GET" and request.url.path.endswith("/inbox-key")
                and answer.status_code == 200):
            answer.read()
            self.swapped += 1
            return httpx.Response(200, json=self.rewrite(answer.json()))
        return answer

    def close(self) -> None:
        self.inner.close()


class Attacker:
    """What the front holds: its own Umbral key, and a wallet to sign statements with."""

    def __init__(self) -> None:
        self.secret = pre.UmbralSecretKey.random()
        self.public = self.secret.public_key
        self.wallet = LocalKeySigner.generate()

    def opens(self, relayed: list[tuple[str, bytes]]) -> list[bytes]:
        """Every relayed body the attacker's key decrypts."""
        opened = []
        for _, body in relayed:
            try:
                opened.append(bytes(decrypt_bytes(body, owner_sk=self.secret)))
            except (KizunaError, ValueError):
                continue
        return opened


def _hx(data: bytes) -> str:
    return "0x" + bytes(data).hex()


@pytest.fixture
def patient(chain_env: ChainEnv, api_server: ApiServer) -> Iterator[LocalKeySigner]:
    """A patient who published their inbox key (signed by their wallet) through the API."""
    signer = chain_env.new_signer()
    keys = participant_keys(signer, derivation_domain(chain_env.chain))
    domain = proxy_domain(chain_id=chain_env.chain.chain_id,
                          access_log=chain_env.deployment.access_log)
    statement = inbox_key_typed_data(domain, patient=signer.address,
                                          public_key=keys.public_key.to_bytes())
    with ApiClient(api_server.url) as api:
        api.login(signer)
        api.publish_inbox_key(public_key=keys.public_key.to_bytes(),
                              signature=signer.sign_typed_data(statement))
    yield signer


def _provider(chain_env: ChainEnv, api_server: ApiServer, front: Front,
              patient: LocalKeySigner) -> Iterator[ProviderClient]:
    """A registered provider whose client reaches the API through ``front`` (its chain
    connection is its own, to the node, as the CLI's is), holding a live grant of
    ``patient``'s (the ledger takes a report only from a provider with one)."""
    signer = chain_env.new_signer()
    api = ApiClient(client=httpx.Client(base_url=api_server.url, transport=front, timeout=60))
    service = ApiService(api, chain_env.chain)
    client = ProviderClient(signer=signer, service=service, chain=chain_env.chain)
    chain_env.add_provider(signer, client.public_key.to_bytes())
    chain_env.chain.ledger.grant(signer.address, ScopeId(bytes(keccak(text="scope:report"))),
                                 chain_env.chain.head().timestamp + 3600, signer=patient)
    api.login(signer)
    try:
        yield client
    finally:
        service.close()


def _swap_key(attacker: Attacker) -> Rewrite:
    """The key swapped, the patient's genuine statement and signature left in place."""
    def rewrite(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "public_key": _hx(attacker.public.to_bytes())}
    return rewrite


def _own_statement(attacker: Attacker, domain: Eip712Domain) -> Rewrite:
    """A whole statement of the attacker's own: its wallet signs its key, and the answer
    names the attacker's wallet as the key's owner."""
    def rewrite(body: dict[str, Any]) -> dict[str, Any]:
        statement = inbox_key_typed_data(domain, patient=attacker.wallet.address,
                                              public_key=attacker.public.to_bytes())
        return {"patient": attacker.wallet.address, "public_key": _hx(attacker.public.to_bytes()),
                "signature": _hx(attacker.wallet.sign_typed_data(statement)),
                "statement": statement.to_json()}
    return rewrite


REPORT = b'{"resourceType":"Observation","code":{"text":"HIV viral load"},"valueString":"<20"}'
NOTE = b"Please share your recent HIV viral load results before Tuesday."


def test_a_swapped_inbox_key_is_refused_for_a_report_and_a_request_note(
        chain_env: ChainEnv, api_server: ApiServer, patient: LocalKeySigner) -> None:
    attacker = Attacker()
    front = Front(_swap_key(attacker))
    for provider in _provider(chain_env, api_server, front, patient):
        with pytest.raises(UntrustedKey, match="but the key the patient signed is"):
            provider.send(patient.address, "report", REPORT)
        with pytest.raises(UntrustedKey, match="refusing to encrypt to it"):
            provider.request_access(patient.address, NOTE)
    assert front.swapped == 2  # the front did answer both times
    assert not [path for path, _ in front.relayed if "/care/messages/" in path
                or "/provider/requests/" in path]  # nothing was sent
    assert attacker.opens(front.relayed) == []


def test_a_statement_of_another_wallet_is_refused(chain_env: ChainEnv, api_server: ApiServer,
                                                 patient: LocalKeySigner) -> None:
    attacker = Attacker()
    domain = proxy_domain(chain_id=chain_env.chain.chain_id,
                          access_log=chain_env.deployment.access_log)
    front = Front(_own_statement(attacker, domain))
    for provider in _provider(chain_env, api_server, front, patient):
        with pytest.raises(UntrustedKey, match="answered with one of"):
            provider.send(patient.address, "report", REPORT)
        with pytest.raises(UntrustedKey, match="answered with one of"):
            provider.request_access(patient.address, NOTE)
    assert attacker.opens(front.relayed) == []


def test_a_statement_of_another_deployment_is_refused(chain_env: ChainEnv,
                                                      api_server: ApiServer,
                                                      patient: LocalKeySigner) -> None:
    """The patient's own signature over their own key, but in another deployment's domain
    (another chain id): not a statement about this deployment, so not taken."""
    keys = participant_keys(patient, derivation_domain(chain_env.chain))
    foreign = proxy_domain(chain_id=1, access_log=chain_env.deployment.access_log)
    statement = inbox_key_typed_data(foreign, patient=patient.address,
                                          public_key=keys.public_key.to_bytes())
    signature = patient.sign_typed_data(statement)

    def rewrite(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "signature": _hx(signature), "statement": statement.to_json()}

    front = Front(rewrite)
    for provider in _provider(chain_env, api_server, front, patient):
        with pytest.raises(UntrustedKey, match="another deployment"):
            provider.send(patient.address, "report", REPORT)


def test_an_honest_front_delivers_to_the_patient(chain_env: ChainEnv, api_server: ApiServer,
                                                 patient: LocalKeySigner) -> None:
    """The check lets the patient's genuine key through: the report is sent and only the
    patient's key opens what was relayed."""
    front = Front(lambda body: body)
    for provider in _provider(chain_env, api_server, front, patient):
        sent = provider.send(patient.address, "report", REPORT)
        assert sent.kind == "report"
    keys = participant_keys(patient, derivation_domain(chain_env.chain))
    relayed = [body for path, body in front.relayed if "/care/messages/" in path]
    assert len(relayed) == 1
    assert bytes(decrypt_bytes(relayed[0], owner_sk=keys.wallet.decrypting_key)) == REPORT
