"""A typed HTTP client of the Kizuna API (``kizuna.api``), for the participant's side.

:class:`ApiClient` signs in with Sign-In with Ethereum (EIP-4361: a server nonce, the message
signed with ``personal_sign``) and then calls the routes with the session token. Answers come
back as the same frozen types the use cases return in-process (``RecordInfo``, ``ReadGrant``,
``InboxItem``, ``ReadEntry``, ``PreparedAction``, ...), so code written against the services
reads the same over HTTP. Error answers are turned back into Kizuna's exception tree from their
status and body (``{"error": {"kind", "message", "field", "reason"}}``) by :func:`api_error`:
the class the ``kind`` names (``GrantRevoked``, ``ContentNotFound``, ...) when it is one of
:mod:`kizuna.errors` or :mod:`kizuna.wire` and fits the status, else the status's own: 413/422 →
``InputError`` (with the field), 401/403 → ``AccessDenied``, 404 → ``NotFoundError``, 409 →
``ConflictError``, 429 → ``QuotaExceeded``, 502 → ``StorageError``, 503 → ``NodeUnreachable``.

Uploads and downloads stream: an envelope is sent from a file object or an iterator of chunks,
and :meth:`ApiClient.download` / :meth:`ApiClient.fetch` hand back a stream of the response.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, Protocol

import httpx

from kizuna.batch import MAX_MANIFEST_BYTES, BatchManifest
from kizuna.chain.eip712 import SignedAction, TypedData
from kizuna.chain.models import EmergencyAccess, Grant, Guardian
from kizuna.crypto import pre
from kizuna.errors import (
    AccessDenied,
    ConflictError,
    ContentNotFound,
    FhirValidationError,
    InputError,
    IntegrityError,
    InvalidCid,
    KizunaError,
    NodeUnreachable,
    NotFoundError,
    QuotaExceeded,
    StorageError,
    StoreUnavailable,
)
from kizuna.receipts.request import ReadRequest
from kizuna.tls import http_client
from kizuna.types import Address, Cid, Commitment, RecordId, ScopeId
from kizuna.wire.batches import BatchInfo, StagedEnvelope, StagedInfo, frame_envelopes
from kizuna.wire.care import CareMessage, InboxKey
from kizuna.wire.consent import Confirmed, RevokeResult
from kizuna.wire.inbox import InboxItem, ReadEntry
from kizuna.wire.onchain import PreparedAction, SentTransaction
from kizuna.wire.reads import AttemptedReads, ReadGrant, RefusedRead, SuppressedRefusals
from kizuna.wire.records import EnvelopeTooLarge, RecordInfo, record_of_json

_UPLOAD_CHUNK = 1 << 18


class TextSigner(Protocol):
    """Signs text with EIP-191 ``personal_sign`` (what SIWE needs): a local key or keystore."""

    @property
    def address(self) -> Address: ...

    def sign_message(self, text: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ApiSession:
    """A signed-in session: who, which roles the chain gives them, the bearer token."""

    address: Address
    roles: tuple[str, ...]
    token: str


def siwe_message(*, domain: str, address: str, uri: str, chain_id: int, nonce: str,
                 statement: str, issued_at: str) -> str:
    """The EIP-4361 text to sign in with (the fields this client sends, in the standard's
    order). Written out here rather than with the ``siwe`` library: importing it builds its
    ABNF grammars (~250 ms of every CLI command). The service parses what is signed with
    ``siwe`` (kizuna/api/auth.py), and a test checks this text is the library's."""
    return (f"{domain} wants you to sign in with your Ethereum account:\n{address}\n\n"
            f"{statement}\n\nURI: {uri}\nVersion: 1\nChain ID: {chain_id}\n"
            f"Nonce: {nonce}\nIssued At: {issued_at}")


def _hx(value: bytes | bytearray) -> str:
    return "0x" + bytes(value).hex()


def _unhex(value: str) -> bytes:
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


