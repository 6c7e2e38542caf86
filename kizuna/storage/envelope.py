"""The Kizuna envelope: one encrypted record, streamable, versioned. Layout in docs/envelope.md.

An envelope is a *preamble* followed by AES-256-GCM *segments*::

    preamble = header (magic "KZEN", version, flags, segment size, record id, nonce prefix,
                       key commitment, content type)
             + key block (Umbral capsule + Umbral ciphertext of the record's 32-byte data key)
    segment i = AES-256-GCM(aes_key, nonce_i, plaintext_i, associated_data = preamble)
    nonce_i   = nonce_prefix (7 bytes) || i (u32, big-endian) || last (0x00, or 0x01 on the final)

Every record gets a fresh random 256-bit data key, wrapped to the owner's Umbral public key
(so a proxy can later re-encrypt it for a grantee). The AES key and a key commitment are derived
from it with HKDF-SHA256. What each binding buys:

* index in the nonce -> segments cannot be reordered, dropped from the middle or duplicated;
* last flag in the nonce -> the stream cannot be cut at a segment boundary, nor extended;
* preamble as associated data -> no header field, capsule or wrapped key can be altered, and a
  segment from another envelope never authenticates here (other key, other preamble);
* key commitment in the header -> a wrong key is reported as such, before any segment.

Decryption releases a segment only after its tag verified, and the final segment only after the
stream's end was seen, so no unauthenticated byte ever reaches the caller. A consumer that writes
plaintext as it streams must still treat it as unfinished until the iterator ends without an
error (truncation is detected at the end: :class:`~kizuna.errors.IntegrityError`).

Memory is constant while streaming: one segment being read, one being looked ahead at.
"""

from __future__ import annotations

import hmac
import os
import re
import struct
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final, Protocol, TypeAlias, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kizuna.crypto import pre
from kizuna.crypto.commitment import CommitmentHasher
from kizuna.crypto.secret import SecretBytes
from kizuna.errors import EnvelopeFormatError, InputError, IntegrityError
from kizuna.types import Commitment, RecordId

MAGIC: Final = b"KZEN"
VERSION: Final = 1
DEFAULT_SEGMENT_SIZE: Final = 1 << 20
MIN_SEGMENT_SIZE: Final = 16
MAX_SEGMENT_SIZE: Final = 1 << 24
TAG_SIZE: Final = 16
NONCE_PREFIX_SIZE: Final = 7
RECORD_ID_SIZE: Final = 32
KEY_COMMITMENT_SIZE: Final = 32
DATA_KEY_SIZE: Final = 32
MAX_KEY_BLOCK_PART: Final = 1024
MAX_SEGMENTS: Final = 1 << 32

INFO_AES_KEY: Final = b"kizuna/envelope/v1/aes-256-gcm"
INFO_KEY_COMMITMENT: Final = b"kizuna/envelope/v1/key-commitment"

# magic, version, flags, segment size, record id, nonce prefix, key commitment, content-type length
_FIXED = struct.Struct(">4sBBI32s7s32sB")
FIXED_HEADER_SIZE: Final = _FIXED.size  # 82
_U16 = struct.Struct(">H")
MAX_PREAMBLE_SIZE: Final = FIXED_HEADER_SIZE + 255 + 2 * (_U16.size + MAX_KEY_BLOCK_PART)
"""No valid preamble is longer: the first this-many bytes always hold the whole header."""
_NONCE_TAIL = struct.Struct(">IB")

_TOKEN = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*"
_CONTENT_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(?:; ?{_TOKEN}={_TOKEN})*")


class DataKey(SecretBytes):
    """A record's 256-bit data key. Secret: never printed, pickled or hashed."""

    __slots__ = ()
    SIZE = DATA_KEY_SIZE

    @classmethod
    def random(cls) -> DataKey:
        return cls(os.urandom(DATA_KEY_SIZE))


@runtime_checkable
class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class _Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


ByteSource: TypeAlias = BinaryIO | _Readable | Iterable[bytes] | bytes | bytearray | memoryview
"""Where bytes come from: a binary file-like (``read``), an iterable of chunks, or bytes."""


