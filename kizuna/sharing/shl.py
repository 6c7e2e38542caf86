"""SMART Health Links (HL7 SMART Health Cards and Links IG): the link and its encrypted content.

A link is ``shlink:/`` followed by the base64url (no padding) of a JSON payload::

    {"url": manifest URL, "key": 32 random bytes base64url (43 characters),
     "exp": unix seconds (optional), "flag": "P" and/or "U" (optional),
     "label": up to 80 characters (optional), "v": 1}

The content is a JWE in compact serialization, ``alg: dir`` / ``enc: A256GCM`` with the link's
key (``cty`` names the content type). Here, on the patient's side, the key is made and the
content encrypted (:func:`encrypt_jwe`); the service only ever receives the JWE and never the key
(the key travels inside the link, which the service never sees either: it gets the manifest id).

:func:`check_jwe` is the shape check the service runs on what a patient registers (it cannot
decrypt; it refuses what no reader could). Readers elsewhere decrypt with any JOSE library.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kizuna.errors import InputError

SCHEME = "shlink:/"
KEY_BYTES = 32
MAX_LABEL = 80
FLAGS = frozenset("LPU")
JWE_CONTENT_TYPES = frozenset({"application/fhir+json", "application/smart-health-card",
                               "application/smart-api-access"})
"""The content types a SHL manifest may list (the IG's list)."""
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str, *, field: str) -> bytes:
    if not isinstance(text, str) or not _B64URL.match(text):
        raise InputError(field, "is not base64url text (A-Z a-z 0-9 - _, no padding)")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InputError(field, "is not valid base64url") from None


@dataclass(frozen=True, slots=True)
class LinkPayload:
    """The JSON inside a ``shlink:/`` link."""

    url: str
    key: bytes
    exp: int | None = None
    flag: str = ""
    label: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"url": self.url, "key": b64url(self.key)}
        if self.exp is not None:
            body["exp"] = self.exp
        if self.flag:
            body["flag"] = self.flag
        if self.label:
            body["label"] = self.label
        body["v"] = 1
        return body

    def uri(self) -> str:
        """The link: ``shlink:/`` + base64url of the payload JSON."""
        raw = json.dumps(self.as_json(), separators=(",", ":")).encode()
        return SCHEME + b64url(raw)


def parse_link(text: str) -> LinkPayload:
    """The payload of a link (``shlink:/...``, or a viewer URL ending ``#shlink:/...``)."""
    if not isinstance(text, str):
        raise InputError("link", "is not text")
    at = text.find(SCHEME)
    if at < 0:
        raise InputError("link", "is not a SMART Health Link (no 'shlink:/')")
    raw = unb64url(text[at + len(SCHEME):].strip(), field="link")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError("link", "its payload is not JSON") from None
    if not isinstance(body, Mapping):
        raise InputError("link", "its payload is not a JSON object")
    url, key = body.get("url"), body.get("key")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise InputError("link.url", "is missing or not an http(s) URL")
    key_bytes = unb64url(key if isinstance(key, str) else "?", field="link.key")
    if len(key_bytes) != KEY_BYTES:
        raise InputError("link.key", f"must be {KEY_BYTES} bytes, not {len(key_bytes)}")
    exp, flag, label = body.get("exp"), body.get("flag", ""), body.get("label")
    if exp is not None and (not isinstance(exp, int) or isinstance(exp, bool)):
        raise InputError("link.exp", "must be a whole number of seconds")
    if not isinstance(flag, str) or not set(flag) <= FLAGS:
        raise InputError("link.flag", "may only hold the letters L, P and U")
    if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL):
        raise InputError("link.label", f"must be text of at most {MAX_LABEL} characters")
    return LinkPayload(url=url, key=key_bytes, exp=exp, flag=flag, label=label)


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def encrypt_jwe(plaintext: bytes, key: bytes, *, content_type: str,
                compress: bool = True) -> str:
    """``plaintext`` as a compact JWE (``dir`` + ``A256GCM``) under ``key`` (RFC 7516:
    the protected header's base64url is the additional authenticated data). ``compress``:
    raw DEFLATE first (``zip: DEF``, RFC 7516 4.1.3, which the IG allows): FHIR JSON shrinks
    about tenfold, so a summary fits the service's JSON body limit and a QR-sized world."""
    if len(key) != KEY_BYTES:
        raise InputError("key", f"must be {KEY_BYTES} bytes")
    fields = {"alg": "dir", "enc": "A256GCM", "cty": content_type}
    if compress:
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        plaintext = deflate.compress(plaintext) + deflate.flush()
        fields["zip"] = "DEF"
    header = b64url(json.dumps(fields, separators=(",", ":")).encode())
    iv = os.urandom(12)
    sealed = AESGCM(key).encrypt(iv, plaintext, header.encode("ascii"))
    return ".".join([header, "", b64url(iv), b64url(sealed[:-16]), b64url(sealed[-16:])])


def check_jwe(text: str, *, field: str) -> dict[str, Any]:
    """The protected header of ``text`` when it is a compact JWE a SHL reader can open
    (``alg: dir``, ``enc: A256GCM``, no encrypted key, a 96-bit IV, a 128-bit tag); an
    :class:`InputError` naming ``field`` otherwise. It does not (cannot) decrypt."""
    parts = text.split(".") if isinstance(text, str) else []
    if len(parts) != 5:
        raise InputError(field, "is not a compact JWE (five base64url parts joined by '.')")
    try:
        header = json.loads(unb64url(parts[0], field=field))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(field, "its protected header is not JSON") from None
    if not isinstance(header, dict):
        raise InputError(field, "its protected header is not a JSON object")
    if header.get("alg") != "dir" or header.get("enc") != "A256GCM":
        raise InputError(field, "must be encrypted with alg 'dir' and enc 'A256GCM'")
    if header.get("zip", "DEF") != "DEF":
        raise InputError(field, "the only compression a SHL reader knows is zip 'DEF'")
    if parts[1]:
        raise InputError(field, "alg 'dir' has an empty encrypted key part")
    if len(unb64url(parts[2], field=field)) != 12:
        raise InputError(field, "its IV must be 12 bytes (A256GCM)")
    unb64url(parts[3], field=field)
    if len(unb64url(parts[4], field=field)) != 16:
        raise InputError(field, "its authentication tag must be 16 bytes (A256GCM)")
    return header


def expired(payload: LinkPayload, *, now: int | None = None) -> bool:
    return payload.exp is not None and payload.exp <= (now if now is not None
                                                       else int(time.time()))


__all__ = ["JWE_CONTENT_TYPES", "KEY_BYTES", "MAX_LABEL", "SCHEME", "LinkPayload", "b64url",
           "check_jwe", "encrypt_jwe", "expired", "new_key", "parse_link", "unb64url"]
