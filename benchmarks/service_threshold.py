"""2-of-3 threshold reads for ``benchmarks/service.py`` (docs/proxies.md): three ``kizuna proxy
serve`` processes on the benchmark's chain and store, each with its own SQLite database, index
and key; the patient hands each its bound fragment and announces the record; then ``reads``
signed requests, each sent to the three nodes at once by ``clients`` concurrent clients.

A read's latency is the time until the SECOND node answered 200 (what a provider waits for
before combining); the third answer is still awaited, so every node does its re-encryption and
writes its receipt, as in use. The provider's own cfrag verification and decryption are not
timed (client-side work, about a millisecond; the service benchmark leaves decryption out too).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from eth_account import Account

from kizuna.chain.connection import Chain
from kizuna.chain.localnode import free_port
from kizuna.crypto import pre
from kizuna.proxy.threshold import split_for_nodes
from kizuna.proxynode.client import announce_record, hand_kfrags
from kizuna.receipts.request import proxy_domain
from kizuna.types import Address, Cid, checksum_address
from kizuna.wire.scopes import scope_keys_typed_data

NODES = 3
THRESHOLD = 2


def _start_nodes(root: Path, env: dict[str, str]) -> list[tuple[Address, str,
                                                               subprocess.Popen[bytes]]]:
    base = {k: v for k, v in env.items() if k not in ("KIZUNA_DATABASE_URL",
                                                      "KIZUNA_INDEX_PATH")}
    started = []
    for i in range(NODES):
        key = Account.create()
        port = free_port()
        directory = root / f"proxy-{i}"
        directory.mkdir()
        process = subprocess.Popen(
            [sys.executable, "-m", "kizuna.cli", "proxy", "serve",
             "--database", f"sqlite:///{directory / 'node.sqlite3'}",
             "--index", str(directory / "index.sqlite3"), "--port", str(port)],
            env={**os.environ, **base, "KIZUNA_NODE_KEY": key.key.hex()},
            stdout=subprocess.DEVNULL, stderr=(root / f"proxy-{i}.log").open("wb"))
        started.append((checksum_address(key.address), f"http://127.0.0.1:{port}", process))
    deadline = time.monotonic() + 120
    for i, (_, url, process) in enumerate(started):
        while True:
            if process.poll() is not None:
                raise RuntimeError((root / f"proxy-{i}.log").read_text()[-2000:])
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"proxy node {i} did not start")
            time.sleep(0.2)
    return started


def _hand_over(scene: Any, endpoints: dict[Address, str], label: str) -> None:
    """The patient's side: one bound fragment per node, the record announced to each."""
    from kizuna.crypto.scopes import scope_label

    chain: Chain = scene.chain
    keys = scene.patient_keys
    sid = keys.scope_id(scope_label(label))
    domain = proxy_domain(chain_id=chain.chain_id, access_log=chain.deployment.access_log)
    entry = chain.registry.provider_of(scene.provider.address)
    assert entry is not None
    receiving = pre.UmbralPublicKey.from_bytes(entry.umbral_public_key)
    statements = split_for_nodes(scene.patient, domain, patient=scene.patient.address,
                                 scope_id=sid, provider=scene.provider.address, epoch=0,
                                 delegating_sk=keys.scope_secret(sid), receiving_key=receiving,
                                 signer=keys.wallet.signer(), nodes=list(endpoints),
                                 threshold=THRESHOLD)
    typed = scope_keys_typed_data(domain, patient=scene.patient.address, scope_id=sid,
                                  delegating_key=keys.scope_public(sid),
                                  verifying_key=keys.verifying_key)
    hand_kfrags(endpoints, statements, delegating_key=keys.scope_public(sid),
                verifying_key=keys.verifying_key,
                scope_keys_signature=scene.patient.sign_typed_data(typed))
    announce_record(endpoints, record_id=scene.record_id, cid=Cid(scene.cid), epoch=0)


async def _drive(urls: list[str], clients: int, bodies: list[dict[str, Any]]) -> tuple[
        float, list[float]]:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []

    async def worker() -> None:
        sessions = [aiohttp.ClientSession(base_url=url, timeout=aiohttp.ClientTimeout(total=60),
                                          connector=aiohttp.TCPConnector(limit=1))
                    for url in urls]
        try:
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                start = time.perf_counter()

                async def ask(http: aiohttp.ClientSession, body: dict[str, Any] = body) -> int:
                    async with http.post("/node/reads", json=body) as answer:
                        await answer.read()
                        return answer.status

                served = 0
                for done in asyncio.as_completed([ask(http) for http in sessions]):
                    if await done == 200:
                        served += 1
                        if served == THRESHOLD:
                            latencies.append(time.perf_counter() - start)
                if served < THRESHOLD:
                    raise RuntimeError(f"a threshold read was served by {served} nodes")
        finally:
            for http in sessions:
                await http.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - started, latencies


def measure_threshold(root: Path, env: dict[str, str], scene: Any, *, label: str,
                      bodies: list[dict[str, Any]], clients: int) -> dict[str, Any]:
    """``threshold_reads_per_s`` and ``threshold_read_p99_ms`` (2-of-3 on this machine), plus
    ``threshold_read_p50_ms`` and ``threshold_node_cpu_ms_per_read`` (the three nodes' CPU);
    ``bodies`` are fresh signed read requests (200 warm up)."""
    started = _start_nodes(root, env)
    try:
        endpoints = {address: url for address, url, _ in started}
        _hand_over(scene, endpoints, label)
        urls = list(endpoints.values())
        asyncio.run(_drive(urls, clients, bodies[:200]))
        measured = bodies[200:]
        pids = [process.pid for _, _, process in started]
        cpu_began = _cpu_seconds(pids)
        seconds, latencies = asyncio.run(_drive(urls, clients, measured))
        node_cpu = _cpu_seconds(pids) - cpu_began
    finally:
        for _, _, process in started:
            process.send_signal(signal.SIGTERM)
        for _, _, process in started:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
    latencies.sort()
    return {"threshold_reads_per_s": round(len(measured) / seconds, 1),
            "threshold_read_p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
            "threshold_read_p99_ms": round(latencies[min(len(latencies) - 1,
                                                         int(len(latencies) * 0.99))] * 1000, 2),
            "threshold_node_cpu_ms_per_read": round(node_cpu / len(measured) * 1000, 3),
            "threshold": f"{THRESHOLD}-of-{NODES}"}


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the node processes have used so far (all three: each read is
    sent to every node, the third answer included)."""
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


__all__ = ["measure_threshold"]