# --- header ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    """The parsed preamble of an envelope: everything before the first segment.

    ``raw`` is the exact preamble bytes (the associated data of every segment). The proxy needs
    only ``capsule``; the owner or a grantee unwraps the data key with :meth:`unwrap_for_owner`
    or :meth:`unwrap_for_grantee`. The capsule is parsed (a curve-point check, ~0.2 ms) only
    when asked for, so decrypting with a known data key does not pay for it.
    """

    version: int
    segment_size: int
    record_id: RecordId
    content_type: str
    nonce_prefix: bytes
    key_commitment: bytes
    capsule_bytes: bytes
    wrapped_key: bytes
    raw: bytes

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def capsule(self) -> pre.Capsule:
        """The Umbral capsule of the data key (``EnvelopeFormatError`` if it does not parse)."""
        try:
            return pre.Capsule.from_bytes(self.capsule_bytes)
        except pre.MalformedCryptoData as error:
            raise EnvelopeFormatError(f"capsule is malformed: {error.reason}") from None

    def unwrap_for_owner(self, owner_sk: pre.UmbralSecretKey) -> DataKey:
        """The data key, opened with the owner's Umbral secret key."""
        return _data_key(pre.decrypt_original(owner_sk, self.capsule, self.wrapped_key))

    def unwrap_for_grantee(
        self,
        receiving_sk: pre.UmbralSecretKey,
        *,
        delegating_key: pre.UmbralPublicKey,
        cfrags: Iterable[pre.VerifiedCapsuleFrag],
        threshold: int,
    ) -> DataKey:
        """The data key, opened by a grantee from ``threshold`` verified capsule fragments."""
        raw = pre.decrypt_reencrypted(
            receiving_sk,
            delegating_key,
            self.capsule,
            list(cfrags),
            self.wrapped_key,
            threshold=threshold,
        )
        return _data_key(raw)


def _data_key(raw: bytes) -> DataKey:
    if len(raw) != DATA_KEY_SIZE:
        raise IntegrityError(f"the wrapped data key is {len(raw)} bytes, not {DATA_KEY_SIZE}")
    return DataKey(raw)


def _check_content_type(content_type: str) -> bytes:
    if not isinstance(content_type, str):
        raise InputError("content_type", f"must be a string, not {type(content_type).__name__}")
    if not content_type.isascii() or not _CONTENT_TYPE.fullmatch(content_type):
        raise InputError("content_type", f"{content_type!r} is not a media type (type/subtype)")
    encoded = content_type.encode("ascii")
    if len(encoded) > 255:
        raise InputError("content_type", f"is {len(encoded)} bytes, at most 255")
    return encoded


def _check_segment_size(segment_size: int) -> None:
    if isinstance(segment_size, bool) or not isinstance(segment_size, int):
        raise InputError("segment_size", "must be an integer")
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise InputError(
            "segment_size",
            f"{segment_size} is outside [{MIN_SEGMENT_SIZE}, {MAX_SEGMENT_SIZE}]",
        )


def _check_record_id(record_id: RecordId) -> None:
    if not isinstance(record_id, bytes) or len(record_id) != RECORD_ID_SIZE:
        raise InputError("record_id", f"must be {RECORD_ID_SIZE} bytes")


def _derive(data_key: DataKey, record_id: bytes, nonce_prefix: bytes) -> tuple[AESGCM, bytes]:
    """The AES-GCM cipher and the key commitment for one envelope."""
    salt = record_id + nonce_prefix
    secret = data_key.reveal()
    aes_key = HKDF(hashes.SHA256(), 32, salt=salt, info=INFO_AES_KEY).derive(secret)
    commitment = HKDF(hashes.SHA256(), 32, salt=salt, info=INFO_KEY_COMMITMENT).derive(secret)
    return AESGCM(aes_key), commitment


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + _NONCE_TAIL.pack(index, 1 if last else 0)


# --- encryption ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Sealer:
    header: EnvelopeHeader
    aead: AESGCM

    def segment(self, plaintext: bytes | memoryview, index: int, last: bool) -> bytes:
        if index >= MAX_SEGMENTS:
            raise InputError("plaintext", f"more than {MAX_SEGMENTS} segments")
        return self.aead.encrypt(
            _nonce(self.header.nonce_prefix, index, last), plaintext, self.header.raw
        )


