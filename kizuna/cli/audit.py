"""``kizuna audit``: the auditor's log, verification, FHIR export and anchoring on demand.

Over the API the auditor signs in with a key holding the auditor role (``KIZUNA_AUDITOR_ROLE``
on the AccessLog). With ``--local`` the same audit services run in this process against the
configured chain, content store and the service database (the node's logs are read afresh:
no cache is trusted) — no key is needed then, except to anchor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from kizuna.cli.output import (
    Column,
    ExitCode,
    emit,
    json_option,
    print_facts,
    print_table,
    progress,
)
from kizuna.cli.participant import (
    RoleArgs,
    hex32,
    parse_when,
    resolve_participant,
    role_options,
    settings_of,
    short,
    show_time,
    unlock,
)
from kizuna.cli.startup import loading
from kizuna.errors import AccessDenied, ConfigError, InputError, NodeUnreachable, NotFoundError


@dataclass
class Auditor:
    """Where the audit runs: the API (``api``, signed in) or in-process (``ctx``)."""

    home: Any
    api: Any = None
    ctx: Any = None
    signer: Any = None


@contextmanager
def _auditor(kwargs: dict[str, Any], *, needs_key: bool = False) -> Iterator[Auditor]:
    args = RoleArgs.take(kwargs)
    home, settings = settings_of(args)
    if args.local:
        with loading():  # the service (web3, SQLAlchemy, ...): the collector paused meanwhile
            from kizuna.services.context import close_context, open_context

        if settings.deployment_file is None or not Path(settings.deployment_file).is_file():
            raise NotFoundError(f"no deployment file at {settings.deployment_file}: start the "
                                "local stack with `kizuna up`, or set KIZUNA_DEPLOYMENT_FILE")
        signer = unlock(args, home) if needs_key else None
        ctx = open_context(settings)
        try:
            yield Auditor(home=home, ctx=ctx, signer=signer)
        finally:
            close_context(ctx)
        return
    with loading():
        from kizuna.client.http import ApiClient

    signer = unlock(args, home)
    url = args.api_url or f"http://{settings.api_host}:{settings.api_port}"
    with ApiClient(url, timeout=600.0) as api:
        try:
            session = api.login(signer)
        except NodeUnreachable:
            raise NodeUnreachable(f"the Kizuna API at {url} does not answer (start it with "
                                  "`kizuna up`, or give --api URL or --local)") from None
        if "auditor" not in session.roles:
            raise AccessDenied(f"{signer.address} does not hold the auditor role "
                               "(KIZUNA_AUDITOR_ROLE on the AccessLog); --local audits the "
                               "configured database without it")
        yield Auditor(home=home, api=api, signer=signer)


def _entry_json(entry: Any) -> dict[str, Any]:
    return {"kind": str(entry.kind), "event": entry.event, "block_number": entry.block_number,
            "log_index": entry.log_index, "tx_hash": hex32(entry.tx_hash) if entry.tx_hash
            else None, "time": entry.time, "patient": entry.patient, "provider": entry.provider,
            "scope_ids": [hex32(s) for s in entry.scope_ids],
            "record_id": hex32(entry.record_id) if entry.record_id else None,
            "flags": sorted(entry.flags), "expires_at": entry.expires_at,
            "actor": entry.actor, "details": dict(entry.details)}


@click.group("audit")
def audit() -> None:
    """The auditor's side: the on-chain log, verification of every read, FHIR export.

    Over the API (default) your key (--key NAME) must hold the auditor role. --local audits
    the configured chain, content store and service database in this process instead (the
    chain's logs read afresh, no key needed).

    \b
    Examples:
      kizuna audit log --patient aiko --local
      kizuna audit verify --local
      kizuna audit export --format fhir -o audit-bundle.json --local
    """


@audit.command("log")
@click.option("--patient", "patient_", metavar="PATIENT", help="Only this patient's entries.")
@click.option("--provider", "provider_", metavar="PROVIDER", help="Only this provider's entries.")
@click.option("--since", metavar="DATE", help="From this date (YYYY-MM-DD or ISO 8601, UTC).")
@click.option("--until", metavar="DATE", help="Up to this date (inclusive).")
@role_options
@json_option
def log(patient_: str | None, provider_: str | None, since: str | None, until: str | None,
        as_json: bool, **kwargs: Any) -> None:
    """Every Kizuna event decoded from the chain (records, grants, revocations, emergency
    accesses, requests, care events, anchored roots) plus one entry per read receipt and one
    per refused read (a provider's signed request the access check refused, with the reason;
    past the hourly limit, one entry per hour with the count).

    \b
    Examples:
      kizuna audit log --patient aiko --since 2026-01-01 --local
      kizuna audit log --provider dr-tanaka --json --key auditor
    """
    since_s = parse_when(since, field="since") if since else None
    until_s = parse_when(until, field="until", end_of_day=True) if until else None
    with _auditor(kwargs) as who:
        patient = resolve_participant(patient_, home=who.home, field="patient") \
            if patient_ else None
        provider = resolve_participant(provider_, home=who.home, field="provider") \
            if provider_ else None
        if who.api is not None:
            rows = list(who.api._call("GET", "/auditor/log", params={
                "patient": patient, "provider": provider, "since": since_s, "until": until_s}))
        else:
            from kizuna.services.audit import full_log

            rows = [_entry_json(e) for e in full_log(
                who.ctx.chain, from_chain=True, database=who.ctx.db, patient=patient,
                provider=provider, since=since_s, until=until_s)]
    emit(rows, human=lambda: print_table(
        [{"time": show_time(r["time"]), "kind": _kind(r), "patient": r["patient"],
          "provider": r["provider"],
          "record": _subject(r),
          "block": r["block_number"], "flags": ", ".join(r["flags"]) or None} for r in rows],
        [Column("time", "When"), Column("kind", "What"), Column("patient", "Patient"),
         Column("provider", "Provider"), Column("record", "Record"), Column("block", "Block"),
         Column("flags", "Flags")], title=f"{len(rows)} log entries", empty="no entries"))


def _kind(row: dict[str, Any]) -> str:
    """What an entry is, with why for a refused read and how many for a counted hour."""
    details = row.get("details") or {}
    if row["kind"] == "refused-read":
        return f"refused-read ({details.get('reason')})"
    if row["kind"] == "refused-reads-suppressed":
        return f"refused-read x{details.get('count')} (counted only)"
    if row["kind"] == "record-batch-registered":
        return f"record-batch-registered ({details.get('count')} records)"
    return str(row["kind"])


def _subject(row: dict[str, Any]) -> str | None:
    """The entry's record, or for a batch its root (the records are in its manifest)."""
    if row["record_id"]:
        return short(row["record_id"])
    root = (row.get("details") or {}).get("root")
    if row["kind"] == "record-batch-registered" and root:
        return f"batch {short(str(root))}"
    return None


def _report_json(report: Any) -> dict[str, Any]:
    def check(c: Any) -> dict[str, Any]:
        return {"name": c.name, "checked": c.checked, "passed": c.passed,
                "failures": [{"check": f.check, "subject": f.subject, "reason": f.reason}
                             for f in c.failures], "counts": dict(c.counts)}

    return {"ok": report.ok, "receipts": check(report.receipts),
            "access": check(report.access), "content": check(report.content)}


@audit.command("verify")
@role_options
@json_option
def verify(as_json: bool, **kwargs: Any) -> None:
    """Verify everything: each read receipt (signature, leaf) under a root anchored on-chain,
    a live grant (or open emergency access) at each read's block, and each stored ciphertext
    against the commitment registered on-chain. Exits 1 if anything fails, naming it.

    \b
    Examples:
      kizuna audit verify --local
      kizuna audit verify --json --key auditor | jq .ok
    """
    with _auditor(kwargs) as who, progress("Verifying", total=3, unit="checks") as bar:
        if who.api is not None:
            result = dict(who.api._call("GET", "/auditor/verification"))
            bar.advance(3)
        else:
            from kizuna.services.audit import audit

            ctx = who.ctx
            result = _report_json(audit(ctx.chain, ctx.db, ctx.store, from_chain=True,
                                        on_check=bar.advance))
    failures = [f for name in ("receipts", "access", "content")
                for f in result[name]["failures"]]

    def human() -> None:
        print_table([{"check": result[n]["name"], "checked": result[n]["checked"],
                      "passed": result[n]["passed"],
                      "failed": len(result[n]["failures"])}
                     for n in ("receipts", "access", "content")],
                    [Column("check", "Check"), Column("checked", "Checked"),
                     Column("passed", "Passed"), Column("failed", "Failed")],
                    title="Audit " + ("passed" if result["ok"] else "FAILED"))
        if failures:
            print_table(failures, [Column("check", "Failed check", "red"),
                                   Column("subject", "Subject"), Column("reason", "Why")])

    emit(result, human=human)
    if not result["ok"]:
        click.echo(f"kizuna: audit failed: {len(failures)} finding(s)", err=True)
        raise SystemExit(int(ExitCode.ERROR))


@audit.command("export")
@click.option("--format", "format_", type=click.Choice(["fhir"]), default="fhir",
              show_default=True, help="Export format: a FHIR R4 collection Bundle.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the Bundle here (default stdout).")
@click.option("--patient", "patient_", metavar="PATIENT", help="Only this patient's trail.")
@click.option("--provider", "provider_", metavar="PROVIDER", help="Only this provider's trail.")
@role_options
def export(format_: str, output: Path | None, patient_: str | None, provider_: str | None,
           **kwargs: Any) -> None:
    """Export the audit trail as FHIR R4: an AuditEvent per read, a Consent per grant, a
    Provenance per record, with transaction hashes and CIDs.

    \b
    Example:
      kizuna audit export --format fhir -o bundle.json --patient aiko --local
    """
    with _auditor(kwargs) as who:
        patient = resolve_participant(patient_, home=who.home, field="patient") \
            if patient_ else None
        provider = resolve_participant(provider_, home=who.home, field="provider") \
            if provider_ else None
        if who.api is not None:
            bundle = who.api._call("GET", "/auditor/export",
                                   params={"patient": patient, "provider": provider})
        else:
            from kizuna.services.fhir_export import export_bundle

            bundle = export_bundle(who.ctx.chain, who.ctx.db, store=who.ctx.store,
                                   from_chain=True, patient=patient, provider=provider)
    text = json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError("output", f"cannot write {output}: {exc.strerror}") from None
    kinds: dict[str, int] = {}
    for entry in bundle.get("entry", []):
        kind = entry["resource"]["resourceType"]
        kinds[kind] = kinds.get(kind, 0) + 1
    click.echo(f"wrote {output}: " + (", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
                                      or "empty Bundle"), err=True)


@audit.command("anchor")
@role_options
@json_option
def anchor(as_json: bool, **kwargs: Any) -> None:
    """Anchor every pending read receipt now: batch them into a Merkle tree and put its root
    on-chain. Over the API the service's anchorer does it (you need the auditor role); with
    --local your key must hold ANCHOR_ROLE on the AccessLog.

    \b
    Examples:
      kizuna audit anchor --key auditor
      kizuna audit anchor --local --key anchorer
    """
    with _auditor(kwargs, needs_key=True) as who:
        if who.api is not None:
            answer = dict(who.api._call("POST", "/auditor/anchor"))
            roots = [str(r) for r in answer["roots"]]
            count = int(answer["anchored"])
        else:
            from kizuna.receipts.anchorer import Anchorer

            if who.signer is None:
                raise ConfigError("anchoring needs a key: --key NAME")
            if not who.ctx.chain.access_log.is_anchorer(who.signer.address):
                raise AccessDenied(f"{who.signer.address} does not hold ANCHOR_ROLE on the "
                                   "AccessLog")
            batches = Anchorer(db=who.ctx.db, chain=who.ctx.chain, signer=who.signer,
                               pending_grace_s=0).run_once()
            roots = [hex32(b.root) for b in batches]
            count = sum(b.count for b in batches)
    result = {"anchored": count, "roots": roots}
    emit(result, human=lambda: print_facts(
        {"anchored": count, "roots": ", ".join(roots) or "-"},
        title="Receipts anchored" if count else "Nothing pending"))


def _threshold_command() -> None:
    """``kizuna audit threshold``: the threshold proxies' reads (kizuna.cli.proxy)."""
    from kizuna.cli.proxy import audit_threshold

    audit.add_command(audit_threshold)


_threshold_command()

__all__ = ["audit"]
