"""Chain-layer benchmark: event index catch-up, grantee query latency, transaction throughput.

    python benchmarks/chain.py [--events N] [--grants N] [--txs N] [--json]

Every figure is measured against a baseline in the same run, on a local anvil (npm) started here
on 127.0.0.1 and stopped at the end:

* **index catch-up** — an anvil holding ``--events`` (10,000) Kizuna events; the event index
  syncs them from the deploy block (``eth_getLogs`` + decode + SQLite + projections) against the
  raw ``eth_getLogs`` JSON-RPC rate for the same block range and chunks. ``index_ratio`` =
  index events/s ÷ raw events/s (target ≥ 0.5).
* **grantees query** — "patients who granted provider P" over ``--grants`` (100,000) grants in
  SQLite, filled through the index's own insert path; ``grantees_p50_ms`` (target ≤ 1 ms).
* **transactions** — sequential grants through ``ConsentLedgerAgent.grant`` (simulate, nonce,
  sign, send, receipt) against plain web3.py ``build_transaction`` + sign + send + wait, same
  node, same call. ``tx_ratio`` = agent tx/s ÷ web3 tx/s (target ≥ 0.8).

``--json`` prints, as the last line, one JSON object with ``index_ratio``, ``grantees_p50_ms``
and ``tx_ratio`` (plus the raw rates).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_utils.crypto import keccak

from kizuna.chain.connection import Chain, connect, web3_for
from kizuna.chain.deploy import deploy
from kizuna.chain.index import EventIndex, IndexSource
from kizuna.chain.index.events import DecodedEvent, checksum, raw_row
from kizuna.chain.localnode import LocalNode, dev_private_keys
from kizuna.chain.models import BlockRef, ContractCall
from kizuna.chain.signers import LocalKeySigner
from kizuna.types import ScopeId

TARGETS = {"index_ratio": 0.5, "grantees_p50_ms": 1.0, "tx_ratio": 0.8}


# --- a local node (LocalNode.stop() ends anvil and everything it started) ------------------


@contextmanager
def anvil() -> Iterator[LocalNode]:
    with LocalNode() as node:
        yield node


def _scope(i: int) -> ScopeId:
    return ScopeId(bytes(keccak(i.to_bytes(8, "big"))))


def _deployed(node: LocalNode) -> tuple[Chain, LocalKeySigner]:
    key = dev_private_keys(1)[0]
    deployment = deploy(web3_for(node.rpc_url), Account.from_key(key), directory=None)
    return connect(node.rpc_url, deployment), LocalKeySigner(key)


# --- 1. index catch-up ---------------------------------------------------------------------


def _rpc_batch(url: str, client: httpx.Client, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
               for i, (m, p) in enumerate(calls)]
    answers = client.post(url, json=payload, timeout=60).json()
    for answer in answers:
        if "error" in answer:
            raise RuntimeError(answer["error"])
    return [a["result"] for a in sorted(answers, key=lambda a: a["id"])]


def fill_events(node: LocalNode, chain: Chain, funder: LocalKeySigner, events: int) -> int:
    """``events`` Kizuna events, fast: a guardian grants for 50 patients (GuardianActed +
    AccessGranted per transaction), signed locally and sent in JSON-RPC batches while automine
    is off, then mined 400 transactions per block."""
    ledger = chain.ledger
    guardian = LocalKeySigner.generate()
    patients = [LocalKeySigner.generate() for _ in range(50)]
    chain.sender.transact(ContractCall(to=guardian.address, data=b"", value=10**21), funder)
    until = chain.head().timestamp + 10**7
    for patient in patients:
        chain.sender.transact(ContractCall(to=patient.address, data=b"", value=10**17), funder)
        ledger.appoint_guardian(guardian.address, until, signer=patient)
    fees = chain.sender.fees()
    gas = ledger.chain.sender.estimate_gas(
        ledger.grant_call(funder.address, _scope(0), until, patient=patients[0].address),
        sender=guardian.address) + 20_000
    transactions = max(1, (events - len(patients)) // 2)
    client = httpx.Client()
    _rpc_batch(node.rpc_url, client, [("evm_setAutomine", [False])])
    try:
        raw = []
        for i in range(transactions):
            call = ledger.grant_call(funder.address, _scope(i), until,
                                     patient=patients[i % len(patients)].address)
            raw.append(guardian.sign_transaction({
                "type": 2, "chainId": chain.chain_id, "nonce": i, "to": call.to,
                "data": call.data, "value": 0, "gas": gas,
                "maxFeePerGas": fees.max_fee_per_gas * 4,
                "maxPriorityFeePerGas": fees.max_priority_fee_per_gas}))
        for start in range(0, len(raw), 400):
            _rpc_batch(node.rpc_url, client, [("eth_sendRawTransaction", ["0x" + r.hex()])
                                              for r in raw[start:start + 400]])
            _rpc_batch(node.rpc_url, client, [("evm_mine", [])])
        while int(_rpc_batch(node.rpc_url, client, [("eth_getTransactionCount",
                                                     [guardian.address, "latest"])])[0],
                  16) < transactions:
            _rpc_batch(node.rpc_url, client, [("evm_mine", [])])
    finally:
        _rpc_batch(node.rpc_url, client, [("evm_setAutomine", [True])])
        client.close()
    return transactions


def bench_index(events: int) -> dict[str, float]:
    with anvil() as node:
        chain, funder = _deployed(node)
        fill_events(node, chain, funder, events)
        head = chain.head().number
        start = chain.deployment.deploy_block
        chunk = 2_000
        addresses = [chain.deployment.provider_registry, chain.deployment.consent_ledger,
                     chain.deployment.access_log]
        raw_times, index_times, counts = [], [], []
        for _ in range(5):  # interleaved rounds, medians: the machine may be shared
            began = time.perf_counter()
            found = 0
            for lo in range(start, head + 1, chunk):
                answer = chain.w3.provider.make_request("eth_getLogs", [{  # type: ignore[arg-type]
                    "fromBlock": hex(lo), "toBlock": hex(min(lo + chunk - 1, head)),
                    "address": addresses}])
                found += len(answer["result"])
            raw_times.append(time.perf_counter() - began)
            with tempfile.TemporaryDirectory() as tmp:
                index = EventIndex.for_chain(chain, Path(tmp) / "index.sqlite", chunk_size=chunk)
                checksum.cache_clear()  # no head start from the previous round
                began = time.perf_counter()
                index.sync(to_block=head)
                index_times.append(time.perf_counter() - began)
                counts.append(index.event_count())
                index.close()
            assert counts[-1] == found, (counts[-1], found)
        raw_rate = found / statistics.median(raw_times)
        index_rate = counts[0] / statistics.median(index_times)
        return {"events": float(found), "raw_getlogs_events_per_s": raw_rate,
                "index_events_per_s": index_rate, "index_ratio": index_rate / raw_rate}


# --- 2. grantees query ---------------------------------------------------------------------


def bench_grantees(grants: int) -> dict[str, float]:
    from web3 import Web3

    from kizuna.chain.artifacts import load_artifact

    ledger_address = "0x" + "11" * 20
    source = IndexSource(1, {ledger_address: ("ConsentLedger",
                                              load_artifact("ConsentLedger").abi_list)}, 1)
    rng = random.Random(7)
    providers = [Account.create().address for _ in range(1_000)]
    patients = [Account.create().address for _ in range(25_000)]
    with tempfile.TemporaryDirectory() as tmp:
        index = EventIndex(Web3(), source, Path(tmp) / "grants.sqlite")
        topic = index.decoder.spec("ConsentLedger", "AccessGranted").topic0
        began = time.perf_counter()
        batch: list[DecodedEvent] = []
        for i in range(grants):
            patient, provider = rng.choice(patients), rng.choice(providers)
            batch.append(DecodedEvent(
                contract="ConsentLedger", address=ledger_address, name="AccessGranted",
                args={"patient": patient, "provider": provider, "scopeId": _scope(i),
                      "expiresAt": 2_000_000_000 + i},
                block_number=1 + i // 100, block_hash=b"\x00" * 32,
                tx_hash=bytes(keccak(i.to_bytes(8, "big"))),
                log_index=i % 100, topics=(topic,), data=b""))
            if len(batch) == 10_000:
                with index._transaction() as cur:
                    index._store(cur, [raw_row(e) for e in batch], batch)
                batch = []
        fill_seconds = time.perf_counter() - began
        at = BlockRef(number=grants // 100, hash=b"\x00" * 32, timestamp=1_900_000_000)
        latencies, sizes = [], []
        for provider in rng.sample(providers, 500) * 2:
            began = time.perf_counter()
            found = index.grantees(provider, at=at)
            latencies.append((time.perf_counter() - began) * 1000)
            sizes.append(len(found))
        index.close()
    return {"grants": float(grants), "fill_grants_per_s": grants / fill_seconds,
            "grantees_p50_ms": statistics.median(latencies),
            "grantees_p99_ms": sorted(latencies)[int(len(latencies) * 0.99)],
            "grantees_mean_rows": statistics.mean(sizes)}


# --- 3. transactions -----------------------------------------------------------------------


def bench_transactions(count: int) -> dict[str, float]:
    with anvil() as node:
        chain, funder = _deployed(node)
        ledger = chain.ledger
        agent_signer, raw_signer = LocalKeySigner.generate(), LocalKeySigner.generate()
        provider = LocalKeySigner.generate().address
        for who in (agent_signer, raw_signer):
            chain.sender.transact(ContractCall(to=who.address, data=b"", value=10**20), funder)
        until = chain.head().timestamp + 10**7
        w3 = chain.w3
        contract = w3.eth.contract(address=ledger.address, abi=chain.abis["ConsentLedger"])
        account = Account.from_key(raw_signer._account.key)

        def raw_web3(i: int) -> None:
            tx = contract.functions.grant(provider, _scope(10**6 + i), until).build_transaction({
                "from": account.address, "chainId": chain.chain_id,
                "nonce": w3.eth.get_transaction_count(account.address)})
            signed = account.sign_transaction(tx)
            tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
            assert w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1

        def agent(i: int) -> None:
            ledger.grant(provider, _scope(i), until, signer=agent_signer)

        rates: dict[str, list[float]] = {"raw": [], "agent": []}
        for round_ in range(3):
            for name, fn in (("raw", raw_web3), ("agent", agent)):
                began = time.perf_counter()
                for i in range(count):
                    fn(round_ * count + i)
                rates[name].append(count / (time.perf_counter() - began))
        raw_rate, agent_rate = statistics.median(rates["raw"]), statistics.median(rates["agent"])
        return {"web3_tx_per_s": raw_rate, "agent_tx_per_s": agent_rate,
                "tx_ratio": agent_rate / raw_rate}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--grants", type=int, default=100_000)
    parser.add_argument("--txs", type=int, default=150)
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args(argv)

    results: dict[str, float] = {}
    index = bench_index(args.events)
    results.update(index)
    print(f"index catch-up: {index['events']:.0f} events; raw eth_getLogs "
          f"{index['raw_getlogs_events_per_s']:,.0f} ev/s, index "
          f"{index['index_events_per_s']:,.0f} ev/s → ratio {index['index_ratio']:.2f} "
          f"(target ≥ {TARGETS['index_ratio']})")
    grantees = bench_grantees(args.grants)
    results.update(grantees)
    print(f"grantees of a provider over {grantees['grants']:.0f} grants "
          f"(~{grantees['grantees_mean_rows']:.0f} patients each): p50 "
          f"{grantees['grantees_p50_ms']:.3f} ms, p99 {grantees['grantees_p99_ms']:.3f} ms "
          f"(target p50 ≤ {TARGETS['grantees_p50_ms']} ms)")
    txs = bench_transactions(args.txs)
    results.update(txs)
    print(f"sequential grants: web3.py {txs['web3_tx_per_s']:.1f} tx/s, agent "
          f"{txs['agent_tx_per_s']:.1f} tx/s → ratio {txs['tx_ratio']:.2f} "
          f"(target ≥ {TARGETS['tx_ratio']})")
    if args.json:
        ordered = {key: round(results[key], 4) for key in ("index_ratio", "grantees_p50_ms",
                                                           "tx_ratio")}
        ordered.update({k: round(v, 2) for k, v in results.items() if k not in ordered})
        print(json.dumps(ordered))
    return 0


if __name__ == "__main__":
    sys.exit(main())
