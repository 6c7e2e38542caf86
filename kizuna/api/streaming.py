"""Streaming bodies: an upload flows from the socket into a synchronous consumer (the content
store's ``put``) chunk by chunk, in a worker thread, with the size limit counted on the way —
memory stays constant whatever the size (a 500 MB DICOM study)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from kizuna.api.errors import PayloadTooLarge
from kizuna.errors import InputError
from kizuna.storage.store import ContentStream

T = TypeVar("T")


def check_declared_length(request: Request, limit: int) -> None:
    """Refuse at once (413) a body whose Content-Length is over the limit."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        size = int(declared)
    except ValueError:
        raise InputError("content-length", "is not a number") from None
    if size > limit:
        raise PayloadTooLarge(limit)


async def consume_body(request: Request, limit: int, consumer: Callable[[Iterator[bytes]], T]) -> T:
    """Run ``consumer(chunks)`` in a worker thread; ``chunks`` pulls the request body from the
    event loop as the consumer iterates (one chunk in memory at a time). Over ``limit`` bytes
    the iteration raises :class:`PayloadTooLarge` inside the consumer, which aborts its write."""
    check_declared_length(request, limit)
    stream = request.stream().__aiter__()

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None
        except ClientDisconnect:
            raise InputError("body", "the client disconnected during the upload") from None

    def chunks() -> Iterator[bytes]:
        seen = 0
        while True:
            chunk = anyio.from_thread.run(next_chunk)
            if chunk is None:
                return
            seen += len(chunk)
            if seen > limit:
                raise PayloadTooLarge(limit)
            if chunk:
                yield chunk

    return await anyio.to_thread.run_sync(lambda: consumer(chunks()))


def content_response(stream: ContentStream, *, media_type: str) -> Response:
    """The answer for ``stream``: content that fits in its first chunk (≤ 256 KiB: records,
    notes, FHIR resources) is sent whole, avoiding a worker-thread hop per chunk; anything
    larger streams; the first chunks are read before the status is sent, so an unknown CID or
    a store that is down still gets its error status. A block that fails its CID later aborts
    the response: tampered bytes are never completed. Memory stays bounded by two chunks."""
    try:
        first = next(stream, b"")
        second = next(stream, None)
    except BaseException:
        stream.close()
        raise
    if second is None:
        stream.close()
        return Response(first, media_type=media_type)

    def chunks() -> Iterator[bytes]:
        try:
            yield first
            yield second
            yield from stream
        finally:
            stream.close()

    return StreamingResponse(chunks(), media_type=media_type)


__all__ = ["check_declared_length", "consume_body", "content_response"]
