"""The service's configuration: one :class:`Settings`, from the environment and an optional file.

Every field is read from an environment variable named ``KIZUNA_<FIELD>`` (``KIZUNA_RPC_URL``,
``KIZUNA_DATABASE_URL``, ...), or from a TOML file (``[kizuna]``-less, top-level keys named like
the fields) or a dotenv file given to :meth:`Settings.load` (or named by ``KIZUNA_CONFIG``).
The environment wins over the file, the file over the defaults.

Safety rules, checked when the settings are built (a ``ConfigError`` names the field):

* ``session_secret`` must be a real secret (≥ 32 characters, not a placeholder such as
  ``changethis``) unless ``environment`` is ``development`` or the process keeps no sessions
  (a threshold proxy node: ``Settings.load(sessions=False)``);
* ``benchmark_baseline`` (a route that serves stored bytes with *no access check*, for the
  service benchmark's baseline) can only be on in ``development``;
* the relayer and anchorer keys are secrets: they never appear in ``repr`` or logs.

The content-store fields keep :class:`kizuna.storage.store.StoreConfig`'s names and meaning
(``KIZUNA_STORE``, ``KIZUNA_STORE_PATH``, ``KIZUNA_IPFS_API``, ``KIZUNA_IPFS_TIMEOUT``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from kizuna.errors import ConfigError, InputError
from kizuna.storage.store import StoreConfig, default_store_path

Environment = Literal["development", "test", "production"]

PLACEHOLDER_SECRETS = frozenset({"", "changethis", "changeme", "secret", "placeholder",
                                 "development", "dev", "test", "kizuna"})
"""Values refused as ``session_secret`` outside development."""

MIN_SECRET_LENGTH = 32


def default_database_url() -> str:
    """SQLite next to the embedded store: ``$XDG_DATA_HOME/kizuna/kizuna.sqlite3``."""
    return f"sqlite:///{default_store_path().parent / 'kizuna.sqlite3'}"


DEFAULT_MAX_JSON_BODY_BYTES = 1 << 20
"""JSON request bodies at most, by default (the API's ``max_json_body_bytes``; a proxy node's,
which has no such setting): a read is ~400 bytes, a record's registration a few KiB."""


