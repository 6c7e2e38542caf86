"""A content store backed by an IPFS node, through its HTTP RPC API (``/api/v0``), streaming.

Works with Kubo (real deployments) and js-ipfs (the tests' daemon); every call is a ``POST``, as
Kubo requires. What each operation asks the node:

* ``put``  → ``add?cid-version=1&raw-leaves=true&chunker=size-262144&pin=...&cid-base=base32``,
  the body a multipart form streamed from a generator (chunked transfer, constant memory). The
  same bytes run through Kizuna's own importer on the way out, and the node's CID must equal it:
  a node with other import settings is caught at once, not when the CID is looked up later.
* ``get``  → ``block/stat`` with a short timeout (is the content there at all?), then ``cat``
  streamed. ``cat`` always carries a ``timeout`` (js-ipfs waits forever for a missing block
  otherwise, and that timeout bounds the whole transfer, so it is the long one). With
  ``verify=True`` (default) the streamed bytes are re-imported and must give the requested CID;
  a mismatch raises :class:`ContentIntegrityError` at the end of the stream.
* ``has``  → ``block/stat?offline=true`` (held by this node; Kubo answers at once, js-ipfs after
  the short timeout).
* ``pin`` / ``unpin`` → ``pin/add`` / ``pin/rm``; ``import_car`` → ``dag/import``;
  ``version`` → ``version``.

Errors: a refused or timed-out connection is :class:`StoreUnavailable`; an answer that is not
the API's (not HTTP, not JSON, missing fields, an unexpected status) is
:class:`StoreProtocolError`; the node's "not found" / "timed out" for content is
:class:`ContentNotFound`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import httpx

from kizuna.errors import ContentNotFound, StorageError, StoreProtocolError, StoreUnavailable
from kizuna.storage.cid import ContentId, parse_cid
from kizuna.storage.store import ByteSource, ContentStream
from kizuna.storage.unixfs import CHUNK_SIZE, ContentIntegrityError, Importer
from kizuna.tls import http_client
from kizuna.types import Cid

_ADD_PARAMS = {
    "cid-version": "1",
    "raw-leaves": "true",
    "chunker": f"size-{CHUNK_SIZE}",
    "cid-base": "base32",
    "progress": "false",
}
_MISSING_HINTS = (
    "timed out",
    "deadline exceeded",  # Kubo's words for its timeout
    "not found",
    "could not find",
    "no link named",
    "does not exist",
)


class CidMismatchError(StoreProtocolError):
    """The node named added content with another CID than Kizuna's importer computed."""


@dataclass(frozen=True, slots=True)
class NodeVersion:
    """What ``/api/v0/version`` says: the version string and the whole answer."""

    version: str
    details: Mapping[str, Any]


