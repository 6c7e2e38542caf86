"""``ApiService``: the client's :class:`~kizuna.client.service.KizunaService` over the HTTP API.

The role commands (``kizuna patient|provider ...``) run the same :class:`PatientClient` /
:class:`ProviderClient` code against the API as in-process (``--local``). This adapter puts
the service calls on the API's routes (:class:`~kizuna.client.http.ApiClient`, signed in with
SIWE) and takes what is *public chain state* from the participant's own node connection
(domains, nonces for typed data, provider keys from the registry, the registered commitment a
read is checked against, grant lists from the chain's events) — the service's word is not
needed, and not trusted, for those.

Not available over HTTP yet (the API has no route): the emergency kit (``leave_kit``) and
record versions (``supersedes``); both say so with a ``ConfigError`` naming ``--local``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from kizuna.chain.connection import Chain
from kizuna.chain.eip712 import Eip712Domain, SignedAction, TypedData
from kizuna.chain.index.store import EventIndex
from kizuna.chain.models import Grant, Provider
from kizuna.client.chainview import registered_commitment
from kizuna.client.http import ApiClient, _error
from kizuna.client.keys import derivation_domain
from kizuna.client.service import Envelope
from kizuna.crypto import pre
from kizuna.crypto.wallet_keys import KeyDerivationDomain
from kizuna.errors import AccessDenied, ConfigError, NodeUnreachable, NotFoundError
from kizuna.proxy.kfrags import ScopeKeys, scope_keys_typed_data
from kizuna.receipts.request import ReadRequest, proxy_domain
from kizuna.services import care, grants, guardians, inbox, records
from kizuna.services.onchain import SentTransaction, checked_address
from kizuna.services.read import ReadGrant
from kizuna.storage.store import ContentStream
from kizuna.types import Address, Cid, Commitment, RecordId, ScopeId

_CHUNK = 1 << 18


def _hx(value: bytes | bytearray) -> str:
    return "0x" + bytes(value).hex()


def _unhex(value: str) -> bytes:
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


def _stream(chunks: Iterator[bytes], cid: str = "") -> ContentStream:
    return ContentStream(chunks, cid=Cid(cid))


def _care_message(body: Mapping[str, Any]) -> care.CareMessage:
    return care.CareMessage(
        ref=Commitment(_unhex(body["ref"])), cid=Cid(body["cid"]), patient=body["patient"],
        provider=body.get("provider"), sender=body["sender"], kind=body["kind"],
        content_type=body["content_type"], size=int(body["size"]),
        tx_hash=_unhex(body["tx_hash"]), block_number=int(body["block_number"]),
        created_at=int(body.get("created_at", 0)))


def _inbox_key(body: Mapping[str, Any]) -> care.InboxKey:
    return care.InboxKey(patient=body["patient"],
                         public_key=pre.UmbralPublicKey.from_bytes(_unhex(body["public_key"]),
                                                                   field="public_key"),
                         signature=_unhex(body["signature"]),
                         statement=TypedData.from_json(dict(body["statement"])))


class ApiService:
    """:class:`~kizuna.client.service.KizunaService` over the API plus the own node."""

    def __init__(self, api: ApiClient, chain: Chain) -> None:
        self.api = api
        self.chain = chain
        self._index: EventIndex | None = None

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
        self.api.close()

    def _events(self) -> EventIndex:
        """The chain's events, indexed in memory from the own node (synced on each use)."""
        if self._index is None:
            self._index = EventIndex.for_chain(self.chain, ":memory:")
        self._index.sync()
        return self._index

    def _put(self, path: str, envelope: Envelope, headers: Mapping[str, str]) -> Any:
        content: bytes | Iterator[bytes]
        if isinstance(envelope, bytes | bytearray | memoryview):
            content = bytes(envelope)
        elif hasattr(envelope, "read"):
            source: Any = envelope
            content = iter(lambda: source.read(_CHUNK), b"")
        else:
            content = iter(envelope)
        try:
            response = self.api.http.put(path, content=content, headers={
                **self.api._headers(), "Content-Type": "application/octet-stream", **headers})
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"the Kizuna API does not answer: {exc}") from None
        if response.status_code >= 400:
            raise _error(response)
        return response.json()

    # -- where: domains and keys -------------------------------------------------------------

    def key_domain(self) -> KeyDerivationDomain:
        return derivation_domain(self.chain)

    def proxy_domain(self) -> Eip712Domain:
        return proxy_domain(chain_id=self.chain.chain_id,
                            access_log=self.chain.deployment.addresses["AccessLog"])

    def chain_time(self) -> int:
        return self.chain.head().timestamp

    def provider_key(self, provider: Address) -> pre.UmbralPublicKey:
        entry = self.chain.registry.provider_of(checked_address("provider", provider))
        if entry is None:
            raise NotFoundError(f"{provider} is not a provider in the registry")
        if not entry.active:
            raise AccessDenied(f"provider {provider} is suspended in the registry")
        return pre.UmbralPublicKey.from_bytes(entry.umbral_public_key, field="umbral_public_key")

    def scope_keys_statement(self, *, patient: Address, scope_id: ScopeId,
                             delegating_key: bytes, verifying_key: bytes) -> TypedData:
        return scope_keys_typed_data(
            self.proxy_domain(), patient=patient, scope_id=scope_id,
            delegating_key=pre.UmbralPublicKey.from_bytes(delegating_key),
            verifying_key=pre.UmbralPublicKey.from_bytes(verifying_key))

    def register_scope_keys(self, *, patient: Address, scope_id: ScopeId,
                            delegating_key: bytes, verifying_key: bytes,
                            signature: bytes) -> ScopeKeys:
        self.api.register_scope_keys(scope_id=scope_id, delegating_key=delegating_key,
                                     verifying_key=verifying_key, signature=signature)
        return ScopeKeys(patient=patient, scope_id=scope_id,
                         delegating_key=pre.UmbralPublicKey.from_bytes(delegating_key),
                         verifying_key=pre.UmbralPublicKey.from_bytes(verifying_key))

    def inbox_key_statement(self, *, patient: Address, public_key: bytes) -> TypedData:
        key = pre.UmbralPublicKey.from_bytes(public_key, field="public_key")
        return TypedData(domain=self.proxy_domain(), primary_type="InboxKey",
                         types={"InboxKey": care.INBOX_KEY_FIELDS},
                         message={"patient": checked_address("patient", patient),
                                  "publicKey": _hx(key.to_bytes())})

    def publish_inbox_key(self, *, patient: Address, public_key: bytes,
                          signature: bytes) -> care.InboxKey:
        return _inbox_key(self.api._call("POST", "/patient/inbox-key", body={
            "public_key": _hx(public_key), "signature": _hx(signature)}))

    def inbox_key_of(self, patient: Address) -> care.InboxKey:
        return _inbox_key(self.api._call("GET", f"/patients/{patient}/inbox-key"))

    # -- typed data to sign (nonces from the own node) ---------------------------------------

    def register_record_typed_data(self, *, patient: Address, record_id: RecordId,
                                   commitment: Commitment, scope_id: ScopeId, deadline: int,
                                   supersedes: RecordId | None = None) -> TypedData:
        return self.chain.ledger.register_record_typed_data(
            patient=patient, record_id=record_id, commitment=commitment, scope_id=scope_id,
            deadline=deadline, supersedes=supersedes)

    def grant_typed_data(self, *, patient: Address, provider: Address,
                         scope_ids: Sequence[ScopeId], expires_at: int,
                         deadline: int) -> TypedData:
        ledger = self.chain.ledger
        if len(scope_ids) == 1:
            return ledger.grant_typed_data(patient=patient, provider=provider,
                                           scope_id=scope_ids[0], expires_at=expires_at,
                                           deadline=deadline)
        return ledger.grant_batch_typed_data(patient=patient, provider=provider,
                                             scope_ids=scope_ids, expires_at=expires_at,
                                             deadline=deadline)

    def revoke_typed_data(self, *, patient: Address, provider: Address, scope_id: ScopeId,
                          deadline: int) -> TypedData:
        return self.chain.ledger.revoke_typed_data(patient=patient, provider=provider,
                                                   scope_id=scope_id, deadline=deadline)

    # -- records -----------------------------------------------------------------------------

    def upload_record(self, *, patient: Address, record_id: RecordId, scope_id: ScopeId,
                      envelope: Envelope, registration: SignedAction | SentTransaction,
                      supersedes: RecordId | None = None) -> records.RecordInfo:
        if supersedes is not None:
            raise ConfigError("new versions of records have no API route yet: use --local")
        body: Any = bytes(envelope) if isinstance(envelope, memoryview | bytearray) \
            else envelope
        return self.api.upload_record(record_id=record_id, scope_id=scope_id, envelope=body,
                                      registration=registration)

    def list_records(self, *, patient: Address,
                     scope_ids: Sequence[ScopeId] | None = None) -> list[records.RecordInfo]:
        found = self.api.records()
        if scope_ids is None:
            return found
        wanted = {bytes(s) for s in scope_ids}
        return [r for r in found if bytes(r.scope_id) in wanted]

    def get_record(self, record_id: RecordId) -> records.RecordInfo:
        for record in self.api.records():
            if bytes(record.record_id) == bytes(record_id):
                return record
        raise NotFoundError(f"no record 0x{bytes(record_id).hex()} of yours")

    def open_own_record(self, *, patient: Address, record_id: RecordId) -> ContentStream:
        return _stream(self.api.download(record_id))

    def reads_of(self, *, patient: Address) -> list[inbox.ReadEntry]:
        return self.api.reads()

    # -- grants ------------------------------------------------------------------------------

    def grant_access(self, *, patient: Address, provider: Address,
                     scope_ids: Sequence[ScopeId], expires_at: int,
                     kfrags: Mapping[bytes, Sequence[bytes]],
                     authorization: SignedAction | SentTransaction) -> grants.GrantResult:
        tx_hash, block = self.api.grant(provider=provider, scope_ids=scope_ids,
                                        expires_at=expires_at, kfrags=kfrags,
                                        authorization=authorization)
        return grants.GrantResult(patient=patient, provider=provider,
                                  scope_ids=tuple(scope_ids), expires_at=expires_at,
                                  tx_hash=tx_hash, block_number=block,
                                  kfrags_stored=sum(len(v) for v in kfrags.values()))

    def revoke_access(self, *, patient: Address, provider: Address, scope_id: ScopeId,
                      authorization: SignedAction | SentTransaction) -> grants.RevokeResult:
        tx_hash, block = self.api.revoke(provider=provider, scope_id=scope_id,
                                         authorization=authorization)
        return grants.RevokeResult(patient=patient, provider=provider, scope_ids=(scope_id,),
                                   tx_hash=tx_hash, block_number=block, kfrags_deleted=0)

    def revoke_all(self, *, patient: Address, provider: Address,
                   authorization: SentTransaction) -> grants.RevokeResult:
        # The patient's own transaction is mined; the service's follower drops the fragments
        # (and every read is decided on chain state regardless).
        receipt = self.chain.w3.eth.get_transaction_receipt(authorization.hex())  # type: ignore[arg-type]
        return grants.RevokeResult(patient=patient, provider=provider, scope_ids=(),
                                   tx_hash=authorization.tx_hash,
                                   block_number=int(receipt["blockNumber"]),
                                   kfrags_deleted=0)

    def grants_of(self, *, patient: Address) -> list[Grant]:
        return self.api.grants()

    def grants_to(self, *, provider: Address) -> list[Grant]:
        return self._events().grants_to(provider)

    def active_providers(self) -> list[Provider]:
        return self._events().providers(active_only=True)

    def leave_kit(self, *, patient: Address, provider: Address,
                  kfrags: Mapping[bytes, Sequence[bytes]]) -> int:
        raise ConfigError("the emergency kit has no API route yet: use --local")

    def patients_of(self, *, provider: Address) -> list[Address]:
        return self.api.patients()

    def readable_records(self, *, provider: Address, patient: Address | None = None,
                         content_type: str | None = None) -> list[records.RecordInfo]:
        return self.api.readable_records(patient=patient, content_type=content_type)

    # -- reads -------------------------------------------------------------------------------

    def read(self, *, request: ReadRequest, signature: bytes) -> ReadGrant:
        return self.api.read(request=request, signature=signature)

    def fetch(self, cid: Cid) -> ContentStream:
        return _stream(self.api.fetch(cid), cid)

    def onchain_commitment(self, *, patient: Address, record_id: RecordId) -> Commitment:
        return registered_commitment(self.chain, patient=patient, record_id=record_id)

    # -- messages and confirmations ----------------------------------------------------------

    def send_message(self, *, sender: Address, patient: Address, provider: Address | None,
                     kind: str, message_id: bytes, envelope: Envelope,
                     transaction: SentTransaction) -> care.CareMessage:
        headers = {"X-Kizuna-Tx-Hash": transaction.hex(), "X-Kizuna-Patient": patient}
        if kind == care.ACCESS_REQUEST:
            path = f"/provider/requests/{_hx(message_id)}"
        else:
            path = f"/care/messages/{_hx(message_id)}"
            headers["X-Kizuna-Kind"] = kind
            if provider is not None:
                headers["X-Kizuna-Provider"] = provider
        return _care_message(self._put(path, envelope, headers))

    def open_message(self, *, reader: Address, ref: bytes) -> ContentStream:
        return _stream(self.api._stream(f"/care/messages/{_hx(ref)}/content"))

    def patient_inbox(self, *, patient: Address) -> list[inbox.InboxItem]:
        return self.api.patient_inbox()

    def provider_inbox(self, *, provider: Address) -> list[inbox.InboxItem]:
        return self.api.provider_inbox()

    def answer_no(self, *, patient: Address, provider: Address,
                  transaction: SentTransaction) -> guardians.Confirmed:
        return self.api.confirm("decline-request", tx_hash=transaction.tx_hash,
                                provider=provider)

    def confirm_appoint_guardian(self, *, patient: Address, guardian: Address,
                                 transaction: SentTransaction) -> guardians.Confirmed:
        return self.api.confirm("appoint-guardian", tx_hash=transaction.tx_hash,
                                guardian=guardian)

    def confirm_emergency_policy(self, *, patient: Address, allowed: bool, max_duration: int,
                                 transaction: SentTransaction) -> guardians.Confirmed:
        return self.api.confirm("emergency-policy", tx_hash=transaction.tx_hash,
                                allowed=allowed, max_duration=max_duration)

    def confirm_break_glass(self, *, provider: Address, patient: Address,
                            transaction: SentTransaction) -> guardians.Confirmed:
        return self.api.confirm("break-glass", tx_hash=transaction.tx_hash, patient=patient)


__all__ = ["ApiService"]
