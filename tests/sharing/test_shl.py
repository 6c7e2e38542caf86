"""SMART Health Links on a real anvil and the real API (uvicorn, a subprocess), read by
tests/sharing/shl_reader.py — a reader written from the IG that shares no code with Kizuna
(httpx + jwcrypto). A link to an IPS opens end to end (embedded and by location); wrong
passcodes count down and lock the link; expired and revoked links are refused; a U link is one
GET; every access is listed for the patient; hostile input gets a clear 4xx, never a 500."""

from __future__ import annotations

import ast
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apienv import ApiServer, ChainEnv
from sharing_env import patient_of
from shl_reader import ShlRefused, open_link, payload_of

from kizuna.client.http import ApiClient
from kizuna.client.patient import PatientClient
from kizuna.errors import NotFoundError
from kizuna.sharing.ips import build_ips
from kizuna.sharing.share import Shared, records_bundle, share

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def patient(api_server: ApiServer, chain_env: ChainEnv) -> Iterator[PatientClient]:
    with patient_of(api_server, chain_env, "0x" + os.urandom(32).hex()) as client:
        yield client


@pytest.fixture(scope="module")
def ips(synthea_resources: list[dict[str, Any]]) -> dict[str, Any]:
    return build_ips(synthea_resources)


def _api(client: PatientClient) -> ApiClient:
    api: ApiClient = client.service.api  # type: ignore[attr-defined]
    return api


def _share(client: PatientClient, server: ApiServer, documents: list[dict[str, Any]],
           **options: Any) -> Shared:
    return share(_api(client), server.url, documents, **options)


def _link(client: PatientClient, link_id: str) -> dict[str, Any]:
    (found,) = [x for x in _api(client).links() if x["link_id"] == link_id]
    return found


