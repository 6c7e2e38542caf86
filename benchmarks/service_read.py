"""The service core's read path at the module level (no HTTP): ``serve_read`` with 16 threads,
against the same path without the access check, in the same run.

    python benchmarks/service_read.py [--reads N] [--threads 16] [--json]

Setup (not timed): anvil on 127.0.0.1, the contracts deployed, a SQLite service database and
an embedded store in a temporary directory, a verified provider, a patient with one 10 KB record
encrypted to its scope key, a grant with one key fragment handed to the proxy. The read requests
are signed beforehand (the provider's cost, not the service's).

Timed, ``--threads`` threads sharing one ``ServiceContext``:

* **serve_read** — verify the request, access check at the chain head (index head check + one
  batched ``eth_call`` round trip), key fragments, re-encryption, receipt committed.
* **baseline** — the same minus the access check: verify the request, key fragments,
  re-encryption, receipt committed (the grant is made without the chain, by the test-only
  ``placeholder_verified_grant``).

Prints reads/s, p50 / p99 latency, CPU time a read (this process: steadier than rates on a
shared machine) and ``core_ratio`` = serve_read ÷ baseline. The API figures
that count for the issue's targets are ``benchmarks/service.py``'s (through HTTP).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_account import Account

from kizuna.access.grant import placeholder_verified_grant
from kizuna.chain.connection import connect, web3_for
from kizuna.chain.deploy import deploy
from kizuna.chain.index.store import EventIndex
from kizuna.chain.localnode import LocalNode, dev_private_keys
from kizuna.chain.signers import LocalKeySigner
from kizuna.crypto import pre
from kizuna.crypto.commitment import commitment_of
from kizuna.crypto.scopes import blind_scope
from kizuna.crypto.wallet_keys import KeyDerivationDomain, derive_wallet_keys_with_private_key
from kizuna.db import Database
from kizuna.db import schema as t
from kizuna.proxy.kfrags import sign_scope_keys
from kizuna.receipts.request import ReadRequest, verify_request
from kizuna.services.context import ServiceContext
from kizuna.services.read import serve_read
from kizuna.storage.embedded import EmbeddedStore
from kizuna.storage.envelope import encrypt_bytes
from kizuna.types import RecordId

RECORD_SIZE = 10 * 1024


def _setup(node: LocalNode, root: Path) -> tuple[ServiceContext, Any, Any, RecordId]:
    keys = dev_private_keys(10)
    admin_key, patient_key, provider_key = keys[7], keys[5], keys[6]
    w3 = web3_for(node.rpc_url)
    deployment = deploy(w3, Account.from_key(admin_key), directory=None)
    chain = connect(node.rpc_url, deployment)
    admin, patient_signer = LocalKeySigner(admin_key), LocalKeySigner(patient_key)
    domain = KeyDerivationDomain(chain_id=chain.chain_id,
                                 verifying_contract=deployment.consent_ledger)
    patient = derive_wallet_keys_with_private_key(patient_key, domain=domain)
    provider = derive_wallet_keys_with_private_key(provider_key, domain=domain)
    chain.registry.add_provider(provider.account, provider.public_key.to_bytes(), b"\x01" * 32,
                                signer=admin)
    db = Database.open(f"sqlite:///{root / 'service.db'}")
    store = EmbeddedStore(root / "store", fsync=False)
    ctx = ServiceContext.build(chain=chain, index=EventIndex.for_chain(chain), store=store,
                               db=db, anchor_signer=admin)
    scope_id = blind_scope(patient.scope_key, "Observation")
    scope_sk = patient.scope_delegating_key(scope_id)
    record_id = RecordId(os.urandom(32))
    envelope = bytes(encrypt_bytes(os.urandom(RECORD_SIZE), owner_key=scope_sk.public_key,
                                   record_id=record_id, content_type="application/fhir+json"))
    cid = store.put(envelope)
    commitment = commitment_of(envelope)
    chain.ledger.register_record(record_id, commitment, scope_id, signer=patient_signer)
    with db.write() as conn:
        conn.execute(t.records.insert().values(
            record_id=record_id, patient=patient.account, scope_id=scope_id, cid=cid,
            commitment=commitment, size=len(envelope), content_type="application/fhir+json",
            created_at=int(time.time())))
    chain.ledger.grant(provider.account, scope_id, chain.head().timestamp + 86_400,
                       signer=patient_signer)
    statement = sign_scope_keys(patient_key, ctx.domain, patient=patient.account,
                                scope_id=scope_id, delegating_key=scope_sk.public_key,
                                verifying_key=patient.verifying_key)
    ctx.kfrags.register_scope_keys(patient=patient.account, scope_id=scope_id,
                                   delegating_key=scope_sk.public_key,
                                   verifying_key=patient.verifying_key, signature=statement)
    kfrags = pre.generate_kfrags(scope_sk, provider.public_key, patient.signer(), threshold=1,
                                 shares=1)
    ctx.kfrags.put(patient=patient.account, scope_id=scope_id, provider=provider.account,
                   receiving_key=provider.public_key, kfrags=[k.to_bytes() for k in kfrags])
    return ctx, patient, (provider, provider_key), record_id


def _baseline(ctx: ServiceContext, *, request: ReadRequest, signature: bytes) -> None:
    """serve_read without the access check (the grant made without the chain)."""
    verify_request(request, signature, ctx.domain)
    record = ctx.records.get(request.record_id)
    grant = placeholder_verified_grant(patient=record.patient, grantee=request.provider,
                                       grantee_key=_baseline_key[0], record_id=record.record_id,
                                       scope_id=record.scope_id, expires_at=2**40)
    stored = ctx.kfrags.get(patient=record.patient, scope_id=record.scope_id,
                            provider=request.provider)
    assert stored is not None
    capsule = ctx.capsules.capsule(record.cid, record_id=record.record_id)
    for kfrag in stored.kfrags:
        pre.reencrypt(capsule, kfrag, grant=grant)
    ctx.receipts.record(request=request, signature=signature, scope_id=record.scope_id,
                        served_at=int(time.time()), head_block=0)


_baseline_key: list[pre.UmbralPublicKey] = []


def _run(fn: Callable[..., Any], ctx: ServiceContext, requests: list[tuple[ReadRequest, bytes]],
         threads: int) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    queue = iter(requests)

    def worker() -> None:
        mine: list[float] = []
        while True:
            with lock:
                item = next(queue, None)
            if item is None:
                break
            start = time.perf_counter()
            fn(ctx, request=item[0], signature=item[1])
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    began, cpu_began = time.perf_counter(), time.process_time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu_began
    ordered = sorted(latencies)
    return {"per_s": len(requests) / elapsed,
            "cpu_ms": cpu / len(requests) * 1000,
            "p50_ms": statistics.median(ordered) * 1000,
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kizuna-bench-read-") as tmp, \
            LocalNode(log_path=Path(tmp) / "anvil.log") as node:
        ctx, patient, (provider, provider_key), record_id = _setup(node, Path(tmp))
        _baseline_key.append(provider.public_key)

        def signed(n: int) -> list[tuple[ReadRequest, bytes]]:
            out = []
            for _ in range(n):
                request = ReadRequest.new(provider=provider.account, patient=patient.account,
                                          record_id=record_id)
                out.append((request, request.sign(provider_key, ctx.domain)))
            return out

        _run(serve_read, ctx, signed(200), args.threads)  # warm-up (caches, connections)
        core = _run(serve_read, ctx, signed(args.reads), args.threads)
        base = _run(_baseline, ctx, signed(args.reads), args.threads)
        ctx.db.dispose()
    figures = {
        "core_reads_per_s": round(core["per_s"], 1),
        "core_read_p50_ms": round(core["p50_ms"], 2),
        "core_read_p99_ms": round(core["p99_ms"], 2),
        "core_cpu_ms_per_read": round(core["cpu_ms"], 3),
        "baseline_cpu_ms_per_read": round(base["cpu_ms"], 3),
        "baseline_per_s": round(base["per_s"], 1),
        "baseline_p99_ms": round(base["p99_ms"], 2),
        "core_ratio": round(core["per_s"] / base["per_s"], 3),
        "threads": args.threads,
        "reads": args.reads,
    }
    print(f"serve_read ({args.threads} threads): {figures['core_reads_per_s']} reads/s, "
          f"p50 {figures['core_read_p50_ms']} ms, p99 {figures['core_read_p99_ms']} ms, "
          f"{figures['core_cpu_ms_per_read']} ms CPU a read")
    print(f"baseline (no access check):    {figures['baseline_per_s']} reads/s, "
          f"p99 {figures['baseline_p99_ms']} ms, {figures['baseline_cpu_ms_per_read']} ms CPU")
    print(f"ratio: {figures['core_ratio']}")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
