"""``kizuna provider fhir-proxy``: the provider's granted records as a read-only FHIR R4 server.

The command unlocks the provider's key (the role options of ``kizuna provider``), signs in to
the API (or, with ``--local``, runs the service in-process), and serves
:mod:`kizuna.fhirproxy` on 127.0.0.1 until Ctrl-C. Every record it serves was read through a
signed request that left a receipt in the service, and it is dropped as soon as its grant is no
longer live.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from kizuna.cli.output import json_option, print_facts
from kizuna.cli.participant import RoleArgs, open_session, role_options
from kizuna.errors import AccessDenied
from kizuna.fhirproxy.server import DEFAULT_PORT
from kizuna.fhirproxy.source import GrantedSource
from kizuna.types import Address
from kizuna.wire.records import RecordInfo

T = TypeVar("T")


class RenewingSource:
    """A :class:`GrantedSource` that signs in again when the API session has expired.

    The API answers an expired session like any refusal (``AccessDenied``); listing the
    provider's own patients and records is never refused to a signed-in provider, so a refusal
    there is retried once after a fresh sign-in. Reads are not retried: a refused read is the
    access check's answer (a revoke between the listing and the read)."""

    def __init__(self, inner: GrantedSource, renew: Callable[[], object] | None) -> None:
        self.inner = inner
        self.renew = renew

    @property
    def address(self) -> Address:
        return self.inner.address

    def _listing(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except AccessDenied:
            if self.renew is None:
                raise
            self.renew()
            return call()

    def patients(self) -> list[Address]:
        return self._listing(self.inner.patients)

    def records(self, *, patient: str | None = None,
                content_type: str | None = None) -> list[RecordInfo]:
        return self._listing(lambda: self.inner.records(patient=patient,
                                                        content_type=content_type))

    def read(self, *, patient: str, record_id: bytes) -> bytes:
        return self.inner.read(patient=patient, record_id=record_id)


@click.command("fhir-proxy")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port on 127.0.0.1 to serve FHIR on (0: any free port).")
@click.option("--refresh", "ttl_s", type=click.FloatRange(0, 3600), default=2.0,
              show_default=True,
              help="Seconds an answer may rely on the last check of the grants (0: check the "
                   "service before every answer).")
@click.option("--allow-host", "extra_hosts", multiple=True, metavar="NAME[:PORT]",
              help="Another Host name to answer to (e.g. a reverse proxy's); repeatable. "
                   "127.0.0.1, localhost and [::1] are always allowed.")
@role_options
@json_option
def fhir_proxy(port: int, ttl_s: float, extra_hosts: tuple[str, ...], as_json: bool,
               **kwargs: Any) -> None:
    """Serve your granted records as a read-only FHIR R4 API on 127.0.0.1.

    Runs on your (the provider's) machine with your key: it asks the Kizuna service which
    records live grants let you read, reads them (each read signed by you, checked against the
    chain and receipted by the service), decrypts them here, and answers ordinary FHIR clients
    and EHR tools: GET /metadata, /Patient, /Observation?patient=...&date=ge2024-01-01,
    /Condition?code=http://snomed.info/sct|44054006, /Immunization/{id}, ...

    Decrypted data stays in this process's memory only. A record whose grant is revoked or has
    expired is no longer served from the next check on (--refresh seconds at most); what a
    FHIR client already fetched cannot be recalled. There is no authentication: the proxy
    listens on 127.0.0.1 only, for programs on this machine, and answers only requests
    addressed to 127.0.0.1, localhost or [::1] (a web page under another name that resolves
    to 127.0.0.1 is refused; --allow-host adds names). Stop it with Ctrl-C.

    \b
    Examples:
      kizuna provider fhir-proxy --key dr-tanaka
      kizuna provider fhir-proxy --key dr-tanaka --port 8091 --refresh 0
      curl 'http://127.0.0.1:8090/Observation?category=laboratory&date=ge2025-01-01'
    """
    from kizuna.client.provider import ProviderClient
    from kizuna.fhirproxy.cache import GrantedCache
    from kizuna.fhirproxy.server import ProxyServer

    args = RoleArgs.take(kwargs)
    with open_session(args) as session:
        client = ProviderClient(signer=session.signer, service=session.service,
                                chain=session.chain)
        api = getattr(session.service, "api", None)
        renew = (lambda: api.login(session.signer)) if api is not None else None
        cache = GrantedCache(RenewingSource(client, renew), ttl_s=ttl_s)
        cache.refresh()  # a provider without access, an unreachable service: fail now
        server = ProxyServer(cache, port=port, extra_hosts=extra_hosts)
        snapshot = cache.snapshot()
        facts = {
            "fhir_base": server.url,
            "metadata": f"{server.url}/metadata",
            "provider": session.address,
            "service": session.api_url or "in-process (--local)",
            "patients": len(snapshot.patient_ids),
            "resources": len([r for r in snapshot.resources if r.record_id]),
            "refresh_s": ttl_s,
        }

        def human() -> None:
            print_facts(facts, title="Kizuna FHIR proxy")
            click.echo("Ctrl-C stops it.", err=True)

        if as_json:  # one line, like `kizuna up --json`: a script reads it and goes on
            click.echo(json.dumps(facts))
        else:
            human()
        server.run()


__all__ = ["RenewingSource", "fhir_proxy"]
