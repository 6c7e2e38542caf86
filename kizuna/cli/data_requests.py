"""Data requests from the terminal (:mod:`kizuna.client.data_requests`).

Patient: ``kizuna patient ask | data-requests | receive``. Provider: ``kizuna provider
requests | acknowledge | fulfil | decline``. Each step is a care event on-chain, sent by the
participant's own key; the request's fields and files never go on-chain."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from kizuna.cli.output import Column, emit, json_option, print_facts, print_table
from kizuna.cli.participant import hex32, match_id, role_options, short, show_time
from kizuna.errors import InputError
from kizuna.wire import data_requests as dr

_TYPES = {".json": "application/fhir+json", ".pdf": "application/pdf",
          ".txt": "text/plain", ".dcm": "application/dicom"}


def _row(r: dr.DataRequest) -> dict[str, Any]:
    period = " to ".join(p for p in (r.fields.since, r.fields.until) if p) or "any time"
    return {"request": hex32(r.request_id), "patient": r.patient, "provider": r.provider,
            "types": list(r.fields.types), "since": r.fields.since, "until": r.fields.until,
            "period": period, "status": r.status, "state": r.state, "overdue": r.overdue,
            "asked_at": r.asked_at, "deadline": r.deadline,
            "files": len(r.deliveries),
            "reason": next((a.reason for a in reversed(r.answers) if a.reason), None),
            "events": [{"state": "asked", "tx_hash": hex32(r.tx_hash),
                        "block_number": r.block_number, "at": r.asked_at}] + [
                {"state": a.state, "tx_hash": hex32(a.tx_hash), "block_number": a.block_number,
                 "at": a.answered_at} for a in r.answers]}


def _table(rows: list[dict[str, Any]], *, who: str, title: str, empty: str) -> None:
    shown = [{**r, "request": short(r["request"]), "types": ", ".join(r["types"]),
              who: short(r[who]), "deadline": show_time(r["deadline"])} for r in rows]
    print_table(shown, [Column("request", "Request"), Column(who, who.capitalize()),
                        Column("types", "Types"), Column("period", "Period"),
                        Column("status", "Status"), Column("files", "Files"),
                        Column("deadline", "Deadline")], title=title, empty=empty)


def _pick(given: str, requests: list[dr.DataRequest]) -> dr.DataRequest:
    rid = match_id(given, [r.request_id for r in requests], field="request")
    return next(r for r in requests if r.request_id == rid)


# --- patient --------------------------------------------------------------------------------


@click.command("ask")
@click.argument("provider")
@click.option("--type", "types", multiple=True, required=True, metavar="RESOURCE",
              help="A FHIR resource type you ask for (repeatable): Observation, ...")
@click.option("--since", help="First day of the period (YYYY, YYYY-MM or YYYY-MM-DD).")
@click.option("--until", help="Last day of the period.")
@click.option("--note", help="A note only the provider can read (encrypted to its key).")
@click.option("--deadline-days", type=int, default=dr.DEFAULT_DEADLINE_DAYS, show_default=True,
              help="Days the provider has to answer (HIPAA 164.524 / GDPR Art. 15: 30).")
@role_options
@json_option
def ask(provider: str, types: tuple[str, ...], since: str | None, until: str | None,
        note: str | None, deadline_days: int, as_json: bool, **kwargs: Any) -> None:
    """Ask PROVIDER for your records (right of access). The request is a care event on-chain
    (a commitment only: the types, period and note stay off-chain), so you can prove when you
    asked; `kizuna patient data-requests` follows it.

    \b
    Example:
      kizuna patient ask dr-tanaka --type Observation --type DiagnosticReport \\
          --since 2024-01-01 --until 2024-12-31 --note "All my lab results of 2024"
    """
    from kizuna.cli.patient import _patient
    from kizuna.client import data_requests as client

    with _patient(kwargs) as (session, patient):
        to = session.resolve(provider, field="provider")
        made = client.ask(client.transport(session.service), patient, to, types=list(types),
                          since=since, until=until, deadline_days=deadline_days, note=note)
    row = _row(made)
    emit(row, human=lambda: print_facts(
        {"request": row["request"], "provider": to, "types": ", ".join(row["types"]),
         "period": row["period"], "deadline": show_time(row["deadline"]),
         "tx_hash": row["events"][0]["tx_hash"]}, title="Data request sent"))


def _task_bundle(requests: list[dr.DataRequest]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "entry": [{"resource": dr.fhir_task(r)} for r in requests]}


@click.command("data-requests")
@click.option("--fhir", is_flag=True, help="Print a FHIR Bundle of Task resources.")
@role_options
@json_option
def data_requests(fhir: bool, as_json: bool, **kwargs: Any) -> None:
    """Your requests to providers and where each stands: open, acknowledged,
    fulfilled-in-part, fulfilled, declined — or overdue once the deadline passed (by the
    chain's clock). Take what was sent in with `kizuna patient receive`.

    \b
    Examples:
      kizuna patient data-requests --key aiko
      kizuna patient data-requests --fhir > tasks.json
    """
    from kizuna.cli.patient import _patient
    from kizuna.client import data_requests as client

    with _patient(kwargs) as (session, patient):
        found = client.transport(session.service).of_patient(patient.address)
    if fhir:
        click.echo(json.dumps(_task_bundle(found), indent=2))
        return
    rows = [_row(r) for r in found]
    emit(rows, human=lambda: _table(rows, who="provider", title="Data requests",
                                    empty="no data requests (ask with `kizuna patient ask`)"))


@click.command("receive")
@click.argument("request")
@role_options
@json_option
def receive(request: str, as_json: bool, **kwargs: Any) -> None:
    """Take the files a provider sent for REQUEST in as your records: decrypted here, checked
    against the provider's on-chain answer, each with a FHIR Provenance naming the provider
    and the request, registered as one batch. Running it again adds nothing twice.

    \b
    Example:
      kizuna patient receive 0x5c1e7a --key aiko
    """
    from kizuna.cli.patient import _patient
    from kizuna.client import data_requests as client

    with _patient(kwargs) as (session, patient):
        api = client.transport(session.service)
        chosen = _pick(request, api.of_patient(patient.address))
        result = client.receive(api, patient, chosen.request_id,
                                journal_root=session.home.imports_dir)
    done = {"request": hex32(chosen.request_id), "resources": result.resources,
            "registered": result.registered, "already_registered": result.already_registered,
            "batches": [hex32(b.root) for b in result.batches]}
    emit(done, human=lambda: print_facts(done, title="Received as your records"))


# --- provider -------------------------------------------------------------------------------


@click.command("requests")
@role_options
@json_option
def requests(as_json: bool, **kwargs: Any) -> None:
    """Data requests patients sent you, with their state and deadline (and the note, which
    only you can read: decrypted here).

    \b
    Example:
      kizuna provider requests --key dr-tanaka
    """
    from kizuna.cli.provider import _provider
    from kizuna.client import data_requests as client

    with _provider(kwargs) as (session, provider):
        api = client.transport(session.service)
        found = api.to_provider(provider.address)
        rows = [{**_row(r), "note": client.read_note(api, provider, r)} for r in found]
    emit(rows, human=lambda: _table(rows, who="patient", title="Data requests to you",
                                    empty="no data requests"))


def _answer(kwargs: dict[str, Any], request: str, state: str, *,
            files: list[tuple[bytes, str]] | None = None, reason: str | None = None) -> None:
    from kizuna.cli.provider import _provider
    from kizuna.client import data_requests as client

    with _provider(kwargs) as (session, provider):
        api = client.transport(session.service)
        chosen = _pick(request, api.to_provider(provider.address))
        done = client.answer(api, provider, chosen.request_id, state, files=files or [],
                             reason=reason)
    row = _row(done)
    emit(row, human=lambda: print_facts(
        {"request": row["request"], "status": row["status"], "files sent": row["files"],
         "tx_hash": row["events"][-1]["tx_hash"]}, title=f"Request {state}"))


@click.command("acknowledge")
@click.argument("request")
@role_options
@json_option
def acknowledge(request: str, as_json: bool, **kwargs: Any) -> None:
    """Tell the patient you have REQUEST in hand (a care event on-chain).

    \b
    Example:
      kizuna provider acknowledge 0x5c1e7a --key dr-tanaka
    """
    _answer(kwargs, request, dr.ACKNOWLEDGED)


@click.command("fulfil")
@click.argument("request")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False,
                                                    path_type=Path))
@click.option("--final", is_flag=True,
              help="This completes the request (else it is fulfilled in part).")
@role_options
@json_option
def fulfil(request: str, files: tuple[Path, ...], final: bool, as_json: bool,
           **kwargs: Any) -> None:
    """Send FILES for REQUEST, encrypted to the patient (FHIR JSON resources or Bundles, PDF,
    text): in part, or with --final the whole. With --final and no files, the parts sent
    already are the whole.

    \b
    Examples:
      kizuna provider fulfil 0x5c1e7a labs-2024.json --key dr-tanaka
      kizuna provider fulfil 0x5c1e7a discharge.pdf --final
    """
    if not files and not final:
        raise InputError("files", "give the files to send (or --final to close with the parts "
                                  "sent already)")
    sent = [(path.read_bytes(), _TYPES.get(path.suffix.lower(), "application/octet-stream"))
            for path in files]
    _answer(kwargs, request, dr.FULFILLED if final else dr.FULFILLED_IN_PART, files=sent)


@click.command("decline")
@click.argument("request")
@click.option("--reason", required=True, help="Why (the patient sees it; committed on-chain).")
@role_options
@json_option
def decline(request: str, reason: str, as_json: bool, **kwargs: Any) -> None:
    """Decline REQUEST, saying why.

    \b
    Example:
      kizuna provider decline 0x5c1e7a --reason "We hold no records of yours before 2020"
    """
    _answer(kwargs, request, dr.DECLINED, reason=reason)


PATIENT_COMMANDS = (ask, data_requests, receive)
PROVIDER_COMMANDS = (requests, acknowledge, fulfil, decline)

__all__ = ["PATIENT_COMMANDS", "PROVIDER_COMMANDS"]
