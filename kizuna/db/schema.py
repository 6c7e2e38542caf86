"""The service's tables (SQLAlchemy Core), shared by every instance of the service.

State that several service instances must agree on lives here, not in memory: records the
service knows the CID of, the key fragments patients handed to the proxy, the read receipts
and their anchored batches, SIWE nonces and sessions. docs/service.md lists the tables.

Addresses are stored as checksummed strings; ids (record, scope, request, roots) as raw
32-byte blobs; times as unix seconds (BIGINT).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

records = Table(
    "records",
    metadata,
    Column("record_id", LargeBinary(32), primary_key=True),
    Column("patient", String(42), nullable=False),
    Column("scope_id", LargeBinary(32), nullable=False),
    Column("cid", Text, nullable=False),
    Column("commitment", LargeBinary(32), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("epoch", BigInteger, nullable=False, default=0, server_default="0"),
    Column("batch_root", LargeBinary(32), nullable=True),
    Column("leaf_index", BigInteger, nullable=True),
    Column("proof", LargeBinary, nullable=True),
    Index("records_by_patient", "patient", "created_at"),
    Index("records_by_cid", "cid"),  # GET /content/{cid}: whose envelope is this
    Index("records_by_batch", "batch_root"),
)
"""Records the service knows the CID of (written at upload, after the chain registered it).
``epoch``: the scope key epoch the record is encrypted to (docs/keys.md "Epochs"); a read
re-encrypts with the fragments of that epoch. ``batch_root``, ``leaf_index``, ``proof``: for a
record registered in a batch (kizuna/batch.py), the batch's root, the record's leaf
position and its Merkle proof (packed words); NULL for a record registered alone."""

record_batches = Table(
    "record_batches",
    metadata,
    Column("root", LargeBinary(32), primary_key=True),
    Column("patient", String(42), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("manifest_cid", Text, nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("record_batches_by_patient", "patient", "block_number"),
)
"""Batches registered through this service: the on-chain root and where its manifest (the
leaves, kizuna/batch.py) is stored. Written with the batch's ``records`` rows, in one
transaction, after the chain confirmed the batch."""

staged_envelopes = Table(
    "staged_envelopes",
    metadata,
    Column("record_id", LargeBinary(32), primary_key=True),
    Column("patient", String(42), nullable=False),
    Column("scope_id", LargeBinary(32), nullable=False),
    Column("cid", Text, nullable=False),
    Column("commitment", LargeBinary(32), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("epoch", BigInteger, nullable=False, default=0, server_default="0"),
    Column("staged_at", BigInteger, nullable=False),
    Index("staged_by_patient", "patient", "staged_at"),
    Index("staged_by_cid", "cid"),
)
"""Envelopes stored (pinned) for a batch that is not registered yet: they count against the
patient's quota; registering the batch moves them to ``records``; unregistered ones older than
the staging TTL are unpinned and deleted."""

upload_sessions = Table(
    "upload_sessions",
    metadata,
    Column("upload_id", String(32), primary_key=True),  # random, 32 hex digits
    Column("patient", String(42), nullable=False),
    Column("record_id", LargeBinary(32), nullable=False),
    Column("scope_id", LargeBinary(32), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),  # the envelope's size, declared at the start
    Column("received", BigInteger, nullable=False),  # bytes of the parts stored so far
    Column("parts", Integer, nullable=False),  # parts stored so far (the next is number parts)
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("upload_sessions_by_patient", "patient"),
    Index("upload_sessions_by_update", "updated_at"),
)
"""A chunked upload of one envelope in progress (kizuna.services.uploads): its parts are
stored (pinned) one by one, then ``complete`` streams them, in order, through the single upload
path. Sessions untouched for the staging TTL are unpinned and deleted."""

upload_parts = Table(
    "upload_parts",
    metadata,
    Column("upload_id", String(32), primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("cid", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Index("upload_parts_by_cid", "cid"),
)
"""The stored parts of an upload session, numbered from 0."""

patient_keys = Table(
    "patient_keys",
    metadata,
    Column("patient", String(42), primary_key=True),
    Column("scope_id", LargeBinary(32), primary_key=True),
    Column("epoch", BigInteger, primary_key=True, default=0, server_default="0"),
    Column("delegating_key", LargeBinary(33), nullable=False),
    Column("verifying_key", LargeBinary(33), nullable=False),
    Column("statement_signature", LargeBinary(65), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
"""A patient's Umbral keys for one scope and key epoch, bound to the patient by a wallet
signature (see ``kizuna.proxy.kfrags``: what stops a stranger uploading kfrags for someone
else)."""

kfrags = Table(
    "kfrags",
    metadata,
    Column("patient", String(42), primary_key=True),
    Column("scope_id", LargeBinary(32), primary_key=True),
    Column("provider", String(42), primary_key=True),
    Column("epoch", BigInteger, primary_key=True, default=0, server_default="0"),
    Column("share_index", Integer, primary_key=True),
    Column("kfrag", LargeBinary, nullable=False),
    Column("delegating_key", LargeBinary(33), nullable=False),
    Column("receiving_key", LargeBinary(33), nullable=False),
    Column("verifying_key", LargeBinary(33), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("kfrags_by_pair", "patient", "provider"),
)

receipts = Table(
    "receipts",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("request_id", LargeBinary(32), nullable=False, unique=True),
    Column("provider", String(42), nullable=False),
    Column("patient", String(42), nullable=False),
    Column("record_id", LargeBinary(32), nullable=False),
    Column("scope_id", LargeBinary(32), nullable=False),
    Column("request_json", Text, nullable=False),
    Column("signature", LargeBinary(65), nullable=False),
    Column("leaf", LargeBinary(32), nullable=False),
    Column("served_at", BigInteger, nullable=False),
    Column("head_block", BigInteger, nullable=False),
    Column("batch_root", LargeBinary(32), nullable=True),
    Column("leaf_index", Integer, nullable=True),
    Index("receipts_unanchored", "batch_root", "seq"),
    Index("receipts_by_patient", "patient", "served_at"),
    Index("receipts_by_provider", "provider", "served_at"),
)

receipt_batches = Table(
    "receipt_batches",
    metadata,
    Column("root", LargeBinary(32), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("from_time", BigInteger, nullable=False),
    Column("to_time", BigInteger, nullable=False),
    Column("tx_hash", LargeBinary(32), nullable=True),
    Column("block_number", BigInteger, nullable=True),
    Column("anchored_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)
"""A batch row exists from the moment its receipts are assigned to it; ``tx_hash`` is NULL
until the root is anchored (a batch still pending after a crash is finished by the next run)."""

siwe_nonces = Table(
    "siwe_nonces",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("issued_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("address", String(42), nullable=False),
    Column("roles", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

# --- care messages and break-glass kits (kizuna.services.care / .emergency) ----------------

care_messages = Table(
    "care_messages",
    metadata,
    Column("ref", LargeBinary(32), primary_key=True),
    Column("cid", Text, nullable=False, index=True),
    Column("patient", String(42), nullable=False, index=True),
    Column("provider", String(42), nullable=True, index=True),
    Column("sender", String(42), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("content_type", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("tx_hash", LargeBinary(32), nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
"""Where the envelope of each announced message is (``ref`` = its on-chain commitment)."""

# --- data requests to providers (kizuna.services.data_requests) -----------------------------

data_requests = Table(
    "data_requests",
    metadata,
    Column("request_id", LargeBinary(32), primary_key=True),  # the DataRequested event's ref
    Column("patient", String(42), nullable=False, index=True),
    Column("provider", String(42), nullable=False, index=True),
    Column("types", Text, nullable=False),  # JSON list of FHIR resource types
    Column("since", String(10), nullable=True),
    Column("until", String(10), nullable=True),
    Column("deadline_days", Integer, nullable=False),
    Column("nonce", LargeBinary(32), nullable=False),
    Column("note_ref", LargeBinary(32), nullable=True),
    Column("note_cid", Text, nullable=True),
    Column("tx_hash", LargeBinary(32), nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("asked_at", BigInteger, nullable=False),  # the block's time (chain time)
)
"""A patient's request for records: the fields its on-chain ref commits to (never on-chain)."""

