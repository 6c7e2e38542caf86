"""The import pipeline (kizuna/client/importer.py) against a real anvil and the real API: a whole
Synthea patient imported in one transaction and read back — as the patient and as a provider
granted every scope — byte for byte the canonical JSON of the input (every resource, no
sampling); a run killed half way (a real process, SIGKILL) finished by the next with each
resource registered once; a finished import run again registers nothing; a bad Bundle is
refused naming the problem, with nothing staged or registered. The whole-patient read-back and
the kill use the ~1,100-resource patient; the paths whose behaviour does not depend on size
(NDJSON, a batch left in flight, the CLI) import the small Synthea infant (~190 resources),
each import of the large one costing several CPU-seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from apienv import ApiServer, ChainEnv

from kizuna.batch import BatchManifest
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.api_service import ApiService
from kizuna.client.export import read_many
from kizuna.client.http import ApiClient
from kizuna.client.importer import (
    Importer,
    Journal,
    bundle_source,
    import_digest,
    ndjson_source,
    record_id_of,
)
from kizuna.client.patient import PatientClient
from kizuna.client.provider import ProviderClient
from kizuna.storage.fhir.canonical import canonical_json

CHILD = Path(__file__).with_name("import_child.py")


@contextmanager
def patient_of(server: ApiServer, env: ChainEnv, key: str) -> Iterator[PatientClient]:
    """A patient over the real API (``ApiService``: what ``kizuna patient`` runs)."""
    signer = LocalKeySigner(key)
    api = ApiClient(server.url, timeout=120)
    api.login(signer)
    service = ApiService(api, env.chain)
    try:
        yield PatientClient(signer=signer, service=service, chain=env.chain)
    finally:
        service.close()


@pytest.fixture(scope="module")
def infant_file(synthea_patients: Callable[..., Path]) -> Path:
    """A whole small Synthea patient's Bundle file (the infant: first year, ~190 resources;
    shared by the run: read only)."""
    return synthea_patients("0-1")


@pytest.fixture
def infant_bundle(infant_file: Path) -> dict[str, Any]:
    """A fresh copy of ``infant_file`` as a ``dict`` (tests may break it)."""
    data: dict[str, Any] = json.loads(infant_file.read_text("utf-8"))
    return data


def expected_contents(bundle: dict[str, Any], raw: bytes,
                      client: PatientClient) -> dict[bytes, bytes]:
    """Record id → the canonical JSON of the input resource it must hold (ids as the pipeline
    names them: the patient's import key, the file's digest, the resource's index)."""
    source = bundle_source(bundle, raw, name="bundle.json")
    key = client.keys.wallet.import_id_key().reveal()
    return {bytes(record_id_of(key, source.digest, i)): canonical_json(entry["resource"])
            for i, entry in enumerate(bundle["entry"])}


def run_import(client: PatientClient, journal: Path, bundle: dict[str, Any],
               raw: bytes) -> Any:
    return Importer(client, journal_root=journal).run(
        [bundle_source(bundle, raw, name="bundle.json")])


def test_a_whole_synthea_patient_imports_in_one_transaction_and_reads_back_exactly(
        api_server: ApiServer, chain_env: ChainEnv, synthea_file: Path,
        synthea_bundle: dict[str, Any], tmp_path: Path) -> None:
    raw = synthea_file.read_bytes()
    key = "0x" + os.urandom(32).hex()
    with patient_of(api_server, chain_env, key) as client:
        expected = expected_contents(synthea_bundle, raw, client)
        assert len(expected) == len(synthea_bundle["entry"]) > 1000
        result = run_import(client, tmp_path / "imports", synthea_bundle, raw)

        assert result.resources == result.registered == len(expected)
        assert result.already_registered == 0
        assert 1 <= len(result.batches) <= 2
        assert sum(b.count for b in result.batches) == len(expected)
        for batch in result.batches:  # the chain holds each root, the patient's, its count
            status = chain_env.chain.ledger.batch_of(batch.root)
            assert status is not None
            assert (status.patient, status.count) == (client.address, batch.count)
        records = client.records()
        assert sorted(bytes(r.record_id) for r in records) == sorted(expected)

        # The patient's bulk read (what `kizuna patient export` runs): every record decrypts
        # and checks against the chain to exactly the canonical JSON of its input resource.
        opened = {bytes(o.record.record_id): o.content for o in read_many(client, records)}
        assert opened.keys() == expected.keys()
        wrong = [rid.hex() for rid, content in expected.items() if opened[rid] != content]
        assert wrong == []

        # A provider granted every scope the import used reads every record the same.
        labels = sorted(result.by_scope)
        signer = chain_env.new_signer()
        papi = ApiClient(api_server.url, timeout=120)
        pservice = ApiService(papi, chain_env.chain)
        provider = ProviderClient(signer=signer, service=pservice, chain=chain_env.chain)
        chain_env.add_provider(signer, provider.public_key.to_bytes())
        papi.login(signer)
        client.grant(provider.address, labels, expires_at=client.now() + 86_400)
        try:
            # The provider client has no bulk read: each record is its own signed request
            # and receipt; four on their way at once.
            with ThreadPoolExecutor(4) as pool:
                read = dict(zip(expected, pool.map(
                    lambda rid: provider.read(patient=client.address, record_id=rid),
                    expected), strict=True))
        finally:
            pservice.close()
        wrong = [rid.hex() for rid, content in expected.items() if read[rid] != content]
        assert wrong == []

        # Run again: everything is found registered; nothing is sealed, staged or sent.
        again = run_import(client, tmp_path / "imports", synthea_bundle, raw)
        assert (again.registered, again.staged, again.batches) == (0, 0, [])
        assert again.already_registered == len(expected)
        assert len(client.records()) == len(expected)


def test_an_import_killed_half_way_is_finished_by_the_next_run_each_resource_once(
        api_server: ApiServer, chain_env: ChainEnv, synthea_file: Path,
        synthea_bundle: dict[str, Any], tmp_path: Path) -> None:
    raw = synthea_file.read_bytes()
    key = "0x" + os.urandom(32).hex()
    journal = tmp_path / "imports"
    total = len(synthea_bundle["entry"])
    info = chain_env.deployment_file
    env = {**os.environ, "KIZUNA_TEST_KEY": key}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), api_server.url, chain_env.node.rpc_url, str(info),
         str(journal), str(synthea_file), "100"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    staged_when_killed = 0
    for line in child.stdout:
        if line.startswith("staged "):
            staged_when_killed = int(line.split()[1])
            if staged_when_killed * 2 >= total:
                child.send_signal(signal.SIGKILL)
                break
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    assert total // 2 <= staged_when_killed < total

    with patient_of(api_server, chain_env, key) as client:
        expected = expected_contents(synthea_bundle, raw, client)
        assert client.records() == []  # killed before any batch: nothing registered
        assert len(client.service.staged_ids(patient=client.address)) >= staged_when_killed

        result = run_import(client, journal, synthea_bundle, raw)
        assert result.registered == total
        assert result.reused_staged >= staged_when_killed  # not sealed or sent again
        assert result.staged == total - result.reused_staged
        assert len(result.batches) == 1
        records = client.records()
        ids = [bytes(r.record_id) for r in records]
        assert len(ids) == len(set(ids)) == total
        assert set(ids) == expected.keys()
        assert client.service.staged_ids(patient=client.address) == set()
        opened = {bytes(o.record.record_id): o.content for o in read_many(client, records)}
        assert all(opened[rid] == content for rid, content in expected.items())

        again = run_import(client, journal, synthea_bundle, raw)
        assert (again.registered, again.batches) == (0, [])
        assert len(client.records()) == total


