"""Soak (slow, loopback only): at least 10,000 mixed requests from 16 concurrent clients against
the real API (``kizuna serve`` under uvicorn, in a subprocess on 127.0.0.1), bounded in count
and time (SOAK_REQUESTS, SOAK_BUDGET_S).

About half the requests are what a demo deployment sees (nonces, sign-ins, status, a provider's
signed reads of granted records and their content, refused reads, patients' record lists, the
auditor's log, uploads, anchoring); the rest are malformed at random: broken JSON, wrong types,
huge numbers, deep nesting, missing fields, bad signatures, bad tokens, malformed signed data,
junk envelopes, odd paths, methods and headers.

During the run the server's process must stay alive (its pid polled), its resident memory
(VmRSS, and VmHWM at the end) must stay under twice its idle figure measured after a warm-up,
no answer may be a 5xx (each is printed with its request), every valid request must get its
expected answer, and no request may time out. Afterwards the database and store must hold no
half-written state (:mod:`consistency`). The figures are printed whether the test passes or
not (CI's log shows them); docs/security.md quotes them.

The mix is random but seeded (KIZUNA_SOAK_SEED, default 15): a failure is replayable."""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from apienv import sign_text, siwe_message
from consistency import check_consistency
from participants import HttpProvider, hx

from kizuna.chain.signers import LocalKeySigner
from kizuna.config import Settings
from kizuna.tls import http_client

if TYPE_CHECKING:
    from adversarial_world import World

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

SOAK_REQUESTS = 10_000
SOAK_CLIENTS = 16
SOAK_BUDGET_S = 170.0
"""The soak stops at SOAK_REQUESTS requests or after this many seconds, whichever is first
(and then fails if it did not reach SOAK_REQUESTS)."""
WARMUP_REQUESTS = 400
SEED = int(os.environ.get("KIZUNA_SOAK_SEED", "15"))
CLIENT_TIMEOUT_S = 30.0
ZERO = "0x" + "00" * 32


@dataclass
class Call:
    """One HTTP request of the soak, described well enough to replay it."""

    kind: str  # "valid:<name>" or "malformed:<name>"
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    expect: frozenset[int] | None = None  # the statuses a valid request may get

    def describe(self) -> str:
        body = "" if self.content is None else (
            f" body[{len(self.content)}]={self.content[:200]!r}" if len(self.content) <= 320
            else f" body[{len(self.content)}]={self.content[:200]!r}...{self.content[-120:]!r}")
        headers = {k: (v if len(v) < 80 else v[:60] + f"...[{len(v)}]")
                   for k, v in self.headers.items() if k.lower() != "authorization"}
        auth = self.headers.get("Authorization", self.headers.get("authorization"))
        if auth is not None:
            headers["Authorization"] = auth[:24] + ("..." if len(auth) > 24 else "")
        return f"[{self.kind}] {self.method} {self.path[:300]} headers={headers}{body}"


