"""``kizuna patient``: a patient's whole use of Kizuna from the terminal.

Every command unlocks the patient's key (``--key NAME``), derives the patient's encryption keys
from one wallet signature, and runs :class:`~kizuna.client.patient.PatientClient` against the
API (default) or in-process (``--local``). Records are encrypted here before they leave the
machine; grants carry key fragments made here; the API sees ciphertext and signatures only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kizuna.cli.output import Column, emit, json_option, print_facts, print_table, progress
from kizuna.cli.participant import (
    RoleArgs,
    Session,
    hex32,
    known_names,
    match_id,
    open_session,
    parse_when,
    role_options,
    settings_of,
    short,
    show_time,
    unlock_started,
    write_output,
)
from kizuna.errors import InputError, KizunaError, NotFoundError

if TYPE_CHECKING:
    from kizuna.client.importer import ImportResult
    from kizuna.client.patient import PatientClient

log = logging.getLogger(__name__)

DAY = 86_400

EXAMPLES_KEY = "--key aiko"


@contextmanager
def _patient(kwargs: dict[str, Any]) -> Iterator[tuple[Session, Any]]:
    """The session and the :class:`PatientClient` of the command's ``--key``."""
    args = RoleArgs.take(kwargs)
    with open_session(args) as session:  # imports the client while the key unlocks
        yield session, patient_client(session)


def patient_client(session: Session) -> PatientClient:
    """The session's :class:`PatientClient` as every ``kizuna patient`` command builds it (its
    proxy set; the chain connected when first needed), its inbox key published."""
    from kizuna.cli.proxy import proxy_set_for
    from kizuna.client.patient import PatientClient

    # the web3 connection is made when the client first needs it (never by `patient get`)
    client = PatientClient(signer=session.signer, service=session.service,
                           chain=lambda: session.chain, proxies=proxy_set_for(session))
    client.ensure_inbox_key()
    return client


@contextmanager
def _session_meanwhile(kwargs: dict[str, Any]) -> Iterator[Callable[[], Session]]:
    """The session of the command's ``--key``, opened while the caller works: the passphrase
    is read here (it may prompt), then the key's unlock (scrypt) and, through the API, the
    sign-in run on a thread; the function yielded waits for the session. Nothing but the
    sign-in reaches the service before it is called. In-process (``--local``) the service's
    context is opened by the caller's thread, when it asks (its databases stay on one thread).
    A key that cannot be unlocked (none given, none of that name, no passphrase) is reported
    when the session is asked for: the caller's own problems (a refused file) come first.
    """
    args = RoleArgs.take(kwargs)
    try:
        unlocking = unlock_started(args, settings_of(args)[0])
    except KizunaError as exc:
        refused = exc

        def refuse() -> Session:
            raise refused

        yield refuse
        return
    with ExitStack() as stack:
        if args.local:
            yield lambda: stack.enter_context(open_session(args, unlocking=unlocking))
            return
        opened: Future[Session] = Future()

        def run() -> None:
            began = time.perf_counter()
            try:
                opened.set_result(stack.enter_context(open_session(args,
                                                                   unlocking=unlocking)))
                log.debug("import: key unlocked and signed in in %.2f s (%.2f s CPU, the "
                          "process's)", time.perf_counter() - began, time.process_time())
            except BaseException as exc:  # raised in the caller, by .result()
                opened.set_exception(exc)

        thread = threading.Thread(target=run, name="kizuna-session", daemon=True)
        thread.start()
        try:
            yield opened.result
        finally:
            thread.join()  # the stack holds the session (if it opened) only once it is done


def for_option(func: Any) -> Any:
    """``--for PATIENT``: act as a guardian of PATIENT (the API allows it only while the chain
    has you as their live guardian)."""
    return click.option("--for", "ward", metavar="PATIENT",
                        help="As their guardian, act for this patient (address or key name).")(
                            func)


def expand_scopes(labels: Sequence[str]) -> list[str]:
    """Scope labels as given, a bare resource type expanded to itself plus each of its
    category labels (``Observation`` → ``Observation``, ``Observation:laboratory``, ...):
    records are filed under their category, each scope has its own key."""
    from kizuna.client.keys import vocabulary
    from kizuna.crypto.scopes import scope_label

    known = vocabulary()
    out: list[str] = []
    for given in labels:
        label = str(scope_label(given))
        wanted = [label]
        if ":" not in label:
            wanted += [str(v) for v in known if str(v).startswith(label + ":")]
        out += [w for w in wanted if w not in out]
    return out


def _expiry(client: Any, days: int | None, until: str | None) -> int:
    if (days is None) == (until is None):
        raise InputError("days", "give either --days N or --until DATE")
    if days is not None:
        if days <= 0:
            raise InputError("days", "must be at least 1")
        return int(client.now()) + days * DAY
    assert until is not None
    moment = parse_when(until, field="until", end_of_day=True)
    if moment <= int(client.now()):
        raise InputError("until", f"{until} is in the past")
    return moment


def _record_row(record: Any, label: Any) -> dict[str, Any]:
    return {"record_id": hex32(record.record_id), "label": label,
            "content_type": record.content_type, "size": record.size,
            "date": show_time(record.created_at), "created_at": record.created_at,
            "cid": record.cid, "scope_id": hex32(record.scope_id)}


class _PatientGroup(click.Group):
    """The patient's commands; those living in other modules (sharing, data requests,
    research) are imported only when one of them is named or the commands are listed, so
    `kizuna patient get` does not pay for SQLAlchemy and the data-request services."""

    _extras_added = False

    def _add_extras(self) -> None:
        if not self._extras_added:
            self._extras_added = True
            for commands in _EXTRA_COMMANDS:
                for command in commands():
                    self.add_command(command)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_extras()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None:
            self._add_extras()
            found = super().get_command(ctx, cmd_name)
        return found


