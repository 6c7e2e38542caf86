"""The provider's side: sign read requests, verify capsule fragments, decrypt locally.

:class:`ProviderClient` holds the provider's signer and wallet-derived keys (its Umbral public
key is the one in the provider registry). A read::

    ReadRequest (random id, now) signed (EIP-712, proxy domain)
    → service: serve_read → ReadGrant (CID, capsule, capsule fragments, the patient's scope
      delegating key and verifying key)
    → the envelope: in the answer when small, else fetched by CID from the content store
    → here: the capsule fragments verified against the patient's keys and this provider's key,
      the data key opened, every segment authenticated, and the whole envelope checked against
      the commitment *registered on-chain* (not one the service reports)

A tampered ciphertext raises :class:`~kizuna.errors.IntegrityError`; nothing unauthenticated
is ever returned. Reports, prescriptions, booking confirmations and access-request notes are
encrypted here to the patient's published inbox key — the key in the patient's signed statement,
checked against the patient's address and our own deployment's domain
(:func:`~kizuna.client.chainview.patient_encryption_key`), never the key the service names — and
announced with the provider's own ``logCareEvent`` / ``requestAccess`` transaction.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, BinaryIO

from kizuna.batch import BatchLeaf
from kizuna.chain.signers import Signer
from kizuna.client.chainview import (
    batch_commitment,
    patient_encryption_key,
    registered_commitment,
)
from kizuna.client.keys import ParticipantKeys, participant_keys
from kizuna.client.service import KizunaService
from kizuna.crypto import pre
from kizuna.crypto.commitment import commitment_of
from kizuna.errors import (
    AccessDenied,
    ConfigError,
    InputError,
    IntegrityError,
    NotFoundError,
)
from kizuna.receipts.request import ReadRequest
from kizuna.storage.envelope import ByteSource, EnvelopeReader, decrypt_bytes, encrypt_bytes
from kizuna.types import Address, Commitment, RecordId, ScopeId, checked_address
from kizuna.wire.care import ACCESS_REQUEST, CARE_KINDS, CareMessage
from kizuna.wire.consent import Confirmed
from kizuna.wire.inbox import InboxItem
from kizuna.wire.onchain import SentTransaction
from kizuna.wire.reads import ReadGrant
from kizuna.wire.records import RecordInfo

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.client.threshold import ProxySet

DEFAULT_READ_WORKERS = 4
"""Read requests in flight in a bulk read: each is signed here and re-encrypted by the proxy,
so a few at once hide the round trips without flooding two cores."""


@dataclass(frozen=True, slots=True)
class ProviderRead:
    """One record of a provider's bulk read: its decrypted ``content`` and the ``grant`` it
    was served under (its receipt's sequence number and request id), or why the service
    ``refused`` it."""

    record: RecordInfo
    content: bytes | None = None
    grant: ReadGrant | None = None
    refused: AccessDenied | NotFoundError | None = None


class ProviderClient:
    """A verified provider using the service in-process."""

    def __init__(self, *, signer: Signer, service: KizunaService,
                 chain: Chain | Callable[[], Chain] | None = None,
                 keys: ParticipantKeys | None = None, proxies: ProxySet | None = None) -> None:
        self.signer = signer
        self.proxies = proxies
        """The deployment's threshold proxy nodes: reads go to them in parallel and m verified
        cfrags are combined (kizuna.client.threshold). ``None``: the service, 1-of-1."""
        self.service = service
        self._chain = chain
        self.keys = keys if keys is not None else participant_keys(signer, service.key_domain())
        self._batch_owners: dict[bytes, Address] = {}
        """Batch roots the own node named, with their patient: a root is registered once and
        never changes hands, so reads ask the node once a batch (batch_commitment)."""

    @property
    def chain(self) -> Chain:
        """The provider's own chain connection, for the transactions it sends itself."""
        if self._chain is None:
            raise ConfigError("this action is a transaction of the provider's own: give the "
                              "client a chain connection (chain=)")
        if callable(self._chain):  # connected when first needed (listings and reads never do)
            self._chain = self._chain()
        return self._chain

    @property
    def address(self) -> Address:
        return self.signer.address

    @property
    def public_key(self) -> pre.UmbralPublicKey:
        """The key to publish in the provider registry."""
        return self.keys.public_key

    # -- finding what to read ----------------------------------------------------------------

    def patients(self) -> list[Address]:
        return self.service.patients_of(provider=self.address)

    def records(self, *, patient: str | None = None,
                content_type: str | None = None) -> list[RecordInfo]:
        return self.service.readable_records(
            provider=self.address, patient=checked_address("patient", patient)
            if patient is not None else None, content_type=content_type)

    # -- reading -----------------------------------------------------------------------------

    def request_read(self, *, patient: str, record_id: bytes) -> ReadGrant:
        """Sign a read request and have the service serve it (no decryption yet)."""
        if self.proxies is not None:
            from kizuna.client.threshold import read_through

            return read_through(self, self.proxies, patient=patient, record_id=record_id)
        request = ReadRequest.new(provider=self.address, patient=patient, record_id=record_id)
        signature = self.signer.sign_typed_data(request.typed_data(self.service.proxy_domain()))
        return self.service.read(request=request, signature=signature)

    def read(self, *, patient: str, record_id: bytes) -> bytes:
        """Read one record into memory: signed request, capsule fragments, local decryption."""
        out = io.BytesIO()
        self.read_to(patient=patient, record_id=record_id, destination=out)
        return out.getvalue()

    def read_to(self, *, patient: str, record_id: bytes, destination: BinaryIO) -> int:
        """Read one record of any size into ``destination`` (constant memory); the byte count.

        Only authenticated plaintext is written, but the whole envelope is known to be intact
        (last segment, on-chain commitment) only when this returns: on an ``IntegrityError``
        ``destination`` holds an unfinished prefix — write to a temporary file and keep it only
        on success."""
        grant = self.request_read(patient=patient, record_id=record_id)
        if grant.envelope is not None:  # small: it came with the answer
            return self.open_to(grant, grant.envelope, destination)
        with self.service.fetch(grant.cid) as stream:
            return self.open_to(grant, stream, destination)

    def read_many(self, patient: str, records: Sequence[RecordInfo], *,
                  workers: int = DEFAULT_READ_WORKERS,
                  on_progress: Callable[[int, int], None] | None = None
                  ) -> Iterator[ProviderRead]:
        """Read many records of ``patient``, pipelined: each record is still its own signed
        :class:`ReadRequest`, served (and receipted) on its own, its capsule fragments and
        envelope checked as :meth:`read` does — ``workers`` of them in flight, the results
        handed on in ``records``' order as they come (memory flat for any number).

        A record the service refuses (``AccessDenied``: the grant was revoked or expired
        meanwhile; ``NotFoundError``: gone) comes back with ``refused`` set, and the rest go
        on; an ``IntegrityError`` (a tampered envelope) stops the read. ``on_progress(done,
        total)`` after each record."""
        if workers < 1:
            raise InputError("workers", "must be at least 1")
        owner = checked_address("patient", patient)
        total = len(records)

        def one(record: RecordInfo) -> ProviderRead:
            try:
                grant = self.request_read(patient=owner, record_id=record.record_id)
            except (AccessDenied, NotFoundError) as exc:
                return ProviderRead(record, refused=exc)
            out = io.BytesIO()
            if grant.envelope is not None:
                self.open_to(grant, grant.envelope, out)
            else:
                with self.service.fetch(grant.cid) as stream:
                    self.open_to(grant, stream, out)
            return ProviderRead(record, content=out.getvalue(), grant=grant)

        from kizuna.client.export import pipelined  # the patient's bulk read's pipeline

        for done, read in enumerate(
                pipelined((partial(one, r) for r in records), workers=workers), start=1):
            if on_progress is not None:
                on_progress(done, total)
            yield read

    def open(self, grant: ReadGrant, envelope: bytes) -> bytes:
        """Decrypt an envelope held in memory with the capsule fragments of ``grant``."""
        out = io.BytesIO()
        self.open_to(grant, envelope, out)
        return out.getvalue()

    def open_to(self, grant: ReadGrant, source: ByteSource, destination: BinaryIO) -> int:
        """Decrypt an envelope (streamed from ``source``) with the capsule fragments of
        ``grant``: every check is made here, on the provider's side — the capsule fragments
        against the patient's keys and this provider's key, the data key against the
        envelope's key commitment, each segment's tag, and the whole envelope against the
        commitment registered on-chain."""
        reader = EnvelopeReader(source)
        header = reader.header
        if header.record_id != grant.record_id:
            raise IntegrityError("the envelope is of another record than the one read")
        delegating = pre.UmbralPublicKey.from_bytes(grant.delegating_key, field="delegating_key")
        verifying = pre.UmbralPublicKey.from_bytes(grant.verifying_key, field="verifying_key")
        cfrags = pre.verify_cfrags(grant.cfrags, capsule=header.capsule,
                                   verifying_key=verifying, delegating_key=delegating,
                                   receiving_key=self.keys.public_key)
        key = header.unwrap_for_grantee(self.keys.wallet.decrypting_key,
                                        delegating_key=delegating, cfrags=cfrags,
                                        threshold=len(cfrags))
        expected = self._registered_commitment(grant)
        written = 0
        for chunk in reader.decrypt(key, expected_commitment=expected):
            destination.write(chunk)
            written += len(chunk)
        return written

    def _registered_commitment(self, grant: ReadGrant) -> Commitment:
        """The commitment the chain holds for the granted record: with the provider's own
        node, its ``RecordRegistered`` event or — for a record the answer says is in a batch —
        the answer's commitment once its proof leads to a root the node says is the patient's
        batch (the node's word, not the service's); else the service's chain view."""
        if self._chain is None:
            return self.service.onchain_commitment(patient=grant.patient,
                                                   record_id=grant.record_id)
        if grant.batch_root is None:
            return registered_commitment(self.chain, patient=grant.patient,
                                         record_id=grant.record_id)
        if grant.commitment is None:
            raise IntegrityError("the read answer names a batch but no commitment for the "
                                 "record: nothing to check against the chain")
        return batch_commitment(self.chain, patient=grant.patient,
                                leaf=BatchLeaf(grant.record_id, grant.scope_id,
                                               grant.commitment),
                                root=grant.batch_root, proof=grant.proof,
                                known=self._batch_owners)

    # -- messages ----------------------------------------------------------------------------

    def _seal_for(self, patient: Address, content: bytes,
                  content_type: str) -> tuple[bytes, bytes]:
        # The key the patient signed, checked here: never the key the service names.
        inbox_key = patient_encryption_key(self.service, patient)
        message_id = os.urandom(32)
        envelope = bytes(encrypt_bytes(content, owner_key=inbox_key,
                                       record_id=RecordId(message_id),
                                       content_type=content_type))
        return message_id, envelope

    def request_access(self, patient: str, note: bytes, *,
                       content_type: str = "text/plain") -> CareMessage:
        """Ask ``patient`` for access, with a note only the patient can read."""
        patient = checked_address("patient", patient)
        message_id, envelope = self._seal_for(patient, note, content_type)
        receipt = self.chain.ledger.request_access(patient, commitment_of(envelope),
                                                       signer=self.signer)
        return self.service.send_message(sender=self.address, patient=patient,
                                         provider=self.address, kind=ACCESS_REQUEST,
                                         message_id=message_id, envelope=envelope,
                                         transaction=SentTransaction(receipt.tx_hash))

    def send(self, patient: str, kind: str, content: bytes, *,
             content_type: str = "application/fhir+json",
             scope_id: ScopeId | None = None) -> CareMessage:
        """Send a report / prescription / booking confirmation, encrypted to the patient.

        The ledger accepts it from a provider holding a live grant of the patient (``scope_id``;
        by default the first one the provider holds) — or flags it for review otherwise."""
        if kind not in CARE_KINDS:
            raise InputError("kind", f"{kind!r} is not a care message kind")
        patient = checked_address("patient", patient)
        if scope_id is None:  # the ledger wants a live grant as the provider's care authority
            live = [g.scope_id for g in self.service.grants_to(provider=self.address)
                    if g.patient == patient]
            scope_id = live[0] if live else None
        message_id, envelope = self._seal_for(patient, content, content_type)
        receipt = self.chain.ledger.log_care_event(
            patient, CARE_KINDS[kind], commitment_of(envelope), signer=self.signer,
            provider=self.address, scope_id=scope_id)
        return self.service.send_message(sender=self.address, patient=patient,
                                         provider=self.address, kind=kind,
                                         message_id=message_id, envelope=envelope,
                                         transaction=SentTransaction(receipt.tx_hash))

    def open_message(self, ref: bytes) -> bytes:
        """Decrypt a message a patient sent this provider (encrypted to its registry key)."""
        with self.service.open_message(reader=self.address, ref=ref) as stream:
            envelope = stream.read()
        if commitment_of(envelope) != bytes(ref):
            raise IntegrityError("the message does not match its on-chain reference")
        return bytes(decrypt_bytes(envelope, owner_sk=self.keys.wallet.decrypting_key))

    def inbox(self) -> list[InboxItem]:
        return self.service.provider_inbox(provider=self.address)

    def break_glass(self, patient: str, *, duration: int,
                    reason_code: int) -> Confirmed:
        """Open emergency access (allowed by the patient's policy; flagged for review)."""
        patient = checked_address("patient", patient)
        receipt = self.chain.ledger.open_emergency_access(patient, duration, reason_code,
                                                              signer=self.signer)
        return self.service.confirm_break_glass(provider=self.address, patient=patient,
                                                transaction=SentTransaction(receipt.tx_hash))


__all__ = ["DEFAULT_READ_WORKERS", "ProviderClient", "ProviderRead"]
