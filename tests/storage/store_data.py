"""Test data for the content-store tests: deterministic pseudo-random bytes made on the fly
(nothing big is committed), and a URL where nothing listens."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator

CHUNK = 262_144
TWO_LEVEL = 174 * CHUNK + 1
"""175 chunks: more than one dag-pb node can link, so the tree has two levels (45.6 MB)."""
MB = 1024 * 1024


def pseudo_random(size: int, *, seed: int = 4, piece: int = 1 << 20) -> Iterator[bytes]:
    """``size`` deterministic pseudo-random bytes, produced piece by piece (nothing big kept)."""
    rng = random.Random(seed)
    left = size
    while left > 0:
        n = min(piece, left)
        yield rng.randbytes(n)
        left -= n


def pseudo_random_bytes(size: int, *, seed: int = 4) -> bytes:
    return b"".join(pseudo_random(size, seed=seed))


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was just free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
