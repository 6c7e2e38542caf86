"""The content-store interface, the stream it hands back, and the store chosen by configuration.

Two stores implement :class:`ContentStore`:

* :class:`~kizuna.storage.embedded.EmbeddedStore` (the default) — a local content-addressed
  directory that names content with exactly the CID an IPFS node would give it;
* :class:`~kizuna.storage.ipfs.IpfsStore` — an IPFS node (Kubo, or js-ipfs in the tests) over its
  HTTP RPC API.

Both take a stream and give a stream: nothing here holds a whole record in memory. Errors come
from :mod:`kizuna.errors`: ``InvalidCid`` (not a CID), ``ContentNotFound``, ``StoreUnavailable``
(the node cannot be reached), ``StoreProtocolError`` (the node answered garbage), and
:class:`~kizuna.storage.unixfs.ContentIntegrityError` (bytes that do not match their CID).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal, Protocol, runtime_checkable

from kizuna.storage.unixfs import ContentIntegrityError
from kizuna.types import Cid

ByteSource = bytes | bytearray | memoryview | BinaryIO | Iterable[bytes]
"""What ``put`` accepts: bytes, a binary file object (read in chunks), or an iterator of bytes."""


class ContentStream:
    """The bytes of one piece of content, as a stream: iterate it for chunks, or ``read`` it.

    It holds at most one chunk (≤ 256 KiB) at a time. Close it (or use it as a context manager)
    when stopping early, so the underlying file or HTTP response is released.
    """

    def __init__(
        self, chunks: Iterator[bytes], *, cid: Cid, on_close: Callable[[], None] | None = None
    ) -> None:
        self.cid = cid
        self._chunks = chunks
        self._on_close = on_close
        self._pending = memoryview(b"")
        self._closed = False

    def __iter__(self) -> ContentStream:
        return self

    def __next__(self) -> bytes:
        if self._pending:
            out = bytes(self._pending)
            self._pending = memoryview(b"")
            return out
        if self._closed:
            raise StopIteration
        for chunk in self._chunks:
            if chunk:
                return chunk
        self.close()
        raise StopIteration

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative); ``b""`` at the end."""
        if size is None or size < 0:
            return b"".join(self)
        parts: list[bytes] = []
        want = size
        while want > 0:
            if not self._pending:
                try:
                    self._pending = memoryview(next(self))
                except StopIteration:
                    break
            take = self._pending[:want]
            parts.append(bytes(take))
            self._pending = self._pending[len(take) :]
            want -= len(take)
        return b"".join(parts)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` as far as the content allows; return the byte count (0 at the end)."""
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        if self._on_close is not None:
            self._on_close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> ContentStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@runtime_checkable
class ContentStore(Protocol):
    """Content-addressed storage: bytes in, a CID out; a CID in, the same bytes out."""

    def put(self, source: ByteSource, *, pin: bool = True) -> Cid:
        """Store a stream; return its CIDv1 (base32). Pinned unless ``pin=False``."""
        ...

    def put_many(self, sources: Iterable[ByteSource], *, pin: bool = True) -> list[Cid]:
        """Store several streams as one write (their CIDs, in order): the embedded store makes
        the whole lot durable with one flush instead of one per block. ``sources`` is consumed
        in order, each source wholly before the next is taken (a generator of generators
        reading one request body works). All or nothing: a source that raises (or a write
        that fails) keeps none of them."""
        ...

    def get(self, cid: str) -> ContentStream:
        """The content under ``cid`` as a stream. ``ContentNotFound`` when absent."""
        ...

    def has(self, cid: str) -> bool:
        """Whether the store holds the content (the root block at least)."""
        ...

    def pin(self, cid: str) -> None:
        """Keep the content (``ContentNotFound`` when absent)."""
        ...

    def pin_many(self, cids: Iterable[str]) -> None:
        """:meth:`pin` each of ``cids`` (``ContentNotFound`` for an absent one, before any is
        pinned): the embedded store makes them durable with one flush of its pin log instead
        of two per pin (a staging request re-pins its ~500 envelopes, ``keep_stored``)."""
        ...

    def unpin(self, cid: str) -> None:
        """Let the content go (a no-op if not pinned; ``ContentNotFound`` when absent)."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


def default_store_path() -> Path:
    """``$XDG_DATA_HOME/kizuna/store`` (``~/.local/share/kizuna/store``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kizuna" / "store"


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Which content store to open, and how.

    Built from the one configuration, :meth:`kizuna.config.Settings.store_config`
    (``KIZUNA_STORE``, ``KIZUNA_STORE_PATH``, ``KIZUNA_IPFS_API``, ``KIZUNA_IPFS_TIMEOUT``).
    """

    kind: Literal["embedded", "ipfs"] = "embedded"
    path: Path = field(default_factory=default_store_path)
    ipfs_api_url: str = "http://127.0.0.1:5001"
    timeout_s: float = 30.0


def open_store(config: StoreConfig) -> ContentStore:
    """Open the store the configuration names."""
    # Imported here: both implementations import this module for the interface types; and
    # only the one used (the IPFS client loads httpx, which an embedded store does not need).
    if config.kind == "ipfs":
        from kizuna.storage.ipfs import IpfsStore

        return IpfsStore(config.ipfs_api_url, timeout_s=config.timeout_s)
    from kizuna.storage.embedded import EmbeddedStore

    return EmbeddedStore(config.path)


__all__ = [
    "ByteSource",
    "ContentIntegrityError",
    "ContentStore",
    "ContentStream",
    "StoreConfig",
    "default_store_path",
    "open_store",
]