@click.group("patient", cls=_PatientGroup)
def patient() -> None:
    """The patient's side: your records, who may read them, and who did.

    Every command needs your key (--key NAME or $KIZUNA_KEY) and its passphrase
    (--passphrase-file, $KIZUNA_PASSPHRASE or a prompt). Records are encrypted on this machine
    before upload; grants and revocations are signed here and relayed (you pay no gas).
    Commands talk to the API of `kizuna up` (or --api URL); --local runs the service in this
    process against the configured chain, store and database instead.

    \b
    Examples:
      export KIZUNA_KEY=aiko KIZUNA_PASSPHRASE=kizuna-demo
      kizuna patient import history.json
      kizuna patient records
      kizuna patient grant dr-tanaka Observation:laboratory --days 30
      kizuna patient reads
    """


# --- records -------------------------------------------------------------------------------------


@patient.command("add")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--deidentify", is_flag=True,
              help="DICOM: strip identifying headers (PS3.15 Basic Profile) before encrypting.")
@click.option("--subject", default="Patient/self", show_default=True,
              help="FHIR reference of the patient for the DocumentReference / ImagingStudy "
                   "made for a PDF or DICOM study.")
@click.option("--replaces", metavar="RECORD",
              help="Add the file (one FHIR resource) as a new version of this record of yours "
                   "(0x id or a prefix of 6+ hex digits): the old one is superseded on-chain "
                   "and no longer served to providers.")
@role_options
@json_option
def add(files: tuple[Path, ...], deidentify: bool, subject: str, replaces: str | None,
        as_json: bool, **kwargs: Any) -> None:
    """Encrypt and add records: a FHIR resource or Bundle (.json), a PDF or image, or the
    DICOM files of one study.

    A FHIR file becomes one record per resource (scope from its type and category); a PDF
    becomes a file record plus a DocumentReference; DICOM files become file records plus an
    ImagingStudy. Everything is encrypted here, stored, and registered on-chain.

    \b
    Examples:
      kizuna patient add blood-test.json --key aiko
      kizuna patient add discharge-letter.pdf
      kizuna patient add ct/*.dcm --deidentify
      kizuna patient add blood-test-corrected.json --replaces 0x3fa2c1
    """
    if replaces is not None and (len(files) != 1 or files[0].suffix.lower() != ".json"):
        raise InputError("replaces", "a new version is one FHIR resource: give one .json file")
    with _patient(kwargs) as (_, client):
        if replaces is not None:
            added = [_add_version(client, files[0], replaces)]
        else:
            added = _add_files(client, files, deidentify=deidentify, subject=subject)
    rows = [_record_row(r, label) for r, label in added]
    emit(rows, human=lambda: print_table(
        [{**r, "record_id": short(r["record_id"])} for r in rows],
        [Column("record_id", "Record"), Column("label", "Scope"),
         Column("content_type", "Type"), Column("size", "Bytes"), Column("cid", "CID")],
        title=f"Added {len(rows)} record(s)"))


def _add_version(client: Any, path: Path, replaces: str) -> tuple[Any, str | None]:
    """``path`` (one FHIR resource) as a new version of the record ``replaces`` names."""
    from kizuna.storage.fhir.importer import import_resource
    from kizuna.storage.fhir.jsonio import load_json

    old = match_id(replaces, [bytes(r.record_id) for r in client.records()], field="record")
    one = import_resource(load_json(path.read_bytes()))
    record = client.replace_record(old, one.content, label=one.scope_label,
                                   content_type=one.content_type)
    return record, str(one.scope_label)


def _add_files(client: Any, files: Sequence[Path], *, deidentify: bool,
               subject: str) -> list[tuple[Any, str | None]]:
    from kizuna.storage.fhir.jsonio import load_json

    dicoms = [f for f in files if f.suffix.lower() in (".dcm", ".dicom")]
    others = [f for f in files if f not in dicoms]
    added: list[tuple[Any, str | None]] = []
    for path in others:
        suffix = path.suffix.lower()
        if suffix == ".json":
            data = load_json(path.read_bytes())
            if data.get("resourceType") == "Bundle":
                for entry in client.import_fhir(data):
                    added.append((entry.record, str(entry.source.scope_label)))
            else:  # one resource: validated alone (its references point at earlier records)
                from kizuna.storage.fhir.importer import import_resource

                one = import_resource(data)
                added.append((client.add_record(one.content, label=one.scope_label,
                                                content_type=one.content_type),
                              str(one.scope_label)))
        elif suffix == ".ndjson":
            raise InputError("file", f"{path.name}: NDJSON is for `kizuna patient import`")
        else:
            description, stored = client.add_document(path, subject=subject)
            label = client.label_of(stored)
            added += [(stored, label), (description, label)]
    if dicoms:
        import tempfile

        # De-identified copies live only while they are encrypted and uploaded (0700 dir).
        with tempfile.TemporaryDirectory(prefix="kizuna-deid-") as spool:
            sources: list[Any] = list(dicoms)
            if deidentify:
                from kizuna.storage.attachments import UidMap, deidentify_dicom

                uids = UidMap()
                sources = []
                for i, path in enumerate(dicoms):
                    target = Path(spool) / f"{i}.dcm"
                    target.write_bytes(deidentify_dicom(path, uids=uids).content)
                    sources.append(target)
            entry, stored_files = client.add_dicom_study(sources, subject=subject)
        label = client.label_of(entry)
        added += [(r, label) for r in stored_files] + [(entry, label)]
    return added