class IpfsStore:
    """An IPFS node as a :class:`~kizuna.storage.store.ContentStore`."""

    def __init__(
        self,
        api_url: str,
        *,
        timeout_s: float = 30.0,
        find_timeout_s: float = 10.0,
        transfer_timeout_s: float = 3600.0,
        verify: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Talk to the node whose API listens at ``api_url`` (e.g. ``http://127.0.0.1:5001``).

        ``timeout_s``: connecting and waiting between two reads of an answer.
        ``find_timeout_s``: how long the node may look for content before it counts as absent.
        ``transfer_timeout_s``: the node-side bound on a whole ``cat`` / ``pin/add``.
        ``verify``: check that the node's CIDs and bytes are the ones Kizuna computes.
        """
        self.api_url = api_url.rstrip("/")
        self._find_timeout = f"{find_timeout_s:g}s"
        self._transfer_timeout = f"{transfer_timeout_s:g}s"
        self._verify = verify
        self._client = http_client(
            self.api_url + "/api/v0/", base=True,
            timeout=httpx.Timeout(timeout_s, read=max(timeout_s, find_timeout_s + 5)),
            transport=transport,
        )

    # -- ContentStore -----------------------------------------------------------------------

    def put(self, source: ByteSource, *, pin: bool = True) -> Cid:
        importer = Importer()
        boundary = secrets.token_hex(16)
        body = _multipart(_pieces(source), boundary=boundary, filename="data", tap=importer)
        answer = self._post_ndjson(
            "add",
            params={**_ADD_PARAMS, "pin": "true" if pin else "false"},
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        entries = [entry for entry in answer if "Hash" in entry]
        if not entries:
            raise StoreProtocolError(f"IPFS add answered without a Hash: {answer!r:.200}")
        node_cid = _cid_field(entries[-1], "Hash", "add")
        expected = importer.finish().cid
        if self._verify and node_cid != expected:
            raise CidMismatchError(
                f"the node stored the bytes as {node_cid.text()} but they are {expected.text()}:"
                " is it adding with other settings (CIDv0, chunker, raw leaves)?"
            )
        return node_cid.text()

    def put_many(self, sources: Iterable[ByteSource], *, pin: bool = True) -> list[Cid]:
        """One ``add`` per source, unpinned (the node has its own durability), then the pins
        once every source was added: a source that fails leaves nothing pinned (its blocks
        and the earlier ones are unpinned content, the node's gc takes them). Nothing is
        unpinned here: a node's pin is not counted, and the same content may be pinned for
        an earlier record."""
        cids = [self.put(source, pin=False) for source in sources]
        if pin:
            for cid in dict.fromkeys(cids):
                self.pin(cid)
        return cids

    def get(self, cid: str) -> ContentStream:
        parsed = parse_cid(cid)
        text = parsed.to_v1().text()
        self._stat(text, offline=False)
        request = self._client.build_request(
            "POST", "cat", params={"arg": text, "timeout": self._transfer_timeout}
        )
        response = self._send(request, stream=True)
        if response.status_code != 200:
            try:
                response.read()
            finally:
                response.close()
            self._raise_for(response, "cat", text)
        chunks = response.iter_bytes(CHUNK_SIZE)
        if self._verify:
            chunks = _verifying(chunks, parsed.to_v1())
        return ContentStream(_guarded(chunks, self.api_url), cid=text, on_close=response.close)

    def has(self, cid: str) -> bool:
        text = parse_cid(cid).to_v1().text()
        try:
            self._stat(text, offline=True)
        except ContentNotFound:
            return False
        return True

    def pin(self, cid: str) -> None:
        text = parse_cid(cid).to_v1().text()
        self._stat(text, offline=False)
        answer = self._post_json(
            "pin/add", params={"arg": text, "timeout": self._transfer_timeout}, subject=text
        )
        pins = answer.get("Pins")
        if not isinstance(pins, list):
            raise StoreProtocolError(f"IPFS pin/add answered without Pins: {answer!r:.200}")

    def pin_many(self, cids: Iterable[str]) -> None:
        """Each of ``cids`` checked present first, then pinned (the node has its own
        durability: nothing to share between them)."""
        wanted = [parse_cid(cid).to_v1().text() for cid in dict.fromkeys(cids)]
        for text in wanted:
            self._stat(text, offline=False)
        for text in wanted:
            self.pin(text)

    def unpin(self, cid: str) -> None:
        text = parse_cid(cid).to_v1().text()
        try:
            self._post_json("pin/rm", params={"arg": text}, subject=text)
        except _NodeError as exc:
            if "not pinned" not in exc.message.lower():
                raise exc.as_storage_error() from None
            if not self.has(text):
                raise ContentNotFound(text) from None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> IpfsStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- beyond the interface ---------------------------------------------------------------

    def version(self) -> NodeVersion:
        """The node's version (also the cheapest "is it up?" check)."""
        answer = self._post_json("version", params={}, subject="")
        version = answer.get("Version")
        if not isinstance(version, str) or not version:
            raise StoreProtocolError(f"IPFS version answered without Version: {answer!r:.200}")
        return NodeVersion(version=version, details=answer)

    def import_car(self, source: BinaryIO | Iterable[bytes], *, pin: bool = True) -> list[Cid]:
        """Load a CARv1 into the node (``dag/import``); return its roots (base32)."""
        boundary = secrets.token_hex(16)
        answer = self._post_ndjson(
            "dag/import",
            params={"pin-roots": "true" if pin else "false", "cid-base": "base32"},
            content=_multipart(_pieces(source), boundary=boundary, filename="import.car"),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        roots: list[Cid] = []
        for entry in answer:
            root = entry.get("Root")
            if root is None:
                continue  # e.g. Kubo's "Stats" line
            if not isinstance(root, dict) or not isinstance(root.get("Cid"), dict):
                raise StoreProtocolError(f"IPFS dag/import answered {entry!r:.200}")
            roots.append(_cid_field(root["Cid"], "/", "dag/import").text())
            if root.get("PinErrorMsg"):
                raise StorageError(f"IPFS could not pin {roots[-1]}: {root['PinErrorMsg']}")
        return roots

    # -- HTTP -------------------------------------------------------------------------------

    def _stat(self, text: str, *, offline: bool) -> None:
        params = {"arg": text, "timeout": self._find_timeout}
        if offline:
            params["offline"] = "true"
        answer = self._post_json("block/stat", params=params, subject=text)
        if not isinstance(answer.get("Size"), int):
            raise StoreProtocolError(f"IPFS block/stat answered {answer!r:.200}")

    def _send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        try:
            return self._client.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            raise StoreUnavailable(f"IPFS node at {self.api_url} did not answer: {exc}") from exc
        except (httpx.RemoteProtocolError, httpx.DecodingError) as exc:
            raise StoreProtocolError(
                f"{self.api_url} does not speak the IPFS HTTP API: {exc}"
            ) from exc
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"IPFS node at {self.api_url} unreachable: {exc}") from exc

    def _post(self, path: str, *, params: Mapping[str, str], **kwargs: Any) -> httpx.Response:
        request = self._client.build_request("POST", path, params=params, **kwargs)
        response = self._send(request, stream=False)
        return response

    def _post_json(self, path: str, *, params: Mapping[str, str], subject: str) -> dict[str, Any]:
        response = self._post(path, params=params)
        if response.status_code != 200:
            error = _NodeError.from_response(response, path, subject, self.api_url)
            if path == "pin/rm":
                raise error
            raise error.as_storage_error()
        value = _json(response.content, path, self.api_url)
        if not isinstance(value, dict):
            raise StoreProtocolError(f"IPFS {path} answered {value!r:.200}, not a JSON object")
        return value

    def _post_ndjson(
        self, path: str, *, params: Mapping[str, str], **kwargs: Any
    ) -> list[dict[str, Any]]:
        response = self._post(path, params=params, **kwargs)
        if response.status_code != 200:
            raise _NodeError.from_response(response, path, "", self.api_url).as_storage_error()
        entries: list[dict[str, Any]] = []
        for line in response.content.splitlines():
            if not line.strip():
                continue
            value = _json(line, path, self.api_url)
            if not isinstance(value, dict):
                raise StoreProtocolError(f"IPFS {path} answered {value!r:.200}")
            if value.get("Type") == "error" and "Message" in value:
                raise StorageError(f"IPFS {path} failed: {value['Message']}")
            entries.append(value)
        if not entries:
            raise StoreProtocolError(f"IPFS {path} answered nothing")
        return entries

    def _raise_for(self, response: httpx.Response, path: str, subject: str) -> None:
        raise _NodeError.from_response(response, path, subject, self.api_url).as_storage_error()


class _NodeError(Exception):
    """An error answer of the API, before it is mapped onto Kizuna's tree."""

    def __init__(self, *, path: str, subject: str, status: int, message: str, url: str) -> None:
        super().__init__(message)
        self.path = path
        self.subject = subject
        self.status = status
        self.message = message
        self.url = url

    @classmethod
    def from_response(
        cls, response: httpx.Response, path: str, subject: str, url: str
    ) -> _NodeError:
        try:
            value = json.loads(response.content)
        except ValueError:
            value = None
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("Message"), str)
            or response.status_code not in (400, 500)
        ):
            raise StoreProtocolError(
                f"{url} answered {path} with HTTP {response.status_code} and"
                f" {response.content[:120]!r}: not the IPFS HTTP API"
            )
        return cls(
            path=path,
            subject=subject,
            status=response.status_code,
            message=value["Message"],
            url=url,
        )

    def as_storage_error(self) -> StorageError:
        lowered = self.message.lower()
        if self.subject and any(hint in lowered for hint in _MISSING_HINTS):
            return ContentNotFound(self.subject)
        return StorageError(f"IPFS {self.path} failed: {self.message}")


def _json(raw: bytes, path: str, url: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise StoreProtocolError(
            f"{url} answered {path} with {raw[:120]!r}: not JSON, not the IPFS HTTP API"
        ) from None


def _cid_field(entry: Mapping[str, Any], key: str, path: str) -> ContentId:
    value = entry.get(key)
    if not isinstance(value, str):
        raise StoreProtocolError(f"IPFS {path} answered without a CID in {key!r}: {entry!r:.200}")
    try:
        return parse_cid(value)
    except StorageError as exc:
        raise StoreProtocolError(f"IPFS {path} answered a bad CID: {exc}") from None


def _pieces(source: ByteSource | Iterable[bytes]) -> Iterator[bytes]:
    """Byte strings of at most 256 KiB from any source ``put`` accepts."""
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")
        for start in range(0, len(view), CHUNK_SIZE):
            yield bytes(view[start : start + CHUNK_SIZE])
        return
    read = getattr(source, "read", None)
    if read is not None:
        while piece := read(CHUNK_SIZE):
            yield piece
        return
    yield from source


def _multipart(
    pieces: Iterator[bytes], *, boundary: str, filename: str, tap: Importer | None = None
) -> Iterator[bytes]:
    """A one-file ``multipart/form-data`` body, produced as the pieces arrive."""
    yield (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode("ascii")
    for piece in pieces:
        if tap is not None:
            tap.write(piece)
        if piece:
            yield piece
    yield f"\r\n--{boundary}--\r\n".encode("ascii")


def _verifying(chunks: Iterator[bytes], cid: ContentId) -> Iterator[bytes]:
    """Pass the chunks through; at the end, the bytes must re-import to ``cid``."""
    importer = Importer()
    for chunk in chunks:
        importer.write(chunk)
        yield chunk
    got = importer.finish().cid
    if got != cid:
        raise ContentIntegrityError(
            f"the node served bytes for {cid.text()} that are {got.text()}: tampered, truncated,"
            " or added with other import settings (then use verify=False)"
        )


def _guarded(chunks: Iterator[bytes], url: str) -> Iterator[bytes]:
    """Map transport failures in the middle of a stream onto Kizuna's errors."""
    try:
        yield from chunks
    except httpx.TimeoutException as exc:
        raise StoreUnavailable(f"IPFS node at {url} stopped sending: {exc}") from exc
    except (httpx.RemoteProtocolError, httpx.DecodingError) as exc:
        raise StoreProtocolError(f"IPFS node at {url} broke off the stream: {exc}") from exc
    except httpx.TransportError as exc:
        raise StoreUnavailable(f"IPFS node at {url} failed mid-stream: {exc}") from exc


__all__ = ["CidMismatchError", "IpfsStore", "NodeVersion"]