def _new_sealer(
    *, owner_key: pre.UmbralPublicKey, record_id: RecordId, content_type: str, segment_size: int
) -> _Sealer:
    if not isinstance(owner_key, pre.UmbralPublicKey):
        raise InputError("owner_key", f"must be an UmbralPublicKey, not {type(owner_key).__name__}")
    _check_record_id(record_id)
    _check_segment_size(segment_size)
    content_type_bytes = _check_content_type(content_type)
    data_key = DataKey.random()
    nonce_prefix = os.urandom(NONCE_PREFIX_SIZE)
    aead, key_commitment = _derive(data_key, record_id, nonce_prefix)
    capsule, wrapped_key = pre.encrypt(owner_key, data_key.reveal())
    capsule_bytes = capsule.to_bytes()
    raw = b"".join(
        (
            _FIXED.pack(
                MAGIC,
                VERSION,
                0,
                segment_size,
                record_id,
                nonce_prefix,
                key_commitment,
                len(content_type_bytes),
            ),
            content_type_bytes,
            _U16.pack(len(capsule_bytes)),
            capsule_bytes,
            _U16.pack(len(wrapped_key)),
            wrapped_key,
        )
    )
    header = EnvelopeHeader(
        version=VERSION,
        segment_size=segment_size,
        record_id=record_id,
        content_type=content_type,
        nonce_prefix=nonce_prefix,
        key_commitment=key_commitment,
        capsule_bytes=capsule_bytes,
        wrapped_key=wrapped_key,
        raw=raw,
    )
    return _Sealer(header, aead)


