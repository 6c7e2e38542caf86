"""The API's request and answer bodies (pydantic). Bytes travel as ``0x`` hex (ids, keys,
capsules, fragments) or base64 where large; addresses as EIP-55 strings.

Routes declare these as ``response_model`` so the OpenAPI document says exactly what comes back.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from eth_utils.address import is_address
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from kizuna.types import checksum_address

_HEX = re.compile(r"^0x([0-9a-fA-F]{2})*$")


def _address(value: str) -> str:
    if not is_address(value):
        raise ValueError("is not an Ethereum address (0x + 40 hex digits)")
    return str(checksum_address(value))  # cached: every read request names two addresses


def _hex(value: str) -> str:
    if not _HEX.match(value):
        raise ValueError("is not 0x-prefixed hex with an even number of digits")
    return value.lower()


def _hex32(value: str) -> str:
    value = _hex(value)
    if len(value) != 66:
        raise ValueError("is not 32 bytes of hex (0x + 64 digits)")
    return value


AddressStr = Annotated[str, Field(examples=["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"],
                                  max_length=42), AfterValidator(_address)]
HexStr = Annotated[str, Field(max_length=1 << 20, pattern=r"^0x([0-9a-fA-F]{2})*$"),
                   AfterValidator(_hex)]
Hex32 = Annotated[str, Field(min_length=66, max_length=66, pattern=r"^0x[0-9a-fA-F]{64}$"),
                  AfterValidator(_hex32)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- system -----------------------------------------------------------------------------------


class Health(Model):
    status: str = Field(description="ok when the chain and the store answer")
    chain_id: int
    head_block: int
    store: str = Field(description="embedded or ipfs")


class Version(Model):
    version: str
    chain_id: int
    contracts: dict[str, str] = Field(description="contract name → address")
    wallet_rpc_url: str | None = Field(
        None, description="the RPC URL a wallet may add for this chain (the web page offers it)")
    anchorer: str | None = Field(
        None, description="the address that anchors this service's receipt batches in AccessLog "
        "(its anchorer key; each anchorer keeps its own batches there, and threshold proxy "
        "nodes anchor theirs with their own keys); null when this instance has no anchorer key")


class Status(Model):
    pid: int
    peak_rss_mib: float = Field(description="this process's peak resident memory")
    rss_mib: float


# --- auth -------------------------------------------------------------------------------------


class NonceAnswer(Model):
    nonce: str
    domain: str = Field(description="the domain the SIWE message must name")
    uri: str = Field(description="the URI the SIWE message must name")
    chain_id: int
    expires_at: datetime = Field(description="the nonce is refused after this time")


class LoginRequest(Model):
    message: str = Field(max_length=4096, description="the EIP-4361 message, as signed")
    signature: HexStr = Field(description="the EIP-191 signature of the message (65 bytes)")


class SessionAnswer(Model):
    token: str = Field(description="send as Authorization: Bearer <token>; shown once")
    address: str
    roles: list[str]
    guardian_of: list[str]
    expires_at: datetime


class Me(Model):
    address: str
    roles: list[str]
    guardian_of: list[str]
    expires_at: datetime


# --- on-chain authorisations ----------------------------------------------------------------


class SignedActionIn(Model):
    """A patient's EIP-712 signed ledger action (relayed by the service: no gas for them)."""

    typed_data: dict[str, object] = Field(description="the eth_signTypedData_v4 document")
    signature: HexStr


class AuthorizationIn(Model):
    """Exactly one: a signed action to relay, or the hash of a transaction the wallet sent."""

    signed: SignedActionIn | None = None
    tx_hash: Hex32 | None = None


class PreparedOut(Model):
    """What a browser wallet needs: eth_sendTransaction params, and typed data when the ledger
    also accepts the action signed (gasless)."""

    action: str
    transaction: dict[str, str]
    typed_data: dict[str, object] | None = None