class Settings(BaseSettings):
    """Everything the service needs to run; see the module docstring for sources and rules."""

    model_config = SettingsConfigDict(env_prefix="KIZUNA_", extra="forbid", frozen=True,
                                      validate_default=True)

    _config_file: ClassVar[Path | None] = None
    _sessions: ClassVar[bool] = True
    """False for a process that keeps no sessions (a threshold proxy node): its settings need
    no ``session_secret`` (:meth:`load`'s ``sessions``)."""

    environment: Environment = Field(
        "production", description="development relaxes the secret checks; never in production")

    # --- chain
    rpc_url: str = Field("http://127.0.0.1:8545", description="Ethereum JSON-RPC endpoint")
    wallet_rpc_url: str | None = Field(
        None, description="the JSON-RPC URL the web page offers wallets (wallet_addEthereumChain) "
                          "for this chain; unset: the page only asks the wallet to switch to it")
    chain_id: int | None = Field(default=None, ge=1,
                                 description="expected chain id (None: the node's)")
    deployment_file: Path | None = Field(
        None, description="deployment JSON (None: deployments/<chainId>.json)")
    rpc_timeout_s: float = Field(10.0, gt=0)
    proxy_registry: str | None = Field(
        None, description="the ProxyRegistry listing this deployment's threshold proxy nodes "
        "(docs/proxies.md): GET /version names it to the web page, which reads the nodes from "
        "it and reads through them; the page's connect-src allows the nodes listed there. "
        "Unset: reads go to this service alone (1-of-1)")
    index_path: Path | None = Field(
        None, description="event-index SQLite file kept across restarts (None: in memory)")

    # --- content store (StoreConfig's variables)
    store: Literal["embedded", "ipfs"] = "embedded"
    store_path: Path = Field(default_factory=default_store_path)
    ipfs_api: str = "http://127.0.0.1:5001"
    ipfs_timeout: float = Field(30.0, gt=0)

    # --- database
    database_url: str = Field(default_factory=default_database_url,
                              description="SQLAlchemy URL: sqlite:///path or postgresql://")

    # --- HTTP
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=0, le=65535)
    max_upload_bytes: int = Field(1 << 30, gt=0, description="larger uploads are refused (413)")
    max_json_body_bytes: int = Field(
        DEFAULT_MAX_JSON_BODY_BYTES, gt=0, le=1 << 30,
        description="larger JSON request bodies are refused (413) before they are parsed; "
        "streamed envelopes (uploads, messages) have max_upload_bytes")
    allowed_hosts: str = Field(
        "", description="comma-separated Host names the API answers to besides siwe_domain "
        "('name', 'name:port', '[v6]:port', '*.domain', '*'). Bound to loopback the loopback "
        "names on api_port are always allowed; bound elsewhere, empty means any host (the "
        "operator's load balancer checks it)")
    read_threads: int = Field(2, ge=1, le=256,
                              description="threads serving provider reads, per instance")
    read_inline_max_bytes: int = Field(
        64 * 1024, ge=0, le=16 * 1024 * 1024,
        description="a read's answer carries envelopes up to this size itself (one request "
        "per read); larger ones are fetched by CID. 0: never inline")

    # --- sessions and SIWE
    session_secret: SecretStr = Field(SecretStr(""), description="keys the session-token hashes")
    session_ttl_s: int = Field(8 * 3600, gt=0)
    siwe_domain: str = Field("127.0.0.1:8000", description="the domain SIWE messages must name")
    siwe_uri: str = Field("http://127.0.0.1:8000", description="the URI SIWE messages must name")
    siwe_nonce_ttl_s: int = Field(300, gt=0, description="how long a login nonce stays usable")
    siwe_max_age_s: int = Field(600, gt=0, description="oldest accepted 'Issued At'")

    # --- receipts
    anchor_interval_s: float = Field(60.0, gt=0, description="receipts anchored this often")
    refused_reads_per_patient_hour: int = Field(
        20, ge=1, description="refused reads recorded per provider and patient per hour "
        "(the rest only counted)")
    refused_reads_per_provider_hour: int = Field(
        1000, ge=1, description="refused reads recorded per provider per hour, all patients "
        "together (the rest only counted)")

    # --- the index follower (deletes key fragments of grants ended on chain)
    follow_interval_s: float = Field(
        2.0, gt=0, le=3600,
        description="the event index is followed this often; fragments of a grant revoked, "
                    "expired or cut by revokeAll, or of a closed emergency access, are deleted "
                    "within one interval")

    # --- quotas and budgets per wallet (kizuna.services.quotas)
    max_records_per_wallet: int = Field(
        100_000, ge=0,
        description="records + messages a wallet may store (403 beyond; 0: no limit)")
    max_bytes_per_wallet: int = Field(
        2 << 30, ge=0, description="envelope bytes a wallet may store, records and messages "
        "together (403 beyond; 0: no limit); one record is also capped by max_upload_bytes")
    relayer_gas_per_day: int = Field(
        2_000_000, ge=0, description="gas the relayer spends for one wallet per UTC day (429 "
        "with Retry-After beyond; 0: no limit)")
    content_after_read_s: int = Field(
        900, ge=0, description="a provider may fetch a record's envelope by CID this long after "
        "a read of it left a receipt")

    # --- store garbage collection (unpinned blocks: refused or failed uploads)
    store_gc_interval_s: float = Field(
        3600.0, gt=0, description="the service collects unpinned blocks this often")
    store_gc_grace_s: float = Field(
        3600.0, ge=0, description="blocks written or reused this recently are never collected "
        "(a refused upload unpins what a concurrent upload of the same envelope re-pins)")

    # --- batches: envelopes staged for a batch registration (kizuna.services.batches)
    staged_ttl_s: float = Field(
        86_400.0, gt=0, description="staged envelopes not registered in a batch this long are "
        "unpinned and deleted (swept every quarter of it, at most hourly); they count against "
        "the patient's storage quota until then")

    # --- keys (secrets: never shown)
    relayer_key: SecretStr | None = Field(default=None,
                                          description="pays gas for relayed signed actions")
    anchorer_key: SecretStr | None = Field(default=None,
                                           description="holds AccessLog's ANCHOR_ROLE")

    # --- benchmark only
    benchmark_baseline: bool = Field(
        False, description="serve bytes with NO access check (benchmark baseline; dev only)")

    @field_validator("ipfs_api", "rpc_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @field_validator("proxy_registry")
    @classmethod
    def _registry_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from kizuna.types import checked_address

        try:
            return checked_address("proxy_registry", value.strip())
        except InputError as exc:
            raise ValueError(exc.reason) from None

    @field_validator("allowed_hosts")
    @classmethod
    def _allowed_hosts(cls, value: str) -> str:
        from kizuna.hosts import AllowedHosts

        AllowedHosts.of(_host_list(value))  # ValueError naming the entry
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(f"{value!r}: only sqlite:// and postgresql:// URLs are supported")
        return value

    @field_validator("relayer_key", "anchorer_key")
    @classmethod
    def _private_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value().strip()
        digits = text[2:] if text.startswith("0x") else text
        if len(digits) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise ValueError("is not a 32-byte hex private key")  # the value is never echoed
        return SecretStr(text)

    @model_validator(mode="after")
    def _safe_outside_development(self) -> Settings:
        if self.environment == "development":
            return self
        secret = self.session_secret.get_secret_value()
        if type(self)._sessions and (secret.strip().lower() in PLACEHOLDER_SECRETS
                                     or len(secret) < MIN_SECRET_LENGTH):
            raise ValueError(
                f"session_secret: a placeholder or short secret (< {MIN_SECRET_LENGTH} characters)"
                f" is refused in {self.environment}; set KIZUNA_SESSION_SECRET")
        if self.benchmark_baseline:
            raise ValueError(
                "benchmark_baseline: the unchecked baseline route is only allowed in development")
        return self

    # --- derived

    def store_config(self) -> StoreConfig:
        """The content-store configuration these settings name."""
        return StoreConfig(kind=self.store, path=self.store_path.expanduser(),
                           ipfs_api_url=self.ipfs_api, timeout_s=self.ipfs_timeout)

    def allowed_host_list(self) -> list[str]:
        """``allowed_hosts`` as a list of entries."""
        return _host_list(self.allowed_hosts)

    def session_key(self) -> bytes:
        """The key of the session-token HMAC (a fixed dev key when none is set in development)."""
        secret = self.session_secret.get_secret_value()
        return (secret or "kizuna-development-only").encode()

    # --- loading

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = cls._config_file
        if path is not None:
            if path.suffix == ".toml":
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            else:
                sources.append(DotEnvSettingsSource(settings_cls, env_file=path))
        return tuple(sources)

    @classmethod
    def load(cls, config_file: str | os.PathLike[str] | None = None, *, sessions: bool = True,
             **overrides: Any) -> Settings:
        """Settings from the environment, ``config_file`` (or ``$KIZUNA_CONFIG``), ``overrides``.
        ``sessions=False``: for a process that signs no one in (a threshold proxy node, whose
        reads are authenticated by the provider's signed request alone), so no
        ``session_secret`` is asked for.

        Raises ``ConfigError`` naming the first bad field and why (never echoing a secret).
        """
        named = config_file if config_file is not None else os.environ.get("KIZUNA_CONFIG")
        path = Path(named).expanduser() if named else None
        if path is not None and not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        scoped: type[Settings] = (type("FileSettings", (cls,), {"_config_file": path,
                                                                "_sessions": sessions})
                                  if path or not sessions else cls)
        try:
            return scoped(**overrides)
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from None

    def __repr_args__(self) -> Any:
        # SecretStr already redacts; listed explicitly so a future plain-str key cannot leak.
        for name, value in super().__repr_args__():
            if name in ("relayer_key", "anchorer_key", "session_secret") and value is not None:
                yield name, "**********"
            else:
                yield name, value


def _host_list(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "settings"
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"configuration {where}: {message}"


__all__ = ["DEFAULT_MAX_JSON_BODY_BYTES", "Environment", "Settings", "default_database_url"]
