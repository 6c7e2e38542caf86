"""Bad input for every route: schemathesis (v4) generates requests from the OpenAPI document,
valid and invalid, and sends them to the real app (in process, over ASGI) against a real chain,
store and database. No answer may be a 5xx (never a 500 for bad input), and every answer must
match what the document says that operation answers (status code and body schema).

Requests are sent signed in as an address that is a patient, a registered provider and an
auditor, so the generated input reaches the services behind the role checks. Examples per
operation are bounded so the run takes a few minutes. Schemathesis runs without folding the hex
fields' 1 MiB length bound into their pattern (tests/support/schema_fuzz.py): compiling that
fold was most of the run's CPU and memory, and it steers nothing Hypothesis draws."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from apienv import ChainEnv, bearer, sign_in
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from participants import HttpPatient
from schema_fuzz import no_long_length_folds
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from kizuna.api.app import create_app
from kizuna.chain.signers import LocalKeySigner
from kizuna.config import Settings
from kizuna.services.context import ServiceContext

pytestmark = pytest.mark.anvil

EXAMPLES = 25


@pytest.fixture
def fuzzed_app(settings: Settings, ctx: ServiceContext,
               chain_env: ChainEnv) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    # schemathesis's ASGI client sends Host: testserver, a name the API (on loopback) must be
    # told to answer to
    app = create_app(settings.model_copy(update={"allowed_hosts": "testserver"}), ctx=ctx)
    with TestClient(app, base_url=f"http://127.0.0.1:{settings.api_port}") as client:
        everyone = LocalKeySigner.generate()
        person = HttpPatient(signer=everyone, chain=chain_env.chain, http=client)  # type: ignore[arg-type]
        chain_env.add_provider(everyone, person.keys.public_key.to_bytes())
        chain_env.grant_auditor(everyone.address)
        token = str(sign_in(client, everyone)["token"])  # type: ignore[arg-type]
        # some state for the generated requests to find
        person.token = token
        person.add(b"fuzz", label="Observation:laboratory", content_type="text/plain")
        yield app, bearer(token)


def test_no_route_answers_5xx_or_off_schema(fuzzed_app: tuple[FastAPI, dict[str, str]],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    no_long_length_folds(monkeypatch)
    app, auth = fuzzed_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    for operation in operations:

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            # the generated Authorization header is replaced by the real session's (except
            # on logout, which would end the session the other operations use)
            headers = {**(case.headers or {}),
                       **(auth if not case.path.startswith("/auth/logout") else {})}
            response = case.call_and_validate(headers=headers, checks=[
                not_a_server_error, status_code_conformance, response_schema_conformance])
            statuses[response.status_code] += 1

        try:
            run()
        # one failure is an AssertionError, several at once (a 500 is also an undocumented
        # status) a FailureGroup: both are recorded and the next operation is fuzzed
        except (AssertionError, FailureGroup) as exc:
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
    # the run reached the services: inputs were refused and accepted, not just unauthorised
    assert statuses[422] > 100 and sum(statuses[s] for s in (200, 201, 204)) > 20, statuses
    assert not any(status >= 500 and status != 503 for status in statuses), statuses