def _bundle_json(path: Path, raw: bytes | None = None) -> dict[str, Any]:
    """``path``'s JSON object (``raw``: its bytes, when read already). A file that is not one
    (a DICOM study, a PDF, an image given to ``import`` by mistake) is refused with its name
    and the command that takes it."""
    from kizuna.errors import FhirValidationError
    from kizuna.storage.fhir.jsonio import load_json

    try:
        return load_json(path.read_bytes() if raw is None else raw)
    except FhirValidationError as exc:
        where, reason = exc.issues[0]
        if where:  # load_json's own issues have no path: they are about the file as a whole
            raise
        raise InputError(str(path), f"not a FHIR JSON Bundle ({reason}); `kizuna patient "
                         "import` takes FHIR JSON and NDJSON, `kizuna patient add` takes "
                         "DICOM, PDF and image files") from None


@patient.command("import")
@click.argument("files", nargs=-1, required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--from-fhir", "from_fhir", metavar="URL",
              help="Pull your records from this FHIR R4 server instead of FILES (bearer "
              "token, if it needs one: $KIZUNA_FHIR_TOKEN).")
@click.option("--patient-id", metavar="ID",
              help="With --from-fhir: your Patient id there [default: the only one].")
@click.option("--types", metavar="T,...",
              help="With --from-fhir: only these resource types (comma-separated).")
@click.option("--since", metavar="DATE",
              help="With --from-fhir: only resources updated on or after DATE.")
@click.option("--page-size", type=click.IntRange(1, 1000), default=200, show_default=True,
              help="With --from-fhir: resources asked per page (_count).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Processes encrypting records [default: one per core].")
@role_options
@json_option
def import_(files: tuple[Path, ...], from_fhir: str | None, patient_id: str | None,
            types: str | None, since: str | None, page_size: int, workers: int | None,
            as_json: bool, **kwargs: Any) -> None:
    """Import a FHIR history: a Bundle (e.g. Synthea's), NDJSON files, or a FHIR server's.

    Everything is validated first (every problem reported, nothing uploaded if one is found);
    then each resource becomes its own record, encrypted here on every core, uploaded 500 to
    a request, and all registered on-chain with one signature (one transaction per 50,000
    records, relayed). Progress (resources/s, time left) on stderr.

    Interrupted (Ctrl-C, a crash, the service down)? Run the same command again: it skips
    what is registered and finishes the rest, each resource registered once (the journal is
    in $KIZUNA_HOME/imports).

    \b
    Examples:
      kizuna patient import synthea/fhir/Aiko_Sato.json --key aiko
      kizuna patient import Patient.ndjson Observation.ndjson Condition.ndjson
      KIZUNA_FHIR_TOKEN=... kizuna patient import --from-fhir https://fhir.example.org/r4

    With --from-fhir URL, your resources are read from that server (Patient/$everything
    when its CapabilityStatement offers it, else a search per type, following `next`
    links), all before anything is stored; each keeps its origin in meta.source (server,
    type, id, versionId), so running it again imports only what is new or changed there.
    """
    fhir_only = {"--patient-id": patient_id, "--types": types, "--since": since}
    if from_fhir is None:
        given = [name for name, value in fhir_only.items() if value is not None]
        if given:
            raise InputError(given[0].lstrip("-"), "only with --from-fhir URL")
        if not files:
            raise InputError("files", "give FILES to import, or --from-fhir URL")
    else:
        if files:
            raise InputError("from-fhir", "either FILES or --from-fhir URL, not both")
        from kizuna.cli.fhir_import import import_from_fhir, parse_types

        import_from_fhir(from_fhir, patient_id=patient_id, types=parse_types(types),
                         since=since, page_size=page_size, workers=workers, kwargs=kwargs)
        return
    result, before = _import_files(files, workers, kwargs)
    rate = result.registered / result.seconds if result.seconds > 0 else 0.0
    click.echo(f"imported {result.resources} resource(s): {result.registered} registered now "
               f"in {len(result.batches)} transaction(s), {result.already_registered} "
               f"registered before, in {result.seconds:.1f} s ({rate:.0f}/s; reading, "
               f"checking and signing in before that {before:.1f} s)", err=True)
    by_scope = dict(sorted(result.by_scope.items()))
    emit(result.as_dict(), human=lambda: print_table(
        [{"label": k, "count": v} for k, v in by_scope.items()],
        [Column("label", "Scope"), Column("count", "Records")],
        title=f"Imported {result.resources} record(s)"))


def _import_files(files: tuple[Path, ...], workers: int | None,
                  kwargs: dict[str, Any]) -> tuple[ImportResult, float]:
    """Validate ``files`` and import them; the result and the seconds spent reading, checking
    and signing in before the import itself."""
    from kizuna.client.importer import (
        Importer,
        ImportSource,
        bundle_source,
        ndjson_source,
        start_pool,
    )

    ndjson = [f for f in files if f.suffix.lower() == ".ndjson"]
    bundles = [f for f in files if f not in ndjson]
    started = time.perf_counter()
    pool = start_pool(workers)  # its processes come up while the files are validated
    try:
        # The key unlocks and the API signs in while the files are read and checked.
        with _session_meanwhile(kwargs) as session_of:
            sources: list[ImportSource] = []
            for path in bundles:
                raw = path.read_bytes()
                sources.append(bundle_source(_bundle_json(path, raw), raw, name=path.name,
                                             pool=pool))
            if ndjson:
                sources.append(ndjson_source(ndjson))
            checked = time.perf_counter()
            total = sum(len(s.records) for s in sources)
            session = session_of()
            client = patient_client(session)
            before = time.perf_counter() - started
            log.debug("import: files read and checked in %.2f s; %.2f s more to sign in, "
                      "%.2f s CPU so far", checked - started, before - (checked - started),
                      time.process_time())
            with progress("Importing", total=total, unit="resources") as bar:
                importer = Importer(client, journal_root=session.home.imports_dir, pool=pool,
                                    on_progress=lambda done, of: bar.update(total=of,
                                                                            completed=done))
                return importer.run(sources), before
    finally:  # shut down by the run already, unless a file was refused before it
        pool.shutdown(wait=True, cancel_futures=True)


