"""Issue 16's sharing figures, run by benchmarks/phr.py (``--only sharing`` for these alone).

* ``ips_build_s`` (target <= 5): a Synthea patient of at least ``--ips-resources`` (5,000)
  resources (seed 7, 8, ... aged 70-80 until one is that large), already decrypted in memory:
  :func:`kizuna.sharing.ips.build_ips` — choose the entries, rewrite references, the narrative,
  then the IPS checks and Kizuna's full FHIR R4 validation of the document. Best of 3.
  ``ips_pdf_s``: the PDF of that summary. (Reading the records back is the bulk export's
  figure, ``benchmarks/export.py``.)
* ``shl_open_ms_p50`` (target <= 100) / ``shl_open_ms_p95``: a reader opening a link to that
  IPS over HTTP, the IG's way — ``POST`` the manifest (recipient), ``GET`` the file's
  ``location``, decrypt the JWE (jwcrypto, not Kizuna's code) — against the real API app
  (uvicorn on 127.0.0.1, SQLite, embedded store, anvil), ``--opens`` times, each recorded in
  the access log. ``shl_open_passcode_ms_p50``: the same for a ``P`` link (the scrypt check of
  the passcode is in it, by design slow).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from eth_account import Account
from jwcrypto import jwe, jwk

from kizuna.api.app import create_app
from kizuna.chain.connection import connect, web3_for
from kizuna.chain.deploy import deploy
from kizuna.chain.index.store import EventIndex
from kizuna.chain.localnode import LocalNode, dev_private_keys, free_port
from kizuna.config import Settings
from kizuna.db import Database
from kizuna.services.context import ServiceContext
from kizuna.sharing import links
from kizuna.sharing.ips import build_ips, ips_pdf
from kizuna.sharing.shl import b64url, encrypt_jwe, new_key
from kizuna.storage.embedded import EmbeddedStore
from kizuna.types import checksum_address


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def large_patient(workdir: Path, at_least: int) -> list[dict[str, Any]]:
    """The resources of the first Synthea patient (seed 7, 8, ...) with ``at_least``."""
    for seed in range(7, 40):
        out = workdir / f"synthea-ips-{seed}"
        done = subprocess.run([sys.executable, "-m", "synthea.cli", "-p", "1", "-s", str(seed),
                               "-a", "70-80", "-r", "20240101", "-o", str(out)],
                              capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise SystemExit(f"synthea failed:\n{done.stdout}\n{done.stderr}")
        bundle = json.loads(next((out / "fhir").glob("*.json")).read_text("utf-8"))
        resources = [e["resource"] for e in bundle["entry"]]
        if len(resources) >= at_least:
            return resources
    raise SystemExit(f"no Synthea patient of {at_least} resources in seeds 7-39")


def _open(client: httpx.Client, url: str, key: str, passcode: str | None) -> float:
    started = time.perf_counter()
    body = {"recipient": "benchmark reader"} | ({"passcode": passcode} if passcode else {})
    manifest = client.post(url, json=body)
    assert manifest.status_code == 200, manifest.text
    (item,) = manifest.json()["files"]
    token = client.get(item["location"])
    assert token.status_code == 200, token.text
    message = jwe.JWE()
    message.deserialize(token.text, key=jwk.JWK(kty="oct", k=key))
    elapsed = (time.perf_counter() - started) * 1000
    assert json.loads(message.payload)["type"] == "document"
    return elapsed


def run(root: Path, *, resources_wanted: int, opens: int) -> dict[str, Any]:
    figures: dict[str, Any] = {"sharing_load_average_1m": round(os.getloadavg()[0], 2)}
    say(f"generating a Synthea patient of >= {resources_wanted} resources...")
    resources = large_patient(root, resources_wanted)
    figures["ips_patient_resources"] = len(resources)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        bundle = build_ips(resources)
        times.append(time.perf_counter() - started)
    figures["ips_build_s"] = round(min(times), 3)
    figures["ips_entries"] = len(bundle["entry"])
    started = time.perf_counter()
    pdf = ips_pdf(bundle)
    figures["ips_pdf_s"] = round(time.perf_counter() - started, 3)
    figures["ips_pdf_bytes"] = len(pdf)

    with LocalNode(log_path=root / "anvil-shl.log") as node:
        keys = dev_private_keys(2)
        deployment = deploy(web3_for(node.rpc_url), Account.from_key(keys[0]), directory=None)
        chain = connect(node.rpc_url, deployment)
        index = EventIndex.for_chain(chain, root / "index-shl.sqlite")
        db = Database.open(f"sqlite:///{root / 'service-shl.db'}")
        ctx = ServiceContext.build(chain=chain, index=index,
                                   store=EmbeddedStore(root / "store-shl", fsync=False), db=db)
        port = free_port()
        settings = Settings(environment="development", rpc_url=node.rpc_url,
                            database_url=f"sqlite:///{root / 'service-shl.db'}",
                            store="embedded", store_path=root / "store-shl", api_port=port,
                            siwe_domain=f"127.0.0.1:{port}", siwe_uri=f"http://127.0.0.1:{port}")
        server = uvicorn.Server(uvicorn.Config(create_app(settings, ctx=ctx), host="127.0.0.1",
                                               port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            while not server.started:
                time.sleep(0.05)
            base = f"http://127.0.0.1:{port}"
            patient = checksum_address(Account.from_key(keys[1]).address)
            for name, passcode in (("shl_open", None), ("shl_open_passcode", "bench-4711")):
                key = new_key()
                token = encrypt_jwe(json.dumps(bundle).encode(), key,
                                    content_type="application/fhir+json")
                info = links.register(ctx, patient, files=[links.NewFile(
                    "application/fhir+json", token)], label="benchmark", expires_at=None,
                    passcode=passcode, max_attempts=5)
                url = f"{base}/shl/{info.link_id}"
                with httpx.Client(timeout=60) as client:
                    _open(client, url, b64url(key), passcode)  # warm
                    count = opens if passcode is None else max(10, opens // 5)
                    samples = sorted(_open(client, url, b64url(key), passcode)
                                     for _ in range(count))
                figures[f"{name}_ms_p50"] = round(statistics.median(samples), 2)
                if passcode is None:
                    figures["shl_open_ms_p95"] = round(samples[int(0.95 * (len(samples) - 1))],
                                                       2)
                    accesses = links.links_of(ctx, patient)[0].accesses
                    assert len(accesses) == 2 * (count + 1), len(accesses)
            figures["shl_jwe_bytes"] = len(token)
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            db.dispose()
            index.close()
    return figures


__all__ = ["run"]
