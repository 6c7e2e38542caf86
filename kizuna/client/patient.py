"""The patient's side: everything that needs the patient's keys runs here, never on the service.

:class:`PatientClient` holds the patient's signer (wallet / keystore key) and the keys derived
from it (:mod:`kizuna.client.keys`). It encrypts each record to the delegating key of the
record's scope (an envelope, docs/envelope.md), computes the commitment, signs the EIP-712
``RegisterRecord`` for the service's relayer, blinds scope labels into scope ids, makes key
fragments for a provider's registry key when granting, and decrypts the patient's own records
and the messages providers send. The service is used in-process (``ServiceContext`` + the
service's relayer): the local mode of the CLI and the tests. Actions without a gasless form
(guardians, emergency policy, declining a request, revokeAll) are sent with the patient's own
signer through the agents, and the service confirms them from their events.

Key epochs (docs/keys.md "Epochs"): a scope's delegating key moves to a new epoch on every
revocation of the scope (the chain's count, :meth:`KizunaService.scope_epoch`). New records are
encrypted to the current epoch's key; :meth:`PatientClient.revoke` then re-issues fragments of
the new epoch to the grantees that remain (:meth:`PatientClient.rekey`), and a grant hands the
provider fragments of every epoch the scope has records of.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from kizuna.batch import BatchManifest
from kizuna.chain.eip712 import SignedAction
from kizuna.chain.models import TxReceipt
from kizuna.chain.signers import Signer
from kizuna.client.keys import ParticipantKeys, participant_keys, vocabulary
from kizuna.client.service import KizunaService
from kizuna.crypto import pre
from kizuna.crypto.commitment import commitment_of
from kizuna.crypto.scopes import scope_label
from kizuna.errors import ConfigError, InputError, IntegrityError, NotFoundError
from kizuna.storage.envelope import decrypt_bytes, decrypt_to, encrypt_bytes, encrypt_to
from kizuna.types import Address, RecordId, ScopeId, ScopeLabel, checked_address
from kizuna.wire.care import CARE_KINDS, CareMessage, InboxKey
from kizuna.wire.consent import Confirmed, GrantResult, RevokeResult
from kizuna.wire.inbox import InboxItem, ReadEntry
from kizuna.wire.onchain import SentTransaction
from kizuna.wire.reads import AttemptedReads
from kizuna.wire.records import RecordInfo

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.client.threshold import ProxySet
    from kizuna.storage.fhir.importer import ImportedRecord

DEFAULT_DEADLINE_S = 3600
"""How long a signed action stays valid for the relayer."""


@dataclass(frozen=True, slots=True)
class ImportedEntry:
    """One resource of an imported Bundle: what it was and what the service registered."""

    source: ImportedRecord
    record: RecordInfo


@dataclass(frozen=True, slots=True)
class RekeyResult:
    """What :meth:`PatientClient.rekey` did: per scope, its current key epoch and the grantees
    that now hold fragments of it."""

    epochs: dict[ScopeId, int] = field(default_factory=dict)
    reissued: dict[ScopeId, tuple[Address, ...]] = field(default_factory=dict)
    kfrags_stored: int = 0


def _tx(receipt: TxReceipt) -> SentTransaction:
    return SentTransaction(receipt.tx_hash)


class PatientClient:
    """A patient (or a guardian acting for one) using the service in-process."""

    def __init__(self, *, signer: Signer, service: KizunaService,
                 chain: Chain | Callable[[], Chain] | None = None,
                 keys: ParticipantKeys | None = None,
                 deadline_s: int = DEFAULT_DEADLINE_S, proxies: ProxySet | None = None) -> None:
        self.signer = signer
        self.proxies = proxies
        """The deployment's threshold proxy nodes: grants go through them (m-of-n, each node
        its own fragment; kizuna.client.threshold). ``None``: the service's 1-of-1 path."""
        self.service = service
        self._chain = chain
        self.keys = keys if keys is not None else participant_keys(signer, service.key_domain())
        self.deadline_s = deadline_s
        self._registered_scopes: set[tuple[ScopeId, int]] = set()
        self._sealed_epochs: dict[bytes, int] = {}  # record id -> epoch it was encrypted to

    @property
    def address(self) -> Address:
        return self.signer.address

    def _deadline(self) -> int:
        return self.service.chain_time() + self.deadline_s

    @property
    def chain(self) -> Chain:
        """The client's own chain connection, for the transactions it sends itself."""
        if self._chain is None:
            raise ConfigError("this action is a transaction of the patient's own: give the "
                              "client a chain connection (chain=)")
        if callable(self._chain):  # connected when first needed (a record's read never does)
            self._chain = self._chain()
        return self._chain

    # -- keys --------------------------------------------------------------------------------

    def publish_inbox_key(self) -> InboxKey:
        """Publish the key providers encrypt messages to (signed by the wallet)."""
        public = self.keys.public_key.to_bytes()
        typed = self.service.inbox_key_statement(patient=self.address, public_key=public)
        return self.service.publish_inbox_key(patient=self.address, public_key=public,
                                      signature=self.signer.sign_typed_data(typed))

    def ensure_inbox_key(self) -> None:
        """Publish the inbox key the first time (none published yet): providers encrypt
        requests, reports and prescriptions to it."""
        try:
            self.service.inbox_key_of(self.address)
        except NotFoundError:
            self.publish_inbox_key()

    def scope(self, label: str) -> ScopeId:
        """The scope id of ``label``, its keys of the current epoch registered with the proxy
        (once per epoch, signed)."""
        return self.scope_and_epoch(label)[0]

    def scope_and_epoch(self, label: str) -> tuple[ScopeId, int]:
        """The scope id of ``label`` and its current key epoch (from the chain), the keys of
        that epoch registered with the proxy."""
        sid = self.keys.scope_id(label)
        epoch = self.service.scope_epoch(self.address, sid)
        self._register_scope_keys(sid, epoch)
        return sid, epoch

    def scopes_and_epochs(self, labels: Sequence[str], *,
                          workers: int = 4) -> dict[str, tuple[ScopeId, int]]:
        """:meth:`scope_and_epoch` of many labels at once (an import's): the epochs read one
        after the other, the proxy registrations of the keys (one signature and one round trip
        each) on ``workers`` threads."""
        found = {label: (sid := self.keys.scope_id(label),
                         self.service.scope_epoch(self.address, sid)) for label in labels}
        with ThreadPoolExecutor(max_workers=workers,
                                thread_name_prefix="kizuna-scope-keys") as pool:
            for done in [pool.submit(self._register_scope_keys, sid, epoch)
                         for sid, epoch in found.values()]:
                done.result()
        return found

    def _register_scope_keys(self, sid: ScopeId, epoch: int) -> None:
        """Bind the keys of (scope, epoch) with the proxy: one wallet signature, once."""
        if (sid, epoch) in self._registered_scopes:
            return
        delegating = self.keys.scope_public(sid, epoch).to_bytes()
        verifying = self.keys.verifying_key.to_bytes()
        typed = self.service.scope_keys_statement(patient=self.address, scope_id=sid,
                                                  delegating_key=delegating,
                                                  verifying_key=verifying, epoch=epoch)
        self.service.register_scope_keys(patient=self.address, scope_id=sid,
                                         delegating_key=delegating, verifying_key=verifying,
                                         signature=self.signer.sign_typed_data(typed),
                                         epoch=epoch)
        self._registered_scopes.add((sid, epoch))

    # -- records -----------------------------------------------------------------------------

    def seal(self, content: bytes, *, label: str, content_type: str,
             record_id: RecordId | None = None) -> tuple[RecordId, ScopeId, bytes]:
        """Encrypt ``content`` for the scope of ``label`` (its current key epoch, remembered
        for :meth:`upload`): (record id, scope id, envelope)."""
        sid, epoch = self.scope_and_epoch(label)
        rid = RecordId(os.urandom(32)) if record_id is None else record_id
        envelope = bytes(encrypt_bytes(content, owner_key=self.keys.scope_public(sid, epoch),
                                       record_id=rid, content_type=content_type))
        self._sealed_epochs[bytes(rid)] = epoch
        return rid, sid, envelope

    def _epoch_of(self, record_id: RecordId, scope_id: ScopeId, epoch: int | None) -> int:
        if epoch is not None:
            return epoch
        sealed = self._sealed_epochs.get(bytes(record_id))
        return sealed if sealed is not None else self.service.scope_epoch(self.address, scope_id)

    def sign_registration(self, *, record_id: RecordId, scope_id: ScopeId, envelope: bytes,
                          supersedes: RecordId | None = None) -> SignedAction:
        """The EIP-712 ``RegisterRecord`` of an envelope, signed (the nonce read from chain)."""
        typed = self.service.register_record_typed_data(
            patient=self.address, record_id=record_id, commitment=commitment_of(envelope),
            scope_id=scope_id, deadline=self._deadline(), supersedes=supersedes)
        return SignedAction(typed, self.signer.sign_typed_data(typed))

    def sign_batch_registration(self, manifest: BatchManifest, deadline: int | None = None
                                ) -> SignedAction:
        """The EIP-712 ``RegisterBatch`` of a batch's manifest (its root and count), signed
        (the nonce read from chain; ``deadline`` default: the client's usual one)."""
        typed = self.service.register_batch_typed_data(
            patient=self.address, root=manifest.root, count=manifest.count,
            deadline=self._deadline() if deadline is None else deadline)
        return SignedAction(typed, self.signer.sign_typed_data(typed))

    def upload(self, *, record_id: RecordId, scope_id: ScopeId, envelope: bytes,
               registration: SignedAction | SentTransaction,
               epoch: int | None = None) -> RecordInfo:
        """Upload a sealed envelope; ``epoch``: the key epoch it is encrypted to (default: the
        one :meth:`seal` used for this record id, else the scope's current one)."""
        return self.service.upload_record(patient=self.address, record_id=record_id,
                                          scope_id=scope_id, envelope=envelope,
                                          registration=registration,
                                          epoch=self._epoch_of(record_id, scope_id, epoch))

    def add_record(self, content: bytes, *, label: str, content_type: str,
                   record_id: RecordId | None = None) -> RecordInfo:
        """Encrypt, store and register one record (gasless: relayed signature); ``record_id``
        default: a random one."""
        rid, sid, envelope = self.seal(content, label=label, content_type=content_type,
                                       record_id=record_id)
        signed = self.sign_registration(record_id=rid, scope_id=sid, envelope=envelope)
        return self.upload(record_id=rid, scope_id=sid, envelope=envelope, registration=signed)

    def replace_record(self, old_record_id: bytes, content: bytes, *, label: str,
                       content_type: str) -> RecordInfo:
        """A new version of one of the patient's records (fresh record id and data key); the
        old one is superseded on-chain and is no longer served to providers."""
        old = RecordId(bytes(old_record_id))
        rid, sid, envelope = self.seal(content, label=label, content_type=content_type)
        signed = self.sign_registration(record_id=rid, scope_id=sid, envelope=envelope,
                                        supersedes=old)
        return self.service.upload_record(patient=self.address, record_id=rid, scope_id=sid,
                                          envelope=envelope, registration=signed,
                                          supersedes=old, epoch=self._epoch_of(rid, sid, None))

    def add_file(self, source: str | os.PathLike[str] | BinaryIO, *, label: str,
                 content_type: str, record_id: RecordId | None = None
                 ) -> RecordInfo:
        """Encrypt a file of any size (constant memory) and upload it streamed.

        The envelope is written to a temporary file first: its commitment must be known (and
        signed) before the upload, and the upload then streams from that file.
        """
        sid, epoch = self.scope_and_epoch(label)
        rid = RecordId(os.urandom(32)) if record_id is None else record_id
        opened: BinaryIO = (source if not isinstance(source, str | os.PathLike)
                            else open(source, "rb"))  # noqa: SIM115
        try:
            with tempfile.TemporaryFile() as spool:
                sealed = encrypt_to(opened, spool, owner_key=self.keys.scope_public(sid, epoch),
                                    record_id=rid, content_type=content_type)
                typed = self.service.register_record_typed_data(
                    patient=self.address, record_id=rid, commitment=sealed.commitment,
                    scope_id=sid, deadline=self._deadline())
                signed = SignedAction(typed, self.signer.sign_typed_data(typed))
                spool.seek(0)
                return self.service.upload_record(
                    patient=self.address, record_id=rid, scope_id=sid, envelope=spool,
                    registration=signed, epoch=epoch)
        finally:
            if opened is not source:
                opened.close()

    def add_document(self, source: str | os.PathLike[str], *,
                     subject: str) -> tuple[RecordInfo, RecordInfo]:
        """A PDF or image: the file as one record, its FHIR ``DocumentReference`` (pointing at
        it by record id) as another, both in the ``DocumentReference`` scope.
        Returns (description record, file record).

        Both ids come from the file's bytes (:func:`kizuna.client.importer.single_file_ids`, the
        page's rule too): the same file added again is not added twice, the records it names
        already are returned as they are."""
        from kizuna.client.importer import single_file_ids  # with the importer: not per CLI run
        from kizuna.errors import NotFoundError
        from kizuna.storage.attachments import document_reference  # pydicom: here, not per CLI run

        rid, described_id = single_file_ids(self.keys.wallet.import_id_key().reveal(), source)
        described = document_reference(source, subject=subject,
                                       url=f"urn:kizuna:record:0x{rid.hex()}")
        label = str(described.record.scope_label)
        try:
            stored = self.service.get_record(rid, patient=self.address)
        except NotFoundError:
            stored = self.add_file(source, label=label, content_type=described.content_type,
                                   record_id=rid)
        try:
            entry = self.service.get_record(described_id, patient=self.address)
        except NotFoundError:
            entry = self.add_record(described.record.content, label=label,
                                    content_type=described.record.content_type,
                                    record_id=described_id)
        return entry, stored

    def add_dicom_study(self, sources: Sequence[str | os.PathLike[str]], *,
                        subject: str) -> tuple[RecordInfo,
                                               list[RecordInfo]]:
        """The DICOM files of one study, each as a record, and the study's FHIR
        ``ImagingStudy`` as another, all in the ``ImagingStudy`` scope."""
        from kizuna.storage.attachments import DICOM_CONTENT_TYPE, imaging_study

        study = imaging_study(list(sources), subject=subject)
        label = str(study.scope_label)
        files = [self.add_file(path, label=label, content_type=DICOM_CONTENT_TYPE)
                 for path in sources]
        entry = self.add_record(study.content, label=label, content_type=study.content_type)
        return entry, files

    def import_fhir(self, bundle: Mapping[str, Any]) -> list[ImportedEntry]:
        """Validate a FHIR Bundle and add one record per resource (canonical JSON)."""
        from kizuna.storage.fhir.importer import import_bundle  # fhir.resources: here only

        imported = import_bundle(dict(bundle))
        return [ImportedEntry(source=entry, record=self.add_record(
                    entry.content, label=entry.scope_label, content_type=entry.content_type))
                for entry in imported]

    def records(self, *, labels: Sequence[str] | None = None) -> list[RecordInfo]:
        """The patient's records (optionally of some scope labels)."""
        ids = [self.keys.scope_id(label) for label in labels] if labels is not None else None
        return self.service.list_records(patient=self.address, scope_ids=ids)

    def label_of(self, record: RecordInfo) -> ScopeLabel | None:
        """The label of a record's scope, if this client blinded it (the service cannot say)."""
        return self.keys.label_of(record.scope_id)

    def labelled_records(self) -> list[tuple[RecordInfo, ScopeLabel | None]]:
        """The patient's records with their scope labels, recovered here by blinding the whole
        label vocabulary (the service and the chain only ever see the blinded ids)."""
        self.keys.learn_labels(vocabulary())
        return [(r, self.keys.label_of(r.scope_id)) for r in self.records()]

    def read_own(self, record_id: bytes) -> bytes:
        """Download and decrypt one of the patient's records into memory."""
        out = io.BytesIO()
        self.read_own_to(record_id, out)
        return out.getvalue()

    def read_own_to(self, record_id: bytes, destination: BinaryIO) -> int:
        """Download and decrypt one of the patient's records of any size into ``destination``
        (constant memory), checked against the commitment registered on-chain; the byte
        count. On an ``IntegrityError`` ``destination`` holds an unfinished prefix."""
        rid = RecordId(bytes(record_id))
        info = self.service.get_record(rid, patient=self.address)
        expected = self.service.onchain_commitment(patient=self.address, record_id=rid)
        with self.service.open_own_record(patient=self.address, record_id=rid) as stream:
            return decrypt_to(stream, destination,
                              owner_sk=self.keys.scope_secret(info.scope_id, info.epoch),
                              expected_commitment=expected)

    # -- grants ------------------------------------------------------------------------------

    def grant(self, provider: str, labels: Sequence[str], *, expires_at: int,
              threshold: int = 1, shares: int = 1) -> GrantResult:
        """Grant ``provider`` the scopes of ``labels`` until ``expires_at`` (signed, relayed;
        key fragments made here for the provider's registry key)."""
        if not labels:
            raise InputError("labels", "at least one scope label is needed")
        provider = checked_address("provider", provider)
        receiving = self.service.provider_key(provider)
        scoped = dict(self.scope_and_epoch(scope_label(label)) for label in labels)
        if self.proxies is not None:
            from kizuna.client.threshold import grant_through_nodes

            return grant_through_nodes(self, self.proxies, provider, scoped,
                                       expires_at=expires_at)
        ids = list(scoped)
        kfrags = {sid: [k.to_bytes() for k in self.keys.kfrags_for(
            sid, receiving, epoch=scoped[sid], threshold=threshold, shares=shares)]
            for sid in ids}
        typed = self.service.grant_typed_data(patient=self.address, provider=provider,
                                              scope_ids=ids, expires_at=expires_at,
                                              deadline=self._deadline())
        signed = SignedAction(typed, self.signer.sign_typed_data(typed))
        result = self.service.grant_access(patient=self.address, provider=provider,
                                           scope_ids=ids, expires_at=expires_at,
                                           kfrags={bytes(k): v for k, v in kfrags.items()},
                                           authorization=signed)
        # Older records of a scope are encrypted to earlier epochs' keys: the grantee gets
        # fragments of each epoch the scope has records of (no chain action).
        for sid, current in scoped.items():
            for epoch in sorted({r.epoch for r in self.records_of_scope(sid)
                                 if r.epoch < current}):
                self._register_scope_keys(sid, epoch)
                self.service.reissue_kfrags(
                    patient=self.address, provider=provider, scope_id=sid, epoch=epoch,
                    kfrags=[k.to_bytes() for k in self.keys.kfrags_for(
                        sid, receiving, epoch=epoch, threshold=threshold, shares=shares)])
        return result

    def records_of_scope(self, scope_id: ScopeId) -> list[RecordInfo]:
        return self.service.list_records(patient=self.address, scope_ids=[scope_id])

    def revoke(self, provider: str, label: str, *, rekey: bool = True) -> RevokeResult:
        """Revoke one scope (signed ``Revoke``, relayed); the proxy drops its fragments (of
        every epoch). The revoke moves the scope's key epoch: with ``rekey`` (the default) the
        grantees that remain get fragments of the new epoch at once (:meth:`rekey`)."""
        provider = checked_address("provider", provider)
        sid = self.keys.scope_id(label)
        typed = self.service.revoke_typed_data(
            patient=self.address, provider=provider, scope_id=sid, deadline=self._deadline())
        signed = SignedAction(typed, self.signer.sign_typed_data(typed))
        result = self.service.revoke_access(patient=self.address, provider=provider,
                                            scope_id=sid, authorization=signed)
        if rekey:
            self.rekey_scopes([sid])
        return result

    def revoke_all(self, provider: str, *, rekey: bool = True) -> RevokeResult:
        """Revoke everything of ``provider`` (sent with the patient's own key); with ``rekey``,
        the other grantees of every scope whose epoch moved get fragments of the new epoch."""
        provider = checked_address("provider", provider)
        held = {g.scope_id for g in self.service.grants_of(patient=self.address)
                if g.provider == provider}
        receipt = self.chain.ledger.revoke_all(provider, signer=self.signer)
        result = self.service.revoke_all(patient=self.address, provider=provider,
                                         authorization=_tx(receipt))
        if rekey and held:
            self.rekey_scopes(sorted(held))
        return result

    def rekey(self, labels: Sequence[str] | None = None) -> RekeyResult:
        """Bring the proxy up to the current key epoch of the scopes of ``labels`` (default:
        every scope with a live grant): the epoch's keys registered (one wallet signature per
        scope whose epoch moved) and fragments of it re-issued to every live grantee. What
        ``kizuna patient rekey`` runs; :meth:`revoke` runs it by itself."""
        if labels is None:
            return self.rekey_scopes(sorted({g.scope_id for g in
                                             self.service.grants_of(patient=self.address)
                                             if g.live}))
        return self.rekey_scopes([self.keys.scope_id(label) for label in labels])

    def rekey_scopes(self, scope_ids: Sequence[ScopeId]) -> RekeyResult:
        """:meth:`rekey` by scope id."""
        live = [g for g in self.service.grants_of(patient=self.address) if g.live]
        result = RekeyResult()
        stored = 0
        for sid in scope_ids:
            epoch = self.service.scope_epoch(self.address, sid)
            result.epochs[sid] = epoch
            grantees = sorted({g.provider for g in live if g.scope_id == sid})
            if grantees:
                self._register_scope_keys(sid, epoch)
            for provider in grantees:
                receiving = self.service.provider_key(provider)
                if self.proxies is not None:  # the new epoch's fragments to the nodes
                    from kizuna.client.threshold import hand_epoch

                    stored += hand_epoch(self, self.proxies, provider=provider,
                                         receiving=receiving, scope_id=sid, epoch=epoch)
                    continue
                stored += self.service.reissue_kfrags(
                    patient=self.address, provider=provider, scope_id=sid, epoch=epoch,
                    kfrags=[k.to_bytes() for k in self.keys.kfrags_for(sid, receiving,
                                                                       epoch=epoch)])
            result.reissued[sid] = tuple(grantees)
        return RekeyResult(epochs=result.epochs, reissued=result.reissued,
                           kfrags_stored=stored)

    def decline(self, provider: str) -> Confirmed:
        """Answer a provider's access request with no (``closeRequest``)."""
        provider = checked_address("provider", provider)
        receipt = self.chain.ledger.close_request(self.address, provider, signer=self.signer)
        return self.service.answer_no(patient=self.address, provider=provider,
                                      transaction=_tx(receipt))

    # -- guardians and emergency -------------------------------------------------------------

    def appoint_guardian(self, guardian: str, *, until: int) -> Confirmed:
        guardian = checked_address("guardian", guardian)
        receipt = self.chain.ledger.appoint_guardian(guardian, until, signer=self.signer)
        return self.service.confirm_appoint_guardian(patient=self.address, guardian=guardian,
                                                     transaction=_tx(receipt))

    def set_emergency_policy(self, *, allowed: bool, max_duration: int,
                             patient: str | None = None) -> Confirmed:
        """Set the policy (of ``patient`` when this client is their guardian)."""
        owner = checked_address("patient", patient) if patient is not None else self.address
        receipt = self.chain.ledger.set_emergency_policy(
            allowed, max_duration, signer=self.signer, patient=owner)
        return self.service.confirm_emergency_policy(patient=owner, allowed=allowed,
                                                     max_duration=max_duration,
                                                     transaction=_tx(receipt))

    def leave_emergency_kit(self, labels: Sequence[str], *,
                            providers: Sequence[str] | None = None) -> int:
        """Leave key fragments of the scopes of ``labels`` (e.g. allergies, medications) for
        every active provider (or ``providers``), so that a break-glass access the policy
        allows can actually be served (``kizuna.services.emergency``); how many fragments
        were left. The proxy gets a provider's part only once its emergency access is open."""
        scoped = [self.scope_and_epoch(label) for label in labels]
        if providers is None:
            targets = [(p.address, pre.UmbralPublicKey.from_bytes(p.umbral_public_key))
                       for p in self.service.active_providers()]
        else:
            chosen = [checked_address("providers", p) for p in providers]
            targets = [(p, self.service.provider_key(p)) for p in chosen]
        # One call per key epoch: the kit keeps its fragments of other epochs (older records).
        by_epoch: dict[int, list[ScopeId]] = {}
        for sid, epoch in scoped:
            by_epoch.setdefault(epoch, []).append(sid)
        left = 0
        for address, key in targets:
            for epoch, ids in sorted(by_epoch.items()):
                kfrags = {bytes(sid): [k.to_bytes() for k in self.keys.kfrags_for(
                    sid, key, epoch=epoch)] for sid in ids}
                left += self.service.leave_kit(patient=self.address, provider=address,
                                               kfrags=kfrags, epoch=epoch)
        return left

    # -- messages ----------------------------------------------------------------------------

    def inbox(self) -> list[InboxItem]:
        return self.service.patient_inbox(patient=self.address)

    def open_message(self, ref: bytes) -> bytes:
        """Decrypt a message addressed to the patient (encrypted to their inbox key)."""
        with self.service.open_message(reader=self.address, ref=ref) as stream:
            envelope = stream.read()
        if commitment_of(envelope) != bytes(ref):
            raise IntegrityError("the message does not match its on-chain reference")
        return bytes(decrypt_bytes(envelope, owner_sk=self.keys.wallet.decrypting_key))

    def request_booking(self, provider: str, content: bytes, *,
                        content_type: str = "application/fhir+json") -> CareMessage:
        """Send a booking request to ``provider`` (encrypted to its registry key)."""
        provider = checked_address("provider", provider)
        key = self.service.provider_key(provider)
        message_id = os.urandom(32)
        envelope = bytes(encrypt_bytes(content, owner_key=key, record_id=RecordId(message_id),
                                       content_type=content_type))
        receipt = self.chain.ledger.log_care_event(
            self.address, CARE_KINDS["booking-request"], commitment_of(envelope),
            signer=self.signer, provider=provider)
        return self.service.send_message(sender=self.address, patient=self.address,
                                         provider=provider, kind="booking-request",
                                         message_id=message_id, envelope=envelope,
                                         transaction=_tx(receipt))

    def reads(self) -> list[ReadEntry]:
        """Who read which of my records, and when."""
        return self.service.reads_of(patient=self.address)

    def attempted_reads(self) -> AttemptedReads:
        """Read requests of providers that were refused (no grant, revoked, expired, ...)."""
        return self.service.attempted_reads_of(patient=self.address)

    def now(self) -> int:
        """The chain's clock (block time), for expiries."""
        return self.service.chain_time()


__all__ = ["DEFAULT_DEADLINE_S", "ImportedEntry", "PatientClient", "RekeyResult"]