# --- records ------------------------------------------------------------------------------------


class RecordOut(Model):
    record_id: str
    patient: str
    scope_id: str
    cid: str
    commitment: str
    size: int
    content_type: str
    created_at: int
    epoch: int = Field(0, description="the scope key epoch the record is encrypted to "
                       "(docs/keys.md \"Epochs\")")
    block_number: int | None = Field(
        default=None, description="the block of the record's RecordRegistered event (set by GET "
        "/patient/records/{record_id}): a client reads the registered commitment from that one "
        "block of its own node rather than scanning the chain; null in lists")
    batch_root: str | None = Field(
        default=None, description="the root of the batch the record was registered in "
        "(RecordBatchRegistered); null for a record registered alone")
    leaf_index: int | None = Field(
        default=None, description="the record's leaf in its batch's manifest; null alone")
    proof: list[str] | None = Field(
        default=None, description="the record's Merkle proof in its batch: sibling words, "
        "from its leaf to batch_root (OpenZeppelin MerkleProof rules); null alone")


class RecordIdsIn(Model):
    record_ids: list[Hex32] = Field(
        min_length=1, max_length=256, description="the patient's own records, in the order "
        "their envelopes are wanted (at most 256, each envelope at most 4 MiB)")


# --- chunked uploads (kizuna/services/uploads.py) -------------------------------------------------


class UploadIn(Model):
    """The start of a chunked upload of one envelope."""

    record_id: Hex32
    scope_id: Hex32
    epoch: int = Field(0, ge=0, lt=1 << 64, description="the scope key epoch the envelope is "
                       "encrypted to; it must be the scope's current one (409 otherwise)")
    size: int = Field(gt=0, lt=1 << 63, description="the envelope's size in bytes (413 over "
                      "max_upload_bytes)")


class UploadOut(Model):
    """An upload session and how far it got: the next part to send is number ``parts``."""

    upload_id: str
    record_id: str
    scope_id: str
    epoch: int
    size: int
    received: int = Field(description="bytes of the parts stored so far")
    parts: int = Field(description="parts stored so far (numbered from 0)")
    part_size: int = Field(description="the largest part a request may carry")
    min_part_size: int = Field(description="the smallest part but the last")


class UploadCompleteIn(Model):
    """What registers the uploaded envelope, as ``X-Kizuna-Registration`` (and
    ``X-Kizuna-Supersedes``) do on ``PUT /patient/records/{record_id}``."""

    registration: AuthorizationIn
    supersedes: Hex32 | None = None


# --- batches ------------------------------------------------------------------------------------


class StagedOut(Model):
    """An envelope staged for a batch: what its leaf needs, and where it is stored."""

    record_id: str
    commitment: str = Field(description="SHA-256 of the envelope, as the service computed it")
    cid: str
    size: int


class StagedIdsOut(Model):
    record_ids: list[str] = Field(description="the patient's staged, unregistered envelopes")


class BatchIn(Model):
    manifest: str = Field(
        max_length=13_400_000, description="base64 of the batch manifest (kizuna/batch.py:"
        " KZBATCH\\x01, count, then record id, scope id, commitment of each leaf)")
    registration: AuthorizationIn = Field(
        description="the patient's signed RegisterBatch (relayed), or the hash of the "
        "registerBatch / registerBatchFor transaction their wallet (or guardian) sent")


class BatchOut(Model):
    root: str
    count: int
    block_number: int
    tx_hash: str


# --- grants -------------------------------------------------------------------------------------


class ScopeKeysIn(Model):
    scope_id: Hex32
    epoch: int = Field(0, ge=0, lt=1 << 64, description="the key epoch the keys are of")
    delegating_key: HexStr
    verifying_key: HexStr
    signature: HexStr


class ScopeEpochOut(Model):
    scope_id: str
    epoch: int = Field(description="the scope's key epoch at the chain head: how many "
                       "revocations touched it (docs/keys.md \"Epochs\")")


