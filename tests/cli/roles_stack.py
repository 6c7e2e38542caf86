"""The running ``kizuna up --demo`` of the role-command tests and a way to run ``kizuna``
against it. A module of its own, not conftest.py: every test package has a ``conftest``, so
``from conftest import ...`` would pick whichever package's conftest was imported first."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli_harness import Result, UpProcess, clean_env, run

from kizuna.stack.keyring import Keyring

if TYPE_CHECKING:
    from kizuna.cli.participant import Session
    from kizuna.client.patient import PatientClient
    from kizuna.client.provider import ProviderClient

PASSPHRASE = "kizuna-demo"


@dataclass
class Stack:
    """The running stack and a way to run ``kizuna`` against it."""

    home: Path
    up: UpProcess
    api_url: str
    rpc_url: str
    deployment_file: Path

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(self.home, **{"KIZUNA_PASSPHRASE": PASSPHRASE, **extra})

    def kizuna(self, *args: str, env: dict[str, str] | None = None,
               timeout: float = 180) -> Result:
        return run(self.home, *args, env=env or self.env(), timeout=timeout)

    @property
    def keyring(self) -> Keyring:
        """The home's keys, in process: for set-up (a test's own key, an address to compare
        with); `kizuna keys ...` itself is tested through the entry point in test_cli_keys."""
        return Keyring(self.home / "keys")

    def address(self, name: str) -> str:
        """Key ``name``'s address, read from its keystore (what `kizuna keys address` prints)
        without a ``kizuna`` process (~1 CPU-s each)."""
        return str(self.keyring.address(name))

    @contextmanager
    def patient(self, name: str) -> Iterator[PatientClient]:
        """Key ``name`` as the patient ``kizuna patient ... --key NAME`` is, in this process:
        the CLI's own session (keystore unlocked, signed in over this stack's API) and client,
        its inbox key published. For set-up a test does not check (a record added, a grant,
        a guardian): ~1 CPU-s less than a ``kizuna`` process each. Every command a test checks
        still runs through the entry point."""
        from kizuna.cli.patient import patient_client

        with self._session(name) as session:
            yield patient_client(session)

    @contextmanager
    def provider(self, name: str) -> Iterator[ProviderClient]:
        """Key ``name`` as the provider ``kizuna provider ... --key NAME`` is, in this process
        (see :meth:`patient`)."""
        from kizuna.cli.provider import provider_client

        with self._session(name) as session:
            yield provider_client(session)

    def add_resource(self, name: str, resource: dict[str, Any]) -> dict[str, str]:
        """Set-up: one FHIR resource added to ``name``'s records as ``kizuna patient add
        FILE.json`` adds it (validated alone, filed under its scope), in this process; its
        ``record_id`` and ``cid`` as ``patient add --json`` prints them. `patient add` itself:
        its own tests (test_cli_patient). Also its ``label`` (the scope it was filed under)."""
        from kizuna.cli.participant import hex32
        from kizuna.storage.fhir.importer import import_resource

        one = import_resource(resource)
        with self.patient(name) as client:
            stored = client.add_record(one.content, label=one.scope_label,
                                       content_type=one.content_type)
        return {"record_id": hex32(stored.record_id), "cid": stored.cid,
                "label": str(one.scope_label)}

    def grant(self, patient: str, provider: str, *labels: str, days: int = 3) -> None:
        """Set-up: ``patient`` grants ``provider`` the scopes ``labels`` for ``days``, as
        ``kizuna patient grant PROVIDER LABEL... --days N`` does, in this process."""
        from kizuna.cli.patient import expand_scopes

        with self.patient(patient) as client:
            client.grant(self.address(provider), expand_scopes(labels),
                         expires_at=client.now() + days * 86_400)

    @contextmanager
    def _session(self, name: str) -> Iterator[Session]:
        from kizuna.cli.participant import RoleArgs, open_session

        secret = self.home.parent / "passphrase.txt"  # what --passphrase-file reads
        if not secret.is_file():
            secret.write_text(PASSPHRASE + "\n")
        args = RoleArgs(key_name=name, passphrase_file=secret, home_dir=self.home,
                        config_file=None, api_url=None, local=False)
        with open_session(args) as session:
            yield session

    def ok(self, *args: str) -> Result:
        """Run and require exit 0 (the output shown if not)."""
        result = self.kizuna(*args)
        assert result.code == 0, f"kizuna {' '.join(args)} exited {result.code}:\n{result.err}"
        return result
