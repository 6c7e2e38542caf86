"""``kizuna provider``: a verified provider's use of Kizuna from the terminal.

Every command unlocks the provider's key (``--key NAME``; its wallet-derived Umbral key is the
one in the provider registry) and runs :class:`~kizuna.client.provider.ProviderClient` against
the API (default) or in-process (``--local``). A read is a signed request; the capsule
fragments that come back are checked and the record is decrypted here, against the commitment
the provider's own node reports. ``kizuna provider fhir-proxy`` (when installed) serves the
granted records to ordinary FHIR clients.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kizuna.cli.output import Column, ExitCode, emit, json_option, print_facts, print_table
from kizuna.cli.participant import (
    RoleArgs,
    Session,
    hex32,
    known_names,
    match_id,
    open_session,
    parse_when,
    role_options,
    short,
    show_time,
    write_output,
)
from kizuna.errors import InputError

if TYPE_CHECKING:
    from kizuna.client.provider import ProviderClient

SEND_KINDS = {"report": "report", "prescription": "prescription",
              "booking": "booking-confirmation", "booking-cancellation": "booking-cancellation",
              "data": "data"}
"""What ``kizuna provider send`` calls a message → the API's care kind."""

CONTENT_TYPES = {"fhir": "application/fhir+json", "pdf": "application/pdf",
                 "dicom": "application/dicom"}

FHIR_PROXY = "kizuna.cli.fhir_proxy"


@contextmanager
def _provider(kwargs: dict[str, Any]) -> Iterator[tuple[Session, Any]]:
    args = RoleArgs.take(kwargs)
    with open_session(args) as session:
        yield session, provider_client(session)


def provider_client(session: Session) -> ProviderClient:
    """The session's :class:`ProviderClient` as every ``kizuna provider`` command builds it (its
    proxy set; the chain connected when first needed)."""
    from kizuna.cli.proxy import proxy_set_for
    from kizuna.client.provider import ProviderClient

    return ProviderClient(signer=session.signer, service=session.service,
                          chain=lambda: session.chain, proxies=proxy_set_for(session))