def test_ndjson_files_import_as_one_batch_and_read_back_exactly(
        api_server: ApiServer, chain_env: ChainEnv, infant_bundle: dict[str, Any],
        tmp_path: Path) -> None:
    """The NDJSON path (records made by the importer in this process, not in the pool): a
    Synthea patient's resources as two NDJSON files, one batch, each read back exactly."""
    entries = infant_bundle["entry"]
    half = len(entries) // 2
    files = [tmp_path / "first.ndjson", tmp_path / "second.ndjson"]
    for path, part in zip(files, (entries[:half], entries[half:]), strict=True):
        path.write_text("".join(json.dumps(e["resource"]) + "\n" for e in part))
    key = "0x" + os.urandom(32).hex()
    with patient_of(api_server, chain_env, key) as client:
        result = Importer(client, journal_root=tmp_path / "imports").run([ndjson_source(files)])
        assert result.registered == len(entries) and len(result.batches) == 1
        records = client.records()
        contents = sorted(o.content or b"" for o in read_many(client, records))
        assert contents == sorted(canonical_json(e["resource"]) for e in entries)


class _Stop(Exception):
    """Stops an import in this process at a chosen point (a kill, without the process)."""


@pytest.mark.parametrize("on_chain", [False, True], ids=["signed-not-sent", "mined-answer-lost"])
def test_a_batch_left_in_flight_is_finished_by_the_next_run_with_one_transaction(
        api_server: ApiServer, chain_env: ChainEnv, infant_file: Path,
        infant_bundle: dict[str, Any], tmp_path: Path, on_chain: bool) -> None:
    """A run stopped after its batch was signed and journalled — before it was sent, or after
    the chain registered it but before the service answered (the relayer's transaction sent
    here by hand: the service never heard of it) — is finished by the next run: the same
    manifest, one transaction in all, every resource registered once."""
    raw = infant_file.read_bytes()
    key = "0x" + os.urandom(32).hex()
    journal_root = tmp_path / "imports"
    total = len(infant_bundle["entry"])
    source = bundle_source(infant_bundle, raw, name="bundle.json")

    def stop_when_all_staged(count: int) -> None:
        if count == total:
            raise _Stop

    with patient_of(api_server, chain_env, key) as client:
        with pytest.raises(_Stop):
            Importer(client, journal_root=journal_root, on_stage=stop_when_all_staged).run(
                [source])
        assert client.records() == []
        # What the pipeline does next, up to the point of the "kill": the manifest of the
        # staged records in order, signed, journalled.
        journal = Journal(journal_root, import_digest([source]), client.address)
        staged = journal.staged()
        id_key = client.keys.wallet.import_id_key().reveal()
        manifest = BatchManifest.of(staged[bytes(record_id_of(id_key, source.digest, i))].leaf
                                    for i in range(total))
        signed = client.sign_batch_registration(manifest)
        journal.save_batch(manifest, signed)
        sent = None
        if on_chain:
            sent = chain_env.chain.sender.transact(chain_env.chain.ledger.by_sig_call(signed),
                                                   chain_env.funder)
            status = chain_env.chain.ledger.batch_of(manifest.root)
            assert status is not None and status.count == total
        assert client.records() == []

        result = run_import(client, journal_root, infant_bundle, raw)
        assert [b.root for b in result.batches] == [manifest.root]  # the journalled batch
        assert result.registered == total and result.staged == 0
        assert result.already_registered == 0  # finished by this run, not before it
        if sent is not None:  # finished from the chain: no second transaction
            assert bytes(result.batches[0].tx_hash) == bytes(sent.tx_hash)
        ids = [bytes(r.record_id) for r in client.records()]
        assert len(ids) == len(set(ids)) == total
        assert not list(journal.directory.glob("batch-*"))  # nothing left in flight
        again = run_import(client, journal_root, infant_bundle, raw)
        assert (again.registered, again.batches) == (0, [])