def encrypt_stream(
    source: ByteSource,
    *,
    owner_key: pre.UmbralPublicKey,
    record_id: RecordId,
    content_type: str,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> Iterator[bytes]:
    """Encrypt ``source`` into an envelope, yielded as the preamble then one chunk per segment.

    Memory stays at about two segments whatever the input size. Arguments are checked and the
    data key made before this returns; reading ``source`` starts with the first ``next()``.
    Wrap the result in :class:`~kizuna.crypto.commitment.CommitmentHasher` to get the on-chain
    commitment on the way.
    """
    sealer = _new_sealer(
        owner_key=owner_key,
        record_id=record_id,
        content_type=content_type,
        segment_size=segment_size,
    )
    return _seal_segments(sealer, _segments(source, segment_size))


def _seal_segments(sealer: _Sealer, segments: Iterator[bytes | memoryview]) -> Iterator[bytes]:
    yield sealer.header.raw
    pending: bytes | memoryview = next(segments, b"")
    index = 0
    for following in segments:
        yield sealer.segment(pending, index, False)
        pending = following
        index += 1
    yield sealer.segment(pending, index, True)


def encrypt_bytes(
    plaintext: bytes | bytearray | memoryview,
    *,
    owner_key: pre.UmbralPublicKey,
    record_id: RecordId,
    content_type: str,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> bytearray:
    """Encrypt a payload held in memory. The envelope is written straight into one buffer
    (no per-segment objects, no final join), which is why this returns a ``bytearray``."""
    sealer = _new_sealer(
        owner_key=owner_key,
        record_id=record_id,
        content_type=content_type,
        segment_size=segment_size,
    )
    data = memoryview(plaintext).cast("B")
    total = len(data)
    count = max(1, -(-total // segment_size))
    if count > MAX_SEGMENTS:
        raise InputError("plaintext", f"more than {MAX_SEGMENTS} segments")
    header = sealer.header
    out = bytearray(header.size + total + count * TAG_SIZE)
    view = memoryview(out)
    view[: header.size] = header.raw
    pos = header.size
    prefix, aad, aead = header.nonce_prefix, header.raw, sealer.aead
    for index in range(count):
        start = index * segment_size
        chunk = data[start : start + segment_size]
        end = pos + len(chunk) + TAG_SIZE
        aead.encrypt_into(_nonce(prefix, index, index == count - 1), chunk, aad, view[pos:end])
        pos = end
    return out


@dataclass(frozen=True, slots=True)
class SealedEnvelope:
    """What :func:`encrypt_to` wrote: the header, the size in bytes and the on-chain commitment."""

    header: EnvelopeHeader
    size: int
    commitment: Commitment


def encrypt_to(
    source: ByteSource,
    destination: _Writable,
    *,
    owner_key: pre.UmbralPublicKey,
    record_id: RecordId,
    content_type: str,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> SealedEnvelope:
    """Stream ``source`` into an envelope written to ``destination`` (anything with ``write``),
    computing the commitment on the way. Constant memory."""
    sealer = _new_sealer(
        owner_key=owner_key,
        record_id=record_id,
        content_type=content_type,
        segment_size=segment_size,
    )
    hasher = CommitmentHasher()
    for chunk in hasher.tap(_seal_segments(sealer, _segments(source, segment_size))):
        destination.write(chunk)
    return SealedEnvelope(sealer.header, hasher.size, hasher.commitment)


# --- reading ---------------------------------------------------------------------------------


class _ByteReader:
    """``read(n)``: exactly ``n`` bytes, or fewer only at the end of the source.

    Chunks from an iterator are queued as memoryviews and joined once per read, so whatever
    size the source's chunks have (an HTTP stream's 64 KiB, a store's 256 KiB blocks), each
    byte is copied at most once; a chunk of exactly the size asked for is not copied at all.
    """

    def __init__(self, source: ByteSource) -> None:
        self._view: memoryview | None = None
        self._file: _Readable | None = None
        self._chunks: Iterator[bytes] | None = None
        self._queue: deque[memoryview] = deque()
        self._queued = 0
        self._offset = 0
        if isinstance(source, bytes | bytearray | memoryview):
            self._view = memoryview(source).cast("B")
        elif isinstance(source, _Readable):
            self._file = source
        else:
            self._chunks = iter(source)

    def read(self, size: int) -> bytes:
        if self._view is not None:
            data = bytes(self._view[self._offset : self._offset + size])
            self._offset += len(data)
            return data
        if self._file is not None:
            return self._read_file(self._file, size)
        assert self._chunks is not None
        if not self._queued:
            # Fast path: a chunk of exactly the size asked for passes through uncopied.
            for chunk in self._chunks:
                if len(chunk) == size:
                    return bytes(chunk)
                if chunk:
                    self._queue.append(memoryview(chunk).cast("B"))
                    self._queued = len(chunk)
                    break
            else:
                return b""
        while self._queued < size:
            more = next(self._chunks, None)
            if more is None:
                break
            if more:
                self._queue.append(memoryview(more).cast("B"))
                self._queued += len(more)
        parts: list[memoryview] = []
        wanted = size
        while wanted and self._queue:
            head = self._queue[0]
            if len(head) <= wanted:
                parts.append(self._queue.popleft())
                wanted -= len(head)
            else:
                parts.append(head[:wanted])
                self._queue[0] = head[wanted:]
                wanted = 0
        taken = size - wanted
        self._queued -= taken
        return parts[0].tobytes() if len(parts) == 1 else b"".join(parts)

    @staticmethod
    def _read_file(file: _Readable, size: int) -> bytes:
        data = file.read(size)
        if len(data) == size or not data:
            return bytes(data)
        parts = [data]
        got = len(data)
        while got < size:
            more = file.read(size - got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)


def _segments(source: ByteSource, size: int) -> Iterator[bytes | memoryview]:
    """Plaintext in segments of exactly ``size`` bytes, the last one shorter (or none if empty)."""
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")  # in memory: slices, no copies
        for start in range(0, len(view), size):
            yield view[start : start + size]
        return
    reader = _ByteReader(source)
    while True:
        chunk = reader.read(size)
        if chunk:
            yield chunk
        if len(chunk) < size:
            return


def _parse_header(reader: _ByteReader) -> EnvelopeHeader:
    fixed = reader.read(FIXED_HEADER_SIZE)
    if len(fixed) >= 4 and fixed[:4] != MAGIC:
        raise EnvelopeFormatError(
            f"not a Kizuna envelope: magic is {fixed[:4]!r}, expected {MAGIC!r}"
        )
    if len(fixed) < FIXED_HEADER_SIZE:
        raise EnvelopeFormatError(
            f"truncated header: {len(fixed)} bytes, the fixed part alone is {FIXED_HEADER_SIZE}"
        )
    (
        _magic,
        version,
        flags,
        segment_size,
        record_id,
        nonce_prefix,
        key_commitment,
        content_type_length,
    ) = _FIXED.unpack(fixed)
    if version != VERSION:
        raise EnvelopeFormatError(f"unsupported envelope version {version} (this reads {VERSION})")
    if flags != 0:
        raise EnvelopeFormatError(f"header flags must be 0 in version {VERSION}, got {flags:#04x}")
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise EnvelopeFormatError(
            f"segment size {segment_size} is outside [{MIN_SEGMENT_SIZE}, {MAX_SEGMENT_SIZE}]"
        )
    if content_type_length == 0:
        raise EnvelopeFormatError("content type is empty")
    parts = [fixed]
    content_type_bytes = _read_exact(reader, content_type_length, "content type", parts)
    try:
        content_type = content_type_bytes.decode("ascii")
        _check_content_type(content_type)
    except (UnicodeDecodeError, InputError):
        raise EnvelopeFormatError(f"content type {content_type_bytes!r} is malformed") from None
    capsule_bytes = _read_part(reader, "capsule", parts)
    wrapped_key = _read_part(reader, "wrapped key", parts)
    return EnvelopeHeader(
        version=version,
        segment_size=segment_size,
        record_id=RecordId(record_id),
        content_type=content_type,
        nonce_prefix=nonce_prefix,
        key_commitment=key_commitment,
        capsule_bytes=capsule_bytes,
        wrapped_key=wrapped_key,
        raw=b"".join(parts),
    )


def _read_exact(reader: _ByteReader, size: int, what: str, parts: list[bytes]) -> bytes:
    data = reader.read(size)
    if len(data) < size:
        raise EnvelopeFormatError(f"truncated header: ends inside the {what}")
    parts.append(data)
    return data


def _read_part(reader: _ByteReader, what: str, parts: list[bytes]) -> bytes:
    (length,) = _U16.unpack(_read_exact(reader, _U16.size, f"{what} length", parts))
    if not 1 <= length <= MAX_KEY_BLOCK_PART:
        raise EnvelopeFormatError(f"{what} length {length} is outside [1, {MAX_KEY_BLOCK_PART}]")
    return _read_exact(reader, length, what, parts)


def read_header(source: ByteSource) -> EnvelopeHeader:
    """Parse just the preamble (what a proxy needs: the capsule). Reads nothing further; the
    first :data:`MAX_PREAMBLE_SIZE` bytes of an envelope are always enough."""
    return _parse_header(_ByteReader(source))


class EnvelopeReader:
    """Reads an envelope from a stream: the header at once, the plaintext on demand::

    reader = EnvelopeReader(stream)               # EnvelopeFormatError if not an envelope
    key = reader.header.unwrap_for_owner(sk)      # or unwrap_for_grantee(...)
    for chunk in reader.decrypt(key): ...         # IntegrityError on any tampering
    """

    def __init__(self, source: ByteSource) -> None:
        self._reader = _ByteReader(source)
        self.header = _parse_header(self._reader)
        self._started = False

    def decrypt(
        self, key: DataKey, *, expected_commitment: Commitment | None = None
    ) -> Iterator[bytes]:
        """Verified plaintext, segment by segment. With ``expected_commitment``, the SHA-256 of
        the whole envelope must match it too, checked before the final segment is released."""
        if self._started:
            raise RuntimeError("an EnvelopeReader decrypts once")
        self._started = True
        aead = _open_aead(self.header, key)
        hasher = None
        if expected_commitment is not None:
            hasher = CommitmentHasher()
            hasher.update(self.header.raw)
        return self._plaintext(aead, hasher, expected_commitment)

    def _plaintext(
        self,
        aead: AESGCM,
        hasher: CommitmentHasher | None,
        expected: Commitment | None,
    ) -> Iterator[bytes]:
        header = self.header
        stride = header.segment_size + TAG_SIZE
        current = self._reader.read(stride)
        if not current:
            raise IntegrityError("truncated: the envelope has a header but no segments")
        index = 0
        while True:
            if hasher is not None:
                hasher.update(current)
            following = b"" if len(current) < stride else self._reader.read(stride)
            last = not following
            plaintext = _open_segment(aead, header, current, index, last)
            if last:
                if hasher is not None and hasher.finish() != expected:
                    raise IntegrityError(
                        "the envelope does not match the expected commitment "
                        "(another envelope, or altered)"
                    )
                yield plaintext
                return
            yield plaintext
            current = following
            index += 1
            if index >= MAX_SEGMENTS:
                raise IntegrityError(f"more than {MAX_SEGMENTS} segments")


def _open_aead(header: EnvelopeHeader, key: DataKey) -> AESGCM:
    """The segment cipher for ``key``, after checking ``key`` against the key commitment."""
    if not isinstance(key, DataKey):
        raise TypeError(f"decrypting needs a DataKey, not {type(key).__name__}")
    aead, commitment = _derive(key, header.record_id, header.nonce_prefix)
    if not hmac.compare_digest(commitment, header.key_commitment):
        raise IntegrityError(
            "wrong key: the data key does not match the envelope's key commitment "
            "(or the header was tampered with)"
        )
    return aead


def _open_segment(
    aead: AESGCM, header: EnvelopeHeader, segment: bytes | memoryview, index: int, last: bool
) -> bytes:
    try:
        return aead.decrypt(_nonce(header.nonce_prefix, index, last), segment, header.raw)
    except InvalidTag:
        raise _diagnose(aead, header, segment, index, last) from None


def _diagnose(
    aead: AESGCM, header: EnvelopeHeader, segment: bytes | memoryview, index: int, last: bool
) -> IntegrityError:
    """Say *why* a segment failed; never returns plaintext (the probe's result is dropped)."""
    if len(segment) < TAG_SIZE:
        return IntegrityError(
            f"truncated: segment {index} is {len(segment)} bytes, shorter than its "
            f"{TAG_SIZE}-byte tag"
        )
    try:
        aead.decrypt(_nonce(header.nonce_prefix, index, not last), segment, header.raw)
    except InvalidTag:
        return IntegrityError(
            f"segment {index} failed authentication: tampered with, reordered, or swapped in "
            "from another envelope"
        )
    if last:
        return IntegrityError(
            f"truncated: the envelope ends after segment {index}, which is not its final segment"
        )
    return IntegrityError(f"unexpected data after the final segment {index}")


def decrypt_stream(
    source: ByteSource,
    *,
    owner_sk: pre.UmbralSecretKey,
    expected_commitment: Commitment | None = None,
) -> Iterator[bytes]:
    """The owner's shortcut: parse, unwrap the data key with ``owner_sk``, stream plaintext."""
    reader = EnvelopeReader(source)
    key = reader.header.unwrap_for_owner(owner_sk)
    return reader.decrypt(key, expected_commitment=expected_commitment)


def decrypt_to(
    source: ByteSource,
    destination: _Writable,
    *,
    key: DataKey | None = None,
    owner_sk: pre.UmbralSecretKey | None = None,
    expected_commitment: Commitment | None = None,
) -> int:
    """Stream the plaintext of the envelope in ``source`` into ``destination``; returns its size.

    Only verified segments are written, but on an ``IntegrityError`` (e.g. truncation, found at
    the end) ``destination`` holds an unfinished prefix: write to a temporary file and keep it
    only if this returns."""
    if (key is None) == (owner_sk is None):
        raise TypeError("decrypt_to needs exactly one of key= or owner_sk=")
    reader = EnvelopeReader(source)
    if key is None:
        assert owner_sk is not None
        key = reader.header.unwrap_for_owner(owner_sk)
    written = 0
    for chunk in reader.decrypt(key, expected_commitment=expected_commitment):
        destination.write(chunk)
        written += len(chunk)
    return written


def decrypt_bytes(
    envelope: bytes | bytearray | memoryview,
    *,
    key: DataKey | None = None,
    owner_sk: pre.UmbralSecretKey | None = None,
) -> bytearray:
    """Decrypt an envelope held in memory into one buffer, with the data key or the owner's
    secret key. Every segment is verified before the buffer is returned; on failure the buffer
    is wiped and dropped."""
    if (key is None) == (owner_sk is None):
        raise TypeError("decrypt_bytes needs exactly one of key= or owner_sk=")
    data = memoryview(envelope).cast("B")
    header = _parse_header(_ByteReader(data[:MAX_PREAMBLE_SIZE]))
    if key is None:
        assert owner_sk is not None
        key = header.unwrap_for_owner(owner_sk)
    aead = _open_aead(header, key)
    body = data[header.size :]
    if not body:
        raise IntegrityError("truncated: the envelope has a header but no segments")
    stride = header.segment_size + TAG_SIZE
    full, rest = divmod(len(body), stride)
    count = full + (1 if rest else 0)
    out = bytearray(full * header.segment_size + max(rest - TAG_SIZE, 0))
    view = memoryview(out)
    pos = 0
    prefix, aad = header.nonce_prefix, header.raw
    try:
        for index in range(count):
            segment = body[index * stride : (index + 1) * stride]
            last = index == count - 1
            if len(segment) < TAG_SIZE:
                raise _diagnose(aead, header, segment, index, last)
            end = pos + len(segment) - TAG_SIZE
            try:
                aead.decrypt_into(_nonce(prefix, index, last), segment, aad, view[pos:end])
            except InvalidTag:
                raise _diagnose(aead, header, segment, index, last) from None
            pos = end
    except IntegrityError:
        view[:] = bytes(len(out))  # never leave unauthenticated bytes lying around
        raise
    return out


__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "MAGIC",
    "MAX_PREAMBLE_SIZE",
    "VERSION",
    "ByteSource",
    "DataKey",
    "EnvelopeHeader",
    "EnvelopeReader",
    "SealedEnvelope",
    "decrypt_bytes",
    "decrypt_stream",
    "decrypt_to",
    "encrypt_bytes",
    "encrypt_stream",
    "encrypt_to",
    "read_header",
]
