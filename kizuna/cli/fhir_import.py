"""``kizuna patient import --from-fhir URL``: a patient's records pulled from a FHIR R4 server
(:mod:`kizuna.client.fhir_pull`) and imported by the same pipeline as a file
(:mod:`kizuna.client.importer`: one batch registration, progress, resumable)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import click

from kizuna.cli.output import Column, emit, print_table, progress
from kizuna.errors import InputError


def parse_types(value: str | None) -> list[str] | None:
    """``--types Observation,Condition`` → the type names (each checked to be an R4 type)."""
    if value is None:
        return None
    from kizuna.fhirproxy.app import is_r4_type

    names = [t.strip() for t in value.split(",") if t.strip()]
    if not names:
        raise InputError("types", "name at least one FHIR resource type")
    unknown = [n for n in names if not is_r4_type(n)]
    if unknown:
        raise InputError("types", f"not FHIR R4 resource types: {', '.join(unknown)}")
    return names


def import_from_fhir(url: str, *, patient_id: str | None, types: Sequence[str] | None,
                     since: str | None, page_size: int, workers: int | None,
                     kwargs: dict[str, Any]) -> None:
    from kizuna.cli.patient import _patient
    from kizuna.client.fhir_pull import FhirPuller, pull_source, token_from
    from kizuna.client.importer import Importer, start_pool
    from kizuna.fhirproxy.dates import date_range

    if since is not None and date_range(since) is None:
        raise InputError("since", f"{since!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD "
                         "or a dateTime)")
    # Everything is fetched and validated before any key is unlocked or anything staged.
    with FhirPuller(url, token=token_from(os.environ), page_size=page_size) as puller, \
            progress("Fetching", unit="resources") as bar:
        pulled = puller.pull(patient_id=patient_id, types=types, since=since,
                             on_page=lambda _pages, found: bar.update(completed=found))
    click.echo(f"fetched {len(pulled.resources)} resource(s) of patient {pulled.patient_id} "
               f"in {pulled.pages} page(s) from {pulled.base} "
               f"({'$everything' if pulled.everything else 'a search per type'})", err=True)
    pool = start_pool(workers)
    try:
        with _patient(kwargs) as (session, client):
            source = pull_source(pulled, client.keys.wallet.import_id_key().reveal())
            total = len(source.records)
            with progress("Importing", total=total, unit="resources") as bar:
                importer = Importer(client, journal_root=session.home.imports_dir, pool=pool,
                                    on_progress=lambda done, of: bar.update(total=of,
                                                                            completed=done))
                result = importer.run([source])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    click.echo(f"imported {result.resources} resource(s) from {pulled.base}: "
               f"{result.registered} registered now in {len(result.batches)} transaction(s), "
               f"{result.already_registered} already stored (same server, type, id and "
               f"version), in {result.seconds:.1f} s", err=True)
    by_scope = dict(sorted(result.by_scope.items()))
    emit({**result.as_dict(), "source": pulled.base, "patient_id": pulled.patient_id,
          "pages": pulled.pages, "everything": pulled.everything},
         human=lambda: print_table(
             [{"label": k, "count": v} for k, v in by_scope.items()],
             [Column("label", "Scope"), Column("count", "Records")],
             title=f"Imported {result.resources} record(s) from {pulled.base}"))


__all__ = ["import_from_fhir", "parse_types"]
