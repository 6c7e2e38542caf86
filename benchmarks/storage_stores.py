"""Store half of the storage benchmark: records through the content stores, against baselines
measured in the same run.

    python benchmarks/storage_stores.py [--quick] [--no-ipfs] [--json]

* Embedded store, per size (1 MB, 100 MB): a file goes file -> envelope encryption ->
  ``EmbeddedStore.put`` and back ``get`` -> decryption -> file. The baseline is a plain file copy
  in and a plain copy back out (``shutil.copyfile``, no fsync). ``store_ratio_<size>`` =
  baseline time / Kizuna time (1.0 = as fast as copying the file twice). Also reported: the
  same against a *durable* copy (copy + fsync, which the store does for every block), and the
  store alone without encryption (``store_plain_ratio_<size>``).
* Peak RSS: 1 GB (generated on the fly) through encrypt -> put -> get -> decrypt in a child
  process, ``store_peak_rss_mb_1gb`` is that process's peak RSS, VmHWM (target <= 150 MB).
* IPFS node (js-ipfs 0.66.1 started by the benchmark): file -> encrypt -> ``IpfsStore.put``
  and ``get`` -> decrypt -> file, against the node's own ``add`` and ``cat`` of the plaintext
  driven by bare httpx calls. ``ipfs_ratio_100mb`` = baseline time / Kizuna time.

Timings are the best of a few rounds (the machine is shared). ``run()`` returns a flat dict for
``benchmarks/storage.py``; ``--json`` prints it as the last line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from kizuna.crypto import pre
from kizuna.diagnostics import peak_rss_mib
from kizuna.storage.embedded import EmbeddedStore
from kizuna.storage.envelope import decrypt_stream, encrypt_stream
from kizuna.storage.ipfs import IpfsStore
from kizuna.storage.localipfs import LocalIpfsNode
from kizuna.storage.store import ContentStore
from kizuna.types import RecordId

MB = 1_000_000
DEFAULT_SIZES = (1 * MB, 100 * MB)
GB = 1_000_000_000
PIECE = 1 << 20


def _label(size: int) -> str:
    if size >= GB and size % GB == 0:
        return f"{size // GB}gb"
    return f"{size // MB}mb" if size >= MB else f"{size}b"


def _generate(size: int, *, seed: int = 7) -> Iterator[bytes]:
    rng = random.Random(seed)
    left = size
    while left > 0:
        n = min(PIECE, left)
        yield rng.randbytes(n)
        left -= n


def _write_source(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        for piece in _generate(size):
            handle.write(piece)


def _digest(path: Path) -> bytes:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while piece := handle.read(PIECE):
            hasher.update(piece)
    return hasher.digest()


def _best(
    fn: Callable[[], object], rounds: int, *, setup: Callable[[], object] | None = None
) -> float:
    best = float("inf")
    for _ in range(rounds):
        if setup is not None:
            setup()  # not timed
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


class _Pipeline:
    """file -> encrypt -> store -> decrypt -> file, for one store and one owner key."""

    def __init__(self, store: ContentStore) -> None:
        self.store = store
        self.owner = pre.UmbralSecretKey.random()

    def round_trip(self, source: Path, target: Path, *, encrypt: bool = True) -> None:
        with source.open("rb") as handle:
            if encrypt:
                cid = self.store.put(
                    encrypt_stream(
                        handle,
                        owner_key=self.owner.public_key,
                        record_id=RecordId(os.urandom(32)),
                        content_type="application/octet-stream",
                    )
                )
            else:
                cid = self.store.put(handle)
        with self.store.get(cid) as stream, target.open("wb") as out:
            chunks = decrypt_stream(stream, owner_sk=self.owner) if encrypt else stream
            for chunk in chunks:
                out.write(chunk)


def _copy_round_trip(source: Path, middle: Path, target: Path, *, durable: bool) -> None:
    for src, dst in ((source, middle), (middle, target)):
        shutil.copyfile(src, dst)
        if durable:
            fd = os.open(dst, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def embedded_figures(size: int, *, rounds: int, work: Path) -> dict[str, float]:
    source, middle, target = work / "source.bin", work / "copy.bin", work / "target.bin"
    _write_source(source, size)
    expected = _digest(source)
    label = _label(size)
    copy_t = _best(lambda: _copy_round_trip(source, middle, target, durable=False), rounds)
    durable_t = _best(lambda: _copy_round_trip(source, middle, target, durable=True), rounds)
    store_dir = work / "store"
    pipeline = _Pipeline(EmbeddedStore(store_dir))

    def empty_store() -> None:
        # Every round writes all blocks, rather than finding them already stored.
        shutil.rmtree(store_dir, ignore_errors=True)
        pipeline.store = EmbeddedStore(store_dir)

    kizuna_t = _best(lambda: pipeline.round_trip(source, target), rounds, setup=empty_store)
    assert _digest(target) == expected, "round trip changed the bytes"
    plain_t = _best(
        lambda: pipeline.round_trip(source, target, encrypt=False), rounds, setup=empty_store
    )
    assert _digest(target) == expected, "round trip changed the bytes"
    shutil.rmtree(store_dir, ignore_errors=True)
    for path in (source, middle, target):
        path.unlink(missing_ok=True)
    return {
        f"store_ratio_{label}": copy_t / kizuna_t,
        f"store_ratio_vs_fsync_copy_{label}": durable_t / kizuna_t,
        f"store_plain_ratio_{label}": copy_t / plain_t,
        f"store_mb_s_{label}": size / MB / kizuna_t,
        f"copy_round_trip_s_{label}": copy_t,
        f"store_round_trip_s_{label}": kizuna_t,
    }


def _rss_child(size: int, store_dir: str) -> dict[str, float]:
    """In a fresh process: ``size`` generated bytes -> encrypt -> put -> get -> decrypt."""
    rss_start = peak_rss_mib()
    store = EmbeddedStore(store_dir)
    owner = pre.UmbralSecretKey.random()
    start = time.perf_counter()
    cid = store.put(
        encrypt_stream(
            _generate(size),
            owner_key=owner.public_key,
            record_id=RecordId(os.urandom(32)),
            content_type="application/dicom",
        )
    )
    put_t = time.perf_counter() - start
    hasher = hashlib.sha256()
    total = 0
    with store.get(cid) as stream:
        for chunk in decrypt_stream(stream, owner_sk=owner):
            hasher.update(chunk)
            total += len(chunk)
    elapsed = time.perf_counter() - start
    expected = hashlib.sha256()
    for piece in _generate(size):
        expected.update(piece)
    assert total == size and hasher.digest() == expected.digest(), "1 GB round trip changed bytes"
    label = _label(size)
    rss_peak = peak_rss_mib()
    return {
        f"store_peak_rss_mb_{label}": rss_peak,
        f"store_rss_growth_mb_{label}": rss_peak - rss_start,
        f"store_stream_put_mb_s_{label}": size / MB / put_t,
        f"store_stream_round_trip_mb_s_{label}": size / MB / elapsed,
    }


def rss_figures(size: int, *, work: Path) -> dict[str, float]:
    store_dir = work / "rss-store"
    try:
        done = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--rss-child",
                str(size),
                str(store_dir),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
    figures: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return figures


def ipfs_figures(size: int, *, rounds: int, work: Path) -> dict[str, float]:
    source, target = work / "ipfs-source.bin", work / "ipfs-target.bin"
    label = _label(size)
    seeds = iter(range(100, 200))
    expected = b""

    def fresh_source() -> None:
        # New bytes every round: a node skips blocks it already holds, and Kizuna's ciphertext
        # is new every time (fresh data key), so the baseline must not add known bytes either.
        nonlocal expected
        with source.open("wb") as handle:
            for piece in _generate(size, seed=next(seeds)):
                handle.write(piece)
        expected = _digest(source)

    with LocalIpfsNode(log_path=work / "jsipfs.log") as node:
        api = f"{node.api_url}/api/v0"
        bare = httpx.Client(timeout=600)

        def node_add_cat() -> None:
            with source.open("rb") as handle:
                answer = bare.post(
                    f"{api}/add",
                    params={"cid-version": "1", "raw-leaves": "true", "cid-base": "base32"},
                    files={"file": ("data", handle)},
                )
            cid = answer.json()["Hash"]
            with (
                bare.stream("POST", f"{api}/cat", params={"arg": cid, "timeout": "600s"}) as resp,
                target.open("wb") as out,
            ):
                for chunk in resp.iter_bytes():
                    out.write(chunk)

        store = IpfsStore(node.api_url, timeout_s=600)
        pipeline = _Pipeline(store)
        baseline_t = kizuna_t = float("inf")
        for _ in range(rounds):  # interleaved: both see the same machine load
            baseline_t = min(baseline_t, _best(node_add_cat, 1, setup=fresh_source))
            assert _digest(target) == expected
            kizuna_t = min(
                kizuna_t, _best(lambda: pipeline.round_trip(source, target), 1, setup=fresh_source)
            )
            assert _digest(target) == expected
        store.close()
        bare.close()
    source.unlink(missing_ok=True)
    target.unlink(missing_ok=True)
    return {
        f"ipfs_ratio_{label}": baseline_t / kizuna_t,
        f"ipfs_node_add_cat_s_{label}": baseline_t,
        f"ipfs_kizuna_round_trip_s_{label}": kizuna_t,
    }


def run(
    sizes: Sequence[int] = DEFAULT_SIZES,
    quick: bool = False,
    *,
    ipfs: bool = True,
    rss_size: int | None = None,
) -> dict[str, Any]:
    """Every figure of this half of the benchmark, as one flat dict."""
    if quick:
        sizes = tuple(min(s, 16 * MB) for s in sizes)
    rss_size = rss_size if rss_size is not None else (256 * MB if quick else GB)
    rounds = 1 if quick else 3
    figures: dict[str, Any] = {"stores_quick": quick}
    with tempfile.TemporaryDirectory(prefix="kizuna-bench-") as tmp:
        work = Path(tmp)
        for size in sizes:
            figures.update(embedded_figures(size, rounds=rounds, work=work))
        figures.update(rss_figures(rss_size, work=work))
        if ipfs:
            figures.update(ipfs_figures(max(sizes), rounds=1 if quick else 3, work=work))
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 MB and 256 MB, one round")
    parser.add_argument("--no-ipfs", action="store_true", help="skip the IPFS node figures")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--rss-child", nargs=2, metavar=("SIZE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        print(json.dumps(_rss_child(int(args.rss_child[0]), args.rss_child[1])))
        return 0
    figures = run(quick=args.quick, ipfs=not args.no_ipfs)
    width = max(len(key) for key in figures)
    for key, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