data_request_answers = Table(
    "data_request_answers",
    metadata,
    Column("ref", LargeBinary(32), primary_key=True),  # the answer's care event ref
    Column("request_id", LargeBinary(32), nullable=False, index=True),
    Column("state", String(24), nullable=False),
    Column("reason", Text, nullable=True),
    Column("nonce", LargeBinary(32), nullable=False),
    Column("tx_hash", LargeBinary(32), nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("answered_at", BigInteger, nullable=False),
)
"""The provider's answers to a data request (acknowledged, part, fulfilled, declined)."""

data_request_deliveries = Table(
    "data_request_deliveries",
    metadata,
    Column("commitment", LargeBinary(32), primary_key=True),
    Column("request_id", LargeBinary(32), nullable=False, index=True),
    Column("answer_ref", LargeBinary(32), nullable=True),  # NULL: uploaded, not yet sent
    Column("position", Integer, nullable=True),
    Column("cid", Text, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("uploaded_at", BigInteger, nullable=False),
)
"""Envelopes (encrypted to the patient) a provider sends in answer to a data request."""

inbox_keys = Table(
    "inbox_keys",
    metadata,
    Column("patient", String(42), primary_key=True),
    Column("public_key", LargeBinary(33), nullable=False),
    Column("signature", LargeBinary(65), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("version", Integer, nullable=False, default=1),
)
"""A patient's published inbox key (Umbral public key) and their wallet's signature over it."""

emergency_kits = Table(
    "emergency_kits",
    metadata,
    Column("patient", String(42), primary_key=True),
    Column("provider", String(42), primary_key=True),
    Column("scope_id", LargeBinary(32), primary_key=True),
    Column("epoch", BigInteger, primary_key=True, default=0, server_default="0"),
    Column("share_index", Integer, primary_key=True),
    Column("kfrag", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
"""Fragments a patient left for break-glass, per (patient, provider, scope, key epoch)."""

# --- refused reads (kizuna.services.refusals) ---------------------------------------------------

refused_reads = Table(
    "refused_reads",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("provider", String(42), nullable=False),
    Column("patient", String(42), nullable=False),
    Column("record_id", LargeBinary(32), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("refused_at", BigInteger, nullable=False),
    Column("head_block", BigInteger, nullable=False),
    Index("refused_reads_by_patient", "patient", "refused_at"),
    Index("refused_reads_by_provider", "provider", "refused_at"),
)
"""A validly signed read request the access check refused: who asked, for whose record, why
(a reason code), when, at which head. No plaintext, no request body, no signature."""

refused_read_counts = Table(
    "refused_read_counts",
    metadata,
    Column("provider", String(42), primary_key=True),
    Column("patient", String(42), primary_key=True),
    Column("hour", BigInteger, primary_key=True),
    Column("recorded", Integer, nullable=False),
    Column("suppressed", Integer, nullable=False),
    Column("last_at", BigInteger, nullable=False),
    Column("last_block", BigInteger, nullable=False),
)
"""The rate limit of ``refused_reads`` per (provider, patient, hour): rows written, refusals
only counted, and the time and head block of the last refusal counted. ``patient = ''`` is the
provider's row for the hour across all patients."""

# --- relayer gas budgets (kizuna.services.quotas) ------------------------------------------------

relayer_gas = Table(
    "relayer_gas",
    metadata,
    Column("wallet", String(42), primary_key=True),
    Column("day", BigInteger, primary_key=True),
    Column("gas", BigInteger, nullable=False),
)
"""Gas the relayer spent (or holds reserved for a transaction in flight) for a wallet on one
UTC day (``day`` = unix time // 86400): shared by every instance, so the budget holds across
them."""

# --- SMART Health Links (kizuna.sharing.links) ---------------------------------------------------

shl_links = Table(
    "shl_links",
    metadata,
    Column("link_id", String(64), primary_key=True),
    Column("patient", String(42), nullable=False),
    Column("label", Text, nullable=True),
    Column("flag", String(4), nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("passcode_hash", Text, nullable=True),
    Column("attempts_left", Integer, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Index("shl_links_by_patient", "patient", "created_at"),
)
"""A patient's SMART Health Link: its manifest id (random, 43 base64url characters), flags,
expiry, the scrypt hash of its passcode (never the passcode) and the wrong guesses it still
takes. The link's key is never here: it lives in the link the patient hands out."""

shl_files = Table(
    "shl_files",
    metadata,
    Column("link_id", String(64), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("content_type", String(100), nullable=False),
    Column("cid", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
)
"""The JWE files of a link, in the content store (encrypted on the patient's side)."""

shl_tickets = Table(
    "shl_tickets",
    metadata,
    Column("ticket", String(64), primary_key=True),
    Column("link_id", String(64), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
"""A manifest's short-lived file location (one per file per manifest answer)."""

shl_accesses = Table(
    "shl_accesses",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("link_id", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("outcome", String(32), nullable=False),
    Index("shl_accesses_by_link", "link_id", "at"),
)
"""Every use of a link, served or refused: when, the recipient string the reader gave, and the
outcome (shown to the patient)."""

__all__ = [
    "care_messages",
    "emergency_kits",
    "inbox_keys",
    "kfrags",
    "metadata",
    "patient_keys",
    "receipt_batches",
    "receipts",
    "records",
    "refused_read_counts",
    "refused_reads",
    "relayer_gas",
    "sessions",
    "shl_accesses",
    "shl_files",
    "shl_links",
    "shl_tickets",
    "siwe_nonces",
    "upload_parts",
    "upload_sessions",
]
