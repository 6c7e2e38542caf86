"""Secret material that refuses to leak by accident.

Every object in Kizuna that holds a secret (an Umbral secret key, a record's data key, a scope
blinding key, a bundle of wallet-derived keys) inherits from :class:`Secret`. It:

* prints as ``ClassName(...)`` (``repr``, ``str`` and f-strings alike), so a secret never ends
  up in a log line, a traceback's locals or an error message;
* refuses ``pickle`` / ``copy`` (``__reduce_ex__`` raises), so it cannot be written to a cache,
  a multiprocessing queue or a session store by a generic serializer;
* refuses hashing, so it cannot become a dict key or a set member (which would keep it alive in
  places nobody audits, and would invite comparisons that are not constant-time).

Exporting the secret is always an explicit, greppable call (``reveal()`` or a ``to_secret_bytes``
method on the subclass).
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn


class Secret:
    """Base class for objects holding secret material. See the module docstring."""

    __slots__ = ()

    def _public_hint(self) -> str:
        """A non-secret hint shown inside the parentheses of ``repr`` (default: ``...``)."""
        return "..."

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._public_hint()})"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise _refusal(self)

    def __reduce__(self) -> NoReturn:
        raise _refusal(self)

    def __getstate__(self) -> NoReturn:
        raise _refusal(self)

    __hash__ = None  # type: ignore[assignment]


def _refusal(secret: Secret) -> TypeError:
    return TypeError(f"{type(secret).__name__} holds secret material: no pickling or copying")


class SecretBytes(Secret):
    """A fixed-length secret byte string (a data key, a scope key). Compared in constant time."""

    __slots__ = ("_value",)
    SIZE: int = 32

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray):
            raise TypeError(f"{type(self).__name__} takes bytes, not {type(value).__name__}")
        if len(value) != self.SIZE:
            raise ValueError(f"{type(self).__name__} must be {self.SIZE} bytes, got {len(value)}")
        self._value = bytes(value)

    def reveal(self) -> bytes:
        """The secret bytes. Every call site is a place where the secret leaves this wrapper."""
        return self._value

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, SecretBytes)
        return hmac.compare_digest(self._value, other._value)

    __hash__ = None


__all__ = ["Secret", "SecretBytes"]