@patient.command("records")
@click.option("--scope", "scopes", multiple=True, metavar="LABEL",
              help="Only records of this scope (a type expands to its categories); repeatable.")
@for_option
@role_options
@json_option
def records_(scopes: tuple[str, ...], ward: str | None, as_json: bool, **kwargs: Any) -> None:
    """List your records (or, as a guardian, your ward's): id, scope label, content type,
    date added, CID.

    Scope labels are recovered here (the service and the chain only know blinded scope ids);
    only the patient's own keys can, so a ward's records are listed without them.

    \b
    Examples:
      kizuna patient records --key aiko
      kizuna patient records --scope Observation --json | jq -r '.[].record_id'
      kizuna patient records --for kenji --key aiko
    """
    if ward is not None and scopes:
        raise InputError("scope", "scope labels need the patient's own keys: not with --for")
    with _patient(kwargs) as (session, client):
        if ward is not None:
            owner = session.resolve(ward, field="patient")
            listed = [(r, None) for r in session.service.list_records(patient=owner)]
        else:
            listed = client.labelled_records()
    wanted = set(expand_scopes(scopes)) if scopes else None
    rows = [_record_row(r, label) for r, label in listed
            if wanted is None or (label is not None and str(label) in wanted)]
    rows.sort(key=lambda r: r["created_at"])
    emit(rows, human=lambda: print_table(
        [{**r, "record_id": short(r["record_id"])} for r in rows],
        [Column("record_id", "Record"), Column("label", "Scope"),
         Column("content_type", "Type"), Column("date", "Added"), Column("cid", "CID")],
        title=f"{len(rows)} record(s)", empty="no records (add some: kizuna patient import)"))


@patient.command("get")
@click.argument("record_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the decrypted record here (mode 0600); default stdout.")
@role_options
def get(record_id: str, output: Path | None, **kwargs: Any) -> None:
    """Download one of your records and decrypt it here (checked against the commitment
    registered on-chain). RECORD_ID is its 0x id or a unique prefix of 6+ hex digits.

    \b
    Example:
      kizuna patient get 0x3fa2c1 -o lab.json --key aiko
    """
    full = record_id.lower().removeprefix("0x")
    with _patient(kwargs) as (_, client):
        # A whole id is read as is (one request for the record, whatever the number of
        # records); only a prefix needs the listing to find the id it stands for.
        rid = (bytes.fromhex(full) if len(full) == 64 and all(c in "0123456789abcdef"
                                                                for c in full)
               else match_id(record_id, [bytes(r.record_id) for r in client.records()],
                             field="record"))
        data = client.read_own(rid)
    write_output(data, output)
    if output is not None:
        click.echo(f"wrote {len(data)} bytes to {output}", err=True)


@patient.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the export here (mode 0600); default stdout.")
@click.option("--format", "fmt", type=click.Choice(["bundle", "ndjson"]), default="bundle",
              show_default=True, help="A FHIR Bundle (collection) or NDJSON, one resource "
              "a line.")
@click.option("--scope", "scopes", multiple=True, metavar="LABEL",
              help="Only records of this scope (a type expands to its categories); repeatable.")
@click.option("--type", "types", multiple=True, metavar="RESOURCE",
              help="Only this FHIR resource type (Observation, Condition, ...); repeatable.")
@click.option("--since", metavar="DATE", help="Only records added on or after DATE.")
@click.option("--until", metavar="DATE", help="Only records added on or before DATE.")
@click.option("--files-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write file records (PDF, images, DICOM) into this folder "
              "[default: OUTPUT.files beside -o; none with stdout].")
