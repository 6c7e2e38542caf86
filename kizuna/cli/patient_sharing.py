"""``kizuna patient ips | share | links | unshare``: one-off sharing from the terminal — an
International Patient Summary (JSON and PDF) and SMART Health Links (kizuna.sharing).

Everything is made on this machine: records are decrypted here, the summary built here, the
link's content encrypted here under a key that only the printed link carries. The service keeps
the encrypted files, counts passcode guesses and records who opened the link."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from kizuna.cli.output import Column, emit, json_option, print_facts, print_table
from kizuna.cli.participant import match_id, parse_when, role_options, show_time, write_output
from kizuna.errors import InputError

_DURATION = re.compile(r"^(\d+)([hd])$")


def _expires(value: str | None, now: int) -> int | None:
    """``--expires``: ``24h``, ``7d``, or a last day ``YYYY-MM-DD`` (UTC)."""
    if value is None:
        return None
    found = _DURATION.match(value.strip())
    if found:
        amount = int(found.group(1))
        if amount <= 0:
            raise InputError("expires", "must be at least 1h")
        return now + amount * (3600 if found.group(2) == "h" else 86_400)
    moment = parse_when(value, field="expires", end_of_day=True)
    if moment <= now:
        raise InputError("expires", f"{value} is in the past")
    return moment


def _api(session: Any) -> tuple[Any, str]:
    """The API client of the session and its URL: links are served by a running service."""
    api = getattr(session.service, "api", None)
    if api is None or session.api_url is None:
        raise InputError("local", "links are served by the Kizuna API: run without --local "
                                  "(against `kizuna up` or --api URL)")
    return api, str(session.api_url)


def _write_private(path: Path, data: bytes) -> None:
    write_output(data, path)


@click.command("ips")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Write the IPS Bundle (FHIR JSON) here (mode 0600).")
@click.option("--pdf", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a readable PDF of it here.")
@role_options
def ips(output: Path, pdf: Path | None, **kwargs: Any) -> None:
    """Build your International Patient Summary (HL7 IPS) from your records, here.

    Problems, allergies, medications, immunizations, recent results and vital signs; a
    section with nothing in your records says so. The summary is checked against the IPS
    profile's required sections before it is written.

    \b
    Examples:
      kizuna patient ips -o summary.json --key aiko
      kizuna patient ips -o summary.json --pdf summary.pdf --key aiko
    """
    from kizuna.cli.patient import _patient
    from kizuna.sharing.ips import ips_pdf, sections_of
    from kizuna.sharing.share import own_ips

    with _patient(kwargs) as (_, client):
        bundle = own_ips(client)
    _write_private(output, json.dumps(bundle, indent=2, ensure_ascii=False).encode() + b"\n")
    if pdf is not None:
        _write_private(pdf, ips_pdf(bundle))
    counts = {section.title: len(lines) for section, lines in sections_of(bundle)}
    click.echo(f"wrote {output}" + (f" and {pdf}" if pdf else ""), err=True)
    for title, count in counts.items():
        click.echo(f"  {title}: {count or 'none in your records'}", err=True)


@click.command("share")
@click.option("--ips", "with_ips", is_flag=True, help="Share your International Patient Summary.")
@click.option("--records", "record_ids", multiple=True, metavar="ID",
              help="Share these FHIR records (0x id or a 6+ digit prefix; repeat).")
@click.option("--passcode", help="The reader must also type this (4-128 characters).")
@click.option("--attempts", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Wrong passcodes before the link locks.")
@click.option("--expires", metavar="WHEN", help="24h, 7d, or a last day YYYY-MM-DD (UTC).")
@click.option("--label", help="A short description the reader sees (80 characters).")
@click.option("--qr", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the link's QR code as a PNG here.")
@click.option("--no-terminal-qr", is_flag=True, help="Do not draw the QR code in the terminal.")
@role_options
@json_option
def share(with_ips: bool, record_ids: tuple[str, ...], passcode: str | None, attempts: int,
          expires: str | None, label: str | None, qr: Path | None, no_terminal_qr: bool,
          as_json: bool, **kwargs: Any) -> None:
    """Make a SMART Health Link to your summary or to chosen records.

    The content is encrypted here under a new key that only the printed link (shlink:/...)
    holds; the service keeps the encrypted file, asks for the passcode, stops answering after
    --expires or `kizuna patient unshare`, and records every opening (`kizuna patient links`).
    Anyone holding the link (and the passcode) can read what it shares: hand it on with care.

    \b
    Examples:
      kizuna patient share --ips --expires 7d --passcode 4711 --qr link.png --key aiko
      kizuna patient share --records 0x3fa2c1 --records 0x9b0e44 --expires 24h --key aiko
    """
    import time

    from kizuna.cli.patient import _patient
    from kizuna.sharing.share import own_ips, own_resources, records_bundle
    from kizuna.sharing.share import share as make_link

    if with_ips == bool(record_ids):
        raise InputError("share", "give either --ips or --records ID (one or more)")
    with _patient(kwargs) as (session, client):
        api, api_url = _api(session)
        expires_at = _expires(expires, int(time.time()))
        if with_ips:
            documents = [own_ips(client)]
        else:
            known = [bytes(r.record_id) for r in client.records()]
            chosen = [match_id(given, known, field="records") for given in record_ids]
            documents = [records_bundle(own_resources(client, record_ids=chosen))]
        made = make_link(api, api_url, documents,
                         label=label or ("Patient summary" if with_ips else "Health records"),
                         expires_at=expires_at, passcode=passcode, max_attempts=attempts)
    import segno

    code = segno.make(made.uri, error="m")
    if qr is not None:
        code.save(str(qr), scale=6, border=4)
    data = {"link": made.uri, "link_id": made.link["link_id"], "flag": made.link["flag"],
            "expires_at": expires_at, "qr": str(qr) if qr else None}

    def human() -> None:
        click.echo(made.uri)
        if not no_terminal_qr:
            code.terminal(out=sys.stdout, compact=True)
        print_facts({"Link id": made.link["link_id"],
                     "Expires": show_time(expires_at) or "never (unshare to end it)",
                     "Passcode": "required" if passcode else "none",
                     "QR code": str(qr) if qr else "-"})

    emit(data, human=human)


@click.command("links")
@role_options
@json_option
def links(as_json: bool, **kwargs: Any) -> None:
    """List your SMART Health Links and every time one was opened (or refused).

    \b
    Example:
      kizuna patient links --key aiko
    """
    from kizuna.cli.patient import _patient

    with _patient(kwargs) as (session, _):
        found = _api(session)[0].links()

    def human() -> None:
        if not found:
            click.echo("no links")
        for link in found:
            print_facts({"Link": link["link_id"], "Label": link["label"] or "-",
                         "State": link["state"],
                         "Made": show_time(link["created_at"]),
                         "Expires": show_time(link["expires_at"]) or "never",
                         "Passcode tries left": ("-" if link["attempts_left"] is None
                                                 else link["attempts_left"])})
            print_table([{**a, "when": show_time(a["at"])} for a in link["accesses"]],
                        [Column("when", "When"), Column("recipient", "Who"),
                         Column("outcome", "Outcome")], empty="  never opened")
            click.echo()

    emit(found, human=human)


@click.command("unshare")
@click.argument("link")
@role_options
def unshare(link: str, **kwargs: Any) -> None:
    """End a SMART Health Link: from now on it answers no one. LINK is its id (from
    `kizuna patient links`), a unique prefix of it, or the shlink:/ link itself.

    \b
    Example:
      kizuna patient unshare Xk3q --key aiko
    """
    from kizuna.cli.patient import _patient
    from kizuna.sharing.shl import parse_link

    given = link.strip()
    if "shlink:/" in given:
        given = parse_link(given).url.rstrip("/").rsplit("/", 1)[-1]
    with _patient(kwargs) as (session, _):
        api, _ = _api(session)
        ids = [str(x["link_id"]) for x in api.links()]
        matches = [x for x in ids if x.startswith(given)] if given else []
        if len(matches) != 1:
            raise InputError("link", f"{link!r} names no link of yours" if not matches
                             else f"{link!r} names {len(matches)} links: give more of the id")
        api.revoke_link(matches[0])
    click.echo(f"link {matches[0]} revoked: it answers no one from now on", err=True)


COMMANDS = (ips, share, links, unshare)

__all__ = ["COMMANDS"]
