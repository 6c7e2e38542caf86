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
    "siwe_nonces",
]