class KfragsIn(Model):
    """Fragments of one key epoch for a grant that is live on chain (no chain action): the new
    epoch's for the grantees that remain after a revocation, or older epochs' after a grant."""

    provider: AddressStr
    scope_id: Hex32
    epoch: int = Field(ge=0, lt=1 << 64)
    kfrags: list[HexStr] = Field(min_length=1, max_length=64)


class KfragsOut(Model):
    kfrags_stored: int


class GrantIn(Model):
    provider: AddressStr
    scope_ids: list[Hex32] = Field(min_length=1, max_length=64)
    expires_at: int = Field(gt=0, lt=1 << 64)
    kfrags: dict[str, list[HexStr]] = Field(
        description="scope id (0x hex) → the provider's key fragments for that scope")
    authorization: AuthorizationIn


class RevokeIn(Model):
    provider: AddressStr
    scope_id: Hex32
    authorization: AuthorizationIn


class TxOut(Model):
    tx_hash: str
    block_number: int


class RevokeOut(TxOut):
    """A revocation confirmed on chain, and what the service dropped for it."""

    kfrags_deleted: int = Field(description="the key fragments the service deleted for the "
                                "revoked scope(s) of the provider")


# --- reads -------------------------------------------------------------------------------------


class ReadRequestIn(Model):
    provider: AddressStr
    patient: AddressStr
    record_id: Hex32 = Field(alias="recordId")
    request_id: Hex32 = Field(alias="requestId")
    issued_at: int = Field(alias="issuedAt", ge=0, lt=1 << 64)


class ReadIn(Model):
    request: ReadRequestIn
    signature: HexStr = Field(description="the provider's EIP-712 signature (65 bytes)")


class ReadOut(Model):
    """Ciphertext location and capsule fragments: only the provider can open the data key."""

    record_id: str
    patient: str
    scope_id: str
    cid: str
    content_type: str
    size: int
    capsule: str
    cfrags: list[str]
    delegating_key: str
    verifying_key: str
    receipt_seq: int
    request_id: str
    head_block: int
    served_at: int
    leaf: str
    envelope_base64: str | None = Field(
        None, description="the whole envelope (base64) when it is at most the service's "
        "read_inline_max_bytes: the read is then one request; null: GET /content/{cid}")
    commitment: str | None = Field(
        None, description="the record's commitment as the service has it: a provider trusts it "
        "only as the chain confirms it (the RecordRegistered event; for a batch record, proof "
        "from its leaf to batch_root, a batch of the patient's per batchOf)")
    batch_root: str | None = Field(
        None, description="the root of the batch the record was registered in; null: "
        "registered alone")
    proof: list[str] = Field(
        default_factory=list, description="the record's Merkle proof in its batch (sibling "
        "words, OpenZeppelin MerkleProof rules; docs/contracts.md \"Batches\")")


# --- lists, inboxes, audit -------------------------------------------------------------------


class GrantOut(Model):
    patient: str
    provider: str
    scope_id: str
    expires_at: int
    granted_block: int
    live: bool


class GuardianOut(Model):
    patient: str
    guardian: str
    until: int


class InboxItemOut(Model):
    kind: str
    patient: str
    provider: str | None
    actor: str
    ref: str
    cid: str | None
    content_type: str | None
    block_number: int
    flagged_for_review: bool


class ReadEntryOut(Model):
    provider: str
    record_id: str
    scope_id: str
    served_at: int
    head_block: int
    request_id: str
    anchored: bool


class AttemptedReadOut(Model):
    """A read request the access check refused (signed by the provider named)."""

    seq: int
    provider: str
    patient: str
    record_id: str
    reason: str = Field(description="no-grant, revoked, expired, superseded, wrong-patient, "
                        "not-an-active-provider, unknown-record, proof-fails or refused")
    refused_at: int
    head_block: int