@click.option("--no-files", is_flag=True, help="Skip file records (they are counted).")
@click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Download requests in flight at once (256 records a request).")
@role_options
@json_option
def export_(output: Path | None, fmt: str, scopes: tuple[str, ...], types: tuple[str, ...],
            since: str | None, until: str | None, files_dir: Path | None, no_files: bool,
            workers: int, as_json: bool, **kwargs: Any) -> None:
    """Export your records decrypted here: a FHIR Bundle or NDJSON, every record or a filter.

    One listing and one look-up of every registered commitment on the chain, then the
    envelopes 256 to a request, requests in parallel, each envelope checked against the
    chain's commitment before it is written.
    File records (PDF, images, DICOM) are written as FOLDER/<record id>.<ext> — the id their
    DocumentReference / ImagingStudy names — into --files-dir (default OUTPUT.files beside
    -o); with stdout and no --files-dir, or with --no-files, they are skipped and counted.
    Progress and the summary go to stderr.

    \b
    Examples:
      kizuna patient export -o history.json --key aiko
      kizuna patient export --format ndjson --type Observation --since 2024-01-01 > obs.ndjson
      kizuna patient export --scope Condition --no-files -o conditions.json
    """
    import os
    import sys
    import time

    from kizuna.client.export import Selection, export

    if no_files and files_dir is not None:
        raise InputError("files_dir", "give either --files-dir or --no-files")
    if not no_files and files_dir is None and output is not None:
        files_dir = output.with_name(output.name + ".files")
    if no_files:
        files_dir = None
    selection = Selection(
        labels=frozenset(expand_scopes(scopes)),
        types=frozenset(str(t).strip() for t in types),
        since=parse_when(since, field="since") if since else None,
        until=parse_when(until, field="until", end_of_day=True) + 1 if until else None)
    if as_json and output is None:
        raise InputError("output", "--json prints the summary on stdout: give -o FILE")
    started = time.monotonic()
    with _patient(kwargs) as (_, client), progress("Exporting", unit="records") as bar:

        def step(_done: int, total: int) -> None:
            bar.update(total=total)
            bar.advance()

        if output is None:
            sink = sys.stdout.buffer
        else:
            try:
                fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            except OSError as exc:
                raise InputError("output", f"cannot write {output}: {exc.strerror}") from None
            sink = os.fdopen(fd, "wb")
        try:
            result = export(client, sink, fmt=fmt,  # type: ignore[arg-type]
                            selection=selection, files_dir=files_dir, workers=workers,
                            on_record=step)
        finally:
            if sink is sys.stdout.buffer:
                sink.flush()
            else:
                sink.close()
    seconds = time.monotonic() - started
    summary = {**result.as_dict(), "format": fmt, "seconds": round(seconds, 3),
               "files_dir": str(files_dir) if files_dir is not None and result.files else None}
    rate = result.resources / seconds if seconds > 0 else 0.0
    click.echo(f"exported {result.resources} resource(s) from {result.records} record(s)"
               f"{f', {result.files} file(s) into {files_dir}' if result.files else ''}"
               f"{f', {result.files_skipped} file(s) skipped' if result.files_skipped else ''}"
               f" in {seconds:.1f} s ({rate:.0f}/s)", err=True)
    emit(summary, human=lambda: None)


# --- grants -------------------------------------------------------------------------------------


@patient.command("grant")
@click.argument("provider")
@click.argument("scopes", nargs=-1, required=True)
@click.option("--days", type=int, help="How long the grant lasts, in days.")
@click.option("--until", help="Last day of the grant (YYYY-MM-DD, UTC) instead of --days.")
@role_options
@json_option
def grant(provider: str, scopes: tuple[str, ...], days: int | None, until: str | None,
          as_json: bool, **kwargs: Any) -> None:
    """Let PROVIDER read your records of SCOPES until a date.

    PROVIDER is an address or the name of a key in $KIZUNA_HOME/keys. A scope is a resource
    type (Observation — it covers every category of it), or Type:category
    (Observation:laboratory). Signed here, relayed on-chain; key fragments for the provider's
    registered key go to the proxy.

    \b
    Examples:
      kizuna patient grant dr-tanaka Observation:laboratory --days 30 --key aiko
      kizuna patient grant 0xAbC... Condition MedicationRequest --until 2026-12-31
    """
    labels = expand_scopes(scopes)
    with _patient(kwargs) as (session, client):
        who = session.resolve(provider, field="provider")
        expires = _expiry(client, days, until)
        done = client.grant(who, labels, expires_at=expires)
    result = {"provider": who, "scopes": labels, "expires_at": expires,
              "expires": show_time(expires), "tx_hash": hex32(done.tx_hash),
              "block_number": done.block_number}
    if client.proxies is not None:  # the fragments went to the proxy nodes, each its own
        result["proxy_nodes"] = f"{client.proxies.threshold}-of-{len(client.proxies.nodes)}"
    emit(result, human=lambda: print_facts(
        {**result, "scopes": ", ".join(labels)}, title=f"Granted {provider}"))


@patient.command("revoke")
@click.argument("provider")
@click.argument("scopes", nargs=-1)
@click.option("--all", "all_", is_flag=True,
              help="Revoke every grant, open request and emergency access of PROVIDER.")
@role_options
@json_option
def revoke(provider: str, scopes: tuple[str, ...], all_: bool, as_json: bool,
           **kwargs: Any) -> None:
    """Stop PROVIDER reading SCOPES (or everything, --all). The next read is refused.

    \b
    Examples:
      kizuna patient revoke dr-tanaka Observation:laboratory --key aiko
      kizuna patient revoke dr-tanaka --all
    """
    if all_ == bool(scopes):
        raise InputError("scopes", "give the scopes to revoke, or --all")
    with _patient(kwargs) as (session, client):
        who = session.resolve(provider, field="provider")
        if all_:
            held = sorted({g.scope_id for g in _grants_of(session) if g.provider == who})
            done = [client.revoke_all(who)]
            labels = ["*"]
        else:
            labels = expand_scopes(scopes)
            live = {bytes(g.scope_id) for g in _grants_of(session)
                    if g.provider == who and g.live}
            chosen = [x for x in labels if bytes(client.keys.scope_id(x)) in live]
            if not chosen:
                raise NotFoundError(f"{provider} holds no live grant of {', '.join(scopes)}")
            labels = chosen
            done = [client.revoke(who, label) for label in labels]
        # The revoke moved the scopes' key epochs; the client re-keyed the grantees that
        # remain (docs/keys.md "Epochs"): say where each scope stands now.
        touched = held if all_ else [client.keys.scope_id(x) for x in labels]
        epochs = {hex32(sid): client.service.scope_epoch(client.address, sid)
                  for sid in touched}
    result = {"provider": who, "scopes": labels,
              "tx_hashes": [hex32(d.tx_hash) for d in done],
              "block_number": done[-1].block_number, "epochs": epochs}
    emit(result, human=lambda: print_facts(
        {"provider": who, "scopes": ", ".join(labels), "block": done[-1].block_number,
         "key epochs": ", ".join(f"{k[:10]}...={v}" for k, v in epochs.items())},
        title=f"Revoked {provider}"))


