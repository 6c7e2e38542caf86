"""Service benchmark: provider reads of a 10 KB record through the API, against the same service
serving the same bytes with no access check, in the same run.

    python benchmarks/service.py [--reads N] [--rounds 3] [--clients 16] [--instances 2]
                                 [--database postgresql://...] [--json]

Setup (not timed): anvil on 127.0.0.1, the contracts deployed, the real API started as
``kizuna serve`` (uvicorn with uvloop + httptools, ``--instances`` processes on one SQLite
database -- or the empty database ``--database`` names, e.g. PostgreSQL -- and one embedded
store, each client assigned round-robin to an instance as a load balancer would; the instances
elect one to run the follower and the anchorer, as ``kizuna up --instances N`` does), a
patient who uploads one 10 KB record (sealed locally) and grants its scope to a verified
provider — all over HTTP.
The read requests are signed beforehand (EIP-712 digest + coincurve): signing is the provider's
cost, not the service's.

Timed, ``--clients`` (16) concurrent clients (asyncio + aiohttp, one connection each):

* **read** — ``POST /provider/reads`` (signature, replay check, access check at the chain head,
  key fragments, re-encryption, the 10 KB envelope read from the store and verified, receipt
  committed): what a provider does to read one record. An envelope up to the service's
  ``read_inline_max_bytes`` (64 KiB) comes inside the answer; a larger one would be a second
  request, ``GET /content/{cid}``, which this client makes whenever the answer has no envelope.
  ``reads_per_s``, p50 / p99 latency of the whole read.
* **baseline** — ``GET /_benchmark/records/{id}``: the same ciphertext bytes from the same
  service and store, no session, no signature, no access check, no re-encryption, no receipt
  (a route that exists only with ``benchmark_baseline``, refused outside development).
  ``read_ratio`` = reads/s ÷ baseline requests/s.

``--rounds`` (3) rounds alternate the baseline and the reads, ``--reads`` (3,000) requests each;
the rates are the medians of the rounds (the cores are shared: a burst of other work would
otherwise land on one side only), the latencies are of all rounds together. Also printed: the
service processes' CPU time per read and per baseline request (steadier than rates on a shared
machine).

Revocation: readers loop while the patient revokes; printed are the reads served on a head at
or after the revoking block (must be 0) and the reads sent after the revoke was confirmed
before the first refusal (target ≤ 1).

Threshold reads (docs/proxies.md): ``threshold_reads_per_s``, ``threshold_read_p50_ms``,
``threshold_read_p99_ms`` — 2-of-3 through three ``kizuna proxy serve`` processes, each read
sent to all three and timed to the second answer (``benchmarks/service_threshold.py``).

Audit: ``audit_100k_s`` from ``benchmarks/audit.py`` (100,000 receipts against anchored roots),
unless ``--skip-audit``.

``--json`` prints, as the last line, one JSON object with ``reads_per_s``, ``read_p99_ms``,
``read_ratio``, ``audit_100k_s`` and the other figures, and ``load_average_start`` /
``load_average_end`` (1, 5 and 15 minutes). Targets on this 2-core machine (shared
by the clients and the server), quiet (issue 17): ≥ 1,000 reads/s, p99 ≤ 25 ms, ratio ≥ 0.45,
server CPU ≤ 1.2 ms a read; 2-of-3 threshold reads ≥ 300 reads/s, p99 ≤ 60 ms. Print the load
average beside any figure: the cores are often shared.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from coincurve import PrivateKey
from eth_account import Account
from siwe import siwe as siwe_lib

from kizuna.chain.connection import Chain, connect, web3_for
from kizuna.chain.deploy import deploy
from kizuna.chain.localnode import LocalNode, dev_private_keys, free_port
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.keys import ParticipantKeys, derivation_domain, participant_keys
from kizuna.crypto.commitment import commitment_of
from kizuna.crypto.scopes import scope_label
from kizuna.receipts.request import ReadRequest, proxy_domain
from kizuna.storage.envelope import encrypt_bytes
from kizuna.types import RecordId
from kizuna.wire.scopes import scope_keys_typed_data

RECORD_SIZE = 10 * 1024
LABEL = "Observation:laboratory"


def hx(value: bytes) -> str:
    return "0x" + bytes(value).hex()


# --- the stack --------------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def api_servers(env: dict[str, str], count: int, log_dir: Path) -> Iterator[list[Server]]:
    servers: list[Server] = []
    try:
        for index in range(count):
            port = free_port()
            child_env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
            child_env.update(env)
            child_env.update(KIZUNA_API_PORT=str(port))
            log = (log_dir / f"api-{index}.log").open("ab")
            process = subprocess.Popen(
                [sys.executable, "-c", "from kizuna.cli.main import main; main()", "serve",
                 "--log-level", "warning"], env=child_env, stdout=log,
                stderr=subprocess.STDOUT)
            log.close()
            servers.append(Server(f"http://127.0.0.1:{port}", process))
        for server in servers:
            deadline = time.monotonic() + 60
            while True:
                if server.process.poll() is not None:
                    raise RuntimeError(f"the API exited; see {log_dir}")
                try:
                    if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the API did not start; see {log_dir}")
                time.sleep(0.1)
        yield servers
    finally:
        for server in servers:
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
                try:
                    server.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    server.process.kill()
                    server.process.wait()


def sign_in(http: httpx.Client, signer: LocalKeySigner) -> dict[str, str]:
    info = http.get("/auth/nonce").json()
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    text = siwe_lib.SiweMessage(domain=info["domain"], address=signer.address, uri=info["uri"],
                                version="1", chain_id=info["chain_id"], nonce=info["nonce"],
                                issued_at=now).prepare_message()
    answer = http.post("/auth/login", json={"message": text,
                                            "signature": hx(signer.sign_message(text))})
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['token']}"}


@dataclass
class Scene:
    chain: Chain
    patient: LocalKeySigner
    patient_keys: ParticipantKeys
    patient_auth: dict[str, str]
    provider: LocalKeySigner
    provider_key: PrivateKey
    provider_auth: dict[str, str]
    record_id: RecordId
    cid: str


def prepare(chain: Chain, admin: LocalKeySigner, http: httpx.Client) -> Scene:
    """Over HTTP: a patient uploads a 10 KB record and grants its scope to a provider."""
    patient = LocalKeySigner.generate()
    provider_secret = os.urandom(32)
    provider = LocalKeySigner(provider_secret)
    pkeys = participant_keys(patient, derivation_domain(chain))
    vkeys = participant_keys(provider, derivation_domain(chain))
    chain.registry.add_provider(provider.address, vkeys.public_key.to_bytes(), b"\x11" * 32,
                                signer=admin)
    patient_auth = sign_in(http, patient)
    provider_auth = sign_in(http, provider)
    sid = pkeys.scope_id(scope_label(LABEL))
    domain = proxy_domain(chain_id=chain.chain_id, access_log=chain.deployment.access_log)
    statement = scope_keys_typed_data(domain, patient=patient.address, scope_id=sid,
                                      delegating_key=pkeys.scope_public(sid),
                                      verifying_key=pkeys.verifying_key)
    http.post("/patient/scope-keys", headers=patient_auth, json={
        "scope_id": hx(sid), "delegating_key": hx(pkeys.scope_public(sid).to_bytes()),
        "verifying_key": hx(pkeys.verifying_key.to_bytes()),
        "signature": hx(patient.sign_typed_data(statement))}).raise_for_status()
    rid = RecordId(os.urandom(32))
    envelope = bytes(encrypt_bytes(os.urandom(RECORD_SIZE), owner_key=pkeys.scope_public(sid),
                                   record_id=rid, content_type="application/fhir+json"))
    deadline = chain.head().timestamp + 3600
    typed = chain.ledger.register_record_typed_data(
        patient=patient.address, record_id=rid, commitment=commitment_of(envelope),
        scope_id=sid, deadline=deadline)
    registration = json.dumps({"signed": {"typed_data": typed.to_json(),
                                          "signature": hx(patient.sign_typed_data(typed))}})
    answer = http.put(f"/patient/records/{hx(rid)}", content=envelope, headers={
        **patient_auth, "X-Kizuna-Scope-Id": hx(sid), "X-Kizuna-Registration": registration})
    answer.raise_for_status()
    cid = answer.json()["cid"]
    expires = chain.head().timestamp + 86400
    grant = chain.ledger.grant_typed_data(patient=patient.address, provider=provider.address,
                                          scope_id=sid, expires_at=expires, deadline=deadline)
    kfrags = [hx(k.to_bytes()) for k in pkeys.kfrags_for(sid, vkeys.public_key, threshold=1,
                                                         shares=1)]
    http.post("/patient/grants", headers=patient_auth, json={
        "provider": provider.address, "scope_ids": [hx(sid)], "expires_at": expires,
        "kfrags": {hx(sid): kfrags}, "authorization": {"signed": {
            "typed_data": grant.to_json(), "signature": hx(patient.sign_typed_data(grant))}}},
    ).raise_for_status()
    return Scene(chain, patient, pkeys, patient_auth, provider, PrivateKey(provider_secret),
                 provider_auth, rid, cid)


def signed_reads(scene: Scene, count: int) -> list[dict[str, Any]]:
    """``count`` read requests signed by the provider (digest + coincurve, v = 27/28)."""
    domain = proxy_domain(chain_id=scene.chain.chain_id,
                          access_log=scene.chain.deployment.access_log)
    bodies = []
    for _ in range(count):
        request = ReadRequest.new(provider=scene.provider.address,
                                  patient=scene.patient.address, record_id=scene.record_id)
        raw = scene.provider_key.sign_recoverable(request.digest(domain), hasher=None)
        signature = raw[:64] + bytes([raw[64] + 27])
        bodies.append({"request": request.to_json(), "signature": hx(signature)})
    return bodies


# --- load -------------------------------------------------------------------------------------


async def _drive(urls: list[str], clients: int, jobs: list[Any], one: Any) -> tuple[float,
                                                                                   list[float]]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    latencies: list[float] = []

    async def worker(index: int) -> None:
        # aiohttp: the load generator shares the 2 cores with the service, and it spends about
        # an eighth of the CPU per request httpx did (0.1 vs 0.9 ms; the same client serves
        # the baseline).
        async with aiohttp.ClientSession(
                base_url=urls[index % len(urls)], timeout=aiohttp.ClientTimeout(total=60),
                connector=aiohttp.TCPConnector(limit=1)) as http:
            while True:
                try:
                    job = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                start = time.perf_counter()
                await one(http, job)
                latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(clients)))
    return time.perf_counter() - started, latencies


def measure_reads(urls: list[str], scene: Scene, bodies: list[dict[str, Any]],
                  clients: int) -> tuple[float, list[float]]:
    async def read(http: aiohttp.ClientSession, body: dict[str, Any]) -> None:
        async with http.post("/provider/reads", json=body,
                             headers=scene.provider_auth) as answer:
            if answer.status != 200:
                raise RuntimeError(f"read refused: {answer.status} {(await answer.text())[:300]}")
            grant = await answer.json()
        inline = grant.get("envelope_base64")
        if inline is not None:
            envelope = base64.b64decode(inline)
        else:
            async with http.get(f"/content/{grant['cid']}",
                                headers=scene.provider_auth) as content:
                if content.status != 200:
                    raise RuntimeError(f"content: {content.status}")
                envelope = await content.read()
        if len(envelope) < RECORD_SIZE:
            raise RuntimeError(f"the envelope is {len(envelope)} bytes")

    return asyncio.run(_drive(urls, clients, bodies, read))


def measure_baseline(urls: list[str], scene: Scene, count: int,
                     clients: int) -> tuple[float, list[float]]:
    path = f"/_benchmark/records/{hx(scene.record_id)}"

    async def fetch(http: aiohttp.ClientSession, _: int) -> None:
        async with http.get(path) as answer:
            body = await answer.read()
            if answer.status != 200 or len(body) < RECORD_SIZE:
                raise RuntimeError(f"baseline: {answer.status} {body[:200]!r}")

    return asyncio.run(_drive(urls, clients, list(range(count)), fetch))


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the service processes have used so far (from /proc)."""
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children_named(name: str) -> list[int]:
    """This process's child processes called ``name`` (the local chain node: its CPU a read
    is the head requests' and the access checks' other half, on the same cores)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        if comm == name and int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
            found.append(int(entry.name))
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_revocation(url: str, scene: Scene, readers: int = 4) -> dict[str, int]:
    """Readers loop while the patient revokes: reads served on a head at/after the revoking
    block, and reads sent after the revoke was confirmed before the first refusal."""
    bodies = iter(signed_reads(scene, 4000))
    lock = threading.Lock()
    stop = threading.Event()
    outcomes: list[tuple[float, int, int]] = []  # (sent, status, head_block)

    def reader() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                with lock:
                    body = next(bodies, None)
                if body is None:
                    return
                sent = time.monotonic()
                answer = http.post("/provider/reads", json=body, headers=scene.provider_auth)
                head = answer.json().get("head_block", -1) if answer.status_code == 200 else -1
                with lock:
                    outcomes.append((sent, answer.status_code, int(head)))

    threads = [threading.Thread(target=reader) for _ in range(readers)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    sid = scene.patient_keys.scope_id(scope_label(LABEL))
    typed = scene.chain.ledger.revoke_typed_data(
        patient=scene.patient.address, provider=scene.provider.address, scope_id=sid,
        deadline=scene.chain.head().timestamp + 3600)
    with httpx.Client(base_url=url, timeout=60) as http:
        answer = http.post("/patient/revocations", headers=scene.patient_auth, json={
            "provider": scene.provider.address, "scope_id": hx(sid), "authorization": {
                "signed": {"typed_data": typed.to_json(),
                           "signature": hx(scene.patient.sign_typed_data(typed))}}})
        answer.raise_for_status()
    confirmed = time.monotonic()
    revoke_block = int(answer.json()["block_number"])
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    after = sorted(o for o in outcomes if o[0] > confirmed)
    before_refusal = 0
    for _, status, _ in after:
        if status != 200:
            break
        before_refusal += 1
    return {
        "revocation_reads_on_or_after_block": sum(1 for o in outcomes
                                                  if o[1] == 200 and o[2] >= revoke_block),
        "revocation_requests_before_refusal": before_refusal,
        "revocation_reads_served_total": sum(1 for o in outcomes if o[1] == 200),
    }


# --- main -------------------------------------------------------------------------------------


def _show_logs_on_failure(root: Path, *, failed: object) -> None:
    """When the run fails, print the tail of each API log before the directory goes away."""
    if failed is None:
        return
    for log in sorted(root.glob("api-*.log")):
        lines = log.read_text(errors="replace").splitlines()
        print(f"--- {log.name} (last 60 lines) ---", *lines[-60:], sep="\n", file=sys.stderr)


def run(*, reads: int, rounds: int, clients: int, instances: int,
        skip_audit: bool, database: str | None = None, reads_only: bool = False,
        progress: bool = False, read_threads: int | None = None) -> dict[str, Any]:
    figures: dict[str, Any] = {"clients": clients, "instances": instances,
                               "record_bytes": RECORD_SIZE,
                               "database": (database or "sqlite").split(":", 1)[0],
                               "load_average_start": _load_average()}
    with tempfile.TemporaryDirectory(prefix="kizuna-bench-service-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        node = stack.enter_context(LocalNode(log_path=root / "anvil.log"))
        keys = dev_private_keys(2)
        deployment = deploy(web3_for(node.rpc_url), Account.from_key(keys[0]),
                            directory=root / "deployments")
        chain = connect(node.rpc_url, deployment)
        env = {
            "KIZUNA_HOME": str(root),  # its own home: index, keys, config of this run only
            "KIZUNA_ENVIRONMENT": "development",
            "KIZUNA_RPC_URL": node.rpc_url,
            "KIZUNA_DEPLOYMENT_FILE": str(root / "deployments" / f"{deployment.chain_id}.json"),
            "KIZUNA_STORE_PATH": str(root / "store"),
            "KIZUNA_DATABASE_URL": database or f"sqlite:///{root / 'service.sqlite3'}",
            "KIZUNA_SIWE_DOMAIN": "kizuna.bench",
            "KIZUNA_SIWE_URI": "https://kizuna.bench",
            "KIZUNA_RELAYER_KEY": keys[1],
            "KIZUNA_ANCHORER_KEY": keys[0],
            "KIZUNA_BENCHMARK_BASELINE": "true",
        }
        if read_threads is not None:  # else the service's default (kizuna.config)
            env["KIZUNA_READ_THREADS"] = str(read_threads)
            figures["read_threads"] = read_threads
        stack.push(lambda kind, _error, _trace: _show_logs_on_failure(root, failed=kind))
        servers = stack.enter_context(api_servers(env, instances, root))
        urls = [s.url for s in servers]
        with httpx.Client(base_url=urls[0], timeout=60) as http:
            scene = prepare(chain, LocalKeySigner(keys[0]), http)
        bodies = signed_reads(scene, reads * rounds + 200)
        # warm-up (connections, caches) for both paths
        measure_reads(urls, scene, bodies[:200], clients)
        measure_baseline(urls, scene, 200, clients)
        bodies = bodies[200:]
        pids = [server.process.pid for server in servers]
        read_rates, base_rates, read_lat, base_lat = [], [], [], []
        read_cpu, base_cpu = 0.0, 0.0
        client_read_cpu, client_base_cpu = 0.0, 0.0  # this process: the clients' own share
        node_pids = _children_named("anvil")
        node_read_cpu, node_base_cpu = 0.0, 0.0
        # Rounds alternate baseline and reads, and each figure is the median of its rounds: the
        # 2 cores are shared, and a burst of other work would otherwise land on one path only.
        for round_ in range(rounds):
            began, client_began = _cpu_seconds(pids), time.process_time()
            node_began = _cpu_seconds(node_pids)
            seconds, latencies = measure_baseline(urls, scene, reads, clients)
            base_cpu += _cpu_seconds(pids) - began
            client_base_cpu += time.process_time() - client_began
            node_base_cpu += _cpu_seconds(node_pids) - node_began
            base_rates.append(reads / seconds)
            base_lat += latencies
            if progress:  # a profiler's cue: attach to these processes now
                print(f"round {round_ + 1}: reads begin, server pids "
                      f"{' '.join(map(str, pids))}", file=sys.stderr, flush=True)
            began, client_began = _cpu_seconds(pids), time.process_time()
            node_began = _cpu_seconds(node_pids)
            seconds, latencies = measure_reads(
                urls, scene, bodies[round_ * reads:(round_ + 1) * reads], clients)
            read_cpu += _cpu_seconds(pids) - began
            client_read_cpu += time.process_time() - client_began
            node_read_cpu += _cpu_seconds(node_pids) - node_began
            read_rates.append(reads / seconds)
            read_lat += latencies
        figures.update(
            reads=reads,
            rounds=rounds,
            reads_per_s=round(statistics.median(read_rates), 1),
            read_p50_ms=round(statistics.median(read_lat) * 1000, 2),
            read_p99_ms=round(percentile(read_lat, 0.99) * 1000, 2),
            baseline_per_s=round(statistics.median(base_rates), 1),
            baseline_p50_ms=round(statistics.median(base_lat) * 1000, 2),
            baseline_p99_ms=round(percentile(base_lat, 0.99) * 1000, 2),
            server_cpu_ms_per_read=round(read_cpu / (reads * rounds) * 1000, 3),
            server_cpu_ms_per_baseline=round(base_cpu / (reads * rounds) * 1000, 3),
            client_cpu_ms_per_read=round(client_read_cpu / (reads * rounds) * 1000, 3),
            client_cpu_ms_per_baseline=round(client_base_cpu / (reads * rounds) * 1000, 3),
            node_cpu_ms_per_read=round(node_read_cpu / (reads * rounds) * 1000, 3),
            node_cpu_ms_per_baseline=round(node_base_cpu / (reads * rounds) * 1000, 3),
            read_rates=[round(r, 1) for r in read_rates],
            baseline_rates=[round(r, 1) for r in base_rates],
        )
        figures["read_ratio"] = round(figures["reads_per_s"] / figures["baseline_per_s"], 3)
        if reads_only:
            figures["load_average_end"] = _load_average()
            return figures
        # 2-of-3 threshold reads through three proxy node processes (before the revocation
        # measurement revokes the grant): benchmarks/service_threshold.py
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from service_threshold import measure_threshold

        figures.update(measure_threshold(root, env, scene, label=LABEL,
                                         bodies=signed_reads(scene, reads + 200),
                                         clients=clients))
        figures.update(measure_revocation(urls[0], scene))
    if not skip_audit:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from audit import audit_100k_seconds  # benchmarks/audit.py (the audit part's)

        figures["audit_100k_s"] = audit_100k_seconds()
    else:
        figures["audit_100k_s"] = None
    figures["load_average_end"] = _load_average()
    return figures


def _load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: the cores are shared, and a figure taken under
    load is not comparable with the quiet-machine targets."""
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=3000, help="reads (and baseline "
                        "requests) per round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating baseline / read rounds; rates are their medians")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--instances", type=int, default=2,
                        help="service processes on one database (clients spread over them)")
    parser.add_argument("--database", default=None, metavar="URL",
                        help="an empty service database shared by the instances, e.g. "
                             "postgresql://user@host/db (default: a SQLite file of this run)")
    parser.add_argument("--skip-audit", action="store_true")
    parser.add_argument("--reads-only", action="store_true",
                        help="the reads and the baseline only: no threshold reads, revocation "
                             "or audit (for profiling the read path)")
    parser.add_argument("--progress", action="store_true",
                        help="print to stderr, as each read round begins, the server pids "
                             "(a profiler's cue)")
    parser.add_argument("--read-threads", type=int, default=None, metavar="N",
                        help="each instance's read threads (KIZUNA_READ_THREADS; default: "
                             "the service's own default)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    figures = run(reads=args.reads, rounds=args.rounds, clients=args.clients,
                  instances=args.instances, skip_audit=args.skip_audit,
                  database=args.database, reads_only=args.reads_only,
                  progress=args.progress, read_threads=args.read_threads)
    if args.reads_only:
        print(f"reads {figures['reads_per_s']}/s p50 {figures['read_p50_ms']} ms p99 "
              f"{figures['read_p99_ms']} ms; baseline {figures['baseline_per_s']}/s; server CPU "
              f"{figures['server_cpu_ms_per_read']} ms a read, "
              f"{figures['server_cpu_ms_per_baseline']} a baseline request; client CPU "
              f"{figures['client_cpu_ms_per_read']} / "
              f"{figures['client_cpu_ms_per_baseline']}; chain node CPU "
              f"{figures['node_cpu_ms_per_read']} / {figures['node_cpu_ms_per_baseline']}; load "
              f"{figures['load_average_start']} -> {figures['load_average_end']}")
        if args.json:
            print(json.dumps(figures))
        return
    print(f"provider reads of a {RECORD_SIZE // 1024} KB record, {args.clients} clients, "
          f"{args.instances} instance(s) on {figures['database']}:")
    print(f"  checked read (signed request + access check + re-encryption + receipt + "
          f"ciphertext): {figures['reads_per_s']} reads/s, p50 {figures['read_p50_ms']} ms, "
          f"p99 {figures['read_p99_ms']} ms")
    print(f"  baseline (same bytes, no check):  {figures['baseline_per_s']} req/s, "
          f"p50 {figures['baseline_p50_ms']} ms, p99 {figures['baseline_p99_ms']} ms")
    print(f"  server CPU (all instances): {figures['server_cpu_ms_per_read']} ms a read, "
          f"{figures['server_cpu_ms_per_baseline']} ms a baseline request")
    print(f"  client CPU (this process, the {args.clients} clients): "
          f"{figures['client_cpu_ms_per_read']} ms a read, "
          f"{figures['client_cpu_ms_per_baseline']} ms a baseline request; the chain node "
          f"(anvil): {figures['node_cpu_ms_per_read']} ms a read, "
          f"{figures['node_cpu_ms_per_baseline']} ms a baseline request")
    print(f"  ratio: {figures['read_ratio']}  (targets, quiet: >= 1,000 reads/s, p99 <= 25 ms, "
          f"ratio >= 0.45, server CPU <= 1.2 ms a read)")
    print(f"  threshold reads ({figures['threshold']} proxy nodes, to the 2nd answer): "
          f"{figures['threshold_reads_per_s']} reads/s, p50 {figures['threshold_read_p50_ms']} "
          f"ms, p99 {figures['threshold_read_p99_ms']} ms, the nodes' CPU "
          f"{figures['threshold_node_cpu_ms_per_read']} ms a read  (targets: >= 300 reads/s, "
          f"p99 <= 60 ms)")
    print(f"revocation: {figures['revocation_reads_on_or_after_block']} reads served on a head "
          f"at/after the revoking block; {figures['revocation_requests_before_refusal']} reads "
          f"sent after the confirmed revoke before the first refusal (target <= 1)")
    if figures["audit_100k_s"] is not None:
        print(f"audit of 100,000 receipts: {figures['audit_100k_s']} s (target <= 10 s)")
    print(f"load average at the start: {figures['load_average_start']}, at the end: "
          f"{figures['load_average_end']} (figures under load are not comparable with the "
          "quiet-machine targets)")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
