"""Research sharing with consent from the terminal (docs/research.md).

``kizuna researcher study create`` / ``studies`` / ``export``: a researcher verified in the
provider registry registers a study and exports the cohort's de-identified data as FHIR Bulk
NDJSON (each record read through the provider read path, a receipt each).
``kizuna patient studies`` / ``consent`` / ``withdraw``: a patient sees the studies, shares a
de-identified copy of chosen scopes with one (made on this machine), or withdraws.

A study's registration is sent with the researcher's key: the account pays its gas (on
``kizuna up``'s chain the dev accounts have ether). The consent and the withdrawal are a signed
``StudyConsent`` / ``StudyWithdrawal`` the service relays (no gas), or with ``--send-myself``
the patient's own transaction."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from kizuna.cli.output import Column, emit, json_option, print_facts, print_table
from kizuna.cli.participant import (
    RoleArgs,
    Session,
    open_session,
    parse_when,
    role_options,
    show_time,
)
from kizuna.errors import InputError

_DURATION = re.compile(r"^(\d+)d$")


def _ends(value: str, now: int) -> int:
    """``--ends``: ``90d`` from now, or a last day ``YYYY-MM-DD`` (UTC, end of day)."""
    found = _DURATION.match(value.strip())
    moment = (now + int(found.group(1)) * 86_400 if found
              else parse_when(value, field="ends", end_of_day=True))
    if moment <= now:
        raise InputError("ends", f"{value} is not in the future")
    return moment


def _study_dict(study: Any, consent: Any | None = None) -> dict[str, Any]:
    out = {"study": "0x" + study.study_id.hex(), "researcher": study.researcher,
           "purpose": study.purpose, "scopes": list(study.scopes),
           "ends_at": study.ends_at, "registered_at": study.registered_at}
    if consent is not None:
        out["consented"] = consent.consented
    return out


@contextmanager
def _researcher(kwargs: dict[str, Any]) -> Iterator[tuple[Session, Any]]:
    from kizuna.client.provider import ProviderClient

    with open_session(RoleArgs.take(kwargs)) as session:
        yield session, ProviderClient(signer=session.signer, service=session.service,
                                      chain=lambda: session.chain)


@click.group("researcher")
def researcher() -> None:
    """Research studies: register one (as a verified researcher) and export its data."""


@researcher.group("study")
def study_group() -> None:
    """Your studies in the study registry."""


@study_group.command("create")
@click.option("--purpose", required=True, help="What the data is for, as patients will see it.")
@click.option("--scope", "scopes", multiple=True, required=True, metavar="LABEL",
              help="A scope label the study asks for (repeatable), e.g. Observation:laboratory.")
@click.option("--ends", required=True, metavar="WHEN",
              help="When the study ends: 90d, or a last day YYYY-MM-DD (UTC).")
@click.option("--salt", default=None, help="Makes the study id (default: random).")
@role_options
@json_option
def study_create(purpose: str, scopes: tuple[str, ...], ends: str, salt: str | None,
                 as_json: bool, **kwargs: Any) -> None:
    """Register a study (your account must be a verified, active provider).

    \b
    Example:
      kizuna researcher study create --purpose "Blood pressure in adults" \\
          --scope Observation:vital-signs --scope Condition --ends 90d --key lab
    """
    from kizuna.crypto.scopes import scope_label

    labels = [str(scope_label(s, field="scope")) for s in scopes]
    raw_salt = (os.urandom(32) if salt is None
                else salt.encode().ljust(32, b"\0")[:32] if len(salt.encode()) <= 32 else None)
    if raw_salt is None:
        raise InputError("salt", "at most 32 bytes")
    with _researcher(kwargs) as (session, client):
        chain = session.chain
        if not chain.registry.is_active_provider(client.address):
            raise InputError("key", f"{client.address} is not a verified, active provider: "
                                    "a registrar must add it first (kizuna registrar add)")
        ends_at = _ends(ends, chain.head().timestamp)
        chain.studies.register_study(raw_salt, purpose, labels, ends_at, signer=session.signer)
        found = chain.studies.study(chain.studies.study_id(client.address, raw_salt))
    assert found is not None
    data = _study_dict(found)
    emit(data, human=lambda: print_facts(
        {"Study": data["study"], "Purpose": found.purpose, "Scopes": ", ".join(found.scopes),
         "Ends": show_time(found.ends_at)}, title="Study registered"))


@researcher.command("studies")
@role_options
@json_option
def researcher_studies(as_json: bool, **kwargs: Any) -> None:
    """Your studies and how many patients consent to each now."""
    with _researcher(kwargs) as (session, client):
        mine = [s for s in session.chain.studies.studies() if s.researcher == client.address]
        rows = [{**_study_dict(s),
                 "patients": len(session.chain.studies.consenting_patients(s.study_id))}
                for s in mine]
    emit(rows, human=lambda: print_table(
        [{**r, "ends": show_time(r["ends_at"])} for r in rows],
        [Column("study", "Study"), Column("purpose", "Purpose"),
         Column("patients", "Patients"), Column("ends", "Ends")], empty="no studies"))


@researcher.command("export")
@click.argument("study")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Directory for the NDJSON files (one per resource type).")
@role_options
@json_option
def export(study: str, output: Path, as_json: bool, **kwargs: Any) -> None:
    """Export the cohort's shared data as FHIR Bulk Data NDJSON.

    Every record is read through the provider read path (signed request, access check,
    re-encryption, receipt on the patient's record of reads); a patient who withdrew is not
    read.

    \b
    Example:
      kizuna researcher export 0x3fa9... -o cohort/ --key lab
    """
    from kizuna.research.studies import export_study, parse_study_id

    study_id = parse_study_id(study)
    with _researcher(kwargs) as (_, client):
        counts = export_study(client, study_id, output)
    data = {"study": "0x" + study_id.hex(), "directory": str(output), "counts": counts}
    emit(data, human=lambda: print_table(
        [{"type": k, "count": v} for k, v in sorted(counts.items())],
        [Column("type", "Resource type"), Column("count", "Resources")],
        title=f"Written to {output}", empty="no consenting patient has shared data yet"))


# -- the patient's side ----------------------------------------------------------------------

@click.command("studies")
@role_options
@json_option
def patient_studies(as_json: bool, **kwargs: Any) -> None:
    """The studies in the study registry, and whether you consent to each.

    \b
    Example:
      kizuna patient studies --key aiko
    """
    from kizuna.cli.patient import _patient

    with _patient(kwargs) as (session, client):
        now = session.chain.head().timestamp
        rows = [_study_dict(s, session.chain.studies.consent_of(s.study_id, client.address))
                for s in session.chain.studies.studies() if s.ends_at > now]
    emit(rows, human=lambda: print_table(
        [{**r, "scopes": ", ".join(r["scopes"]), "ends": show_time(r["ends_at"]),
          "yours": "consented" if r["consented"] else "-"} for r in rows],
        [Column("study", "Study"), Column("purpose", "Purpose"), Column("scopes", "Asks for"),
         Column("ends", "Ends"), Column("yours", "You")], empty="no open studies"))


@click.command("consent")
@click.argument("study")
@click.option("--scope", "scopes", multiple=True, required=True, metavar="LABEL",
              help="A scope the study asks for that you share (repeatable).")
@click.option("--send-myself", is_flag=True,
              help="Record the consent with your own transaction (you pay its gas) instead "
                   "of a signature the service relays.")
@role_options
@json_option
def consent(study: str, scopes: tuple[str, ...], send_myself: bool, as_json: bool,
            **kwargs: Any) -> None:
    """Share a de-identified copy of chosen records with a study, and consent.

    The copy is made here: names, identifiers, addresses, phone numbers, free text and
    attachments removed, dates moved by an offset only you can compute, ages over 89
    grouped. It is encrypted and registered as your records in the study's scope, which the
    study's researcher is granted until the study ends. The consent is a signature the
    service relays to the study registry (no gas for you), or with --send-myself your own
    transaction.

    \b
    Example:
      kizuna patient consent 0x3fa9... --scope Observation:vital-signs --key aiko
    """
    from kizuna.cli.patient import _patient
    from kizuna.research.studies import consent_to_study, parse_study_id

    study_id = parse_study_id(study)
    with _patient(kwargs) as (session, client):
        share = consent_to_study(client, study_id, list(scopes),
                                 journal_root=session.home.imports_dir,
                                 relayed=not send_myself)
    data = share.as_dict()
    emit(data, human=lambda: print_facts(
        {"Study": data["study"], "Scopes": ", ".join(share.labels),
         "Resources shared": share.resources, "Left out": share.left_out,
         "Consent transaction": share.consent_tx}, title="Consent given"))


@click.command("withdraw")
@click.argument("study")
@click.option("--send-myself", is_flag=True,
              help="Record the withdrawal with your own transaction (you pay its gas) instead "
                   "of a signature the service relays.")
@role_options
@json_option
def withdraw(study: str, send_myself: bool, as_json: bool, **kwargs: Any) -> None:
    """Withdraw your consent to a study: its reads stop now (what it read before stays on
    your record of reads). The withdrawal is a signature the service relays to the study
    registry (no gas for you, as for the consent), or with --send-myself your own
    transaction.

    \b
    Example:
      kizuna patient withdraw 0x3fa9... --key aiko
    """
    from kizuna.cli.patient import _patient
    from kizuna.research.studies import parse_study_id, withdraw_from_study

    study_id = parse_study_id(study)
    with _patient(kwargs) as (_, client):
        tx = withdraw_from_study(client, study_id, relayed=not send_myself)
    data = {"study": "0x" + study_id.hex(), "withdrawn": True, "tx": tx}
    emit(data, human=lambda: click.echo(f"Consent withdrawn (transaction {tx})."))


PATIENT_COMMANDS = (patient_studies, consent, withdraw)

__all__ = ["PATIENT_COMMANDS", "researcher"]
