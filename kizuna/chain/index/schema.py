"""The event index's tables. Portable SQL: SQLite today, PostgreSQL by URL later.

Only ``BLOB`` (``BYTEA`` in PostgreSQL) and SQLite's ``WITHOUT ROWID`` differ between the two:
:func:`ddl` renders the statements for a dialect. Upserts use ``INSERT ... ON CONFLICT (...)
DO UPDATE``, which both speak; nothing relies on SQLite's ``INSERT OR REPLACE`` or ``rowid``.

Three kinds of tables:

* bookkeeping — ``index_meta`` (which chain, deployment, schema and the last indexed block) and
  ``index_blocks`` (hashes of recent indexed blocks, to detect reorgs);
* ``raw_logs`` — every Kizuna log exactly as the node returned it: the source of truth the
  projections are rebuilt from after a reorg. Append-only and deliberately without a key or
  index (a catch-up inserts thousands of rows per part; a b-tree per row was a third of the
  store time): each block range is indexed exactly once (rolled back before it is re-read), and
  the rare readers — a rollback, a rebuild — scan and sort;
* projections — the current state the queries read (grants, records, care events, emergency
  accesses, requests, guardians, providers, AccessControl roles, receipt batches, scope key
  epochs), updated as logs arrive. ``records`` holds the records registered alone and those
  of record batches (``batch_root`` and ``leaf_index`` set: one row per leaf of the batch's
  manifest); ``pending_batches`` the batches whose manifest the index has not got yet
  (:mod:`kizuna.chain.index.batches`);
* ``emergency_reviews`` — local review marks of emergency accesses (not chain data; kept
  across rebuilds, keyed by transaction hash and log index).
"""

from __future__ import annotations

SCHEMA_VERSION = 4
"""2 added ``scope_epochs`` (and ``roles``); 3 added ``records.batch_root`` / ``leaf_index`` and
``pending_batches``; 4 keeps anchored receipt roots by root (``receipt_roots``: AccessLog's batch
indices are per anchorer since each proxy node anchors its own receipts). An older index is
migrated by recreating the projection tables and replaying ``raw_logs``
(:meth:`kizuna.chain.index.store.EventIndex._create`)."""