def _inline(value: object) -> bytes | None:
    """A read answer's inline envelope (base64), ``None`` when the answer has none."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise IntegrityError("the service answered an envelope_base64 that is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise IntegrityError("the service answered an envelope_base64 that is not base64") from None


def _authorization(value: SignedAction | SentTransaction) -> dict[str, Any]:
    if isinstance(value, SignedAction):
        return {"signed": {"typed_data": value.typed.to_json(),
                           "signature": _hx(value.signature)}}
    return {"tx_hash": value.hex()}


def _acting(patient: Address | None) -> dict[str, str]:
    """The query of a guardian acting for ``patient`` (nothing: the session's own)."""
    return {} if patient is None else {"patient": patient}


def _kfrags(kfrags: Mapping[bytes, Sequence[bytes]]) -> dict[str, list[str]]:
    return {_hx(k): [_hx(f) for f in v] for k, v in kfrags.items()}


def _inbox_item(body: Mapping[str, Any]) -> InboxItem:
    return InboxItem(kind=body["kind"], patient=body["patient"], provider=body["provider"],
                     actor=body["actor"], ref=Commitment(_unhex(body["ref"])),
                     cid=Cid(body["cid"]) if body.get("cid") else None,
                     content_type=body.get("content_type"),
                     block_number=int(body["block_number"]),
                     flagged_for_review=bool(body.get("flagged_for_review", False)))


def _inbox_key(body: Mapping[str, Any]) -> InboxKey:
    return InboxKey(patient=body["patient"],
                    public_key=pre.UmbralPublicKey.from_bytes(_unhex(body["public_key"])),
                    signature=_unhex(body["signature"]),
                    statement=TypedData.from_json(body["statement"]))


def _message(body: Mapping[str, Any]) -> CareMessage:
    return CareMessage(ref=Commitment(_unhex(body["ref"])), cid=Cid(body["cid"]),
                       patient=body["patient"], provider=body.get("provider"),
                       sender=body["sender"], kind=body["kind"],
                       content_type=body["content_type"], size=int(body["size"]),
                       tx_hash=_unhex(body["tx_hash"]), block_number=int(body["block_number"]),
                       created_at=int(body["created_at"]))


def _content(envelope: bytes | bytearray | BinaryIO | Iterable[bytes]) -> bytes | Iterator[bytes]:
    if isinstance(envelope, bytes | bytearray):
        return bytes(envelope)
    if hasattr(envelope, "read"):
        source = envelope
        return iter(lambda: source.read(_UPLOAD_CHUNK), b"")
    return iter(envelope)


_STATUS_CLASSES: dict[int, tuple[type[KizunaError], ...]] = {
    400: (InputError,), 413: (InputError,), 421: (InputError,), 422: (InputError,),
    401: (AccessDenied,), 403: (AccessDenied,), 404: (NotFoundError,), 409: (ConflictError,),
    429: (QuotaExceeded,), 502: (StorageError,), 503: (NodeUnreachable, StoreUnavailable),
}
"""What an error answer's status means, as the classes its ``kind`` may narrow it to (the
first: the class of a kind the client does not know). A kind outside them (a revert's
``ContractReverted`` answered 403, a storage quota's ``QuotaExceeded`` answered 403) does not
change what the status says: the CLI's exit codes and a caller's retries follow the status
(kizuna.api.errors, the one mapping the other way)."""


def _known_kinds() -> dict[str, type[KizunaError]]:
    """The classes an error answer's ``kind`` names that this client rebuilds, by name: every
    class of the one exception tree (:mod:`kizuna.errors`) and of the seam's own
    (:mod:`kizuna.wire`), walked from ``KizunaError``, so no list of them is kept here. A
    narrower class defined elsewhere (the service's, the API's) arrives as its status's."""
    found: dict[str, type[KizunaError]] = {}
    pending: list[type[KizunaError]] = [KizunaError]
    while pending:
        cls = pending.pop()
        if cls.__module__ == "kizuna.errors" or cls.__module__.startswith("kizuna.wire."):
            found.setdefault(cls.__name__, cls)
        pending.extend(cls.__subclasses__())
    return found


_QUOTA_USED = re.compile(r"^(\d+) of (\d+) used$")


def _rebuilt(cls: type[KizunaError], message: str, body: Mapping[str, Any],
             response: httpx.Response) -> KizunaError:
    """An instance of ``cls`` with the answer's message and the attributes the body carries
    (an ``InputError``'s field and reason, a FHIR error's issues, a quota's use and reset).
    Made without the class's own constructor, whose arguments the answer may not carry; the
    attributes it sets that the answer does not (a CID, a size limit) are unknown here."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    if isinstance(error, InputError):
        error.field = str(body.get("field") or "")
        error.reason = str(body.get("reason") or message)
    if isinstance(error, FhirValidationError):
        found = body.get("issues")
        issues = found if isinstance(found, list) else []
        error.issues = tuple((str(i.get("field", "")), str(i.get("reason", "")))
                             for i in issues if isinstance(i, dict)) or (
            (error.field, error.reason),)
    if isinstance(error, QuotaExceeded):
        used = _QUOTA_USED.match(str(body.get("reason") or ""))
        error.quota = str(body.get("field") or "")
        error.used, error.limit = (int(used[1]), int(used[2])) if used else (-1, -1)
        after = response.headers.get("Retry-After", "")
        error.retry_after = int(after) if after.isdigit() else None
    if isinstance(error, ContentNotFound | InvalidCid):
        error.cid = ""
    if isinstance(error, EnvelopeTooLarge):
        error.limit = -1
    return error


def api_error(response: httpx.Response) -> KizunaError:
    """The Kizuna error an error answer stands for: the class its body's ``kind`` names
    (:func:`_known_kinds`) when the status allows it (:data:`_STATUS_CLASSES`), else the
    status's own class; an unknown status is a plain ``KizunaError`` naming it. The one
    mapping of API answers to errors (the data-request transport uses it too)."""
    try:
        body = response.json().get("error", {})
    except (ValueError, AttributeError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or response.text[:500] or response.reason_phrase)
    status = response.status_code
    allowed = _STATUS_CLASSES.get(status)
    if allowed is None:
        return KizunaError(f"HTTP {status}: {message}")
    cls = _known_kinds().get(str(body.get("kind", "")))
    if cls is None or not issubclass(cls, allowed):
        cls = allowed[0]
    return _rebuilt(cls, message, body, response)


class ApiClient:
    """The Kizuna API over HTTP, for one participant at a time (see the module docstring)."""

    def __init__(self, base_url: str | None = None, *, client: httpx.Client | None = None,
                 timeout: float = 30.0) -> None:
        if client is None:
            if base_url is None:
                raise ValueError("ApiClient needs a base_url or an httpx.Client")
            client = http_client(base_url, base=True, timeout=timeout)
        self.http = client
        self.session: ApiSession | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if self.session is None:
            return {}
        return {"Authorization": f"Bearer {self.session.token}"}

    def _call(self, method: str, path: str, *, body: Any = None,
              params: Mapping[str, Any] | None = None) -> Any:
        try:
            response = self.http.request(
                method, path, headers=self._headers(),
                json=body, params={k: v for k, v in (params or {}).items() if v is not None})
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"the Kizuna API does not answer: {exc}") from None
        if response.status_code >= 400:
            raise api_error(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _stream(self, path: str) -> Iterator[bytes]:
        try:
            with self.http.stream("GET", path, headers=self._headers()) as response:
                if response.status_code >= 400:
                    response.read()
                    raise api_error(response)
                yield from response.iter_bytes(_UPLOAD_CHUNK)
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"the Kizuna API stopped answering: {exc}") from None

    # -- sign-in -----------------------------------------------------------------------------

    def login(self, signer: TextSigner, *, statement: str = "Sign in to Kizuna.") -> ApiSession:
        """Sign in with Ethereum: a server nonce, the SIWE message signed, a session token."""
        info = self._call("GET", "/auth/nonce")
        message = siwe_message(
            domain=info["domain"], address=signer.address, uri=info["uri"],
            chain_id=int(info["chain_id"]), nonce=info["nonce"], statement=statement,
            issued_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
        answer = self._call("POST", "/auth/login", body={
            "message": message, "signature": _hx(signer.sign_message(message))})
        self.session = ApiSession(address=signer.address,
                                  roles=tuple(answer.get("roles", ())), token=answer["token"])
        return self.session

    def logout(self) -> None:
        self._call("POST", "/auth/logout")
        self.session = None

    # -- patient: records --------------------------------------------------------------------

    def upload_record(self, *, record_id: RecordId, scope_id: ScopeId,
                      envelope: bytes | BinaryIO | Iterable[bytes],
                      registration: SignedAction | SentTransaction,
                      supersedes: RecordId | None = None,
                      patient: Address | None = None, epoch: int = 0) -> RecordInfo:
        """Upload an envelope (streamed) and register it (relayed signature or wallet tx);
        with ``supersedes`` as a new version of that record; with ``patient`` for a ward
        (a guardian's ``registerRecordFor`` / ``supersedeRecordFor`` transaction)."""
        content = _content(envelope)
        headers = {**self._headers(), "Content-Type": "application/octet-stream",
                   "X-Kizuna-Scope-Id": _hx(scope_id),
                   "X-Kizuna-Registration": json.dumps(_authorization(registration))}
        if supersedes is not None:
            headers["X-Kizuna-Supersedes"] = _hx(supersedes)
        headers["X-Kizuna-Scope-Epoch"] = str(int(epoch))
        try:
            response = self.http.put(f"/patient/records/{_hx(record_id)}", content=content,
                                     headers=headers, params=_acting(patient))
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"the Kizuna API does not answer: {exc}") from None
        if response.status_code >= 400:
            raise api_error(response)
        return record_of_json(response.json())

    def upload_in_parts(self, *, record_id: RecordId, scope_id: ScopeId,
                        envelope: bytes | BinaryIO, size: int,
                        registration: SignedAction | SentTransaction,
                        supersedes: RecordId | None = None,
                        patient: Address | None = None, epoch: int = 0) -> RecordInfo:
        """Upload an envelope of ``size`` bytes as a chunked upload (``POST /patient/uploads``,
        kizuna/services/uploads.py): one part (at most the session's ``part_size``) read and
        sent at a time, a part whose connection dropped sent again unless the session says it
        was stored, then completed with the registration — checked and registered as
        :meth:`upload_record` is. An upload that fails is aborted (its parts released)."""
        acting = _acting(patient)
        session = self._call("POST", "/patient/uploads", params=acting, body={
            "record_id": _hx(record_id), "scope_id": _hx(scope_id), "epoch": int(epoch),
            "size": int(size)})
        upload_id, part_size = str(session["upload_id"]), int(session["part_size"])
        view = memoryview(envelope) if isinstance(envelope, bytes | bytearray) else None
        try:
            sent = n = 0
            while sent < size:
                want = min(part_size, size - sent)
                part = (bytes(view[sent:sent + want]) if view is not None
                        else envelope.read(want))  # type: ignore[union-attr]
                if not part:
                    raise InputError("envelope", f"ended after {sent} of {size} bytes")
                self._send_part(upload_id, n, part, acting)
                sent, n = sent + len(part), n + 1
            body = self._call("POST", f"/patient/uploads/{upload_id}/complete", params=acting,
                              body={"registration": _authorization(registration),
                                    "supersedes": _hx(supersedes) if supersedes else None})
        except BaseException:
            with contextlib.suppress(KizunaError):
                self._call("DELETE", f"/patient/uploads/{upload_id}", params=acting)
            raise
        return record_of_json(body)

    def _send_part(self, upload_id: str, n: int, part: bytes,
                   acting: Mapping[str, str], *, attempts: int = 3) -> None:
        path = f"/patient/uploads/{upload_id}/parts/{n}"
        for attempt in range(attempts):
            try:
                response = self.http.put(path, content=part, params=acting, headers={
                    **self._headers(), "Content-Type": "application/octet-stream"})
                if response.status_code < 400:
                    return
                error: KizunaError = api_error(response)
                retry = response.status_code == 409 or response.status_code >= 500
            except httpx.TransportError as exc:
                error = NodeUnreachable(f"the Kizuna API does not answer: {exc}")
                retry = True
            if not retry or attempt == attempts - 1:
                raise error
            # Dropped, or stored with its answer lost: the session says which.
            stored = int(self._call("GET", f"/patient/uploads/{upload_id}",
                                    params=acting)["parts"])
            if stored > n:
                return
            if stored < n:
                raise error

    def records(self, *, content_type: str | None = None,
                patient: Address | None = None) -> list[RecordInfo]:
        """The signed-in patient's records (or, for a guardian, ``patient``'s)."""
        return [record_of_json(r) for r in self._call("GET", "/patient/records", params={
            "content_type": content_type, **_acting(patient)})]

    def record(self, record_id: RecordId, *,
               patient: Address | None = None) -> tuple[RecordInfo, int | None]:
        """One of the signed-in patient's records (or, for a guardian, ``patient``'s) by id,
        and the block of its registration as the service's index has it (a hint)."""
        body = self._call("GET", f"/patient/records/{_hx(record_id)}", params=_acting(patient))
        block = body.get("block_number")
        return record_of_json(body), (int(block) if block is not None else None)

    def download_many(self, record_ids: Sequence[RecordId]) -> Iterator[tuple[RecordId, bytes]]:
        """Envelopes of some of the signed-in patient's records (at most 256, each at most 4
        MiB) from one request, as (record id, envelope) in the order asked."""
        body = {"record_ids": [_hx(r) for r in record_ids]}
        try:
            with self.http.stream("POST", "/patient/records/contents", json=body,
                                  headers=self._headers()) as response:
                if response.status_code >= 400:
                    response.read()
                    raise api_error(response)
                pending = bytearray()
                for chunk in response.iter_bytes(_UPLOAD_CHUNK):
                    pending += chunk
                    while len(pending) >= 40:
                        size = int.from_bytes(pending[32:40], "big")
                        if len(pending) < 40 + size:
                            break
                        yield RecordId(bytes(pending[:32])), bytes(pending[40:40 + size])
                        del pending[:40 + size]
                if pending:
                    raise StorageError("the service's bulk download ended inside an envelope")
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"the Kizuna API stopped answering: {exc}") from None

    def stage_envelopes(self, items: Sequence[StagedEnvelope], *,
                        patient: Address | None = None) -> list[StagedInfo]:
        """Stage envelopes for a batch (``POST /patient/staged``, one framed body streamed:
        at most 1,000 envelopes and the service's upload limit); their commitments as the
        service computed them, in order."""
        try:
            response = self.http.post(
                "/patient/staged", content=frame_envelopes(items), params=_acting(patient),
                headers={**self._headers(), "Content-Type": "application/octet-stream"})
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"the Kizuna API does not answer: {exc}") from None
        if response.status_code >= 400:
            raise api_error(response)
        return [StagedInfo(record_id=RecordId(_unhex(s["record_id"])),
                           commitment=Commitment(_unhex(s["commitment"])), cid=Cid(s["cid"]),
                           size=int(s["size"])) for s in response.json()]

    def staged_ids(self, *, patient: Address | None = None) -> set[RecordId]:
        """The ids of the patient's staged, unregistered envelopes."""
        body = self._call("GET", "/patient/staged", params=_acting(patient))
        return {RecordId(_unhex(r)) for r in body["record_ids"]}

    def register_batch(self, manifest: BatchManifest, *,
                       registration: SignedAction | SentTransaction,
                       patient: Address | None = None) -> BatchInfo:
        """Register staged envelopes as one batch (``POST /patient/batches``)."""
        body = self._call("POST", "/patient/batches", params=_acting(patient), body={
            "manifest": base64.b64encode(manifest.encode()).decode("ascii"),
            "registration": _authorization(registration)})
        return BatchInfo(root=_unhex(body["root"]), count=int(body["count"]),
                         block_number=int(body["block_number"]),
                         tx_hash=_unhex(body["tx_hash"]))

    def download(self, record_id: RecordId) -> Iterator[bytes]:
        """One of the signed-in patient's envelopes, streamed."""
        return self._stream(f"/patient/records/{_hx(record_id)}/content")

    def batch_manifest(self, root: bytes) -> bytes:
        """The service's copy of the manifest of the batch ``root`` (the caller checks it
        rebuilds to the root on chain: :class:`kizuna.client.chainview.BatchManifests`); more
        bytes than the largest manifest are refused."""
        data = bytearray()
        for chunk in self._stream(f"/patient/batches/{_hx(root)}/manifest"):
            data += chunk
            if len(data) > MAX_MANIFEST_BYTES:
                raise StorageError(f"the service's manifest of batch {_hx(root)} is larger "
                                   f"than any batch's ({MAX_MANIFEST_BYTES} bytes)")
        return bytes(data)

    def register_scope_keys(self, *, scope_id: ScopeId, delegating_key: bytes,
                            verifying_key: bytes, signature: bytes, epoch: int = 0) -> None:
        self._call("POST", "/patient/scope-keys", body={
            "scope_id": _hx(scope_id), "epoch": int(epoch),
            "delegating_key": _hx(delegating_key),
            "verifying_key": _hx(verifying_key), "signature": _hx(signature)})

    def reissue_kfrags(self, *, provider: Address, scope_id: ScopeId, epoch: int,
                       kfrags: Sequence[bytes], patient: Address | None = None) -> int:
        """Fragments of one key epoch for a live grant (the rekey after a revocation)."""
        answer = self._call("POST", "/patient/kfrags", body={
            "provider": provider, "scope_id": _hx(scope_id), "epoch": int(epoch),
            "kfrags": [_hx(k) for k in kfrags]}, params=_acting(patient))
        return int(answer["kfrags_stored"])

    def grant(self, *, provider: Address, scope_ids: Sequence[ScopeId], expires_at: int,
              kfrags: Mapping[bytes, Sequence[bytes]],
              authorization: SignedAction | SentTransaction,
              patient: Address | None = None) -> tuple[bytes, int]:
        """Grant scopes with their key fragments; (tx hash, block number)."""
        answer = self._call("POST", "/patient/grants", body={
            "provider": provider, "scope_ids": [_hx(s) for s in scope_ids],
            "expires_at": expires_at, "kfrags": _kfrags(kfrags),
            "authorization": _authorization(authorization)}, params=_acting(patient))
        return _unhex(answer["tx_hash"]), int(answer["block_number"])

    def revoke(self, *, provider: Address, scope_id: ScopeId,
               authorization: SignedAction | SentTransaction,
               patient: Address | None = None) -> RevokeResult:
        """Revoke one scope of a provider: the chain's confirmation and the fragments the
        service deleted."""
        answer = self._call("POST", "/patient/revocations", body={
            "provider": provider, "scope_id": _hx(scope_id),
            "authorization": _authorization(authorization)}, params=_acting(patient))
        return self._revoked(answer, patient=patient, provider=provider, scope_ids=(scope_id,))

    def _revoked(self, answer: Mapping[str, Any], *, patient: Address | None,
                 provider: Address, scope_ids: tuple[ScopeId, ...]) -> RevokeResult:
        if patient is None:
            assert self.session is not None  # the route answered: the session's own patient
            patient = self.session.address
        return RevokeResult(patient=patient, provider=provider, scope_ids=scope_ids,
                            tx_hash=_unhex(answer["tx_hash"]),
                            block_number=int(answer["block_number"]),
                            kfrags_deleted=int(answer["kfrags_deleted"]))

    def patient_inbox(self, *, patient: Address | None = None) -> list[InboxItem]:
        return [_inbox_item(i) for i in self._call("GET", "/patient/inbox",
                                                   params=_acting(patient))]

    def reads(self, *, since: int | None = None,
              patient: Address | None = None) -> list[ReadEntry]:
        return [ReadEntry(provider=r["provider"], record_id=RecordId(_unhex(r["record_id"])),
                          scope_id=ScopeId(_unhex(r["scope_id"])), served_at=int(r["served_at"]),
                          head_block=int(r["head_block"]),
                          request_id=_unhex(r["request_id"]), anchored=bool(r["anchored"]))
                for r in self._call("GET", "/patient/reads",
                                    params={"since": since, **_acting(patient)})]

    def attempted_reads(self, *, since: int | None = None,
                        patient: Address | None = None) -> AttemptedReads:
        """Read requests of providers the access check refused, and the hours whose further
        refusals were only counted."""
        answer = self._call("GET", "/patient/reads/attempted",
                            params={"since": since, **_acting(patient)})
        return AttemptedReads(
            attempts=tuple(RefusedRead(
                seq=int(r["seq"]), provider=Address(r["provider"]),
                patient=Address(r["patient"]),
                record_id=RecordId(_unhex(r["record_id"])), reason=str(r["reason"]),
                refused_at=int(r["refused_at"]), head_block=int(r["head_block"]))
                for r in answer["attempts"]),
            suppressed=tuple(SuppressedRefusals(
                provider=Address(s["provider"]),
                patient=Address(s["patient"]) if s["patient"] else None,
                hour_start=int(s["hour_start"]), count=int(s["count"]),
                last_at=int(s["last_at"]), last_block=int(s["last_block"]))
                for s in answer["suppressed"]))

    def revoke_all(self, *, provider: Address, tx_hash: bytes,
                   patient: Address | None = None) -> RevokeResult:
        """Confirm the wallet's ``revokeAll`` (no signed form): every fragment of the pair
        deleted (how many, in the answer)."""
        answer = self._call("POST", "/patient/revocations/all",
                            body={"provider": provider, "tx_hash": _hx(tx_hash)},
                            params=_acting(patient))
        return self._revoked(answer, patient=patient, provider=provider, scope_ids=())

    def leave_emergency_kit(self, *, provider: Address,
                            kfrags: Mapping[bytes, Sequence[bytes]], epoch: int = 0) -> int:
        """Leave key fragments of some scopes (of one key epoch) for ``provider``'s break-glass
        (replacing its earlier kit of that epoch); how many the service kept."""
        answer = self._call("POST", "/patient/emergency-kits",
                            body={"provider": provider, "kfrags": _kfrags(kfrags),
                                  "epoch": int(epoch)})
        return int(answer["kfrags_left"])

    # -- messages ----------------------------------------------------------------------------

    def publish_inbox_key(self, *, public_key: bytes, signature: bytes) -> InboxKey:
        """Publish the signed-in patient's inbox key (the wallet signed the statement)."""
        return _inbox_key(self._call("POST", "/patient/inbox-key", body={
            "public_key": _hx(public_key), "signature": _hx(signature)}))

    def inbox_key_of(self, patient: Address) -> InboxKey:
        """A patient's inbox key with its signed statement, as the service says: take the key
        only through ``InboxKey.verified_key`` (``chainview.patient_encryption_key``)."""
        return _inbox_key(self._call("GET", f"/patients/{patient}/inbox-key"))

    def _put_message(self, path: str, envelope: bytes | BinaryIO | Iterable[bytes],
                     headers: Mapping[str, str]) -> CareMessage:
        try:
            response = self.http.put(path, content=_content(envelope), headers={
                **self._headers(), "Content-Type": "application/octet-stream", **headers})
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"the Kizuna API does not answer: {exc}") from None
        if response.status_code >= 400:
            raise api_error(response)
        return _message(response.json())

    def send_message(self, *, message_id: bytes, patient: Address, kind: str,
                     envelope: bytes | BinaryIO | Iterable[bytes], tx_hash: bytes,
                     provider: Address | None = None) -> CareMessage:
        """A report / prescription / booking message announced by the sender's own
        ``logCareEvent`` transaction (``tx_hash``)."""
        headers = {"X-Kizuna-Tx-Hash": _hx(tx_hash), "X-Kizuna-Patient": patient,
                   "X-Kizuna-Kind": kind}
        if provider is not None:
            headers["X-Kizuna-Provider"] = provider
        return self._put_message(f"/care/messages/{_hx(message_id)}", envelope, headers)

    def request_access(self, *, message_id: bytes, patient: Address,
                       envelope: bytes | BinaryIO | Iterable[bytes],
                       tx_hash: bytes) -> CareMessage:
        """A provider's access request: its note, announced by its ``requestAccess``."""
        return self._put_message(f"/provider/requests/{_hx(message_id)}", envelope,
                                 {"X-Kizuna-Tx-Hash": _hx(tx_hash), "X-Kizuna-Patient": patient})

    def message_content(self, ref: bytes) -> Iterator[bytes]:
        """A message's envelope (for its patient, provider or sender), streamed."""
        return self._stream(f"/care/messages/{_hx(ref)}/content")

    def sent_messages(self, *, kind: str | None = None) -> list[CareMessage]:
        return [_message(m) for m in self._call("GET", "/care/messages",
                                                params={"kind": kind})]

    # -- wallet: prepared actions and typed data ---------------------------------------------

    def prepare(self, action: str, **fields: Any) -> PreparedAction:
        """``POST /wallet/prepare/<action>`` (bytes fields as hex): params and typed data."""
        body = {k: _hx(v) if isinstance(v, bytes | bytearray) else
                [_hx(x) if isinstance(x, bytes | bytearray) else x for x in v]
                if isinstance(v, list | tuple) else v for k, v in fields.items()}
        answer = self._call("POST", f"/wallet/prepare/{action}", body=body)
        return PreparedAction(action=answer["action"], transaction=dict(answer["transaction"]),
                              typed_data=answer.get("typed_data"))

    def typed_data(self, action: str, **fields: Any) -> TypedData:
        """The EIP-712 document of a gasless action, from its prepared form."""
        prepared = self.prepare(action, **fields)
        if prepared.typed_data is None:
            raise InputError("action", f"{action} has no signed (gasless) form")
        return TypedData.from_json(prepared.typed_data)

    def relay(self, action: SignedAction) -> tuple[bytes, int]:
        answer = self._call("POST", "/wallet/relay", body={
            "typed_data": action.typed.to_json(), "signature": _hx(action.signature)})
        return _unhex(answer["tx_hash"]), int(answer["block_number"])

    def confirm(self, action: str, *, tx_hash: bytes, acting_for: Address | None = None,
                **fields: Any) -> Confirmed:
        """``POST /wallet/confirm/<action>``: the service waits for the wallet's transaction
        and checks its event (``appoint-guardian``, ``emergency-policy``, ``break-glass``);
        ``acting_for`` a ward (``emergency-policy`` sent by their guardian)."""
        answer = self._call("POST", f"/wallet/confirm/{action}",
                            body={"tx_hash": _hx(tx_hash), **fields},
                            params=_acting(acting_for))
        return Confirmed(event=answer["event"], args=dict(answer["args"]),
                         tx_hash=_unhex(answer["tx_hash"]),
                         block_number=int(answer["block_number"]))

    def grants(self, *, patient: Address | None = None) -> list[Grant]:
        """The signed-in patient's (or, for a guardian, ``patient``'s) grants, from the chain
        at the head."""
        return [Grant(patient=g["patient"], provider=g["provider"],
                      scope_id=ScopeId(_unhex(g["scope_id"])), expires_at=int(g["expires_at"]),
                      granted_block=int(g["granted_block"]), live=bool(g["live"]))
                for g in self._call("GET", "/patient/grants", params=_acting(patient))]

    def guardians(self) -> list[Guardian]:
        return [Guardian(patient=g["patient"], guardian=g["guardian"], until=int(g["until"]))
                for g in self._call("GET", "/patient/guardians")]

    # -- auditor -----------------------------------------------------------------------------

    def auditor_inbox(self, *, patient: Address | None = None) -> list[EmergencyAccess]:
        """Emergency accesses awaiting review."""
        return [EmergencyAccess(
                    patient=e["patient"], provider=e["provider"], until=int(e["until"]),
                    reason_code=int(e["reason_code"]), block_number=int(e["block_number"]),
                    tx_hash=_unhex(e["tx_hash"]), log_index=int(e["log_index"]),
                    closed_by=e.get("closed_by"), closed_block=e.get("closed_block"),
                    reviewed=bool(e["reviewed"]))
                for e in self._call("GET", "/auditor/inbox", params={"patient": patient})]

    def review(self, *, tx_hash: bytes, log_index: int) -> None:
        """Mark an emergency access reviewed."""
        self._call("POST", "/auditor/reviews",
                   body={"tx_hash": _hx(tx_hash), "log_index": log_index})

    # -- provider ----------------------------------------------------------------------------

    def patients(self) -> list[Address]:
        return list(self._call("GET", "/provider/patients"))

    def readable_records(self, *, patient: Address | None = None,
                         content_type: str | None = None) -> list[RecordInfo]:
        return [record_of_json(r) for r in self._call("GET", "/provider/records", params={
            "patient": patient, "content_type": content_type})]

    def read(self, *, request: ReadRequest, signature: bytes) -> ReadGrant:
        """Send a signed read request; the capsule fragments and where the ciphertext is."""
        answer = self._call("POST", "/provider/reads", body={
            "request": request.to_json(), "signature": _hx(signature)})
        return read_grant_of(answer)

    def fetch(self, cid: Cid) -> Iterator[bytes]:
        """Ciphertext by CID, streamed."""
        return self._stream(f"/content/{cid}")

    def provider_inbox(self) -> list[InboxItem]:
        return [_inbox_item(i) for i in self._call("GET", "/provider/inbox")]


    # -- SMART Health Links (kizuna.sharing) -------------------------------------------------

    def create_link(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /patient/links``: keep a link's JWE files (encrypted here) and rules."""
        answer: dict[str, Any] = self._call("POST", "/patient/links", body=dict(body))
        return answer

    def links(self) -> list[dict[str, Any]]:
        """``GET /patient/links``: the patient's links and every access to them."""
        answer: list[dict[str, Any]] = self._call("GET", "/patient/links")
        return answer

    def revoke_link(self, link_id: str) -> None:
        """``DELETE /patient/links/{link_id}``."""
        self._call("DELETE", f"/patient/links/{link_id}")


def read_grant_of(answer: Mapping[str, Any]) -> ReadGrant:
    """A read's answer (``ReadOut`` JSON: the service's read route, a proxy node's) as a
    :class:`ReadGrant`; nothing in it is trusted until the provider has checked it."""
    return ReadGrant(
        record_id=RecordId(_unhex(answer["record_id"])), patient=answer["patient"],
        scope_id=ScopeId(_unhex(answer["scope_id"])), cid=Cid(answer["cid"]),
        content_type=answer["content_type"], size=int(answer["size"]),
        capsule=_unhex(answer["capsule"]), cfrags=tuple(_unhex(c) for c in answer["cfrags"]),
        delegating_key=_unhex(answer["delegating_key"]),
        verifying_key=_unhex(answer["verifying_key"]),
        receipt_seq=int(answer["receipt_seq"]), request_id=_unhex(answer["request_id"]),
        head_block=int(answer["head_block"]), served_at=int(answer["served_at"]),
        leaf=_unhex(answer["leaf"]), envelope=_inline(answer.get("envelope_base64")),
        commitment=(Commitment(_unhex(answer["commitment"]))
                    if answer.get("commitment") else None),
        batch_root=_unhex(answer["batch_root"]) if answer.get("batch_root") else None,
        proof=tuple(_unhex(p) for p in answer.get("proof") or ()))


__all__ = ["ApiClient", "ApiSession", "TextSigner", "api_error", "read_grant_of",
           "siwe_message"]