class SuppressedReadsOut(Model):
    """Refusals of one hour counted but not recorded one by one (the rate limit)."""

    provider: str
    patient: str | None = Field(description="None: past the provider's cap for the hour")
    hour_start: int
    count: int
    last_at: int
    last_block: int


class AttemptedReadsOut(Model):
    attempts: list[AttemptedReadOut]
    suppressed: list[SuppressedReadsOut]


class EmergencyAccessOut(Model):
    patient: str
    provider: str
    until: int
    reason_code: int
    block_number: int
    tx_hash: str
    log_index: int
    closed_by: str | None
    closed_block: int | None
    reviewed: bool
    reviewed_by: str | None = Field(None, description="the auditor who marked it reviewed")
    reviewed_at: int | None = Field(None, description="when (Unix seconds)")


class AuditEntryOut(Model):
    kind: str
    event: str
    block_number: int
    log_index: int
    tx_hash: str
    time: int
    patient: str | None
    provider: str | None
    scope_ids: list[str]
    record_id: str | None
    flags: list[str]
    expires_at: int | None
    actor: str | None
    details: dict[str, object]


class ReceiptProofOut(Model):
    """A stored read receipt as it is, with its Merkle proof under its batch's root (built by
    the service from the stored leaves): what an auditor's page checks against the chain."""

    seq: int
    request_id: str
    provider: str
    patient: str
    record_id: str
    scope_id: str
    request_json: str = Field(description="the provider's signed ReadRequest, as stored")
    signature: str
    leaf: str
    served_at: int
    head_block: int
    batch_root: str | None
    leaf_index: int | None
    proof: list[str] = Field(description="sibling hashes from the leaf up (empty: pending, "
                             "or the batch's leaf indices are not 0..n-1)")


class ReceiptPageOut(Model):
    """One page of the stored read receipts, in ``seq`` order."""

    receipts: list[ReceiptProofOut]
    next_cursor: str | None = Field(description="pass as ``cursor`` for the next page; null "
                                    "on the last page")


class FindingOut(Model):
    check: str
    subject: str
    reason: str


class CheckReportOut(Model):
    name: str
    checked: int
    passed: int
    failures: list[FindingOut]
    counts: dict[str, int]


class AuditReportOut(Model):
    ok: bool
    receipts: CheckReportOut
    access: CheckReportOut
    content: CheckReportOut


class ReviewIn(Model):
    tx_hash: Hex32
    log_index: int = Field(ge=0, lt=1 << 32)


class AnchorOut(Model):
    anchored: int = Field(description="receipts anchored by this call")
    roots: list[str]


# --- wallet ------------------------------------------------------------------------------------


class PrepareRegistrationIn(Model):
    record_id: Hex32
    commitment: Hex32
    scope_id: Hex32
    deadline: int = Field(gt=0, lt=1 << 64)
    supersedes: Hex32 | None = Field(
        None, description="a new version of this record of the patient's (supersedeRecord)")


class PrepareBatchRegistrationIn(Model):
    root: Hex32 = Field(description="the Merkle root of the batch's leaves")
    count: int = Field(gt=0, lt=1 << 32, description="the records in the batch")
    deadline: int = Field(gt=0, lt=1 << 64)


class PrepareGrantIn(Model):
    provider: AddressStr
    scope_ids: list[Hex32] = Field(min_length=1, max_length=64)
    expires_at: int = Field(gt=0, lt=1 << 64)
    deadline: int = Field(gt=0, lt=1 << 64)


class PrepareRevokeIn(Model):
    provider: AddressStr
    scope_id: Hex32
    deadline: int = Field(gt=0, lt=1 << 64)


class PrepareStudyConsentIn(Model):
    study_id: Hex32
    scope_id: Hex32
    deadline: int = Field(gt=0, lt=1 << 64)


class PrepareStudyWithdrawalIn(Model):
    study_id: Hex32
    deadline: int = Field(gt=0, lt=1 << 64)


