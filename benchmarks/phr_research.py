"""Issue 16's research figure, run by benchmarks/phr.py (``--only research`` for it alone).

* ``deid_resources_per_s`` (target >= 2,000): a Synthea patient of at least
  ``--deid-resources`` (5,000) resources (benchmarks/phr_sharing.py's ``large_patient``:
  seed 7, 8, ... aged 70-80), already decrypted in memory, made into a study copy the way
  ``kizuna patient consent`` does before encrypting it: the patient's study key (HKDF),
  :class:`kizuna.research.deidentify.Deidentifier` over every resource (identifiers, free text
  and people/places dropped, references pseudonymised, dates shifted, ages grouped). Best of 3,
  resources in / second. ``deid_canonical_resources_per_s``: the same plus each copy's canonical
  JSON (the bytes a record holds: the cost every imported resource pays, the import's figure).
  ``deid_ndjson_resources_per_s``: the researcher's side of the same data, written as FHIR
  Bulk NDJSON (:func:`kizuna.research.export.write_bulk_ndjson`). Encryption, the batch
  registration and the reads are the import's and the read path's figures.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from kizuna.crypto.pre import UmbralSecretKey
from kizuna.research.deidentify import Deidentifier, study_key
from kizuna.research.export import write_bulk_ndjson
from kizuna.storage.fhir.canonical import canonical_json


def run(root: Path, *, resources_wanted: int) -> dict[str, Any]:
    from phr_sharing import large_patient, say  # benchmarks/ is on sys.path (phr.py)

    say(f"generating a Synthea patient of {resources_wanted}+ resources...")
    resources = large_patient(root, resources_wanted)
    types = {r["id"]: r["resourceType"] for r in resources if isinstance(r.get("id"), str)}
    secret = UmbralSecretKey.random()
    best = best_canonical = best_ndjson = float("inf")
    copies: list[dict[str, Any]] = []
    for attempt in range(3):
        started = time.perf_counter()
        deid = Deidentifier(study_key(secret, os.urandom(32)), types=types)
        copies = [c for c in map(deid.resource, resources) if c is not None]
        best = min(best, time.perf_counter() - started)
        started = time.perf_counter()
        for copy in copies:
            canonical_json(copy)
        best_canonical = min(best_canonical, best + time.perf_counter() - started)
        started = time.perf_counter()
        write_bulk_ndjson(copies, root / f"ndjson-{attempt}")
        best_ndjson = min(best_ndjson, time.perf_counter() - started)
    return {"deid_patient_resources": len(resources),
            "deid_copy_resources": len(copies),
            "deid_resources_per_s": round(len(resources) / best),
            "deid_canonical_resources_per_s": round(len(resources) / best_canonical),
            "deid_ndjson_resources_per_s": round(len(copies) / best_ndjson)}
