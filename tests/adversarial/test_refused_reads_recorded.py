"""Finding 12: refused reads leave a trace. A provider probing a patient who never granted
anything (record ids are public on-chain) is shown to the patient as an attempted read, to the
auditor in the log and the FHIR export — while the prober's answer stays what it was, and a
thousand probes cannot fill the disk (rate limit: rows per provider, patient and hour, the rest
only counted).

Real stack: anvil, the API under uvicorn (tests/adversarial/conftest.py), real SQLite."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from participants import HttpPatient, People, hx

from kizuna.chain.signers import LocalKeySigner
from kizuna.config import Settings
from kizuna.storage.fhir.validate import validate

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test's
patient and prober are its own, and the database is read for that patient's rows only."""

LAB = "Observation:laboratory"


def _db_file(settings: Settings) -> Path:
    return Path(settings.database_url.split(":///", 1)[1])


def _table(settings: Settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(_db_file(settings)) as conn:
        return list(conn.execute(sql, params))


def _no_grant_record(people: People) -> tuple[HttpPatient, bytes]:
    """A patient with one record and no grant to anybody."""
    sealed = people.patient.add(b'{"resourceType":"Observation","status":"final"}', label=LAB,
                                content_type="application/fhir+json")
    return people.patient, bytes(sealed.record_id)


def test_a_probe_is_shown_to_the_patient_and_the_auditor(people: People,
                                                          settings: Settings) -> None:
    patient, record_id = _no_grant_record(people)
    prober = people.provider

    probe = prober.request_read(patient.address, record_id)
    assert probe.status_code == 403, probe.text
    assert probe.json()["error"]["kind"] == "NoGrant"
    assert "cfrags" not in probe.text

    # Not recorded: a signature that is not the provider's proves nothing about who asked.
    forged = prober.read_request(patient.address, record_id, signer=LocalKeySigner.generate())
    assert prober.post("/provider/reads", forged).status_code == 403
    # An unknown record named as the patient's: recorded against the named patient.
    unknown = prober.request_read(patient.address, os.urandom(32))
    assert unknown.status_code == 404, unknown.text

    # The patient: the receipts' list is unchanged, the attempts are beside it.
    assert patient.get("/patient/reads").json() == []
    tried = patient.get("/patient/reads/attempted")
    assert tried.status_code == 200, tried.text
    attempts = tried.json()["attempts"]
    assert [(a["provider"], a["reason"]) for a in attempts] == [
        (prober.address, "no-grant"), (prober.address, "unknown-record")]
    assert attempts[0]["record_id"] == hx(record_id)
    assert attempts[0]["patient"] == patient.address
    assert tried.json()["suppressed"] == []
    # nothing but who, whose, which record, why, when, at which head
    assert set(attempts[0]) == {"seq", "provider", "patient", "record_id", "reason",
                                "refused_at", "head_block"}

    # Another patient sees none of it; the prober cannot read the patient's list.
    other = HttpPatient(signer=LocalKeySigner.generate(), chain=patient.chain,
                        http=patient.http).login()
    assert other.get("/patient/reads/attempted").json()["attempts"] == []

    # The auditor: log entries and FHIR AuditEvents with a failure outcome.
    log = people.auditor.get("/auditor/log", params={"patient": patient.address})
    assert log.status_code == 200, log.text
    refused = [e for e in log.json() if e["kind"] == "refused-read"]
    assert [(e["provider"], e["details"]["reason"]) for e in refused] == [
        (prober.address, "no-grant"), (prober.address, "unknown-record")]
    assert refused[0]["record_id"] == hx(record_id)
    bundle = people.auditor.get("/auditor/export", params={"patient": patient.address}).json()
    events = [e["resource"] for e in bundle["entry"]
              if e["resource"]["resourceType"] == "AuditEvent"]
    assert len(events) == 2 and {e["outcome"] for e in events} == {"4"}
    assert events[0]["agent"][0]["who"]["identifier"]["value"] == prober.address
    assert any(d == {"type": "refusal-reason", "valueString": "no-grant"}
               for d in events[0]["entity"][0]["detail"])
    validate(bundle)

    # In the database: the two rows, no request body, no signature.
    # (of this patient's: the module's tests share one service, tests/api/apienv.py)
    assert _table(settings, "SELECT provider, patient, reason FROM refused_reads "
                  "WHERE patient = ? ORDER BY seq", patient.address) \
        == [(prober.address, patient.address, "no-grant"),
            (prober.address, patient.address, "unknown-record")]


def test_a_thousand_probes_write_at_most_the_rate_limit(people: People,
                                                        settings: Settings) -> None:
    patient, record_id = _no_grant_record(people)
    prober = people.provider
    limit = settings.refused_reads_per_patient_hour
    probes = 1000
    started = int(time.time())
    answers: set[tuple[int, bytes]] = set()
    with httpx.Client(base_url=str(prober.http.base_url), headers=prober.auth,
                      timeout=60) as http:
        for _ in range(probes):
            answer = http.post("/provider/reads", json=prober.read_request(patient.address,
                                                                           record_id))
            answers.add((answer.status_code, answer.content))
    ended = int(time.time())
    # Every probe had the same answer, recorded or only counted: byte for byte.
    assert len(answers) == 1, answers
    ((status, body),) = answers
    assert status == 403 and b'"NoGrant"' in body

    hours = ended // 3600 - started // 3600 + 1  # the probes may straddle an hour
    rows = _table(settings, "SELECT COUNT(*) FROM refused_reads WHERE patient = ?",
                  patient.address)[0][0]
    assert limit <= rows <= limit * hours
    counted = _table(settings, "SELECT SUM(recorded), SUM(suppressed) FROM refused_read_counts "
                     "WHERE patient = ?", patient.address)[0]
    assert counted == (rows, probes - rows)

    tried = patient.get("/patient/reads/attempted").json()
    assert len(tried["attempts"]) == rows
    assert sum(s["count"] for s in tried["suppressed"]) == probes - rows
    assert {s["provider"] for s in tried["suppressed"]} == {prober.address}

    log = people.auditor.get("/auditor/log", params={"provider": prober.address}).json()
    assert sum(e["details"]["count"] for e in log
               if e["kind"] == "refused-reads-suppressed") == probes - rows
    bundle = people.auditor.get("/auditor/export", params={"provider": prober.address}).json()
    counted = [e["resource"] for e in bundle["entry"]
               if any(d["type"] == "suppressed-count"
                      for x in e["resource"].get("entity", []) for d in x.get("detail", []))]
    assert sum(int(d["valueString"]) for r in counted for d in r["entity"][0]["detail"]
               if d["type"] == "suppressed-count") == probes - rows
    validate(bundle)