def _cli(home: Path, server: ApiServer, env: ChainEnv,
         *args: str) -> subprocess.CompletedProcess[str]:
    """``kizuna`` in a subprocess against the test's API and chain, with its own home."""
    variables = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    variables.update(KIZUNA_HOME=str(home), KIZUNA_PASSPHRASE="import-test",
                     KIZUNA_RPC_URL=env.node.rpc_url,
                     KIZUNA_DEPLOYMENT_FILE=str(env.deployment_file))
    return subprocess.run([sys.executable, "-m", "kizuna.cli", *args, "--api", server.url],
                          env=variables, capture_output=True, text=True, timeout=600,
                          check=False)


def test_the_cli_imports_with_json_counts_and_refuses_a_bad_bundle_sending_nothing(
        api_server: ApiServer, chain_env: ChainEnv, infant_file: Path,
        infant_bundle: dict[str, Any], tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = "0x" + os.urandom(32).hex()
    key_file = tmp_path / "key.hex"
    key_file.write_text(key)
    made = subprocess.run([sys.executable, "-m", "kizuna.cli", "keys", "import", "pat",
                           "--private-key-file", str(key_file), "--light-kdf"],
                          env={**{k: v for k, v in os.environ.items()
                                  if not k.startswith("KIZUNA_")},
                               "KIZUNA_HOME": str(home), "KIZUNA_PASSPHRASE": "import-test"},
                          capture_output=True, text=True, timeout=120, check=False)
    assert made.returncode == 0, made.stderr

    # A Bundle with one bad resource deep in it (its last Observation, checked on the pool
    # while the key unlocks and the API signs in): refused with the resource's path and the
    # reason, exit 6, nothing staged or registered.
    broken = json.loads(json.dumps(infant_bundle))
    victim = max(i for i, e in enumerate(broken["entry"])
                 if e["resource"]["resourceType"] == "Observation")
    assert victim > len(broken["entry"]) // 2
    broken["entry"][victim]["resource"]["status"] = "maybe"
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps(broken))
    refused = _cli(home, api_server, chain_env, "patient", "import", str(bad), "--key", "pat")
    assert refused.returncode == 6, refused.stderr
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in refused.stderr
    assert "status" in lines[0] and "maybe" in lines[0], lines[0]
    assert f"entry[{victim}]" in lines[0], lines[0]
    with patient_of(api_server, chain_env, key) as client:
        assert client.records() == []
        assert client.service.staged_ids(patient=client.address) == set()

    done = _cli(home, api_server, chain_env, "patient", "import", str(infant_file),
                "--key", "pat", "--json")
    assert done.returncode == 0, done.stderr
    print(*(line for line in done.stderr.splitlines() if "import" in line), sep="\n")  # times
    summary = json.loads(done.stdout)
    total = len(infant_bundle["entry"])
    assert summary["imported"] == summary["registered"] == total
    assert sum(summary["by_scope"].values()) == total
    assert len(summary["batches"]) == len(summary["tx_hashes"]) == 1
    assert summary["batches"][0]["count"] == total
    receipt = chain_env.chain.w3.eth.get_transaction_receipt(summary["tx_hashes"][0])
    assert receipt["status"] == 1
    assert list((home / "imports").iterdir())  # the journal lives in the user's home

    again = _cli(home, api_server, chain_env, "patient", "import", str(infant_file),
                 "--key", "pat", "--json")
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert (rerun["registered"], rerun["already_registered"], rerun["batches"]) == (
        0, total, [])


