"""Fuzz of every route of the real API over HTTP (``kizuna serve`` under uvicorn in a subprocess
on 127.0.0.1, against a demo-like world): no answer may be a 5xx and the process must survive.

Two fuzzers, each bounded (examples per operation) so a run takes a minute or two:

* schemathesis in *negative* mode over the served OpenAPI document: requests that break the
  document's own rules (wrong types, missing or extra fields, out-of-range numbers, bad path
  and query values). tests/api/test_api_fuzz.py runs schemathesis' positive mode in process
  (ASGI) and checks the answers against the document; this one sends what the document
  forbids, over a real socket, to the process ``kizuna serve`` runs.
* a Hypothesis strategy of hostile JSON posted to every route that takes a JSON body: deep
  nesting (up to 100,000 levels), huge strings and integers (past Python's 4,300-digit
  conversion limit), NaN/Infinity literals, duplicate keys, lone surrogates and other unicode
  oddities, wrong top-level types, and valid-looking bodies (real signatures included) with one
  part replaced by any of those. Each is sent anonymous and signed in (patient, provider,
  auditor).

A crash is recorded with the request that caused it and the server is started again, so one
run reports every failing request; all are printed (CI's log) and the test then fails. Seeded
(KIZUNA_FUZZ_SEED, default 15): a failure is replayable."""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import schemathesis
from apienv import ApiServer, sign_text, siwe_message
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from participants import hx
from schema_fuzz import no_long_length_folds
from schemathesis.transport.requests import ManagedCookiesSession