def test_the_reader_shares_no_code_with_kizuna() -> None:
    tree = ast.parse(Path(__file__).with_name("shl_reader.py").read_text("utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {str(node.module).split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert "kizuna" not in imported
    assert {"httpx", "jwcrypto"} <= imported


def test_a_link_to_an_ips_is_read_end_to_end_by_an_independent_reader(
        patient: PatientClient, api_server: ApiServer, ips: dict[str, Any]) -> None:
    expires = int(time.time()) + 3600
    made = _share(patient, api_server, [ips], label="My summary", expires_at=expires,
                  passcode="4711-kizuna")
    payload = payload_of(made.uri)
    assert made.uri.startswith("shlink:/")
    assert len(payload["key"]) == 43 and payload["flag"] == "P" and payload["v"] == 1
    assert payload["exp"] == expires and payload["label"] == "My summary"
    assert payload["url"] == f"{api_server.url}/shl/{made.link['link_id']}"

    with pytest.raises(ShlRefused) as wrong:
        open_link(made.uri, recipient="Dr. Wrong", passcode="0000")
    assert wrong.value.status == 401 and wrong.value.body["remainingAttempts"] == 4

    by_location = open_link(made.uri, recipient="Dr. Tanaka, Kyoto clinic",
                            passcode="4711-kizuna")
    embedded = open_link(made.uri, recipient="Aiko's phone", passcode="4711-kizuna",
                         embedded_length_max=10_000_000)
    assert by_location.contents == embedded.contents == [("application/fhir+json", ips)]

    link = _link(patient, made.link["link_id"])
    assert link["state"] == "active" and link["attempts_left"] == 4
    seen = [(a["recipient"], a["outcome"]) for a in reversed(link["accesses"])]
    assert seen == [("Dr. Wrong", "wrong-passcode"),
                    ("Dr. Tanaka, Kyoto clinic", "manifest"),
                    ("Dr. Tanaka, Kyoto clinic", "file"),
                    ("Aiko's phone", "manifest")]
    assert all(abs(a["at"] - time.time()) < 120 for a in link["accesses"])


def test_chosen_records_are_shared_the_same_way(
        patient: PatientClient, api_server: ApiServer,
        synthea_resources: list[dict[str, Any]]) -> None:
    chosen = [r for r in synthea_resources if r["resourceType"] == "Condition"][:3]
    made = _share(patient, api_server, [records_bundle(chosen)])
    assert "flag" not in payload_of(made.uri)  # no passcode, not direct: no flag
    (content,) = open_link(made.uri, recipient="family").contents
    assert [e["resource"] for e in content[1]["entry"]] == chosen


def test_wrong_passcodes_lock_the_link_for_everyone(
        patient: PatientClient, api_server: ApiServer, ips: dict[str, Any]) -> None:
    made = _share(patient, api_server, [ips], passcode="right-one", max_attempts=3)
    left = []
    for guess in ("guess-1", "guess-2", "guess-3"):
        with pytest.raises(ShlRefused) as caught:
            open_link(made.uri, recipient="prober", passcode=guess)
        assert caught.value.status == 401
        left.append(caught.value.body["remainingAttempts"])
    assert left == [2, 1, 0]
    with pytest.raises(ShlRefused) as locked:  # even the right passcode, from now on
        open_link(made.uri, recipient="Dr. Tanaka", passcode="right-one")
    assert locked.value.status == 404 and "locked" in locked.value.body["error"]["message"]
    with pytest.raises(ShlRefused) as no_passcode:
        open_link(made.uri, recipient="prober")
    assert no_passcode.value.status == 404
    link = _link(patient, made.link["link_id"])
    assert link["state"] == "locked" and link["attempts_left"] == 0
    assert [a["outcome"] for a in reversed(link["accesses"])] == [
        "wrong-passcode"] * 3 + ["refused-locked"] * 2


def test_expired_and_revoked_links_are_refused(
        patient: PatientClient, api_server: ApiServer, ips: dict[str, Any]) -> None:
    soon = _share(patient, api_server, [ips], expires_at=int(time.time()) + 2)
    assert open_link(soon.uri, recipient="early").contents
    time.sleep(max(0.0, soon.link["expires_at"] - time.time()) + 1.1)
    with pytest.raises(ShlRefused) as late:
        open_link(soon.uri, recipient="late")
    assert late.value.status == 404 and "expired" in late.value.body["error"]["message"]
    assert _link(patient, soon.link["link_id"])["state"] == "expired"

    made = _share(patient, api_server, [ips])
    http = httpx.Client(timeout=30)
    manifest = http.post(payload_of(made.uri)["url"], json={"recipient": "before"}).json()
    location = manifest["files"][0]["location"]
    _api(patient).revoke_link(made.link["link_id"])
    _api(patient).revoke_link(made.link["link_id"])  # twice is once
    with pytest.raises(ShlRefused) as revoked:
        open_link(made.uri, recipient="after")
    assert revoked.value.status == 404 and "revoked" in revoked.value.body["error"]["message"]
    assert http.get(location).status_code == 404  # a location handed out before ends too
    link = _link(patient, made.link["link_id"])
    assert link["state"] == "revoked"
    assert [a["outcome"] for a in reversed(link["accesses"])] == ["manifest",
                                                                   "refused-revoked"]


def test_another_patient_cannot_list_or_revoke_the_link(
        patient: PatientClient, api_server: ApiServer, chain_env: ChainEnv,
        ips: dict[str, Any]) -> None:
    made = _share(patient, api_server, [ips])
    with patient_of(api_server, chain_env, "0x" + os.urandom(32).hex()) as other:
        assert _api(other).links() == []
        with pytest.raises(NotFoundError):
            _api(other).revoke_link(made.link["link_id"])
    assert open_link(made.uri, recipient="still fine").contents


def test_a_direct_link_is_one_get(patient: PatientClient, api_server: ApiServer,
                                  ips: dict[str, Any]) -> None:
    made = _share(patient, api_server, [ips], direct=True)
    assert payload_of(made.uri)["flag"] == "U"
    assert open_link(made.uri, recipient="kiosk").contents == [("application/fhir+json", ips)]
    answer = httpx.post(payload_of(made.uri)["url"], json={"recipient": "x"}, timeout=30)
    assert answer.status_code == 422 and "direct" in answer.text
    assert [a["outcome"] for a in _link(patient, made.link["link_id"])["accesses"]] == [
        "refused-direct-only", "direct"]


def _jwe(header: str = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0") -> str:
    return f"{header}..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"


def test_hostile_input_gets_clear_errors_never_a_crash(
        patient: PatientClient, api_server: ApiServer, ips: dict[str, Any]) -> None:
    made = _share(patient, api_server, [ips], passcode="secret-1")
    url = payload_of(made.uri)["url"]
    token = _api(patient).session.token  # type: ignore[union-attr]
    auth = {"Authorization": f"Bearer {token}"}
    http = httpx.Client(base_url=api_server.url, timeout=30)
    answers: list[httpx.Response] = []

    def expect(status: int, response: httpx.Response, *words: str) -> None:
        answers.append(response)
        assert response.status_code == status, response.text
        for word in words:
            assert word in response.text, response.text

    # the reader's side
    expect(422, http.post(url, content=b"{not json", headers={
        "Content-Type": "application/json"}))
    expect(422, http.post(url, json=["recipient"]))
    expect(422, http.post(url, json={}), "recipient")
    expect(422, http.post(url, json={"recipient": "x" * 5000}), "recipient")
    expect(422, http.post(url, json={"recipient": "a", "embeddedLengthMax": -1}),
           "embeddedLengthMax")
    expect(422, http.post(url, json={"recipient": "a", "passcode": 7}), "passcode")
    expect(413, http.post(url, content=b'{"recipient":"' + b"x" * (2 << 20) + b'"}',
                          headers={"Content-Type": "application/json"}))
    expect(404, http.post("/shl/" + "A" * 43, json={"recipient": "a"}), "no such link")
    expect(422, http.post("/shl/" + "A" * 65, json={"recipient": "a"}))
    expect(404, http.get(f"/shl/{made.link['link_id']}/files/{'B' * 43}"), "expired")
    expect(404, http.get(f"/shl/{made.link['link_id']}/files/..%2F..%2Fetc"))
    expect(422, http.get(f"/shl/{made.link['link_id']}"), "recipient")
    expect(422, http.get(f"/shl/{made.link['link_id']}", params={"recipient": "a"}),
           "not a direct")

    # the patient's side
    good = {"files": [{"content_type": "application/fhir+json", "jwe": _jwe()}]}
    expect(201, http.post("/patient/links", json=good, headers=auth))
    expect(401, http.post("/patient/links", json=good))
    for bad, words in [
        ({"files": []}, ("files",)),
        ({"files": [{"content_type": "text/html", "jwe": _jwe()}]}, ("content_type",)),
        ({"files": [{"content_type": "application/fhir+json", "jwe": "a.b.c.d"}]},
         ("files[0].jwe", "compact JWE")),
        ({"files": [{"content_type": "application/fhir+json",
                     "jwe": _jwe("eyJhbGciOiJSU0EtT0FFUCJ9")}]}, ("files[0].jwe", "dir")),
        ({"files": [{"content_type": "application/fhir+json", "jwe": "!!!!.x.y.z.w"}]},
         ("files[0].jwe", "base64url")),
        ({**good, "passcode": "abc"}, ("passcode",)),
        ({**good, "expires_at": 1000}, ("expires_at", "past")),
        ({**good, "max_attempts": 0}, ("max_attempts",)),
        ({**good, "label": "x" * 81}, ("label",)),
        ({"files": good["files"] * 17}, ("files",)),
        ({**good, "direct": True, "passcode": "abcd"}, ("direct",)),
        ({**good, "key": "the service never takes a key"}, ("key",)),
    ]:
        expect(422, http.post("/patient/links", json=bad, headers=auth), *words)
    expect(404, http.delete("/patient/links/" + "C" * 43, headers=auth), "no link")
    assert all(r.status_code < 500 for r in answers)
    # the link itself still answers the right passcode after all that
    assert open_link(made.uri, recipient="after the noise", passcode="secret-1").contents


def test_a_patient_has_at_most_so_many_live_links(api_server: ApiServer,
                                                  chain_env: ChainEnv) -> None:
    from kizuna.sharing.links import MAX_LIVE_LINKS

    body = {"files": [{"content_type": "application/fhir+json", "jwe": _jwe()}]}
    with patient_of(api_server, chain_env, "0x" + os.urandom(32).hex()) as client:
        api = _api(client)
        made = [api.create_link(body) for _ in range(MAX_LIVE_LINKS)]
        http = httpx.Client(base_url=api_server.url, timeout=30)
        auth = {"Authorization": f"Bearer {api.session.token}"}  # type: ignore[union-attr]
        over = http.post("/patient/links", json=body, headers=auth)
        assert over.status_code == 403 and "live links" in over.text
        api.revoke_link(made[0]["link_id"])  # an ended link no longer counts
        assert http.post("/patient/links", json=body, headers=auth).status_code == 201
