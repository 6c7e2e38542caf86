"""The crypto benchmark runs and reports the keys benchmarks/storage.py aggregates (not timed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "storage_crypto.py"


def test_run_reports_the_aggregated_keys() -> None:
    spec = importlib.util.spec_from_file_location("storage_crypto", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = module.run(sizes=(200_000,), quick=True, stream_size=8 << 20)
    keys = (
        "aead_ratio_200kb",
        "reencrypt_per_s",
        "reencrypt_ratio",
        "umbral_min_ratio",
        "envelope_stream_peak_rss_mb_8mb",
    )
    for key in keys:
        assert key in figures, key
        assert figures[key] > 0
    assert all(isinstance(v, float) for v in figures.values())
