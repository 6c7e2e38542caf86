"""Storage benchmark (issue 4): envelope crypto, Umbral, content stores, IPFS, FHIR — one run.

    python benchmarks/storage.py [--quick] [--gib] [--no-ipfs] [--json]

Runs the three halves side by side in one process (each compares Kizuna against a baseline
measured in the same run; see their docstrings):

* ``storage_crypto``: envelope vs raw AES-256-GCM (1 MB, 100 MB; 1 GiB in memory with ``--gib``),
  a 1 GiB streaming round trip's peak RSS, Umbral wrappers vs bare ``umbral_pre``;
* ``storage_stores``: file → encrypt → embedded store and back vs a plain file copy, peak RSS of
  1 GB through the embedded store, the IPFS node path vs the node's own add/cat;
* ``storage_fhir``: FHIR validation of 10,000 resources vs plain parsing.

With ``--json`` the last line is one JSON object holding every figure, including the keys
``aead_ratio_100mb``, ``store_peak_rss_mb_1gb``, ``store_ratio_100mb``, ``ipfs_ratio_100mb``,
``reencrypt_per_s``, ``reencrypt_ratio`` and ``fhir_resources_per_s``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import storage_crypto
import storage_fhir
import storage_stores

REQUIRED = (
    "aead_ratio_100mb",
    "store_peak_rss_mb_1gb",
    "store_ratio_100mb",
    "ipfs_ratio_100mb",
    "reencrypt_per_s",
    "reencrypt_ratio",
    "fhir_resources_per_s",
)
TARGETS = {  # key: (comparison, bound) from issue 4
    "aead_ratio_100mb": (">=", 0.85),
    "reencrypt_ratio": (">=", 0.9),
    "store_peak_rss_mb_1gb": ("<=", 150.0),
}


def run(*, quick: bool = False, gib: bool = False, ipfs: bool = True) -> dict[str, Any]:
    crypto_sizes = (*storage_crypto.DEFAULT_SIZES, storage_crypto.GIB_SIZE) if gib else None
    figures: dict[str, Any] = {}
    print("== envelope and Umbral", flush=True)
    if crypto_sizes:
        figures.update(storage_crypto.run(sizes=crypto_sizes, quick=quick))
    else:
        figures.update(storage_crypto.run(quick=quick))
    print("== content stores", flush=True)
    figures.update(storage_stores.run(quick=quick, ipfs=ipfs))
    print("== FHIR validation", flush=True)
    figures.update(storage_fhir.run(quick=quick))
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller inputs, fewer rounds")
    parser.add_argument("--gib", action="store_true", help="also 1 GiB in memory (~4 GB RAM)")
    parser.add_argument("--no-ipfs", action="store_true", help="skip the IPFS node figures")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args(argv)
    figures = run(quick=args.quick, gib=args.gib, ipfs=not args.no_ipfs)
    print("\n== summary (Kizuna vs the baseline of the same run)")
    for key in REQUIRED:
        value = figures.get(key)
        if value is None:
            print(f"  {key:<24} not measured in this run")
            continue
        verdict = ""
        if key in TARGETS:
            op, bound = TARGETS[key]
            ok = value >= bound if op == ">=" else value <= bound
            verdict = f"  target {op} {bound}: {'ok' if ok else 'MISSED'}"
        print(f"  {key:<24} {value:12.3f}{verdict}")
    if args.json:
        print(
            json.dumps(
                {k: round(v, 4) if isinstance(v, float) else v for k, v in sorted(figures.items())}
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
