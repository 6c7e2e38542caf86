"""A SMART Health Links reader written from the HL7 IG (SMART Health Cards and Links, STU1),
sharing no code with Kizuna: only httpx (HTTP) and jwcrypto (JOSE) — no ``kizuna`` import.

Reading a link, as the IG says a receiving application does:

1. take the part after ``shlink:/`` (a viewer URL may come before ``#``), base64url-decode it
   to the JSON payload ``{url, key, exp?, flag?, label?, v?}``;
2. ``U`` flag: ``GET url?recipient=...`` answers the one encrypted file itself;
   otherwise ``POST url`` with ``{"recipient": ..., "passcode": ... (P flag),
   "embeddedLengthMax": ...}``; a wrong passcode answers 401 with ``remainingAttempts``;
3. each manifest file is ``embedded`` (the JWE inline) or at a ``location`` to ``GET``;
4. each JWE (compact, ``alg: dir``, ``enc: A256GCM``) opens with the payload's 32-byte key.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from jwcrypto import jwe, jwk


class ShlRefused(Exception):
    """The server refused: ``status``, its JSON body (when it sent one)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


@dataclass
class Opened:
    payload: dict[str, Any]
    contents: list[tuple[str, Any]] = field(default_factory=list)  # (contentType, JSON)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def payload_of(link: str) -> dict[str, Any]:
    encoded = link.split("shlink:/", 1)[1]
    payload: dict[str, Any] = json.loads(_b64url_decode(encoded))
    return payload


def decrypt(token: str, key_b64url: str) -> tuple[str | None, bytes]:
    """(cty, plaintext) of a compact JWE under the link's key."""
    key = jwk.JWK(kty="oct", k=key_b64url)
    message = jwe.JWE()
    message.deserialize(token, key=key)
    header = json.loads(message.objects["protected"])
    assert header["alg"] == "dir" and header["enc"] == "A256GCM", header
    return header.get("cty"), message.payload


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def open_link(link: str, *, recipient: str, passcode: str | None = None,
              embedded_length_max: int | None = None,
              client: httpx.Client | None = None) -> Opened:
    """Every file of the link, decrypted (JSON)."""
    http = client or httpx.Client(timeout=30)
    payload = payload_of(link)
    opened = Opened(payload)
    flag = payload.get("flag", "")
    if "U" in flag:
        answer = http.get(payload["url"], params={"recipient": recipient})
        if answer.status_code != 200:
            raise ShlRefused(answer.status_code, _json_or_text(answer))
        cty, plain = decrypt(answer.text, payload["key"])
        opened.contents.append((cty or "", json.loads(plain)))
        return opened
    body: dict[str, Any] = {"recipient": recipient}
    if passcode is not None:
        body["passcode"] = passcode
    if embedded_length_max is not None:
        body["embeddedLengthMax"] = embedded_length_max
    answer = http.post(payload["url"], json=body)
    if answer.status_code != 200:
        raise ShlRefused(answer.status_code, _json_or_text(answer))
    for item in answer.json()["files"]:
        if "embedded" in item:
            token = item["embedded"]
        else:
            got = http.get(item["location"])
            if got.status_code != 200:
                raise ShlRefused(got.status_code, _json_or_text(got))
            token = got.text
        _cty, plain = decrypt(token, payload["key"])
        opened.contents.append((item["contentType"], json.loads(plain)))
    return opened
