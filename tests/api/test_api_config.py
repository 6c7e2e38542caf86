"""Settings: sources and their order, the safety rules outside development, secrets redacted;
the error mapping: every class of the tree to its status, 5xx bodies without internals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kizuna.api import errors as api_errors
from kizuna.api.app import create_app
from kizuna.config import Settings
from kizuna.errors import (
    AccessDenied,
    ConfigError,
    ConflictError,
    ContentNotFound,
    ContractReverted,
    FhirValidationError,
    InputError,
    IntegrityError,
    InvalidCid,
    KizunaError,
    NodeUnreachable,
    NotFoundError,
    StoreUnavailable,
    WrongChain,
)
from kizuna.storage.unixfs import ContentIntegrityError
from kizuna.wire.records import EnvelopeTooLarge

KEY = "0x" + "ab" * 32
SECRET = "s" * 40


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "kizuna.toml"
    config.write_text('environment = "development"\napi_port = 9001\nstore = "ipfs"\n')
    assert Settings.load(config).api_port == 9001
    monkeypatch.setenv("KIZUNA_API_PORT", "9002")
    settings = Settings.load(config)
    assert settings.api_port == 9002 and settings.store_config().kind == "ipfs"
    monkeypatch.setenv("KIZUNA_CONFIG", str(config))
    assert Settings.load().api_port == 9002
    dotenv = tmp_path / "kizuna.env"
    dotenv.write_text("KIZUNA_ENVIRONMENT=development\nKIZUNA_MAX_UPLOAD_BYTES=123\n")
    assert Settings.load(dotenv).max_upload_bytes == 123


def test_defaults_listen_on_localhost() -> None:
    settings = Settings(environment="development")
    assert settings.api_host == "127.0.0.1" and not settings.benchmark_baseline


@pytest.mark.parametrize("secret", ["", "changethis", "short", "changeme"])
def test_placeholder_secret_refused_outside_development(secret: str) -> None:
    with pytest.raises(ConfigError, match="session_secret"):
        Settings.load(environment="production", session_secret=secret)
    Settings.load(environment="development", session_secret=secret)


def test_benchmark_baseline_only_in_development() -> None:
    with pytest.raises(ConfigError, match="benchmark_baseline"):
        Settings.load(environment="production", session_secret=SECRET, benchmark_baseline=True)
    with pytest.raises(ConfigError, match="benchmark_baseline"):
        Settings.load(environment="test", session_secret=SECRET, benchmark_baseline=True)
    app = create_app(Settings.load(environment="production", session_secret=SECRET))
    assert not any(getattr(r, "path", "").startswith("/_benchmark") for r in app.routes)


def test_secrets_never_shown(tmp_path: Path) -> None:
    settings = Settings.load(environment="production", session_secret=SECRET, relayer_key=KEY,
                             anchorer_key=KEY)
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert SECRET not in text and KEY[2:] not in text
    with pytest.raises(ConfigError) as bad:
        Settings.load(environment="development", relayer_key="0x1234secret")
    assert "1234secret" not in str(bad.value) and "relayer_key" in str(bad.value)


def test_bad_values_name_the_field() -> None:
    with pytest.raises(ConfigError, match="rpc_url"):
        Settings.load(environment="development", rpc_url="ftp://x")
    with pytest.raises(ConfigError, match="database_url"):
        Settings.load(environment="development", database_url="mysql://x")
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load("/nonexistent/kizuna.toml")
    with pytest.raises(ConfigError, match="proxy_registry: '0x12' is not an Ethereum address"):
        Settings.load(environment="development", proxy_registry="0x12")


def test_the_proxy_registry_is_a_checksummed_address_or_none() -> None:
    lower = "0x" + "ab" * 20
    assert Settings.load(environment="development",
                         proxy_registry=f" {lower} ").proxy_registry == (
        "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB")
    assert Settings.load(environment="development", proxy_registry=" ").proxy_registry is None


@pytest.mark.parametrize(("error", "status"), [
    (InputError("f", "bad"), 422),
    (FhirValidationError([("Bundle.entry[0]", "bad")]), 422),
    (InvalidCid("x", "no"), 422),
    (EnvelopeTooLarge(10), 413),
    (api_errors.PayloadTooLarge(10), 413),
    (api_errors.NotAuthenticated("no"), 401),
    (AccessDenied("no"), 403),
    (NotFoundError("no"), 404),
    (ContentNotFound("bafy"), 404),
    (ConflictError("dup"), 409),
    (ContractReverted("ConsentLedgerRecordExists"), 409),
    (ContractReverted("ConsentLedgerUnauthorized"), 403),
    (ContractReverted("ConsentLedgerInvalidExpiry"), 422),
    (ContractReverted("ConsentLedgerSignatureExpired"), 422),
    (NodeUnreachable("down"), 503),
    (WrongChain(1, 2), 503),
    (StoreUnavailable("down"), 503),
    (ConfigError("no key"), 503),
    (ContentIntegrityError("tampered"), 502),
    (IntegrityError("tampered"), 422),
    (KizunaError("?"), 500),
])
def test_each_error_has_its_status(error: KizunaError, status: int) -> None:
    assert api_errors.status_for(error) == status


def test_error_bodies_never_carry_internals() -> None:
    app = FastAPI()
    api_errors.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    @app.get("/kboom")
    def kboom() -> None:
        raise KizunaError("internal state 0xdeadbeef")

    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/boom", "/kboom"):
            answer = client.get(path)
            assert answer.status_code == 500
            assert answer.json() == {"error": {"kind": "InternalError",
                                               "message": "the service failed; see its log"}}
        missing = client.get("/nothing")
        assert missing.status_code == 404 and missing.json()["error"]["kind"] == "NotFoundError"


_SPEC_ERROR_BODIES = {
    # The SMART Health Links spec fixes this answer's body: {"remainingAttempts": n}.
    ("post", "/shl/{link_id}", "401"): "WrongPasscodeOut",
}


def test_openapi_documents_every_answer() -> None:
    """Every operation names its success model and the errors it can answer: 401 where a
    session is needed, 422 where there is input; every error answer uses ErrorBody."""
    document = create_app(Settings.load(environment="development")).openapi()
    operations = [(path, method, op) for path, item in document["paths"].items()
                  for method, op in item.items()]
    assert len(operations) >= 40
    for path, method, op in operations:
        responses = op["responses"]
        success = [code for code in responses if code.startswith("2")]
        assert success, (method, path)
        if op.get("security"):
            assert "401" in responses, (method, path)
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in responses, (method, path)
        for code, answer in responses.items():
            if code.startswith(("4", "5")):
                schema = answer["content"]["application/json"]["schema"]
                expected = _SPEC_ERROR_BODIES.get((method, path, code), "ErrorBody")
                assert schema == {"$ref": f"#/components/schemas/{expected}"}, (method, path, code)
    assert not any(path.startswith("/_benchmark") for path in document["paths"])
    # the routes name ErrorBody by reference (errors.error_responses): every reference in the
    # document, its fields' included, names a schema the document has, as FastAPI writes it
    text = json.dumps(document)
    schemas = document["components"]["schemas"]
    for name in set(re.findall(r'"#/components/schemas/([^"]+)"', text)):
        assert name in schemas, name
    assert schemas["ErrorDetail"]["properties"]["field"] == {
        "anyOf": [{"type": "string"}, {"type": "null"}], "title": "Field",
        "description": "the offending input field, for 413/422"}  # no "default": null


def test_openapi_of_the_sign_in_routes_alone_has_the_error_body() -> None:
    document = create_app(Settings.load(environment="development"),
                          with_services=False).openapi()
    answer = document["paths"]["/auth/login"]["post"]["responses"]["401"]
    assert answer["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"}
    assert {"ErrorBody", "ErrorDetail", "Issue"} <= set(document["components"]["schemas"])


def test_the_routes_built_at_import_are_the_ones_served() -> None:
    """The routers' routes are the app's own, not included (FastAPI would build an included
    router's routes a second time at the first request that reaches it: CPU per process)."""
    from kizuna.api.routes import auth, provider, system

    app = create_app(Settings.load(environment="development"))
    served = {id(route) for route in app.routes}
    for router in (provider.router, system.router, auth.router):
        assert router.routes and all(id(route) in served for route in router.routes)