if TYPE_CHECKING:
    from adversarial_world import World

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""One deployment and API for the module (tests/api/apienv.py, shares_stack): each fuzzer has its
own world; a crash it causes restarts the server (Target.observe)."""

SCHEMA_EXAMPLES = 12
"""Negative examples per operation (schemathesis)."""
HOSTILE_EXAMPLES = 24
"""Hostile bodies per JSON route."""
SEED = int(os.environ.get("KIZUNA_FUZZ_SEED", "15"))
ZERO = "0x" + "00" * 32


@dataclass
class Target:
    """The server under fuzz: sends, records 5xx answers and crashes (then restarts it)."""

    server: ApiServer
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)

    def alive(self) -> bool:
        return self.server.process is not None and self.server.process.poll() is None

    def observe(self, status: int | None, text: str, request: str, error: str = "") -> None:
        self.sent += 1
        if status is not None:
            self.statuses[status] += 1
            if status >= 500:
                self.failures.append(f"{status} {text[:300]!r} <- {request}")
            return
        process = self.server.process
        if process is not None:
            # the socket closes as the process dies, a moment before it can be reaped
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=3)
        if not self.alive():
            code = process.returncode if process is not None else None
            self.crashes.append(f"exit code {code} <- {request}")
            self.server.stop()
            self.server.start()
        elif "Timeout" in error:
            self.failures.append(f"{error} <- {request}")

    def report(self, title: str, extra: str = "") -> str:
        lines = [f"\n== {title} (seed {SEED}) ==",
                 f"requests: {self.sent}{extra}",
                 f"statuses: {dict(sorted(self.statuses.items()))}",
                 f"5xx or timeouts: {len(self.failures)}, crashes: {len(self.crashes)}"]
        for name, items in (("crashes", self.crashes), ("5xx / timeouts", self.failures)):
            if items:
                lines.append(f"-- {name} (first 25):\n  " + "\n  ".join(items[:25]))
        return "\n".join(lines) + "\n"


def describe(method: str, path: str, headers: dict[str, str], body: bytes | None) -> str:
    shown = {k: v[:40] for k, v in headers.items() if k.lower() != "authorization"}
    who = "signed in" if any(k.lower() == "authorization" for k in headers) else "anonymous"
    text = "" if body is None else (
        f" body[{len(body)}]={body[:200]!r}" if len(body) <= 320
        else f" body[{len(body)}]={body[:200]!r}...{body[-120:]!r}")
    return f"{method} {path} ({who}) headers={shown}{text}"


def identities(world: World) -> list[dict[str, str]]:
    """Anonymous, a patient, a provider, an auditor."""
    return [{}, world.alice.auth, world.provider.auth, world.auditor.auth]


# -- schemathesis, negative mode, over HTTP ---------------------------------------------------


def test_schemathesis_negative_cases_over_http(world: World, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    no_long_length_folds(monkeypatch)  # the same schema, without 2-7 CPU-s per hex body
    target = Target(world.server)
    schema = schemathesis.openapi.from_url(world.server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    who = identities(world)
    unfuzzable: list[str] = []
    turn = 0
    # one keep-alive session for every case, as a client would hold (schemathesis opens a new
    # session, so a new connection, per call otherwise): the fuzz is of the requests, not of
    # connection set-up. Schemathesis' own kind: redirects followed on the same host only,
    # cookies dropped between cases. A crash breaks its connection; the next case opens another.
    session = ManagedCookiesSession()

    for operation in operations:

        @seed(SEED)
        @settings(max_examples=SCHEMA_EXAMPLES, deadline=None, database=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE))
        def run(case: Any) -> None:
            nonlocal turn
            turn += 1
            auth = who[turn % len(who)]
            if case.path.startswith("/auth/logout"):
                auth = {}  # never end the sessions the other cases use
            headers = {k: str(v) for k, v in (case.headers or {}).items()
                       if k.lower() != "authorization"} | auth
            request = f"{case.method} {case.formatted_path} query={case.query} " \
                      f"headers={ {k: v[:40] for k, v in headers.items()} } body={case.body!r}"
            try:
                response = case.call(base_url=world.server.url, session=session,
                                     headers=headers, timeout=60)
            except Exception as exc:  # transport: the server may be gone
                target.observe(None, "", request[:600], type(exc).__name__)
                return
            target.observe(response.status_code, response.text, request[:600])

        try:
            run()
        except Exception as exc:  # an operation schemathesis cannot make negative cases for
            unfuzzable.append(f"{operation.method.upper()} {operation.path}: {type(exc).__name__}: "
                              f"{str(exc)[:120]}")

    session.close()
    report = target.report("fuzz: schemathesis negative cases over HTTP",
                           f" over {len(operations)} operations ({len(unfuzzable)} without "
                           "negative cases)")
    with capsys.disabled():
        print(report + ("-- without negative cases:\n  " + "\n  ".join(unfuzzable)
                        if unfuzzable else ""))
    assert target.alive()
    assert not target.crashes and not target.failures, report
    assert target.sent >= 10 * len(operations), report
    assert httpx.get(world.server.url + "/health", timeout=30).status_code == 200


# -- hostile JSON -----------------------------------------------------------------------------

HOLE = "\u0000HOLE\u0000"
"""Where a hostile fragment goes in a valid-looking body (serialised as a JSON string)."""

_ODD_STRINGS = [
    '"\\ud800"', '"\\udfff\\ud800"', '"\\u0000"', '"\u202e\u0645\u202c"', '"\ufeff"',
    '"\U0001f4a9"', '"\\\\"', '"\\u0022"', '"e\u0301"', '"\uffff"', '"\\ud83d\\ude00"',
    '"0x"', '"0x' + "0" * 63 + '"', '"0x' + "zz" * 32 + '"', '"0X' + "AB" * 20 + '"',
    '"' + "0x" + "00" * 65 + '"', '"' + "\u00e9" * 3000 + '"', '"\\/\\b\\f\\n\\r\\t"',
]
_ODD_NUMBERS = [
    "NaN", "Infinity", "-Infinity", "1e999", "-1e999", "-0", "1.5e-400", "0.0000001",
    "1" + "0" * 4300, "9" * 4301, "-" + "9" * 20_000, "18446744073709551616",
    "115792089237316195423570985008687907853269984665640564039457584007913129639936",
    "-1", "2147483648", "1.0", "1E2", "01", "0x10", "+1", ".5",
]


def _object(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"


def _deep(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return "[{" * (depth // 2) + "}]" * (depth // 2)


def hostile_fragment() -> st.SearchStrategy[str]:
    """A JSON text (or an almost-JSON one: NaN, Infinity, leading zeros) meant to hurt."""
    keys = st.one_of(st.sampled_from(["message", "signature", "typed_data", "request",
                                      "provider", "patient", "types", "domain", "chainId",
                                      "primaryType", "scope_ids", "kfrags", "__proto__",
                                      "constructor", ""]).map(json.dumps),
                     st.text(max_size=12).map(json.dumps))
    leaf = st.one_of(
        st.integers(min_value=-(2**300), max_value=2**300).map(str),
        st.sampled_from(_ODD_NUMBERS), st.sampled_from(_ODD_STRINGS),
        st.text(max_size=40).map(json.dumps),
        st.text(max_size=40).map(lambda s: json.dumps(s, ensure_ascii=False)),
        st.sampled_from(["true", "false", "null", '""', "[]", "{}"]),
        st.sampled_from([200_000, 1_000_000]).map(lambda n: '"' + "x" * n + '"'),
    )
    nested = st.recursive(leaf, lambda children: st.one_of(
        st.lists(children, max_size=6).map(lambda xs: "[" + ",".join(xs) + "]"),
        st.lists(st.tuples(keys, children), max_size=6).map(_object),
        # the same key twice: which one wins is the parser's choice
        st.tuples(keys, children, children).map(lambda t: _object([(t[0], t[1]),
                                                                  (t[0], t[2])])),
    ), max_leaves=12)
    deep = st.builds(_deep, st.sampled_from([64, 1000, 5000, 20_000, 50_000, 100_000]),
                     st.sampled_from(["list", "object", "mixed"]))
    return st.one_of(nested, nested, deep)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value (the root included) a fragment could replace."""
    found = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*here, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*here, index))
    return found