@patient.command("rekey")
@click.argument("scopes", nargs=-1)
@click.option("--kit", "kit_scopes", multiple=True, metavar="SCOPE",
              help="Also leave your emergency kit again, for these scopes' current epochs.")
@role_options
@json_option
def rekey(scopes: tuple[str, ...], kit_scopes: tuple[str, ...], as_json: bool,
          **kwargs: Any) -> None:
    """Bring the proxy up to the current key epoch of SCOPES (default: every scope you granted).

    A revocation moves a scope's key to a new epoch (docs/keys.md "Epochs"): new records are
    encrypted to it and fragments someone kept open nothing written afterwards. `kizuna patient
    revoke` re-keys by itself; run this after a revoke made elsewhere (a wallet, the web page,
    another device): it registers the new epoch's keys (one signature per scope) and re-issues
    fragments of it to every provider that still holds a live grant. --kit re-leaves the
    emergency kit for the new epochs (a kit opens only the epochs it has fragments of).

    \b
    Examples:
      kizuna patient rekey --key aiko
      kizuna patient rekey Observation:laboratory --kit AllergyIntolerance
    """
    labels = expand_scopes(scopes) if scopes else None
    with _patient(kwargs) as (_session, client):
        done = client.rekey(labels)
        left = client.leave_emergency_kit(expand_scopes(kit_scopes)) if kit_scopes else 0
        from kizuna.client.keys import vocabulary

        client.keys.learn_labels(vocabulary())
        rows = [{"scope": client.keys.label_of(sid), "scope_id": hex32(sid), "epoch": epoch,
                 "providers": list(done.reissued.get(sid, ()))}
                for sid, epoch in done.epochs.items()]
    result = {"scopes": rows, "kfrags_stored": done.kfrags_stored, "kit_fragments": left}
    emit(result, human=lambda: print_table(
        [{**r, "providers": len(r["providers"])} for r in rows],
        [Column("scope", "Scope"), Column("epoch", "Epoch"), Column("providers", "Re-keyed")],
        title="Scope keys", empty="no granted scopes"))


def _grants_of(session: Session) -> list[Any]:
    if session.ctx is not None:
        from kizuna.services.grants import grants_of

        return grants_of(session.ctx, patient=session.address)
    return list(session.service.grants_of(patient=session.address))


@patient.command("grants")
@role_options
@json_option
def grants(as_json: bool, **kwargs: Any) -> None:
    """List your live grants: provider, scope, until when.

    \b
    Example:
      kizuna patient grants --key aiko
    """
    from kizuna.client.keys import vocabulary

    with _patient(kwargs) as (session, client):
        client.keys.learn_labels(vocabulary())
        found = _grants_of(session)
        names = known_names(session.home)
        rows = [{"provider": g.provider, "name": names.get(g.provider),
                 "scope": client.keys.label_of(g.scope_id),
                 "scope_id": hex32(g.scope_id), "expires_at": g.expires_at,
                 "expires": show_time(g.expires_at), "live": g.live} for g in found]
    emit(rows, human=lambda: print_table(
        rows, [Column("name", "Provider"), Column("provider", "Address"),
               Column("scope", "Scope"), Column("expires", "Until")], title="Your grants",
        empty="no live grants"))


# --- requests, guardians, emergency -------------------------------------------------------------


def _inbox_rows(items: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"kind": i.kind, "from": i.actor, "patient": i.patient, "provider": i.provider,
             "ref": hex32(i.ref), "cid": i.cid, "content_type": i.content_type,
             "block_number": i.block_number, "flagged": i.flagged_for_review} for i in items]


def _open_requests(session: Session, client: Any) -> list[Any]:
    """Access requests not answered yet: a grant to the provider made at or after the
    request's block answers it (as the provider's inbox counts it)."""
    answered: dict[str, int] = {}
    for g in _grants_of(session):
        answered[g.provider] = max(answered.get(g.provider, -1), g.granted_block)
    return [i for i in client.inbox() if i.kind == "access-request"
            and answered.get(i.provider, -1) < i.block_number]


@patient.command("requests")
@role_options
@json_option
def requests_(as_json: bool, **kwargs: Any) -> None:
    """List providers' open access requests (answer with `kizuna patient answer`).

    \b
    Example:
      kizuna patient requests --key aiko
    """
    with _patient(kwargs) as (session, client):
        rows = _inbox_rows(_open_requests(session, client))
    emit(rows, human=lambda: print_table(
        [{**r, "ref": short(r["ref"])} for r in rows],
        [Column("ref", "Request"), Column("provider", "Provider"),
         Column("block_number", "Block")], title="Access requests", empty="no open requests"))


@patient.command("answer")
@click.argument("request")
@click.option("--grant", "scopes", multiple=True, metavar="SCOPE",
              help="Say yes: grant these scopes (repeatable).")