@dataclass
class Tally:
    """What the clients saw (shared, under ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    timeouts: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # connection closed / reset
    in_flight: dict[int, Call] = field(default_factory=dict)

    @property
    def valid(self) -> int:
        return sum(n for k, n in self.kinds.items() if k.startswith("valid:"))

    @property
    def malformed(self) -> int:
        return sum(n for k, n in self.kinds.items() if k.startswith("malformed:"))


class Soak:
    """The request mix against one world. ``op(client, rng)`` sends one or two requests."""

    def __init__(self, world: World, tally: Tally) -> None:
        self.world = world
        self.tally = tally
        self.stop = threading.Event()
        self.skip: set[str] = set()
        self.uploading = threading.Lock()
        env = world.env
        self.tokens = {"alice": world.alice.token, "bob": world.bob.token,
                       "provider": world.provider.token, "auditor": world.auditor.token,
                       "stranger": world.stranger.token}
        self.wallets = [LocalKeySigner.generate() for _ in range(8)]
        self.granted = world.granted_records()
        self.stranger = HttpProvider(signer=world.stranger.signer, chain=env.chain,
                                     http=world.http)
        self.ungranted = [(p, s) for p in world.patients
                          for label, s in world.records[p.address].items()
                          if label not in world.granted[p.address]]
        alice = world.alice
        sid = alice.scope("Condition")
        ledger = env.chain.ledger
        typed = ledger.grant_typed_data(patient=alice.address, provider=world.provider.address,
                                        scope_id=sid, expires_at=alice.deadline() + 86400,
                                        deadline=alice.deadline())
        self.signed_grant: dict[str, Any] = typed.to_json()
        self.grant_signature = hx(alice.signer.sign_typed_data(typed))
        # a revoke of a pair with no grant: a malformed variant the service happens to relay
        # anyway (a field it does not use removed) changes nothing the valid requests need
        revoke = ledger.revoke_typed_data(patient=alice.address,
                                          provider=world.stranger.address, scope_id=sid,
                                          deadline=alice.deadline())
        self.signed_revoke: dict[str, Any] = revoke.to_json()
        self.revoke_signature = hx(alice.signer.sign_typed_data(revoke))
        weighted: list[tuple[Callable[[httpx.Client, random.Random], None], float]] = [
            (self.nonce, 6), (self.login, 2), (self.status, 6), (self.me, 3),
            (self.health, 3), (self.provider_read, 10), (self.refused_read, 2),
            (self.provider_records, 3), (self.patient_records, 5), (self.patient_reads, 2),
            (self.auditor_log, 3), (self.upload, 0.25), (self.anchor, 0.08),
            (self.bad_json, 6), (self.wrong_types, 5), (self.huge_numbers, 4),
            (self.deep_nesting, 3), (self.missing_fields, 4), (self.bad_signature, 5),
            (self.bad_token, 5), (self.bad_signed_data, 5), (self.junk_upload, 1),
            (self.odd_path, 4), (self.odd_method, 3), (self.odd_headers, 4),
        ]
        self.ops = [op for op, _ in weighted]
        self.weights = [w for _, w in weighted]

    # -- plumbing ---------------------------------------------------------------------------

    def pick(self, rng: random.Random) -> Callable[[httpx.Client, random.Random], None]:
        while True:
            op = rng.choices(self.ops, self.weights)[0]
            if op.__name__ not in self.skip:
                return op

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def send(self, client: httpx.Client, call: Call) -> httpx.Response | None:
        tally = self.tally
        me = threading.get_ident()
        with tally.lock:
            tally.sent += 1
            tally.kinds[call.kind] += 1
            tally.in_flight[me] = call
        try:
            answer = client.request(call.method, call.path, headers=call.headers,
                                    content=call.content)
        except httpx.TimeoutException as exc:
            with tally.lock:
                tally.timeouts.append(f"{type(exc).__name__}: {call.describe()}")
            return None
        except httpx.TransportError as exc:
            with tally.lock:
                tally.dropped.append(f"{type(exc).__name__}: {call.describe()}")
            return None
        finally:
            with tally.lock:
                tally.in_flight.pop(me, None)
        with tally.lock:
            tally.statuses[answer.status_code] += 1
            if answer.status_code >= 500:
                tally.server_errors.append(
                    f"{answer.status_code} {answer.text[:300]!r} <- {call.describe()}")
            elif call.expect is not None and answer.status_code not in call.expect:
                tally.unexpected.append(
                    f"{answer.status_code} {answer.text[:300]!r} <- {call.describe()}")
        return answer

    @staticmethod
    def json_call(kind: str, path: str, body: Any, headers: dict[str, str] | None = None,
                  *, expect: frozenset[int] | None = None, method: str = "POST") -> Call:
        return Call(kind, method, path, {"Content-Type": "application/json", **(headers or {})},
                    json.dumps(body).encode(), expect)

    # -- valid requests ---------------------------------------------------------------------

    def nonce(self, client: httpx.Client, rng: random.Random) -> None:
        self.send(client, Call("valid:nonce", "GET", "/auth/nonce", expect=frozenset({200})))

    def login(self, client: httpx.Client, rng: random.Random) -> None:
        answer = self.send(client, Call("valid:login-nonce", "GET", "/auth/nonce",
                                        expect=frozenset({200})))
        if answer is None or answer.status_code != 200:
            return
        info = answer.json()
        signer = rng.choice(self.wallets)
        text = siwe_message(address=signer.address, domain=info["domain"], uri=info["uri"],
                            chain_id=info["chain_id"], nonce=info["nonce"])
        self.send(client, self.json_call("valid:login", "/auth/login", {
            "message": text, "signature": sign_text(signer, text)}, expect=frozenset({200})))

    def status(self, client: httpx.Client, rng: random.Random) -> None:
        who = rng.choice(list(self.tokens))
        self.send(client, Call("valid:status", "GET", "/status", self.auth(who),
                               expect=frozenset({200})))

    def me(self, client: httpx.Client, rng: random.Random) -> None:
        who = rng.choice(list(self.tokens))
        self.send(client, Call("valid:me", "GET", "/auth/me", self.auth(who),
                               expect=frozenset({200})))

    def health(self, client: httpx.Client, rng: random.Random) -> None:
        path = rng.choice(["/health", "/version"])
        self.send(client, Call("valid:health", "GET", path, expect=frozenset({200})))

    def provider_read(self, client: httpx.Client, rng: random.Random) -> None:
        patient, sealed = rng.choice(self.granted)
        provider = self.world.provider
        body = provider.read_request(patient.address, sealed.record_id)
        answer = self.send(client, self.json_call("valid:read", "/provider/reads", body,
                                                  self.auth("provider"),
                                                  expect=frozenset({200})))
        if answer is not None and answer.status_code == 200 and rng.random() < 0.3:
            self.send(client, Call("valid:content", "GET", f"/content/{answer.json()['cid']}",
                                   self.auth("provider"), expect=frozenset({200})))

    def refused_read(self, client: httpx.Client, rng: random.Random) -> None:
        patient, sealed = rng.choice(self.ungranted)
        who = rng.choice(["provider", "stranger"])
        reader = self.world.provider if who == "provider" else self.stranger
        request = reader.read_request(patient.address, sealed.record_id)
        self.send(client, self.json_call("valid:refused-read", "/provider/reads", request,
                                         self.auth(who), expect=frozenset({403, 429})))

    def provider_records(self, client: httpx.Client, rng: random.Random) -> None:
        patient = rng.choice(self.world.patients)
        self.send(client, Call("valid:provider-records", "GET",
                               f"/provider/records?patient={patient.address}",
                               self.auth("provider"), expect=frozenset({200})))

    def patient_records(self, client: httpx.Client, rng: random.Random) -> None:
        self.send(client, Call("valid:patient-records", "GET", "/patient/records",
                               self.auth(rng.choice(["alice", "bob"])), expect=frozenset({200})))

    def patient_reads(self, client: httpx.Client, rng: random.Random) -> None:
        self.send(client, Call("valid:patient-reads", "GET", "/patient/reads",
                               self.auth(rng.choice(["alice", "bob"])), expect=frozenset({200})))

    def auditor_log(self, client: httpx.Client, rng: random.Random) -> None:
        query = rng.choice(["", f"?patient={self.world.alice.address}"])
        self.send(client, Call("valid:auditor-log", "GET", "/auditor/log" + query,
                               self.auth("auditor"), expect=frozenset({200})))

    def upload(self, client: httpx.Client, rng: random.Random) -> None:
        # one signed action of bob's at a time, as a wallet signs them: two in flight would
        # carry the same ledger nonce and the second be refused (rightly) as a bad signature
        with self.uploading:
            self._upload(client, rng)

    def _upload(self, client: httpx.Client, rng: random.Random) -> None:
        bob = self.world.bob
        sealed = bob.seal(os.urandom(rng.randrange(64, 4096)), label="Observation:laboratory",
                          content_type="application/fhir+json")
        self.send(client, Call(
            "valid:upload", "PUT", f"/patient/records/{hx(sealed.record_id)}",
            {**self.auth("bob"), "X-Kizuna-Scope-Id": hx(sealed.scope_id),
             "X-Kizuna-Registration": bob.registration(sealed),
             "Content-Type": "application/octet-stream"}, sealed.envelope,
            frozenset({201, 429})))

    def anchor(self, client: httpx.Client, rng: random.Random) -> None:
        self.send(client, self.json_call("valid:anchor", "/auditor/anchor", {},
                                         self.auth("auditor"), expect=frozenset({200, 429})))

    # -- malformed requests -----------------------------------------------------------------

    JSON_ROUTES = ("/auth/login", "/provider/reads", "/patient/grants", "/patient/revocations",
                   "/patient/revocations/all", "/patient/scope-keys", "/patient/emergency-kits",
                   "/wallet/relay", "/wallet/prepare/grant", "/wallet/prepare/register-record",
                   "/wallet/prepare/revoke", "/patient/inbox-key", "/auditor/reviews",
                   "/auditor/anchor", "/wallet/confirm/break-glass")

    def any_auth(self, rng: random.Random) -> dict[str, str]:
        who = rng.choice([None, *self.tokens])
        return {} if who is None else self.auth(who)

    def raw(self, kind: str, path: str, body: bytes, rng: random.Random,
            headers: dict[str, str] | None = None) -> Call:
        return Call(kind, "POST", path, {"Content-Type": "application/json",
                                         **self.any_auth(rng), **(headers or {})}, body)

    def bad_json(self, client: httpx.Client, rng: random.Random) -> None:
        body = rng.choice([
            b"{", b'{"message":', b"[1, 2", b'{"a": 1}}', b"nul", b"", b"\xff\xfe\x00{",
            b'{"message": "x", "signature": NaN}', b'{"a": Infinity}', b"{'a': 1}",
            b'{"a":"\\ud800"}', b'\xef\xbb\xbf{"a":1}', b'{"a":1,}', os.urandom(64),
            b'"' + b"\\" * 301 + b'"', b'{"a": 01}', b'{"a": 1e999999}', b'{"\x00": 1}'])
        self.send(client, self.raw("malformed:bad-json", rng.choice(self.JSON_ROUTES), body, rng))

    def wrong_types(self, client: httpx.Client, rng: random.Random) -> None:
        odd = rng.choice([123, -1, 1.5, True, None, [], {}, "x", ["0x00"], {"a": [1]},
                          "0x" + "zz" * 32, "\u202e\u0000\ufeff"])
        path, body = rng.choice([
            ("/auth/login", {"message": odd, "signature": odd}),
            ("/provider/reads", {"request": odd, "signature": "0x00"}),
            ("/provider/reads", {"request": {"provider": odd, "patient": odd, "recordId": odd,
                                             "requestId": odd, "issuedAt": odd},
                                 "signature": odd}),
            ("/patient/grants", {"provider": odd, "scope_ids": odd, "expires_at": odd,
                                 "kfrags": odd, "authorization": odd}),
            ("/patient/revocations", {"provider": odd, "scope_id": odd, "authorization": odd}),
            ("/wallet/relay", {"typed_data": odd, "signature": odd}),
            (rng.choice(self.JSON_ROUTES), odd),
        ])
        self.send(client, self.raw("malformed:wrong-types", path, json.dumps(body).encode(),
                                   rng))

    def huge_numbers(self, client: httpx.Client, rng: random.Random) -> None:
        digits = rng.choice([20, 78, 400, 4300, 5000, 20000])
        number = "9" * digits
        sign = rng.choice(["", "-"])
        path, template = rng.choice([
            ("/provider/reads", json.dumps({"request": {
                "provider": self.world.provider.address, "patient": self.world.alice.address,
                "recordId": ZERO, "requestId": ZERO, "issuedAt": "NUMBER"},
                "signature": "0x00"}).replace('"NUMBER"', "NUM")),
            ("/patient/grants", json.dumps({
                "provider": self.world.provider.address, "scope_ids": [ZERO],
                "expires_at": "NUMBER", "kfrags": {}, "authorization": {"tx_hash": ZERO}})
             .replace('"NUMBER"', "NUM")),
            ("/wallet/relay", json.dumps({"typed_data": {**self.signed_revoke, "domain": {
                **self.signed_revoke["domain"], "chainId": "NUMBER"}},
                "signature": self.revoke_signature}).replace('"NUMBER"', "NUM")),
            ("/wallet/relay", json.dumps({"typed_data": {**self.signed_revoke, "message": {
                **self.signed_revoke["message"], "nonce": "NUMBER"}},
                "signature": self.revoke_signature}).replace('"NUMBER"', "NUM")),
            (rng.choice(self.JSON_ROUTES), "NUM"),
            (rng.choice(self.JSON_ROUTES), '{"a": NUM.5e999}'),
        ])
        body = template.replace("NUM", sign + number).encode()
        self.send(client, self.raw("malformed:huge-number", path, body, rng,
                                   {"Authorization": f"Bearer {self.tokens['alice']}"}
                                   if "relay" in path or "grants" in path else None))

    def deep_nesting(self, client: httpx.Client, rng: random.Random) -> None:
        depth = rng.choice([64, 1000, 5000, 20_000, 50_000, 99_000])
        shape = rng.choice(["list", "object", "in-field"])
        if shape == "list":
            body = b"[" * depth + b"]" * depth
        elif shape == "object":
            body = b'{"a":' * depth + b"1" + b"}" * depth
        else:
            body = (b'{"message": "x", "signature": ' + b"[" * depth + b"]" * depth + b"}")
        path = rng.choice(["/auth/login", *self.JSON_ROUTES])
        self.send(client, self.raw(f"malformed:deep-{shape}", path, body, rng))

    def missing_fields(self, client: httpx.Client, rng: random.Random) -> None:
        full: dict[str, Any] = rng.choice([
            {"message": "m", "signature": "0x00"},
            {"request": {"provider": self.world.provider.address,
                         "patient": self.world.alice.address, "recordId": ZERO,
                         "requestId": ZERO, "issuedAt": 1}, "signature": "0x00"},
            {"typed_data": self.signed_revoke, "signature": self.revoke_signature},
        ])
        body = json.loads(json.dumps(full))
        target = body
        while True:
            key = rng.choice(list(target))
            if isinstance(target[key], dict) and target[key] and rng.random() < 0.6:
                target = target[key]
                continue
            del target[key]
            break
        path = {"message": "/auth/login", "request": "/provider/reads"}.get(
            next(iter(full)), "/wallet/relay")
        self.send(client, self.raw("malformed:missing-field", path, json.dumps(body).encode(),
                                   rng, self.auth("alice") if path == "/wallet/relay" else None))

    def bad_signature(self, client: httpx.Client, rng: random.Random) -> None:
        signature = rng.choice(["0x" + os.urandom(65).hex(), "0x" + os.urandom(64).hex(),
                                "0x" + "00" * 65, "0x", "zz", "0x" + "1b" * 65,
                                "0x" + os.urandom(65).hex()[:-2] + "ff"])
        target = rng.choice(["login", "read", "relay", "grant"])
        if target == "login":
            signer = rng.choice(self.wallets)
            text = siwe_message(address=signer.address, domain=f"127.0.0.1:{self.port}",
                                uri=f"http://127.0.0.1:{self.port}",
                                chain_id=self.world.env.chain.chain_id,
                                nonce=os.urandom(8).hex())
            path, body = "/auth/login", {"message": text, "signature": signature}
            headers: dict[str, str] = {}
        elif target == "read":
            patient, sealed = rng.choice(self.granted)
            body = self.world.provider.read_request(patient.address, sealed.record_id)
            body["signature"] = signature
            path, headers = "/provider/reads", self.auth("provider")
        elif target == "relay":
            path, body = "/wallet/relay", {"typed_data": self.signed_revoke,
                                           "signature": signature}
            headers = self.auth("alice")
        else:
            path, body = "/patient/grants", {
                "provider": self.world.provider.address, "scope_ids": [ZERO],
                "expires_at": 2**40, "kfrags": {ZERO: ["0x00"]},
                "authorization": {"signed": {"typed_data": self.signed_grant,
                                             "signature": signature}}}
            headers = self.auth("alice")
        self.send(client, self.json_call("malformed:bad-signature", path, body, headers))

    @property
    def port(self) -> int:
        return self.world.server.settings.api_port

    def bad_token(self, client: httpx.Client, rng: random.Random) -> None:
        path = rng.choice(["/status", "/auth/me", "/patient/records", "/auditor/log",
                           "/provider/patients", "/patient/reads", "/auth/logout"])
        alice, bob = self.tokens["alice"], self.tokens["bob"]
        values = ["Bearer " + os.urandom(32).hex(), "Bearer", "Basic YWxpY2U6c2VjcmV0",
                  "Bearer " + "A" * 8000, "Bearer " + alice[:-1], "Bearer " + alice + "x",
                  "Token " + bob, "Bearer " + bob[::-1], "Bearer =?utf-8?b?w6k=?="]
        if path != "/auth/logout":  # spellings that may well be the real token (RFC 9110)
            values += ["bearer " + alice, "Bearer \t" + bob, "Bearer " + alice + " extra"]
        method = "POST" if path == "/auth/logout" else "GET"
        self.send(client, Call("malformed:bad-token", method, path,
                               {"Authorization": rng.choice(values)}))

    def bad_signed_data(self, client: httpx.Client, rng: random.Random) -> None:
        """Validly shaped requests whose signed EIP-712 document is malformed inside."""
        typed = json.loads(json.dumps(rng.choice([self.signed_revoke, self.signed_grant])))
        damage = rng.choice(["types-string", "types-list", "no-patient", "no-primary",
                             "huge-chain", "domain-string", "message-list", "bad-field-type",
                             "unknown-primary", "no-domain", "address-number"])
        if damage == "types-string":
            typed["types"] = "x"
        elif damage == "types-list":
            typed["types"] = [1, 2]
        elif damage == "no-patient":
            typed["message"].pop("patient", None)
        elif damage == "no-primary":
            typed.pop("primaryType", None)
        elif damage == "huge-chain":
            typed["domain"]["chainId"] = 2**300
        elif damage == "domain-string":
            typed["domain"] = "d"
        elif damage == "message-list":
            typed["message"] = []
        elif damage == "bad-field-type":
            typed["types"][typed["primaryType"]][0]["type"] = "uint999"
        elif damage == "unknown-primary":
            typed["primaryType"] = "Nope"
        elif damage == "no-domain":
            typed.pop("domain")
        else:
            typed["message"]["patient"] = 12345
        signed = {"typed_data": typed, "signature": self.revoke_signature}
        route = rng.choice(["relay", "grants", "revocations", "upload"])
        kind = f"malformed:signed-{damage}"
        if route == "relay":
            call = self.json_call(kind, "/wallet/relay", signed, self.auth("alice"))
        elif route == "grants":
            call = self.json_call(kind, "/patient/grants", {
                "provider": self.world.provider.address, "scope_ids": [ZERO],
                "expires_at": 2**40, "kfrags": {ZERO: ["0x00"]},
                "authorization": {"signed": signed}}, self.auth("alice"))
        elif route == "revocations":
            call = self.json_call(kind, "/patient/revocations", {
                "provider": self.world.provider.address, "scope_id": ZERO,
                "authorization": {"signed": signed}}, self.auth("alice"))
        else:
            call = Call(kind, "PUT", f"/patient/records/0x{os.urandom(32).hex()}",
                        {**self.auth("alice"), "X-Kizuna-Scope-Id": ZERO,
                         "X-Kizuna-Registration": json.dumps({"signed": signed}),
                         "Content-Type": "application/octet-stream"}, os.urandom(256))
        self.send(client, call)

    def junk_upload(self, client: httpx.Client, rng: random.Random) -> None:
        """An envelope that is not one, with a real registration signature (for another
        envelope): refused, nothing kept but garbage blocks."""
        bob = self.world.bob
        sealed = bob.seal(b"junk", label="Observation:laboratory", content_type="text/plain")
        body = rng.choice([os.urandom(rng.randrange(1, 70_000)), sealed.envelope[:40],
                           sealed.envelope + b"trailing", b""])
        self.send(client, Call(
            "malformed:junk-upload", "PUT", f"/patient/records/{hx(sealed.record_id)}",
            {**self.auth("bob"), "X-Kizuna-Scope-Id": hx(sealed.scope_id),
             "X-Kizuna-Registration": bob.registration(sealed),
             "Content-Type": "application/octet-stream"}, body))

    def odd_path(self, client: httpx.Client, rng: random.Random) -> None:
        path = rng.choice([
            "/../../etc/passwd", "/patient/records/0x" + "zz" * 32, "/content/" + "A" * 3000,
            "/%00", "/patient/records/%2e%2e%2f", "/auditor/log?patient=0x123",
            "/provider/records?patient=" + "x" * 5000, "/auth/nonce?" + "a=1&" * 400,
            "/patient/records/" + ZERO + "/content", "/content/bafy" + "a" * 55,
            "/care/messages/0x00/content", "/patients/0xnothex/inbox-key",
            "/patient/reads?limit=-1", "/patient/reads?limit=" + "9" * 50,
            "/auditor/export?patient=" + self.world.alice.address + "&from=x",
            "/records/" + ZERO, "/" + "a/" * 500, "/auth/login/", "/auth//nonce",
            "/patient/records?patient=" + "\u202e".encode().hex()])
        self.send(client, Call("malformed:odd-path", "GET", path, self.any_auth(rng)))

    def odd_method(self, client: httpx.Client, rng: random.Random) -> None:
        method = rng.choice(["PATCH", "DELETE", "OPTIONS", "HEAD", "PUT", "TRACE", "FOO"])
        path = rng.choice(["/auth/login", "/health", "/patient/records", "/provider/reads",
                           "/auditor/log", "/wallet/relay", "/status"])
        self.send(client, Call("malformed:odd-method", method, path, self.any_auth(rng),
                               b'{"a": 1}' if method in ("PATCH", "PUT") else None))

    def odd_headers(self, client: httpx.Client, rng: random.Random) -> None:
        extra = rng.choice([
            {"Content-Type": "text/plain"}, {"Content-Type": "application/json; charset=utf-16"},
            {"Content-Type": "multipart/form-data; boundary=x"}, {"Content-Type": "x" * 2000},
            {"Content-Encoding": "gzip"}, {"Host": "evil.example"}, {"Host": "127.0.0.1:1"},
            {"X-Forwarded-For": ", ".join(["1.2.3.4"] * 200)}, {"Accept": "*/*;q=NaN"},
            {"X-Kizuna-Scope-Id": "0x" + "f" * 5000}, {"Expect": "100-continue"},
            {"Origin": "http://evil.example"}, {"Accept-Encoding": "br;q=1e999"},
        ])
        body = json.dumps({"message": "hello", "signature": "0x00"}).encode()
        path = rng.choice(["/auth/login", "/provider/reads", "/wallet/relay"])
        self.send(client, Call("malformed:odd-header", "POST", path,
                               {"Content-Type": "application/json", **self.any_auth(rng),
                                **extra}, body))

    # -- running ----------------------------------------------------------------------------

    def client(self) -> httpx.Client:
        return http_client(self.world.server.url, base=True, timeout=CLIENT_TIMEOUT_S)

    def run(self, *, count: int, clients: int, budget_s: float, seed: int) -> None:
        """``count`` requests (at least; an op may send two) from ``clients`` threads."""
        deadline = time.monotonic() + budget_s

        def worker(index: int) -> None:
            rng = random.Random(seed * 1000 + index)
            with self.client() as client:
                while not self.stop.is_set() and time.monotonic() < deadline:
                    with self.tally.lock:
                        if self.tally.sent >= count:
                            return
                    self.pick(rng)(client, rng)

        threads = [threading.Thread(target=worker, args=(i,), name=f"soak-{i}")
                   for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


@dataclass
class Watch:
    """Polls the server's pid and VmRSS on a thread of its own."""

    world: World
    soak: Soak
    peak_rss: float = 0.0
    died: str | None = None
    in_flight_at_death: list[str] = field(default_factory=list)

    def run(self) -> None:
        server = self.world.server
        while not self.soak.stop.is_set():
            process = server.process
            if process is None or process.poll() is not None:
                with self.soak.tally.lock:
                    self.in_flight_at_death = [c.describe() for c in
                                               self.soak.tally.in_flight.values()]
                self.died = (f"exit code {process.returncode}" if process is not None
                             else "stopped")
                self.soak.stop.set()
                return
            with contextlib.suppress(OSError, KeyError):  # it may end between the checks
                self.peak_rss = max(self.peak_rss, server.proc_status("VmRSS"))
            time.sleep(0.05)


