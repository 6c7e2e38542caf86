"""1 GB through the embedded store keeps memory flat (run in a child process so its peak RSS is
its own). Marked slow: CI runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD = textwrap.dedent(
    """
    import hashlib, json, random, sys
    from kizuna.diagnostics import peak_rss_mib
    from kizuna.storage.embedded import EmbeddedStore
    from kizuna.storage.unixfs import compute_cid

    size, root = int(sys.argv[1]), sys.argv[2]

    def source():
        rng = random.Random(11)
        left = size
        while left:
            n = min(1 << 20, left)
            yield rng.randbytes(n)
            left -= n

    def hashed(pieces, digest, counted=None):
        for piece in pieces:
            digest.update(piece)
            if counted is not None:
                counted.append(len(piece))
            yield piece

    # Two passes over the gigabyte, not four: the sent bytes are hashed as the store takes
    # them, and the bytes read back are hashed and run through the reference UnixFS importer
    # as they come (equal to the source when the digests agree).
    store = EmbeddedStore(root, fsync=False)
    sent = hashlib.sha256()
    cid = store.put(hashed(source(), sent))
    got, sizes = hashlib.sha256(), []
    with store.get(cid) as stream:
        expected_cid = compute_cid(hashed(stream, got, sizes)).text()
    print(json.dumps({
        "cid": cid,
        "expected_cid": expected_cid,
        "same": got.digest() == sent.digest(),
        "total": sum(sizes),
        "peak_rss_mb": peak_rss_mib(),
    }))
    """
)


@pytest.mark.slow
def test_one_gigabyte_through_the_embedded_store_in_flat_memory(tmp_path: Path) -> None:
    size = 1 << 30
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(size), str(tmp_path / "store")],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        shutil.rmtree(tmp_path / "store", ignore_errors=True)  # 1 GiB of blocks
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["same"] and result["total"] == size
    assert result["cid"] == result["expected_cid"]
    assert result["peak_rss_mb"] <= 150, result
