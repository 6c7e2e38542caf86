"""The audit log: the on-chain events decoded, with the stored reads and refused reads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address

from kizuna.chain.index import EventIndex
from kizuna.services.audit.entries import AuditEntry, EntryKind
from kizuna.services.audit.history import ChainHistory, load_history
from kizuna.services.audit.refused import refused_entries
from kizuna.services.audit.stored import ReceiptRow, load_receipts

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.db import Database


def full_log(chain: Chain, *, index: EventIndex | None = None, from_chain: bool = False,
             database: Database | None = None, patient: str | None = None,
             provider: str | None = None, since: int | None = None,
             until: int | None = None) -> list[AuditEntry]:
    """The audit log for a patient, a provider and/or a time range, oldest first.

    From ``index`` (synced first), or from the node's logs when ``from_chain`` (or no index)
    is given. With ``database``, each stored read receipt is a ``READ`` entry too (its
    ``tx_hash`` is the anchoring transaction; ``pending`` flag while not anchored).
    """
    history = load_history(chain, index=index, from_chain=from_chain)
    entries = history.entries(patient=patient, provider=provider, since=since, until=until)
    if database is not None:
        want_patient = to_checksum_address(patient) if patient else None
        want_provider = to_checksum_address(provider) if provider else None
        for receipt in load_receipts(database):
            if want_patient is not None and receipt.patient != want_patient:
                continue
            if want_provider is not None and receipt.provider != want_provider:
                continue
            if since is not None and receipt.served_at < since:
                continue
            if until is not None and receipt.served_at > until:
                continue
            entries.append(read_entry(receipt, history))
        entries.extend(refused_entries(database, patient=want_patient, provider=want_provider,
                                       since=since, until=until))
        # A read sits after the events of the head block it was decided at.
        entries.sort(key=lambda x: (x.block_number, x.log_index if x.log_index >= 0 else 1 << 40,
                                    x.time))
    return entries


def read_entry(receipt: ReceiptRow, history: ChainHistory) -> AuditEntry:
    """A stored receipt as a ``READ`` log entry."""
    anchor = history.anchors.get(receipt.batch_root) if receipt.batch_root else None
    return AuditEntry(
        kind=EntryKind.READ, event="read", block_number=receipt.head_block,
        log_index=-1, tx_hash=anchor.tx_hash if anchor is not None else b"",
        time=receipt.served_at, patient=receipt.patient, provider=receipt.provider,
        scope_ids=(receipt.scope_id,), record_id=receipt.record_id,
        flags=frozenset() if anchor is not None else frozenset({"pending"}),
        details={"requestId": "0x" + receipt.request_id.hex(), "issuedAt": receipt.issued_at,
                 "batchRoot": "0x" + receipt.batch_root.hex() if receipt.batch_root else None},
    )