def test_soak_mixed_and_malformed_requests(world: World, settings: Settings,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    server = world.server
    tally = Tally()
    soak = Soak(world, tally)
    started = time.monotonic()

    # warm-up: every kind of request once or more, then the idle figure
    # (deep nesting left out: a crash there is the soak's to report, with its figures)
    soak.skip = {"deep_nesting"}
    soak.run(count=WARMUP_REQUESTS, clients=4, budget_s=60, seed=SEED + 1)
    soak.skip = set()
    time.sleep(1.0)
    assert server.process is not None and server.process.poll() is None, (
        "the server died during the warm-up: " + _log_tail(server.log_path))
    idle_rss = server.proc_status("VmRSS")
    warmup_sent = tally.sent
    soak.tally = tally = Tally()

    watch = Watch(world, soak)
    watcher = threading.Thread(target=watch.run, name="soak-watch")
    watcher.start()
    t0 = time.monotonic()
    try:
        soak.run(count=SOAK_REQUESTS, clients=SOAK_CLIENTS, budget_s=SOAK_BUDGET_S, seed=SEED)
    finally:
        elapsed = time.monotonic() - t0
        alive = server.process is not None and server.process.poll() is None
        hwm = server.proc_status("VmHWM") if alive else float("nan")
        soak.stop.set()
        watcher.join()
    peak = max(watch.peak_rss, hwm) if alive else watch.peak_rss
    consistency = check_consistency(settings, world.env.chain) if alive else None
    health = httpx.get(server.url + "/health", timeout=30).status_code if alive else None

    figures = (
        f"\n== soak figures (seed {SEED}) ==\n"
        f"requests: {tally.sent} in {elapsed:.1f} s ({tally.sent / elapsed:.0f}/s) from "
        f"{SOAK_CLIENTS} clients (+{warmup_sent} warm-up)\n"
        f"valid: {tally.valid}, malformed inputs tried: {tally.malformed} "
        f"({len([k for k in tally.kinds if k.startswith('malformed:')])} kinds)\n"
        f"statuses: {dict(sorted(tally.statuses.items()))}\n"
        f"5xx: {len(tally.server_errors)}, unexpected answers to valid requests: "
        f"{len(tally.unexpected)}, timeouts: {len(tally.timeouts)}, "
        f"connections dropped: {len(tally.dropped)}\n"
        f"crashes: {0 if watch.died is None else 1}"
        f"{'' if watch.died is None else ' (' + watch.died + ')'}\n"
        f"server RSS: idle {idle_rss:.0f} MiB after warm-up, peak {peak:.0f} MiB "
        f"(sampled {watch.peak_rss:.0f}, VmHWM {hwm:.0f}), limit {2 * idle_rss:.0f} MiB\n"
        f"state afterwards: {consistency.summary() if consistency else 'not checked (dead)'}\n"
        f"health afterwards: {health}; whole test {time.monotonic() - started:.0f} s\n")
    details = ""
    for title, items in (("crash: requests in flight", watch.in_flight_at_death),
                         ("5xx answers", tally.server_errors),
                         ("unexpected answers to valid requests", tally.unexpected),
                         ("timeouts", tally.timeouts), ("dropped connections", tally.dropped)):
        if items:
            details += f"-- {title} ({len(items)}, first 20):\n  " + "\n  ".join(
                items[:20]) + "\n"
    with capsys.disabled():
        print(figures + details)

    assert watch.died is None and alive, (
        f"the server died ({watch.died}); in flight: {watch.in_flight_at_death}\n"
        + _log_tail(server.log_path))
    assert not tally.server_errors, details + _log_tail(server.log_path)
    assert not tally.timeouts, details
    assert not tally.unexpected, details
    assert tally.sent >= SOAK_REQUESTS, f"only {tally.sent} requests in {SOAK_BUDGET_S} s"
    assert peak < 2 * idle_rss, figures
    assert health == 200
    assert consistency is not None and consistency.ok, consistency.summary()


def _log_tail(path: Path) -> str:
    try:
        return "\n-- server log (tail):\n" + path.read_text(errors="replace")[-4000:]
    except OSError:
        return ""