def _with_hole(value: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return HOLE
    copy = json.loads(json.dumps(value))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = HOLE
    return copy


def mutated(template: Any, fragment: str, choice: int) -> str:
    """``template`` with the value at one of its places (chosen by ``choice``) replaced by
    ``fragment``."""
    places = _paths(template)
    text = json.dumps(_with_hole(template, places[choice % len(places)]))
    return text.replace(json.dumps(HOLE), fragment, 1)


def skeleton(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    """A value of the right shape for an OpenAPI schema (placeholders), for routes without a
    real body below."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    for alternative in ("anyOf", "oneOf", "allOf"):
        if alternative in schema:
            return skeleton(schema[alternative][0], components, depth + 1)
    kind = schema.get("type")
    if depth > 6:
        return None
    if kind == "object" or "properties" in schema:
        return {name: skeleton(prop, components, depth + 1)
                for name, prop in schema.get("properties", {}).items()}
    if kind == "array":
        return [skeleton(schema.get("items", {}), components, depth + 1)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return ZERO if "pattern" in schema else "x"


def real_bodies(world: World) -> dict[str, Any]:
    """Valid bodies (real signatures) of the routes whose input is signed data."""
    alice, provider = world.alice, world.provider
    ledger = world.env.chain.ledger
    sid = alice.scope("Condition")
    deadline = alice.deadline()
    grant = ledger.grant_typed_data(patient=alice.address, provider=provider.address,
                                    scope_id=sid, expires_at=deadline + 86400,
                                    deadline=deadline)
    revoke = ledger.revoke_typed_data(patient=alice.address, provider=provider.address,
                                      scope_id=sid, deadline=deadline)
    info = httpx.get(world.server.url + "/auth/nonce", timeout=30).json()
    text = siwe_message(address=alice.address, domain=info["domain"], uri=info["uri"],
                        chain_id=info["chain_id"], nonce=info["nonce"])
    patient, sealed = world.granted_records()[0]

    def signed(typed: Any) -> dict[str, Any]:
        return {"typed_data": typed.to_json(), "signature": hx(alice.signer.sign_typed_data(typed))}

    return {
        "/auth/login": {"message": text, "signature": sign_text(alice.signer, text)},
        "/provider/reads": provider.read_request(patient.address, sealed.record_id),
        "/patient/grants": {"provider": provider.address, "scope_ids": [hx(sid)],
                            "expires_at": deadline + 86400, "kfrags": {hx(sid): ["0x00"]},
                            "authorization": {"signed": signed(grant)}},
        "/patient/revocations": {"provider": provider.address, "scope_id": hx(sid),
                                 "authorization": {"signed": signed(revoke)}},
        "/wallet/relay": signed(revoke),
    }


def json_routes(world: World) -> list[tuple[str, str, Any]]:
    """(method, path, template body) of every operation with a JSON body."""
    document = httpx.get(world.server.url + "/openapi.json", timeout=30).json()
    components = document.get("components", {}).get("schemas", {})
    real = real_bodies(world)
    routes: list[tuple[str, str, Any]] = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            concrete = path
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path":
                    concrete = concrete.replace("{" + parameter["name"] + "}", ZERO)
            template = real.get(path) or skeleton(content["application/json"].get("schema", {}),
                                                  components)
            routes.append((method.upper(), concrete, template))
    return routes


def test_hostile_json_on_every_json_route(world: World,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    target = Target(world.server)
    routes = json_routes(world)
    assert len(routes) >= 20, routes
    who = identities(world)
    rng = random.Random(SEED)
    kinds: Counter[str] = Counter()

    with httpx.Client(base_url=world.server.url, timeout=60) as client:

        def fuzz(method: str, path: str, template: Any) -> None:

            @seed(SEED)
            @settings(max_examples=HOSTILE_EXAMPLES, deadline=None, database=None,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))
            @given(fragment=hostile_fragment(), whole=st.booleans(),
                   choice=st.integers(min_value=0, max_value=10_000))
            def run(fragment: str, whole: bool, choice: int) -> None:
                text = fragment if whole else mutated(template, fragment, choice)
                body = text.encode("utf-8", "surrogatepass")
                kinds["whole" if whole else "in a valid-looking body"] += 1
                headers = {"Content-Type": "application/json", **rng.choice(who)}
                request = describe(method, path, headers, body)
                try:
                    answer = client.request(method, path, headers=headers, content=body)
                except httpx.HTTPError as exc:
                    target.observe(None, "", request, type(exc).__name__)
                    return
                target.observe(answer.status_code, answer.text, request)

            run()

        for method, path, template in routes:
            fuzz(method, path, template)

    report = target.report("fuzz: hostile JSON on every JSON route",
                           f" over {len(routes)} routes ({dict(kinds)})")
    with capsys.disabled():
        print(report)
    assert target.alive()
    assert not target.crashes and not target.failures, report
    assert httpx.get(world.server.url + "/health", timeout=30).status_code == 200