class PrepareGuardianIn(Model):
    guardian: AddressStr
    until: int = Field(gt=0, lt=1 << 64)


class PrepareEmergencyPolicyIn(Model):
    allowed: bool
    max_duration: int = Field(ge=0, lt=1 << 64)


class PrepareBreakGlassIn(Model):
    patient: AddressStr
    duration: int = Field(gt=0, lt=1 << 64)
    reason_code: int = Field(ge=0, lt=1 << 16)


class PrepareAccessRequestIn(Model):
    patient: AddressStr
    ref: Hex32


class ConfirmIn(Model):
    """The hash of the transaction the wallet sent for a prepared action."""

    tx_hash: Hex32


class ConfirmGuardianIn(ConfirmIn):
    guardian: AddressStr


class ConfirmEmergencyPolicyIn(ConfirmIn):
    allowed: bool
    max_duration: int = Field(ge=0, lt=1 << 64)


class ConfirmBreakGlassIn(ConfirmIn):
    patient: AddressStr


class ConfirmedOut(Model):
    event: str
    args: dict[str, object]
    tx_hash: str
    block_number: int


# --- care messages -------------------------------------------------------------------------


class InboxKeyIn(Model):
    public_key: HexStr = Field(description="the patient's Umbral public key (33 bytes)")
    signature: HexStr = Field(description="the wallet's signature of the InboxKey statement")


class InboxKeyOut(Model):
    patient: str
    public_key: str
    signature: str
    statement: dict[str, object] = Field(description="the signed EIP-712 statement: verify it")


class OwnInboxKeyOut(Model):
    """The signed-in patient's own inbox key: ``published`` is null while they have none."""

    published: InboxKeyOut | None


class CareMessageOut(Model):
    ref: str
    cid: str
    patient: str
    provider: str | None
    sender: str
    kind: str
    content_type: str
    size: int
    tx_hash: str
    block_number: int
    created_at: int


class PrepareDeclineIn(Model):
    provider: AddressStr


class ConfirmDeclineIn(ConfirmIn):
    provider: AddressStr


class PrepareRemoveGuardianIn(Model):
    guardian: AddressStr


class PrepareRevokeAllIn(Model):
    provider: AddressStr


class RevokeAllIn(ConfirmIn):
    """The hash of the wallet's ``revokeAll`` (it has no signed form)."""

    provider: AddressStr


# --- emergency kit --------------------------------------------------------------------------


class EmergencyKitIn(Model):
    """The patient's key fragments of some scopes for one provider's break-glass access (made
    for the provider's registry key); they replace that provider's earlier kit, and an empty
    ``kfrags`` takes it back. The proxy gets them only once an emergency access is open."""

    provider: AddressStr
    kfrags: dict[str, list[HexStr]] = Field(
        max_length=64, description="scope id (0x hex) → the provider's key fragments")
    epoch: int = Field(0, ge=0, lt=1 << 64, description="the key epoch the fragments are of: "
                       "they replace the kit's fragments of that epoch only")


class EmergencyKitOut(Model):
    provider: str
    scope_ids: list[str] = Field(description="the scopes the kit now holds for the provider")
    kfrags_left: int = Field(description="how many fragments the service keeps in the kit")


# --- SMART Health Links (kizuna.sharing.links) ----------------------------------------------


class LinkFileIn(Model):
    content_type: str = Field(max_length=100, examples=["application/fhir+json"],
                              description="what the JWE holds (the SHL manifest's contentType)")
    jwe: str = Field(min_length=1, description="the file encrypted on the patient's side: a "
                     "compact JWE, alg dir, enc A256GCM, under the link's key")


