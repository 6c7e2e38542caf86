"""The auditor's use cases: the log decoded from the chain, and three verifications.

An auditor trusts the chain and nothing else. Everything here is rebuilt from Kizuna's events
(an :class:`~kizuna.chain.index.EventIndex`, or — ``from_chain=True`` — straight from
``eth_getLogs`` into a fresh in-memory index, for an auditor who trusts no cache) and checked
against what the service's database and content store claim:

1. :func:`verify_receipts` — every read receipt is under a root anchored in ``AccessLog``: each
   batch's Merkle tree is rebuilt from the receipts (leaves recomputed from the signed request,
   never taken from the stored ``leaf`` column), the root must be anchored with the same count
   and a time range ending no earlier than its receipts (a receipt committed late, before the
   batch's raised ``fromTime``, is counted ``late``), every receipt's proof verifies in Python
   (and a sample through ``AccessLog.verifyReceipt``), and the provider's EIP-712 signature
   recovers to the provider. A receipt dropped, added or altered makes its batch fail, and says how.
2. :func:`verify_access` — each read had a live grant (or an open emergency access) at the
   head block the service decided at, evaluated from the event history (grants, revokes,
   ``revokeAll`` with its same-block rule, expiries, emergency open/close) — no archive node.
3. :func:`verify_content` — the stored ciphertext of each record hashes (SHA-256, streamed) to
   the commitment of its ``RecordRegistered`` event, or, for a record registered in a batch,
   to the commitment its Merkle proof leads to the patient's on-chain batch root with; each
   batch's stored manifest rebuilds to its root.

Each returns a :class:`CheckReport` (counts, and every :class:`Finding` with what failed and
why). :func:`audit` runs the three. The hot path of (1) is written for 100,000 receipts in a
few seconds: leaves and EIP-712 digests are hashed with fixed layouts (the constants come from
:mod:`kizuna.receipts.request`; a test pins that both paths agree) and signers are checked
by :class:`kizuna.signatures.SignerCheck`.

One module per job: :mod:`.log` (the decoded log, with :mod:`.entries` and :mod:`.refused`),
:mod:`.history` (the events replayed: ``hasAccess`` at any block; batches' records from
manifests checked against their roots), :mod:`.stored` (the ``receipts`` table),
:mod:`.receipts`, :mod:`.grants` and :mod:`.content` (checks 1, 2, 3), :mod:`.threshold`
(threshold reads across proxy nodes, docs/proxies.md), :mod:`.report` (what a check
answers). This package re-exports the public names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kizuna.chain.liveness import GrantState
from kizuna.services.audit.content import verify_content
from kizuna.services.audit.entries import AuditEntry, EntryKind
from kizuna.services.audit.grants import STALE_HEAD_SLACK_S, verify_access
from kizuna.services.audit.history import (
    AccessAt,
    ChainHistory,
    Registration,
    load_history,
)
from kizuna.services.audit.log import full_log, read_entry
from kizuna.services.audit.receipts import verify_receipts
from kizuna.services.audit.refused import refused_entries
from kizuna.services.audit.report import AuditReport, CheckReport, Finding
from kizuna.services.audit.stored import ReceiptRow, SignedFields, load_receipts
from kizuna.services.audit.threshold import verify_threshold
from kizuna.services.context import stored_manifests

if TYPE_CHECKING:
    from collections.abc import Callable

    from kizuna.chain.connection import Chain
    from kizuna.chain.index import EventIndex
    from kizuna.db import Database
    from kizuna.storage.store import ContentStore


def service_history(chain: Chain, database: Database, store: ContentStore, *,
                    index: EventIndex | None = None, from_chain: bool = False) -> ChainHistory:
    """The chain's history (:func:`load_history`) with the records of the batches whose
    manifests this service stored, each trusted only when it rebuilds to its on-chain root:
    what every check of a service's data against the chain starts from."""
    return load_history(chain, index=index, from_chain=from_chain,
                        manifests=stored_manifests(database, store))


def audit(chain: Chain, database: Database, store: ContentStore, *,
          index: EventIndex | None = None, from_chain: bool = False,
          onchain_sample: int = 8, eth_call_sample: int = 8,
          on_check: Callable[[], object] | None = None) -> AuditReport:
    """Run the three verifications against one history of the chain (``onchain_sample``
    receipts also proven by ``AccessLog.verifyReceipt``, ``eth_call_sample`` access decisions
    also asked of the node at their head block); ``on_check`` is called after each."""
    history = service_history(chain, database, store, index=index, from_chain=from_chain)
    receipts = load_receipts(database)
    done = on_check or (lambda: None)
    checked = verify_receipts(chain, database, history, receipts=receipts,
                              onchain_sample=onchain_sample)
    done()
    access = verify_access(history, receipts, eth_call_sample=eth_call_sample)
    done()
    content = verify_content(history, database, store)
    done()
    return AuditReport(receipts=checked, access=access, content=content)


__all__ = [
    "STALE_HEAD_SLACK_S",
    "AccessAt",
    "AuditEntry",
    "AuditReport",
    "ChainHistory",
    "CheckReport",
    "EntryKind",
    "Finding",
    "GrantState",
    "ReceiptRow",
    "Registration",
    "SignedFields",
    "audit",
    "full_log",
    "load_history",
    "load_receipts",
    "read_entry",
    "refused_entries",
    "service_history",
    "verify_access",
    "verify_content",
    "verify_receipts",
    "verify_threshold",
]