class ProviderGroup(click.Group):
    """Adds ``fhir-proxy`` from :data:`FHIR_PROXY` when that module is installed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        if importlib.util.find_spec(FHIR_PROXY) is not None:
            names.add("fhir-proxy")
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name == "fhir-proxy" and \
                importlib.util.find_spec(FHIR_PROXY) is not None:
            module = importlib.import_module(FHIR_PROXY)
            candidate = getattr(module, "fhir_proxy", None)
            if isinstance(candidate, click.Command):
                self.add_command(candidate, cmd_name)
                return candidate
        return found


@click.group("provider", cls=ProviderGroup)
def provider() -> None:
    """The provider's side: patients who granted you, their records, reads, messages.

    Every command needs your key (--key NAME or $KIZUNA_KEY) and its passphrase. Your key must
    be verified in the provider registry by a registrar (`kizuna registrar add-provider`).
    Each read is a request you sign; the record is decrypted on this machine and the read is
    recorded as a receipt the patient and auditors can see.

    \b
    Examples:
      export KIZUNA_KEY=dr-tanaka KIZUNA_PASSPHRASE=kizuna-demo
      kizuna provider patients
      kizuna provider records --patient aiko
      kizuna provider read aiko 0x3fa2c1 -o lab.json
      kizuna provider send aiko report visit-report.json
    """


@provider.command("patients")
@role_options
@json_option
def patients(as_json: bool, **kwargs: Any) -> None:
    """List the patients who granted you at least one live scope.

    \b
    Example:
      kizuna provider patients --key dr-tanaka
    """
    with _provider(kwargs) as (session, client):
        found = client.patients()
        names = _names(session)
    rows = [{"patient": p, "name": names.get(p)} for p in found]
    emit(rows, human=lambda: print_table(
        rows, [Column("patient", "Patient"), Column("name", "Key name")],
        title="Patients who granted you", empty="no patient has granted you anything"))


def _names(session: Session) -> dict[str, str]:
    return known_names(session.home)


@provider.command("records")
@click.option("--patient", "patient_", metavar="PATIENT", help="Only this patient's records.")
@click.option("--type", "type_", metavar="TYPE",
              help="Only this content type: fhir, pdf, dicom or a MIME type.")
@click.option("--since", metavar="DATE", help="Only records added on or after DATE.")
@role_options
@json_option
def records(patient_: str | None, type_: str | None, since: str | None, as_json: bool,
            **kwargs: Any) -> None:
    """List the records you may read now (scopes of live grants; superseded versions left out).

    \b
    Examples:
      kizuna provider records --key dr-tanaka
      kizuna provider records --patient aiko --type fhir --since 2026-01-01 --json
    """
    content_type = CONTENT_TYPES.get(type_, type_) if type_ else None
    since_s = parse_when(since, field="since") if since else None
    with _provider(kwargs) as (session, client):
        who = session.resolve(patient_, field="patient") if patient_ else None
        found = client.records(patient=who, content_type=content_type)
    rows = [{"patient": r.patient, "record_id": hex32(r.record_id),
             "content_type": r.content_type, "size": r.size, "created_at": r.created_at,
             "date": show_time(r.created_at), "cid": r.cid}
            for r in found if since_s is None or r.created_at >= since_s]
    emit(rows, human=lambda: print_table(
        [{**r, "record_id": short(r["record_id"])} for r in rows],
        [Column("record_id", "Record"), Column("patient", "Patient"),
         Column("content_type", "Type"), Column("date", "Added"), Column("size", "Bytes")],
        title=f"{len(rows)} readable record(s)", empty="nothing readable"))


@provider.command("read")
@click.argument("patient_")
@click.argument("record_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the decrypted record here (mode 0600); default stdout.")
@role_options
def read(patient_: str, record_id: str, output: Path | None, **kwargs: Any) -> None:
    """Read one record of PATIENT: a signed request, the proxy's re-encryption, decryption
    here (checked against the on-chain commitment). RECORD_ID may be a prefix of 6+ digits.

    The read leaves a receipt signed by you. Nothing is written unless the whole record
    decrypted and matched its commitment.

    \b
    Example:
      kizuna provider read aiko 0x3fa2c1 -o lab.json --key dr-tanaka
    """
    with _provider(kwargs) as (session, client):
        who = session.resolve(patient_, field="patient")
        readable = [bytes(r.record_id) for r in client.records(patient=who)]
        rid = match_id(record_id, readable, field="record") if len(record_id) < 66 \
            else bytes.fromhex(record_id.removeprefix("0x"))
        with tempfile.TemporaryFile() as spool:
            size = client.read_to(patient=who, record_id=rid, destination=spool)
            spool.seek(0)
            data = spool.read()
    if output is None and _is_json(data):
        data = json.dumps(json.loads(data), indent=2, ensure_ascii=False).encode() + b"\n"
    write_output(data, output)
    if output is not None:
        click.echo(f"wrote {size} bytes to {output}", err=True)


@provider.command("export")
@click.argument("patient_")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the export here (mode 0600); default stdout.")
@click.option("--format", "fmt", type=click.Choice(["bundle", "ndjson"]), default="bundle",
              show_default=True, help="A FHIR Bundle (collection) or NDJSON, one resource "
              "a line.")
@click.option("--since", metavar="DATE", help="Only records added on or after DATE.")
@click.option("--until", metavar="DATE", help="Only records added on or before DATE.")
@click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Read requests in flight at once.")
@role_options
@json_option
def export_(patient_: str, output: Path | None, fmt: str, since: str | None,
            until: str | None, workers: int, as_json: bool, **kwargs: Any) -> None:
    """Export what you may read of PATIENT, decrypted here: a FHIR Bundle or NDJSON.

    Each record is its own signed read request and leaves its own receipt, as with
    `provider read`; the requests are pipelined (--workers in flight) and written in order
    as they come. A record refused meanwhile (a grant revoked or expired) is reported and
    the rest go on (exit code 4 when any was). File records (PDF, DICOM) are skipped and
    counted: read them with `provider read`. Scopes are blinded, so a provider cannot pick
    records by resource type before reading them: filter by date.

    \b
    Example:
      kizuna provider export aiko -o aiko.json --key dr-tanaka
      kizuna provider export aiko --format ndjson --since 2026-01-01 > recent.ndjson
    """
    import sys
    import time

    from kizuna.cli.output import progress
    from kizuna.client.export import export_as_provider, private_file

    if as_json and output is None:
        raise InputError("output", "--json prints the summary on stdout: give -o FILE")
    since_s = parse_when(since, field="since") if since else None
    until_s = parse_when(until, field="until", end_of_day=True) + 1 if until else None
    started = time.monotonic()
    with _provider(kwargs) as (session, client), progress("Reading", unit="records") as bar:
        who = session.resolve(patient_, field="patient")

        def step(_done: int, total: int) -> None:
            bar.update(total=total)
            bar.advance()

        sink = sys.stdout.buffer if output is None else private_file(output, field="output")
        try:
            result = export_as_provider(client, who, sink, fmt=fmt,  # type: ignore[arg-type]
                                        since=since_s, until=until_s, workers=workers,
                                        on_record=step)
        finally:
            if sink is sys.stdout.buffer:
                sink.flush()
            else:
                sink.close()
    seconds = time.monotonic() - started
    summary = {**result.as_dict(), "patient": who, "format": fmt, "seconds": round(seconds, 3)}
    rate = result.resources / seconds if seconds > 0 else 0.0
    click.echo(f"exported {result.resources} resource(s) from {result.records} record(s) "
               f"({result.receipts} receipt(s)) in {seconds:.1f} s ({rate:.0f}/s)"
               f"{f', {result.files_skipped} file(s) skipped' if result.files_skipped else ''}",
               err=True)
    for refused in result.refused:
        click.echo(f"refused: 0x{bytes(refused.record.record_id).hex()}: {refused.refused}",
                   err=True)
    emit(summary, human=lambda: None)
    if result.refused:
        raise SystemExit(int(ExitCode.ACCESS_DENIED))


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


@provider.command("request")
@click.argument("patient_")
@click.option("--note", required=True, help="Why you ask (encrypted to the patient).")
@role_options
@json_option
def request(patient_: str, note: str, as_json: bool, **kwargs: Any) -> None:
    """Ask PATIENT for access, with a note only the patient can read.

    \b
    Example:
      kizuna provider request kenji --note "Referral: cardiology, please share vitals"
    """
    with _provider(kwargs) as (session, client):
        who = session.resolve(patient_, field="patient")
        sent = client.request_access(who, note.encode())
    result = {"patient": who, "ref": hex32(sent.ref), "tx_hash": hex32(sent.tx_hash)}
    emit(result, human=lambda: print_facts(result, title="Access requested"))


@provider.command("send")
@click.argument("patient_")
@click.argument("kind", type=click.Choice(sorted(SEND_KINDS)))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--content-type", help="Default: FHIR JSON for .json, PDF for .pdf, else text.")
@role_options
@json_option
def send(patient_: str, kind: str, file: Path, content_type: str | None, as_json: bool,
         **kwargs: Any) -> None:
    """Send PATIENT a report, prescription or booking confirmation, encrypted to the patient
    (their published inbox key, signature checked) and logged as a care event on-chain.

    \b
    Examples:
      kizuna provider send aiko report visit-report.json --key dr-tanaka
      kizuna provider send aiko prescription rx.json
    """
    data = file.read_bytes()
    if content_type is None:
        content_type = {".json": "application/fhir+json", ".pdf": "application/pdf"}.get(
            file.suffix.lower(), "text/plain")
    with _provider(kwargs) as (session, client):
        who = session.resolve(patient_, field="patient")
        sent = client.send(who, SEND_KINDS[kind], data, content_type=content_type)
    result = {"patient": who, "kind": SEND_KINDS[kind], "ref": hex32(sent.ref),
              "cid": sent.cid, "tx_hash": hex32(sent.tx_hash)}
    emit(result, human=lambda: print_facts(result, title=f"Sent {kind}"))


@provider.command("break-glass")
@click.argument("patient_")
@click.option("--reason", "reason", required=True, type=int,
              help="Reason code (recorded on-chain; e.g. 1 = unconscious patient).")
@click.option("--hours", type=int, required=True, help="How long, within the patient's policy.")
@role_options
@json_option
def break_glass(patient_: str, reason: int, hours: int, as_json: bool, **kwargs: Any) -> None:
    """Open emergency access to PATIENT's records, if their policy allows it. Logged on-chain
    and flagged for an auditor's review; reads still need the patient's emergency kit.

    \b
    Example:
      kizuna provider break-glass aiko --reason 1 --hours 4 --key dr-sato
    """
    if hours <= 0:
        raise InputError("hours", "must be at least 1")
    if not 0 <= reason < 1 << 16:
        raise InputError("reason", "must be a code between 0 and 65535")
    with _provider(kwargs) as (session, client):
        who = session.resolve(patient_, field="patient")
        done = client.break_glass(who, duration=hours * 3600, reason_code=reason)
    result = {"patient": who, "hours": hours, "reason": reason, "tx_hash": hex32(done.tx_hash),
              "block_number": done.block_number}
    emit(result, human=lambda: print_facts(result, title="Emergency access open"))


@provider.command("inbox")
@role_options
@json_option
def inbox(as_json: bool, **kwargs: Any) -> None:
    """Your inbox: the state of your access requests and bookings sent to you.

    \b
    Example:
      kizuna provider inbox --key dr-tanaka
    """
    with _provider(kwargs) as (_, client):
        items = client.inbox()
    rows = [{"kind": i.kind, "patient": i.patient, "ref": hex32(i.ref), "cid": i.cid,
             "block_number": i.block_number} for i in items]
    emit(rows, human=lambda: print_table(
        [{**r, "ref": short(r["ref"])} for r in rows],
        [Column("kind", "Kind"), Column("patient", "Patient"), Column("ref", "Ref"),
         Column("block_number", "Block")], title="Inbox", empty="inbox empty"))


def _add_data_request_commands() -> None:
    """Data requests (#16) live in kizuna/cli/data_requests.py."""
    from kizuna.cli.data_requests import PROVIDER_COMMANDS

    for command in PROVIDER_COMMANDS:
        provider.add_command(command)


_add_data_request_commands()

__all__ = ["SEND_KINDS", "provider", "provider_client"]