class LinkIn(Model):
    """A new SMART Health Link: its encrypted files and how it may be opened. The link's key
    never reaches the service."""

    files: list[LinkFileIn] = Field(min_length=1, max_length=16)
    label: str | None = Field(default=None, max_length=80)
    expires_at: int | None = Field(default=None, gt=0, lt=1 << 63,
                                   description="unix seconds; the link answers 404 from then")
    passcode: str | None = Field(default=None, min_length=4, max_length=128,
                                 description="kept only as a scrypt hash")
    max_attempts: int = Field(default=5, ge=1, le=100,
                              description="wrong passcodes before the link locks")
    direct: bool = Field(default=False, description="a U link: one file, no passcode, "
                         "fetched with GET ?recipient=")


class LinkAccessOut(Model):
    at: int
    recipient: str
    outcome: str = Field(description="manifest, file, direct, wrong-passcode, or refused-… "
                         "(revoked, expired, locked)")


class LinkOut(Model):
    link_id: str
    path: str = Field(description="the manifest URL's path on this service (/shl/{link_id})")
    label: str | None
    flag: str
    expires_at: int | None
    created_at: int
    revoked_at: int | None
    attempts_left: int | None
    state: str = Field(description="active, revoked, expired or locked")
    files: int
    accesses: list[LinkAccessOut]


class ManifestIn(BaseModel):
    """The SHL manifest request (HL7 SMART Health Links). Unknown members are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    recipient: str = Field(min_length=1, max_length=200,
                           description="who is opening the link (shown to the patient)")
    passcode: str | None = Field(default=None, max_length=128)
    embeddedLengthMax: int | None = Field(default=None, ge=0, lt=1 << 40)  # the spec's name


class ManifestFileOut(BaseModel):
    contentType: str  # the spec's name
    embedded: str | None = None
    location: str | None = None


class ManifestOut(BaseModel):
    files: list[ManifestFileOut]


class WrongPasscodeOut(BaseModel):
    remainingAttempts: int  # the spec's name
    error: dict[str, str]


# --- data requests to providers (kizuna.services.data_requests) ---------------------------------


class DataRequestIn(Model):
    """A patient's request for records, announced by their own ``logCareEvent`` (kind
    ``DataRequested``) whose ``ref`` is the commitment of these fields."""

    provider: AddressStr
    types: list[str] = Field(min_length=1, max_length=64,
                             description="FHIR R4 resource types asked for")
    since: str | None = Field(default=None, max_length=10, description="FHIR date")
    until: str | None = Field(default=None, max_length=10, description="FHIR date")
    deadline_days: int | None = Field(default=None, description="default 30")
    nonce: Hex32
    note_id: Hex32 | None = Field(default=None, description="the note envelope's random id")
    note: HexStr | None = Field(default=None,
                                description="the note's envelope, encrypted to the provider")
    tx_hash: Hex32


class DataRequestAnswerIn(Model):
    """A provider's answer, announced by its own ``logCareEvent``."""

    state: str = Field(max_length=24,
                       description="acknowledged, fulfilled-in-part, fulfilled or declined")
    reason: str | None = Field(default=None, max_length=2000)
    deliveries: list[Hex32] = Field(default_factory=list, max_length=1000,
                                    description="commitments of files uploaded for it")
    nonce: Hex32
    tx_hash: Hex32


class DeliveryOut(Model):
    commitment: str
    cid: str
    content_type: str
    size: int


class DataRequestAnswerOut(Model):
    ref: str
    state: str
    reason: str | None
    nonce: str
    deliveries: list[DeliveryOut]
    tx_hash: str
    block_number: int
    answered_at: int


class DataRequestOut(Model):
    request_id: str
    patient: str
    provider: str
    types: list[str]
    since: str | None
    until: str | None
    deadline_days: int
    deadline: int = Field(description="unix seconds (chain time of the request + the days)")
    nonce: str
    note_ref: str | None
    tx_hash: str
    block_number: int
    asked_at: int
    state: str
    status: str = Field(description="the state, or overdue past the deadline by chain time")
    overdue: bool
    as_of: int = Field(description="the chain time the status was computed at")
    answers: list[DataRequestAnswerOut]
