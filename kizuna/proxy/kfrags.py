"""``KfragStore``: the key fragments patients hand to the proxy, per (patient, scope, provider,
key epoch).

What stops a stranger from uploading key fragments "for" someone else's patient
---------------------------------------------------------------------------------
A key fragment verifies against three public keys: the delegating key (the patient's *scope*
key, docs/service.md "Keys"), the receiving key (the provider's) and the verifying key (the
patient's Umbral signing key). Anyone can make a keypair and valid-looking fragments, so the
fragments alone prove nothing about *whose* they are. The binding is a wallet signature:

1. Before the first grant of a scope in a key epoch, the patient's wallet signs the EIP-712
   statement ``ScopeKeys(address patient,bytes32 scopeId,uint64 epoch,bytes delegatingKey,bytes
   verifyingKey)`` in the proxy's domain (``Kizuna Proxy``, chain id, AccessLog).
   :meth:`KfragStore.register_scope_keys` keeps it only if it recovers to ``patient``; once
   registered, a (patient, scope, epoch) keeps its keys (they are derived deterministically, so
   an honest patient never needs to change them; a different pair is a ``ConflictError``). The
   epoch is signed too: a statement of one epoch cannot be replayed to claim another.
2. :meth:`KfragStore.put` accepts fragments only if they verify against *the registered*
   delegating and verifying keys of that (patient, scope, epoch) and against the provider's
   Umbral key *from the provider registry* (the caller passes what
   :class:`kizuna.access.check.ProviderKeys` read from the chain; the fragments are signed over
   it).

Epochs (docs/keys.md "Epochs"): a scope's delegating key moves to a new epoch on every
revocation of the scope, so a record is encrypted to the key of the epoch it was written in and
a read takes the fragments of *that* epoch. A grantee holds one set of fragments per epoch whose
records it may open; a revoke deletes the revoked grantee's fragments of every epoch.

So a stranger can neither register keys in a patient's name (no wallet signature) nor replace a
patient's fragments with their own (they do not verify against the registered keys). The API
additionally lets only the patient's own session call ``put``/``delete``; that is defence in
depth, not what the binding relies on. Deleting is not guarded here: revocation on-chain is the
authority, and the index follower deletes what the chain revoked.

Fragments are verified when read (:meth:`KfragStore.get`), because the type re-encryption
accepts (``VerifiedKeyFrag``) is made only by verification. The verified set is cached per
(patient, scope, provider, epoch) together with the exact rows it came from; every ``get``
still reads the rows (so a delete by another instance takes effect at once) and reuses the cached
verification only when the rows are byte-for-byte the same (saves ~1.5 ms a read).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from sqlalchemy import ColumnElement, Connection, and_, delete, insert, select

from kizuna.chain.eip712 import Eip712Domain
from kizuna.crypto import pre
from kizuna.crypto.wallet_keys import checked_epoch
from kizuna.db import Database
from kizuna.db import schema as t
from kizuna.errors import AccessDenied, ConflictError, InputError
from kizuna.signatures import recover_signable
from kizuna.types import Address, ScopeId, checksum_address
from kizuna.wire.scopes import ScopeKeys, scope_keys_typed_data


@dataclass(frozen=True, slots=True)
class StoredKfrags:
    """Verified fragments of one (patient, scope, provider, epoch), with the keys they verified
    against."""

    patient: Address
    scope_id: ScopeId
    provider: Address
    kfrags: tuple[pre.VerifiedKeyFrag, ...]
    delegating_key: pre.UmbralPublicKey
    receiving_key: pre.UmbralPublicKey
    verifying_key: pre.UmbralPublicKey
    epoch: int = 0


def sign_scope_keys(private_key: bytes | str, domain: Eip712Domain, *, patient: Address,
                    scope_id: bytes, delegating_key: pre.UmbralPublicKey,
                    verifying_key: pre.UmbralPublicKey, epoch: int = 0) -> bytes:
    """Sign the statement with a local wallet key (CLI, tests)."""
    typed = scope_keys_typed_data(domain, patient=patient, scope_id=scope_id,
                                  delegating_key=delegating_key, verifying_key=verifying_key,
                                  epoch=epoch)
    return bytes(Account.sign_message(typed.signable(), private_key).signature)


_SELECT_GRANT_KFRAGS = (
    f"SELECT kfrag, delegating_key, receiving_key, verifying_key FROM {t.kfrags.name} "
    "WHERE patient = ? AND scope_id = ? AND provider = ? AND epoch = ? ORDER BY share_index")
"""The read path runs it on every read, through the driver (kizuna.db.driver)."""


class KfragStore:
    """Key fragments in the service database (shared by every instance)."""

    def __init__(self, db: Database, *, domain: Eip712Domain, max_cached: int = 50_000) -> None:
        self.db = db
        self.domain = domain
        self.max_cached = max_cached
        self._verified: dict[tuple[str, bytes, str, int],
                             tuple[tuple[Any, ...], StoredKfrags]] = {}
        self._lock = threading.Lock()

    # -- scope keys ---------------------------------------------------------------------------

    def register_scope_keys(self, *, patient: Address, scope_id: ScopeId,
                            delegating_key: pre.UmbralPublicKey,
                            verifying_key: pre.UmbralPublicKey, signature: bytes,
                            epoch: int = 0) -> ScopeKeys:
        """Bind (patient, scope, epoch) to its keys by the patient's wallet signature
        (idempotent)."""
        patient = checksum_address(patient)
        epoch = checked_epoch("epoch", epoch)
        typed = scope_keys_typed_data(self.domain, patient=patient, scope_id=scope_id,
                                      delegating_key=delegating_key, verifying_key=verifying_key,
                                      epoch=epoch)
        signer = recover_signable(typed.signable(), signature)
        if signer != patient:
            raise AccessDenied(f"the scope keys statement is signed by {signer}, not by the "
                               f"patient {patient}")
        keys = ScopeKeys(patient=patient, scope_id=ScopeId(bytes(scope_id)),
                         delegating_key=delegating_key, verifying_key=verifying_key, epoch=epoch)
        with self.db.write() as conn:
            existing = self._scope_keys(conn, patient, scope_id, epoch)
            if existing is not None:
                if (existing.delegating_key != delegating_key
                        or existing.verifying_key != verifying_key):
                    raise ConflictError(
                        f"scope 0x{bytes(scope_id).hex()[:16]}... of {patient} is bound to other "
                        f"keys already in epoch {epoch}")
                return existing
            conn.execute(insert(t.patient_keys).values(
                patient=patient, scope_id=bytes(scope_id), epoch=epoch,
                delegating_key=delegating_key.to_bytes(), verifying_key=verifying_key.to_bytes(),
                statement_signature=bytes(signature), created_at=int(time.time())))
        return keys

    def scope_keys(self, patient: Address, scope_id: ScopeId,
                   epoch: int = 0) -> ScopeKeys | None:
        """The registered keys of (patient, scope) in ``epoch``; ``None`` when none are."""
        with self.db.read() as conn:
            return self._scope_keys(conn, checksum_address(patient), scope_id,
                                    checked_epoch("epoch", epoch))

    @staticmethod
    def _scope_keys(conn: Connection, patient: Address, scope_id: bytes,
                    epoch: int) -> ScopeKeys | None:
        row = conn.execute(select(t.patient_keys.c.delegating_key, t.patient_keys.c.verifying_key)
                           .where(t.patient_keys.c.patient == patient,
                                  t.patient_keys.c.scope_id == bytes(scope_id),
                                  t.patient_keys.c.epoch == epoch)).first()
        if row is None:
            return None
        return ScopeKeys(patient=patient, scope_id=ScopeId(bytes(scope_id)),
                         delegating_key=pre.UmbralPublicKey.from_bytes(bytes(row[0])),
                         verifying_key=pre.UmbralPublicKey.from_bytes(bytes(row[1])),
                         epoch=epoch)

    # -- fragments ----------------------------------------------------------------------------

    def put(self, *, patient: Address, scope_id: ScopeId, provider: Address,
            receiving_key: pre.UmbralPublicKey, kfrags: Sequence[bytes],
            epoch: int = 0) -> int:
        """Verify and store ``kfrags`` of ``epoch`` (replacing any earlier set of that epoch);
        how many were stored.

        ``receiving_key`` must be the provider's key from the provider registry. The patient's
        scope keys of ``epoch`` must be registered (:meth:`register_scope_keys`), else
        ``AccessDenied``. Any fragment failing verification refuses the whole set
        (``FragmentError``).
        """
        patient = checksum_address(patient)
        provider = checksum_address(provider)
        epoch = checked_epoch("epoch", epoch)
        if not kfrags:
            raise InputError("kfrags", "at least one key fragment is needed")
        if len(kfrags) > pre.MAX_SHARES:
            raise InputError("kfrags", f"at most {pre.MAX_SHARES} key fragments")
        keys = self.scope_keys(patient, scope_id, epoch)
        if keys is None:
            raise AccessDenied(f"{patient} has not registered (signed) keys for this scope in "
                               f"epoch {epoch}: register_scope_keys first")
        verified = pre.verify_kfrags(kfrags, verifying_key=keys.verifying_key,
                                     delegating_key=keys.delegating_key,
                                     receiving_key=receiving_key)
        if len({k.to_bytes() for k in verified}) != len(verified):
            raise InputError("kfrags", "the same key fragment is given twice")
        now = int(time.time())
        with self.db.write() as conn:
            conn.execute(delete(t.kfrags).where(self._where(patient, scope_id, provider),
                                                t.kfrags.c.epoch == epoch))
            conn.execute(insert(t.kfrags), [
                {"patient": patient, "scope_id": bytes(scope_id), "provider": provider,
                 "epoch": epoch, "share_index": i, "kfrag": k.to_bytes(),
                 "delegating_key": keys.delegating_key.to_bytes(),
                 "receiving_key": receiving_key.to_bytes(),
                 "verifying_key": keys.verifying_key.to_bytes(), "created_at": now}
                for i, k in enumerate(verified)])
        return len(verified)

    def get(self, *, patient: Address, scope_id: ScopeId, provider: Address,
            epoch: int = 0) -> StoredKfrags | None:
        """The fragments of (patient, scope, provider) of ``epoch`` (a record's epoch, on the
        read path), verified; ``None`` when none."""
        patient, provider = checksum_address(patient), checksum_address(provider)
        rows = self.db.driver.rows(_SELECT_GRANT_KFRAGS,
                                   (patient, bytes(scope_id), provider, int(epoch)))
        if not rows:
            return None
        key = (patient, bytes(scope_id), provider, int(epoch))
        raw = tuple(tuple(bytes(c) for c in r) for r in rows)
        cached = self._verified.get(key)
        if cached is not None and cached[0] == raw:
            return cached[1]
        delegating = pre.UmbralPublicKey.from_bytes(bytes(rows[0][1]))
        receiving = pre.UmbralPublicKey.from_bytes(bytes(rows[0][2]))
        verifying = pre.UmbralPublicKey.from_bytes(bytes(rows[0][3]))
        verified = pre.verify_kfrags([bytes(r[0]) for r in rows], verifying_key=verifying,
                                     delegating_key=delegating, receiving_key=receiving)
        stored = StoredKfrags(patient=patient, scope_id=scope_id, provider=provider,
                              kfrags=verified, delegating_key=delegating,
                              receiving_key=receiving, verifying_key=verifying,
                              epoch=int(epoch))
        with self._lock:
            if len(self._verified) >= self.max_cached:
                self._verified.clear()
            self._verified[key] = (raw, stored)
        return stored

    def delete(self, *, patient: Address, scope_id: ScopeId, provider: Address) -> int:
        """Delete the fragments of one grant, of every epoch (a revoke); how many rows went."""
        with self.db.write() as conn:
            result = conn.execute(delete(t.kfrags).where(
                self._where(checksum_address(patient), scope_id,
                            checksum_address(provider))))
        return int(result.rowcount)

    def delete_all(self, *, patient: Address, provider: Address) -> int:
        """Delete every fragment ``patient`` gave for ``provider``, of every scope and epoch
        (a revokeAll)."""
        with self.db.write() as conn:
            result = conn.execute(delete(t.kfrags).where(
                t.kfrags.c.patient == checksum_address(patient),
                t.kfrags.c.provider == checksum_address(provider)))
        return int(result.rowcount)

    def epochs(self, *, patient: Address, scope_id: ScopeId, provider: Address) -> list[int]:
        """The epochs ``provider`` holds fragments of in (patient, scope), ascending."""
        with self.db.read() as conn:
            rows = conn.execute(select(t.kfrags.c.epoch).distinct().where(self._where(
                checksum_address(patient), scope_id, checksum_address(provider)))
                .order_by(t.kfrags.c.epoch)).all()
        return [int(r[0]) for r in rows]

    def count(self, *, patient: Address, provider: Address | None = None) -> int:
        """How many fragments are stored for ``patient`` (and ``provider``)."""
        query = select(t.kfrags.c.share_index).where(
            t.kfrags.c.patient == checksum_address(patient))
        if provider is not None:
            query = query.where(t.kfrags.c.provider == checksum_address(provider))
        with self.db.read() as conn:
            return len(conn.execute(query).all())

    @staticmethod
    def _where(patient: Address, scope_id: bytes, provider: Address) -> ColumnElement[bool]:
        return and_(t.kfrags.c.patient == patient, t.kfrags.c.scope_id == bytes(scope_id),
                    t.kfrags.c.provider == provider)


__all__ = [
    "KfragStore",
    "StoredKfrags",
    "sign_scope_keys",
]
