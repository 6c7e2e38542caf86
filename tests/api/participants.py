"""Patients, providers and auditors that use the API over HTTP only, doing their own
cryptography locally (keys derived from their wallet, envelopes, key fragments, signatures,
decryption) — exactly what a browser or the CLI does. The service sees envelopes, public keys,
key fragments and signatures; nothing else."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from apienv import ChainEnv, bearer, sign_in

from kizuna.chain.connection import Chain
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.keys import ParticipantKeys, derivation_domain, participant_keys
from kizuna.crypto import pre
from kizuna.crypto.commitment import commitment_of
from kizuna.crypto.scopes import scope_label
from kizuna.receipts.request import ReadRequest, proxy_domain
from kizuna.storage.envelope import EnvelopeReader, encrypt_bytes, read_header
from kizuna.types import RecordId, ScopeId
from kizuna.wire.scopes import scope_keys_typed_data


def hx(value: bytes) -> str:
    return "0x" + bytes(value).hex()


@dataclass
class Participant:
    signer: LocalKeySigner
    chain: Chain
    http: httpx.Client
    token: str = ""
    roles: list[str] = field(default_factory=list)
    _keys: ParticipantKeys | None = None

    @property
    def address(self) -> str:
        return self.signer.address

    @property
    def keys(self) -> ParticipantKeys:
        if self._keys is None:
            self._keys = participant_keys(self.signer, derivation_domain(self.chain))
        return self._keys

    def login(self) -> Participant:
        answer = sign_in(self.http, self.signer)
        self.token, self.roles = str(answer["token"]), list(answer["roles"])
        return self

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, headers=self.auth, **kwargs)

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.http.post(path, headers=self.auth, json=body)

    def deadline(self) -> int:
        return self.chain.head().timestamp + 3600


@dataclass
class Sealed:
    record_id: RecordId
    scope_id: ScopeId
    envelope: bytes
    content: bytes
    content_type: str


class HttpPatient(Participant):
    """A patient: seals records locally, uploads envelopes, grants and revokes, all signed."""

    _scopes: set[ScopeId]

    def scope(self, label: str) -> ScopeId:
        if not hasattr(self, "_scopes"):
            self._scopes = set()
        sid = self.keys.scope_id(scope_label(label))
        if sid not in self._scopes:
            delegating = self.keys.scope_public(sid)
            domain = proxy_domain(chain_id=self.chain.chain_id,
                                  access_log=self.chain.deployment.access_log)
            typed = scope_keys_typed_data(domain, patient=self.signer.address, scope_id=sid,
                                          delegating_key=delegating,
                                          verifying_key=self.keys.verifying_key)
            answer = self.post("/patient/scope-keys", {
                "scope_id": hx(sid), "delegating_key": hx(delegating.to_bytes()),
                "verifying_key": hx(self.keys.verifying_key.to_bytes()),
                "signature": hx(self.signer.sign_typed_data(typed))})
            assert answer.status_code == 204, answer.text
            self._scopes.add(sid)
        return sid

    def seal(self, content: bytes, *, label: str, content_type: str) -> Sealed:
        sid = self.scope(label)
        rid = RecordId(os.urandom(32))
        envelope = bytes(encrypt_bytes(content, owner_key=self.keys.scope_public(sid),
                                       record_id=rid, content_type=content_type))
        return Sealed(rid, sid, envelope, content, content_type)

    def registration(self, sealed: Sealed, *, commitment: bytes | None = None) -> str:
        typed = self.chain.ledger.register_record_typed_data(
            patient=self.signer.address, record_id=sealed.record_id,
            commitment=commitment or commitment_of(sealed.envelope), scope_id=sealed.scope_id,
            deadline=self.deadline())
        return json.dumps({"signed": {"typed_data": typed.to_json(),
                                      "signature": hx(self.signer.sign_typed_data(typed))}})

    def upload(self, sealed: Sealed, *, body: Any = None,
               registration: str | None = None) -> httpx.Response:
        return self.http.put(
            f"/patient/records/{hx(sealed.record_id)}",
            content=sealed.envelope if body is None else body,
            headers={**self.auth, "X-Kizuna-Scope-Id": hx(sealed.scope_id),
                     "X-Kizuna-Registration": registration or self.registration(sealed),
                     "Content-Type": "application/octet-stream"})

    def add(self, content: bytes, *, label: str, content_type: str) -> Sealed:
        sealed = self.seal(content, label=label, content_type=content_type)
        answer = self.upload(sealed)
        assert answer.status_code == 201, answer.text
        return sealed

    def grant(self, provider: str, provider_key: pre.UmbralPublicKey, labels: list[str], *,
              expires_in: int = 86400) -> httpx.Response:
        ids = [self.scope(label) for label in labels]
        expires_at = self.chain.head().timestamp + expires_in
        ledger = self.chain.ledger
        if len(ids) == 1:
            typed = ledger.grant_typed_data(patient=self.signer.address, provider=provider,
                                            scope_id=ids[0], expires_at=expires_at,
                                            deadline=self.deadline())
        else:
            typed = ledger.grant_batch_typed_data(patient=self.signer.address,
                                                  provider=provider, scope_ids=ids,
                                                  expires_at=expires_at,
                                                  deadline=self.deadline())
        kfrags = {hx(sid): [hx(k.to_bytes()) for k in self.keys.kfrags_for(
            sid, provider_key, threshold=1, shares=1)] for sid in ids}
        return self.post("/patient/grants", {
            "provider": provider, "scope_ids": [hx(s) for s in ids], "expires_at": expires_at,
            "kfrags": kfrags, "authorization": {"signed": {
                "typed_data": typed.to_json(),
                "signature": hx(self.signer.sign_typed_data(typed))}}})

    def revoke(self, provider: str, label: str) -> httpx.Response:
        sid = self.keys.scope_id(scope_label(label))
        typed = self.chain.ledger.revoke_typed_data(patient=self.signer.address,
                                                    provider=provider, scope_id=sid,
                                                    deadline=self.deadline())
        return self.post("/patient/revocations", {
            "provider": provider, "scope_id": hx(sid), "authorization": {"signed": {
                "typed_data": typed.to_json(),
                "signature": hx(self.signer.sign_typed_data(typed))}}})


class HttpProvider(Participant):
    """A provider: signs read requests, fetches ciphertext by CID, decrypts locally."""

    def read_request(self, patient: str, record_id: bytes, *,
                     signer: LocalKeySigner | None = None,
                     issued_at: int | None = None) -> dict[str, Any]:
        request = ReadRequest.new(provider=self.signer.address, patient=patient,
                                  record_id=record_id)
        if issued_at is not None:
            request = ReadRequest(provider=request.provider, patient=request.patient,
                                  record_id=request.record_id, request_id=request.request_id,
                                  issued_at=issued_at)
        domain = proxy_domain(chain_id=self.chain.chain_id,
                              access_log=self.chain.deployment.access_log)
        signature = (signer or self.signer).sign_typed_data(request.typed_data(domain))
        return {"request": request.to_json(), "signature": hx(signature)}

    def request_read(self, patient: str, record_id: bytes) -> httpx.Response:
        return self.post("/provider/reads", self.read_request(patient, record_id))

    def fetch(self, cid: str) -> bytes:
        answer = self.get(f"/content/{cid}")
        assert answer.status_code == 200, answer.text
        return answer.content

    def open(self, grant: dict[str, Any], envelope: bytes, *, commitment: bytes) -> bytes:
        header = read_header(envelope)
        assert hx(header.record_id) == grant["record_id"]
        delegating = pre.UmbralPublicKey.from_bytes(bytes.fromhex(grant["delegating_key"][2:]),
                                                    field="delegating_key")
        verifying = pre.UmbralPublicKey.from_bytes(bytes.fromhex(grant["verifying_key"][2:]),
                                                   field="verifying_key")
        cfrags = pre.verify_cfrags([bytes.fromhex(c[2:]) for c in grant["cfrags"]],
                                   capsule=header.capsule, verifying_key=verifying,
                                   delegating_key=delegating, receiving_key=self.keys.public_key)
        key = header.unwrap_for_grantee(self.keys.wallet.decrypting_key,
                                        delegating_key=delegating, cfrags=cfrags,
                                        threshold=len(cfrags))
        return b"".join(EnvelopeReader(envelope).decrypt(key, expected_commitment=commitment))

    def read(self, patient: str, sealed: Sealed) -> bytes:
        answer = self.request_read(patient, sealed.record_id)
        assert answer.status_code == 200, answer.text
        grant = answer.json()
        return self.open(grant, self.fetch(grant["cid"]),
                         commitment=commitment_of(sealed.envelope))


def wait_until(predicate: Any, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@dataclass
class People:
    patient: HttpPatient
    provider: HttpProvider
    auditor: Participant


def signed_in_provider(chain_env: ChainEnv, http: httpx.Client) -> HttpProvider:
    """A new provider, registered in the deployment's registry and signed in."""
    provider = HttpProvider(signer=LocalKeySigner.generate(), chain=chain_env.chain, http=http)
    chain_env.add_provider(provider.signer, provider.keys.public_key.to_bytes())
    provider.login()
    return provider


def signed_in_auditor(chain_env: ChainEnv, http: httpx.Client) -> Participant:
    """A new wallet with the auditor role, signed in."""
    auditor = Participant(signer=LocalKeySigner.generate(), chain=chain_env.chain, http=http)
    chain_env.grant_auditor(auditor.signer.address)
    auditor.login()
    return auditor