@click.option("--deny", is_flag=True, help="Say no (closes the request on-chain).")
@click.option("--days", type=int, help="With --grant: how long, in days (default 30).")
@click.option("--until", help="With --grant: last day (YYYY-MM-DD) instead of --days.")
@role_options
@json_option
def answer(request: str, scopes: tuple[str, ...], deny: bool, days: int | None,
           until: str | None, as_json: bool, **kwargs: Any) -> None:
    """Answer an access request: grant scopes, or deny. REQUEST is the request's id from
    `kizuna patient requests` (a prefix is enough) or the requesting provider.

    \b
    Examples:
      kizuna patient answer 0x91be04 --grant Observation:vital-signs --days 7
      kizuna patient answer dr-sato --deny
    """
    if deny == bool(scopes):
        raise InputError("grant", "give --grant SCOPE... or --deny")
    with _patient(kwargs) as (session, client):
        open_requests = _open_requests(session, client)
        if request.startswith("0x") and (len(request) < 42 or len(request) == 66):
            ref = match_id(request, [bytes(i.ref) for i in open_requests], field="request")
            provider = next(i.provider for i in open_requests if bytes(i.ref) == ref)
        else:
            provider = session.resolve(request, field="provider")
            if not any(i.provider == provider for i in open_requests):
                raise NotFoundError(f"no open access request from {request}")
        if deny:
            done = client.decline(provider)
            result: dict[str, Any] = {"provider": provider, "answer": "denied",
                                      "tx_hash": hex32(done.tx_hash)}
        else:
            labels = expand_scopes(scopes)
            expires = _expiry(client, days if days is not None or until else 30, until)
            granted = client.grant(provider, labels, expires_at=expires)
            result = {"provider": provider, "answer": "granted", "scopes": labels,
                      "expires": show_time(expires), "tx_hash": hex32(granted.tx_hash)}
    emit(result, human=lambda: print_facts(
        {k: ", ".join(v) if isinstance(v, list) else v for k, v in result.items()},
        title="Answered"))


@patient.group("guardian")
def guardian() -> None:
    """Appoint, remove or list guardians: people who may act for you until a date.

    \b
    Examples:
      kizuna patient guardian add kenji --days 365 --key aiko
      kizuna patient guardian list
      kizuna patient guardian remove kenji
    """


@guardian.command("add")
@click.argument("who")
@click.option("--days", type=int, help="How long the appointment lasts, in days.")
@click.option("--until", help="Last day (YYYY-MM-DD) instead of --days.")
@role_options
@json_option
def guardian_add(who: str, days: int | None, until: str | None, as_json: bool,
                 **kwargs: Any) -> None:
    """Appoint WHO (address or key name) as your guardian until a date (your own transaction).

    \b
    Example:
      kizuna patient guardian add kenji --days 365 --key aiko
    """
    with _patient(kwargs) as (session, client):
        address = session.resolve(who, field="guardian")
        expires = _expiry(client, days, until)
        done = client.appoint_guardian(address, until=expires)
    result = {"guardian": address, "until": show_time(expires), "tx_hash": hex32(done.tx_hash)}
    emit(result, human=lambda: print_facts(result, title="Guardian appointed"))


@guardian.command("remove")
@click.argument("who")
@role_options
@json_option
def guardian_remove(who: str, as_json: bool, **kwargs: Any) -> None:
    """Remove guardian WHO (your own transaction).

    \b
    Example:
      kizuna patient guardian remove kenji --key aiko
    """
    with _patient(kwargs) as (session, client):
        address = session.resolve(who, field="guardian")
        receipt = session.chain.ledger.remove_guardian(address, signer=client.signer)
    result = {"guardian": address, "tx_hash": hex32(receipt.tx_hash)}
    emit(result, human=lambda: print_facts(result, title="Guardian removed"))


@guardian.command("list")
@role_options
@json_option
def guardian_list(as_json: bool, **kwargs: Any) -> None:
    """List your guardians and until when they may act for you.

    \b
    Example:
      kizuna patient guardian list --key aiko
    """
    with _patient(kwargs) as (session, _):
        if session.ctx is not None:
            found = session.ctx.index.index.guardians_of(session.address)
        else:
            found = session.service.api.guardians()  # type: ignore[attr-defined]
    rows = [{"guardian": g.guardian, "until": show_time(g.until)} for g in found]
    emit(rows, human=lambda: print_table(
        rows, [Column("guardian", "Guardian"), Column("until", "Until")],
        title="Guardians", empty="no guardians"))


@patient.command("emergency-policy")
@click.option("--allow/--deny", default=None,
              help="Allow registered providers to open time-boxed emergency access, or not.")
@click.option("--max-hours", type=int, default=24, show_default=True,
              help="With --allow: the longest emergency access, in hours.")
@click.option("--kit", "kit_scopes", multiple=True, metavar="SCOPE",
              help="With --allow: leave key fragments of these scopes (e.g. AllergyIntolerance) "
                   "so an emergency read can be served (one set per active provider).")
@for_option
@role_options
@json_option
def emergency_policy(allow: bool | None, max_hours: int, kit_scopes: tuple[str, ...],
                     ward: str | None, as_json: bool, **kwargs: Any) -> None:
    """Set your emergency (break-glass) policy (or, as a guardian, your ward's). Every
    emergency access is logged on-chain and flagged for an auditor's review.

    \b
    Examples:
      kizuna patient emergency-policy --allow --max-hours 12 --key aiko
      kizuna patient emergency-policy --deny
      kizuna patient emergency-policy --allow --for kenji --key aiko
    """
    if allow is None:
        raise InputError("allow", "give --allow or --deny")
    if allow and max_hours <= 0:
        raise InputError("max-hours", "must be at least 1")
    if ward is not None and kit_scopes:
        raise InputError("kit", "a kit is made with the patient's own keys: not with --for")
    with _patient(kwargs) as (session, client):
        owner = session.resolve(ward, field="patient") if ward is not None else None
        done = client.set_emergency_policy(allowed=allow, patient=owner,
                                           max_duration=max_hours * 3600 if allow else 0)
        left = client.leave_emergency_kit(expand_scopes(kit_scopes)) if kit_scopes else 0
    result = {"allowed": allow, "max_hours": max_hours if allow else 0,
              "kit_fragments": left, "tx_hash": hex32(done.tx_hash)}
    emit(result, human=lambda: print_facts(result, title="Emergency policy set"))


