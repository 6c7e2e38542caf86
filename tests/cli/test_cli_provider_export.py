"""A provider's bulk read against the running stack (real API, anvil, proxy): a whole Synthea
patient imported (batch-registered), every scope granted, then ``kizuna provider export`` —
every resource decrypts to exactly the canonical JSON the importer made of it, each record its
own signed request with its own receipt; and ``ProviderClient.read_many`` over a listing taken
before a scope was revoked: that scope's records come back refused, every other record is read
and nothing is lost."""

from __future__ import annotations

import json
from pathlib import Path

from roles_stack import Stack
from test_cli_export import synthea_baby  # noqa: F401 (the module's Synthea patient fixture)

from kizuna.cli.patient import expand_scopes
from kizuna.errors import AccessDenied
from kizuna.storage.fhir.importer import import_bundle

PROVIDER = "dr-tanaka"


def _reads(stack: Stack, patient: str) -> int:
    """How many reads of ``patient``'s records there are (what `patient reads` lists: its own
    tests in test_cli_patient), in process."""
    with stack.patient(patient) as client:
        return len(client.reads())


def test_provider_export_reads_every_record_with_its_own_receipt(
        stack: Stack, new_patient: str, tmp_path: Path, synthea_baby: Path) -> None:  # noqa: F811
    expected = [e.content for e in import_bundle(json.loads(synthea_baby.read_text("utf-8")))]
    stack.ok("patient", "import", str(synthea_baby), "--key", new_patient)
    me = stack.address(new_patient)
    # set-up in process: every scope of the history granted, as `patient grant` grants them
    with stack.patient(new_patient) as patient:
        labels = sorted({str(label) for _record, label in patient.labelled_records()
                         if label is not None})
    stack.grant(new_patient, PROVIDER, *labels, days=1)
    reads_before = _reads(stack, new_patient)

    out = tmp_path / "provider.ndjson"
    summary = stack.ok("provider", "export", me, "--format", "ndjson", "-o", str(out),
                       "--key", PROVIDER, "--json").json()
    assert sorted(out.read_bytes().splitlines()) == sorted(expected)  # every one, byte for byte
    assert summary["records"] == summary["receipts"] == summary["resources"] == len(expected)
    assert summary["refused"] == []
    assert out.stat().st_mode & 0o777 == 0o600
    assert _reads(stack, new_patient) - reads_before == len(expected)  # one receipt a record

    bundle_out = tmp_path / "provider.json"
    stack.ok("provider", "export", me, "-o", str(bundle_out), "--key", PROVIDER)
    bundle = json.loads(bundle_out.read_bytes())
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert len(bundle["entry"]) == len(expected)

    # a listing taken before a scope is revoked: that scope's records are refused (reported,
    # exit code 4 from the CLI would say so), every other record still read and correct
    with stack.provider(PROVIDER) as client:
        listed = client.records(patient=me)
        revoked = "Condition"
        with stack.patient(new_patient) as patient:  # as `patient revoke PROVIDER Condition`
            for label in expand_scopes([revoked]):
                if label in labels:
                    patient.revoke(stack.address(PROVIDER), label)
        progress: list[tuple[int, int]] = []
        results = list(client.read_many(me, listed, workers=3,
                                        on_progress=lambda d, t: progress.append((d, t))))
    assert [bytes(r.record.record_id) for r in results] == [bytes(r.record_id) for r in listed]
    assert progress == [(i, len(listed)) for i in range(1, len(listed) + 1)]
    refused = [r for r in results if r.refused is not None]
    read = [r for r in results if r.refused is None]
    conditions = {c for c in expected if json.loads(c)["resourceType"] == "Condition"}
    assert refused and all(isinstance(r.refused, AccessDenied) for r in refused)
    assert len(refused) == len(conditions)
    assert sorted(r.content for r in read) == sorted(set(expected) - conditions)  # type: ignore[type-var]
    assert len({r.grant.request_id for r in read if r.grant is not None}) == len(read)