def test_record_ids_are_the_patients_own_deterministic_and_unlinkable() -> None:
    """Same wallet, file and position: the same id (a re-run finds its records); another
    wallet, file or position: another id; the key behind them never prints."""
    from kizuna.crypto.wallet_keys import KeyDerivationDomain, derive_wallet_keys_with_private_key

    domain = KeyDerivationDomain(chain_id=31337,
                                 verifying_contract="0x" + "11" * 20)
    one = derive_wallet_keys_with_private_key("0x" + "01" * 32, domain=domain)
    again = derive_wallet_keys_with_private_key("0x" + "01" * 32, domain=domain)
    other = derive_wallet_keys_with_private_key("0x" + "02" * 32, domain=domain)
    key = one.import_id_key()
    assert key == again.import_id_key() and key != other.import_id_key()
    assert "ImportIdKey(" in repr(key) and key.reveal().hex() not in repr(key)
    digest = bytes(32)
    ids = {record_id_of(key.reveal(), digest, i) for i in range(1000)}
    assert len(ids) == 1000
    assert record_id_of(key.reveal(), digest, 7) == record_id_of(again.import_id_key().reveal(),
                                                                  digest, 7)
    assert record_id_of(key.reveal(), b"\x01" * 32, 7) != record_id_of(key.reveal(), digest, 7)
    assert (record_id_of(other.import_id_key().reveal(), digest, 7)
            != record_id_of(key.reveal(), digest, 7))