_TABLES = """
CREATE TABLE IF NOT EXISTS index_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS index_blocks (
    number BIGINT PRIMARY KEY,
    hash {blob} NOT NULL,
    timestamp BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS raw_logs (
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    block_hash {blob} NOT NULL,
    tx_hash {blob} NOT NULL,
    address TEXT NOT NULL,
    topics {blob} NOT NULL,
    data {blob} NOT NULL
);
CREATE TABLE IF NOT EXISTS grants (
    patient TEXT NOT NULL,
    provider TEXT NOT NULL,
    scope_id {blob} NOT NULL,
    expires_at BIGINT NOT NULL,
    granted_block BIGINT NOT NULL,
    PRIMARY KEY (patient, provider, scope_id)
){clustered};
CREATE INDEX IF NOT EXISTS grants_by_provider ON grants (provider, patient);
CREATE TABLE IF NOT EXISTS revoked_all (
    patient TEXT NOT NULL,
    provider TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    PRIMARY KEY (patient, provider)
);
CREATE TABLE IF NOT EXISTS scope_epochs (
    patient TEXT NOT NULL,
    scope_id {blob} NOT NULL,
    epoch BIGINT NOT NULL,
    PRIMARY KEY (patient, scope_id)
);
CREATE TABLE IF NOT EXISTS records (
    record_id {blob} PRIMARY KEY,
    patient TEXT NOT NULL,
    commitment {blob} NOT NULL,
    scope_id {blob} NOT NULL,
    supersedes {blob},
    superseded_by {blob},
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    tx_hash {blob} NOT NULL,
    batch_root {blob},
    leaf_index BIGINT
);
CREATE INDEX IF NOT EXISTS records_by_patient ON records (patient, block_number, log_index,
                                                         leaf_index);
CREATE TABLE IF NOT EXISTS pending_batches (
    root {blob} PRIMARY KEY,
    patient TEXT NOT NULL,
    count BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    tx_hash {blob} NOT NULL
);
CREATE TABLE IF NOT EXISTS care_events (
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    patient TEXT NOT NULL,
    provider TEXT,
    kind INTEGER NOT NULL,
    actor TEXT NOT NULL,
    ref {blob} NOT NULL,
    flagged INTEGER NOT NULL,
    tx_hash {blob} NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX IF NOT EXISTS care_by_patient ON care_events (patient, block_number);
CREATE INDEX IF NOT EXISTS care_by_provider ON care_events (provider, block_number);
CREATE INDEX IF NOT EXISTS care_by_kind ON care_events (kind, block_number);
CREATE TABLE IF NOT EXISTS emergency_accesses (
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    patient TEXT NOT NULL,
    provider TEXT NOT NULL,
    until BIGINT NOT NULL,
    reason_code INTEGER NOT NULL,
    tx_hash {blob} NOT NULL,
    closed_by TEXT,
    closed_block BIGINT,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX IF NOT EXISTS emergency_by_pair ON emergency_accesses (patient, provider);
CREATE TABLE IF NOT EXISTS emergency_reviews (
    tx_hash {blob} NOT NULL,
    log_index BIGINT NOT NULL,
    reviewer TEXT NOT NULL,
    reviewed_at BIGINT NOT NULL,
    PRIMARY KEY (tx_hash, log_index)
);
CREATE TABLE IF NOT EXISTS access_requests (
    patient TEXT NOT NULL,
    provider TEXT NOT NULL,
    open_until BIGINT NOT NULL,
    ref {blob} NOT NULL,
    block_number BIGINT NOT NULL,
    PRIMARY KEY (patient, provider)
);
CREATE INDEX IF NOT EXISTS requests_by_provider ON access_requests (provider);
CREATE TABLE IF NOT EXISTS guardians (
    patient TEXT NOT NULL,
    guardian TEXT NOT NULL,
    until BIGINT NOT NULL,
    PRIMARY KEY (patient, guardian)
);
CREATE TABLE IF NOT EXISTS emergency_policies (
    patient TEXT PRIMARY KEY,
    allowed INTEGER NOT NULL,
    max_duration BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS providers (
    address TEXT PRIMARY KEY,
    umbral_public_key {blob} NOT NULL,
    credential_commitment {blob} NOT NULL,
    active INTEGER NOT NULL,
    registered_block BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS roles (
    contract TEXT NOT NULL,
    role {blob} NOT NULL,
    account TEXT NOT NULL,
    granted_block BIGINT NOT NULL,
    PRIMARY KEY (contract, role, account)
);
CREATE INDEX IF NOT EXISTS roles_by_account ON roles (account);
CREATE TABLE IF NOT EXISTS receipt_roots (
    root {blob} PRIMARY KEY,
    batch_index BIGINT NOT NULL,
    count BIGINT NOT NULL,
    from_time BIGINT NOT NULL,
    to_time BIGINT NOT NULL,
    anchored_by TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    tx_hash {blob} NOT NULL
);
"""

PROJECTION_TABLES = (
    "grants",
    "revoked_all",
    "scope_epochs",
    "records",
    "pending_batches",
    "care_events",
    "emergency_accesses",
    "access_requests",
    "guardians",
    "emergency_policies",
    "providers",
    "roles",
    "receipt_roots",
)
"""Tables derived from ``raw_logs``: emptied and replayed after a reorg."""

DIALECTS = {
    "sqlite": {"blob": "BLOB", "clustered": " WITHOUT ROWID"},
    "postgresql": {"blob": "BYTEA", "clustered": ""},
}
"""Per dialect: the bytes type, and how a table is stored in its primary key's order (SQLite's
``WITHOUT ROWID`` saves a second b-tree per insert on the two tables that grow fastest)."""


def ddl(dialect: str = "sqlite") -> list[str]:
    """The ``CREATE`` statements for ``dialect`` (``sqlite`` or ``postgresql``)."""
    rendered = _TABLES.format(**DIALECTS[dialect])
    return [statement.strip() for statement in rendered.split(";") if statement.strip()]


__all__ = ["DIALECTS", "PROJECTION_TABLES", "SCHEMA_VERSION", "ddl"]