# --- who read what, messages --------------------------------------------------------------------


@patient.command("reads")
@click.option("--attempted", is_flag=True,
              help="Only the attempted reads: requests of providers that were refused (with "
                   "--json: an object of 'attempts' and 'suppressed' counts).")
@role_options
@json_option
def reads(attempted: bool, as_json: bool, **kwargs: Any) -> None:
    """Who read which of your records, and when (from the providers' signed receipts; 'anchored'
    once the receipt's Merkle root is on-chain) — then, in a section of their own, the attempted
    reads: signed read requests the service refused (no grant, revoked, expired, ...), with how
    many more were only counted once a provider passed the hourly limit.

    \b
    Examples:
      kizuna patient reads --key aiko
      kizuna patient reads --attempted --json --key aiko
    """
    from kizuna.client.keys import vocabulary

    with _patient(kwargs) as (session, client):
        client.keys.learn_labels(vocabulary())
        names = known_names(session.home)
        rows = [] if attempted else [
            {"provider": r.provider, "name": names.get(r.provider),
             "record_id": hex32(r.record_id),
             "scope": client.keys.label_of(r.scope_id), "served_at": r.served_at,
             "time": show_time(r.served_at), "head_block": r.head_block,
             "anchored": r.anchored} for r in client.reads()]
        # The plain --json list stays the receipts' (what scripts read); the attempts are in
        # the human output's second section and in --attempted.
        tried = client.attempted_reads() if attempted or not as_json else None
    attempts = [{"provider": a.provider, "name": names.get(a.provider),
                 "record_id": hex32(a.record_id), "reason": a.reason,
                 "refused_at": a.refused_at, "time": show_time(a.refused_at),
                 "head_block": a.head_block} for a in (tried.attempts if tried else ())]
    suppressed = [{"provider": c.provider, "name": names.get(c.provider),
                   "hour_start": c.hour_start, "hour": show_time(c.hour_start),
                   "count": c.count} for c in (tried.suppressed if tried else ())]

    def human() -> None:
        if not attempted:
            print_table(
                [{**r, "record_id": short(r["record_id"])} for r in rows],
                [Column("time", "When"), Column("name", "Provider"),
                 Column("provider", "Address"), Column("scope", "Scope"),
                 Column("record_id", "Record"), Column("anchored", "Anchored")],
                title="Reads of your records", empty="nobody has read your records")
        print_table(
            [{**a, "record_id": short(a["record_id"])} for a in attempts],
            [Column("time", "When"), Column("name", "Provider"),
             Column("provider", "Address"), Column("record_id", "Record"),
             Column("reason", "Refused because", "red")],
            title="Attempted reads (refused)", empty="no refused read attempts")
        if suppressed:
            print_table(suppressed, [Column("hour", "Hour from"), Column("name", "Provider"),
                                     Column("provider", "Address"),
                                     Column("count", "More refused (counted only)")],
                        title="Further refused attempts, counted only (rate limit)")

    emit({"attempts": attempts, "suppressed": suppressed} if attempted else rows, human=human)


@patient.command("inbox")
@role_options
@json_option
def inbox(as_json: bool, **kwargs: Any) -> None:
    """Your inbox: access requests, reports, prescriptions and bookings sent to you.

    \b
    Example:
      kizuna patient inbox --key aiko
      kizuna patient open 0x5d1e77 --key aiko
    """
    with _patient(kwargs) as (_, client):
        rows = _inbox_rows(client.inbox())
    emit(rows, human=lambda: print_table(
        [{**r, "ref": short(r["ref"])} for r in rows],
        [Column("ref", "Message"), Column("kind", "Kind"), Column("from", "From"),
         Column("block_number", "Block")], title="Inbox", empty="inbox empty"))


@patient.command("open")
@click.argument("message")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the decrypted message here (mode 0600); default stdout.")
@role_options
def open_(message: str, output: Path | None, **kwargs: Any) -> None:
    """Decrypt a message of your inbox (a report, prescription, booking, a request's note).
    MESSAGE is its id from `kizuna patient inbox` (a prefix is enough).

    \b
    Example:
      kizuna patient open 0x5d1e77 --key aiko
    """
    with _patient(kwargs) as (_, client):
        items = [i for i in client.inbox() if i.cid is not None]
        ref = match_id(message, [bytes(i.ref) for i in items], field="message")
        data = client.open_message(ref)
    if output is None and _is_json(data):
        data = json.dumps(json.loads(data), indent=2, ensure_ascii=False).encode() + b"\n"
    write_output(data, output)


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def _sharing_commands() -> Sequence[click.Command]:
    """``ips``, ``share``, ``links``, ``unshare`` live in kizuna/cli/patient_sharing.py."""
    from kizuna.cli.patient_sharing import COMMANDS

    return COMMANDS


def _data_request_commands() -> Sequence[click.Command]:
    """Data requests (#16) live in kizuna/cli/data_requests.py."""
    from kizuna.cli.data_requests import PATIENT_COMMANDS

    return PATIENT_COMMANDS


def _research_commands() -> Sequence[click.Command]:
    """Research sharing (#16): ``studies``, ``consent``, ``withdraw`` (kizuna/cli/research.py)."""
    from kizuna.cli.research import PATIENT_COMMANDS

    return PATIENT_COMMANDS


_EXTRA_COMMANDS = (_sharing_commands, _data_request_commands, _research_commands)


__all__ = ["expand_scopes", "patient", "patient_client"]
