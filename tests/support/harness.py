"""A service core on a real chain: deployment, content store, database, patients, providers.

``Stack`` wires the Kizuna contracts (eth-tester or anvil, via tests/chain/chainenv.py), an
embedded content store and a service database into a :class:`ServiceContext`, and gives the
tests the patient's and the provider's sides: encrypt a record to a scope key, register it,
grant with key fragments, sign read requests, decrypt what the proxy returns.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from web3 import EthereumTesterProvider, Web3

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chain"))

from chainenv import Env, _eth_tester_env

from kizuna.batch import BatchLeaf, BatchManifest, pack_proof
from kizuna.chain.connection import connect
from kizuna.chain.index.store import EventIndex
from kizuna.chain.signers import LocalKeySigner
from kizuna.crypto import pre
from kizuna.crypto.scopes import blind_scope
from kizuna.crypto.wallet_keys import (
    KeyDerivationDomain,
    WalletKeys,
    derive_wallet_keys_with_private_key,
)
from kizuna.db import Database
from kizuna.db import schema as t
from kizuna.proxy.kfrags import sign_scope_keys
from kizuna.receipts.request import ReadRequest
from kizuna.services.context import ServiceContext
from kizuna.storage.embedded import EmbeddedStore
from kizuna.storage.envelope import decrypt_bytes, encrypt_bytes, read_header
from kizuna.types import Commitment, RecordId, ScopeId
from kizuna.wire.reads import ReadGrant

REGISTERED = ("alone", "in a batch")
"""How ``stack.add_record`` registers records: a test of reads parametrized with
``@pytest.mark.parametrize("core", REGISTERED, indirect=True)`` (or ``anvil_stack``) runs once
on records registered alone and once on records registered in batches (tests/conftest.py)."""


@dataclass
class Party:
    """A participant: wallet key, chain signer, wallet-derived Umbral keys."""

    private_key: bytes
    signer: LocalKeySigner
    keys: WalletKeys

    @property
    def address(self) -> str:
        return self.signer.address


@dataclass
class Record:
    record_id: RecordId
    scope_id: ScopeId
    plaintext: bytes
    cid: str


@dataclass
class Stack:
    env: Env
    db: Database
    store: EmbeddedStore
    ctx: ServiceContext
    root: Path
    batched: bool = False
    """``add_record`` registers each record in a batch (with two more records of the patient)
    rather than alone: the tests of reads run once on each (conftest's ``stack`` param)."""
    _contexts: list[ServiceContext] = field(default_factory=list)

    @property
    def chain(self):  # type: ignore[no-untyped-def]
        return self.env.chain

    def key_domain(self) -> KeyDerivationDomain:
        return KeyDerivationDomain(chain_id=self.chain.chain_id,
                                   verifying_contract=self.chain.deployment.consent_ledger)

    def party(self) -> Party:
        key = os.urandom(32)
        signer = LocalKeySigner(key)
        self.env.fund(signer.address)
        return Party(key, signer, derive_wallet_keys_with_private_key(key,
                                                                     domain=self.key_domain()))

    def provider(self) -> Party:
        party = self.party()
        self.chain.registry.add_provider(party.address, party.keys.public_key.to_bytes(),
                                         b"\x07" * 32, signer=self.env.admin)
        return party

    def second_context(self, db: Database | None = None) -> ServiceContext:
        """Another service instance on the same chain and database (its own index, caches)."""
        ctx = ServiceContext.build(chain=self.chain, index=EventIndex.for_chain(self.chain),
                                   store=self.store, db=db or self.db,
                                   anchor_signer=self.env.admin)
        self._contexts.append(ctx)
        return ctx

    # -- the patient's side -------------------------------------------------------------------

    def scope(self, patient: Party, label: str = "Observation") -> ScopeId:
        return blind_scope(patient.keys.scope_key, label)

    def add_record(self, patient: Party, *, label: str = "Observation",
                   plaintext: bytes | None = None) -> Record:
        scope_id = self.scope(patient, label)
        scope_pk = patient.keys.scope_delegating_key(scope_id).public_key
        record_id = RecordId(os.urandom(32))
        data = plaintext if plaintext is not None else os.urandom(10_000)
        envelope = bytes(encrypt_bytes(data, owner_key=scope_pk, record_id=record_id,
                                       content_type="application/fhir+json"))
        cid = self.store.put(envelope)
        from kizuna.crypto.commitment import commitment_of

        commitment = commitment_of(envelope)
        if self.batched:
            self.add_batch(patient, [(record_id, scope_id, cid, commitment, len(envelope))])
            return Record(record_id, scope_id, data, cid)
        self.chain.ledger.register_record(record_id, commitment, scope_id,
                                          signer=patient.signer)
        self.write_record_row(patient, record_id, scope_id, cid, commitment, len(envelope))
        return Record(record_id, scope_id, data, cid)

    def add_batch(self, patient: Party,
                  records: list[tuple[RecordId, ScopeId, str, Commitment, int]], *,
                  fillers: int = 2) -> BatchManifest:
        """Register ``records`` (id, scope, CID, commitment, size) and ``fillers`` more records
        of the patient (other ids, scopes and commitments) as one batch on chain, and store
        what the service keeps of a batch: the manifest in the content store, its
        ``record_batches`` row, a ``records`` row per record with its leaf index and proof;
        then tell the index the manifest arrived."""
        from kizuna.crypto.commitment import commitment_of

        rows = list(records) + [
            (RecordId(os.urandom(32)), self.scope(patient, "Condition"), records[0][2],
             commitment_of(os.urandom(8)), records[0][4]) for _ in range(fillers)]
        manifest = BatchManifest.of(BatchLeaf(rid, sid, com) for rid, sid, _, com, _ in rows)
        self.chain.ledger.register_batch(manifest.root, manifest.count, signer=patient.signer)
        block = self.env.w3.eth.block_number
        manifest_cid = self.store.put(manifest.encode())
        with self.db.write() as conn:
            conn.execute(insert(t.record_batches).values(
                root=manifest.root, patient=patient.address, count=manifest.count,
                manifest_cid=manifest_cid, block_number=block, created_at=int(time.time())))
            for index, (rid, sid, cid, com, size) in enumerate(rows):
                conn.execute(insert(t.records).values(
                    record_id=rid, patient=patient.address, scope_id=sid, cid=cid,
                    commitment=com, size=size, content_type="application/fhir+json",
                    created_at=int(time.time()), batch_root=manifest.root, leaf_index=index,
                    proof=pack_proof(manifest.proof(index))))
        self.ctx.index.manifest_arrived(manifest.root)
        return manifest

    def write_record_row(self, patient: Party, record_id: RecordId, scope_id: ScopeId, cid: str,
                         commitment: Commitment, size: int) -> None:
        with self.db.write() as conn:
            conn.execute(insert(t.records).values(
                record_id=record_id, patient=patient.address, scope_id=scope_id, cid=cid,
                commitment=commitment, size=size, content_type="application/fhir+json",
                created_at=int(time.time())))

    def grant(self, patient: Party, provider: Party, *, label: str = "Observation",
              expires_in: int = 3600, shares: int = 1, threshold: int = 1,
              ctx: ServiceContext | None = None) -> ScopeId:
        """On-chain grant + scope keys registered + verified kfrags handed to the proxy."""
        ctx = ctx or self.ctx
        scope_id = self.scope(patient, label)
        self.chain.ledger.grant(provider.address, scope_id, self.env.now() + expires_in,
                                signer=patient.signer)
        self.hand_kfrags(patient, provider, scope_id, shares=shares, threshold=threshold,
                         ctx=ctx)
        return scope_id

    def hand_kfrags(self, patient: Party, provider: Party, scope_id: ScopeId, *,
                    shares: int = 1, threshold: int = 1,
                    ctx: ServiceContext | None = None) -> int:
        ctx = ctx or self.ctx
        scope_sk = patient.keys.scope_delegating_key(scope_id)
        signature = sign_scope_keys(patient.private_key, ctx.domain, patient=patient.address,
                                    scope_id=scope_id, delegating_key=scope_sk.public_key,
                                    verifying_key=patient.keys.verifying_key)
        ctx.kfrags.register_scope_keys(patient=patient.address, scope_id=scope_id,
                                       delegating_key=scope_sk.public_key,
                                       verifying_key=patient.keys.verifying_key,
                                       signature=signature)
        kfrags = pre.generate_kfrags(scope_sk, provider.keys.public_key, patient.keys.signer(),
                                     threshold=threshold, shares=shares)
        receiving = ctx.access.provider_keys.key_of(provider.address)
        return ctx.kfrags.put(patient=patient.address, scope_id=scope_id,
                              provider=provider.address, receiving_key=receiving,
                              kfrags=[k.to_bytes() for k in kfrags])

    # -- the provider's side ------------------------------------------------------------------

    def request(self, provider: Party, patient: Party, record: Record,
                ctx: ServiceContext | None = None,
                issued_at: int | None = None) -> tuple[ReadRequest, bytes]:
        ctx = ctx or self.ctx
        request = ReadRequest.new(provider=provider.address, patient=patient.address,
                                  record_id=record.record_id, issued_at=issued_at)
        return request, request.sign(provider.private_key, ctx.domain)

    def open(self, provider: Party, answer: ReadGrant, *, threshold: int = 1) -> bytes:
        """Decrypt the record as the provider from the proxy's answer."""
        with self.store.get(answer.cid) as stream:
            envelope = stream.read()
        header = read_header(envelope)
        capsule = pre.Capsule.from_bytes(answer.capsule)
        cfrags = pre.verify_cfrags(
            answer.cfrags, capsule=capsule,
            verifying_key=pre.UmbralPublicKey.from_bytes(answer.verifying_key),
            delegating_key=pre.UmbralPublicKey.from_bytes(answer.delegating_key),
            receiving_key=provider.keys.public_key)
        key = header.unwrap_for_grantee(
            provider.keys.decrypting_key,
            delegating_key=pre.UmbralPublicKey.from_bytes(answer.delegating_key),
            cfrags=cfrags, threshold=threshold)
        return bytes(decrypt_bytes(envelope, key=key))


def make_stack(env: Env, root: Path, db_url: str | None = None) -> Stack:
    db = Database.open(db_url or f"sqlite:///{root / 'service.db'}")
    store = EmbeddedStore(root / "store", fsync=False)
    ctx = ServiceContext.build(chain=env.chain, index=EventIndex.for_chain(env.chain),
                               store=store, db=db, anchor_signer=env.admin)
    return Stack(env=env, db=db, store=store, ctx=ctx, root=root)


class DeployedEthTester:
    """The Kizuna contracts deployed once on an eth-tester chain, handed out again and again as
    the same fresh chain: :meth:`env` reverts the chain to the snapshot taken right after the
    deployment, so a test pays a revert (~25 ms of CPU with its new connection) where a new
    chain and deployment cost ~250 ms.

    The revert restores the state (balances, nonces, contract storage) and the block number;
    the blocks a test mined and its time travel are off the canonical chain. The head's
    timestamp would be the snapshot's, though, minutes or an hour behind the clock, where a new
    chain's head is the deployment's last block, made a moment ago -- and a few seconds ahead
    of the clock, as eth-tester stamps a block one second after its parent when it mines faster
    than one a second. So each test gets one empty block mined on the snapshot, stamped as far
    ahead of the clock as the deployment's last block was. Every test thus starts at the same
    block number, with the same state, and the same clock as on a new deployment (all checked
    each time).

    Each test gets its own Web3, :class:`~kizuna.chain.connection.Chain` (nonce cache, head,
    contracts) and :class:`Env` on the reverted chain: none of a previous test's objects sees
    it. The deployer, funder and the deployment's addresses are the same on every new
    eth-tester chain anyway (eth-tester's fixed accounts), and the signers hold nothing but
    the key. A test that leaves eth-tester in a state the revert does not restore (automatic
    mining off, transactions pending, filters installed) has the next test get a new chain."""

    def __init__(self) -> None:
        self._deploy()

    def _deploy(self) -> None:
        made = _eth_tester_env()
        provider: Any = made.w3.provider  # an EthereumTesterProvider
        self._tester = provider.ethereum_tester
        self._made = made
        self._snapshot = self._tester.take_snapshot()
        snapshot = made.w3.eth.get_block("latest")
        self._block, self._time = snapshot["number"], snapshot["timestamp"]
        self._ahead = max(0, self._time - int(time.time()))
        self._nonces = self._nonces_now(made)

    @staticmethod
    def _nonces_now(env: Env) -> tuple[int, int]:
        return (env.w3.eth.get_transaction_count(env.admin.address),
                env.w3.eth.get_transaction_count(env.funder.address))

    def _restorable(self) -> bool:
        tester = self._tester
        return bool(tester.auto_mine_transactions and not tester._pending_transactions
                    and not tester._log_filters and not tester._block_filters
                    and not tester._pending_transaction_filters)

    def env(self) -> Env:
        """The deployment as it was made, on a chain whose head is a new block of now."""
        before = int(time.time())
        if self._restorable():
            self._tester.revert_to_snapshot(self._snapshot)
        else:
            self._deploy()
        self._mine_at(int(time.time()) + self._ahead)
        w3 = Web3(EthereumTesterProvider(self._tester))
        made = self._made
        env = Env("eth_tester", w3, connect(w3, made.deployment), made.deployment, made.admin,
                  made.funder)
        self._check(env, before)
        return env

    def _mine_at(self, timestamp: int) -> None:
        """Mine one block stamped ``timestamp``, or the earliest eth-tester allows after it."""
        pending = self._tester.get_block_by_number("pending")["timestamp"]
        if timestamp + 1 > pending:
            self._tester.time_travel(timestamp + 1)  # the next block's time: this one's + 1
        else:
            self._tester.mine_blocks(1)

    def _check(self, env: Env, before: int) -> None:
        """The head is the one block mined on the snapshot, stamped ``_ahead`` after the clock
        (or a second after the snapshot's block, if that is later), and the deployer's and
        funder's nonces are the deployment's."""
        head = env.w3.eth.get_block("latest")
        earliest = before + self._ahead
        latest = max(int(time.time()) + self._ahead, self._time + 1)
        if (head["number"] != self._block + 1 or not earliest <= head["timestamp"] <= latest
                or self._nonces_now(env) != self._nonces):
            raise RuntimeError(
                f"eth-tester did not revert to the deployment: head {head['number']} at "
                f"{head['timestamp']} (expected {self._block + 1} at {earliest}..{latest}), "
                f"nonces {self._nonces_now(env)} (expected {self._nonces})")
