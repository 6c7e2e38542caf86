"""``kizuna patient import --from-fhir`` (kizuna/client/fhir_pull.py + the import pipeline)
against a real FHIR R4 server: dr-X's FHIR proxy serving patient A's granted Synthea records.
Patient B pulls them (``$everything``, several pages), imports them in one batch; a second run
imports nothing; a new version of one resource on A's side is imported once; the per-type search
path names the same records; a bearer token is sent (an auth-checking reverse proxy in front of
the FHIR proxy: 401 without it, the env var named; 403 with a wrong one); a server that is not
FHIR, a ``next`` loop, a page too large and an unreachable server fail with clear errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from proxy_stack import GRANTED, Story

from kizuna.client import fhir_pull
from kizuna.client.fhir_pull import (
    TOKEN_ENV,
    FhirPuller,
    FhirServerError,
    FhirServerUnreachable,
    PullResult,
    pull_source,
    pulled_record_id,
)
from kizuna.client.importer import Importer, ImportResult
from kizuna.client.patient import PatientClient
from kizuna.errors import AccessDenied
from kizuna.fhirproxy import GrantedCache, ProxyServer


@contextmanager
def proxy_of(story: Story) -> Iterator[str]:
    with ProxyServer(GrantedCache(story.provider, ttl_s=0), port=0) as server:
        yield server.url


def import_pulled(client: PatientClient, pulled: PullResult, journal: Path) -> ImportResult:
    source = pull_source(pulled, client.keys.wallet.import_id_key().reveal())
    return Importer(client, journal_root=journal, workers=1).run([source])


def test_a_patient_imports_another_patients_granted_records_once(story: Story,
                                                                  tmp_path: Path) -> None:
    granted = story.resources(*GRANTED)
    b = story.stack.patient()
    with proxy_of(story) as url:
        with FhirPuller(url, page_size=20) as puller:
            pulled = puller.pull()
        assert pulled.everything and pulled.pages > 2
        types = sorted(p.resource_type for p in pulled.resources if p.resource_type != "Patient")
        assert types == sorted(r["resourceType"] for r in granted)
        assert [p.resource_type for p in pulled.resources].count("Patient") == 1

        first = import_pulled(b, pulled, tmp_path)
        assert first.registered == len(pulled.resources) and len(first.batches) == 1
        assert first.already_registered == 0
        mine = {bytes(r.record_id) for r in b.records()}
        key = b.keys.wallet.import_id_key().reveal()
        assert {bytes(pulled_record_id(key, p.source)) for p in pulled.resources} == mine
        one = pulled.resources[-1]
        stored = json.loads(b.read_own(pulled_record_id(key, one.source)))
        assert stored["meta"]["source"] == f"{url}/{one.resource_type}/{one.id}/_history/" \
                                           f"{one.version}"
        assert stored["id"] == one.id

        with FhirPuller(url, page_size=20) as puller:
            again = import_pulled(b, puller.pull(), tmp_path)
        assert again.registered == 0 and again.already_registered == len(pulled.resources)

        # A new version of one lab result on A's side: the proxy serves it with a new
        # versionId; B imports that one resource, once.
        lab = next(e for e in story.entries
                   if str(e.source.scope_label) == "Observation:laboratory")
        changed = json.loads(lab.source.content)
        changed["status"] = "amended"
        story.patient.replace_record(lab.record.record_id,
                                     json.dumps(changed).encode(),
                                     label="Observation:laboratory",
                                     content_type="application/fhir+json")
        with FhirPuller(url, page_size=50) as puller:
            newer = puller.pull()
        updated = next(p for p in newer.resources if p.id == changed["id"])
        assert updated.resource["status"] == "amended"
        assert updated.version != next(p for p in pulled.resources if p.id == changed["id"]).version
        third = import_pulled(b, newer, tmp_path)
        assert third.registered == 1
        assert third.already_registered == len(newer.resources) - 1
        with FhirPuller(url, page_size=50) as puller:
            assert import_pulled(b, puller.pull(), tmp_path).registered == 0

        # A search per type (no $everything) finds the same versions: nothing new.
        with FhirPuller(url, page_size=7) as puller:
            searched = puller.pull(everything=False,
                                   types=["Patient", "Observation", "Immunization"])
        assert not searched.everything and searched.pages > 3
        assert {p.source for p in searched.resources} == {p.source for p in newer.resources}
        assert import_pulled(b, searched, tmp_path).registered == 0
    assert len(b.records()) == len(pulled.resources) + 1


class _AuthProxy(BaseHTTPRequestHandler):
    """A reverse proxy that wants ``Authorization: Bearer <token>`` (401 without, 403 wrong)
    and forwards to the FHIR proxy, its links rewritten to its own address."""

    upstream = ""
    token = ""
    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization")
        self.seen.append(auth)
        if auth is None or auth != f"Bearer {self.token}":
            self._send(401 if auth is None else 403, b'{"resourceType":"OperationOutcome",'
                       b'"issue":[{"severity":"error","code":"login"}]}')
            return
        answer = httpx.get(self.upstream + self.path, timeout=60)
        own = f"http://{self.headers['Host']}".encode()
        self._send(answer.status_code, answer.content.replace(self.upstream.encode(), own))

    def _send(self, status: int, body: bytes, kind: str = "application/fhir+json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_bearer_token_is_sent_and_its_absence_named(story: Story) -> None:
    with proxy_of(story) as upstream:
        class Auth(_AuthProxy):
            seen: ClassVar[list[str | None]] = []

        Auth.upstream, Auth.token = upstream, "s3cret"
        handler = Auth
        with serving(handler) as url:
            with FhirPuller(url) as puller, pytest.raises(AccessDenied) as missing:
                puller.pull()
            assert f"put it in ${TOKEN_ENV}" in str(missing.value)
            with FhirPuller(url, token="wrong") as puller, \
                    pytest.raises(AccessDenied) as wrong:
                puller.pull()
            assert f"the token in ${TOKEN_ENV} was refused (HTTP 403)" in str(wrong.value)
            assert "wrong" not in str(wrong.value)
            with FhirPuller(url, token="s3cret", page_size=25) as puller:
                pulled = puller.pull()
            assert pulled.pages > 1 and all(p.source.startswith(url) for p in pulled.resources)
            assert handler.seen[-pulled.pages:] == ["Bearer s3cret"] * pulled.pages


class _Misbehaving(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/html"):
            body, kind = b"<html><body>Welcome</body></html>", "text/html"
        elif self.path.startswith("/big"):
            body, kind = json.dumps({"resourceType": "CapabilityStatement",
                                     "padding": "x" * 50_000}).encode(), "application/fhir+json"
        elif self.path.endswith("/metadata"):
            body, kind = json.dumps({"resourceType": "CapabilityStatement", "rest": [
                {"mode": "server", "resource": [{"type": "Observation", "searchParam": [
                    {"name": "patient", "type": "reference"}]}]}]}).encode(), "application/json"
        else:  # every search page's next link is the page itself
            body, kind = json.dumps({"resourceType": "Bundle", "type": "searchset",
                                     "link": [{"relation": "next", "url": "http://"
                                               f"{self.headers['Host']}{self.path}"}],
                                     "entry": []}).encode(), "application/fhir+json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def test_servers_that_are_not_fhir_loop_or_are_down_are_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fhir_pull, "MAX_PAGE_BYTES", 20_000)  # a "huge" page, made small
    with serving(_Misbehaving) as url:
        with FhirPuller(url + "/big") as puller, pytest.raises(FhirServerError) as big:
            puller.pull(patient_id="p1")
        assert "more than 20,000 bytes in one page" in str(big.value)
        with FhirPuller(url + "/html") as puller, pytest.raises(FhirServerError) as html:
            puller.pull(patient_id="p1")
        assert "text/html, not FHIR JSON" in str(html.value)
        with FhirPuller(url + "/fhir") as puller, pytest.raises(FhirServerError) as loop:
            puller.pull(patient_id="p1")
        assert "leads back to a page already read" in str(loop.value)
    with FhirPuller(url) as puller, pytest.raises(FhirServerUnreachable) as down:
        puller.pull(patient_id="p1")
    assert f"cannot reach the FHIR server at {url}" in str(down.value)
